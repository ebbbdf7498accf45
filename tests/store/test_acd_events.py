"""The ACD's event history (`acd_events`): written through `AcdHistory` as the engine
publishes, read back by `load_history` as the same events, with each agent's state before the
period first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callwarden.acd.agent import AgentState
from callwarden.acd.events import AgentStateChanged, CallAnswered, CallQueued
from callwarden.acd.history import AcdHistory, RecordedBus, load_history
from callwarden.bus import Event, InProcessBus
from callwarden.bus.event import of_kinds
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId
from callwarden.store.acd_events import AcdEventRepository
from callwarden.store.database import Database

T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
TEAM, QUEUE = TeamId(1), QueueId(7)


def agent(user: int, minutes: float, new: AgentState, reason: str | None = None) -> Event:
    return AgentStateChanged(
        at=T0 + timedelta(minutes=minutes),
        team_id=TEAM,
        user_id=UserId(user),
        state=new,
        previous=AgentState.OFFLINE,
        reason=reason,
        queue_ids=(QUEUE,),
        node_id="n1",
    )


def calls(minutes: float) -> list[Event]:
    at = T0 + timedelta(minutes=minutes)
    common = {"team_id": TEAM, "call_id": CallId("call-1@host"), "queue_id": QUEUE}
    return [
        CallQueued(at=at, priority=0, position=1, **common),  # type: ignore[arg-type]
        CallAnswered(
            at=at + timedelta(seconds=5),
            user_id=UserId(1),
            waited_seconds=5.0,
            **common,  # type: ignore[arg-type]
        ),
    ]


async def test_events_published_through_the_recorded_bus_are_read_back(
    database: Database,
) -> None:
    bus = InProcessBus()
    subscription = bus.subscribe(of_kinds(AgentStateChanged))
    history = AcdHistory(database.sessions)
    history.start()
    recorded = RecordedBus(bus, history.record)
    published = [
        agent(1, 0, AgentState.AVAILABLE),
        agent(2, 5, AgentState.BREAK, "lunch"),
        agent(1, 50, AgentState.BREAK, "training"),
        *calls(70),
        agent(2, 80, AgentState.AVAILABLE),
    ]
    for event in published:
        recorded.publish(event)
    await history.close()
    assert (history.written, history.failed, history.dropped) == (len(published), 0, 0)
    assert subscription.get_nowait() == published[0]  # the bus still gets them
    with database.sessions() as session:
        loaded = load_history(session, T0 + timedelta(minutes=60), T0 + timedelta(minutes=90))
    # Each agent's last state before the period (user 2's lunch, user 1's training), then the
    # period's events in order.
    assert loaded == [published[1], published[2], *published[3:]]
    with database.sessions() as session:
        assert load_history(session, T0 - timedelta(days=1), T0) == []


async def test_a_failed_write_is_counted_and_the_engine_goes_on(database: Database) -> None:
    def broken() -> object:
        raise RuntimeError("database gone")

    history = AcdHistory(broken)  # type: ignore[arg-type]
    history.start()
    history.record(agent(1, 0, AgentState.AVAILABLE))
    await history.close()
    assert (history.written, history.failed) == (0, 1)
    history.record(agent(1, 1, AgentState.OFFLINE))  # closed: ignored
    assert history.failed == 1


async def test_beyond_max_pending_the_oldest_are_dropped(database: Database) -> None:
    history = AcdHistory(database.sessions, max_pending=2)
    for minute in range(3):
        history.record(agent(1, minute, AgentState.AVAILABLE))
    await history.close()
    assert (history.written, history.dropped) == (2, 1)


def test_naive_times_are_refused(database: Database) -> None:
    with database.sessions() as session, pytest.raises(ValidationFailed, match="aware"):
        AcdEventRepository(session).between(datetime(2026, 1, 1), T0)
