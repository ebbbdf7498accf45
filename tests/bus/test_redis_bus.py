"""Two RedisBus instances on one Redis, as two nodes would run them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from callwarden.acd.agent import AgentState
from callwarden.acd.events import ACD_EVENT_TYPES, AgentStateChanged
from callwarden.bus import Event, EventCodec, Subscription
from callwarden.bus.redis_bus import BusNotStartedError, RedisBus
from callwarden.domain.ids import QueueId, TeamId, UserId

from .events import T0, Everything, Ping

pytestmark = pytest.mark.redis

CODEC = EventCodec((*ACD_EVENT_TYPES, Ping, Everything))


def state_change(agent: int, state: AgentState, node: str) -> AgentStateChanged:
    return AgentStateChanged(
        at=T0,
        team_id=TeamId(1),
        user_id=UserId(agent),
        state=state,
        previous=AgentState.OFFLINE,
        queue_ids=(QueueId(1),),
        node_id=node,
    )


@pytest.fixture
async def nodes(
    redis_a: Redis, redis_b: Redis, prefix: str
) -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    channel = f"{prefix}events"
    node_a = RedisBus(redis_a, CODEC, node_id="node-a", channel=channel)
    node_b = RedisBus(redis_b, CODEC, node_id="node-b", channel=channel)
    await node_a.start()
    await node_b.start()
    yield node_a, node_b
    await node_a.close()
    await node_b.close()


async def next_event(subscription: Subscription) -> Event:
    return await asyncio.wait_for(subscription.get(), 5)


async def test_each_node_sees_the_others_agent_states(nodes: tuple[RedisBus, RedisBus]) -> None:
    node_a, node_b = nodes
    seen_on_a, seen_on_b = node_a.subscribe(), node_b.subscribe()
    on_a = state_change(101, AgentState.AVAILABLE, "node-a")
    node_a.publish(on_a)
    assert await next_event(seen_on_b) == on_a
    on_b = state_change(102, AgentState.BREAK, "node-b")
    node_b.publish(on_b)
    assert await next_event(seen_on_a) == on_a  # delivered locally at once
    # Redis delivers one channel in one order to every subscriber: node A's echo of on_a
    # reached node A before on_b did, and node B's echo of on_b before node A's marker.
    assert await next_event(seen_on_a) == on_b
    assert node_a.echoes_ignored == 1
    marker = Ping(at=T0, number=99)
    node_a.publish(marker)
    assert await next_event(seen_on_b) == on_b
    assert await next_event(seen_on_b) == marker
    assert node_b.echoes_ignored == 1
    assert await next_event(seen_on_a) == marker  # local, once
    assert (seen_on_a.pending, seen_on_b.pending) == (0, 0)
    await node_a.flush()
    assert (node_a.received, node_b.received, node_a.sent, node_b.sent) == (1, 2, 2, 1)


async def test_many_events_arrive_in_order(nodes: tuple[RedisBus, RedisBus]) -> None:
    node_a, node_b = nodes
    seen_on_b = node_b.subscribe(max_pending=1000)
    for number in range(500):
        node_a.publish(Ping(at=T0, number=number))
    received = [await next_event(seen_on_b) for _ in range(500)]
    assert [event.number for event in received] == list(range(500))  # type: ignore[attr-defined]


async def test_a_malformed_message_is_counted_and_dropped(
    nodes: tuple[RedisBus, RedisBus], redis_a: Redis
) -> None:
    node_a, node_b = nodes
    seen_on_b = node_b.subscribe()
    await redis_a.publish(node_b.channel, b'{"v":1,"node":"intruder","kind":"nope","event":{}}')
    await redis_a.publish(node_b.channel, b"\x00garbage")
    node_a.publish(Ping(at=T0, number=1))
    assert await next_event(seen_on_b) == Ping(at=T0, number=1)
    assert node_b.malformed == 2


async def test_a_full_outbound_queue_drops_its_oldest(
    redis_a: Redis, redis_b: Redis, prefix: str
) -> None:
    channel = f"{prefix}events"
    node_a = RedisBus(redis_a, CODEC, node_id="node-a", channel=channel, max_outbound=3)
    node_b = RedisBus(redis_b, CODEC, node_id="node-b", channel=channel)
    await node_a.start()
    await node_b.start()
    try:
        seen_on_b = node_b.subscribe()
        local = node_a.subscribe(max_pending=100)
        for number in range(10):  # no await in between: the sender cannot run
            node_a.publish(Ping(at=T0, number=number))
        assert node_a.dropped_outbound == 7
        assert local.pending == 10  # local subscribers lose nothing
        assert [(await next_event(seen_on_b)).number for _ in range(3)] == [7, 8, 9]  # type: ignore[attr-defined]
    finally:
        await node_a.close()
        await node_b.close()


async def test_publishing_needs_a_started_bus(redis_a: Redis, prefix: str) -> None:
    bus = RedisBus(redis_a, CODEC, node_id="node-a", channel=f"{prefix}events")
    with pytest.raises(BusNotStartedError):
        bus.publish(Ping(at=T0))
    await bus.start()
    await bus.close()
    with pytest.raises(BusNotStartedError):
        bus.publish(Ping(at=T0))


async def test_an_unreachable_redis_fails_at_start() -> None:
    client = Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    bus = RedisBus(client, CODEC, node_id="node-a")
    try:
        with pytest.raises(RedisConnectionError, match=r"Error 111 connecting to 127\.0\.0\.1:1"):
            await bus.start()
    finally:
        await client.aclose()


def test_node_ids_must_not_be_empty(redis_a: Redis) -> None:
    with pytest.raises(ValueError, match="node_id"):
        RedisBus(redis_a, CODEC, node_id="")
