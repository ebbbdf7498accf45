"""Ring-all on the engine: a tier is claimed and rung in one step with one ring timer per
call, and each way an offer of the tier ends (no-answer, refusal, break, answer, hang-up)
keeps the other offers and that timer right."""

from __future__ import annotations

import asyncio

from callwarden.acd.agent import AgentState
from callwarden.acd.engine import AcdEngine
from callwarden.acd.events import AgentStateChanged, CallOffered
from callwarden.acd.runtime import CallPhase
from callwarden.bus import InProcessAgentClaims, InProcessBus
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import QueueMember, QueueStrategy
from callwarden.sip.clock import FakeClock

from .conftest import EngineFactory, RecordingOwner, advance, drain, make_queue

A, B, C, D = UserId(101), UserId(102), UserId(103), UserId(104)
Q1 = QueueId(1)
CALL = CallId("c1")


async def ring_all_engine(make_engine: EngineFactory, clock: FakeClock) -> AcdEngine:
    """A, B and C in tier 0, D in tier 1; ring timeout 20 s; no break after no-answers."""
    members = [QueueMember(A), QueueMember(B), QueueMember(C), QueueMember(D, penalty=1)]
    queue = make_queue(
        1, members, strategy=QueueStrategy.RING_ALL, ring_timeout_seconds=20, max_no_answer=0
    )
    engine = await make_engine(queue)
    for agent in (A, B, C, D):
        await engine.sign_in(agent)
    return engine


def states(engine: AcdEngine) -> list[AgentState]:
    return [engine.agent(agent).state for agent in (A, B, C, D)]


async def test_a_tier_is_claimed_rung_and_published_with_one_ring_timer(
    make_engine: EngineFactory,
    clock: FakeClock,
    owner: RecordingOwner,
    bus: InProcessBus,
    claims: InProcessAgentClaims,
) -> None:
    engine = await ring_all_engine(make_engine, clock)
    events = bus.subscribe()
    timers = clock.pending()
    await engine.call_arrived(CALL, Q1)
    assert clock.pending() == timers + 1  # one ring timer for the whole tier
    assert owner.take() == [("offer", CALL, A), ("offer", CALL, B), ("offer", CALL, C)]
    assert engine.held_claims() == {A, B, C}
    assert [await claims.holder(agent) for agent in (A, B, C, D)] == ["node-a:c1"] * 3 + [None]
    published = drain(events)
    rung = [e.user_id for e in published if isinstance(e, AgentStateChanged)]
    offered = [e.user_id for e in published if isinstance(e, CallOffered)]
    assert rung == offered == [A, B, C]
    ringing = [e for e in published if isinstance(e, AgentStateChanged)]
    assert all(e.state is AgentState.RINGING and e.call_id == CALL for e in ringing)
    assert states(engine) == [AgentState.RINGING] * 3 + [AgentState.AVAILABLE]


async def test_the_whole_tier_rings_out_together_then_rings_again(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await ring_all_engine(make_engine, clock)
    await engine.call_arrived(CALL, Q1)
    owner.take()
    await advance(engine, clock, 19.5)
    assert owner.take() == []
    await advance(engine, clock, 0.5)
    requests = owner.take()
    assert requests[:3] == [("withdraw", CALL, A), ("withdraw", CALL, B), ("withdraw", CALL, C)]
    assert requests[3:] == [("offer", CALL, D)]  # the untried come first, whatever the tier
    assert [engine.agent(agent).missed_offers for agent in (A, B, C)] == [1, 1, 1]
    await advance(engine, clock, 19.5)
    assert owner.take() == []  # D's offer has a timer of its own, from its own start
    await advance(engine, clock, 0.5)
    # everyone was tried once: tier 0 rings again, with a new timer
    expected = [("offer", CALL, A), ("offer", CALL, B), ("offer", CALL, C)]
    assert owner.take() == [("withdraw", CALL, D), *expected]
    await advance(engine, clock, 20)
    assert [engine.agent(agent).missed_offers for agent in (A, B, C, D)] == [2, 2, 2, 1]


async def test_one_refusal_leaves_the_others_ringing_until_the_shared_timeout(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await ring_all_engine(make_engine, clock)
    await engine.call_arrived(CALL, Q1)
    owner.take()
    await advance(engine, clock, 5)
    await engine.offer_failed(CALL, B)  # B's phone refused: a no-answer for B alone
    assert owner.take() == []  # the call still rings A and C: nobody new is offered it
    assert states(engine) == [
        AgentState.RINGING,
        AgentState.AVAILABLE,
        AgentState.RINGING,
        AgentState.AVAILABLE,
    ]
    assert engine.agent(B).missed_offers == 1
    await advance(engine, clock, 14.5)
    assert owner.take() == []  # A and C time out at 20 s from their offer, not earlier
    await advance(engine, clock, 0.5)
    requests = owner.take()
    assert requests[:2] == [("withdraw", CALL, A), ("withdraw", CALL, C)]
    assert requests[2:] == [("offer", CALL, D)]
    assert [engine.agent(agent).missed_offers for agent in (A, B, C)] == [1, 1, 1]


async def test_a_break_while_the_tier_rings_withdraws_one_offer_only(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await ring_all_engine(make_engine, clock)
    await engine.call_arrived(CALL, Q1)
    owner.take()
    await engine.take_break(A, "meeting")
    assert owner.take() == [("withdraw", CALL, A)]
    assert engine.agent(A).missed_offers == 0
    await engine.sign_out(C)
    assert owner.take() == [("withdraw", CALL, C)]
    assert engine.call_phase(CALL) is CallPhase.RINGING  # B still rings
    await advance(engine, clock, 20)
    requests = owner.take()
    assert requests[0] == ("withdraw", CALL, B)
    assert engine.agent(B).missed_offers == 1
    assert requests[1:] == [("offer", CALL, D)]  # untried D before B again
    await engine.offer_answered(CALL, D)
    assert engine.agent(D).state is AgentState.ON_CALL


async def test_an_answer_stops_the_shared_timer(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await ring_all_engine(make_engine, clock)
    timers = clock.pending()
    await engine.call_arrived(CALL, Q1)
    owner.take()
    await engine.offer_answered(CALL, C)
    assert owner.take() == [("withdraw", CALL, A), ("withdraw", CALL, B)]
    assert clock.pending() == timers
    await advance(engine, clock, 60)
    assert owner.take() == []
    assert states(engine) == [
        AgentState.AVAILABLE,
        AgentState.AVAILABLE,
        AgentState.ON_CALL,
        AgentState.AVAILABLE,
    ]
    assert [engine.agent(agent).missed_offers for agent in (A, B, C)] == [0, 0, 0]
    assert engine.held_claims() == {C}


async def test_a_hang_up_while_the_tier_rings_stops_the_shared_timer(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    engine = await ring_all_engine(make_engine, clock)
    timers = clock.pending()
    await engine.call_arrived(CALL, Q1)
    owner.take()
    await engine.call_ended(CALL)
    assert owner.take() == [("withdraw", CALL, A), ("withdraw", CALL, B), ("withdraw", CALL, C)]
    assert clock.pending() == timers
    await advance(engine, clock, 60)
    assert owner.take() == []
    assert states(engine) == [AgentState.AVAILABLE] * 4
    assert engine.held_claims() == set()


async def test_an_agent_held_elsewhere_is_skipped_and_the_rest_of_the_tier_rings(
    make_engine: EngineFactory,
    clock: FakeClock,
    owner: RecordingOwner,
    claims: InProcessAgentClaims,
) -> None:
    engine = await ring_all_engine(make_engine, clock)
    assert await claims.claim(B, "node-b:c9", 30) is not None
    await engine.call_arrived(CALL, Q1)
    assert owner.take() == [("offer", CALL, A), ("offer", CALL, C)]
    assert engine.agent(B).state is AgentState.AVAILABLE
    assert engine.held_claims() == {A, C}


async def test_a_ring_timer_that_fired_as_the_call_was_answered_changes_nothing(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    """The timer's job is queued behind the answer: by the time it runs, no offer it timed
    is left, so it must neither count a no-answer nor withdraw anything."""
    engine = await ring_all_engine(make_engine, clock)
    await engine.call_arrived(CALL, Q1)
    owner.take()
    answering = asyncio.create_task(engine.offer_answered(CALL, B))
    await asyncio.sleep(0)  # the answer is queued as the engine's next job
    clock.advance_to(20.0)  # the ring timer fires: its job queues behind the answer
    await answering
    await engine.settled()
    assert owner.take() == [("withdraw", CALL, A), ("withdraw", CALL, C)]
    assert states(engine) == [
        AgentState.AVAILABLE,
        AgentState.ON_CALL,
        AgentState.AVAILABLE,
        AgentState.AVAILABLE,
    ]
    assert [engine.agent(agent).missed_offers for agent in (A, B, C, D)] == [0, 0, 0, 0]
    assert engine.call_phase(CALL) is CallPhase.CONNECTED


async def test_a_stale_ring_timer_leaves_the_next_round_of_offers_ringing(
    make_engine: EngineFactory, clock: FakeClock, owner: RecordingOwner
) -> None:
    """The tier refuses just as its timer fires: the call rings D in a new round before the
    old timer's job runs, and that job must not time D out (D's deadline is later)."""
    engine = await ring_all_engine(make_engine, clock)
    await engine.call_arrived(CALL, Q1)
    owner.take()
    refusals = []
    for agent in (A, B, C):
        refusals.append(asyncio.create_task(engine.offer_failed(CALL, agent)))
        await asyncio.sleep(0)
    clock.advance_to(20.0)  # the tier's timer fires: its job queues behind the refusals
    await asyncio.gather(*refusals)
    await engine.settled()
    assert owner.take() == [("offer", CALL, D)]  # refusals withdraw nothing; D is not timed out
    assert engine.agent(D).state is AgentState.RINGING
    await advance(engine, clock, 19.5)
    assert owner.take() == []
    await advance(engine, clock, 0.5)  # D's own timeout, 20 s after D's offer
    assert owner.take()[0] == ("withdraw", CALL, D)
    assert engine.agent(D).missed_offers == 1
