"""The agent state machine: every legal move by table, every other move rejected."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from callwarden.acd.agent import (
    MISSED_REASON,
    TRANSITIONS,
    Agent,
    AgentEvent,
    AgentState,
    Answer,
    BreakReasons,
    ChangeQueues,
    EndCall,
    ExtendWrapUp,
    MakeAvailable,
    NoAnswer,
    Offer,
    SignIn,
    SignOut,
    TakeBreak,
    WithdrawOffer,
    transition,
)
from callwarden.acd.errors import IllegalTransition, UnknownBreakReason, WrapUpLimitReached
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId

S = AgentState
Q1, Q2 = QueueId(1), QueueId(2)
CALL = CallId("call-1")

ONE_OF_EACH: tuple[AgentEvent, ...] = (
    SignIn(frozenset({Q1})),
    SignOut(),
    ChangeQueues(frozenset({Q2})),
    MakeAvailable(),
    TakeBreak("lunch"),
    Offer(CALL, Q1),
    Answer(),
    NoAnswer(3),
    WithdrawOffer(),
    EndCall(10.0),
    ExtendWrapUp(5.0, 60.0),
)


def agent_in(state: AgentState, **changes: object) -> Agent:
    """An agent reached `state` through legal moves from OFFLINE at t=0..4."""
    agent = Agent(UserId(7), TeamId(1))
    path: dict[AgentState, tuple[AgentEvent, ...]] = {
        S.OFFLINE: (),
        S.AVAILABLE: (SignIn(frozenset({Q1})),),
        S.RINGING: (SignIn(frozenset({Q1})), Offer(CALL, Q1)),
        S.ON_CALL: (SignIn(frozenset({Q1})), Offer(CALL, Q1), Answer()),
        S.WRAP_UP: (SignIn(frozenset({Q1})), Offer(CALL, Q1), Answer(), EndCall(30.0)),
        S.BREAK: (SignIn(frozenset({Q1})), TakeBreak("lunch")),
    }
    for now, event in enumerate(path[state]):
        agent = transition(agent, event, float(now))
    assert agent.state is state
    return agent


# (state, event, expected state) for every legal move
LEGAL = [
    (S.OFFLINE, SignIn(frozenset({Q1})), S.AVAILABLE),
    (S.AVAILABLE, SignOut(), S.OFFLINE),
    (S.RINGING, SignOut(), S.OFFLINE),
    (S.WRAP_UP, SignOut(), S.OFFLINE),
    (S.BREAK, SignOut(), S.OFFLINE),
    (S.AVAILABLE, ChangeQueues(frozenset({Q2})), S.AVAILABLE),
    (S.RINGING, ChangeQueues(frozenset({Q2})), S.RINGING),
    (S.ON_CALL, ChangeQueues(frozenset({Q2})), S.ON_CALL),
    (S.WRAP_UP, ChangeQueues(frozenset({Q2})), S.WRAP_UP),
    (S.BREAK, ChangeQueues(frozenset({Q2})), S.BREAK),
    (S.BREAK, MakeAvailable(), S.AVAILABLE),
    (S.WRAP_UP, MakeAvailable(), S.AVAILABLE),
    (S.AVAILABLE, TakeBreak("lunch"), S.BREAK),
    (S.RINGING, TakeBreak("lunch"), S.BREAK),
    (S.WRAP_UP, TakeBreak("lunch"), S.BREAK),
    (S.BREAK, TakeBreak("training"), S.BREAK),
    (S.AVAILABLE, Offer(CALL, Q1), S.RINGING),
    (S.RINGING, Answer(), S.ON_CALL),
    (S.RINGING, NoAnswer(3), S.AVAILABLE),
    (S.RINGING, WithdrawOffer(), S.AVAILABLE),
    (S.ON_CALL, EndCall(10.0), S.WRAP_UP),
    (S.ON_CALL, EndCall(0.0), S.AVAILABLE),
    (S.WRAP_UP, ExtendWrapUp(5.0, 60.0), S.WRAP_UP),
]


@pytest.mark.parametrize(("state", "event", "expected"), LEGAL)
def test_legal_moves(state: AgentState, event: AgentEvent, expected: AgentState) -> None:
    assert transition(agent_in(state), event, 100.0).state is expected


def test_the_legal_table_is_exactly_the_transition_table() -> None:
    listed = {(state, type(event)) for state, event, _ in LEGAL}
    declared = {(state, kind) for kind, states in TRANSITIONS.items() for state in states}
    assert listed == declared


ILLEGAL = [
    (state, event)
    for state, event in itertools.product(AgentState, ONE_OF_EACH)
    if state not in TRANSITIONS[type(event)]
]


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_every_other_move_is_rejected(state: AgentState, event: AgentEvent) -> None:
    agent = agent_in(state)
    with pytest.raises(IllegalTransition) as caught:
        transition(agent, event, 100.0)
    assert caught.value.error_id == "agent_illegal_transition"
    assert caught.value.details == {
        "agent": 7,
        "state": state.value,
        "event": type(event).__name__,
    }


def test_illegal_moves_include_the_dangerous_ones() -> None:
    dangerous = {
        (S.OFFLINE, Offer),  # ringing someone signed out
        (S.BREAK, Offer),  # or on a break
        (S.ON_CALL, Offer),  # or on a call
        (S.ON_CALL, SignOut),  # signing out mid-call
        (S.ON_CALL, TakeBreak),
        (S.AVAILABLE, Answer),  # answering nothing
        (S.AVAILABLE, MakeAvailable),  # not a move
    }
    assert dangerous <= {(state, type(event)) for state, event in ILLEGAL}
    assert len(ILLEGAL) == len(AgentState) * len(ONE_OF_EACH) - len(LEGAL) + 1  # EndCall twice


def test_time_in_state_runs_from_the_last_change() -> None:
    agent = transition(Agent(UserId(7)), SignIn(frozenset({Q1})), 10.0)
    assert (agent.since, agent.idle_since, agent.time_in_state(25.0)) == (10.0, 10.0, 15.0)
    on_break = transition(agent, TakeBreak("lunch"), 40.0)
    assert on_break.time_in_state(100.0) == 60.0
    # a change of break reason is not a new state: the time keeps running
    assert transition(on_break, TakeBreak("meeting"), 70.0).time_in_state(100.0) == 60.0


def test_sign_in_records_the_queues_and_sign_out_clears_everything() -> None:
    agent = transition(Agent(UserId(7)), SignIn(frozenset({Q1, Q2})), 0.0)
    assert agent.queue_ids == {Q1, Q2}
    assert transition(agent, ChangeQueues(frozenset({Q2})), 1.0).queue_ids == {Q2}
    offline = transition(agent, SignOut(), 2.0)
    assert (offline.state, offline.queue_ids, offline.break_reason) == (
        S.OFFLINE,
        frozenset(),
        None,
    )


def test_a_break_while_ringing_abandons_the_offer_without_counting_a_miss() -> None:
    ringing = transition(agent_in(S.AVAILABLE), Offer(CALL, Q1), 5.0)
    on_break = transition(ringing, TakeBreak("lunch"), 7.0)
    assert (on_break.call_id, on_break.queue_id, on_break.missed_offers) == (None, None, 0)


def test_an_offer_names_the_call_and_answering_counts_it() -> None:
    ringing = transition(agent_in(S.AVAILABLE), Offer(CALL, Q1), 5.0)
    assert (ringing.call_id, ringing.queue_id) == (CALL, Q1)
    on_call = transition(ringing, Answer(), 8.0)
    assert (on_call.calls_taken, on_call.call_started, on_call.call_id) == (1, 8.0, CALL)


@pytest.mark.parametrize(
    ("max_no_answer", "offers", "state", "missed_offers", "reason"),
    [
        (3, 1, S.AVAILABLE, 1, None),
        (3, 2, S.AVAILABLE, 2, None),
        (3, 3, S.BREAK, 0, MISSED_REASON),
        (1, 1, S.BREAK, 0, MISSED_REASON),
        (0, 5, S.AVAILABLE, 5, None),  # 0: never put on break
    ],
)
def test_ring_no_answer_puts_the_agent_on_break_after_n_offers(
    max_no_answer: int, offers: int, state: AgentState, missed_offers: int, reason: str | None
) -> None:
    agent = agent_in(S.AVAILABLE)
    for index in range(offers):
        agent = transition(agent, Offer(CALL, Q1), 10.0 * index)
        agent = transition(agent, NoAnswer(max_no_answer), 10.0 * index + 5)
    assert (agent.state, agent.missed_offers, agent.break_reason) == (state, missed_offers, reason)


def test_answering_resets_the_missed_count_and_a_withdrawal_does_not_count() -> None:
    agent = agent_in(S.AVAILABLE)
    agent = transition(transition(agent, Offer(CALL, Q1), 1.0), NoAnswer(3), 2.0)
    agent = transition(transition(agent, Offer(CALL, Q1), 3.0), WithdrawOffer(), 4.0)
    assert agent.missed_offers == 1
    agent = transition(transition(agent, Offer(CALL, Q1), 5.0), Answer(), 6.0)
    assert agent.missed_offers == 0


def test_idle_since_survives_an_offer_but_restarts_after_a_call() -> None:
    agent = agent_in(S.AVAILABLE)  # signed in at t=0
    agent = transition(transition(agent, Offer(CALL, Q1), 50.0), NoAnswer(3), 65.0)
    assert agent.idle_since == 0.0
    agent = transition(transition(agent, Offer(CALL, Q1), 70.0), Answer(), 72.0)
    agent = transition(transition(agent, EndCall(10.0), 100.0), MakeAvailable(), 110.0)
    assert agent.idle_since == 110.0


def test_wrap_up_runs_for_the_queue_duration_and_records_talk_time() -> None:
    agent = agent_in(S.ON_CALL)  # answered at t=2
    wrap_up = transition(agent, EndCall(30.0), 92.0)
    assert (wrap_up.wrap_up_until, wrap_up.talk_seconds) == (122.0, 90.0)


def test_wrap_up_extends_up_to_the_limit() -> None:
    agent = transition(agent_in(S.ON_CALL), EndCall(30.0), 100.0)  # until 130
    agent = transition(agent, ExtendWrapUp(20.0, 45.0), 110.0)
    agent = transition(agent, ExtendWrapUp(25.0, 45.0), 120.0)
    assert (agent.wrap_up_until, agent.wrap_up_extended) == (175.0, 45.0)
    with pytest.raises(WrapUpLimitReached) as caught:
        transition(agent, ExtendWrapUp(1.0, 45.0), 121.0)
    assert caught.value.details == {"remaining_seconds": 0.0}


def test_an_extension_beyond_what_is_left_is_refused_whole() -> None:
    agent = transition(agent_in(S.ON_CALL), EndCall(30.0), 100.0)
    with pytest.raises(WrapUpLimitReached, match="by 45 more seconds"):
        transition(agent, ExtendWrapUp(60.0, 45.0), 101.0)
    with pytest.raises(WrapUpLimitReached, match="must be positive"):
        transition(agent, ExtendWrapUp(0.0, 45.0), 101.0)


def test_break_reasons_come_from_the_configured_list() -> None:
    reasons = BreakReasons(["lunch", "coaching"])
    assert reasons.codes == ("lunch", "coaching", MISSED_REASON)
    assert reasons.take_break("coaching") == TakeBreak("coaching")
    with pytest.raises(UnknownBreakReason) as caught:
        reasons.take_break("nap")
    assert caught.value.details == {"reason": "nap", "allowed": ["lunch", "coaching", "missed"]}
    with pytest.raises(UnknownBreakReason):
        BreakReasons(["lunch", " "])
    with pytest.raises(UnknownBreakReason, match="needs a reason"):
        transition(agent_in(S.AVAILABLE), TakeBreak(""), 1.0)


def test_an_offer_changes_only_state_since_and_call_and_keeps_every_other_field() -> None:
    """`Offer` is spelled out field by field for speed: every field of `Agent` (a new one
    too) must come through it exactly as `dataclasses.replace` would carry it."""
    markers: dict[str, object] = {field.name: object() for field in dataclasses.fields(Agent)}
    agent = Agent(**{**markers, "state": S.AVAILABLE})  # type: ignore[arg-type]
    offered = transition(agent, Offer(CALL, QueueId(3)), 42.0)
    expected = dataclasses.replace(
        agent, state=S.RINGING, since=42.0, call_id=CALL, queue_id=QueueId(3)
    )
    for field in dataclasses.fields(Agent):
        assert getattr(offered, field.name) == getattr(expected, field.name), field.name
