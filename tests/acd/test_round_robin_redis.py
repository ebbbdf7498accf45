"""Round-robin marks on Redis: shared by two nodes' clients, kept when a client goes away."""

from __future__ import annotations

import pytest

from bus.redis_support import connected_client, random_prefix
from callwarden.acd.round_robin import RedisRoundRobin
from callwarden.domain.ids import QueueId, UserId

pytestmark = pytest.mark.redis


async def test_a_mark_written_by_one_node_is_read_by_another_and_outlives_it() -> None:
    prefix = random_prefix()
    async with connected_client(prefix) as reader:
        marks_b = RedisRoundRobin(reader, key_prefix=prefix)
        assert await marks_b.last(QueueId(7)) is None
        async with connected_client(f"{prefix}unused:") as writer:
            marks_a = RedisRoundRobin(writer, key_prefix=prefix)
            await marks_a.mark(QueueId(7), UserId(102))
            await marks_a.mark(QueueId(8), UserId(5))
        # node A's connection is gone (a restart): the marks stay
        assert await marks_b.last(QueueId(7)) == UserId(102)
        assert await marks_b.last(QueueId(8)) == UserId(5)
        await marks_b.mark(QueueId(7), UserId(103))
        assert await RedisRoundRobin(reader, key_prefix=prefix).last(QueueId(7)) == UserId(103)
