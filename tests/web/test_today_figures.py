"""Today's figures of the wallboard and the desk count from the center's local midnight, from the
stored ACD history: a node restarted during the day shows what it showed before, which is what
`compute_report` gives for the same day.

The known day of `web.report_support` (09:00-09:25 in Tokyo) is played through a real engine
whose events are stored by `AcdHistory`, while a first `QueueFigures` (the node before the
restart) follows the bus live. A second one, over a new bus and the same database (the node
after the restart), reads the day back. The engine's calls taken are seeded the same way by
`acd.today.DailyCounts`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callwarden.acd.events import AgentStateChanged, CallAbandoned, CallAnswered
from callwarden.acd.history import load_history, stored_event
from callwarden.acd.statistics import CenterFigures, Dimension, Figures, Interval, compute_report
from callwarden.acd.today import DailyCounts, local_midnight, stored_history
from callwarden.bus.event import Event
from callwarden.bus.in_process import InProcessBus
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.store.acd_events import AcdEventRepository
from callwarden.web.pages.figures import QueueFigures, start_page_figures
from callwarden.web.services import part_name
from web.report_support import START, play_day, provision_with_queues
from web.support import Env, build_acd

TOKYO = ZoneInfo("Asia/Tokyo")
MIDNIGHT = local_midnight(START, TOKYO)
"""00:00 on 30 November in Tokyo (15:00 UTC the day before)."""
COMPARED = (
    "offered",
    "answered",
    "abandoned",
    "overflowed",
    "answered_within_service_level",
    "handled",
    "service_level",
    "abandon_rate",
    "average_speed_of_answer",
    "average_handle_time",
)


def _counts(figures: Figures) -> dict[str, object]:
    return {name: getattr(figures, name) for name in COMPARED}


def _all_counts(figures: CenterFigures) -> dict[str, dict[object, dict[str, object]]]:
    return {
        "queues": {key: _counts(row) for key, row in figures.queues.items()},
        "teams": {key: _counts(row) for key, row in figures.teams.items()},
        "operators": {key: _counts(row) for key, row in figures.operators.items()},
    }


def _figures(env: Env, bus: InProcessBus) -> QueueFigures:
    return QueueFigures(
        bus,
        lambda: env.services.directory.snapshot,
        env.clock.now,
        "Asia/Tokyo",
        stored_history(env.database.sessions),
    )


def _store(env: Env, *events: Event) -> None:
    with env.database.sessions() as session, session.begin():
        AcdEventRepository(session).append_many(stored_event(event) for event in events)


async def _let_subscribers_run() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
def provisioned(env: Env) -> Env:
    provision_with_queues(env.database)
    env.services.directory.reload()
    env.clock.current = MIDNIGHT  # the node before the restart starts with the day
    return env


async def test_a_restarted_node_shows_the_days_figures_it_showed_before(
    provisioned: Env,
) -> None:
    env = provisioned
    live_bus = InProcessBus()
    before = _figures(env, live_bus)
    await before.ensure_started()
    assert _all_counts(before.figures())["operators"] == {}
    calls_taken: dict[UserId, int] = {}
    watcher = live_bus.subscribe()
    await play_day(env.services.directory.snapshot, env.database.sessions, live_bus)
    while (event := watcher.get_nowait()) is not None:
        if isinstance(event, AgentStateChanged) and event.user_id is not None:
            calls_taken[event.user_id] = event.calls_taken
    env.clock.current = START + timedelta(hours=3)  # noon: the node restarts
    await _let_subscribers_run()  # the live subscriber has taken every event
    live = _all_counts(before.figures())
    await before.close()

    after = _figures(env, InProcessBus())
    await after.ensure_started()
    restarted = _all_counts(after.figures())
    assert restarted == live
    snapshot = env.services.directory.snapshot
    north = next(queue for queue in snapshot.queues if queue.name == "north-line")
    assert (
        restarted["queues"][north.id]["offered"],
        restarted["queues"][north.id]["answered"],
    ) == (
        2,
        1,
    )
    await after.close()

    now = env.clock.now()
    with env.database.sessions() as session:
        events = load_history(session, MIDNIGHT, now)
    for dimension, part in ((Dimension.QUEUE, "queues"), (Dimension.TEAM, "teams")):
        report = compute_report(
            events,
            snapshot.queues,
            dimension=dimension,
            interval=Interval.DAY,
            since=MIDNIGHT,
            until=now,
            now=now,
            zone=TOKYO,
        )
        assert {row.key: _counts(row.figures) for row in report.totals} == restarted[part]

    # The restarted engine takes up each operator's calls taken where the old one left them.
    engine = build_acd(snapshot, InProcessBus())
    await engine.start()
    counts = DailyCounts(
        engine,
        stored_history(env.database.sessions),
        lambda: snapshot.queues,
        "Asia/Tokyo",
        env.clock.now,
    )
    try:
        await counts.start()
        operator = UserId(env.user("operator").id)
        stranger = UserId(env.user("stranger").id)
        assert calls_taken[operator] == calls_taken[stranger] == 1
        assert engine.agent(operator).calls_taken == calls_taken[operator]
        assert engine.agent(stranger).calls_taken == calls_taken[stranger]
        colleague = UserId(env.user("colleague").id)
        assert engine.agent(colleague).calls_taken == 0
    finally:
        await counts.close()
        await engine.close()


async def test_yesterdays_outcomes_do_not_count_and_midnight_starts_afresh(
    provisioned: Env,
) -> None:
    env = provisioned
    snapshot = env.services.directory.snapshot
    north = QueueId(next(q.id for q in snapshot.queues if q.name == "north-line"))
    operator = UserId(env.user("operator").id)
    team = snapshot.queues[0].team_id

    def answered(call: str, at: datetime, waited: float) -> CallAnswered:
        return CallAnswered(
            at=at,
            team_id=team,
            user_id=operator,
            call_id=CallId(call),
            queue_id=north,
            waited_seconds=waited,
        )

    _store(
        env,
        answered("late-yesterday", MIDNIGHT - timedelta(minutes=1), 5),
        answered("early-today", MIDNIGHT + timedelta(minutes=1), 50),
        CallAbandoned(
            at=MIDNIGHT + timedelta(hours=2),
            team_id=team,
            call_id=CallId("gone"),
            queue_id=north,
            waited_seconds=12,
        ),
    )
    env.clock.current = MIDNIGHT + timedelta(hours=8)
    bus = InProcessBus()
    figures = _figures(env, bus)
    await figures.ensure_started()
    north_today = figures.figures().queues[north]
    assert (north_today.offered, north_today.answered, north_today.abandoned) == (2, 1, 1)
    assert north_today.answered_within_service_level == 0  # 50 s against a 20 s threshold
    assert figures.figures().operators[operator].answered == 1

    bus.publish(answered("live", env.clock.now(), 3))
    await _let_subscribers_run()
    assert figures.figures().queues[north].answered == 2

    env.clock.current = MIDNIGHT + timedelta(days=1, seconds=1)  # the next day
    tomorrow = figures.figures().queues[north]
    assert (tomorrow.offered, tomorrow.answered, tomorrow.abandoned) == (0, 0, 0)
    await figures.close()


async def test_an_event_both_stored_and_heard_counts_once(provisioned: Env) -> None:
    """Another node's event, written to the history while this node read it, also arrives over
    the bus: it is counted once; a new one equal in all but time is counted."""
    env = provisioned
    snapshot = env.services.directory.snapshot
    north = QueueId(next(q.id for q in snapshot.queues if q.name == "north-line"))
    team = snapshot.queues[0].team_id
    env.clock.current = MIDNIGHT + timedelta(hours=10)
    now = env.clock.now()
    event = CallAbandoned(
        at=now - timedelta(seconds=2),
        team_id=team,
        call_id=CallId("elsewhere"),
        queue_id=north,
        waited_seconds=30,
    )
    _store(env, event)
    bus = InProcessBus()
    figures = _figures(env, bus)
    await figures.ensure_started()
    bus.publish(event)
    bus.publish(
        CallAbandoned(
            at=now,
            team_id=team,
            call_id=CallId("later"),
            queue_id=north,
            waited_seconds=30,
        )
    )
    await _let_subscribers_run()
    assert figures.figures().queues[north].abandoned == 2
    await figures.close()


async def test_the_pages_figures_read_the_stored_day(provisioned: Env) -> None:
    """The application's own `QueueFigures` (as `install_pages` builds it, over the database)."""
    env = provisioned
    await play_day(env.services.directory.snapshot, env.database.sessions)
    env.clock.current = START + timedelta(hours=3)
    await start_page_figures(env.app)
    figures = getattr(env.app.state, part_name(QueueFigures))
    assert isinstance(figures, QueueFigures)
    by_name = {
        q.name: figures.figures().queues[q.id] for q in env.services.directory.snapshot.queues
    }
    assert (by_name["north-line"].offered, by_name["north-line"].abandoned) == (2, 1)
    assert (by_name["south-line"].offered, by_name["south-line"].answered) == (1, 1)
    session = env.sign_in_directly("supervisor")
    async with env.client(session) as client:
        page = await client.get("/wallboard")
    assert page.status_code == 200
    assert '"offered": 2' in page.text or '"offered":2' in page.text
