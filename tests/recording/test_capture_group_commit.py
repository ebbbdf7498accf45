"""Group commit in the capture's writer thread: batches of many recordings are sealed and
appended unsynced, then made durable together (one syncfs, or one fdatasync each when syncfs
is not available), soon after the first of them; what is committed reads back."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from callwarden.media.control import MediaConfig
from callwarden.media.engine import MediaEngine
from callwarden.recording import capture, capture_slot
from callwarden.recording.capture import (
    BATCH_SAMPLES,
    GROUP_COMMIT_SECONDS,
    CaptureProvider,
    CaptureSink,
    SealSpec,
)
from callwarden.recording.keyring import new_data_key
from callwarden.recording.reader import SealedReader

FRAME = 160
RECORDINGS = 3


async def _record_two_batches(tmp_path: Path) -> tuple[MediaEngine, list[CaptureSink], dict]:
    provider = CaptureProvider()
    engine = MediaEngine(MediaConfig(ports="47660-47679"), recording_sinks=provider)
    specs = {}
    for index in range(RECORDINGS):
        bridge = await engine.create_bridge()
        await engine.add_tone(bridge, [440.0], role="customer")
        await engine.add_tone(bridge, [880.0], role="operator")
        spec = SealSpec(f"g{index}", str(tmp_path / f"g{index}.cwrec"), new_data_key())
        await engine.start_recording(bridge, spec.to_plain())
        specs[bridge] = spec
    for _ in range(2 * BATCH_SAMPLES // FRAME + 1):  # two whole batches handed over
        engine.tick()
    sinks = [s for s in engine._recordings._sinks.values() if isinstance(s, CaptureSink)]
    return engine, sinks, specs


async def _committed(sinks: list[CaptureSink]) -> None:
    for _ in range(200):
        await asyncio.sleep(0.02)
        if all(s.writer is not None and not s.unsynced for s in sinks):
            pending = sinks[0]._provider.pending
            if pending == 0:
                return
    raise AssertionError("the batches were not committed")


@pytest.mark.parametrize("syncfs_available", [True, False])
async def test_batches_of_all_recordings_are_committed_together_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs_available: bool
) -> None:
    calls: list[int] = []

    def fake_syncfs(fd: int) -> bool:
        calls.append(fd)
        return syncfs_available and real_syncfs(fd)

    real_syncfs = capture_slot.syncfs
    monkeypatch.setattr(capture_slot, "syncfs", fake_syncfs)
    engine, sinks, specs = await _record_two_batches(tmp_path)
    try:
        assert len(sinks) == RECORDINGS
        started = asyncio.get_running_loop().time()
        await _committed(sinks)
        assert asyncio.get_running_loop().time() - started < GROUP_COMMIT_SECONDS + 1.0
        # one group commit per round of batches for all recordings, not one per recording
        assert 1 <= len(calls) <= 2
        lengths = set()
        for spec in specs.values():  # still open: what was committed reads back
            reader = SealedReader.open(Path(spec.path), spec.recording_id, spec.data_key)
            assert not reader.complete
            committed = len(reader.pcm("customer"))
            # a staggered first batch, then a whole one
            assert BATCH_SAMPLES < committed < 2 * BATCH_SAMPLES and committed % FRAME == 0
            lengths.add(committed)
        assert len(lengths) == RECORDINGS  # the recordings hand over in different ticks
        for bridge in specs:
            summary = await engine.stop_recording(bridge)
            assert summary["failed"] is False
    finally:
        await engine.close()
    for spec in specs.values():
        reader = SealedReader.open(Path(spec.path), spec.recording_id, spec.data_key)
        assert reader.complete and len(reader.pcm("operator")) == 2 * BATCH_SAMPLES + FRAME


async def test_a_recording_process_gets_a_short_gil_switch_interval(tmp_path: Path) -> None:
    """The writer thread must win the GIL back quickly from a busy media loop."""
    before = sys.getswitchinterval()
    provider = CaptureProvider(switch_interval=0.001)
    engine = MediaEngine(MediaConfig(ports="47680-47689"), recording_sinks=provider)
    try:
        sys.setswitchinterval(0.005)
        bridge = await engine.create_bridge()
        spec = SealSpec("s1", str(tmp_path / "s1.cwrec"), new_data_key())
        await engine.start_recording(bridge, spec.to_plain())
        assert sys.getswitchinterval() == pytest.approx(0.001)
        await engine.stop_recording(bridge)
    finally:
        await engine.close()
        sys.setswitchinterval(before)


async def test_batches_wait_for_the_group_hand_over_and_a_pause_takes_them_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of every recording go to the writer thread together, after HANDOVER_SECONDS;
    a pause hands over what waits, in order, at once."""
    monkeypatch.setattr(capture, "HANDOVER_SECONDS", 30.0)  # only a pause can hand them over
    engine, sinks, specs = await _record_two_batches(tmp_path)
    try:
        provider = sinks[0]._provider
        for _ in range(200):  # opening went at once; two batches each wait
            if provider.pending == 2 * RECORDINGS and all(s.writer is not None for s in sinks):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert provider.pending == 2 * RECORDINGS  # none handed over
        assert all(s.writer is not None for s in sinks)
        bridge = next(iter(specs))
        await engine.pause_recording(bridge)
        for _ in range(200):
            if provider.pending == 0:
                break
            await asyncio.sleep(0.02)
        assert provider.pending == 0
        await engine.resume_recording(bridge)
    finally:
        await engine.close()
    for spec in specs.values():
        reader = SealedReader.open(Path(spec.path), spec.recording_id, spec.data_key)
        assert reader.complete
        assert reader.track_duration("customer") >= BATCH_SAMPLES  # both batches written
