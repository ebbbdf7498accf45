"""Retention of the ACD history: events older than `acd_history_days` are deleted in batches
after the purge is audited (`acd_history.purge`), on a schedule and from the command line;
newer ones stay; an audit log that cannot write stops the purge before anything goes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callwarden.acd.events import CallAbandoned
from callwarden.acd.history import stored_event
from callwarden.acd.retention import HistoryPurge, HistoryRetention
from callwarden.cli import main
from callwarden.config import ConfigError, load_settings
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId, QueueId, TeamId
from callwarden.security.audit import AuditLog, AuditUnavailable
from callwarden.security.audit_writer import AuditWriter
from callwarden.store.acd_events import AcdEventRepository
from callwarden.store.database import Database
from callwarden.store.schema import AcdEventRow, AuditLogRow
from callwarden.web.reports.history_audit import PURGE_ACTION, HistoryPurgeAudit

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def _abandoned(at: datetime, call: str) -> CallAbandoned:
    return CallAbandoned(
        at=at, team_id=TeamId(1), call_id=CallId(call), queue_id=QueueId(1), waited_seconds=9
    )


def _store(database: Database, *days_ago: float, now: datetime = NOW) -> None:
    events = [_abandoned(now - timedelta(days=days), f"c{n}") for n, days in enumerate(days_ago)]
    with database.sessions() as session, session.begin():
        AcdEventRepository(session).append_many(stored_event(event) for event in events)


def _calls_left(database: Database) -> list[str | None]:
    with database.sessions() as session:
        return list(session.scalars(select(AcdEventRow.call_id).order_by(AcdEventRow.id)))


def _audit_details(database: Database) -> list[dict[str, object]]:
    with database.sessions() as session:
        rows = session.scalars(select(AuditLogRow).where(AuditLogRow.action == PURGE_ACTION))
        return [dict(row.details) for row in rows]


def test_the_repository_counts_and_deletes_before_a_moment_in_batches(
    database: Database,
) -> None:
    _store(database, 500, 450, 401, 399, 1)
    cutoff = NOW - timedelta(days=400)
    with database.sessions() as session, session.begin():
        repository = AcdEventRepository(session)
        assert repository.count_before(cutoff) == 3
        assert repository.delete_before(cutoff, 2) == 2
        assert repository.delete_before(cutoff, 2) == 1
        assert repository.delete_before(cutoff, 2) == 0
        with pytest.raises(ValidationFailed):
            repository.delete_before(cutoff.replace(tzinfo=None), 2)
        with pytest.raises(ValidationFailed):
            repository.delete_before(cutoff, 0)
    assert _calls_left(database) == ["c3", "c4"]


async def test_a_purge_is_audited_with_its_count_before_anything_is_deleted(
    database: Database,
) -> None:
    _store(database, 800, 500, 401, 400.5, 399.9, 30, 0)
    audited: list[tuple[HistoryPurge, int]] = []

    async def audit(purge: HistoryPurge) -> None:
        audited.append((purge, len(_calls_left(database))))

    retention = HistoryRetention(
        database.sessions, days=400, now=lambda: NOW, audit=audit, batch_size=2
    )
    purge = await retention.run()
    cutoff = NOW - timedelta(days=400)
    assert purge == HistoryPurge(before=cutoff, days=400, events=4)
    assert audited == [(HistoryPurge(before=cutoff, days=400, events=4), 7)]
    assert _calls_left(database) == ["c4", "c5", "c6"]
    # Nothing more to delete: no entry.
    assert (await retention.run()).events == 0
    assert len(audited) == 1


async def test_nothing_is_deleted_when_the_audit_log_cannot_write(database: Database) -> None:
    _store(database, 500, 1)

    async def audit(purge: HistoryPurge) -> None:
        raise AuditUnavailable("the audit log is not keeping up")

    retention = HistoryRetention(database.sessions, days=400, now=lambda: NOW, audit=audit)
    with pytest.raises(AuditUnavailable):
        await retention.run()
    assert _calls_left(database) == ["c0", "c1"]


async def test_the_schedule_purges_each_interval_into_the_audit_log_and_survives_a_failure(
    database: Database,
) -> None:
    clock = [NOW]
    _store(database, 401, 10)
    slept: list[float] = []
    step = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await step.wait()
        step.clear()
        clock[0] += timedelta(seconds=seconds)

    writer = AuditWriter(AuditLog(database.sessions))
    writer.start()
    failing = [True]

    async def audit(purge: HistoryPurge) -> None:
        if failing[0]:
            raise AuditUnavailable("down for now")
        await HistoryPurgeAudit(writer)(purge)

    retention = HistoryRetention(database.sessions, days=400, now=lambda: clock[0], audit=audit)
    retention.start(3600.0, sleep)
    try:

        async def next_run() -> None:
            runs = retention.runs
            step.set()
            for _ in range(1000):  # each run is a few database round trips in threads
                if retention.runs != runs:
                    return
                await asyncio.sleep(0.01)
            pytest.fail("the scheduled purge did not run")

        await next_run()  # the audit log is down: logged, nothing deleted
        assert _calls_left(database) == ["c0", "c1"]
        failing[0] = False
        await next_run()
        assert _calls_left(database) == ["c1"]
        assert slept == [3600.0, 3600.0, 3600.0]
    finally:
        await retention.close()
        await writer.close()
    (details,) = _audit_details(database)
    assert details == {
        "before": (NOW + timedelta(hours=2) - timedelta(days=400)).isoformat(),
        "days": 400,
        "events": 1,
    }


def test_the_setting_defaults_to_400_days_and_is_checked() -> None:
    assert load_settings(environ={}).acd_history_days == 400
    assert load_settings(environ={"CALLWARDEN_ACD_HISTORY_DAYS": "30"}).acd_history_days == 30
    for bad in ("0", "-5", "forever", "36501"):
        with pytest.raises(ConfigError, match="acd_history_days"):
            load_settings(environ={"CALLWARDEN_ACD_HISTORY_DAYS": bad})
    with pytest.raises(ValueError, match="days"):
        HistoryRetention(lambda: pytest.fail("unused"), days=0, now=lambda: NOW, audit=_no_audit)


async def _no_audit(purge: HistoryPurge) -> None:
    pytest.fail("not audited")


def test_the_command_purges_with_the_configured_retention(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    _store(database, 31, 29, now=now)
    monkeypatch.setenv("CALLWARDEN_ACD_HISTORY_DAYS", "30")
    arguments = ["acd", "purge-history", "--database-url", database.url]
    code = main([*arguments, "--data-dir", str(tmp_path / "data")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("1 ACD events before ") and out.endswith(
        "deleted (acd_history_days: 30)\n"
    )
    assert _calls_left(database) == ["c1"]
    (details,) = _audit_details(database)
    assert (details["days"], details["events"]) == (30, 1)
    assert main([*arguments, "--data-dir", str(tmp_path / "data")]) == 0
    assert capsys.readouterr().out.startswith("0 ACD events before ")
    assert len(_audit_details(database)) == 1
