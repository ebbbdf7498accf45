from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from .redis_support import connected_client, random_prefix


@pytest.fixture
def prefix() -> str:
    return random_prefix()


@pytest.fixture
async def redis_a(prefix: str) -> AsyncIterator[Redis]:
    async with connected_client(prefix) as client:
        yield client


@pytest.fixture
async def redis_b(prefix: str) -> AsyncIterator[Redis]:
    """A second connection: what another node would hold."""
    async with connected_client(prefix) as client:
        yield client
