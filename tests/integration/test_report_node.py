"""Reports from a real node: calls answered and abandoned through the node by independent
phones (pjsua2) land in the node's ACD history (`acd_events`, written by the node's
`AcdHistory`), and `acd.statistics.compute_report` over that stored history gives the figures
the CDRs of the same calls say: one answered within the service level, one abandoned, one
handled with its wrap-up.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from node import Node, start_node
from phones import Phone, PhoneBook

from callwarden.acd.events import CallAbandoned, CallHandled
from callwarden.acd.history import load_history
from callwarden.acd.statistics import Dimension, Interval, compute_report
from callwarden.store.database import Database, sqlite_url
from callwarden.store.directory import UserDirectory

PASSWORD = "report-test-sip-secret"
PROVISIONING = f"""teams: [{{name: sales}}]
users:
  - {{username: rita, role: operator, team: sales, extension: '2101', sip_password: {PASSWORD}}}
  - {{username: carl, role: operator, team: sales, extension: '1101', sip_password: {PASSWORD}}}
  - {{username: cleo, role: operator, team: sales, extension: '1102', sip_password: {PASSWORD}}}
queues:
  - {{name: sales-line, number: "5101", team: sales, members: [rita], wrap_up_seconds: 1,
     service_level_seconds: 20}}
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_node(
        tmp_path_factory.mktemp("report-node"),
        PROVISIONING,
        rtp_ports=(36000, 36199),
        extra_env={"CALLWARDEN_ACD_AUTO_SIGN_IN": "true"},
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _phone(phones: PhoneBook, node: Node, name: str) -> Phone:
    phone = phones.create(name, password=PASSWORD, registrar=node.registrar)
    assert phone.register() == 200
    return phone


def _cdr_outcomes(node: Node) -> list[tuple[str, str | None]]:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        rows = db.execute(
            "SELECT c.disposition, c.hangup_cause FROM cdrs c JOIN queues q ON q.id = c.queue_id"
            " WHERE q.number = '5101' ORDER BY c.id"
        ).fetchall()
    return [tuple(row) for row in rows]


def _kinds(database: Database, since: datetime) -> list[str]:
    with database.sessions() as session:
        return [event.kind for event in load_history(session, since, datetime.now(UTC))]


@pytest.mark.integration
def test_calls_through_the_node_give_the_reports_figures(phones: PhoneBook, node: Node) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    rita = _phone(phones, node, "rita")  # signed in by acd_auto_sign_in; answers at once
    first = _phone(phones, node, "carl").dial("5101")
    rita.wait_incoming().wait_confirmed()
    first.wait_confirmed()
    # A second caller waits (rita is busy) and hangs up: abandoned.
    second = _phone(phones, node, "cleo").dial("5101")
    second.wait_confirmed()  # answered by the queue: hold
    phones.run_for(1.0)
    second.hangup()
    second.wait_disconnected()
    phones.run_for(0.5)
    first.hangup()
    first.wait_disconnected()
    with Database(sqlite_url(node.data_dir / "callwarden.db")) as database:
        phones.wait_until(
            lambda: {CallHandled.kind, CallAbandoned.kind} <= set(_kinds(database, since)),
            10.0,
            "the handled and abandoned calls in the node's ACD history",
        )
        phones.wait_until(lambda: len(_cdr_outcomes(node)) >= 2, 5.0, "both CDRs")
        until = datetime.now(UTC) + timedelta(minutes=1)
        with database.sessions() as session:
            events = load_history(session, since, until)
        queues = UserDirectory(database.sessions).reload().queues
    report = compute_report(
        events,
        queues,
        dimension=Dimension.QUEUE,
        interval=Interval.DAY,
        since=since,
        until=until,
        now=until,
        zone=ZoneInfo("Asia/Tokyo"),
    )
    (total,) = report.totals
    figures = total.figures
    outcomes = _cdr_outcomes(node)
    assert sorted(outcomes) == [("answered", "normal clearing"), ("cancelled", "abandoned")]
    answered_cdrs = sum(1 for disposition, _ in outcomes if disposition == "answered")
    abandoned_cdrs = sum(1 for _, cause in outcomes if cause == "abandoned")
    assert (figures.offered, figures.answered, figures.abandoned) == (
        len(outcomes),
        answered_cdrs,
        abandoned_cdrs,
    )
    assert figures.service_level == 0.5  # answered within 20 s, the abandon counts against
    assert figures.handled == 1
    assert figures.average_handle_time is not None and figures.average_handle_time >= 1.0
    assert total.agent_time.handling_seconds >= figures.average_handle_time - 0.1
    assert total.agent_time.occupancy is not None and 0 < total.agent_time.occupancy <= 1
