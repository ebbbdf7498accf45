"""Two ACD nodes on one Redis, each with its own connection, bus and claims, on real time:
an agent signed in on one is offered calls of the other, and calls raced on both nodes never
ring one operator twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest

from bus.redis_support import connected_client, random_prefix
from callwarden.acd.agent import AgentState
from callwarden.acd.engine import AcdEngine
from callwarden.acd.events import ACD_EVENT_TYPES, AgentStateChanged
from callwarden.bus import EventCodec, Subscription
from callwarden.bus.redis_bus import RedisBus
from callwarden.bus.redis_claims import RedisAgentClaims
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import QueueStrategy
from callwarden.sip.clock import LoopClock

from .conftest import RecordingOwner, directory, make_queue

pytestmark = pytest.mark.redis

AGENTS = [UserId(n) for n in (101, 102, 103, 104)]
Q1 = QueueId(1)


class Node:
    def __init__(self, engine: AcdEngine, bus: RedisBus, owner: RecordingOwner) -> None:
        self.engine, self.bus, self.owner = engine, bus, owner


@pytest.fixture
async def two_nodes(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Node, Node]]:
    """Two nodes serving one queue of `AGENTS`, longest-idle unless parametrized (ring-all:
    the whole tier claimed in one `claim_many` per offer)."""
    strategy = getattr(request, "param", QueueStrategy.LONGEST_IDLE)
    prefix = random_prefix()
    codec = EventCodec(ACD_EVENT_TYPES)
    snapshot = directory(make_queue(1, AGENTS, strategy=strategy))
    async with AsyncExitStack() as stack:
        nodes = []
        for name in ("node-a", "node-b"):
            client = await stack.enter_async_context(connected_client(prefix))
            bus = RedisBus(client, codec, node_id=name, channel=f"{prefix}events")
            await bus.start()
            stack.push_async_callback(bus.close)
            owner = RecordingOwner()
            engine = AcdEngine(
                directory=snapshot,
                bus=bus,
                claims=RedisAgentClaims(client, key_prefix=prefix),
                calls=owner,
                clock=LoopClock(asyncio.get_running_loop()),
                wall_clock=lambda: datetime.now(UTC),
                node_id=name,
            )
            await engine.start()
            stack.push_async_callback(engine.close)
            nodes.append(Node(engine, bus, owner))
        yield nodes[0], nodes[1]


async def remote_states(subscription: Subscription, count: int) -> list[AgentStateChanged]:
    """The next `count` agent state events another node published."""
    found: list[AgentStateChanged] = []
    async with asyncio.timeout(5):
        while len(found) < count:
            event = await subscription.get()
            if isinstance(event, AgentStateChanged) and event.node_id != "node-b":
                found.append(event)
    return found


async def test_agents_signed_in_on_one_node_are_offered_calls_of_the_other(
    two_nodes: tuple[Node, Node],
) -> None:
    node_a, node_b = two_nodes
    watch_b = node_b.bus.subscribe()
    for agent in AGENTS:
        await node_a.engine.sign_in(agent)
    await remote_states(watch_b, len(AGENTS))
    await node_b.engine.settled()
    assert {node_b.engine.agent(a).state for a in AGENTS} == {AgentState.AVAILABLE}

    await node_b.engine.call_arrived(CallId("b-1"), Q1)
    ((_, _, agent),) = node_b.owner.take()
    watch_a = node_a.bus.subscribe()
    await node_b.engine.offer_answered(CallId("b-1"), UserId(agent))
    await node_b.engine.call_ended(CallId("b-1"))
    await node_b.engine.make_available(UserId(agent))
    await node_b.bus.flush()
    # node A followed the whole life of the call on node B
    await _until(node_a.engine, UserId(agent), AgentState.AVAILABLE, watch_a)
    assert node_a.engine.agent(UserId(agent)).calls_taken == 1


async def _until(engine: AcdEngine, agent: UserId, state: AgentState, watch: Subscription) -> None:
    async with asyncio.timeout(5):
        while engine.agent(agent).state is not state:
            await watch.get()
            await engine.settled()


@pytest.mark.parametrize(
    "two_nodes", [QueueStrategy.LONGEST_IDLE, QueueStrategy.RING_ALL], indirect=True
)
async def test_calls_raced_on_two_nodes_never_ring_one_operator_twice(
    two_nodes: tuple[Node, Node],
) -> None:
    node_a, node_b = two_nodes
    watch_b = node_b.bus.subscribe()
    for agent in AGENTS:
        await node_a.engine.sign_in(agent)
    await remote_states(watch_b, len(AGENTS))
    await node_b.engine.settled()
    await asyncio.gather(
        *(
            node.engine.call_arrived(CallId(f"{name}-{index}"), Q1)
            for index in range(10)
            for node, name in ((node_a, "a"), (node_b, "b"))
        )
    )
    offers = [agent for _, _, agent in node_a.owner.take() + node_b.owner.take()]
    assert sorted(offers) == sorted(AGENTS)
    held = node_a.engine.held_claims() | node_b.engine.held_claims()
    assert held == set(AGENTS)
    assert not node_a.engine.held_claims() & node_b.engine.held_claims()
