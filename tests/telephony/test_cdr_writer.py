"""The CDR writer against a real, migrated SQLite database: batches written by the worker
thread, flush on close, failed writes kept for the next try, the bounded buffer."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from callwarden.domain.cdr import CallDirection, CdrLeg, Disposition, LegRole, NewCdr
from callwarden.domain.ids import CallId, QueueId, TeamId, TrunkId, UserId
from callwarden.store.cdrs import CdrRepository
from callwarden.store.database import Database
from callwarden.store.migrations import upgrade
from callwarden.store.schema import CdrRow
from callwarden.store.testing import temporary_sqlite_url
from callwarden.telephony.cdr_writer import CdrWriter

STARTED = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
WRITER_LOGGER = "callwarden.telephony.cdr_writer"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    url = temporary_sqlite_url(tmp_path)
    upgrade(url)
    with Database(url) as migrated:
        yield migrated


def cdr(call_id: str, **changes: Any) -> NewCdr:
    fields: dict[str, Any] = {
        "call_id": CallId(call_id),
        "direction": CallDirection.INTERNAL,
        "caller": "1001",
        "callee": "1002",
        "dialled_number": "1002",
        "started_at": STARTED,
        "ended_at": STARTED + timedelta(seconds=20),
        "disposition": Disposition.NO_ANSWER,
        "sip_status": 480,
    }
    fields.update(changes)
    return NewCdr(**fields)


def leg(role: LegRole, **changes: Any) -> CdrLeg:
    fields: dict[str, Any] = {
        "role": role,
        "sip_call_id": f"{role.value}@192.0.2.1",
        "uri": "sip:1002@192.0.2.51",
        "started_at": STARTED,
        "ended_at": STARTED + timedelta(seconds=20),
    }
    fields.update(changes)
    return CdrLeg(**fields)


def stored_call_ids(database: Database) -> list[str]:
    """Call ids of the stored CDRs, in the order they were inserted."""
    with database.sessions() as session:
        return list(session.scalars(select(CdrRow.call_id).order_by(CdrRow.id)))


def stored(database: Database, call_id: str) -> NewCdr:
    with database.sessions() as session:
        [found] = CdrRepository(session).for_call(CallId(call_id))
        return found


def count_commits(database: Database) -> list[str]:
    """The name of the thread of every transaction committed from now on."""
    commits: list[str] = []

    def on_commit(_connection: object) -> None:
        commits.append(threading.current_thread().name)

    event.listen(database.engine, "commit", on_commit)
    return commits


async def wait_until(condition: Callable[[], bool]) -> None:
    """Let the worker thread get on (it runs on real time); fail after 5 seconds."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail("the CDR writer did not get there within 5 s")


def hide_cdrs_table(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE cdrs RENAME TO cdrs_away")


def restore_cdrs_table(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE cdrs_away RENAME TO cdrs")


# --------------------------------------------------------------------------- the worker


async def test_the_worker_thread_writes_a_batch_in_one_transaction(database: Database) -> None:
    commits = count_commits(database)
    writer = CdrWriter(database.sessions, interval=0.01)
    for number in range(5):
        writer.submit(cdr(f"call-{number}"))
    writer.start()
    try:
        await wait_until(lambda: writer.written == 5)
        assert commits == ["cdr-writer"]
        writer.submit(cdr("call-5"))
        await wait_until(lambda: writer.written == 6)
    finally:
        await writer.close()
    assert stored_call_ids(database) == [f"call-{number}" for number in range(6)]
    assert set(commits) == {"cdr-writer"}
    assert writer.failed_batches == 0


async def test_close_flushes_what_is_pending(database: Database) -> None:
    writer = CdrWriter(database.sessions, interval=3600)
    writer.start()
    for number in range(3):
        writer.submit(cdr(f"call-{number}"))
    assert stored_call_ids(database) == []  # the worker sleeps for an hour
    await writer.close()
    assert stored_call_ids(database) == ["call-0", "call-1", "call-2"]
    assert writer.written == 3


async def test_close_without_start_flushes_too(database: Database) -> None:
    writer = CdrWriter(database.sessions)
    writer.submit(cdr("call-0"))
    await writer.close()
    assert stored_call_ids(database) == ["call-0"]


def test_a_cdr_is_stored_whole(database: Database) -> None:
    record = cdr(
        "call-legs",
        direction=CallDirection.OUTBOUND,
        dialled_number="0612345678",
        callee="0612345678",
        answered_at=STARTED + timedelta(seconds=3),
        disposition=Disposition.ANSWERED,
        sip_status=200,
        legs=(
            leg(LegRole.CALLER, user_id=None, sip_status=200),
            leg(LegRole.CALLEE, uri="sip:0612345678@192.0.2.10", sip_status=200),
        ),
    )
    writer = CdrWriter(database.sessions)
    writer.submit(record)
    writer.flush_now()
    found = stored(database, "call-legs")
    assert NewCdr(**{name: getattr(found, name) for name in _new_cdr_fields()}) == record


def _new_cdr_fields() -> list[str]:
    return [name for name in NewCdr.__dataclass_fields__ if name != "id"]


# --------------------------------------------------------------------------- failures


def test_a_failed_write_keeps_the_records_for_the_next_try(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    writer = CdrWriter(database.sessions)
    writer.submit(cdr("call-1"))
    writer.submit(cdr("call-2"))
    hide_cdrs_table(database)
    with caplog.at_level(logging.ERROR, logger=WRITER_LOGGER):
        writer.flush_now()
    assert (writer.written, writer.failed_batches) == (0, 1)
    assert "writing 2 CDRs failed; they will be retried" in caplog.messages
    writer.submit(cdr("call-3"))
    writer.flush_now()  # still no table: all three wait
    assert (writer.written, writer.failed_batches) == (0, 2)
    restore_cdrs_table(database)
    writer.flush_now()
    assert writer.written == 3
    assert stored_call_ids(database) == ["call-1", "call-2", "call-3"]  # oldest first
    writer.flush_now()
    assert writer.written == 3  # nothing written twice


async def test_the_worker_retries_until_the_database_is_back(database: Database) -> None:
    writer = CdrWriter(database.sessions, interval=0.01)
    hide_cdrs_table(database)
    writer.start()
    try:
        writer.submit(cdr("call-1"))
        await wait_until(lambda: writer.failed_batches >= 2)
        assert writer.written == 0
        restore_cdrs_table(database)
        await wait_until(lambda: writer.written == 1)
    finally:
        await writer.close()
    assert stored_call_ids(database) == ["call-1"]


def test_a_record_naming_deleted_rows_does_not_hold_back_the_others(database: Database) -> None:
    """A user, queue, trunk or team deleted while the call ran (provisioning prunes it): that
    record is stored with those links cleared (as ON DELETE SET NULL would have done had it been
    written first) and the others are written as usual."""
    writer = CdrWriter(database.sessions)
    writer.submit(cdr("call-1"))
    writer.submit(
        cdr(
            "call-2",
            caller_user_id=UserId(901),
            callee_user_id=UserId(902),
            queue_id=QueueId(903),
            trunk_id=TrunkId(904),
            team_id=TeamId(905),
            legs=(
                leg(LegRole.CALLER, user_id=UserId(901)),
                leg(LegRole.CALLEE, trunk_id=TrunkId(904)),
            ),
        )
    )
    writer.submit(cdr("call-3"))
    writer.flush_now()
    assert stored_call_ids(database) == ["call-1", "call-2", "call-3"]
    assert writer.written == 3
    orphan = stored(database, "call-2")
    assert (
        orphan.caller_user_id,
        orphan.callee_user_id,
        orphan.queue_id,
        orphan.trunk_id,
        orphan.team_id,
    ) == (None, None, None, None, None)
    assert [(item.role, item.user_id, item.trunk_id) for item in orphan.legs] == [
        (LegRole.CALLER, None, None),
        (LegRole.CALLEE, None, None),
    ]
    writer.submit(cdr("call-4"))
    writer.flush_now()
    assert stored_call_ids(database)[-1] == "call-4"


def test_a_lone_record_naming_a_deleted_user_is_stored_without_it(database: Database) -> None:
    writer = CdrWriter(database.sessions)
    writer.submit(cdr("call-1", callee_user_id=UserId(901)))
    writer.flush_now()
    assert stored(database, "call-1").callee_user_id is None
    assert (writer.written, writer.failed_batches) == (1, 0)


def test_a_record_the_database_refuses_does_not_hold_back_the_others(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: one refused record failed its batch, was put back, and failed every batch after
    it, so no CDR was ever written again."""
    with database.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_call_2 BEFORE INSERT ON cdrs WHEN NEW.call_id = 'call-2' "
            "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
        )
    writer = CdrWriter(database.sessions)
    for number in range(1, 4):
        writer.submit(cdr(f"call-{number}"))
    with caplog.at_level(logging.ERROR, logger=WRITER_LOGGER):
        writer.flush_now()
    assert stored_call_ids(database) == ["call-1", "call-3"]
    assert (writer.written, writer.refused, writer.failed_batches) == (2, 1, 0)
    [message] = caplog.messages
    assert message.startswith("CDR of call call-2 refused by the database, dropped: NewCdr(")
    writer.submit(cdr("call-4"))
    writer.flush_now()
    assert stored_call_ids(database) == ["call-1", "call-3", "call-4"]
    assert writer.written == 3


# --------------------------------------------------------------------------- the bound


def test_the_buffer_refuses_beyond_max_pending(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    writer = CdrWriter(database.sessions, max_pending=3)
    with caplog.at_level(logging.ERROR, logger=WRITER_LOGGER):
        for number in range(5):
            writer.submit(cdr(f"call-{number}"))
    assert caplog.messages == [
        "CDR buffer full: record of call call-3 refused",
        "CDR buffer full: record of call call-4 refused",
    ]
    writer.flush_now()
    assert stored_call_ids(database) == ["call-0", "call-1", "call-2"]  # the oldest are kept
    writer.submit(cdr("call-5"))  # room again
    writer.flush_now()
    assert stored_call_ids(database)[-1] == "call-5"


def test_the_bound_holds_while_the_database_is_down(database: Database) -> None:
    writer = CdrWriter(database.sessions, max_pending=3)
    hide_cdrs_table(database)
    for number in range(2):
        writer.submit(cdr(f"call-{number}"))
    writer.flush_now()
    for number in range(2, 5):
        writer.submit(cdr(f"call-{number}"))
    restore_cdrs_table(database)
    writer.flush_now()
    assert stored_call_ids(database) == ["call-0", "call-1", "call-2"]
