"""The ACD's event history (`acd_events`, revision 0009): rows in the bus's wire form.

The store knows nothing of the event classes: `StoredAcdEvent` is the row's selecting columns
and the encoded `body`; `callwarden.acd.history` encodes and decodes them with the node's
`EventCodec`. Rows are read in the order they were written (`id`), which on one node is the
order the engine published them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from callwarden.domain.errors import ValidationFailed
from callwarden.store.schema import AcdEventRow

__all__ = ["AcdEventRepository", "StoredAcdEvent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredAcdEvent:
    at: datetime
    kind: str
    body: str
    team_id: int | None = None
    user_id: int | None = None
    queue_id: int | None = None
    call_id: str | None = None


def _aware(name: str, value: datetime) -> None:
    if value.utcoffset() is None:
        raise ValidationFailed(f"{name} must be timezone-aware", details={"field": name})


def _stored(row: AcdEventRow) -> StoredAcdEvent:
    return StoredAcdEvent(
        at=row.at,
        kind=row.kind,
        body=row.body,
        team_id=row.team_id,
        user_id=row.user_id,
        queue_id=row.queue_id,
        call_id=row.call_id,
    )


class AcdEventRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def append_many(self, events: Iterable[StoredAcdEvent]) -> int:
        """Write `events` in order (the caller commits); returns how many."""
        events = list(events)
        for event in events:
            _aware("at", event.at)
        rows = [
            {
                "at": event.at,
                "kind": event.kind,
                "body": event.body,
                "team_id": event.team_id,
                "user_id": event.user_id,
                "queue_id": event.queue_id,
                "call_id": event.call_id,
            }
            for event in events
        ]
        if rows:
            self._session.execute(insert(AcdEventRow), rows)
        return len(rows)

    def between(self, since: datetime, until: datetime) -> Sequence[StoredAcdEvent]:
        """The events with `since` <= at < `until`, in the order they were written."""
        _aware("since", since)
        _aware("until", until)
        statement = (
            select(AcdEventRow)
            .where(AcdEventRow.at >= since, AcdEventRow.at < until)
            .order_by(AcdEventRow.at, AcdEventRow.id)
        )
        return [_stored(row) for row in self._session.scalars(statement)]

    def latest_before(self, kind: str, before: datetime) -> Sequence[StoredAcdEvent]:
        """For each user, their last event of `kind` before `before` (what an agent's state
        was when a report's period starts)."""
        _aware("before", before)
        last = (
            select(func.max(AcdEventRow.id).label("id"))
            .where(
                AcdEventRow.kind == kind,
                AcdEventRow.at < before,
                AcdEventRow.user_id.is_not(None),
            )
            .group_by(AcdEventRow.user_id)
            .subquery()
        )
        statement = (
            select(AcdEventRow)
            .join(last, AcdEventRow.id == last.c.id)
            .order_by(AcdEventRow.at, AcdEventRow.id)
        )
        return [_stored(row) for row in self._session.scalars(statement)]

    def count_before(self, before: datetime) -> int:
        """How many events happened before `before`."""
        _aware("before", before)
        statement = select(func.count()).select_from(AcdEventRow).where(AcdEventRow.at < before)
        return int(self._session.scalar(statement) or 0)

    def delete_before(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` of the events before `before`, oldest first (the caller
        commits); returns how many."""
        _aware("before", before)
        if limit < 1:
            raise ValidationFailed("limit must be at least 1", details={"field": "limit"})
        ids = list(
            self._session.scalars(
                select(AcdEventRow.id)
                .where(AcdEventRow.at < before)
                .order_by(AcdEventRow.id)
                .limit(limit)
            )
        )
        if ids:
            self._session.execute(delete(AcdEventRow).where(AcdEventRow.id.in_(ids)))
        return len(ids)
