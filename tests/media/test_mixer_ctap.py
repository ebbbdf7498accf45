"""Recorded participants tapped in C (``csrc/tap.c``): one ``tap_frames`` call per tick pops
every tapped participant's jitter buffer and gathers its µ-law codes; the sink hears of a tap
only when it holds ``capacity`` samples. Checked against the Python tap (``on_codes``) frame for
frame, and when a player or a mixed listener joins (the bridge stays in C: see also
``test_tap_topology.py``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pytest

from callwarden.media import fastpath, g711
from callwarden.media.bridge import Bridge
from callwarden.media.fastpath import Tap
from callwarden.media.g711 import Encoding
from callwarden.media.mixer import Mixer
from callwarden.media.player import ToneSource
from callwarden.media.stream import OutgoingStream

from .audio import Collector

pytestmark = pytest.mark.skipif(
    not fastpath.AVAILABLE and os.environ.get("CI") != "true",
    reason="the C extension is not built (allowed outside CI: the Python tap runs)",
)


class CodeTracks:
    """The Python tap's view: every tick's frames, by participant (None: silence)."""

    def __init__(self) -> None:
        self.frames: dict[str, list[bytes]] = {}

    def on_codes(self, frames: list[tuple[str, bytes | None]], timestamp: int) -> None:
        for participant_id, codes in frames:
            self.frames.setdefault(participant_id, []).append(
                codes if codes is not None else b"\xff" * 160
            )

    def on_frame(self, participant_id: str, pcm: object, timestamp: int) -> None:
        raise AssertionError("a µ-law sink never gets PCM frames")


class TapTracks(CodeTracks):
    """A TapSink: takes its taps' samples when full (and the rest when asked)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.taps: list[Tap] = []
        self.batches: list[tuple[str, int, bytes]] = []
        self.on_taps_calls = 0

    def on_taps(self, taps: Sequence[Tap]) -> None:
        self.on_taps_calls += 1
        self.drain()
        self.taps = list(taps)
        for tap in self.taps:
            tap.capacity = self.capacity
            tap.owner = self.full

    def full(self, tap: Tap) -> None:
        # full, or already taken when the bridge's first full tap was handled this tick
        assert tap.count >= self.capacity or tap.count == 0
        self.drain()

    def drain(self) -> None:
        for tap in self.taps:
            taken = tap.take()
            if taken is not None:
                start, codes = taken
                self.batches.append((tap.participant_id, start, codes))
                self.frames.setdefault(tap.participant_id, []).extend(
                    codes[i : i + 160] for i in range(0, len(codes), 160)
                )


def _leg(bridge: Bridge, pid: str, role: str, encoding: Encoding) -> None:
    stream = OutgoingStream(0x6000 + len(bridge.members), 100, 9000, encoding=encoding)
    stream.payload_type = encoding.static_payload_type
    stream.transport = Collector()
    stream.address = ("192.0.2.10", 40000 + len(bridge.members))
    bridge.add(pid, role, stream=stream)


def _payloads(count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, 160, dtype=np.uint8).tobytes() for _ in range(count)]


def _drive(sink: CodeTracks, ticks: int, losses: set[int], encoding: Encoding) -> Bridge:
    """A customer and an operator, their packets pushed as the pump does, one tick per
    packet, packet numbers in ``losses`` never sent (silence or loss in the buffer)."""
    bridge = Bridge("b", jitter_depth=2)
    mixer = Mixer()
    mixer.add(bridge)
    _leg(bridge, "c", "customer", encoding)
    _leg(bridge, "o", "operator", encoding)
    bridge.set_track_sink(sink)
    customer, operator = _payloads(ticks, 1), _payloads(ticks, 2)
    for tick in range(ticks):
        if tick not in losses:
            bridge.members["c"].on_audio(customer[tick], 0, 1000 + tick, 0, tick * 0.02)
            bridge.members["o"].on_audio(operator[tick], 0, 50 + tick, 0, tick * 0.02)
        mixer.tick(tick * 0.02 + 0.001)
    return bridge


@pytest.mark.parametrize("encoding", [Encoding.PCMU, Encoding.PCMA])
def test_the_c_tap_gathers_what_the_python_tap_hands_over_frame_for_frame(
    encoding: Encoding,
) -> None:
    losses = {5, 17, 18, 40, 41, 42, 43, 44, 45}  # a loss, a burst, an underrun
    python, in_c = CodeTracks(), TapTracks(capacity=60 * 160)
    _drive(python, 130, losses, encoding)
    bridge = _drive(in_c, 130, losses, encoding)
    assert bridge.taps and not bridge.frame_members
    in_c.drain()
    assert in_c.frames == python.frames
    assert len(python.frames["c"]) == 130
    first = _payloads(1, 2)[0]
    if encoding is Encoding.PCMA:  # translated to the µ-law code of each sample
        first = g711.encode(g711.decode(first, Encoding.PCMA), Encoding.PCMU)
    assert python.frames["o"][0] != first  # (the buffer starts at depth 2: silence first)
    assert first in python.frames["o"]
    # full batches reported at the capacity, each starting where the previous one ended
    starts = [(pid, start, len(codes)) for pid, start, codes in in_c.batches]
    assert starts[:4] == [("c", 0, 9600), ("o", 0, 9600), ("c", 9600, 9600), ("o", 9600, 9600)]


def test_not_recording_pops_and_drops_unseen_and_the_clock_goes_on() -> None:
    sink = TapTracks(capacity=10 * 160)
    bridge = Bridge("b", jitter_depth=1)
    mixer = Mixer()
    mixer.add(bridge)
    _leg(bridge, "c", "customer", Encoding.PCMU)
    bridge.set_track_sink(sink)
    (tap,) = bridge.taps
    payloads = _payloads(30, 3)
    for tick in range(30):
        tap.recording = not 10 <= tick < 20
        bridge.members["c"].on_audio(payloads[tick], 0, tick, 0, tick * 0.02)
        mixer.tick(tick * 0.02)
    sink.drain()
    assert len(bridge.members["c"].buffer or ()) == 0  # every frame was popped
    assert tap.clock == bridge.sample_clock == 30 * 160
    assert [(start, len(codes)) for _, start, codes in sink.batches] == [(0, 1600), (3200, 1600)]
    assert b"".join(codes for _, _, codes in sink.batches) == b"".join(
        payloads[:10] + payloads[20:]
    )


def test_a_player_joining_gets_a_fed_tap_and_the_legs_keep_theirs_without_a_gap() -> None:
    sink = TapTracks(capacity=1 << 20)
    bridge = Bridge("b", jitter_depth=1)
    mixer = Mixer()
    mixer.add(bridge)
    _leg(bridge, "c", "customer", Encoding.PCMU)
    _leg(bridge, "o", "operator", Encoding.PCMU)
    bridge.set_track_sink(sink)
    assert len(bridge.taps) == 2 and sink.on_taps_calls == 1
    customer_tap = bridge.taps[0]
    payloads = _payloads(20, 4)
    for tick in range(20):
        if tick == 8:
            bridge.add("m", "player", frame_source=ToneSource([440.0]))
            bridge.set_hearing("c", ["m"])  # the customer is mixed: hears the player
            assert len(bridge.taps) == 3 and sink.on_taps_calls == 2
            assert [tap.buffer is None for tap in bridge.taps] == [False, False, True]
            assert bridge.taps[0] is customer_tap and bridge.tapped_in_c
        if tick == 14:
            bridge.remove("m")
            assert len(bridge.taps) == 2 and sink.on_taps_calls == 3
        bridge.members["c"].on_audio(payloads[tick], 0, tick, 0, tick * 0.02)
        mixer.tick(tick * 0.02)
    sink.drain()
    assert b"".join(sink.frames["c"]) == b"".join(payloads)
    assert len(sink.frames["m"]) == 6  # the player's frames, fed to its tap while it was there
    # taken when the list changed (the player came, the player went) and at the end
    assert [start for pid, start, _ in sink.batches if pid == "c"] == [0, 8 * 160, 14 * 160]


def test_a_mixed_listener_is_tapped_in_c_and_a_sink_without_taps_keeps_the_python_tap() -> None:
    bridge = Bridge("b", jitter_depth=1)
    _leg(bridge, "c", "customer", Encoding.PCMU)
    _leg(bridge, "o", "operator", Encoding.PCMU)
    _leg(bridge, "s", "supervisor", Encoding.PCMU)
    bridge.set_hearing("s", ["c", "o"])  # a monitoring supervisor is mixed
    bridge.set_track_sink(TapTracks(capacity=160))
    assert len(bridge.taps) == 3 and len(bridge.buffer_taps) == 3
    assert [m.id for m in bridge.frame_members] == ["c", "o"]  # what the mixer mixes
    plain = Bridge("p", jitter_depth=1)
    _leg(plain, "c", "customer", Encoding.PCMU)
    plain.set_track_sink(CodeTracks())
    assert plain.taps == [] and len(plain.frame_members) == 1 and not plain.tapped_in_c


def test_tap_arguments_are_checked() -> None:
    from callwarden.media.jitter import JitterBuffer

    buffer = JitterBuffer(1, 6)
    with pytest.raises(ValueError, match="capacity"):
        Tap(buffer, "c", 0, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="256 bytes"):
        Tap(buffer, "c", 0, 160, b"short")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Tap(object(), "c", 0, 160)  # type: ignore[arg-type]
    tap = Tap(buffer, "c", 0, 160)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity"):
        tap.capacity = 0
    with pytest.raises(TypeError):
        fastpath.tap_frames([tap, object()])  # type: ignore[list-item]
    assert tap.take() is None
