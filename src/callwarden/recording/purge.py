"""Deleting recordings: crypto-shredding, then the file, then the tombstone's audit entry.

One deletion, whether the scheduled purge's or a person's, goes in steps that each commit:

1. **Shred** (one transaction): check again that no active legal hold names the recording,
   set its wrapped data key to NULL (with its sealed caller number, notes, tags and pauses),
   mark it PURGED and write its tombstone (which rule or who, when, why). From this commit on
   the sealed file is noise: no copy of it, restored from any backup, can be decrypted.
2. **Delete the file** from the storage backend, then note that on the tombstone.
3. **Audit**: one entry through the `AuditPort`, then note that on the tombstone.

A crash between steps leaves a tombstone that is not finished; every purge run starts by
finishing those (`Shredder.finish_pending`), so the state always converges, and running the
purge again changes nothing more (idempotent). The audit entry is written at least once.

On SQLite the shredding transaction runs with `secure_delete` on (freed bytes are zeroed) and
each batch ends with a WAL checkpoint that truncates the log, so the wrapped key does not
linger in the database files (file-system blocks and backups are outside our reach: that is
what crypto-shredding is for).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, or_, select, text
from sqlalchemy.orm import Session

from callwarden.domain.errors import Conflict, InvalidState, JsonValue
from callwarden.domain.ids import RecordingId, UserId
from callwarden.recording.holds import (
    LegalHoldRepository,
    RetentionPolicyRepository,
    TombstoneRepository,
)
from callwarden.recording.models import (
    Recording,
    RecordingStatus,
    RetentionPolicy,
    Tombstone,
    TombstoneKind,
)
from callwarden.recording.numbers import NumberProtector
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.retention import Expiry, expiry_of, shortest_days
from callwarden.recording.storage import RecordingStorage
from callwarden.store.database import WRITE_TRANSACTION
from callwarden.store.schema import RecordingRow

logger = logging.getLogger(__name__)

PURGE_ACTION = "recording.purge"
DELETE_ACTION = "recording.delete"
DEFAULT_BATCH_SIZE = 100
SYSTEM_ACTOR = "system"

SessionFactory = Callable[[], Session]
WallClock = Callable[[], datetime]


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """One audit entry as the recording package knows it; the composition root turns it into
    the audit log's own event (`recording` does not import `security`)."""

    action: str
    actor_user_id: UserId | None
    actor_name: str
    object_id: str
    reason: str | None
    details: Mapping[str, JsonValue] = field(default_factory=dict)


class AuditPort(Protocol):
    """Writes one audit entry; raises if it cannot (the tombstone then stays unaudited and
    the next run tries again)."""

    async def record(self, entry: AuditRecord) -> None: ...


@dataclass(frozen=True)
class Deletion:
    """Who or what deletes a recording, and why."""

    kind: TombstoneKind
    rule: str
    actor_name: str = SYSTEM_ACTOR
    actor_user_id: UserId | None = None
    retention_days: int | None = None
    reason: str | None = None


def legal_hold_error(recording_id: str, hold_ids: Sequence[int]) -> Conflict:
    return Conflict(
        f"recording {recording_id} is under legal hold and cannot be deleted",
        error_id="recording_on_legal_hold",
        details={"recording_id": recording_id, "holds": list(hold_ids)},
    )


class Shredder:
    """The steps of one deletion, shared by the purge and manual deletion."""

    def __init__(
        self,
        sessions: SessionFactory,
        numbers: NumberProtector,
        storage: RecordingStorage,
        audit: AuditPort,
        clock: WallClock,
    ) -> None:
        self._sessions = sessions
        self._numbers = numbers
        self._storage = storage
        self._audit = audit
        self._clock = clock

    def shred(self, recording_id: RecordingId, deletion: Deletion) -> Tombstone:
        """Step 1 in one transaction; raises `Conflict` (recording_on_legal_hold) if held."""
        with self._sessions() as session, session.begin():
            connection = session.connection(execution_options=WRITE_TRANSACTION)
            if connection.dialect.name == "sqlite":
                session.execute(text("PRAGMA secure_delete = ON"))
            # Another node's purge or a person deleting the same recording waits here (the
            # row lock; SQLite's write lock already serialises), then finds it purged.
            session.execute(
                select(RecordingRow.id).where(RecordingRow.id == recording_id).with_for_update()
            )
            recordings = RecordingRepository(session, self._numbers)
            recording = recordings.get(recording_id)
            if recording.status is RecordingStatus.PURGED:
                raise InvalidState(
                    f"recording {recording_id} is already deleted", error_id="recording_purged"
                )
            if recording.status is RecordingStatus.RECORDING:
                raise InvalidState(
                    f"recording {recording_id} is still being recorded",
                    error_id="recording_in_progress",
                )
            holds = LegalHoldRepository(session).active_for([recording])
            if holds:
                raise legal_hold_error(recording_id, [hold.id for hold in holds])
            recordings.destroy_key(recording_id)
            tombstone = TombstoneRepository(session).add(
                recording,
                kind=deletion.kind,
                rule=deletion.rule,
                retention_days=deletion.retention_days,
                reason=deletion.reason,
                actor_user_id=deletion.actor_user_id,
                actor_name=deletion.actor_name,
                at=self._clock(),
            )
        logger.info("recording %s shredded (%s)", recording_id, deletion.rule)
        return tombstone

    async def finish(self, tombstone: Tombstone) -> None:
        """Steps 2 and 3 for one tombstone; each is skipped if already done."""
        if tombstone.file_deleted_at is None:
            if tombstone.storage_key is not None:
                await asyncio.to_thread(self._storage.delete, tombstone.storage_key)
            await asyncio.to_thread(self._note, tombstone.recording_id, "file")
        if tombstone.audited_at is None:
            await self._audit.record(_audit_record(tombstone))
            await asyncio.to_thread(self._note, tombstone.recording_id, "audit")

    async def finish_pending(self, batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[int, int]:
        """Finish the tombstones an earlier run left unfinished: (finished, failed). A failure
        (storage or audit log down) is logged and left for the next run."""
        finished = failed = 0
        after: tuple[datetime, str] | None = None
        while True:
            pending = await asyncio.to_thread(self._unfinished, batch_size, after)
            if not pending:
                return finished, failed
            after = (pending[-1].purged_at, pending[-1].recording_id)
            for tombstone in pending:
                try:
                    await self.finish(tombstone)
                except Exception:  # any failure: the next run tries again
                    logger.exception("finishing the deletion of %s failed", tombstone.recording_id)
                    failed += 1
                else:
                    finished += 1

    def scrub(self) -> None:
        """SQLite: checkpoint the WAL and truncate it, so shredded keys leave the log too."""
        with self._sessions() as session:
            if session.connection().dialect.name == "sqlite":
                session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))

    def _unfinished(self, limit: int, after: tuple[datetime, str] | None) -> Sequence[Tombstone]:
        with self._sessions() as session:
            return TombstoneRepository(session).unfinished(limit, after=after)

    def _note(self, recording_id: RecordingId, step: str) -> None:
        with self._sessions() as session, session.begin():
            tombstones = TombstoneRepository(session)
            if step == "file":
                tombstones.file_deleted(recording_id, self._clock())
            else:
                tombstones.audited(recording_id, self._clock())


def _audit_record(tombstone: Tombstone) -> AuditRecord:
    manual = tombstone.kind is TombstoneKind.MANUAL
    return AuditRecord(
        action=DELETE_ACTION if manual else PURGE_ACTION,
        actor_user_id=tombstone.actor_user_id,
        actor_name=tombstone.actor_name,
        object_id=tombstone.recording_id,
        reason=tombstone.reason,
        details={
            "call_id": tombstone.call_id,
            "kind": tombstone.kind.value,
            "rule": tombstone.rule,
            "retention_days": tombstone.retention_days,
            "purged_at": tombstone.purged_at.isoformat(),
            "key_destroyed": True,
        },
    )


@dataclass
class PurgeProgress:
    """Counts so far, reported after every batch and at the end (`done`)."""

    examined: int = 0
    purged: int = 0
    held: int = 0
    resumed: int = 0
    failed: int = 0
    done: bool = False

    def line(self) -> str:
        state = "done" if self.done else "running"
        return (
            f"purge {state}: {self.examined} examined, {self.purged} purged, {self.held} on "
            f"legal hold, {self.resumed} resumed, {self.failed} failed"
        )


ProgressCallback = Callable[[PurgeProgress], None]


class Purger:
    """Finds expired recordings in batches and deletes each through the `Shredder`."""

    def __init__(
        self,
        sessions: SessionFactory,
        numbers: NumberProtector,
        shredder: Shredder,
        clock: WallClock,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._sessions = sessions
        self._numbers = numbers
        self._shredder = shredder
        self._clock = clock
        self._batch_size = batch_size

    async def run(self, progress: ProgressCallback | None = None) -> PurgeProgress:
        """One purge: finish interrupted deletions, then delete whatever has expired now."""
        report = PurgeProgress()
        report.resumed, report.failed = await self._shredder.finish_pending(self._batch_size)
        now = self._clock()
        policies = await asyncio.to_thread(self._policies)
        fewest = shortest_days(policies)
        after: tuple[datetime, str] | None = None
        while fewest is not None:
            batch = await asyncio.to_thread(self._candidates, now - timedelta(days=fewest), after)
            if not batch:
                break
            after = (batch[-1][0].started_at, batch[-1][0].id)
            for recording, expiry in batch:
                await self._consider(recording, expiry, now, report)
            await asyncio.to_thread(self._shredder.scrub)
            if progress is not None:
                progress(report)
        report.done = True
        if progress is not None:
            progress(report)
        logger.info("%s", report.line())
        return report

    async def _consider(
        self, recording: Recording, expiry: Expiry, now: datetime, report: PurgeProgress
    ) -> None:
        report.examined += 1
        if expiry.held:
            report.held += 1
            return
        if not expiry.expired(now):
            return
        deletion = Deletion(
            kind=TombstoneKind.RETENTION, rule=expiry.rule, retention_days=expiry.days
        )
        try:
            tombstone = await asyncio.to_thread(self._shredder.shred, recording.id, deletion)
        except Conflict:
            report.held += 1  # a hold placed since the batch was read
            return
        except InvalidState:
            return  # deleted meanwhile (by a person, or another node's purge)
        try:
            await self._shredder.finish(tombstone)
        except Exception:  # the next run finishes it; keep purging the others
            logger.exception("finishing the deletion of recording %s failed", recording.id)
            report.failed += 1
        report.purged += 1

    def _policies(self) -> Sequence[RetentionPolicy]:
        with self._sessions() as session:
            return RetentionPolicyRepository(session).list()

    def _candidates(
        self, started_before: datetime, after: tuple[datetime, str] | None
    ) -> list[tuple[Recording, Expiry]]:
        """The next batch of closed recordings started before `started_before`, oldest first,
        each with its expiry under the current policies and active holds."""
        row = RecordingRow
        closed = [
            RecordingStatus.COMPLETE.value,
            RecordingStatus.INCOMPLETE.value,
            RecordingStatus.FAILED.value,
        ]
        conditions = [row.status.in_(closed), row.started_at < started_before]
        if after is not None:
            conditions.append(
                or_(row.started_at > after[0], and_(row.started_at == after[0], row.id > after[1]))
            )
        query = (
            select(row.id)
            .where(*conditions)
            .order_by(row.started_at, row.id)
            .limit(self._batch_size)
        )
        with self._sessions() as session:
            ids = [RecordingId(found) for found in session.scalars(query)]
            recordings = sorted(
                RecordingRepository(session, self._numbers).get_many(ids),
                key=lambda recording: (recording.started_at, recording.id),
            )
            holds = LegalHoldRepository(session).active_for(recordings)
            policies = RetentionPolicyRepository(session).list()
        return [(recording, expiry_of(recording, policies, holds)) for recording in recordings]
