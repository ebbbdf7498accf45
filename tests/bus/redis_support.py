"""Redis for tests: $CALLWARDEN_TEST_REDIS_URL (default 127.0.0.1:6379, database 0).

Tests that use it are marked `redis` and fail (never skip) when the server is unreachable:
`connected_client` pings first, so the error names the cause. Each test gets a random key and
channel prefix, and its keys are deleted afterwards, so parallel runs never meet.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_URL_VARIABLE = "CALLWARDEN_TEST_REDIS_URL"


def redis_url() -> str:
    return os.environ.get(REDIS_URL_VARIABLE, DEFAULT_REDIS_URL)


def random_prefix() -> str:
    return f"cwtest-{secrets.token_hex(4)}:"


@asynccontextmanager
async def connected_client(prefix: str) -> AsyncIterator[Redis]:
    """A client that has answered PING; deletes the keys under `prefix` when done."""
    client = Redis.from_url(redis_url())
    try:
        await client.ping()
        yield client
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
    finally:
        await client.aclose()
