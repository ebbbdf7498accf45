"""The capture over participants tapped in C (``media.bridge.TapSink``): the writer gets the
same tracks, samples, batches, pause and resume as through the Python tap, a paused stretch
holds nothing, a disk failure stops the taps, and a player joining mid-batch (it gets a tap of
its own, which records nothing) loses no frame."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Mapping

import numpy as np
import pytest

from callwarden.media import fastpath
from callwarden.media.bridge import Bridge
from callwarden.media.g711 import Encoding, PcmArray
from callwarden.media.mixer import Mixer
from callwarden.media.player import ToneSource
from callwarden.media.recording_sink import RecordingContext
from callwarden.media.stream import OutgoingStream
from callwarden.recording.capture import BATCH_SAMPLES, CaptureProvider, CaptureSink

from .test_capture import FRAME, MemoryWriter

pytestmark = pytest.mark.skipif(
    not fastpath.AVAILABLE and os.environ.get("CI") != "true",
    reason="the C extension is not built (allowed outside CI: the Python tap runs)",
)


class Sent:
    """The far end of a leg: what the bridge sends is not looked at here."""

    def sendto(self, data: bytes, addr: tuple[str, int], /) -> None:
        pass


class PythonTapOnly:
    """The same sink without ``on_taps``: the bridge hands it frames every tick in Python."""

    def __init__(self, sink: CaptureSink) -> None:
        self.sink = sink

    def on_codes(self, frames: list[tuple[str, bytes | None]], timestamp: int) -> None:
        self.sink.on_codes(frames, timestamp)

    def on_frame(self, participant_id: str, pcm: PcmArray, timestamp: int) -> None:
        self.sink.on_frame(participant_id, pcm, timestamp)


class Call:
    """A customer and an operator (PCMU legs) in a bridge ticked by hand, recorded."""

    def __init__(self, writers: list[MemoryWriter], fail_after: int | None = None) -> None:
        def open_writer(spec: Mapping[str, object]) -> MemoryWriter:
            writer = MemoryWriter(spec, fail_after)
            writers.append(writer)
            return writer

        self.provider = CaptureProvider(open_writer)
        self.bridge = Bridge("b", jitter_depth=1)
        self.mixer = Mixer()
        self.mixer.add(self.bridge)
        self.events: list[tuple[str, str]] = []
        for index, (pid, role) in enumerate((("c", "customer"), ("o", "operator"))):
            stream = OutgoingStream(0x7000 + index, 100, 9000, encoding=Encoding.PCMU)
            stream.payload_type = 0
            stream.transport = Sent()
            stream.address = ("192.0.2.20", 41000 + index)
            self.bridge.add(pid, role, stream=stream)
        self.tick_count = 0
        rng = np.random.default_rng(7)
        self.audio = {pid: rng.integers(0, 255, 400 * FRAME, dtype=np.uint8) for pid in "co"}

    def record(self, python_only: bool) -> CaptureSink:
        bridge = self.bridge
        members = bridge.members

        def role_of(participant_id: str) -> str | None:
            member = members.get(participant_id)
            return member.role if member is not None else None

        context = RecordingContext(
            "b",
            {"recording_id": "r", "tracks": ["customer", "operator"]},
            role_of,
            lambda: bridge.sample_clock,
            lambda kind, detail: self.events.append((kind, detail)),
        )
        sink = self.provider.open(context)
        bridge.set_track_sink(PythonTapOnly(sink) if python_only else sink)
        return sink

    def ticks(self, count: int) -> None:
        for _ in range(count):
            tick = self.tick_count
            for pid in "co":
                payload = self.audio[pid][tick * FRAME : (tick + 1) * FRAME].tobytes()
                if tick % 37 != 5:  # now and then a packet lost
                    self.bridge.members[pid].on_audio(payload, 0, tick, 0, tick * 0.02)
            self.mixer.tick(tick * 0.02)
            self.tick_count += 1

    async def stop(self, sink: CaptureSink) -> Mapping[str, object]:
        self.bridge.set_track_sink(None)
        summary = await sink.stop()
        await self.provider.close()
        return summary


async def _recorded(python_only: bool) -> tuple[MemoryWriter, Mapping[str, object]]:
    writers: list[MemoryWriter] = []
    call = Call(writers)
    call.ticks(3)
    sink = call.record(python_only)
    assert bool(call.bridge.taps) is not python_only
    call.ticks(70)
    sink.pause()
    call.ticks(45)
    sink.resume()
    call.ticks(150)
    summary = await call.stop(sink)
    return writers[0], summary


async def test_taps_in_c_give_the_writer_what_the_python_tap_gives() -> None:
    python, python_summary = await _recorded(python_only=True)
    in_c, summary = await _recorded(python_only=False)
    assert in_c.calls == python.calls  # every write (track, start, length), pause and resume
    for track in ("customer", "operator"):
        assert [t for t, _ in in_c.audio[track]] == [t for t, _ in python.audio[track]]
        for (_, a), (_, b) in zip(in_c.audio[track], python.audio[track], strict=True):
            np.testing.assert_array_equal(a, b)
    assert summary == python_summary
    assert summary["pauses"] == [[70 * FRAME, 115 * FRAME]]
    # nothing of the paused stretch reached the writer
    for runs in in_c.audio.values():
        assert sum(len(pcm) for _, pcm in runs) == (70 + 150) * FRAME
        for start, pcm in runs:
            assert start + len(pcm) <= 70 * FRAME or start >= 115 * FRAME
    assert ("write", ("customer", 0, BATCH_SAMPLES - CaptureProvider().stagger())) in in_c.calls


async def test_a_player_joining_mid_batch_loses_no_frames() -> None:
    writers: list[MemoryWriter] = []
    call = Call(writers)
    sink = call.record(python_only=False)
    call.ticks(30)
    call.bridge.add("m", "player", frame_source=ToneSource([440.0]))  # hold music
    assert len(call.bridge.taps) == 3 and call.bridge.tapped_in_c  # the player's is fed
    call.ticks(30)
    call.bridge.remove("m")
    assert len(call.bridge.taps) == 2
    call.ticks(100)
    summary = await call.stop(sink)
    writer = writers[0]
    assert summary["samples"] == 160 * FRAME
    for track in ("customer", "operator"):
        _, samples = writer.track(track)
        assert len(samples) == 160 * FRAME  # one contiguous track, no gap at either switch
    assert set(writer.audio) == {"customer", "operator"}  # the player is not recorded


async def test_a_failed_writer_stops_the_taps_and_the_call_goes_on() -> None:
    writers: list[MemoryWriter] = []
    call = Call(writers, fail_after=1)
    sink = call.record(python_only=False)
    call.ticks(3 * BATCH_SAMPLES // FRAME)
    for _ in range(100):
        if call.events:
            break
        await asyncio.sleep(0.01)
    assert call.events == [("failed", f"OSError: [Errno {errno.ENOSPC}] No space left on device")]
    call.ticks(BATCH_SAMPLES // FRAME + 1)  # the next full tap finds the failure
    assert not any(tap.recording for tap in call.bridge.taps)
    assert all(tap.count == 0 for tap in call.bridge.taps)
    call.ticks(2 * BATCH_SAMPLES // FRAME)
    assert all(tap.count == 0 for tap in call.bridge.taps)  # nothing gathered any more
    summary = await call.stop(sink)
    assert summary["failed"] is True and writers[0].aborted
