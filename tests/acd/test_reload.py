"""The engine follows the directory (members, strategy, queues, break reasons) without
dropping calls; overflow comes from the provisioned queue; round-robin marks outlive an
engine (a restart) through `RoundRobinMarks`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import timedelta

import pytest

from callwarden.acd.agent import AgentState
from callwarden.acd.engine import AcdEngine
from callwarden.acd.errors import UnknownAgent, UnknownBreakReason, UnknownQueue
from callwarden.acd.events import AgentStateChanged, CallOverflowed
from callwarden.acd.queue import OverflowKind
from callwarden.acd.round_robin import InProcessRoundRobin, RoundRobinMarks
from callwarden.bus import InProcessAgentClaims, InProcessBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import Queue, QueueOverflow, QueueStrategy, Team
from callwarden.sip.clock import FakeClock

from .conftest import (
    MIDNIGHT,
    ROLE,
    TEAM_A,
    TEAM_B,
    USERS,
    RecordingOwner,
    advance,
    drain,
    make_queue,
)

A, B, C = UserId(101), UserId(102), UserId(103)
Q1, Q2 = QueueId(1), QueueId(2)


def snapshot(
    *queues: Queue, break_reasons: Iterable[str] = (), disabled: Iterable[UserId] = ()
) -> DirectorySnapshot:
    off = set(disabled)
    return DirectorySnapshot(
        teams=(Team(TEAM_A, "a", "Team A"), Team(TEAM_B, "b", "Team B")),
        roles=(ROLE,),
        users=[replace(user, enabled=user.id not in off) for user in USERS],
        queues=queues,
        break_reasons=break_reasons,
    )


Build = Callable[..., Awaitable[AcdEngine]]


@pytest.fixture
async def build(
    clock: FakeClock, bus: InProcessBus, claims: InProcessAgentClaims, owner: RecordingOwner
) -> AsyncIterator[Build]:
    engines: list[AcdEngine] = []

    async def make(
        directory: DirectorySnapshot, round_robin: RoundRobinMarks | None = None
    ) -> AcdEngine:
        engine = AcdEngine(
            directory=directory,
            bus=bus,
            claims=claims,
            calls=owner,
            clock=clock,
            wall_clock=lambda: MIDNIGHT + timedelta(seconds=clock.now()),
            node_id="node-a",
            round_robin=round_robin,
        )
        await engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()


async def test_a_new_member_is_offered_the_waiting_call(
    build: Build, owner: RecordingOwner
) -> None:
    engine = await build(snapshot(make_queue(1, [A])))
    await engine.call_arrived(CallId("c1"), Q1)
    assert owner.take() == []  # nobody signed in
    await engine.reload(snapshot(make_queue(1, [A, B])))
    await engine.sign_in(B)
    assert owner.take() == [("offer", "c1", B)]
    assert engine.agent(B).queue_ids == {Q1}


async def test_a_removed_member_is_signed_out_and_forgotten(
    build: Build, bus: InProcessBus
) -> None:
    engine = await build(snapshot(make_queue(1, [A, B]), make_queue(2, [B])))
    await engine.sign_in(A)
    await engine.sign_in(B)
    events = bus.subscribe()
    await engine.reload(snapshot(make_queue(1, [A]), make_queue(2, [B])))
    assert engine.agent(B).state is AgentState.AVAILABLE
    assert engine.agent(B).queue_ids == {Q2}  # left Q1, still in Q2
    await engine.reload(snapshot(make_queue(1, [A])))
    changes = [e for e in drain(events) if isinstance(e, AgentStateChanged)]
    assert [(e.user_id, e.state, e.queue_ids) for e in changes] == [
        (B, AgentState.AVAILABLE, (Q2,)),
        (B, AgentState.OFFLINE, ()),
    ]
    with pytest.raises(UnknownAgent):
        engine.agent(B)


async def test_an_agent_on_a_call_keeps_it_when_removed(
    build: Build, owner: RecordingOwner, clock: FakeClock
) -> None:
    engine = await build(snapshot(make_queue(1, [A], wrap_up_seconds=5)))
    await engine.sign_in(A)
    await engine.call_arrived(CallId("c1"), Q1)
    await engine.offer_answered(CallId("c1"), A)
    await engine.reload(snapshot(make_queue(1, [], wrap_up_seconds=5)))
    assert engine.agent(A).state is AgentState.ON_CALL
    await engine.call_ended(CallId("c1"))
    assert engine.agent(A).state is AgentState.WRAP_UP
    await advance(engine, clock, 5)
    assert engine.agent(A).state is AgentState.AVAILABLE
    assert engine.agent(A).queue_ids == frozenset()


async def test_a_disabled_user_is_signed_out(build: Build) -> None:
    queue = make_queue(1, [A, B])
    engine = await build(snapshot(queue))
    await engine.sign_in(A)
    await engine.reload(snapshot(queue, disabled=[A]))
    with pytest.raises(UnknownAgent):
        engine.agent(A)


async def test_a_changed_strategy_applies_to_the_next_decision(
    build: Build, owner: RecordingOwner
) -> None:
    engine = await build(snapshot(make_queue(1, [A, B])))
    await engine.sign_in(A)
    await engine.sign_in(B)
    await engine.reload(snapshot(make_queue(1, [A, B], strategy=QueueStrategy.RING_ALL)))
    await engine.call_arrived(CallId("c1"), Q1)
    assert sorted(owner.take()) == [("offer", "c1", A), ("offer", "c1", B)]


async def test_a_removed_queue_serves_its_waiting_calls_but_takes_no_new_one(
    build: Build, owner: RecordingOwner
) -> None:
    engine = await build(snapshot(make_queue(1, [A]), make_queue(2, [B])))
    await engine.call_arrived(CallId("c1"), Q1)
    await engine.reload(snapshot(make_queue(2, [B])))
    with pytest.raises(UnknownQueue):
        await engine.call_arrived(CallId("c2"), Q1)
    assert [call.call_id for call in engine.waiting_calls(Q1)] == ["c1"]
    await engine.call_ended(CallId("c1"))  # abandoned: counted as usual
    await engine.reload(snapshot(make_queue(2, [B])))
    with pytest.raises(UnknownQueue):
        engine.waiting_calls(Q1)


async def test_break_reasons_come_from_the_directory(build: Build) -> None:
    engine = await build(snapshot(make_queue(1, [A]), break_reasons=["lunch", "coaching"]))
    assert engine.break_reasons == ("lunch", "coaching", "missed")
    await engine.sign_in(A)
    with pytest.raises(UnknownBreakReason):
        await engine.take_break(A, "training")
    await engine.reload(snapshot(make_queue(1, [A]), break_reasons=["training"]))
    agent = await engine.take_break(A, "training")
    assert agent.break_reason == "training"


async def test_overflow_follows_the_provisioned_queue(
    build: Build, owner: RecordingOwner, clock: FakeClock, bus: InProcessBus
) -> None:
    first = make_queue(
        1, [A], max_wait_seconds=30, overflow=QueueOverflow.QUEUE, overflow_queue_id=Q2
    )
    engine = await build(snapshot(first, make_queue(2, [B])))
    await engine.sign_in(B)
    events = bus.subscribe()
    await engine.call_arrived(CallId("c1"), Q1)
    await advance(engine, clock, 30)
    assert owner.take() == [("overflow", "c1", Q1), ("offer", "c1", B)]
    (overflowed,) = [e for e in drain(events) if isinstance(e, CallOverflowed)]
    assert (overflowed.action, overflowed.target_queue_id) == (OverflowKind.QUEUE, Q2)


async def test_overflow_to_a_queue_that_was_removed_hangs_up(
    build: Build, owner: RecordingOwner, clock: FakeClock, bus: InProcessBus
) -> None:
    first = make_queue(
        1, [A], max_wait_seconds=30, overflow=QueueOverflow.QUEUE, overflow_queue_id=Q2
    )
    engine = await build(snapshot(first, make_queue(2, [B])))
    await engine.reload(snapshot(first))
    events = bus.subscribe()
    await engine.call_arrived(CallId("c1"), Q1)
    await advance(engine, clock, 30)
    (overflowed,) = [e for e in drain(events) if isinstance(e, CallOverflowed)]
    assert overflowed.action is OverflowKind.HANGUP


async def _offer_and_finish(engine: AcdEngine, owner: RecordingOwner, call: str) -> UserId:
    await engine.call_arrived(CallId(call), Q1)
    ((_, _, agent),) = owner.take()
    await engine.offer_answered(CallId(call), UserId(agent))
    await engine.call_ended(CallId(call))
    return UserId(agent)


async def test_round_robin_resumes_after_a_restart(build: Build, owner: RecordingOwner) -> None:
    marks = InProcessRoundRobin()  # stands for Redis: it outlives the engine
    queue = make_queue(1, [A, B, C], strategy=QueueStrategy.ROUND_ROBIN, wrap_up_seconds=0)
    first = await build(snapshot(queue), round_robin=marks)
    for agent in (A, B, C):
        await first.sign_in(agent)
    assert [await _offer_and_finish(first, owner, f"c{n}") for n in range(2)] == [A, B]
    await first.close()
    second = await build(snapshot(queue), round_robin=marks)
    for agent in (A, B, C):
        await second.sign_in(agent)
    assert [await _offer_and_finish(second, owner, f"d{n}") for n in range(2)] == [C, A]


async def test_round_robin_keeps_its_member_when_the_list_changes(
    build: Build, owner: RecordingOwner
) -> None:
    queue = make_queue(1, [A, B, C], strategy=QueueStrategy.ROUND_ROBIN, wrap_up_seconds=0)
    engine = await build(snapshot(queue))
    for agent in (A, B, C):
        await engine.sign_in(agent)
    assert await _offer_and_finish(engine, owner, "c1") == A
    reordered = replace(queue, members=(queue.members[2], queue.members[0], queue.members[1]))
    await engine.reload(snapshot(reordered))  # C, A, B: after A comes B
    assert await _offer_and_finish(engine, owner, "c2") == B


async def test_a_disabled_member_is_no_agent_from_the_start(build: Build) -> None:
    engine = await build(snapshot(make_queue(1, [A, B]), disabled=[B]))
    assert [agent.user_id for agent in engine.agents()] == [A]
    with pytest.raises(UnknownAgent):
        await engine.sign_in(B)
