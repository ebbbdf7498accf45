"""The recorder end to end inside one process: a media engine ticked by the test (tone players
with the parties' roles), the real capture and sealed writer, the catalogue on SQLite and
PostgreSQL, the file key ring, the signed manifest; and crash recovery of a file whose writer
never closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy.orm import Session, sessionmaker

from callwarden.bus import Event, InProcessBus
from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import CallId, RecordingId
from callwarden.media.control import MediaConfig, MediaError
from callwarden.media.engine import MediaEngine
from callwarden.recording.capture import CaptureProvider
from callwarden.recording.capture_events import (
    RecordingFailed,
    RecordingPaused,
    RecordingResumed,
    RecordingStarted,
    RecordingStopped,
)
from callwarden.recording.keyring import FileKeyRing, WrappedKey, new_data_key
from callwarden.recording.manifest import SignedManifest
from callwarden.recording.models import NewRecording, RecordingStatus
from callwarden.recording.numbers import SealedNumbers
from callwarden.recording.reader import SealedReader
from callwarden.recording.recorder import CallFacts, Recorder, RecorderSettings
from callwarden.recording.recovery import RecoveryServices, recover_open_recordings
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import LocalStorage, recording_storage_key
from callwarden.recording.writer import SealedWriter

from .conftest import Center

FRAME = 160
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class Wall:
    """Wall time the test moves on with the ticks."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class SlowPauseEngine(MediaEngine):
    """An engine whose media process never confirms a pause (stuck, or gone)."""

    async def pause_recording(self, bridge_id: str) -> int:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


@dataclass
class Parts:
    engine: MediaEngine
    recorder: Recorder
    keys: FileKeyRing
    storage: LocalStorage
    signing_key: NodeSigningKey
    wall: Wall
    events: list[Event]

    async def call(self) -> str:
        bridge = await self.engine.create_bridge()
        await self.engine.add_tone(bridge, [440.0], role="customer")
        await self.engine.add_tone(bridge, [880.0], role="operator")
        return bridge

    async def ticks(self, count: int) -> None:
        for _ in range(count):
            self.engine.tick()
        self.wall.now += timedelta(milliseconds=20 * count)
        await asyncio.sleep(0)

    def open(self, sessions: sessionmaker[Session], recording_id: str) -> SealedReader:
        with sessions() as session:
            row = RecordingRepository(session, SealedNumbers(bytes(32))).get(
                RecordingId(recording_id)
            )
        assert row.wrapped_key is not None and row.kek_id is not None
        key = self.keys.unwrap(WrappedKey(row.kek_id, row.wrapped_key), recording_id)
        return SealedReader.open(self.storage.path_for_writing(row.storage_key), row.id, key)


def _parts(
    sessions: sessionmaker[Session], tmp_path: Path, engine_type: type[MediaEngine] = MediaEngine
) -> Parts:
    engine = engine_type(MediaConfig(ports="47700-47719"), recording_sinks=CaptureProvider())
    events: list[Event] = []
    keys = FileKeyRing(tmp_path / "keys")
    storage = LocalStorage(tmp_path / "recordings")
    signing_key = NodeSigningKey.generate()
    wall = Wall()
    recorder = Recorder(
        media=engine,
        sessions=sessions,
        numbers=SealedNumbers(bytes(32)),
        keys=keys,
        storage=storage,
        signing_key=signing_key,
        settings=RecorderSettings(pause_confirm_seconds=0.2),
        wall_clock=wall,
        bus=_Collecting(events),
    )
    return Parts(engine, recorder, keys, storage, signing_key, wall, events)


class _Collecting(InProcessBus):
    """The in-process bus, keeping what was published for the test to read."""

    def __init__(self, into: list[Event]) -> None:
        super().__init__()
        self._into = into

    def publish(self, event: Event) -> None:
        self._into.append(event)
        super().publish(event)


@pytest.fixture
async def parts(sessions: sessionmaker[Session], tmp_path: Path) -> AsyncIterator[Parts]:
    made = _parts(sessions, tmp_path)
    yield made
    await made.recorder.close()
    await made.engine.close()


def _facts(center: Center, number: str | None = "+4930123456") -> CallFacts:
    return CallFacts(
        call_id=CallId("call-1@example"),
        direction=CallDirection.INBOUND,
        queue_id=center.support_queue,
        team_id=center.support,
        operator_id=center.alice,
        caller_number=number,
    )


async def test_recorded_paused_resumed_stopped_sealed_and_catalogued(
    parts: Parts, sessions: sessionmaker[Session], center: Center
) -> None:
    bridge = await parts.call()
    active = await parts.recorder.start(bridge, _facts(center))
    assert active is not None
    await parts.ticks(100)
    assert await parts.recorder.pause(active, by="dtmf")
    await parts.ticks(50)
    await parts.recorder.resume(active, by="dtmf")
    await parts.ticks(50)
    recording = await parts.recorder.stop(active)
    assert recording is not None and recording.status is RecordingStatus.COMPLETE
    assert recording.duration_ms == 4000 and recording.has_pauses
    assert [(p.started_at, p.ended_at) for p in recording.pauses] == [
        (START + timedelta(seconds=2), START + timedelta(seconds=3))
    ]
    reader = parts.open(sessions, active.recording_id)
    assert reader.complete and reader.duration_samples == 200 * FRAME
    assert [(p.start, p.end) for p in reader.pauses] == [(100 * FRAME, 150 * FRAME)]
    assert not reader.pcm("customer")[100 * FRAME : 150 * FRAME].any()
    manifest = SignedManifest.load(parts.storage.path_for_writing(recording.storage_key))
    fields = manifest.fields()
    assert fields["call"]["call_id"] == "call-1@example"
    assert {p["track"] for p in fields["participants"]} == {"customer", "operator"}
    assert recording.manifest_digest is not None
    kinds = [type(event) for event in parts.events]
    assert kinds == [RecordingStarted, RecordingPaused, RecordingResumed, RecordingStopped]
    assert all(event.team_id == center.support for event in parts.events)


async def test_call_end_while_paused_ends_the_pause(
    parts: Parts, sessions: sessionmaker[Session], center: Center
) -> None:
    bridge = await parts.call()
    active = await parts.recorder.start(bridge, _facts(center, None))
    assert active is not None
    await parts.ticks(10)
    assert await parts.recorder.pause(active, by="api")
    await parts.ticks(10)
    recording = await parts.recorder.stop(active)
    assert recording is not None and recording.status is RecordingStatus.COMPLETE
    assert [p.ended_at for p in recording.pauses] == [START + timedelta(milliseconds=400)]
    assert parts.events[-2] == RecordingResumed(
        at=START + timedelta(milliseconds=400),
        team_id=center.support,
        user_id=center.alice,
        recording_id=active.recording_id,
        call_id=active.facts.call_id,
        by="call_end",
    )


async def test_unconfirmed_pause_stops_the_recording_and_alerts(
    sessions: sessionmaker[Session], tmp_path: Path, center: Center
) -> None:
    parts = _parts(sessions, tmp_path, SlowPauseEngine)
    try:
        bridge = await parts.call()
        active = await parts.recorder.start(bridge, _facts(center))
        assert active is not None
        await parts.ticks(50)
        assert not await parts.recorder.pause(active, by="operator")
        assert active.stopped and not active.paused
        with sessions() as session:
            row = RecordingRepository(session, SealedNumbers(bytes(32))).get(active.recording_id)
        assert row.status is RecordingStatus.INCOMPLETE and not row.has_pauses
        [alert] = [e for e in parts.events if isinstance(e, RecordingFailed)]
        assert alert.reason == "pause not confirmed"
        # Fail closed: nothing is recorded after the pause was asked for.
        reader = parts.open(sessions, active.recording_id)
        assert reader.duration_samples <= 50 * FRAME
    finally:
        await parts.recorder.close()
        await parts.engine.close()


async def test_a_refused_start_leaves_the_call_alone_and_alerts(
    parts: Parts, center: Center
) -> None:
    active = await parts.recorder.start("no-such-bridge", _facts(center))
    assert active is None
    [alert] = parts.events
    assert isinstance(alert, RecordingFailed) and alert.reason.startswith("media refused")


@pytest.fixture
def crashed(
    sessions: sessionmaker[Session], tmp_path: Path, center: Center
) -> Iterator[tuple[RecoveryServices, str, Path]]:
    """A recording whose node died: 3 s sealed, a record torn in half, the row RECORDING."""
    keys, storage = FileKeyRing(tmp_path / "keys"), LocalStorage(tmp_path / "recordings")
    numbers = SealedNumbers(bytes(32))
    recording_id = RecordingId("crashed0123456789")
    key = recording_storage_key(recording_id, START)
    data_key = new_data_key()
    wrapped = keys.wrap(data_key, recording_id)
    with sessions() as session, session.begin():
        RecordingRepository(session, numbers).create(
            NewRecording(
                recording_id=recording_id,
                call_id=CallId("call-2@example"),
                direction=CallDirection.INBOUND,
                started_at=START,
                storage_key=key,
                kek_id=wrapped.key_id,
                wrapped_key=wrapped.blob,
                team_id=center.support,
                operator_id=center.alice,
            )
        )
    path = storage.path_for_writing(key)
    writer = SealedWriter.create(path, recording_id, data_key, ["customer", "operator"])
    tone = (8000 * _sine(440, 3 * 8000)).astype("int16")
    for start in range(0, len(tone), FRAME):
        writer.write("customer", start, tone[start : start + FRAME])
    writer.flush()
    writer.abort()  # no trailer: the node died
    with path.open("ab") as file:  # the crash cut the next record short
        file.write(b"\x00\x00\x10\x00\x01\x00garbage")
    services = RecoveryServices(
        sessions, numbers, keys, storage, NodeSigningKey.generate(), lambda: START
    )
    yield services, recording_id, path


def _sine(frequency: float, samples: int) -> npt.NDArray[np.float64]:
    return np.sin(2 * np.pi * frequency * np.arange(samples) / 8000)


def test_recovery_closes_an_open_recording_incomplete_with_its_manifest(
    crashed: tuple[RecoveryServices, str, Path], sessions: sessionmaker[Session]
) -> None:
    services, recording_id, path = crashed
    report = recover_open_recordings(services)
    assert report.incomplete == (recording_id,) and report.failed == ()
    with sessions() as session:
        row = RecordingRepository(session, services.numbers).get(RecordingId(recording_id))
    assert row.status is RecordingStatus.INCOMPLETE and row.duration_ms == 3000
    assert row.ended_at == START + timedelta(seconds=3)
    assert row.manifest_digest is not None and row.size_bytes == path.stat().st_size
    manifest = SignedManifest.load(path).fields()
    assert manifest["complete"] is False and manifest["recording_id"] == recording_id
    # Idempotent: nothing left open, nothing done the second time.
    assert recover_open_recordings(services).incomplete == ()


def test_recovery_marks_a_recording_without_a_file_failed(
    crashed: tuple[RecoveryServices, str, Path], sessions: sessionmaker[Session]
) -> None:
    services, recording_id, path = crashed
    path.unlink()
    assert recover_open_recordings(services).failed == (recording_id,)
    with sessions() as session:
        row = RecordingRepository(session, services.numbers).get(RecordingId(recording_id))
    assert row.status is RecordingStatus.FAILED and row.failure_reason == "no sealed file"


async def test_a_supervisor_joining_is_a_track_of_its_own_and_marks_the_recording_monitored(
    parts: Parts, sessions: sessionmaker[Session], center: Center
) -> None:
    bridge = await parts.call()
    active = await parts.recorder.start(bridge, _facts(center))
    assert active is not None
    await parts.ticks(50)
    await parts.engine.add_tone(bridge, [1300.0], role="supervisor")  # a whisper, say
    await parts.ticks(50)
    recording = await parts.recorder.stop(active)
    assert recording is not None and recording.monitored
    reader = parts.open(sessions, active.recording_id)
    supervisor = reader.pcm("supervisor")
    assert not supervisor[: 50 * FRAME].any() and supervisor[50 * FRAME :].any()


class GoneWorkerEngine(MediaEngine):
    """An engine whose media process is gone when the call ends (its worker died)."""

    gone = False

    async def stop_recording(self, bridge_id: str) -> Mapping[str, object]:
        if self.gone:
            raise MediaError("media worker 0 is gone")
        return await super().stop_recording(bridge_id)


async def test_a_worker_gone_at_the_end_leaves_an_incomplete_recording_not_a_lost_one(
    sessions: sessionmaker[Session], tmp_path: Path, center: Center
) -> None:
    parts = _parts(sessions, tmp_path, GoneWorkerEngine)
    engine = parts.engine
    assert isinstance(engine, GoneWorkerEngine)
    try:
        bridge = await parts.call()
        active = await parts.recorder.start(bridge, _facts(center))
        assert active is not None
        await parts.ticks(200)  # 4 s: two 1.5 s chunks per track sealed and synced
        for _ in range(100):
            await asyncio.sleep(0.02)
            if parts.storage.path_for_writing(active.storage_key).stat().st_size > 40_000:
                break
        engine.gone = True
        assert await parts.recorder.stop(active) is None
        with sessions() as session:
            row = RecordingRepository(session, SealedNumbers(bytes(32))).get(active.recording_id)
        assert row.status is RecordingStatus.INCOMPLETE
        assert row.duration_ms is not None and row.duration_ms >= 3000
        [alert] = [e for e in parts.events if isinstance(e, RecordingFailed)]
        assert "gone" in alert.reason
    finally:
        engine.gone = False
        await parts.recorder.close()
        await parts.engine.close()
