"""The node's id on the Redis bus is its one stable id (`recording.recovery.node_identity`): the
`node_id` setting, else the id kept in `<data_dir>/node-id`, the same its recordings carry. A
node restarted on the same data directory publishes with the same id; two nodes on different
data directories differ (Redis at 127.0.0.1:6379; fails, never skips, without it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from callwarden.app import NODE_EVENT_TYPES, _start_event_bus
from callwarden.bus import EventCodec
from callwarden.bus.redis_bus import DEFAULT_CHANNEL, RedisBus
from callwarden.config import Settings
from callwarden.recording.recovery import node_identity
from callwarden.telephony.security_events import SourceUnbanned

from .redis_support import redis_url

pytestmark = pytest.mark.redis

CODEC = EventCodec(NODE_EVENT_TYPES)


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[RedisBus]:
    """A node's bus as the composition root builds it, closed (a node stopping) at the end."""
    bus, client = await _start_event_bus(settings)
    assert isinstance(bus, RedisBus) and client is not None
    try:
        yield bus
    finally:
        await bus.close()
        await client.aclose()


async def published_by(bus: RedisBus, listener: Redis, address: str) -> str:
    """Publish an event on `bus`; the node id it carried on the wire, as another node reads it."""
    pubsub = listener.pubsub()
    await pubsub.subscribe(DEFAULT_CHANNEL)
    try:
        confirmed = await pubsub.get_message(timeout=5.0)  # subscribed before publishing
        assert confirmed is not None and confirmed["type"] == "subscribe"
        bus.publish(SourceUnbanned(at=datetime.now(UTC), address=address, node=bus.node_id))
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
            assert message is not None, "the event never reached Redis"
            envelope = CODEC.decode(message["data"])
            event = envelope.event
            if isinstance(event, SourceUnbanned) and event.address == address:
                return envelope.node_id
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_a_restarted_node_keeps_its_bus_id_and_another_data_directory_differs(
    tmp_path: Path,
) -> None:
    first_dir, second_dir = tmp_path / "node-1", tmp_path / "node-2"
    first_dir.mkdir()
    second_dir.mkdir()
    listener = Redis.from_url(redis_url())
    try:
        async with started(Settings(redis_url=redis_url(), data_dir=first_dir)) as bus:
            first = bus.node_id
            assert await published_by(bus, listener, "192.0.2.101") == first
        assert first == node_identity(first_dir)  # the id its recordings carry
        async with started(Settings(redis_url=redis_url(), data_dir=first_dir)) as bus:
            assert bus.node_id == first  # restarted on the same data directory
            assert await published_by(bus, listener, "192.0.2.102") == first
        async with started(Settings(redis_url=redis_url(), data_dir=second_dir)) as bus:
            assert bus.node_id != first  # another node
            assert await published_by(bus, listener, "192.0.2.103") == bus.node_id
            assert bus.node_id == node_identity(second_dir)
        configured = Settings(redis_url=redis_url(), data_dir=first_dir, node_id="sip-1.tokyo")
        async with started(configured) as bus:
            assert bus.node_id == "sip-1.tokyo" == node_identity(first_dir, "sip-1.tokyo")
    finally:
        await listener.aclose()
