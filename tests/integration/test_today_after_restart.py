"""A node restarted during the day shows the day's figures: the supervisor's wallboard tiles
and the operator's calls taken on the desk count from the center's local midnight (Asia/Tokyo)
from the stored ACD history, equal to `compute_report` over the same day; yesterday's calls are
not in them.

The day's events are written into the node's `acd_events` while it is stopped (as a node that
ran earlier in the day left them), then the node starts again on the same data directory."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from monitoring_api import ApiClient
from node import Node, start_node

from callwarden.acd.events import CallAbandoned, CallAnswered
from callwarden.acd.history import load_history, stored_event
from callwarden.acd.statistics import Dimension, Interval, compute_report
from callwarden.acd.today import local_midnight
from callwarden.domain.ids import CallId, UserId
from callwarden.store.acd_events import AcdEventRepository
from callwarden.store.database import Database, sqlite_url
from callwarden.store.directory import UserDirectory

WEB_PASSWORD = "today-web-password-1"
TOKYO = ZoneInfo("Asia/Tokyo")
PROVISIONING = f"""teams: [{{name: sales}}]
users:
  - {{username: rita, role: operator, team: sales, extension: '2101', password: {WEB_PASSWORD}}}
  - {{username: sam, role: supervisor, team: sales, extension: '3101', password: {WEB_PASSWORD}}}
queues:
  - {{name: sales-line, number: "5101", team: sales, members: [rita], service_level_seconds: 20}}
"""


def _write_the_day(data_dir: Path) -> tuple[datetime, datetime]:
    """Yesterday's answer and today's answer and abandon, stored; (midnight, now)."""
    now = datetime.now(UTC)
    midnight = local_midnight(now, TOKYO)
    with Database(sqlite_url(data_dir / "callwarden.db")) as database:
        snapshot = UserDirectory(database.sessions).reload()
        (queue,) = snapshot.queues
        rita = UserId(next(user.id for user in snapshot.users if user.username == "rita"))
        common = {"team_id": queue.team_id, "queue_id": queue.id}
        events = [
            CallAnswered(
                at=midnight - timedelta(minutes=1),
                user_id=rita,
                call_id=CallId("yesterday"),
                waited_seconds=3,
                **common,  # type: ignore[arg-type]
            ),
            CallAnswered(
                at=midnight + (now - midnight) / 2,
                user_id=rita,
                call_id=CallId("today-1"),
                waited_seconds=5,
                **common,  # type: ignore[arg-type]
            ),
            CallAbandoned(
                at=midnight + (now - midnight) * 3 / 4,
                call_id=CallId("today-2"),
                waited_seconds=40,
                **common,  # type: ignore[arg-type]
            ),
        ]
        with database.sessions() as session, session.begin():
            AcdEventRepository(session).append_many(stored_event(event) for event in events)
    return midnight, now


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, datetime]]:
    directory = tmp_path_factory.mktemp("today-node")
    first = start_node(directory, PROVISIONING, rtp_ports=(36200, 36299))
    assert first.stop() == 0, first.log()
    midnight, _ = _write_the_day(first.data_dir)
    second = start_node(directory, PROVISIONING, rtp_ports=(36200, 36299))
    yield second, midnight
    assert second.stop() == 0, second.log()


@pytest.mark.integration
def test_the_restarted_node_shows_the_days_figures(
    restarted: tuple[Node, datetime],
) -> None:
    node, midnight = restarted
    supervisor = ApiClient(node, "sam", WEB_PASSWORD).sign_in()
    operator = ApiClient(node, "rita", WEB_PASSWORD).sign_in()
    try:
        wallboard = supervisor.request("GET", "/wallboard")
        desk = operator.request("GET", "/desk")
    finally:
        supervisor.close()
        operator.close()
    assert wallboard.status_code == 200, wallboard.text
    board = re.search(r'<script type="application/json" id="board">(.*?)</script>', wallboard.text)
    assert board is not None
    (tile,) = json.loads(board.group(1))["tiles"]
    assert desk.status_code == 200, desk.text
    taken = re.search(r'id="calls-taken" data-count="(\d+)"', desk.text)
    assert taken is not None and int(taken.group(1)) == 1  # today's answer, not yesterday's

    now = datetime.now(UTC)
    with Database(sqlite_url(node.data_dir / "callwarden.db")) as database:
        with database.sessions() as session:
            events = load_history(session, midnight, now)
        queues = UserDirectory(database.sessions).reload().queues
    report = compute_report(
        events,
        queues,
        dimension=Dimension.QUEUE,
        interval=Interval.DAY,
        since=midnight,
        until=now,
        now=now,
        zone=TOKYO,
    )
    (total,) = report.totals
    figures = total.figures
    assert (tile["offered"], tile["answered"], tile["abandoned"], tile["within"]) == (
        figures.offered,
        figures.answered,
        figures.abandoned,
        figures.answered_within_service_level,
    )
    assert (figures.offered, figures.answered, figures.abandoned) == (2, 1, 1)
