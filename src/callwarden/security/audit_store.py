"""The audit log in the database: appending under the chain lock, reading, locating hashes.

Appends are serialised so the chain never forks: the appending transaction holds the chain lock
from before it reads the newest entry until it commits. On SQLite that lock is the database
write lock, taken when the transaction begins (`WRITE_TRANSACTION`, BEGIN IMMEDIATE); a caller
appending inside its own transaction must begin it that way. On PostgreSQL it is a
transaction-scoped advisory lock keyed by the table's oid (it needs no privilege on the table,
so the application's role can be limited to SELECT and INSERT). Should the lock ever be
bypassed, the primary key on `sequence` refuses the second entry of a sequence number: a write
fails, the chain does not fork.

Every function works inside the caller's session and never commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from callwarden.domain.ids import UserId
from callwarden.security.audit_chain import GENESIS_HASH, UnreadableEntry, seal
from callwarden.security.audit_model import (
    ActorKind,
    AuditActor,
    AuditEntry,
    AuditEvent,
    AuditOutcome,
    Clock,
)
from callwarden.store.schema import AuditLogRow

ADVISORY_LOCK_CLASS = 0x43574144
"""The first key of the PostgreSQL advisory lock ("CWAD"); the second is the table's oid."""

READ_BATCH = 1000


def lock_chain(session: Session) -> None:
    """Take the chain lock for the rest of the session's transaction (see the module doc)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:lock_class, 'audit_log'::regclass::oid::integer)"),
            {"lock_class": ADVISORY_LOCK_CLASS},
        )


def chain_tip(session: Session) -> tuple[int, str] | None:
    """The newest entry's sequence number and hash, or None for an empty log."""
    row = session.execute(
        select(AuditLogRow.sequence, AuditLogRow.entry_hash)
        .order_by(AuditLogRow.sequence.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else (row.sequence, row.entry_hash)


def append_events(session: Session, events: Sequence[AuditEvent], clock: Clock) -> list[AuditEntry]:
    """Chain `events` after the newest entry, in order, all at the time the lock was taken;
    flushed, not committed."""
    if not events:
        return []
    encoded = [event.encoded() for event in events]
    lock_chain(session)
    recorded_at = clock.now()
    tip = chain_tip(session)
    sequence, previous_hash = (0, GENESIS_HASH) if tip is None else tip
    entries: list[AuditEntry] = []
    for event in encoded:
        sequence += 1
        entry = seal(event, sequence=sequence, recorded_at=recorded_at, previous_hash=previous_hash)
        entries.append(entry)
        previous_hash = entry.entry_hash
    session.add_all([_row(entry) for entry in entries])
    session.flush()
    return entries


def _row(entry: AuditEntry) -> AuditLogRow:
    return AuditLogRow(
        sequence=entry.sequence,
        recorded_at=entry.recorded_at,
        actor_kind=entry.actor.kind.value,
        actor_user_id=entry.actor.user_id,
        actor_name=entry.actor.name,
        action=entry.action,
        object_kind=entry.object_kind,
        object_id=entry.object_id,
        outcome=entry.outcome.value,
        source_address=entry.source_address,
        reason=entry.reason,
        details=dict(entry.details),
        previous_hash=entry.previous_hash,
        entry_hash=entry.entry_hash,
        format_version=entry.format_version,
    )


def entry_from_row(row: Any) -> AuditEntry:
    """An entry from a row (ORM or core) with the audit_log columns."""
    kind = ActorKind(row.actor_kind)
    user_id = None if row.actor_user_id is None else UserId(row.actor_user_id)
    return AuditEntry(
        sequence=row.sequence,
        recorded_at=row.recorded_at,
        actor=AuditActor(kind=kind, name=row.actor_name, user_id=user_id),
        action=row.action,
        object_kind=row.object_kind,
        object_id=row.object_id,
        outcome=AuditOutcome(row.outcome),
        source_address=row.source_address,
        reason=row.reason,
        details=row.details,
        previous_hash=row.previous_hash,
        entry_hash=row.entry_hash,
        format_version=row.format_version,
    )


UNREADABLE_ERRORS = (ValueError, TypeError, KeyError)
"""What reading a row raises when a stored value is not what its column type can hold (an
entry edited behind the application's back, e.g. a time that is no time)."""


def iter_entries(session: Session, *, after: int = 0) -> Iterator[AuditEntry | UnreadableEntry]:
    """Every entry after sequence `after`, in sequence order, read in batches of plain rows
    (nothing accumulates in the session, so memory stays bounded however long the log). An
    entry that cannot be read is yielded as `UnreadableEntry`, and the walk ends there."""
    table = AuditLogRow.__table__
    while True:
        statement = (
            select(table)
            .where(table.c.sequence > after)
            .order_by(table.c.sequence)
            .limit(READ_BATCH)
        )
        try:
            batch = [entry_from_row(row) for row in session.execute(statement)]
        except UNREADABLE_ERRORS:
            yield from _one_by_one(session, after)
            return
        if not batch:
            return
        yield from batch
        after = batch[-1].sequence


def _one_by_one(session: Session, after: int) -> Iterator[AuditEntry | UnreadableEntry]:
    """Read a batch that failed entry by entry, up to and including the unreadable one."""
    table = AuditLogRow.__table__
    sequences = session.scalars(
        select(table.c.sequence)
        .where(table.c.sequence > after)
        .order_by(table.c.sequence)
        .limit(READ_BATCH)
    ).all()
    for sequence in sequences:
        try:
            row = session.execute(select(table).where(table.c.sequence == sequence)).one()
            entry = entry_from_row(row)
        except UNREADABLE_ERRORS as error:
            yield UnreadableEntry(sequence=sequence, problem=f"{type(error).__name__}: {error}")
            return
        yield entry


def locate(session: Session, entry_hash: str) -> int | None:
    """The sequence number of the entry stored with `entry_hash`, if any."""
    return session.scalar(select(AuditLogRow.sequence).where(AuditLogRow.entry_hash == entry_hash))


def select_entries(session: Session, statement: Select[AuditLogRow]) -> list[AuditEntry]:
    """The entries `statement` selects, as values."""
    return [entry_from_row(row) for row in session.scalars(statement)]
