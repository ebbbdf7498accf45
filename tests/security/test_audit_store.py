"""The audit log in a real database (SQLite and PostgreSQL): tampering done in SQL is caught,
concurrent writers never fork the chain, reads are audited, async appends leave the loop free.

Tampering is done as an owner of the database would: drop the append-only triggers, then
UPDATE or DELETE rows directly.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import UserId
from callwarden.security.audit import (
    AuditAction,
    AuditActor,
    AuditEvent,
    AuditHead,
    AuditLog,
    AuditOutcome,
    AuditQuery,
    AuditUnavailable,
    ChainProblem,
    append,
    compute_hash,
)
from callwarden.security.audit_store import entry_from_row, lock_chain
from callwarden.security.audit_writer import AuditWriter
from callwarden.store.database import WRITE_TRANSACTION, Database, sqlite_url
from callwarden.store.migrations import upgrade
from callwarden.store.schema import AuditLogRow
from callwarden.store.testing import (
    clone_sqlite_database,
    temporary_postgres_schema,
    temporary_sqlite_url,
)

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ALICE = AuditActor.user(UserId(1), "alice")
BOB = AuditActor.user(UserId(2), "bob")


class SteppingClock:
    """Each reading is one second after the previous one (thread-safe)."""

    def __init__(self, start: datetime = T0) -> None:
        self._start = start
        self._ticks = itertools.count()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=next(self._ticks))


@pytest.fixture(scope="module")
def audit_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit-template") / "template.db"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(
    request: pytest.FixtureRequest, audit_template: Path, tmp_path: Path
) -> Iterator[Database]:
    if request.param == "sqlite":
        with Database(clone_sqlite_database(audit_template, tmp_path)) as migrated:
            yield migrated
        return
    with temporary_postgres_schema() as url:
        upgrade(url)
        with Database(url) as migrated:
            yield migrated


@pytest.fixture
def log(database: Database) -> AuditLog:
    return AuditLog(database.sessions, SteppingClock())


def _event(
    number: int, actor: AuditActor = ALICE, action: str = AuditAction.USER_UPDATE
) -> AuditEvent:
    return AuditEvent(
        action=action,
        actor=actor,
        outcome=AuditOutcome.SUCCESS,
        object_kind="user",
        object_id=number,
        source_address="192.0.2.10",
        details={"before": {"enabled": True}, "after": {"enabled": False}},
    )


def _fill(log: AuditLog, count: int) -> None:
    log.append_many([_event(number) for number in range(1, count + 1)])


def _drop_guards(engine: Engine) -> None:
    """What an owner of the database can always do: remove the append-only triggers."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))


def _tamper(engine: Engine, *statements: str) -> None:
    _drop_guards(engine)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


# --- an intact chain -----------------------------------------------------------------------


def test_an_intact_chain_verifies_and_exports_its_head(log: AuditLog) -> None:
    assert log.export_head() is None
    _fill(log, 4)
    entry = log.append(_event(5))
    assert entry.sequence == 5
    result = log.verify()
    assert result.intact and result.verified == 5
    head = log.export_head()
    assert head == AuditHead.of(entry) == result.head
    assert log.verify(expected_head=head).intact


def test_entries_read_back_exactly_as_they_were_hashed(log: AuditLog, database: Database) -> None:
    written = log.append(
        AuditEvent(
            action=AuditAction.RECORDING_PLAY,
            actor=BOB,
            outcome=AuditOutcome.SUCCESS,
            object_kind="recording",
            object_id="rec-1",
            source_address="2001:db8::7",
            reason="ticket INC-1042",
            details={"duration_ms": 61_250, "ratio": 0.25, "teams": [3, 4], "note": "Zoë"},
        )
    )
    with database.sessions() as session:
        row = session.get_one(AuditLogRow, written.sequence)
        stored = entry_from_row(row)
    assert stored == written
    assert compute_hash(stored) == written.entry_hash
    assert stored.recorded_at == T0


def test_control_characters_are_stored_encoded(log: AuditLog, database: Database) -> None:
    log.append(
        AuditEvent(
            action=AuditAction.LOGIN_FAILED,
            actor=AuditActor.anonymous(),
            outcome=AuditOutcome.FAILED,
            object_kind="user",
            object_id="mallory\r\n2026-12-01 admin auth.login.succeeded\x1b[2K",
            source_address="203.0.113.9",
            details={"user_agent": "curl\x07\u202e"},
        )
    )
    with database.engine.connect() as connection:
        object_id, details = connection.execute(
            text("SELECT object_id, details FROM audit_log")
        ).one()
    assert object_id == "mallory\\u000d\\u000a2026-12-01 admin auth.login.succeeded\\u001b[2K"
    assert "\x07" not in str(details) and "\\u0007" in str(details)
    found = log.query(
        AuditQuery(object_id="mallory\r\n2026-12-01 admin auth.login.succeeded\x1b[2K"), ALICE
    )
    assert [entry.object_id for entry in found] == [object_id]


# --- tampering -----------------------------------------------------------------------------


def test_the_database_refuses_updates_and_deletes_of_entries(
    log: AuditLog, database: Database
) -> None:
    _fill(log, 2)
    for statement in (
        "UPDATE audit_log SET outcome = 'denied' WHERE sequence = 1",
        "DELETE FROM audit_log WHERE sequence = 2",
    ):
        with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as connection:
            connection.execute(text(statement))
    assert log.verify().verified == 2


def test_an_entry_edited_in_sql_is_named(log: AuditLog, database: Database) -> None:
    _fill(log, 5)
    _tamper(database.engine, "UPDATE audit_log SET actor_name = 'bob' WHERE sequence = 3")
    result = log.verify()
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (3, ChainProblem.EDITED)
    assert result.verified == 2
    assert result.summary() == (
        "audit log broken at entry 3: entry 3 was altered: its content does not match its hash"
    )


def test_edited_details_are_caught(log: AuditLog, database: Database) -> None:
    _fill(log, 3)
    _tamper(
        database.engine,
        """UPDATE audit_log SET details = '{"after": {"enabled": true}}' WHERE sequence = 2""",
    )
    result = log.verify()
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (2, ChainProblem.EDITED)


def test_an_entry_edited_and_rehashed_in_sql_breaks_the_next_link(
    log: AuditLog, database: Database
) -> None:
    _fill(log, 4)
    with database.sessions() as session:
        forged = entry_from_row(session.get_one(AuditLogRow, 2))
    forged_hash = compute_hash(replace(forged, outcome=AuditOutcome.DENIED))
    _tamper(
        database.engine,
        f"UPDATE audit_log SET outcome = 'denied', entry_hash = '{forged_hash}' WHERE sequence = 2",
    )
    result = log.verify()
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (3, ChainProblem.BROKEN_LINK)


def test_a_deleted_entry_is_named(log: AuditLog, database: Database) -> None:
    _fill(log, 5)
    _tamper(database.engine, "DELETE FROM audit_log WHERE sequence = 2")
    result = log.verify()
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (2, ChainProblem.MISSING)
    assert result.broken.message == "entry 2 is missing (deleted): entry 3 follows entry 1"


def test_swapped_entries_are_named_as_reordered(log: AuditLog, database: Database) -> None:
    _fill(log, 5)
    _tamper(
        database.engine,
        "UPDATE audit_log SET sequence = -3 WHERE sequence = 3",
        "UPDATE audit_log SET sequence = 3 WHERE sequence = 4",
        "UPDATE audit_log SET sequence = 4 WHERE sequence = -3",
    )
    result = log.verify()
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (3, ChainProblem.REORDERED)
    assert "now stored as 4" in result.broken.message


def test_a_value_no_entry_can_hold_is_named_as_edited(log: AuditLog, database: Database) -> None:
    _fill(log, 3)
    sqlite = database.engine.dialect.name == "sqlite"
    # SQLite stores whatever it is given; PostgreSQL's types only let a wrong time through.
    value = "'yesterday'" if sqlite else "'1999-01-01T00:00:00Z'"
    _tamper(database.engine, f"UPDATE audit_log SET recorded_at = {value} WHERE sequence = 2")
    result = log.verify()
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (2, ChainProblem.EDITED)
    assert ("cannot be read" in result.broken.message) == sqlite


def test_truncation_is_caught_against_an_exported_head(log: AuditLog, database: Database) -> None:
    _fill(log, 6)
    head = log.export_head()
    assert head is not None
    _tamper(database.engine, "DELETE FROM audit_log WHERE sequence > 4")
    assert log.verify().intact
    result = log.verify(expected_head=head)
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (5, ChainProblem.TRUNCATED)
    _fill(log, 3)  # new entries 5 to 7 reuse the numbers of the removed ones
    rewritten = log.verify(expected_head=head)
    assert rewritten.broken is not None
    assert (rewritten.broken.sequence, rewritten.broken.problem) == (6, ChainProblem.DIVERGED)


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_appends_from_threads_never_fork_the_chain(database: Database) -> None:
    log = AuditLog(database.sessions, SteppingClock())
    threads_count, per_thread = 4, 15
    barrier = threading.Barrier(threads_count)
    sequences: list[list[int]] = [[] for _ in range(threads_count)]

    def work(index: int) -> None:
        actor = AuditActor.user(UserId(index + 1), f"user{index}")
        barrier.wait()
        for number in range(per_thread):
            sequences[index].append(log.append(_event(number, actor)).sequence)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = threads_count * per_thread
    assert sorted(itertools.chain.from_iterable(sequences)) == list(range(1, total + 1))
    result = log.verify()
    assert result.intact and result.verified == total


# --- reading is audited --------------------------------------------------------------------


def test_reading_appends_an_audit_read_entry(log: AuditLog) -> None:
    _fill(log, 3)
    filters = AuditQuery(action_prefix="user", object_kind="user", object_id="2", limit=10)
    found = log.query(filters, BOB, source_address="192.0.2.44")
    assert [entry.sequence for entry in found] == [2]
    read = log.query(AuditQuery(action_prefix="audit.read"), AuditActor.system())
    assert len(read) == 1
    assert (read[0].sequence, read[0].action, read[0].actor, read[0].object_kind) == (
        4,
        "audit.read",
        BOB,
        "audit_log",
    )
    assert read[0].source_address == "192.0.2.44"
    assert read[0].details == {
        "filters": {"action_prefix": "user", "object_kind": "user", "object_id": "2"},
        "sort": "sequence",
        "descending": True,
        "limit": 10,
        "offset": 0,
        "returned": 1,
    }
    assert log.verify().verified == 5


def test_query_filters_sort_and_pages(log: AuditLog) -> None:
    log.append_many(
        [
            _event(1, ALICE, AuditAction.LOGIN_SUCCEEDED),
            _event(2, BOB, AuditAction.LOGIN_FAILED),
            _event(3, ALICE, AuditAction.USER_UPDATE),
            _event(4, BOB, AuditAction.LOGOUT),
        ]
    )
    log.append(_event(5, BOB, AuditAction.SESSION_ENDED))  # one second later than the batch
    reader = AuditActor.system()

    def sequences(query: AuditQuery) -> list[int]:
        return [
            entry.sequence for entry in log.query(query, reader) if entry.action != "audit.read"
        ]

    assert sequences(AuditQuery(action_prefix="auth.login")) == [2, 1]
    assert sequences(AuditQuery(action_prefix="auth.", descending=False)) == [1, 2, 4, 5]
    assert sequences(AuditQuery(actor_user_id=BOB.user_id, descending=False)) == [2, 4, 5]
    assert sequences(AuditQuery(actor_name="alice")) == [3, 1]
    assert sequences(AuditQuery(since=T0 + timedelta(seconds=1))) == [5]
    assert sequences(AuditQuery(until=T0 + timedelta(seconds=1), descending=False)) == [1, 2, 3, 4]
    by_action = AuditQuery(action_prefix="auth.", sort="action", descending=False, limit=2)
    assert sequences(by_action) == [2, 1]
    assert sequences(replace(by_action, offset=2)) == [4, 5]
    assert sequences(AuditQuery(action_prefix="auth_")) == []


def test_injection_strings_in_text_filters_match_nothing(log: AuditLog) -> None:
    _fill(log, 2)
    for hostile in ("' OR 1=1--", "%", "alice' --", "1; DROP TABLE audit_log"):
        assert log.query(AuditQuery(actor_name=hostile, object_id=hostile), ALICE) == []
    with pytest.raises(ValidationFailed):
        AuditQuery(sort="sequence desc; DELETE FROM audit_log")
    assert log.verify().verified == 6


# --- the async writer ----------------------------------------------------------------------


async def test_async_appends_are_chained_in_order_of_arrival(log: AuditLog) -> None:
    writer = AuditWriter(log, max_batch=16)
    writer.start()
    entries = await asyncio.gather(*(writer.append(_event(number)) for number in range(1, 41)))
    await writer.close()
    assert [entry.sequence for entry in entries] == list(range(1, 41))
    assert [entry.object_id for entry in entries] == [str(number) for number in range(1, 41)]
    assert log.verify().verified == 40
    with pytest.raises(AuditUnavailable, match="closed"):
        await writer.append(_event(41))


async def test_a_waiting_append_leaves_the_event_loop_free(
    log: AuditLog, database: Database
) -> None:
    writer = AuditWriter(log)
    writer.start()
    holder = database.sessions()
    holder.connection(execution_options=WRITE_TRANSACTION)
    lock_chain(holder)  # another writer holds the chain lock
    append = asyncio.ensure_future(writer.append(_event(1)))
    for _ in range(20):  # the loop keeps turning while the append waits for the lock
        await asyncio.sleep(0.005)
    assert not append.done()
    holder.rollback()
    holder.close()
    entry = await asyncio.wait_for(append, timeout=10)
    await writer.close()
    assert entry.sequence == 1


async def test_a_failed_write_reaches_the_caller(tmp_path: Path) -> None:
    with Database(temporary_sqlite_url(tmp_path)) as unmigrated:
        writer = AuditWriter(AuditLog(unmigrated.sessions, SteppingClock()))
        writer.start()
        with pytest.raises(AuditUnavailable, match="could not be written"):
            await writer.append(_event(1))
        await writer.close()
        assert writer.failed == 1


async def test_a_full_queue_refuses_at_once() -> None:
    writer = AuditWriter(AuditLog(lambda: pytest.fail("never written")), max_pending=1)
    first = writer.submit(_event(1))
    with pytest.raises(AuditUnavailable, match="not keeping up"):
        writer.submit(_event(2))
    await writer.close()
    with pytest.raises(AuditUnavailable, match="closed"):
        first.result(timeout=1)


def test_appends_inside_a_caller_transaction_commit_with_it(database: Database) -> None:
    clock = SteppingClock()
    with database.sessions() as session:
        session.connection(execution_options=WRITE_TRANSACTION)
        append(session, _event(1), clock)
        session.rollback()
    with database.sessions() as session, session.begin():
        session.connection(execution_options=WRITE_TRANSACTION)
        entry = append(session, _event(2), clock)
    assert entry.sequence == 1
    with database.sessions() as session:
        assert session.scalars(select(AuditLogRow.object_id)).all() == ["2"]
