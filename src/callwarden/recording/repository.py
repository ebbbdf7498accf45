"""The recordings catalogue in the database: recordings, their pauses, tags and notes.

Like the store's repositories, it works inside the caller's `Session` (the unit of work) and
flushes but never commits. Legal holds, retention policies and tombstones are in
`callwarden.recording.holds`; the search query is in `callwarden.recording.search`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from callwarden.domain.errors import InvalidState, NotFound, ValidationFailed
from callwarden.domain.ids import CallId, QueueId, RecordingId, TeamId, UserId
from callwarden.domain.policy import ListScope, Resource, ResourceKind
from callwarden.recording.models import (
    MAX_NOTE_LENGTH,
    NewRecording,
    Note,
    PauseInterval,
    Recording,
    RecordingStatus,
    normalise_tag,
)
from callwarden.recording.numbers import NumberProtector
from callwarden.recording.search import Page, RecordingQuery, search_rows
from callwarden.store.schema import (
    RecordingNoteRow,
    RecordingPauseRow,
    RecordingRow,
    RecordingTagRow,
)

logger = logging.getLogger(__name__)

_CLOSED = (RecordingStatus.COMPLETE, RecordingStatus.INCOMPLETE)


def recording_not_found(recording_id: str) -> NotFound:
    """The one error for a missing recording and for one the caller may not see."""
    return NotFound(f"recording {recording_id} not found", error_id="recording_not_found")


class RecordingRepository:
    """Recordings in the database; `numbers` seals callers' numbers and opens them on read."""

    def __init__(self, session: Session, numbers: NumberProtector) -> None:
        self._session = session
        self._numbers = numbers

    # -- the recorder's side ------------------------------------------------------------

    def create(self, new: NewRecording) -> Recording:
        """A recording that has just started (status RECORDING)."""
        sealed, digest = self._protect(new.caller_number)
        row = RecordingRow(
            id=new.recording_id,
            call_id=new.call_id,
            queue_id=new.queue_id,
            team_id=new.team_id,
            operator_id=new.operator_id,
            direction=new.direction,
            caller_number_sealed=sealed,
            caller_number_hmac=digest,
            started_at=new.started_at,
            status=RecordingStatus.RECORDING.value,
            storage_key=new.storage_key,
            kek_id=new.kek_id,
            wrapped_key=new.wrapped_key,
            has_pauses=False,
            monitored=new.monitored,
            node_id=new.node_id,
        )
        self._session.add(row)
        self._session.flush()
        return self._value(row)

    def close(
        self,
        recording_id: RecordingId,
        *,
        status: RecordingStatus,
        ended_at: datetime,
        duration_ms: int,
        manifest_digest: str | None,
        size_bytes: int | None = None,
    ) -> Recording:
        """Close a RECORDING as COMPLETE or INCOMPLETE; a pause still open ends at `ended_at`."""
        if status not in _CLOSED:
            raise ValidationFailed(
                f"a recording is closed as complete or incomplete, not {status.value}"
            )
        if duration_ms < 0:
            raise ValidationFailed("duration_ms is negative", details={"field": "duration_ms"})
        row = self._open_row(recording_id)
        self._end_open_pauses(recording_id, ended_at)
        row.status = status.value
        row.ended_at = ended_at
        row.duration_ms = duration_ms
        row.manifest_digest = manifest_digest
        row.size_bytes = size_bytes
        self._session.flush()
        return self._value(row)

    def mark_failed(
        self, recording_id: RecordingId, reason: str, *, ended_at: datetime | None = None
    ) -> Recording:
        """A recording that stored nothing usable (e.g. its first chunk could not be written)."""
        row = self._open_row(recording_id)
        self._end_open_pauses(recording_id, ended_at or row.started_at)
        row.status = RecordingStatus.FAILED.value
        row.failure_reason = reason[:255]
        row.ended_at = ended_at
        self._session.flush()
        return self._value(row)

    def find_open(self, node_id: str | None = None) -> Sequence[Recording]:
        """Recordings still RECORDING: after a crash, the ones crash recovery must close. With
        `node_id`, only that node's and those no node claims (rows from before revision 0011):
        other nodes' recordings may be live."""
        query = select(RecordingRow).where(RecordingRow.status == RecordingStatus.RECORDING.value)
        if node_id is not None:
            query = query.where(
                or_(RecordingRow.node_id == node_id, RecordingRow.node_id.is_(None))
            )
        query = query.order_by(RecordingRow.started_at, RecordingRow.id)
        return self._values(list(self._session.scalars(query)))

    def pause_started(self, recording_id: RecordingId, at: datetime) -> None:
        """The recorder stopped writing audio at `at` (a second pause while paused is refused)."""
        self._open_row(recording_id)
        if self._open_pause(recording_id) is not None:
            raise InvalidState(
                f"recording {recording_id} is already paused", error_id="already_paused"
            )
        self._session.add(RecordingPauseRow(recording_id=recording_id, started_at=at))
        row = self._row(recording_id)
        row.has_pauses = True
        self._session.flush()

    def pause_ended(self, recording_id: RecordingId, at: datetime) -> None:
        """The recorder writes audio again from `at`."""
        pause = self._open_pause(recording_id)
        if pause is None:
            raise InvalidState(f"recording {recording_id} is not paused", error_id="not_paused")
        pause.ended_at = at
        self._session.flush()

    def mark_monitored(self, recording_id: RecordingId) -> None:
        self._row(recording_id).monitored = True
        self._session.flush()

    # -- reading ----------------------------------------------------------------------

    def get(self, recording_id: RecordingId) -> Recording:
        return self._value(self._row(recording_id))

    def resource_of(self, recording_id: str) -> Resource | None:
        """Who owns the recording and which team it belongs to (for the policy), or None;
        reads two columns, opens nothing."""
        found = self._session.execute(
            select(RecordingRow.operator_id, RecordingRow.team_id).where(
                RecordingRow.id == recording_id
            )
        ).first()
        if found is None:
            return None
        operator_id, team_id = found
        return Resource.of(
            ResourceKind.RECORDING,
            owner=None if operator_id is None else UserId(operator_id),
            team=None if team_id is None else TeamId(team_id),
        )

    def get_many(self, recording_ids: Iterable[RecordingId]) -> Sequence[Recording]:
        query = select(RecordingRow).where(RecordingRow.id.in_(list(recording_ids)))
        return self._values(list(self._session.scalars(query)))

    def search(
        self, query: RecordingQuery, scope: ListScope, *, number_scope: ListScope | None = None
    ) -> Page[Recording]:
        """The recordings matching `query` that `scope` admits, newest first.

        A search by caller number also needs `number_scope` (the principal's `numbers.view`
        list scope) to admit each result: nobody finds a recording by a number they may not
        see on it.
        """
        scopes = [scope]
        digest = None
        if query.caller_number is not None:
            if number_scope is None:
                raise ValidationFailed("a search by number needs the numbers.view scope")
            scopes.append(number_scope)
            digest = self._numbers.digest(query.caller_number)
        rows, next_cursor = search_rows(self._session, query, scopes, digest)
        return Page(items=tuple(self._values(rows)), next_cursor=next_cursor)

    # -- tags and notes -----------------------------------------------------------------

    def add_tag(
        self, recording_id: RecordingId, tag: str, *, by: UserId | None, at: datetime
    ) -> str:
        normalised = normalise_tag(tag)
        self._row(recording_id)
        if self._session.get(RecordingTagRow, (recording_id, normalised)) is None:
            self._session.add(
                RecordingTagRow(recording_id=recording_id, tag=normalised, added_by=by, added_at=at)
            )
            self._session.flush()
        return normalised

    def remove_tag(self, recording_id: RecordingId, tag: str) -> bool:
        """Whether the tag was there."""
        self._row(recording_id)
        row = self._session.get(RecordingTagRow, (recording_id, normalise_tag(tag)))
        if row is None:
            return False
        self._session.delete(row)
        self._session.flush()
        return True

    def add_note(
        self, recording_id: RecordingId, text: str, *, by: UserId | None, at: datetime
    ) -> Note:
        body = text.strip()
        if not body or len(body) > MAX_NOTE_LENGTH:
            raise ValidationFailed(
                f"a note has 1-{MAX_NOTE_LENGTH} characters", details={"field": "text"}
            )
        self._row(recording_id)
        row = RecordingNoteRow(recording_id=recording_id, author_id=by, created_at=at, text=body)
        self._session.add(row)
        self._session.flush()
        return _note(row)

    def notes(self, recording_id: RecordingId) -> Sequence[Note]:
        self._row(recording_id)
        query = (
            select(RecordingNoteRow)
            .where(RecordingNoteRow.recording_id == recording_id)
            .order_by(RecordingNoteRow.created_at, RecordingNoteRow.id)
        )
        return [_note(row) for row in self._session.scalars(query)]

    # -- crypto-shredding ---------------------------------------------------------------

    def destroy_key(self, recording_id: RecordingId) -> Recording:
        """Crypto-shred: drop the wrapped data key, the sealed number, notes, tags and pauses;
        the row stays as PURGED. The file can never be opened again once this commits."""
        row = self._row(recording_id)
        row.wrapped_key = None
        row.kek_id = None
        row.caller_number_sealed = None
        row.caller_number_hmac = None
        row.status = RecordingStatus.PURGED.value
        for table in (RecordingNoteRow, RecordingTagRow, RecordingPauseRow):
            self._session.execute(delete(table).where(table.recording_id == recording_id))
        self._session.flush()
        return self._value(row)

    # -- internals ----------------------------------------------------------------------

    def _protect(self, number: str | None) -> tuple[bytes | None, str | None]:
        if number is None or not number.strip():
            return None, None
        try:
            digest: str | None = self._numbers.digest(number)
        except ValidationFailed:
            digest = None  # not a phone number (e.g. "anonymous"): kept, but not searchable
        return self._numbers.seal(number.strip()), digest

    def _row(self, recording_id: str) -> RecordingRow:
        row = self._session.get(RecordingRow, recording_id)
        if row is None:
            raise recording_not_found(recording_id)
        return row

    def _open_row(self, recording_id: str) -> RecordingRow:
        row = self._row(recording_id)
        if row.status != RecordingStatus.RECORDING.value:
            raise InvalidState(
                f"recording {recording_id} is {row.status}, not recording",
                error_id="recording_not_open",
            )
        return row

    def _open_pause(self, recording_id: str) -> RecordingPauseRow | None:
        query = select(RecordingPauseRow).where(
            RecordingPauseRow.recording_id == recording_id,
            RecordingPauseRow.ended_at.is_(None),
        )
        return self._session.scalar(query)

    def _end_open_pauses(self, recording_id: str, at: datetime) -> None:
        pause = self._open_pause(recording_id)
        if pause is not None:
            pause.ended_at = max(at, pause.started_at)

    def _value(self, row: RecordingRow) -> Recording:
        return self._values([row])[0]

    def _values(self, rows: Sequence[RecordingRow]) -> list[Recording]:
        """Rows to values, loading every row's pauses and tags in one query each."""
        ids = [row.id for row in rows]
        pauses: dict[str, list[PauseInterval]] = {}
        tags: dict[str, list[str]] = {}
        if ids:
            pause_rows = self._session.scalars(
                select(RecordingPauseRow)
                .where(RecordingPauseRow.recording_id.in_(ids))
                .order_by(RecordingPauseRow.started_at, RecordingPauseRow.id)
            )
            for pause in pause_rows:
                pauses.setdefault(pause.recording_id, []).append(
                    PauseInterval(pause.started_at, pause.ended_at)
                )
            tag_rows = self._session.execute(
                select(RecordingTagRow.recording_id, RecordingTagRow.tag)
                .where(RecordingTagRow.recording_id.in_(ids))
                .order_by(RecordingTagRow.tag)
            )
            for recording_id, tag in tag_rows:
                tags.setdefault(recording_id, []).append(tag)
        return [
            self._from_row(row, tuple(pauses.get(row.id, ())), tuple(tags.get(row.id, ())))
            for row in rows
        ]

    def _from_row(
        self, row: RecordingRow, pauses: tuple[PauseInterval, ...], tags: tuple[str, ...]
    ) -> Recording:
        sealed = row.caller_number_sealed
        return Recording(
            id=RecordingId(row.id),
            call_id=CallId(row.call_id),
            queue_id=None if row.queue_id is None else QueueId(row.queue_id),
            team_id=None if row.team_id is None else TeamId(row.team_id),
            operator_id=None if row.operator_id is None else UserId(row.operator_id),
            direction=row.direction,
            caller_number=None if sealed is None else self._numbers.open(sealed),
            started_at=row.started_at,
            ended_at=row.ended_at,
            duration_ms=row.duration_ms,
            status=RecordingStatus(row.status),
            storage_key=row.storage_key,
            kek_id=row.kek_id,
            wrapped_key=row.wrapped_key,
            has_pauses=row.has_pauses,
            monitored=row.monitored,
            manifest_digest=row.manifest_digest,
            size_bytes=row.size_bytes,
            failure_reason=row.failure_reason,
            pauses=pauses,
            tags=tags,
            node_id=row.node_id,
        )


def _note(row: RecordingNoteRow) -> Note:
    return Note(
        id=row.id,
        recording_id=RecordingId(row.recording_id),
        author_id=None if row.author_id is None else UserId(row.author_id),
        created_at=row.created_at,
        text=row.text,
    )
