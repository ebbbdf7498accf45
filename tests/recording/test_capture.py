"""The capture sink inside a media engine driven tick by tick (fake clock, no network).

Tone players joined with the roles of call parties stand in for the RTP legs: the engine taps
every participant's own frame into the sink exactly as it does for RTP legs. The writer here
keeps what it is given in memory (the sealed writer has its own tests; the end-to-end ones
decrypt real files), so these tests see exactly which samples the capture hands over.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import numpy as np
import pytest

from callwarden.media.control import (
    BridgeId,
    MediaConfig,
    MediaError,
    MediaEvent,
    RecordingEvent,
)
from callwarden.media.engine import MediaEngine
from callwarden.media.workers import MediaWorkerPool
from callwarden.recording.capture import (
    BATCH_SAMPLES,
    CAPTURE_PROVIDER,
    CaptureProvider,
    Pcm,
    SealSpec,
)
from callwarden.recording.keyring import new_data_key
from callwarden.recording.reader import SealedReader

FRAME = 160


class MemoryWriter:
    """A TrackWriter keeping every call in order; fails with ENOSPC from ``fail_after``
    writes on, like a full disk."""

    def __init__(self, spec: Mapping[str, object], fail_after: int | None = None) -> None:
        self.spec = dict(spec)
        self.calls: list[tuple[str, object]] = []
        self.audio: dict[str, list[tuple[int, Pcm]]] = {}
        self.fail_after = fail_after
        self.closed_at: int | None = None
        self.aborted = False

    def write(self, track: str, pcm: Pcm, timestamp: int) -> None:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.calls.append(("write", (track, timestamp, len(pcm))))
        self.audio.setdefault(track, []).append((timestamp, pcm.copy()))

    def pause(self, timestamp: int) -> None:
        self.calls.append(("pause", timestamp))

    def resume(self, timestamp: int) -> None:
        self.calls.append(("resume", timestamp))

    def close(self, end: int) -> Mapping[str, object]:
        self.closed_at = end
        return {"chunks": len(self.calls)}

    def abort(self) -> None:
        self.aborted = True

    def track(self, name: str) -> tuple[int, Pcm]:
        """The track's samples as one array and the timestamp of its first sample."""
        runs = sorted(self.audio[name], key=lambda run: run[0])
        first = runs[0][0]
        end = runs[-1][0] + len(runs[-1][1])
        samples = np.zeros(end - first, dtype=np.int16)
        for timestamp, pcm in runs:
            samples[timestamp - first : timestamp - first + len(pcm)] = pcm
        return first, samples


def level_db(samples: Pcm, frequency: float) -> float:
    """The level of one frequency (a ±5 Hz band) in dB relative to full scale."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    bins = np.fft.rfftfreq(len(samples), 1 / 8000)
    band = spectrum[(bins > frequency - 5) & (bins < frequency + 5)]
    return float(20 * np.log10(band.max() / (len(samples) * 32768 / 4) + 1e-12))


class Harness:
    def __init__(self, fail_after: int | None = None) -> None:
        self.writers: list[MemoryWriter] = []
        self.fail_after = fail_after
        self.provider = CaptureProvider(self._open)
        self.engine = MediaEngine(MediaConfig(ports="47600-47619"), recording_sinks=self.provider)
        self.events: list[MediaEvent] = []
        self.engine.subscribe(self.events.append)

    def _open(self, spec: Mapping[str, object]) -> MemoryWriter:
        writer = MemoryWriter(spec, self.fail_after)
        self.writers.append(writer)
        return writer

    async def bridge(self) -> str:
        bridge = await self.engine.create_bridge()
        await self.engine.add_tone(bridge, [440.0], role="customer")
        await self.engine.add_tone(bridge, [880.0], role="operator")
        await self.engine.add_tone(bridge, [392.0, 494.0], role="player")  # hold music
        return bridge

    async def ticks(self, count: int) -> None:
        for _ in range(count):
            self.engine.tick()
        await asyncio.sleep(0.05)  # let the writer thread catch up (not needed for results)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    made = Harness()
    yield made
    await made.engine.close()


async def test_each_role_is_its_own_track_and_players_are_not_recorded(
    harness: Harness,
) -> None:
    bridge = await harness.bridge()
    await harness.ticks(5)  # before the recording: not in it
    await harness.engine.start_recording(bridge, {"recording_id": "r1"})
    await harness.ticks(100)
    summary = await harness.engine.stop_recording(bridge)
    writer = harness.writers[0]
    assert set(writer.audio) == {"customer", "operator"}
    first, customer = harness.writers[0].track("customer")
    assert first == 0 and len(customer) == 100 * FRAME
    assert level_db(customer, 440) > -20 and level_db(customer, 880) < -80
    _, operator = writer.track("operator")
    assert level_db(operator, 880) > -20 and level_db(operator, 440) < -80
    assert summary["samples"] == 100 * FRAME and writer.closed_at == 100 * FRAME
    assert summary["failed"] is False and summary["pauses"] == []
    assert {p["track"] for p in summary["participants"]} == {"customer", "operator"}  # type: ignore[attr-defined]
    assert summary["writer"] == {"chunks": len(writer.calls)}


async def test_paused_stretch_holds_no_samples_at_all(harness: Harness) -> None:
    bridge = await harness.bridge()
    await harness.engine.start_recording(bridge, {"recording_id": "r2"})
    await harness.ticks(50)
    paused_at = await harness.engine.pause_recording(bridge)
    await harness.ticks(30)
    resumed_at = await harness.engine.resume_recording(bridge)
    await harness.ticks(20)
    summary = await harness.engine.stop_recording(bridge)
    writer = harness.writers[0]
    assert (paused_at, resumed_at) == (50 * FRAME, 80 * FRAME)
    assert summary["pauses"] == [[50 * FRAME, 80 * FRAME]]
    assert ("pause", 50 * FRAME) in writer.calls and ("resume", 80 * FRAME) in writer.calls
    for runs in writer.audio.values():
        covered = sum(len(pcm) for _, pcm in runs)
        assert covered == 70 * FRAME
        for timestamp, pcm in runs:
            assert timestamp + len(pcm) <= paused_at or timestamp >= resumed_at


async def test_call_end_while_paused_closes_the_pause(harness: Harness) -> None:
    bridge = await harness.bridge()
    await harness.engine.start_recording(bridge, {"recording_id": "r3"})
    await harness.ticks(10)
    await harness.engine.pause_recording(bridge)
    await harness.engine.pause_recording(bridge)  # twice: still one pause
    await harness.ticks(10)
    summary = await harness.engine.stop_recording(bridge)
    assert summary["pauses"] == [[10 * FRAME, 20 * FRAME]]
    assert harness.writers[0].calls[-1] == ("resume", 20 * FRAME)


async def test_disk_full_fails_the_recording_keeps_what_was_written_and_reports() -> None:
    harness = Harness(fail_after=3)
    try:
        bridge = await harness.bridge()
        await harness.engine.start_recording(bridge, {"recording_id": "r4"})
        await harness.ticks(10 * BATCH_SAMPLES // FRAME)
        for _ in range(50):
            if harness.events:
                break
            await asyncio.sleep(0.02)
        assert harness.events == [
            RecordingEvent(
                BridgeId(bridge), "failed", "OSError: [Errno 28] No space left on device"
            )
        ]
        harness.engine.tick()  # the media goes on
        summary = await harness.engine.stop_recording(bridge)
        writer = harness.writers[0]
        assert summary["failed"] is True and writer.aborted and writer.closed_at is None
        assert len(writer.calls) == 3  # what was written before stays as written
    finally:
        await harness.engine.close()


async def test_commands_without_recording_or_provider_are_media_errors(
    harness: Harness,
) -> None:
    bridge = await harness.bridge()
    with pytest.raises(MediaError, match="is not being recorded"):
        await harness.engine.pause_recording(bridge)
    await harness.engine.start_recording(bridge, {"recording_id": "r5"})
    with pytest.raises(MediaError, match="already being recorded"):
        await harness.engine.start_recording(bridge, {"recording_id": "r5"})
    await harness.engine.close_bridge(bridge)  # stops the recording with the bridge
    assert harness.writers[0].closed_at == 0
    plain = MediaEngine(MediaConfig(ports="47620-47629"))
    other = await plain.create_bridge()
    with pytest.raises(MediaError, match="no recording sink provider"):
        await plain.start_recording(other, {})
    await plain.close()


async def test_in_a_media_worker_process_sealed_on_disk_and_readable(tmp_path: Path) -> None:
    """The provider named by import path runs inside the worker; the file it writes there
    decrypts to the right tone on each track, with the pause empty."""
    key = new_data_key()
    path = tmp_path / "recordings" / "r6.cwrec"
    config = MediaConfig(ports="47640-47659", recording_sinks=CAPTURE_PROVIDER)
    async with MediaWorkerPool(config, workers=1) as pool:
        bridge = await pool.create_bridge()
        await pool.add_tone(bridge, [440.0], role="customer")
        await pool.add_tone(bridge, [880.0], role="operator")
        spec = SealSpec("r6", str(path), key)
        await pool.start_recording(bridge, spec.to_plain())
        await asyncio.sleep(1.0)
        paused_at = await pool.pause_recording(bridge)
        await asyncio.sleep(0.6)
        resumed_at = await pool.resume_recording(bridge)
        await asyncio.sleep(0.6)
        summary = await pool.stop_recording(bridge)
    reader = SealedReader.open(path, "r6", key)
    assert reader.complete and reader.duration_samples == summary["samples"]
    assert [(p.start, p.end) for p in reader.pauses] == [(paused_at, resumed_at)]
    customer, operator = reader.pcm("customer"), reader.pcm("operator")
    assert level_db(customer[:paused_at], 440) > -20
    assert level_db(customer[:paused_at], 880) < -80
    assert level_db(operator[:paused_at], 880) > -20
    assert level_db(operator[:paused_at], 440) < -80
    assert not customer[paused_at:resumed_at].any() and not operator[paused_at:resumed_at].any()
    assert level_db(customer[resumed_at:], 440) > -20
    writer = summary["writer"]
    assert isinstance(writer, dict)
    assert list(writer["chunk_digests"]) == list(reader.chunk_digests)
