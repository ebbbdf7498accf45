"""Live figures from a recorded event sequence: a fixed day with known results."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from callwarden.acd.agent import AgentState
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
from callwarden.acd.queue import OverflowKind
from callwarden.acd.statistics import Figures, StatisticsAccumulator, compute_statistics
from callwarden.bus import Event, InProcessBus
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId
from callwarden.sip.clock import FakeClock

from .conftest import MIDNIGHT, TEAM_A, TEAM_B, EngineFactory, advance, make_queue

A, B, C, D = UserId(101), UserId(102), UserId(201), UserId(202)
Q1, Q2, Q3 = QueueId(1), QueueId(2), QueueId(3)
QUEUES = (
    make_queue(1, [A, B, D], service_level_seconds=20),
    make_queue(2, [C, D], team=TEAM_B, service_level_seconds=30),
    make_queue(3, [D], service_level_seconds=20),
)
TEAMS = {Q1: TEAM_A, Q2: TEAM_B, Q3: TEAM_A}
EIGHT = MIDNIGHT + timedelta(hours=8)


def at(seconds: float) -> datetime:
    return EIGHT + timedelta(seconds=seconds)


def call(kind: type[Event], t: float, name: str, queue: QueueId, **fields: object) -> Event:
    return kind(at=at(t), team_id=TEAMS[queue], call_id=CallId(name), queue_id=queue, **fields)  # type: ignore[call-arg]


def answered(
    name: str,
    queue: QueueId,
    agent: UserId,
    queued: float,
    answer: float,
    end: float,
    handled: float,
) -> list[Event]:
    """The life of an answered call: queued, offered, answered, ended, handled."""
    return [
        call(CallQueued, queued, name, queue),
        call(CallOffered, answer - 1, name, queue, user_id=agent),
        call(CallAnswered, answer, name, queue, user_id=agent, waited_seconds=answer - queued),
        call(CallEnded, end, name, queue, user_id=agent, talk_seconds=end - answer),
        call(
            CallHandled,
            handled,
            name,
            queue,
            user_id=agent,
            talk_seconds=end - answer,
            wrap_up_seconds=handled - end,
        ),
    ]


def agent(t: float, user: UserId, team: TeamId, state: AgentState, *queues: QueueId) -> Event:
    return AgentStateChanged(
        at=at(t),
        team_id=team,
        user_id=user,
        state=state,
        previous=AgentState.OFFLINE,
        queue_ids=queues,
    )


YESTERDAY = [  # outcomes before midnight do not count today
    AgentStateChanged(
        at=MIDNIGHT - timedelta(hours=2),
        team_id=TEAM_A,
        user_id=A,
        state=AgentState.AVAILABLE,
        previous=AgentState.OFFLINE,
        queue_ids=(Q1,),
    ),
    *[
        replace(event, at=event.at - timedelta(hours=9))
        for event in answered("y1", Q1, A, 0, 5, 65, 70)
    ],
    call(CallQueued, -9 * 3600, "y2", Q1),
    call(CallAbandoned, -9 * 3600 + 50, "y2", Q1, waited_seconds=50.0),
]

DAY = [
    *answered(
        "c1", Q1, A, queued=0, answer=10, end=130, handled=150
    ),  # waited 10 (within 20), handled 140
    *answered(
        "c2", Q1, B, queued=5, answer=35, end=215, handled=225
    ),  # waited 30 (late), handled 190
    call(CallQueued, 20, "c3", Q1),
    call(CallAbandoned, 50, "c3", Q1, waited_seconds=30.0),
    *answered("c4", Q1, A, queued=45, answer=155, end=255, handled=275),  # waited 110, handled 120
    call(CallQueued, 60, "c5", Q1),
    call(CallOverflowed, 180, "c5", Q1, waited_seconds=120.0, action=OverflowKind.VOICEMAIL),
    call(CallQueued, 300, "c6", Q1),  # still waiting at the end
    *answered(
        "d1", Q2, C, queued=0, answer=25, end=85, handled=115
    ),  # waited 25 (within 30), handled 90
    call(CallQueued, 10, "d2", Q2),
    call(CallAbandoned, 12, "d2", Q2, waited_seconds=2.0),
    *answered("f1", Q3, D, queued=100, answer=105, end=165, handled=165),  # waited 5, handled 60
    agent(265, A, TEAM_A, AgentState.AVAILABLE, Q1),
    agent(230, B, TEAM_A, AgentState.BREAK, Q1),
    agent(115, C, TEAM_B, AgentState.AVAILABLE, Q2),
    agent(170, D, TEAM_B, AgentState.OFFLINE),
]
NOW = at(330)


def figures_of(events: list[Event]) -> tuple[dict[QueueId, Figures], dict[TeamId, Figures]]:
    result = compute_statistics(events, QUEUES, day_start=MIDNIGHT, now=NOW)
    return dict(result.queues), dict(result.teams)


def states(**counts: int) -> dict[AgentState, int]:
    return {state: counts.get(state.value, 0) for state in AgentState}


def test_queue_figures_of_the_day() -> None:
    queues, _ = figures_of(YESTERDAY + DAY)
    assert queues[Q1] == Figures(
        calls_waiting=1,
        longest_wait_seconds=30.0,
        agents_by_state=states(available=1, **{"break": 1}),
        offered=5,
        answered=3,
        abandoned=1,
        overflowed=1,
        answered_within_service_level=1,
        handled=3,
        service_level=0.2,  # 1 of 5 offered answered within 20 s
        abandon_rate=0.2,
        average_speed_of_answer=50.0,  # (10 + 30 + 110) / 3
        average_handle_time=150.0,  # (140 + 190 + 120) / 3
    )
    assert queues[Q2] == Figures(
        agents_by_state=states(available=1),
        offered=2,
        answered=1,
        abandoned=1,
        answered_within_service_level=1,
        handled=1,
        service_level=0.5,
        abandon_rate=0.5,
        average_speed_of_answer=25.0,
        average_handle_time=90.0,
    )


def test_team_figures_add_up_their_queues_each_by_its_own_threshold() -> None:
    _, teams = figures_of(YESTERDAY + DAY)
    team_a = teams[TEAM_A]  # queues 1 and 3
    assert (team_a.offered, team_a.answered, team_a.abandoned, team_a.overflowed) == (6, 4, 1, 1)
    assert team_a.answered_within_service_level == 2  # c1 and f1
    assert team_a.service_level == pytest.approx(2 / 6)
    assert team_a.abandon_rate == pytest.approx(1 / 6)
    assert team_a.average_speed_of_answer == 38.75  # (10 + 30 + 110 + 5) / 4
    assert team_a.average_handle_time == 127.5  # (140 + 190 + 120 + 60) / 4
    assert (team_a.calls_waiting, team_a.longest_wait_seconds) == (1, 30.0)
    assert team_a.agents_by_state == states(available=1, **{"break": 1})
    team_b = teams[TEAM_B]
    assert team_b.agents_by_state == states(available=1, offline=1)
    assert (team_b.offered, team_b.service_level) == (2, 0.5)


def test_yesterday_alone_counts_nothing_today() -> None:
    queues, _ = figures_of(YESTERDAY)
    assert (queues[Q1].offered, queues[Q1].handled, queues[Q1].service_level) == (0, 0, None)
    assert queues[Q1].average_speed_of_answer is None and queues[Q1].average_handle_time is None
    assert queues[Q1].agents_by_state == states(available=1)


def test_the_accumulator_gives_the_same_figures_event_by_event() -> None:
    accumulator = StatisticsAccumulator(QUEUES, day_start=MIDNIGHT)
    for event in YESTERDAY + DAY:
        accumulator.apply(event)
    assert accumulator.figures(NOW) == compute_statistics(
        YESTERDAY + DAY, QUEUES, day_start=MIDNIGHT, now=NOW
    )


def test_events_of_unknown_queues_are_ignored() -> None:
    stray = CallQueued(at=at(1), team_id=TEAM_A, call_id=CallId("x"), queue_id=QueueId(77))
    queues, _ = figures_of([stray])
    assert QueueId(77) not in queues and queues[Q1].calls_waiting == 0


async def test_figures_from_the_events_an_engine_published(
    make_engine: EngineFactory, clock: FakeClock, bus: InProcessBus
) -> None:
    """Record what the engine publishes through a scripted hour, then compute from it."""
    engine = await make_engine(make_queue(1, [A, B], wrap_up_seconds=30, service_level_seconds=20))
    recorded = bus.subscribe()

    async def wait(seconds: float) -> None:
        await advance(engine, clock, seconds)

    await engine.sign_in(A)
    await engine.sign_in(B)
    await engine.call_arrived(CallId("k1"), Q1)  # t=0 -> A
    await engine.call_arrived(CallId("k2"), Q1)  # t=0 -> B
    await wait(12)
    await engine.offer_answered(CallId("k1"), A)  # waited 12
    await wait(13)
    await engine.offer_answered(CallId("k2"), B)  # waited 25
    await engine.call_arrived(CallId("k3"), Q1)  # t=25
    await wait(40)
    await engine.call_ended(CallId("k3"))  # abandoned after 40 s
    await engine.call_ended(CallId("k1"))  # t=65, talk 53, wrap-up 30
    await wait(100)
    await engine.call_ended(CallId("k2"))  # t=165, talk 140, wrap-up 30
    await wait(30)
    events = []
    while (event := recorded.get_nowait()) is not None:
        events.append(event)
    figures = compute_statistics(
        events,
        [make_queue(1, [A, B])],
        day_start=MIDNIGHT,
        now=MIDNIGHT + timedelta(seconds=clock.now()),
    ).queues[Q1]
    assert (figures.offered, figures.answered, figures.abandoned) == (3, 2, 1)
    assert figures.service_level == pytest.approx(1 / 3)  # k1 within 20 s; k2 late; k3 abandoned
    assert figures.abandon_rate == pytest.approx(1 / 3)
    assert figures.average_speed_of_answer == 18.5  # (12 + 25) / 2
    assert figures.average_handle_time == 126.5  # ((53 + 30) + (140 + 30)) / 2
    assert figures.agents_by_state == states(available=2)
