"""Searching recordings: the filters, keyset pages, and the query filtered by list scopes.

Results are newest first, ordered by (started_at, id) descending, so a page's cursor is the
last row's pair and the next page starts strictly after it: stable under concurrent inserts,
and as cheap at page 1,000 as at page 1. Every listed scope (`domain.policy.ListScope`) must
admit a row; a scope admitting nothing gives an empty page without a query.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from callwarden.domain.cdr import CallDirection
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import QueueId, TeamId, UserId
from callwarden.domain.policy import ListScope
from callwarden.recording.models import RecordingStatus, normalise_tag
from callwarden.store.schema import RecordingRow, RecordingTagRow

MAX_PAGE_SIZE = 200
MAX_TAGS = 10

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results; `next_cursor` is None on the last page."""

    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True, kw_only=True)
class RecordingQuery:
    """Filters of a recordings search; every filter given must hold.

    `since` is inclusive and `until` exclusive, both on `started_at`. `caller_number` matches
    one number exactly (after normalisation). `tags` must all be on a recording. `incomplete`
    True keeps only INCOMPLETE recordings, False leaves them out. Purged recordings are left
    out unless `include_purged`.
    """

    since: datetime | None = None
    until: datetime | None = None
    queue_id: QueueId | None = None
    team_id: TeamId | None = None
    operator_id: UserId | None = None
    caller_number: str | None = None
    direction: CallDirection | None = None
    min_duration_ms: int | None = None
    max_duration_ms: int | None = None
    tags: tuple[str, ...] = field(default=())
    has_pauses: bool | None = None
    monitored: bool | None = None
    incomplete: bool | None = None
    include_purged: bool = False
    limit: int = 50
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise ValidationFailed(
                f"limit must be between 1 and {MAX_PAGE_SIZE}", details={"field": "limit"}
            )
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValidationFailed(f"{name} must be timezone-aware", details={"field": name})
        for name in ("min_duration_ms", "max_duration_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValidationFailed(f"{name} is negative", details={"field": name})
        if len(self.tags) > MAX_TAGS:
            raise ValidationFailed(f"at most {MAX_TAGS} tags", details={"field": "tags"})
        object.__setattr__(self, "tags", tuple(normalise_tag(tag) for tag in self.tags))
        if self.cursor is not None:
            decode_cursor(self.cursor)


def encode_cursor(started_at: datetime, recording_id: str) -> str:
    text = f"{started_at.isoformat()}|{recording_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (started_at, id) a cursor names; a malformed cursor is a validation error."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
        stamp, separator, recording_id = text.partition("|")
        started_at = datetime.fromisoformat(stamp)
    except (ValueError, UnicodeError, binascii.Error):
        raise ValidationFailed("invalid cursor", details={"field": "cursor"}) from None
    if not separator or not recording_id or started_at.utcoffset() is None:
        raise ValidationFailed("invalid cursor", details={"field": "cursor"})
    return started_at, recording_id


def scope_condition(scope: ListScope) -> ColumnElement[bool]:
    """Rows `scope` admits: all, or the owner's (operator) and the scope's teams'."""
    if scope.everything:
        return true()
    conditions: list[ColumnElement[bool]] = []
    if scope.owner_id is not None:
        conditions.append(RecordingRow.operator_id == scope.owner_id)
    if scope.team_ids:
        conditions.append(RecordingRow.team_id.in_(sorted(scope.team_ids)))
    return or_(*conditions) if conditions else false()


def _filters(query: RecordingQuery, caller_digest: str | None) -> list[ColumnElement[bool]]:
    row = RecordingRow
    equal = {
        row.queue_id: query.queue_id,
        row.team_id: query.team_id,
        row.operator_id: query.operator_id,
        row.direction: query.direction,
        row.has_pauses: query.has_pauses,
        row.monitored: query.monitored,
    }
    conditions: list[ColumnElement[bool]] = [
        column == value for column, value in equal.items() if value is not None
    ]
    if query.since is not None:
        conditions.append(row.started_at >= query.since)
    if query.until is not None:
        conditions.append(row.started_at < query.until)
    if query.caller_number is not None:
        conditions.append(row.caller_number_hmac == caller_digest)
    if query.min_duration_ms is not None:
        conditions.append(row.duration_ms >= query.min_duration_ms)
    if query.max_duration_ms is not None:
        conditions.append(row.duration_ms <= query.max_duration_ms)
    if query.incomplete is True:
        conditions.append(row.status == RecordingStatus.INCOMPLETE.value)
    elif query.incomplete is False:
        conditions.append(row.status != RecordingStatus.INCOMPLETE.value)
    if not query.include_purged:
        conditions.append(row.status != RecordingStatus.PURGED.value)
    for tag in query.tags:
        tagged = select(RecordingTagRow.recording_id).where(
            RecordingTagRow.recording_id == row.id, RecordingTagRow.tag == tag
        )
        conditions.append(tagged.exists())
    return conditions


def search_rows(
    session: Session,
    query: RecordingQuery,
    scopes: Sequence[ListScope],
    caller_digest: str | None,
) -> tuple[list[RecordingRow], str | None]:
    """One page of rows matching `query` that every scope admits, and the next page's cursor."""
    if any(scope.nothing for scope in scopes):
        return [], None
    conditions = _filters(query, caller_digest)
    conditions.extend(scope_condition(scope) for scope in scopes)
    if query.cursor is not None:
        started_at, last_id = decode_cursor(query.cursor)
        conditions.append(
            or_(
                RecordingRow.started_at < started_at,
                and_(RecordingRow.started_at == started_at, RecordingRow.id < last_id),
            )
        )
    statement = (
        select(RecordingRow)
        .where(*conditions)
        .order_by(RecordingRow.started_at.desc(), RecordingRow.id.desc())
        .limit(query.limit + 1)
    )
    rows = list(session.scalars(statement))
    if len(rows) <= query.limit:
        return rows, None
    rows = rows[: query.limit]
    return rows, encode_cursor(rows[-1].started_at, rows[-1].id)
