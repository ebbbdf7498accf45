"""The recording writer as a process of its own (capture_process): what the media loop hands
over is sealed by the child and reads back; a failure in the child reaches the loop as the
recording's failure; a child that dies fails its recordings and the next one gets a new child;
closing the provider ends the child."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from callwarden.media.control import MediaConfig, RecordingEvent
from callwarden.media.engine import MediaEngine
from callwarden.recording.capture import (
    BATCH_SAMPLES,
    CAPTURE_PROVIDER,
    CaptureProvider,
    SealSpec,
)
from callwarden.recording.keyring import new_data_key
from callwarden.recording.reader import SealedReader

FRAME = 160


def _dominant_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / 8000)[int(np.argmax(spectrum))])


async def _engine(ports: str) -> tuple[MediaEngine, CaptureProvider, list[RecordingEvent]]:
    provider = CaptureProvider(process=True)
    events: list[RecordingEvent] = []
    engine = MediaEngine(MediaConfig(ports=ports), recording_sinks=provider)
    engine.subscribe(lambda e: events.append(e) if isinstance(e, RecordingEvent) else None)
    return engine, provider, events


async def _recorded_bridge(engine: MediaEngine, spec: SealSpec) -> str:
    bridge = await engine.create_bridge()
    await engine.add_tone(bridge, [440.0], role="customer")
    await engine.add_tone(bridge, [880.0], role="operator")
    await engine.start_recording(bridge, spec.to_plain())
    return bridge


async def _until(condition: object, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_the_node_records_through_a_writer_process() -> None:
    assert CAPTURE_PROVIDER == "callwarden.recording.capture:sealing_process_provider"


def test_a_writer_process_takes_no_other_opener() -> None:
    with pytest.raises(ValueError, match="no other opener"):
        CaptureProvider(lambda spec: None, process=True)  # type: ignore[arg-type,return-value]


async def test_the_child_seals_the_tracks_and_the_recording_reads_back(tmp_path: Path) -> None:
    engine, provider, _ = await _engine("47840-47859")
    specs = [SealSpec(f"p{i}", str(tmp_path / f"p{i}.cwrec"), new_data_key()) for i in range(2)]
    try:
        bridges = [await _recorded_bridge(engine, spec) for spec in specs]
        for _ in range(2 * BATCH_SAMPLES // FRAME):
            engine.tick()
        await engine.pause_recording(bridges[0])
        for _ in range(50):
            engine.tick()
        await engine.resume_recording(bridges[0])
        for _ in range(25):
            engine.tick()
        pid = provider.writer_pid
        assert pid is not None and pid != os.getpid()
        summaries = [await engine.stop_recording(bridge) for bridge in bridges]
    finally:
        await engine.close()
    assert provider.writer_pid is None
    with pytest.raises(ProcessLookupError):  # the child has ended with the provider
        os.kill(pid, 0)
    for spec, summary in zip(specs, summaries, strict=True):
        assert summary["failed"] is False
        assert summary["writer"]["file_sha256"]  # what the manifest needs came back
        reader = SealedReader.open(Path(spec.path), spec.recording_id, spec.data_key)
        assert reader.complete
        customer, operator = reader.pcm("customer"), reader.pcm("operator")
        assert _dominant_hz(customer[:BATCH_SAMPLES]) == pytest.approx(440, abs=10)
        assert _dominant_hz(operator[:BATCH_SAMPLES]) == pytest.approx(880, abs=10)
    paused = summaries[0]["pauses"]
    assert len(paused) == 1 and paused[0][1] - paused[0][0] == 50 * FRAME
    assert summaries[1]["pauses"] == []


async def test_a_failure_in_the_child_fails_that_recording_only(tmp_path: Path) -> None:
    engine, _, events = await _engine("47860-47879")
    blocked = tmp_path / "not-a-directory"
    blocked.write_bytes(b"")
    bad = SealSpec("bad", str(blocked / "bad.cwrec"), new_data_key())
    good = SealSpec("good", str(tmp_path / "good.cwrec"), new_data_key())
    try:
        bad_bridge = await _recorded_bridge(engine, bad)
        good_bridge = await _recorded_bridge(engine, good)
        for _ in range(BATCH_SAMPLES // FRAME + 5):
            engine.tick()
        await _until(lambda: any(e.kind == "failed" for e in events))
        failed = await engine.stop_recording(bad_bridge)
        kept = await engine.stop_recording(good_bridge)
    finally:
        await engine.close()
    assert failed["failed"] is True and "cannot open the recording" in str(failed["failure"])
    assert [e.bridge_id for e in events if e.kind == "failed"] == [bad_bridge]
    assert kept["failed"] is False
    assert SealedReader.open(Path(good.path), "good", good.data_key).complete


async def test_a_killed_child_fails_its_recordings_and_the_next_gets_a_new_one(
    tmp_path: Path,
) -> None:
    engine, provider, events = await _engine("47880-47899")
    first = SealSpec("k1", str(tmp_path / "k1.cwrec"), new_data_key())
    try:
        bridge = await _recorded_bridge(engine, first)
        for _ in range(BATCH_SAMPLES // FRAME + 5):
            engine.tick()
        pid = provider.writer_pid
        assert pid is not None
        await _until(lambda: Path(first.path).exists())
        os.kill(pid, signal.SIGKILL)
        await _until(lambda: any(e.kind == "failed" for e in events))
        failure = next(e for e in events if e.kind == "failed")
        assert "writer process ended" in failure.detail
        summary = await asyncio.wait_for(engine.stop_recording(bridge), 5)
        assert summary["failed"] is True
        # the next recording starts a new child and is whole
        second = SealSpec("k2", str(tmp_path / "k2.cwrec"), new_data_key())
        bridge = await _recorded_bridge(engine, second)
        for _ in range(30):
            engine.tick()
        assert provider.writer_pid not in (None, pid)
        assert (await engine.stop_recording(bridge))["failed"] is False
    finally:
        await engine.close()
    assert SealedReader.open(Path(second.path), "k2", second.data_key).complete
