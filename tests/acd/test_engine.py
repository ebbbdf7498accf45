"""The ACD engine on one node: offers, answers, no-answers, wrap-up, abandon, overflow."""

from __future__ import annotations

import pytest

from callwarden.acd.agent import MISSED_REASON, AgentState
from callwarden.acd.errors import (
    DuplicateCall,
    EngineNotRunning,
    IllegalTransition,
    NotAMember,
    OfferNotPending,
    UnknownAgent,
    UnknownBreakReason,
    UnknownCall,
    UnknownQueue,
    WrapUpLimitReached,
)
from callwarden.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallHandled,
    CallOffered,
    CallOverflowed,
    CallQueued,
)
from callwarden.acd.queue import OverflowAction
from callwarden.acd.runtime import CallPhase
from callwarden.acd.settings import AcdSettings
from callwarden.bus import Event, InProcessAgentClaims, InProcessBus
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import QueueMember, QueueStrategy
from callwarden.sip.clock import FakeClock

from .conftest import MIDNIGHT, TEAM_A, EngineFactory, RecordingOwner, advance, drain, make_queue

A, B, C, D = UserId(101), UserId(102), UserId(103), UserId(104)
Q1, Q2 = QueueId(1), QueueId(2)


def c(name: str) -> CallId:
    return CallId(name)


def summary(event: Event) -> tuple[object, ...]:
    match event:
        case AgentStateChanged():
            return ("agent", event.user_id, event.state.value)
        case CallQueued():
            return ("queued", event.call_id, event.position)
        case CallOffered():
            return ("offered", event.call_id, event.user_id)
        case CallAnswered():
            return ("answered", event.call_id, event.user_id, event.waited_seconds)
        case CallAbandoned():
            return ("abandoned", event.call_id, event.waited_seconds)
        case CallOverflowed():
            return ("overflowed", event.call_id, event.action.value, event.target_queue_id)
        case CallEnded():
            return ("ended", event.call_id, event.user_id, event.talk_seconds)
        case CallHandled():
            return (
                "handled",
                event.call_id,
                event.user_id,
                event.talk_seconds,
                event.wrap_up_seconds,
            )
    raise AssertionError(event)


async def test_a_call_goes_to_the_longest_idle_operator_and_is_answered(
    make_engine: EngineFactory, clock: FakeClock, bus: InProcessBus, owner: RecordingOwner
) -> None:
    engine = await make_engine(make_queue(1, [A, B], wrap_up_seconds=10))
    events = bus.subscribe()
    await engine.sign_in(B)  # B has been idle longer...
    await advance(engine, clock, 30)
    await engine.sign_in(A)
    await advance(engine, clock, 5)
    assert await engine.call_arrived(c("c1"), Q1, caller="+4930111") == 1
    assert owner.take() == [("offer", "c1", B)]
    assert engine.agent(B).state is AgentState.RINGING
    assert engine.call_phase(c("c1")) is CallPhase.RINGING
    await advance(engine, clock, 4)
    await engine.offer_answered(c("c1"), B)
    await advance(engine, clock, 60)
    await engine.call_ended(c("c1"))
    assert engine.agent(B).state is AgentState.WRAP_UP
    await advance(engine, clock, 10)
    assert engine.agent(B).state is AgentState.AVAILABLE
    assert [summary(e) for e in drain(events)] == [
        ("agent", B, "available"),
        ("agent", A, "available"),
        ("queued", "c1", 1),
        ("agent", B, "ringing"),
        ("offered", "c1", B),
        ("agent", B, "on_call"),
        ("answered", "c1", B, 4.0),
        ("ended", "c1", B, 60.0),
        ("agent", B, "wrap_up"),
        ("handled", "c1", B, 60.0, 10.0),
        ("agent", B, "available"),
    ]
    assert engine.held_claims() == frozenset()


async def test_events_carry_wall_time_teams_and_the_permission(
    make_engine: EngineFactory, clock: FakeClock, bus: InProcessBus
) -> None:
    engine = await make_engine(make_queue(1, [A]))
    events = bus.subscribe()
    await advance(engine, clock, 90)
    await engine.sign_in(A)
    await engine.call_arrived(c("c1"), Q1)
    state, queued, _ringing, offered = drain(events)
    assert isinstance(state, AgentStateChanged) and isinstance(offered, CallOffered)
    assert state.at == MIDNIGHT.replace(minute=1, second=30)
    assert (state.team_id, state.user_id, state.queue_ids, state.node_id) == (
        TEAM_A,
        A,
        (Q1,),
        "node-a",
    )
    assert (queued.team_id, queued.user_id) == (TEAM_A, None)
    assert (offered.team_id, offered.user_id) == (TEAM_A, A)
    assert {e.permission.value for e in (state, queued, offered)} == {"live.view"}


async def test_with_two_operators_the_third_caller_waits_for_the_first_freed(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await make_engine(make_queue(1, [A, B], wrap_up_seconds=15))
    await engine.sign_in(A)
    await advance(engine, clock, 1)
    await engine.sign_in(B)
    for name in ("c1", "c2", "c3"):
        await engine.call_arrived(c(name), Q1)
    assert owner.take() == [("offer", "c1", A), ("offer", "c2", B)]
    assert [w.call_id for w in engine.waiting_calls(Q1)] == ["c1", "c2", "c3"]
    assert engine.position(c("c3")) == 3
    await engine.offer_answered(c("c1"), A)
    await engine.offer_answered(c("c2"), B)
    assert [w.call_id for w in engine.waiting_calls(Q1)] == ["c3"]
    assert engine.position(c("c3")) == 1
    await advance(engine, clock, 100)
    await engine.call_ended(c("c2"))  # B is freed first...
    await advance(engine, clock, 14)
    assert owner.take() == []  # ...but wraps up for 15 s
    await advance(engine, clock, 1)
    assert owner.take() == [("offer", "c3", B)]


async def test_ring_no_answer_moves_on_and_puts_the_operator_on_break(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner, bus: InProcessBus
) -> None:
    queue = make_queue(1, [A, B], ring_timeout_seconds=15, max_no_answer=2)
    engine = await make_engine(queue)
    await engine.sign_in(A)
    await advance(engine, clock, 1)
    await engine.sign_in(B)
    await engine.call_arrived(c("c1"), Q1)
    assert owner.take() == [("offer", "c1", A)]
    await advance(engine, clock, 15)  # A does not answer: the call moves on to B
    assert owner.take() == [("withdraw", "c1", A), ("offer", "c1", B)]
    assert engine.agent(A).missed_offers == 1
    await engine.offer_answered(c("c1"), B)
    await engine.call_arrived(c("c2"), Q1)
    assert owner.take() == [("offer", "c2", A)]
    await engine.offer_failed(c("c2"), A)  # the phone refused: also a no-answer
    agent = engine.agent(A)
    assert (agent.state, agent.break_reason, agent.missed_offers) == (
        AgentState.BREAK,
        MISSED_REASON,
        0,
    )
    assert owner.take() == []  # nobody else is free: c2 waits
    assert engine.call_phase(c("c2")) is CallPhase.WAITING
    await engine.make_available(A)
    assert owner.take() == [("offer", "c2", A)]


async def test_a_no_answer_tries_the_others_before_ringing_the_same_desk_again(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await make_engine(make_queue(1, [A, B, C], ring_timeout_seconds=10, max_no_answer=0))
    for agent in (A, B, C):
        await engine.sign_in(agent)
        await advance(engine, clock, 1)
    await engine.call_arrived(c("c1"), Q1)
    for _ in range(4):
        await advance(engine, clock, 10)
    offers = [agent for kind, _, agent in owner.take() if kind == "offer"]
    assert offers == [A, B, C, A, B]


async def test_a_caller_hanging_up_while_waiting_is_an_abandon(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner, bus: InProcessBus
) -> None:
    engine = await make_engine(make_queue(1, [A]))
    events = bus.subscribe()
    await engine.call_arrived(c("c1"), Q1)
    await advance(engine, clock, 42)
    await engine.call_ended(c("c1"))
    assert [summary(e) for e in drain(events)] == [("queued", "c1", 1), ("abandoned", "c1", 42.0)]
    assert engine.waiting_calls(Q1) == ()
    with pytest.raises(UnknownCall):
        await engine.call_ended(c("c1"))


async def test_a_caller_hanging_up_while_ringing_frees_the_operator(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner, bus: InProcessBus
) -> None:
    engine = await make_engine(make_queue(1, [A]))
    await engine.sign_in(A)
    await engine.call_arrived(c("c1"), Q1)
    await advance(engine, clock, 3)
    await engine.call_ended(c("c1"))
    assert owner.take() == [("offer", "c1", A), ("withdraw", "c1", A)]
    assert engine.agent(A).state is AgentState.AVAILABLE
    assert engine.agent(A).missed_offers == 0
    assert engine.held_claims() == frozenset()
    with pytest.raises(OfferNotPending):
        await engine.offer_answered(c("c1"), A)  # the late answer: the owner hangs it up


async def test_overflow_after_the_maximum_wait(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner, bus: InProcessBus
) -> None:
    engine = await make_engine(make_queue(1, [A], max_wait_seconds=60))
    events = bus.subscribe()
    await engine.call_arrived(c("c1"), Q1)
    await advance(engine, clock, 59)
    assert owner.take() == []
    await advance(engine, clock, 1)
    assert owner.take() == [("overflow", "c1", Q1)]
    assert [summary(e) for e in drain(events)] == [
        ("queued", "c1", 1),
        ("overflowed", "c1", "hangup", None),
    ]
    assert engine.call_phase(c("c1")) is None


async def test_overflow_to_another_queue_requeues_and_offers_there(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner, bus: InProcessBus
) -> None:
    settings = AcdSettings(overflow={Q1: OverflowAction.to_queue(Q2)})
    engine = await make_engine(
        make_queue(1, [A], max_wait_seconds=30), make_queue(2, [B]), settings=settings
    )
    await engine.sign_in(B)
    events = bus.subscribe()
    await engine.call_arrived(c("c1"), Q1, priority=2)
    await advance(engine, clock, 30)
    assert owner.take() == [("overflow", "c1", Q1), ("offer", "c1", B)]
    assert [summary(e) for e in drain(events)] == [
        ("queued", "c1", 1),
        ("overflowed", "c1", "queue", Q2),
        ("queued", "c1", 1),
        ("agent", B, "ringing"),
        ("offered", "c1", B),
    ]
    assert engine.waiting_calls(Q2)[0].priority == 2


async def test_a_ringing_call_overflows_only_once_the_offer_fails(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await make_engine(make_queue(1, [A], max_wait_seconds=20, ring_timeout_seconds=15))
    await advance(engine, clock, 10)
    await engine.call_arrived(c("c1"), QueueId(1))
    await advance(engine, clock, 5)
    await engine.sign_in(A)  # offered at t=15, overflow due at t=30, ring timeout at t=30
    await advance(engine, clock, 15)
    assert owner.take() == [("offer", "c1", A), ("withdraw", "c1", A), ("overflow", "c1", Q1)]


async def test_ring_all_rings_the_first_tier_and_the_first_answer_wins(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    members = [QueueMember(A), QueueMember(B), QueueMember(C, penalty=1)]
    engine = await make_engine(make_queue(1, members, strategy=QueueStrategy.RING_ALL))
    for agent in (A, B, C):
        await engine.sign_in(agent)
    await engine.call_arrived(c("c1"), Q1)
    assert owner.take() == [("offer", "c1", A), ("offer", "c1", B)]
    await engine.offer_answered(c("c1"), B)
    assert owner.take() == [("withdraw", "c1", A)]
    assert [engine.agent(x).state for x in (A, B, C)] == [
        AgentState.AVAILABLE,
        AgentState.ON_CALL,
        AgentState.AVAILABLE,
    ]
    await engine.call_arrived(c("c2"), Q1)
    assert owner.take() == [("offer", "c2", A)]  # the tier is down to A alone


async def test_round_robin_keeps_its_place_between_calls(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await make_engine(
        make_queue(1, [A, B, C], strategy=QueueStrategy.ROUND_ROBIN, wrap_up_seconds=0)
    )
    for agent in (C, B, A):
        await engine.sign_in(agent)
    offered = []
    for index in range(5):
        call = c(f"c{index}")
        await engine.call_arrived(call, Q1)
        ((_, _, agent),) = owner.take()
        offered.append(agent)
        await engine.offer_answered(call, UserId(agent))
        await engine.call_ended(call)
    assert offered == [A, B, C, A, B]
    assert engine.round_robin_position(Q1) == 1


async def test_a_priority_caller_is_offered_first(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await make_engine(make_queue(1, [A]))
    await engine.call_arrived(c("early"), Q1)
    await engine.call_arrived(c("vip"), Q1, priority=5)
    assert [engine.position(c("vip")), engine.position(c("early"))] == [1, 2]
    await engine.sign_in(A)
    assert owner.take() == [("offer", "vip", A)]


async def test_skills_required_by_the_call_pick_the_skilled_operator(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    members = [QueueMember(A, skill_level=1), QueueMember(B, skill_level=4)]
    engine = await make_engine(make_queue(1, members, strategy=QueueStrategy.SKILLS))
    await engine.sign_in(A)
    await engine.call_arrived(c("hard"), Q1, required_skill=3)
    await engine.call_arrived(c("easy"), Q1)
    assert owner.take() == [("offer", "easy", A)]  # the hard call waits for a skilled agent
    await engine.sign_in(B)
    assert owner.take() == [("offer", "hard", B)]


async def test_wrap_up_is_extendable_up_to_the_limit_and_can_end_early(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner, bus: InProcessBus
) -> None:
    settings = AcdSettings(wrap_up_extension_limit_seconds=30)
    engine = await make_engine(make_queue(1, [A], wrap_up_seconds=20), settings=settings)
    await engine.sign_in(A)
    await engine.call_arrived(c("c1"), Q1)
    await engine.offer_answered(c("c1"), A)
    await advance(engine, clock, 50)
    await engine.call_ended(c("c1"))  # wrap-up until t=70
    events = bus.subscribe()
    await advance(engine, clock, 15)
    assert (await engine.extend_wrap_up(A, 20)).wrap_up_until == 90.0
    with pytest.raises(WrapUpLimitReached):
        await engine.extend_wrap_up(A, 20)
    await advance(engine, clock, 10)  # t=75: the original end passes
    assert engine.agent(A).state is AgentState.WRAP_UP
    await advance(engine, clock, 15)  # t=90
    assert engine.agent(A).state is AgentState.AVAILABLE
    assert [summary(e) for e in drain(events)] == [
        ("handled", "c1", A, 50.0, 40.0),
        ("agent", A, "available"),
    ]
    await engine.call_arrived(c("c2"), Q1)
    await engine.offer_answered(c("c2"), A)
    await advance(engine, clock, 10)
    await engine.call_ended(c("c2"))
    await advance(engine, clock, 3)
    await engine.make_available(A)  # done early
    assert [summary(e) for e in drain(events)][-2:] == [
        ("handled", "c2", A, 10.0, 3.0),
        ("agent", A, "available"),
    ]


async def test_a_break_from_wrap_up_still_closes_the_handle(
    make_engine: EngineFactory, clock: FakeClock, bus: InProcessBus
) -> None:
    engine = await make_engine(make_queue(1, [A], wrap_up_seconds=30))
    await engine.sign_in(A)
    await engine.call_arrived(c("c1"), Q1)
    await engine.offer_answered(c("c1"), A)
    await advance(engine, clock, 20)
    await engine.call_ended(c("c1"))
    events = bus.subscribe()
    await advance(engine, clock, 5)
    await engine.take_break(A, "lunch")
    await advance(engine, clock, 60)  # the wrap-up timer must not bring A back
    assert [summary(e) for e in drain(events)] == [
        ("handled", "c1", A, 20.0, 5.0),
        ("agent", A, "break"),
    ]
    assert engine.agent(A).break_reason == "lunch"


async def test_calls_wait_while_nobody_is_signed_in_and_expected_wait_follows_staffing(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    settings = AcdSettings(initial_handle_seconds=120)
    engine = await make_engine(make_queue(1, [A, B]), settings=settings)
    await engine.call_arrived(c("c1"), Q1)
    await engine.call_arrived(c("c2"), Q1)
    assert [engine.expected_wait(c("c1")), engine.expected_wait(c("c2"))] == [120.0, 240.0]
    await engine.sign_in(A)
    await engine.sign_in(B)
    await engine.offer_answered(c("c1"), A)
    await engine.offer_answered(c("c2"), B)
    await engine.call_arrived(c("c3"), Q1)
    assert engine.expected_wait(c("c3")) == 60.0  # 1 × 120 s ÷ 2 agents
    await advance(engine, clock, 100)
    await engine.call_ended(c("c2"))
    await engine.take_break(B, "training")  # handled in 100 s; now one agent serves
    assert engine.expected_wait(c("c3")) == 100.0
    with pytest.raises(UnknownCall):
        engine.expected_wait(c("c1"))  # answered: no longer waiting


async def test_signing_in_to_some_queues_only(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await make_engine(make_queue(1, [A]), make_queue(2, [A]))
    agent = await engine.sign_in(A, [Q2])
    assert agent.queue_ids == {Q2}
    await engine.call_arrived(c("c1"), Q1)
    assert owner.take() == []
    await engine.change_queues(A, [Q1, Q2])
    assert owner.take() == [("offer", "c1", A)]


async def test_the_engine_rejects_bad_requests_with_typed_errors(
    make_engine: EngineFactory, clock: FakeClock
) -> None:
    engine = await make_engine(make_queue(1, [A]), make_queue(2, [B]))
    with pytest.raises(UnknownQueue):
        await engine.call_arrived(c("c1"), QueueId(99))
    await engine.call_arrived(c("c1"), Q1)
    with pytest.raises(DuplicateCall):
        await engine.call_arrived(c("c1"), Q2)
    with pytest.raises(UnknownAgent):
        await engine.sign_in(C)
    with pytest.raises(NotAMember):
        await engine.sign_in(A, [Q2])
    with pytest.raises(UnknownQueue):
        await engine.sign_in(A, [QueueId(99)])
    with pytest.raises(UnknownBreakReason):
        await engine.take_break(A, "nap")
    with pytest.raises(IllegalTransition):
        await engine.take_break(A, "lunch")  # offline
    with pytest.raises(OfferNotPending):
        await engine.offer_failed(c("c1"), A)
    with pytest.raises(UnknownQueue):
        engine.waiting_calls(QueueId(99))
    # the engine keeps working after errors
    await engine.sign_in(A)
    assert engine.call_phase(c("c1")) is CallPhase.RINGING


async def test_overflow_settings_must_name_existing_queues(
    make_engine: EngineFactory,
) -> None:
    with pytest.raises(ValidationFailed, match="unknown queue 9"):
        await make_engine(
            make_queue(1, [A]),
            settings=AcdSettings(overflow={Q1: OverflowAction.to_queue(QueueId(9))}),
        )


async def test_a_closed_engine_refuses_work(make_engine: EngineFactory) -> None:
    engine = await make_engine(make_queue(1, [A]))
    await engine.close()
    with pytest.raises(EngineNotRunning):
        await engine.sign_in(A)


async def test_an_agent_claimed_by_someone_else_is_skipped(
    make_engine: EngineFactory,
    clock: FakeClock,
    owner: RecordingOwner,
    claims: InProcessAgentClaims,
) -> None:
    engine = await make_engine(make_queue(1, [A, B], wrap_up_seconds=0))
    await engine.sign_in(A)
    await advance(engine, clock, 1)
    await engine.sign_in(B)
    foreign = await claims.claim(A, "node-x:call-9", 30)
    assert foreign is not None
    await engine.call_arrived(c("c1"), Q1)
    assert owner.take() == [("offer", "c1", B)]
    assert await claims.holder(B) == "node-a:c1"
    await engine.offer_answered(c("c1"), B)
    await engine.call_ended(c("c1"))
    assert await claims.holder(B) is None  # released once B is free


async def test_claims_are_refreshed_through_a_long_call(
    make_engine: EngineFactory, clock: FakeClock, claims: InProcessAgentClaims
) -> None:
    engine = await make_engine(make_queue(1, [A]), settings=AcdSettings(claim_ttl_seconds=30))
    await engine.sign_in(A)
    await engine.call_arrived(c("c1"), Q1)
    await engine.offer_answered(c("c1"), A)
    for _ in range(40):  # an hour-long call, 90 s at a time
        await advance(engine, clock, 9)
    assert await claims.holder(A) == "node-a:c1"
    assert engine.held_claims() == {A}


async def test_a_break_while_ringing_withdraws_the_offer_and_the_call_moves_on(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner, bus: InProcessBus
) -> None:
    engine = await make_engine(make_queue(1, [A, B]))
    await engine.sign_in(A)
    await advance(engine, clock, 1)
    await engine.sign_in(B)
    await engine.call_arrived(c("c1"), Q1)
    events = bus.subscribe()
    await engine.change_queues(A, [Q1])  # not a move: A keeps ringing
    assert engine.call_phase(c("c1")) is CallPhase.RINGING
    supervisor = UserId(900)
    agent = await engine.take_break(A, "meeting", changed_by=supervisor)
    assert (agent.state, agent.missed_offers) == (AgentState.BREAK, 0)
    assert owner.take() == [("offer", "c1", A), ("withdraw", "c1", A), ("offer", "c1", B)]
    changed = [e for e in drain(events) if isinstance(e, AgentStateChanged)]
    assert [(e.user_id, e.state.value, e.changed_by) for e in changed] == [
        (A, "break", supervisor),
        (B, "ringing", None),
    ]
    assert engine.held_claims() == {B}
    await engine.sign_out(B)
    assert owner.take() == [("withdraw", "c1", B)]
    assert engine.call_phase(c("c1")) is CallPhase.WAITING
