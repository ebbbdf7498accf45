"""Two engines (two nodes) sharing one bus and one claim store: agents are mirrored, and no
operator is ever offered two calls at once."""

from __future__ import annotations

import asyncio

import pytest

from callwarden.acd.agent import AgentState
from callwarden.acd.engine import AcdEngine
from callwarden.acd.errors import AgentEngagedElsewhere
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.sip.clock import FakeClock

from .conftest import EngineFactory, RecordingOwner, make_queue

A, B, C, D = UserId(101), UserId(102), UserId(103), UserId(104)
Q1 = QueueId(1)


async def settle(*engines: AcdEngine) -> None:
    for _ in range(5):  # a mirrored change can queue work on the other node in turn
        for engine in engines:
            await engine.settled()


async def test_an_agent_signed_in_on_one_node_takes_calls_of_the_other(
    make_engine: EngineFactory, clock: FakeClock
) -> None:
    owner_a, owner_b = RecordingOwner(), RecordingOwner()
    queue = make_queue(1, [A, B])
    node_a = await make_engine(queue, node_id="node-a", owner_=owner_a)
    node_b = await make_engine(queue, node_id="node-b", owner_=owner_b)
    await node_a.sign_in(A)
    await settle(node_a, node_b)
    assert node_b.agent(A).state is AgentState.AVAILABLE
    assert node_b.agent(A).queue_ids == {Q1}
    await node_b.call_arrived(CallId("b1"), Q1)
    await settle(node_a, node_b)
    assert owner_b.take() == [("offer", "b1", A)]
    assert owner_a.take() == []
    assert node_a.agent(A).state is AgentState.RINGING  # mirrored from node B
    with pytest.raises(AgentEngagedElsewhere) as caught:
        await node_a.take_break(A, "lunch")
    assert caught.value.details == {"node": "node-b", "state": "ringing"}
    await node_b.offer_answered(CallId("b1"), A)
    await node_b.call_ended(CallId("b1"))
    await settle(node_a, node_b)
    assert node_a.agent(A).state is AgentState.WRAP_UP
    await node_b.make_available(A)
    await settle(node_a, node_b)
    assert node_a.agent(A).state is AgentState.AVAILABLE
    assert (await node_a.take_break(A, "lunch")).state is AgentState.BREAK  # local again
    await settle(node_a, node_b)
    assert node_b.agent(A).break_reason == "lunch"


async def test_calls_raced_on_two_nodes_never_double_book_an_operator(
    make_engine: EngineFactory, clock: FakeClock
) -> None:
    owner_a, owner_b = RecordingOwner(), RecordingOwner()
    queue = make_queue(1, [A, B, C, D])
    node_a = await make_engine(queue, node_id="node-a", owner_=owner_a)
    node_b = await make_engine(queue, node_id="node-b", owner_=owner_b)
    for agent in (A, B, C, D):
        await node_a.sign_in(agent)
    await settle(node_a, node_b)
    await asyncio.gather(
        *(
            node.call_arrived(CallId(f"{name}{index}"), Q1)
            for index in range(10)
            for node, name in ((node_a, "a"), (node_b, "b"))
        )
    )
    await settle(node_a, node_b)
    offers = [agent for _, _, agent in owner_a.take() + owner_b.take()]
    assert sorted(offers) == [A, B, C, D]  # four operators, four offers, none twice
    waiting = len(node_a.waiting_calls(Q1)) + len(node_b.waiting_calls(Q1))
    assert waiting == 20  # ringing calls still wait
