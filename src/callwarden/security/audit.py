"""The audit trail: an append-only, hash-chained log of every sensitive act.

Each entry records who acted, what they did, to which object, from which address, when, with
what outcome, and why (a reason is required for acts that expose customer audio). Each entry
carries the hash of the one before it, so an edited, deleted or moved entry breaks the chain
at that point, and `verify` names it; a head exported with `export_head` and kept elsewhere
also catches entries removed from the end. Reading the log is itself logged (`query`).

The parts: `audit_model` (events, entries, actors, action names, the reason rule),
`audit_text` (encoding of control characters), `audit_chain` (canonical form, hashing,
verification), `audit_store` (SQL and the chain lock), `audit_query` (filters),
`audit_writer` (appends from async code, off the event loop). docs/audit.md says it for people.

Functions taking a `Session` work inside the caller's transaction and never commit; `AuditLog`
runs each operation in a transaction of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from callwarden.security.audit_chain import (
    AuditHead,
    ChainBreak,
    ChainProblem,
    ChainVerifier,
    VerifyResult,
    canonical_bytes,
    chain_fields,
    compute_hash,
)
from callwarden.security.audit_model import (
    REASON_REQUIRED,
    ActorKind,
    AuditAction,
    AuditActor,
    AuditEntry,
    AuditEvent,
    AuditOutcome,
    AuditUnavailable,
    Clock,
    SystemClock,
    require_reason,
)
from callwarden.security.audit_query import MAX_PAGE_SIZE, SORT_FIELDS, AuditQuery
from callwarden.security.audit_store import (
    append_events,
    chain_tip,
    entry_from_row,
    iter_entries,
    locate,
    select_entries,
)
from callwarden.store.database import WRITE_TRANSACTION
from callwarden.store.schema import AuditLogRow

__all__ = [
    "MAX_PAGE_SIZE",
    "REASON_REQUIRED",
    "SORT_FIELDS",
    "ActorKind",
    "AuditAction",
    "AuditActor",
    "AuditEntry",
    "AuditEvent",
    "AuditHead",
    "AuditLog",
    "AuditOutcome",
    "AuditQuery",
    "AuditUnavailable",
    "ChainBreak",
    "ChainProblem",
    "Clock",
    "SystemClock",
    "VerifyResult",
    "append",
    "canonical_bytes",
    "chain_fields",
    "compute_hash",
    "export_head",
    "query",
    "require_reason",
    "verify",
]

logger = logging.getLogger(__name__)


def append(session: Session, event: AuditEvent, clock: Clock) -> AuditEntry:
    """Chain one entry inside the caller's transaction (which, on SQLite, must have begun with
    `WRITE_TRANSACTION`); the chain stays locked until that transaction ends."""
    return append_events(session, [event], clock)[0]


def verify(session: Session, *, expected_head: AuditHead | None = None) -> VerifyResult:
    """Recompute the chain from entry 1 and report the first broken entry, if any; with
    `expected_head` (exported earlier), also report a chain that ends before it or differs
    from it. Reads in batches; writes nothing."""
    verifier = ChainVerifier(lambda entry_hash: locate(session, entry_hash))
    for entry in iter_entries(session):
        if not verifier.feed(entry):
            break
    return verifier.finish(expected_head)


def export_head(session: Session) -> AuditHead | None:
    """The newest entry's sequence number, hash and time (None for an empty log). Keep it
    outside the database (`AuditHead.to_json`) and give it to `verify` later."""
    tip = chain_tip(session)
    if tip is None:
        return None
    row = session.get_one(AuditLogRow, tip[0])
    return AuditHead.of(entry_from_row(row))


def query(
    session: Session,
    filters: AuditQuery,
    actor: AuditActor,
    clock: Clock,
    *,
    source_address: str | None = None,
) -> list[AuditEntry]:
    """The entries `filters` select, and an `audit.read` entry saying who read which, appended
    in the caller's transaction (begun with `WRITE_TRANSACTION` on SQLite). Deciding whether
    `actor` may read the log (permission `audit.view`) is the caller's job, done before."""
    entries = select_entries(session, filters.statement())
    details = {**filters.as_details(), "returned": len(entries)}
    read = AuditEvent(
        action=AuditAction.AUDIT_READ,
        actor=actor,
        outcome=AuditOutcome.SUCCESS,
        object_kind="audit_log",
        source_address=source_address,
        details=details,
    )
    append_events(session, [read], clock)
    return entries


class AuditLog:
    """The audit log over a session factory: each call is one transaction of its own."""

    def __init__(self, sessions: Callable[[], Session], clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock: Clock = clock if clock is not None else SystemClock()

    @property
    def clock(self) -> Clock:
        return self._clock

    def append(self, event: AuditEvent) -> AuditEntry:
        """Write one entry and commit (blocking: from async code use `AuditWriter`)."""
        return self.append_many([event])[0]

    def append_many(self, events: Sequence[AuditEvent]) -> list[AuditEntry]:
        """Write `events` as consecutive entries in one transaction."""
        with self._sessions() as session, session.begin():
            session.connection(execution_options=WRITE_TRANSACTION)
            return append_events(session, events, self._clock)

    def query(
        self, filters: AuditQuery, actor: AuditActor, *, source_address: str | None = None
    ) -> list[AuditEntry]:
        """See `query`: the page of entries, the read itself logged in the same transaction."""
        with self._sessions() as session, session.begin():
            session.connection(execution_options=WRITE_TRANSACTION)
            return query(session, filters, actor, self._clock, source_address=source_address)

    def verify(self, expected_head: AuditHead | None = None) -> VerifyResult:
        with self._sessions() as session, session.begin():
            result = verify(session, expected_head=expected_head)
        if not result.intact:
            logger.error("%s", result.summary())
        return result

    def export_head(self) -> AuditHead | None:
        with self._sessions() as session, session.begin():
            return export_head(session)
