"""The disposition codes the provisioning file lists and each call's disposition, in the
configuration store (tables `disposition_codes` and `call_dispositions`, migration 0008).

Synchronous: the routes run these in a worker thread (`asyncio.to_thread`). A change and its
audit entry are written in one transaction: no disposition is stored unaudited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callwarden.domain.ids import TeamId, UserId
from callwarden.security import audit
from callwarden.security.audit import AuditEvent
from callwarden.security.clock import Clock
from callwarden.store.database import WRITE_TRANSACTION
from callwarden.store.schema import CallDispositionRow, DispositionCodeRow

NOTE_LIMIT = 1000
"""The longest note, in characters (the column's length)."""


@dataclass(frozen=True)
class DispositionCode:
    code: str
    label_ja: str
    label_en: str

    def label(self, language: str) -> str:
        return self.label_ja if language == "ja" else self.label_en


@dataclass(frozen=True)
class CallDisposition:
    """A call's disposition as its operator last set it."""

    call_id: str
    user_id: UserId | None
    team_id: TeamId | None
    code: str
    note: str
    updated_at: datetime


def _disposition(row: CallDispositionRow) -> CallDisposition:
    return CallDisposition(
        call_id=row.call_id,
        user_id=None if row.user_id is None else UserId(row.user_id),
        team_id=None if row.team_id is None else TeamId(row.team_id),
        code=row.code,
        note=row.note,
        updated_at=row.updated_at,
    )


class DispositionStore:
    """Reads the codes; reads and writes calls' dispositions (one unit of work per call)."""

    def __init__(self, database: Callable[[], Session]) -> None:
        self._database = database

    def codes(self) -> tuple[DispositionCode, ...]:
        with self._database() as session:
            rows = session.scalars(select(DispositionCodeRow).order_by(DispositionCodeRow.position))
            return tuple(DispositionCode(row.code, row.label_ja, row.label_en) for row in rows)

    def of_call(self, call_id: str) -> CallDisposition | None:
        with self._database() as session:
            row = session.get(CallDispositionRow, call_id)
            return None if row is None else _disposition(row)

    def save(
        self,
        disposition: CallDisposition,
        audit_event: Callable[[CallDisposition | None], AuditEvent],
        clock: Clock,
    ) -> None:
        """Stores `disposition` (replacing the call's earlier one) and appends the audit entry
        `audit_event(the one replaced)` in the same transaction."""
        with self._database() as session:
            session.connection(execution_options=WRITE_TRANSACTION)
            row = session.get(CallDispositionRow, disposition.call_id)
            before = None if row is None else _disposition(row)
            if row is None:
                row = CallDispositionRow(call_id=disposition.call_id)
                session.add(row)
            row.user_id = disposition.user_id
            row.team_id = disposition.team_id
            row.code = disposition.code
            row.note = disposition.note
            row.updated_at = disposition.updated_at
            session.flush()
            audit.append(session, audit_event(before), clock)
            session.commit()
