"""What keeps recordings and what is left when they go: legal holds, retention policies and
tombstones, in the database (inside the caller's `Session`; flush, never commit).

A legal hold is never deleted: releasing it records who, when and why, and a released hold no
longer protects anything. There is no cap on how many holds exist; the purge asks for the
active holds that name one batch of recordings at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from callwarden.domain.errors import InvalidState, NotFound, ValidationFailed
from callwarden.domain.ids import CallId, QueueId, RecordingId, TeamId, UserId
from callwarden.recording.models import (
    HoldTargetKind,
    LegalHold,
    Recording,
    RetentionPolicy,
    RetentionScope,
    Tombstone,
    TombstoneKind,
    require_reason,
)
from callwarden.store.schema import (
    CDR_TEXT_LENGTH,
    LegalHoldRow,
    RecordingRow,
    RecordingTombstoneRow,
    RetentionPolicyRow,
)

MAX_ID = 2**31 - 1


class LegalHoldRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def place(
        self,
        target_kind: HoldTargetKind,
        target_id: str,
        reason: str,
        *,
        by: UserId | None,
        at: datetime,
    ) -> LegalHold:
        """A new active hold; whether the target exists is the caller's check.

        The recordings it names are locked first (PostgreSQL; SQLite serialises writers), so a
        deletion running at the same moment either finishes before the hold exists or sees it.
        """
        if not target_id or len(target_id) > CDR_TEXT_LENGTH:
            raise ValidationFailed("invalid hold target", details={"field": "target_id"})
        self._lock_recordings(target_kind, target_id)
        row = LegalHoldRow(
            target_kind=target_kind.value,
            target_id=target_id,
            reason=require_reason(reason),
            placed_by=by,
            placed_at=at,
        )
        self._session.add(row)
        self._session.flush()
        return _hold(row)

    def _lock_recordings(self, target_kind: HoldTargetKind, target_id: str) -> None:
        column = {
            HoldTargetKind.RECORDING: RecordingRow.id,
            HoldTargetKind.CALL: RecordingRow.call_id,
            HoldTargetKind.USER: RecordingRow.operator_id,
            HoldTargetKind.QUEUE: RecordingRow.queue_id,
        }[target_kind]
        value: str | int = target_id
        if target_kind in (HoldTargetKind.USER, HoldTargetKind.QUEUE):
            if not (target_id.isascii() and target_id.isdigit()) or int(target_id) > MAX_ID:
                raise ValidationFailed(
                    f"a {target_kind.value} is named by its numeric id",
                    details={"field": "target_id"},
                )
            value = int(target_id)
        self._session.execute(select(RecordingRow.id).where(column == value).with_for_update())

    def release(self, hold_id: int, reason: str, *, by: UserId | None, at: datetime) -> LegalHold:
        row = self._session.get(LegalHoldRow, hold_id)
        if row is None:
            raise NotFound(f"legal hold {hold_id} not found", error_id="legal_hold_not_found")
        if row.released_at is not None:
            raise InvalidState(
                f"legal hold {hold_id} is already released", error_id="legal_hold_released"
            )
        row.release_reason = require_reason(reason)
        row.released_at = at
        row.released_by = by
        self._session.flush()
        return _hold(row)

    def get(self, hold_id: int) -> LegalHold:
        row = self._session.get(LegalHoldRow, hold_id)
        if row is None:
            raise NotFound(f"legal hold {hold_id} not found", error_id="legal_hold_not_found")
        return _hold(row)

    def list(self, *, active_only: bool = True) -> Sequence[LegalHold]:
        query = select(LegalHoldRow).order_by(LegalHoldRow.placed_at, LegalHoldRow.id)
        if active_only:
            query = query.where(LegalHoldRow.released_at.is_(None))
        return [_hold(row) for row in self._session.scalars(query)]

    def active_for(self, recordings: Iterable[Recording]) -> Sequence[LegalHold]:
        """The active holds naming any of `recordings`, their calls, operators or queues."""
        targets: dict[HoldTargetKind, set[str]] = {kind: set() for kind in HoldTargetKind}
        for recording in recordings:
            targets[HoldTargetKind.RECORDING].add(recording.id)
            targets[HoldTargetKind.CALL].add(recording.call_id)
            if recording.operator_id is not None:
                targets[HoldTargetKind.USER].add(str(recording.operator_id))
            if recording.queue_id is not None:
                targets[HoldTargetKind.QUEUE].add(str(recording.queue_id))
        conditions: list[ColumnElement[bool]] = [
            and_(LegalHoldRow.target_kind == kind.value, LegalHoldRow.target_id.in_(sorted(ids)))
            for kind, ids in targets.items()
            if ids
        ]
        if not conditions:
            return []
        query = (
            select(LegalHoldRow)
            .where(LegalHoldRow.released_at.is_(None), or_(*conditions))
            .order_by(LegalHoldRow.id)
        )
        return [_hold(row) for row in self._session.scalars(query)]


def _hold(row: LegalHoldRow) -> LegalHold:
    return LegalHold(
        id=row.id,
        target_kind=HoldTargetKind(row.target_kind),
        target_id=row.target_id,
        reason=row.reason,
        placed_by=None if row.placed_by is None else UserId(row.placed_by),
        placed_at=row.placed_at,
        released_at=row.released_at,
        released_by=None if row.released_by is None else UserId(row.released_by),
        release_reason=row.release_reason,
    )


class RetentionPolicyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def list(self) -> Sequence[RetentionPolicy]:
        query = select(RetentionPolicyRow).order_by(RetentionPolicyRow.id)
        return [_policy(row) for row in self._session.scalars(query)]

    def set(self, policy: RetentionPolicy, *, by: UserId | None, at: datetime) -> RetentionPolicy:
        """Create or replace the policy of the default, a team or a queue."""
        row = self._session.scalar(_policy_query(policy.scope, policy.team_id, policy.queue_id))
        if row is None:
            row = RetentionPolicyRow(
                scope=policy.scope.value, team_id=policy.team_id, queue_id=policy.queue_id
            )
            self._session.add(row)
        row.days = policy.days
        row.updated_at = at
        row.updated_by = by
        self._session.flush()
        return _policy(row)

    def remove(
        self,
        scope: RetentionScope,
        *,
        team_id: TeamId | None = None,
        queue_id: QueueId | None = None,
    ) -> bool:
        """Whether such a policy existed."""
        row = self._session.scalar(_policy_query(scope, team_id, queue_id))
        if row is None:
            return False
        self._session.delete(row)
        self._session.flush()
        return True


def _policy_query(
    scope: RetentionScope, team_id: TeamId | None, queue_id: QueueId | None
) -> Select[RetentionPolicyRow]:
    row = RetentionPolicyRow
    query = select(row).where(row.scope == scope.value)
    if scope is RetentionScope.TEAM:
        query = query.where(row.team_id == team_id)
    elif scope is RetentionScope.QUEUE:
        query = query.where(row.queue_id == queue_id)
    return query


def _policy(row: RetentionPolicyRow) -> RetentionPolicy:
    return RetentionPolicy(
        scope=RetentionScope(row.scope),
        days=row.days,
        team_id=None if row.team_id is None else TeamId(row.team_id),
        queue_id=None if row.queue_id is None else QueueId(row.queue_id),
    )


class TombstoneRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        recording: Recording,
        *,
        kind: TombstoneKind,
        rule: str,
        retention_days: int | None,
        reason: str | None,
        actor_user_id: UserId | None,
        actor_name: str,
        at: datetime,
    ) -> Tombstone:
        if self._session.get(RecordingTombstoneRow, recording.id) is not None:
            raise InvalidState(
                f"recording {recording.id} is already purged", error_id="recording_purged"
            )
        row = RecordingTombstoneRow(
            recording_id=recording.id,
            call_id=recording.call_id,
            kind=kind.value,
            rule=rule,
            retention_days=retention_days,
            reason=reason,
            actor_user_id=actor_user_id,
            actor_name=actor_name,
            purged_at=at,
            storage_key=recording.storage_key,
        )
        self._session.add(row)
        self._session.flush()
        return _tombstone(row)

    def get(self, recording_id: RecordingId) -> Tombstone | None:
        row = self._session.get(RecordingTombstoneRow, recording_id)
        return None if row is None else _tombstone(row)

    def unfinished(
        self, limit: int, *, after: tuple[datetime, str] | None = None
    ) -> Sequence[Tombstone]:
        """Tombstones whose file is not yet deleted or whose audit entry is not yet written,
        oldest first; `after` (purged_at, recording id) continues from a previous page."""
        row = RecordingTombstoneRow
        conditions = [or_(row.file_deleted_at.is_(None), row.audited_at.is_(None))]
        if after is not None:
            conditions.append(
                or_(
                    row.purged_at > after[0],
                    and_(row.purged_at == after[0], row.recording_id > after[1]),
                )
            )
        query = (
            select(row).where(*conditions).order_by(row.purged_at, row.recording_id).limit(limit)
        )
        return [_tombstone(found) for found in self._session.scalars(query)]

    def file_deleted(self, recording_id: RecordingId, at: datetime) -> None:
        row = self._existing(recording_id)
        row.file_deleted_at = at
        row.storage_key = None
        self._session.flush()

    def audited(self, recording_id: RecordingId, at: datetime) -> None:
        self._existing(recording_id).audited_at = at
        self._session.flush()

    def list(self, *, limit: int = 100) -> Sequence[Tombstone]:
        row = RecordingTombstoneRow
        query = select(row).order_by(row.purged_at.desc(), row.recording_id).limit(limit)
        return [_tombstone(found) for found in self._session.scalars(query)]

    def _existing(self, recording_id: str) -> RecordingTombstoneRow:
        row = self._session.get(RecordingTombstoneRow, recording_id)
        if row is None:
            raise NotFound(
                f"no tombstone for recording {recording_id}", error_id="tombstone_not_found"
            )
        return row


def _tombstone(row: RecordingTombstoneRow) -> Tombstone:
    return Tombstone(
        recording_id=RecordingId(row.recording_id),
        call_id=CallId(row.call_id),
        kind=TombstoneKind(row.kind),
        rule=row.rule,
        retention_days=row.retention_days,
        reason=row.reason,
        actor_user_id=None if row.actor_user_id is None else UserId(row.actor_user_id),
        actor_name=row.actor_name,
        purged_at=row.purged_at,
        storage_key=row.storage_key,
        file_deleted_at=row.file_deleted_at,
        audited_at=row.audited_at,
    )
