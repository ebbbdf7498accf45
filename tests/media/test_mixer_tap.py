"""The mixer's µ-law tap: a sink with ``on_codes`` gets each participant's payload as received
(A-law translated, players encoded), one call per bridge and tick, nothing decoded for it."""

from __future__ import annotations

import numpy as np

from callwarden.media import g711
from callwarden.media.bridge import Bridge
from callwarden.media.g711 import Encoding
from callwarden.media.mixer import Mixer
from callwarden.media.player import ToneSource
from callwarden.media.stream import OutgoingStream

from .audio import Collector


class CodeTracks:
    def __init__(self) -> None:
        self.calls: list[tuple[int, list[tuple[str, bytes | None]]]] = []

    def on_codes(self, frames: list[tuple[str, bytes | None]], timestamp: int) -> None:
        self.calls.append((timestamp, list(frames)))

    def on_frame(self, participant_id: str, pcm: object, timestamp: int) -> None:
        raise AssertionError("a sink with on_codes never gets PCM frames")


def _leg(bridge: Bridge, pid: str, role: str, encoding: Encoding) -> OutgoingStream:
    stream = OutgoingStream(0x6000 + len(bridge.members), 100, 9000, encoding=encoding)
    stream.payload_type = encoding.static_payload_type
    stream.transport = Collector()
    stream.address = ("192.0.2.10", 40000)
    bridge.add(pid, role, stream=stream)
    return stream


def test_codes_as_received_alaw_translated_players_encoded_silence_none() -> None:
    bridge = Bridge("b1", jitter_depth=1)
    mixer = Mixer()
    mixer.add(bridge)
    _leg(bridge, "c", "customer", Encoding.PCMU)
    _leg(bridge, "o", "operator", Encoding.PCMA)
    tone = ToneSource([1000.0], level_dbfs=-12)
    bridge.add("m", "player", frame_source=tone)
    sink = CodeTracks()
    bridge.set_track_sink(sink)
    pcm = (np.sin(np.arange(160) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
    ulaw, alaw = g711.encode(pcm, Encoding.PCMU), g711.encode(pcm, Encoding.PCMA)
    bridge.members["c"].on_audio(ulaw, 0, 100, 0, 0.0)
    bridge.members["o"].on_audio(alaw, 0, 200, 0, 0.0)
    mixer.tick(0.005)
    mixer.tick(0.025)  # nobody sent: silence for the legs
    assert [timestamp for timestamp, _ in sink.calls] == [0, 160]
    first = dict(sink.calls[0][1])
    assert first["c"] == ulaw  # the payload itself, not decoded and re-encoded
    operator = first["o"]
    assert operator is not None and len(operator) == 160
    # the µ-law code of each A-law sample (G.711's two laws quantise differently)
    assert operator == g711.encode(g711.decode(alaw, Encoding.PCMA), Encoding.PCMU)
    player = first["m"]
    assert (
        player is not None
        and abs(int(np.abs(g711.decode(player, Encoding.PCMU).astype(np.int32)).max()) - 8230) < 400
    )  # -12 dBFS
    assert dict(sink.calls[1][1])["c"] is None and dict(sink.calls[1][1])["o"] is None


def test_every_alaw_code_translates_to_the_ulaw_code_of_its_sample() -> None:
    bridge = Bridge("b2", jitter_depth=1)
    mixer = Mixer()
    mixer.add(bridge)
    _leg(bridge, "o", "operator", Encoding.PCMA)
    sink = CodeTracks()
    bridge.set_track_sink(sink)
    for sequence, start in enumerate(range(0, 256, 160)):
        codes = bytes((start + i) % 256 for i in range(160))
        bridge.members["o"].on_audio(codes, 0, sequence, 0, 0.0)
        mixer.tick(0.02 * sequence)
        got = dict(sink.calls[-1][1])["o"]
        assert got is not None
        expected = g711.encode(g711.decode(codes, Encoding.PCMA), Encoding.PCMU)
        assert got == expected
