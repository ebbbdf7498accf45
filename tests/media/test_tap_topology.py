"""Every recorded bridge is tapped in C, whatever its topology, and a change of topology loses
and doubles no frame.

Each RTP leg sends, at tick ``t``, a payload carrying the counter ``t`` (PCMU: the tap keeps
the codes as received), so a track is right sample for sample when its frame at bridge
timestamp ``160 t`` carries ``t``, for every tick its participant was in the bridge, and no
other frame is there. The script goes through hold music (a player joins, the customer hears
only it, it leaves), a supervisor joining (heard by nobody), listening, whispering, barging,
back to normal and leaving. The same script through the Python tap (a sink without
``on_taps``) gives the same tracks and the same packets to every listener. Through the
recorder's capture sink, a pause in the middle of the mixed stretch leaves nothing at all of
the paused ticks, and the batches still reach the writer at least every 1.2 s of audio."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from callwarden.media import fastpath, g711
from callwarden.media.bridge import Bridge
from callwarden.media.fastpath import Tap
from callwarden.media.g711 import Encoding
from callwarden.media.matrix import Mode
from callwarden.media.mixer import Mixer
from callwarden.media.player import ToneSource
from callwarden.media.recording_sink import RecordingContext
from callwarden.media.stream import OutgoingStream
from callwarden.recording.capture import BATCH_SAMPLES, CaptureProvider, CaptureSink

from .audio import Collector

pytestmark = pytest.mark.skipif(
    not fastpath.AVAILABLE and os.environ.get("CI") != "true",
    reason="the C extension is not built (allowed outside CI: the Python tap runs)",
)

FRAME = 160
TICKS = 200
SILENCE = b"\xff" * FRAME
LEGS = {"c": "customer", "o": "operator", "s": "supervisor"}


def counter(tick: int, participant_id: str) -> bytes:
    """A PCMU payload naming its tick and sender; no byte is 0x7F or 0xFF."""
    return bytes([tick // 100, tick % 100, ord(participant_id)]) * 53 + bytes([tick % 100])


def tick_of(frame: bytes, participant_id: str) -> int | None:
    """The tick a frame was sent at, None for silence."""
    if frame == SILENCE:
        return None
    assert frame == counter(frame[0] * 100 + frame[1], participant_id), "a mangled frame"
    return frame[0] * 100 + frame[1]


class Script:
    """The topology changes, tick by tick (``pause``/``resume`` only with a capture sink)."""

    def __init__(self, bridge: Bridge, sink: object) -> None:
        self.bridge = bridge
        self.sink = sink
        self.present: dict[str, set[int]] = {pid: set() for pid in (*LEGS, "m")}
        #: What each leg was sent (its listener's packets), by participant.
        self.sent: dict[str, Collector] = {}
        self.leg("c")
        self.leg("o")

    def leg(self, pid: str) -> None:
        stream = OutgoingStream(0x5000 + ord(pid), 100, 9000, encoding=Encoding.PCMU)
        stream.payload_type = 0
        stream.transport = self.sent[pid] = Collector()
        stream.address = ("192.0.2.30", 42000 + ord(pid))
        self.bridge.add(pid, LEGS[pid], stream=stream)

    def change(self, tick: int) -> None:
        bridge = self.bridge
        if tick == 20:  # hold music: the customer hears only the player
            bridge.add("m", "player", frame_source=ToneSource([392.0, 494.0]))
            bridge.set_hearing("c", ["m"])
        elif tick == 45:
            bridge.remove("m")
            bridge.apply(Mode.NORMAL)
        elif tick == 60:  # a supervisor joins, heard by nobody, hearing nothing
            self.leg("s")
        elif tick == 75:
            bridge.apply(Mode.LISTEN)
        elif tick == 100:
            bridge.apply(Mode.WHISPER)
        elif tick == 125:
            bridge.apply(Mode.BARGE)
        elif tick == 150:
            bridge.apply(Mode.NORMAL)
        elif tick == 165:
            bridge.remove("s")
        if isinstance(self.sink, CaptureSink):
            if tick == 110:  # card data, while the supervisor whispers
                self.sink.pause()
            elif tick == 135:  # resumed while everyone hears everyone
                self.sink.resume()

    def run(self, mixer: Mixer, on_tick: Callable[[int], None] | None = None) -> None:
        bridge = self.bridge
        for tick in range(TICKS):
            self.change(tick)
            for pid, member in bridge.members.items():
                self.present[pid].add(tick)
                if member.stream is not None:  # what the pump does with each packet
                    member.on_audio(counter(tick, pid), 0, tick, 0, tick * 0.02)
            mixer.tick(tick * 0.02 + 0.001)
            if on_tick is not None:
                on_tick(tick)


def _call(sink: object) -> tuple[Bridge, Mixer, Script]:
    bridge = Bridge("b", jitter_depth=1)
    mixer = Mixer()
    mixer.add(bridge)
    script = Script(bridge, sink)
    bridge.set_track_sink(sink)  # type: ignore[arg-type]
    return bridge, mixer, script


class PythonTap:
    """The Python tap's view: every tick's frame of every participant, by timestamp."""

    def __init__(self) -> None:
        self.tracks: dict[str, dict[int, bytes]] = {}

    def on_codes(self, frames: Iterable[tuple[str, bytes | None]], timestamp: int) -> None:
        for pid, codes in frames:
            track = self.tracks.setdefault(pid, {})
            assert timestamp not in track
            track[timestamp] = SILENCE if codes is None else codes

    def on_frame(self, participant_id: str, pcm: object, timestamp: int) -> None:
        raise AssertionError("a µ-law sink never gets PCM frames")


class CTap(PythonTap):
    """A TapSink as the capture is one: takes what its taps hold before adopting a new list,
    and when one is full (a small capacity, so batches end all over the script)."""

    def __init__(self) -> None:
        super().__init__()
        self.taps: list[Tap] = []
        self.lists: list[list[Tap]] = []

    def on_taps(self, taps: Sequence[Tap]) -> None:
        self.take()
        self.taps = list(taps)
        self.lists.append(self.taps)
        for tap in self.taps:
            tap.capacity = 7 * FRAME
            tap.owner = lambda tap: self.take()

    def take(self) -> None:
        for tap in self.taps:
            taken = tap.take()
            if taken is not None:
                start, codes = taken
                for offset in range(0, len(codes), FRAME):
                    self.on_codes(
                        [(tap.participant_id, codes[offset : offset + FRAME])], start + offset
                    )


def _sent(script: Script) -> dict[str, list[bytes]]:
    return {pid: [data for data, _ in sent.datagrams] for pid, sent in script.sent.items()}


def _difference(got: Mapping[str, Any], expected: Mapping[str, Any]) -> str | None:
    """Where two sets of tracks (timestamp -> frame) or packet lists first differ (a short
    answer: pytest's own diff of thousands of frames takes minutes)."""
    if got.keys() != expected.keys():
        return f"participants {sorted(got)} != {sorted(expected)}"
    for pid in got:
        ours, theirs = got[pid], expected[pid]
        if isinstance(ours, list):
            ours, theirs = dict(enumerate(ours)), dict(enumerate(theirs))
        for key in sorted(ours.keys() | theirs.keys()):
            if ours.get(key) != theirs.get(key):
                return f"{pid}: first difference at {key}"
    return None


def test_every_topology_is_tapped_in_c_and_each_track_is_exact_through_every_switch() -> None:
    sink = CTap()
    bridge, mixer, script = _call(sink)
    taps_in_c: list[int] = []
    script.run(mixer, lambda tick: taps_in_c.append(len(bridge.buffer_taps)))
    sink.take()
    # in C all along: two legs, three while the supervisor is there (the player is fed)
    assert taps_in_c == [3 if 60 <= t < 165 else 2 for t in range(TICKS)]
    assert bridge.tapped_in_c and all(m.stream is None for m in bridge.frame_members)
    # a new list only when someone joined or left; a participant keeps its tap throughout
    assert [sorted(t.participant_id for t in taps) for taps in sink.lists] == [
        ["c", "o"],
        ["c", "m", "o"],
        ["c", "o"],
        ["c", "o", "s"],
        ["c", "o"],
    ]
    assert len({id(taps[0]) for taps in sink.lists}) == 1
    for pid in LEGS:
        track = sink.tracks[pid]
        assert sorted(track) == [FRAME * t for t in sorted(script.present[pid])]
        assert all(tick_of(track[FRAME * t], pid) == t for t in script.present[pid])
    reference, played = ToneSource([392.0, 494.0]), []
    for _ in range(25):
        frame = reference.read_frame()
        assert frame is not None
        played.append(g711.encode(frame, Encoding.PCMU))
    assert [sink.tracks["m"][FRAME * t] for t in sorted(script.present["m"])] == played


def test_the_c_taps_and_the_python_tap_give_the_same_tracks_and_the_same_mixes() -> None:
    python, in_c = PythonTap(), CTap()
    python_bridge, python_mixer, python_script = _call(python)
    c_bridge, c_mixer, c_script = _call(in_c)
    python_script.run(python_mixer)
    c_script.run(c_mixer)
    in_c.take()
    assert not python_bridge.tapped_in_c and python_bridge.taps == []
    assert _difference(in_c.tracks, python.tracks) is None
    assert _difference(_sent(c_script), _sent(python_script)) is None
    assert c_bridge.tapped_in_c and len(_sent(c_script)["s"]) >= 165 - 60 - 1  # mixes were sent


class CodesWriter:
    """An in-memory writer taking µ-law runs as they are (a GroupCommitWriter)."""

    unsynced = False

    def __init__(self) -> None:
        self.tracks: dict[str, dict[int, bytes]] = {}
        self.markers: list[tuple[str, int]] = []

    def write_codes(self, runs: Iterable[tuple[str, int, bytes]], *, sync: bool) -> None:
        for track, start, codes in runs:
            frames = self.tracks.setdefault(track, {})
            for offset in range(0, len(codes), FRAME):
                assert start + offset not in frames  # nothing written twice
                frames[start + offset] = codes[offset : offset + FRAME]

    def write(self, track: str, pcm: object, timestamp: int) -> None:
        raise AssertionError("the capture hands a grouped writer µ-law")

    def pause(self, timestamp: int) -> None:
        self.markers.append(("pause", timestamp))

    def resume(self, timestamp: int) -> None:
        self.markers.append(("resume", timestamp))

    def close(self, end: int) -> Mapping[str, object]:
        self.markers.append(("close", end))
        return {}

    def abort(self) -> None:
        raise AssertionError("nothing failed")

    def fileno(self) -> int:
        return -1

    def sync(self) -> None:
        pass

    def mark_synced(self) -> None:
        pass


class Watched(CaptureProvider):
    """The capture's provider, noting the bridge clock of every batch submitted."""

    def __init__(self, writers: list[CodesWriter], clock: Callable[[], int]) -> None:
        def open_writer(spec: Mapping[str, object]) -> CodesWriter:
            writers.append(CodesWriter())
            return writers[-1]

        super().__init__(open_writer)
        self.clock = clock
        self.batches: list[int] = []

    def submit(self, sink: CaptureSink, kind: str, payload: object, *, force: bool = False) -> None:
        if kind == "frames":
            self.batches.append(self.clock())
        super().submit(sink, kind, payload, force=force)


class PythonOnly:
    """The capture sink without ``on_taps``: the per-tick Python tap."""

    def __init__(self, sink: CaptureSink) -> None:
        self.sink = sink

    def on_codes(self, frames: list[tuple[str, bytes | None]], timestamp: int) -> None:
        self.sink.on_codes(frames, timestamp)

    def on_frame(self, participant_id: str, pcm: object, timestamp: int) -> None:
        raise AssertionError("a µ-law sink never gets PCM frames")


async def _captured(python_only: bool) -> tuple[CodesWriter, Mapping[str, object], list[int]]:
    writers: list[CodesWriter] = []
    bridge = Bridge("b", jitter_depth=1)
    mixer = Mixer()
    mixer.add(bridge)
    provider = Watched(writers, lambda: bridge.sample_clock)
    members = bridge.members
    context = RecordingContext(
        "b",
        {"recording_id": "r"},
        lambda pid: members[pid].role if pid in members else None,
        lambda: bridge.sample_clock,
        lambda kind, detail: None,
    )
    sink = provider.open(context)
    script = Script(bridge, sink)  # the customer and the operator join
    bridge.set_track_sink(PythonOnly(sink) if python_only else sink)  # type: ignore[arg-type]
    assert bridge.tapped_in_c is not python_only
    script.run(mixer)
    bridge.set_track_sink(None)
    summary = await sink.stop()
    await provider.close()
    return writers[0], summary, provider.batches


async def test_through_the_capture_a_pause_in_a_mixed_bridge_leaves_nothing_and_batches_flow() -> (
    None
):
    writer, summary, batches = await _captured(python_only=False)
    python, python_summary, _ = await _captured(python_only=True)
    assert _difference(writer.tracks, python.tracks) is None
    assert writer.markers == python.markers
    assert summary == python_summary
    paused = range(110, 135)
    assert summary["pauses"] == [[110 * FRAME, 135 * FRAME]]
    assert set(writer.tracks) == {"customer", "operator", "supervisor"}  # no player track
    present = {"customer": range(TICKS), "operator": range(TICKS), "supervisor": range(60, 165)}
    for track, ticks in present.items():
        frames = writer.tracks[track]
        recorded = [t for t in ticks if t not in paused]
        assert sorted(frames) == [FRAME * t for t in recorded]  # nothing of the paused ticks
        pid = {"customer": "c", "operator": "o", "supervisor": "s"}[track]
        assert all(tick_of(frames[FRAME * t], pid) == t for t in recorded)
    # the crash bound's media side: a batch leaves at least every 1.2 s of recorded audio
    gaps = np.diff([0, *batches])
    assert batches and max(gaps) <= BATCH_SAMPLES + 25 * FRAME  # (the pause: nothing to send)
    assert sum(1 for gap in gaps if gap > BATCH_SAMPLES) <= 1


def test_a_fed_tap_and_a_buffer_tap_are_told_apart() -> None:
    from callwarden.media.jitter import JitterBuffer

    fed = Tap(None, "m", 320, 2 * FRAME)
    assert fed.feed(b"\x01" * FRAME) is False and fed.feed(None) is True
    assert fed.take() == (320, b"\x01" * FRAME + SILENCE) and fed.clock == 640
    fed.recording = False
    assert fed.feed(b"\x02" * FRAME) is False and fed.count == 0 and fed.clock == 800
    with pytest.raises(TypeError, match="fed"):
        fastpath.tap_frames([fed])
    with pytest.raises(ValueError, match="table"):
        Tap(None, "m", 0, FRAME, bytes(256))
    buffer = JitterBuffer(1, 6)
    tap = Tap(buffer, "c", 0, FRAME)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="only a fed tap"):
        tap.feed(b"\x00" * FRAME)
    buffer.push(7, b"\x03" * FRAME)
    assert fastpath.tap_frames([tap]) == [tap] and tap.frame == b"\x03" * FRAME
    assert fastpath.tap_frames([tap]) is not None and tap.frame is None  # an underrun
    assert tap.take() == (0, b"\x03" * FRAME + SILENCE)


def test_a_leg_changing_encoding_gets_a_new_tap_and_loses_nothing() -> None:
    sink = CTap()
    bridge, mixer, _ = _call(sink)
    first = bridge.members["o"].tap
    for tick in range(10):
        if tick == 4:
            stream = bridge.members["o"].stream
            assert stream is not None
            stream.encoding = Encoding.PCMA
            bridge.rebuild()
        for pid in ("c", "o"):
            bridge.members[pid].on_audio(counter(tick, pid), 0, tick, 0, tick * 0.02)
        mixer.tick(tick * 0.02)
    sink.take()
    assert bridge.members["o"].tap is not first and bridge.members["c"].tap is sink.lists[0][0]
    track = sink.tracks["o"]
    assert sorted(track) == [FRAME * t for t in range(10)]
    assert all(tick_of(track[FRAME * t], "o") == t for t in range(4))
    pcm = g711.decode(counter(5, "o"), Encoding.PCMA)
    assert track[5 * FRAME] == g711.encode(pcm, Encoding.PCMU)  # the µ-law of each A-law sample
