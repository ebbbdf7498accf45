"""The bridge and mixer with deterministic ticks: who hears what, fast path, silence, clipping,
continuity of the listener's stream across fast path <-> mixing, per-participant tracks."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest

from callwarden.media import g711
from callwarden.media.bridge import Bridge, BridgeError, Member
from callwarden.media.g711 import Encoding
from callwarden.media.matrix import Mode
from callwarden.media.mixer import Mixer
from callwarden.media.player import ToneSource
from callwarden.media.rtp import RtpPacket
from callwarden.media.stream import OutgoingStream

from .audio import Collector, decode_packets, tone_level_db

FREQUENCIES = {"customer": 440.0, "operator": 1300.0, "supervisor": 2100.0}
PRESENT_DB = -20.0  # a -12 dBFS tone measures about -12 dB
ABSENT_DB = -60.0


class Party:
    """A phone in memory: sends a tone into the bridge, collects what the bridge sends it."""

    def __init__(self, bridge: Bridge, pid: str, role: str, encoding: Encoding = Encoding.PCMU):
        self.id = pid
        self.encoding = encoding
        self.collector = Collector()
        self.stream = OutgoingStream(0x5000 + len(bridge.members), 100, 9000, encoding=encoding)
        self.stream.payload_type = encoding.static_payload_type
        self.stream.dtmf_payload_type = 101
        self.stream.transport = self.collector
        self.stream.address = ("192.0.2.10", 40000)
        self.member: Member = bridge.add(pid, role, stream=self.stream)
        self.tone = ToneSource([FREQUENCIES.get(role, 700.0)], level_dbfs=-12)
        self.seq = 30000
        self.ts = 123456
        self.talking = True

    def send(self, now: float, payload: bytes | None = None) -> None:
        if payload is None:
            frame = self.tone.read_frame()
            assert frame is not None
            payload = g711.encode(frame, self.encoding)
        self.member.on_audio(payload, 0, self.seq, self.ts, now)
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 160) & 0xFFFFFFFF

    @property
    def packets(self) -> list[RtpPacket]:
        return self.collector.packets

    def heard(self, skip: int = 10) -> npt.NDArray[np.int16]:
        return decode_packets(self.packets[skip:], self.encoding)


def run(mixer: Mixer, parties: list[Party], ticks: int, start: int = 0) -> None:
    """Each 20 ms: every talking party sends one frame, then the engine ticks 5 ms later."""
    for k in range(start, start + ticks):
        now = k * 0.02
        for party in parties:
            if party.talking:
                party.send(now)
        mixer.tick(now + 0.005)


def make(*roles: str) -> tuple[Bridge, Mixer, dict[str, Party]]:
    bridge = Bridge("b1")
    mixer = Mixer()
    mixer.add(bridge)
    parties = {role: Party(bridge, role[0], role) for role in roles}
    return bridge, mixer, parties


def levels(party: Party) -> dict[str, float]:
    pcm = party.heard()
    return {role: tone_level_db(pcm, freq) for role, freq in FREQUENCIES.items()}


def test_two_party_fast_path_forwards_payload_unchanged_at_once() -> None:
    bridge, _mixer, p = make("customer", "operator")
    customer, operator = p["customer"], p["operator"]
    assert [m.id for m in bridge.fast_path_listeners] == ["c", "o"]
    payload = bytes(range(160))
    customer.send(1.0, payload)
    # Forwarded on arrival, before any tick, with the operator's own SSRC and numbering.
    [packet] = operator.packets
    assert packet.payload == payload
    assert (packet.ssrc, packet.sequence_number, packet.payload_type) == (
        operator.stream.ssrc,
        101,
        0,
    )
    assert customer.packets == []  # nobody hears themselves
    customer.send(1.02, payload)
    assert [p.sequence_number for p in operator.packets] == [101, 102]
    assert operator.packets[1].timestamp - operator.packets[0].timestamp == 160


def test_normal_call_each_hears_only_the_other() -> None:
    _, mixer, p = make("customer", "operator")
    run(mixer, list(p.values()), 60)
    heard_by_customer, heard_by_operator = levels(p["customer"]), levels(p["operator"])
    assert heard_by_customer["operator"] > PRESENT_DB and heard_by_customer["customer"] < ABSENT_DB
    assert heard_by_operator["customer"] > PRESENT_DB and heard_by_operator["operator"] < ABSENT_DB


EXPECTED_HEARING = {
    # mode: {listener: roles heard}
    Mode.LISTEN: {
        "customer": {"operator"},
        "operator": {"customer"},
        "supervisor": {"customer", "operator"},
    },
    Mode.WHISPER: {
        "customer": {"operator"},
        "operator": {"customer", "supervisor"},
        "supervisor": {"customer", "operator"},
    },
    Mode.BARGE: {
        "customer": {"operator", "supervisor"},
        "operator": {"customer", "supervisor"},
        "supervisor": {"customer", "operator"},
    },
    Mode.TAKEOVER: {"customer": {"supervisor"}, "operator": set(), "supervisor": {"customer"}},
}


@pytest.mark.parametrize("mode", list(EXPECTED_HEARING))
def test_monitoring_modes_produce_exactly_the_expected_audio(mode: Mode) -> None:
    bridge, mixer, p = make("customer", "operator", "supervisor")
    bridge.apply(mode)
    run(mixer, list(p.values()), 60)
    for listener, expected in EXPECTED_HEARING[mode].items():
        measured = levels(p[listener])
        for role, level in measured.items():
            if role in expected:
                assert level > PRESENT_DB, (mode, listener, role, level)
            else:
                assert level < ABSENT_DB, (mode, listener, role, level)


def test_silence_frames_when_nothing_to_hear() -> None:
    bridge, mixer, p = make("customer", "operator", "supervisor")
    bridge.apply(Mode.TAKEOVER)  # the operator hears nobody
    for party in p.values():
        party.talking = False
    run(mixer, list(p.values()), 10)
    for party in p.values():
        packets = party.packets
        assert len(packets) == 10  # one frame every tick, for everyone
        assert {pkt.payload for pkt in packets} == {b"\xff" * 160}


def test_fast_path_listener_gets_silence_while_its_source_is_quiet() -> None:
    _, mixer, p = make("customer", "operator")
    customer, operator = p["customer"], p["operator"]
    operator.talking = False
    run(mixer, [customer, operator], 5)
    assert len(operator.packets) == 5 and len(customer.packets) == 5  # customer: silence fill
    customer.talking = False
    run(mixer, [customer, operator], 10, start=5)
    # The operator's forwarded stream falls back to silence after 0.1 s without packets.
    tail = operator.packets[5:]
    assert 4 <= len([pkt for pkt in tail if pkt.payload == b"\xff" * 160]) <= 6


def test_two_loud_sources_clip_instead_of_wrapping() -> None:
    bridge, mixer, p = make("customer", "operator", "supervisor")
    bridge.apply(Mode.BARGE)
    loud = g711.encode(np.full(160, 20000, dtype=np.int16), Encoding.PCMU)
    quiet = g711.encode(np.full(160, -20000, dtype=np.int16), Encoding.PCMU)
    for k in range(10):
        p["customer"].send(k * 0.02, loud)
        p["operator"].send(k * 0.02, loud)
        p["supervisor"].send(k * 0.02, quiet)
        mixer.tick(k * 0.02 + 0.005)
    heard = p["supervisor"].heard(skip=3)
    assert heard.size and set(heard.tolist()) == {32124}  # the largest µ-law value, not negative
    low = p["customer"].heard(skip=3)  # operator (+~20000) + supervisor (-~20000) ~ 0
    assert np.abs(low).max() <= 1024


def test_seq_and_timestamp_continuous_across_fast_path_and_mixing() -> None:
    bridge, mixer, p = make("customer", "operator", "supervisor")
    operator = p["operator"]
    run(mixer, list(p.values()), 20)  # normal: operator on the fast path
    assert operator.member in bridge.fast_path_listeners
    bridge.apply(Mode.WHISPER)  # operator now mixes customer + supervisor
    assert operator.member in bridge.mix_listeners
    run(mixer, list(p.values()), 20, start=20)
    bridge.apply(Mode.NORMAL)  # back to the fast path
    run(mixer, list(p.values()), 20, start=40)
    packets = operator.packets
    assert len(packets) == 60  # exactly one packet per 20 ms, no doubled frame at a switch
    seqs = [pkt.sequence_number for pkt in packets]
    stamps = [pkt.timestamp for pkt in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert all((b - a) & 0xFFFFFFFF == 160 for a, b in itertools.pairwise(stamps))
    assert {pkt.ssrc for pkt in packets} == {operator.stream.ssrc}


def test_switch_between_a_forwarded_packet_and_the_tick_sends_no_extra_frame() -> None:
    bridge, mixer, p = make("customer", "operator", "supervisor")
    operator = p["operator"]
    run(mixer, list(p.values()), 10)
    for party in p.values():  # this period's packets arrive; the operator's is forwarded
        party.send(0.2)
    bridge.apply(Mode.BARGE)
    mixer.tick(0.205)  # the operator already has a packet for this period
    mixer.tick(0.225)
    stamps = [pkt.timestamp for pkt in operator.packets]
    assert len(stamps) == 12
    assert all((b - a) & 0xFFFFFFFF == 160 for a, b in itertools.pairwise(stamps))


def test_different_encodings_are_transcoded_through_the_mixer() -> None:
    bridge = Bridge("b1")
    mixer = Mixer()
    mixer.add(bridge)
    customer = Party(bridge, "c", "customer", Encoding.PCMA)
    operator = Party(bridge, "o", "operator", Encoding.PCMU)
    assert bridge.fast_path_listeners == []
    run(mixer, [customer, operator], 60)
    assert tone_level_db(operator.heard(), 440.0) > PRESENT_DB
    assert tone_level_db(customer.heard(), 1300.0) > PRESENT_DB
    assert {pkt.payload_type for pkt in customer.packets} == {8}


class Tracks:
    def __init__(self) -> None:
        self.frames: dict[str, list[tuple[int, npt.NDArray[np.int16]]]] = {}

    def on_frame(self, participant_id: str, pcm: npt.NDArray[np.int16], timestamp: int) -> None:
        self.frames.setdefault(participant_id, []).append((timestamp, pcm.copy()))


@pytest.mark.parametrize("mode", [Mode.NORMAL, Mode.BARGE])
def test_track_sink_gets_each_participants_own_voice(mode: Mode) -> None:
    bridge, mixer, p = make("customer", "operator", "supervisor")
    bridge.apply(mode)
    tracks = Tracks()
    bridge.set_track_sink(tracks)
    run(mixer, list(p.values()), 60)
    for role, party in p.items():
        frames = tracks.frames[party.id]
        assert [ts for ts, _ in frames] == [160 * k for k in range(60)]
        pcm = np.concatenate([f for _, f in frames[5:]])
        for other, freq in FREQUENCIES.items():
            level = tone_level_db(pcm, freq)
            assert (level > PRESENT_DB) if other == role else (level < ABSENT_DB)


def test_tone_player_heard_by_a_customer_on_hold() -> None:
    bridge, mixer, p = make("customer", "operator")
    player = bridge.add("m", "player", frame_source=ToneSource([1000.0], level_dbfs=-12))
    bridge.set_matrix({"c": frozenset({"m"})})
    assert bridge.hearing("o") == frozenset()
    run(mixer, list(p.values()), 60)
    heard = p["customer"].heard()
    assert tone_level_db(heard, 1000.0) > PRESENT_DB
    assert tone_level_db(heard, 1300.0) < ABSENT_DB
    assert player.stream is None


def test_dtmf_forwarded_on_fast_path_only_never_mixed() -> None:
    bridge, mixer, p = make("customer", "operator", "supervisor")
    customer, operator, supervisor = p["customer"], p["operator"], p["supervisor"]
    event = bytes.fromhex("050a00a0")
    customer.member.on_dtmf(event, 0x80, 500, 7777, 0.0)
    assert [(pkt.payload_type, pkt.payload, pkt.marker) for pkt in operator.packets] == [
        (101, event, True)
    ]
    bridge.apply(Mode.LISTEN)
    customer.member.on_dtmf(event, 0, 501, 7777, 0.01)
    mixer.tick(0.015)
    assert [pkt.payload_type for pkt in supervisor.packets] == [0]  # silence, no event
    assert len([pkt for pkt in operator.packets if pkt.payload_type == 101]) == 2


def test_hearing_changes_and_errors() -> None:
    bridge, _, _p = make("customer", "operator")
    bridge.set_hearing("c", {"c", "o"})
    assert bridge.hearing("c") == frozenset({"o"})  # never oneself
    assert bridge.mode is None
    with pytest.raises(BridgeError, match="no participant 'x' in bridge b1"):
        bridge.set_hearing("c", {"x"})
    with pytest.raises(BridgeError, match="participant 'c' is already in bridge b1"):
        bridge.add("c", "customer", stream=OutgoingStream(1, 1, 1))
    bridge.remove("o")
    assert bridge.hearing("c") == frozenset()
