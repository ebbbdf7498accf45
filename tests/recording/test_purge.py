from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.errors import Conflict, InvalidState
from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.holds import (
    LegalHoldRepository,
    RetentionPolicyRepository,
    TombstoneRepository,
)
from callwarden.recording.keyring import FileKeyRing, WrappedKey, new_data_key
from callwarden.recording.models import (
    HoldTargetKind,
    Recording,
    RecordingStatus,
    RetentionPolicy,
    RetentionScope,
    TombstoneKind,
)
from callwarden.recording.numbers import SealedNumbers
from callwarden.recording.purge import (
    AuditRecord,
    Deletion,
    PurgeProgress,
    Purger,
    Shredder,
)
from callwarden.recording.purge_runs import PurgeRuns, ScheduledPurge
from callwarden.recording.reader import SealedReader
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.storage import LocalStorage
from callwarden.store.database import Database

from .conftest import Center
from .sealed import Owner, Sealer

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **amount: float) -> None:
        self.current += timedelta(**amount)


class AuditTrail:
    """The audit port of these tests: keeps what it is given; can be told to fail."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self.failures_left = 0

    async def record(self, entry: AuditRecord) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("audit log unavailable")
        self.records.append(entry)


class World:
    def __init__(self, database: Database, numbers: SealedNumbers, tmp_path: Path, center: Center):
        self.database = database
        self.sessions: sessionmaker[Session] = database.sessions
        self.numbers = numbers
        self.center = center
        self.storage = LocalStorage(tmp_path / "recordings")
        self.keyring = FileKeyRing(tmp_path / "keys")
        self.sealer = Sealer(self.sessions, numbers, self.storage, self.keyring)
        self.clock = FakeClock(T0)
        self.audit = AuditTrail()
        self.shredder = Shredder(self.sessions, numbers, self.storage, self.audit, self.clock)

    def purger(self, batch_size: int = 100) -> Purger:
        return Purger(self.sessions, self.numbers, self.shredder, self.clock, batch_size=batch_size)

    def support(self) -> Owner:
        c = self.center
        return Owner(c.support, c.support_queue, c.alice)

    def sales(self) -> Owner:
        c = self.center
        return Owner(c.sales, c.sales_queue, c.bob)

    def policy(self, policy: RetentionPolicy) -> None:
        with self.sessions() as session, session.begin():
            RetentionPolicyRepository(session).set(policy, by=None, at=T0)

    def get(self, recording: Recording) -> Recording:
        with self.sessions() as session:
            return RecordingRepository(session, self.numbers).get(recording.id)

    def file(self, recording: Recording) -> Path:
        return self.storage.root / recording.storage_key


@pytest.fixture
def world(database: Database, numbers: SealedNumbers, tmp_path: Path, center: Center) -> World:
    return World(database, numbers, tmp_path, center)


async def test_expired_recordings_are_shredded_with_tombstone_and_audit(
    world: World, tmp_path: Path
) -> None:
    world.policy(RetentionPolicy(scope=RetentionScope.DEFAULT, days=30))
    old = world.sealer.make(world.support(), started_at=T0)
    young = world.sealer.make(world.support(), started_at=T0 + timedelta(days=20))
    backup = tmp_path / "backup.cwr"
    shutil.copyfile(world.file(old), backup)
    wrapped = WrappedKey(old.kek_id or "", old.wrapped_key or b"")

    world.clock.advance(days=30, seconds=5)
    report = await world.purger().run()

    # the young one is not even examined: it started after now - (fewest days of any policy)
    assert (report.examined, report.purged, report.held, report.failed) == (1, 1, 0, 0)
    purged = world.get(old)
    assert purged.status is RecordingStatus.PURGED
    assert purged.wrapped_key is None and purged.kek_id is None
    assert not world.file(old).exists()
    assert world.get(young).status is RecordingStatus.COMPLETE and world.file(young).exists()
    with world.sessions() as session:
        tombstone = TombstoneRepository(session).get(old.id)
    assert tombstone is not None and tombstone.finished
    assert tombstone.kind is TombstoneKind.RETENTION
    assert tombstone.rule == "default:30d" and tombstone.retention_days == 30
    assert tombstone.purged_at == T0 + timedelta(days=30, seconds=5)
    assert [(r.action, r.object_id, r.details["rule"]) for r in world.audit.records] == [
        ("recording.purge", old.id, "default:30d")
    ]
    # The restored copy of the file cannot be decrypted: the only wrapped key is gone from
    # the database (and, on SQLite, from its files), and no other key opens it.
    if world.database.url.startswith("sqlite"):
        db_file = Path(world.database.engine.url.database or "")
        stored = b"".join(
            p.read_bytes() for p in db_file.parent.glob(db_file.name + "*") if p.is_file()
        )
        assert wrapped.blob not in stored
    with pytest.raises(RecordingCorrupted):
        SealedReader.open(backup, old.id, new_data_key())


async def test_a_legal_hold_blocks_the_purge_until_released(world: World) -> None:
    world.policy(RetentionPolicy(scope=RetentionScope.DEFAULT, days=1))
    by_call = world.sealer.make(world.support(), started_at=T0, call_id="call-held")
    by_user = world.sealer.make(world.sales(), started_at=T0)
    with world.sessions() as session, session.begin():
        holds = LegalHoldRepository(session)
        call_hold = holds.place(HoldTargetKind.CALL, "call-held", "dispute #1", by=None, at=T0)
        holds.place(HoldTargetKind.USER, str(world.center.bob), "HR case", by=None, at=T0)
    world.clock.advance(days=400)

    report = await world.purger().run()
    assert (report.purged, report.held) == (0, 2)
    assert world.file(by_call).exists() and world.get(by_call).wrapped_key is not None

    with world.sessions() as session, session.begin():
        LegalHoldRepository(session).release(call_hold.id, "settled", by=None, at=world.clock())
    report = await world.purger().run()
    assert (report.purged, report.held) == (1, 1)
    assert world.get(by_call).status is RecordingStatus.PURGED
    assert world.get(by_user).status is RecordingStatus.COMPLETE


async def test_manual_deletion_of_a_held_recording_is_refused(world: World) -> None:
    recording = world.sealer.make(world.support(), started_at=T0)
    with world.sessions() as session, session.begin():
        LegalHoldRepository(session).place(
            HoldTargetKind.QUEUE, str(world.center.support_queue), "audit", by=None, at=T0
        )
    deletion = Deletion(kind=TombstoneKind.MANUAL, rule="manual", reason="erasure request")
    with pytest.raises(Conflict) as refused:
        world.shredder.shred(recording.id, deletion)
    assert refused.value.error_id == "recording_on_legal_hold"
    assert world.get(recording).wrapped_key == recording.wrapped_key  # state intact
    assert world.file(recording).exists()


async def test_purge_is_idempotent(world: World) -> None:
    world.policy(RetentionPolicy(scope=RetentionScope.DEFAULT, days=1))
    for day in range(3):
        world.sealer.make(world.support(), started_at=T0 + timedelta(hours=day))
    world.clock.advance(days=2)
    first = await world.purger().run()
    second = await world.purger().run()
    assert first.purged == 3
    assert (second.examined, second.purged, second.resumed) == (0, 0, 0)
    assert len(world.audit.records) == 3


async def test_an_interrupted_deletion_is_finished_by_the_next_run(world: World) -> None:
    world.policy(RetentionPolicy(scope=RetentionScope.DEFAULT, days=1))
    crashed_after_shred = world.sealer.make(world.support(), started_at=T0)
    audit_failed = world.sealer.make(world.support(), started_at=T0 + timedelta(hours=1))
    world.clock.advance(days=2)
    # A crash right after step 1: the key is gone, the file and the audit entry are not.
    world.shredder.shred(
        crashed_after_shred.id, Deletion(kind=TombstoneKind.RETENTION, rule="default:1d")
    )
    assert world.file(crashed_after_shred).exists()
    # The next run finds it, but the audit log is down for one entry: the file goes, the
    # entry does not; the recording that expired meanwhile is deleted as usual.
    world.audit.failures_left = 1
    report = await world.purger().run()
    assert (report.resumed, report.failed, report.purged) == (0, 1, 1)
    assert not world.file(crashed_after_shred).exists()
    assert not world.file(audit_failed).exists()
    assert [r.object_id for r in world.audit.records] == [audit_failed.id]

    report = await world.purger().run()
    assert (report.resumed, report.failed, report.purged) == (1, 0, 0)
    assert sorted(r.object_id for r in world.audit.records) == sorted(
        [crashed_after_shred.id, audit_failed.id]
    )
    with world.sessions() as session:
        assert TombstoneRepository(session).unfinished(10) == []


async def test_progress_is_reported_per_batch(world: World) -> None:
    world.policy(RetentionPolicy(scope=RetentionScope.DEFAULT, days=1))
    for minute in range(5):
        world.sealer.make(world.support(), started_at=T0 + timedelta(minutes=minute), seconds=0.2)
    world.clock.advance(days=2)
    seen: list[str] = []

    def progress(state: PurgeProgress) -> None:
        seen.append(state.line())

    await world.purger(batch_size=2).run(progress)
    assert seen == [
        "purge running: 2 examined, 2 purged, 0 on legal hold, 0 resumed, 0 failed",
        "purge running: 4 examined, 4 purged, 0 on legal hold, 0 resumed, 0 failed",
        "purge running: 5 examined, 5 purged, 0 on legal hold, 0 resumed, 0 failed",
        "purge done: 5 examined, 5 purged, 0 on legal hold, 0 resumed, 0 failed",
    ]


async def test_without_any_policy_nothing_is_purged(world: World) -> None:
    recording = world.sealer.make(world.support(), started_at=T0)
    world.clock.advance(days=10_000)
    report = await world.purger().run()
    assert report.examined == 0 and world.file(recording).exists()


async def test_the_scheduled_purge_runs_every_interval_until_closed(world: World) -> None:
    world.policy(RetentionPolicy(scope=RetentionScope.DEFAULT, days=1))
    recording = world.sealer.make(world.support(), started_at=T0)
    waits: list[float] = []
    proceed = asyncio.Event()
    waiting_again = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            waiting_again.set()
        await proceed.wait()
        proceed.clear()

    runs = PurgeRuns(world.purger(batch_size=1), world.clock)
    schedule = ScheduledPurge(runs.run, 600.0, sleep=sleep)
    schedule.start()
    await asyncio.sleep(0)
    assert waits == [600.0] and schedule.runs == 0
    assert world.get(recording).status is RecordingStatus.COMPLETE
    world.clock.advance(days=2)
    proceed.set()
    await asyncio.wait_for(waiting_again.wait(), 30)  # the run is over, the next wait begun
    assert schedule.runs == 1
    assert world.get(recording).status is RecordingStatus.PURGED
    assert waits == [600.0, 600.0]
    status = runs.status()
    assert not status.running and status.progress is not None and status.progress.done
    assert status.progress.purged == 1 and status.finished_at == world.clock()
    await schedule.close()
    with pytest.raises(ValueError):
        ScheduledPurge(runs.run, 0)


async def test_one_purge_at_a_time_and_its_progress_is_visible(world: World) -> None:
    world.policy(RetentionPolicy(scope=RetentionScope.DEFAULT, days=1))
    for minute in range(3):
        world.sealer.make(world.support(), started_at=T0 + timedelta(minutes=minute), seconds=0.2)
    world.clock.advance(days=2)
    runs = PurgeRuns(world.purger(batch_size=1), world.clock)
    assert runs.status().progress is None
    gate, auditing = asyncio.Event(), asyncio.Event()
    original = world.audit.record

    async def slow_audit(entry: AuditRecord) -> None:
        auditing.set()
        await gate.wait()
        await original(entry)

    world.audit.record = slow_audit  # type: ignore[method-assign]
    assert runs.start_now()
    await asyncio.wait_for(auditing.wait(), 30)
    assert runs.running and not runs.start_now()  # a second run is refused while one runs
    assert await runs.run() is None
    during = runs.status()
    assert during.running and during.progress is not None and not during.progress.done
    gate.set()
    await asyncio.wait_for(runs.wait(), 30)
    status = runs.status()
    assert status.progress is not None and status.progress.done
    assert status.progress.purged == 3 and status.started_at == world.clock()
    await runs.close()


async def test_deleting_twice_is_refused_and_the_purge_finishes_the_first(world: World) -> None:
    world.policy(RetentionPolicy(scope=RetentionScope.DEFAULT, days=1))
    recording = world.sealer.make(world.support(), started_at=T0)
    world.clock.advance(days=2)
    manual = Deletion(kind=TombstoneKind.MANUAL, rule="manual", reason="erasure")
    world.shredder.shred(recording.id, manual)
    with pytest.raises(InvalidState) as again:
        world.shredder.shred(recording.id, manual)
    assert again.value.error_id == "recording_purged"
    report = await world.purger().run()
    assert (report.purged, report.failed, report.resumed) == (0, 0, 1)
    with world.sessions() as session:
        tombstone = TombstoneRepository(session).get(recording.id)
    assert tombstone is not None and tombstone.kind is TombstoneKind.MANUAL
