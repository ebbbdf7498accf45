"""The C fast path over real loopback sockets: golden header rewrite, the same results as the
Python path, latching and drop counters counted where they happen, fast path <-> mixing
continuity, what is left to Python, and that CI really runs the extension."""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from callwarden.media import _pycores, fastpath
from callwarden.media.bridge import Member
from callwarden.media.control import MediaConfig
from callwarden.media.dtmf import dtmf_packets
from callwarden.media.endpoint import EndpointStats, RtpEndpoint
from callwarden.media.engine import MediaEngine
from callwarden.media.reception import ReceptionStatistics
from callwarden.media.rtp import RtpPacket
from callwarden.media.stream import OutgoingStream

from .netutil import FakeClock, Phone, eventually, open_phone, rtp, start_call

IN_CI = os.environ.get("CI") == "true"
needs_extension = pytest.mark.skipif(
    not fastpath.AVAILABLE and not IN_CI,
    reason="the C extension is not built (allowed outside CI: the pure-Python path runs)",
)
PORTS = "47400-47499"
ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_c_extension() -> None:
    """Under CI=true a missing extension is a failure, never a silent fallback."""
    if not IN_CI:
        pytest.skip("only enforced with CI=true")
    assert fastpath.AVAILABLE
    import callwarden.media._fastpath as extension

    assert Path(extension.__file__).suffix == ".so"
    assert OutgoingStream.__mro__[1] is extension.StreamCore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def make_engine(clock: FakeClock, fast_path: bool, ports: str = PORTS) -> MediaEngine:
    config = MediaConfig(ports=ports, rtp_timeout=None, fast_path=fast_path)
    return MediaEngine(config, clock=clock, rng=random.Random(7))


@pytest.fixture
async def engine(clock: FakeClock) -> AsyncIterator[MediaEngine]:
    started = await make_engine(clock, fast_path=True)
    yield started
    await started.close()


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    opened = [await open_phone() for _ in range(3)]
    yield opened
    for phone in opened:
        phone.close()


async def where(engine: MediaEngine) -> tuple[int, int]:
    """(packets relayed in C, packets handed to Python) so far."""
    stats = await engine.engine_stats()
    return stats.packets_fast_path, stats.packets_to_python


# --- golden header rewrite ------------------------------------------------------------------

GOLDEN = [
    # (datagram the caller sends, datagram the callee must receive)
    (
        # V=2 P X CC=1, marker, PT 0, seq 0x1234, ts 0x00010000, SSRC 0xcafe, one CSRC, a
        # one-word header extension, payload "abcd", 3 octets of padding: all but the payload
        # are the caller's and are dropped; the first packet takes the next sequence number and
        # timestamp of the listener's stream (here both wrap to zero).
        "b1 80 1234 00010000 0000cafe deadbeef bede0001 01020304 61626364 000003",
        "80 80 0000 00000000 11223344 61626364",
    ),
    # The next in sequence keeps the source's spacing.
    ("80 00 1235 000100a0 0000cafe 65666768", "80 00 0001 000000a0 11223344 65666768"),
    # One lost (0x1236): the gap is kept.
    ("80 00 1237 000101e0 0000cafe 69", "80 00 0003 000001e0 11223344 69"),
    # Late 0x1236 arrives: forwarded with its mapped numbers, the stream's newest stays 0x0003.
    ("80 00 1236 00010140 0000cafe 6a", "80 00 0002 00000140 11223344 6a"),
    # The source restarts its numbering (a jump beyond 3000): re-anchored after the newest sent.
    ("80 00 9000 77777777 0000cafe 6b", "80 00 0004 00000280 11223344 6b"),
]


@needs_extension
@pytest.mark.parametrize("fast_path", [True, False], ids=["c-pump", "python"])
async def test_golden_header_rewrite(
    clock: FakeClock, phones: list[Phone], fast_path: bool
) -> None:
    engine = await make_engine(clock, fast_path)
    try:
        caller, callee, _ = phones
        to_a, _, _, b_id = await start_call(engine, caller, callee)
        stream = engine._endpoints[b_id].stream
        stream.ssrc, stream.sequence_number, stream.timestamp = 0x11223344, 0xFFFF, 0xFFFFFF60
        for sent, expected in GOLDEN:
            caller.send(bytes.fromhex(sent), to_a)
            assert (await callee.next()).hex(" ") == bytes.fromhex(expected).hex(" ")
        relayed, to_python = await where(engine)
        assert (relayed, to_python) == ((len(GOLDEN), 0) if fast_path else (0, 0))
        stats = await engine.stats(b_id)
        assert (stats.packets_out, stats.bytes_out) == (5, 4 + 4 + 1 + 1 + 1)
    finally:
        await engine.close()


# --- the same results as the Python path ------------------------------------------------------


def script() -> list[tuple[float, bytes]]:
    """A source with jitter, loss, reordering, a duplicate, a sequence wrap and a marker."""
    rng = random.Random(3)
    order = list(range(65530, 65536)) + list(range(0, 20))
    order[8], order[9] = order[9], order[8]  # reordered
    del order[12]  # lost
    del order[19]  # lost
    order.insert(15, order[14])  # duplicated: RFC 3550 A.3 counts it, so 2 - 1 = 1 lost
    steps = []
    now = 0.0
    for index, seq in enumerate(order):
        now += 0.02 + rng.uniform(-0.004, 0.006)
        payload = bytes([index]) * rng.choice((160, 80))
        steps.append((now, rtp(seq, payload, ts=seq * 160, marker=index == 0)))
    return steps


async def run_script(clock: FakeClock, fast_path: bool) -> tuple[list[bytes], list[EndpointStats]]:
    engine = await make_engine(clock, fast_path)
    caller, callee = await open_phone(), await open_phone()
    try:
        to_a, _, a_id, b_id = await start_call(engine, caller, callee)
        stream = engine._endpoints[b_id].stream
        stream.ssrc, stream.sequence_number, stream.timestamp = 0x5EED, 100, 5000
        start = clock.now
        received = []
        for offset, datagram in script():
            clock.now = start + offset
            caller.send(datagram, to_a)
            received.append(await callee.next())
        assert (await where(engine))[0] == (len(received) if fast_path else 0)
        stats = [await engine.stats(a_id), await engine.stats(b_id)]
        return received, [dataclasses.replace(s, local_port=0, remote=None) for s in stats]
    finally:
        caller.close()
        callee.close()
        await engine.close()


@needs_extension
async def test_c_pump_and_python_path_give_identical_packets_and_statistics(
    clock: FakeClock,
) -> None:
    c_packets, c_stats = await run_script(clock, fast_path=True)
    py_packets, py_stats = await run_script(clock, fast_path=False)
    assert c_packets == py_packets
    assert c_stats == py_stats
    caller_leg = c_stats[0]
    assert (caller_leg.packets_in, caller_leg.lost) == (25, 1)
    assert caller_leg.jitter_ms > 0


# --- latching and drop counters, counted where they happen ----------------------------------


@needs_extension
async def test_latching_and_drops_counted_by_the_pump(engine: MediaEngine) -> None:
    caller, callee, intruder = [await open_phone() for _ in range(3)]
    try:
        a = await engine.create_endpoint()
        b = await engine.create_endpoint()
        to_a, to_b = (a.host, a.rtp_port), (b.host, b.rtp_port)
        # The caller is behind NAT: its SDP names an address we cannot reach.
        await engine.set_remote(
            a.endpoint_id, host="10.0.0.5", port=4000, payload_type=0, encoding="PCMU"
        )
        await engine.set_remote(
            b.endpoint_id,
            host=callee.address[0],
            port=callee.address[1],
            payload_type=0,
            encoding="PCMU",
        )
        bridge = await engine.create_bridge()
        await engine.add_to_bridge(bridge, a.endpoint_id, "customer")
        await engine.add_to_bridge(bridge, b.endpoint_id, "operator")
        ep_a, ep_b = engine._endpoints[a.endpoint_id], engine._endpoints[b.endpoint_id]
        # Before answer: foreign (cannot latch yet) and early packets are dropped in C.
        intruder.send(rtp(1), to_a)
        callee.send(rtp(1), to_b)
        await eventually(lambda: (ep_a.dropped_foreign, ep_b.dropped_early) == (1, 1))
        assert await where(engine) == (0, 0)
        await engine.enable(a.endpoint_id, latch=True)
        await engine.enable(b.endpoint_id)
        # The first packet after answer may latch: Python decides, and latches.
        caller.send(rtp(2, b"\x01" * 160), to_a)
        assert (await callee.packets(1))[0].payload == b"\x01" * 160
        assert await where(engine) == (0, 1)
        assert (await engine.stats(a.endpoint_id)).remote == caller.address
        # From now on the caller's packets are relayed in C, the intruder's dropped in C.
        for seq in range(3, 8):
            caller.send(rtp(seq, bytes([seq]) * 160), to_a)
            intruder.send(rtp(seq), to_a)
        caller.send(b"\x80\x00\x00", to_a)  # malformed, from the peer
        caller.send(bytes.fromhex("8f000001000000000000cafe"), to_a)  # 15 CSRCs announced
        got = await callee.packets(5)
        assert [p.payload[0] for p in got] == [3, 4, 5, 6, 7]
        await eventually(lambda: ep_a.dropped_foreign == 6 and ep_a.dropped_malformed == 2)
        assert await where(engine) == (5, 1)
        stats = await engine.stats(a.endpoint_id)
        assert (stats.packets_in, stats.bytes_in, stats.dropped_early) == (6, 6 * 172, 0)
        assert (stats.latched, stats.remote) == (True, caller.address)
        # Symmetric RTP: the callee's voice goes where the caller's packets come from.
        callee.send(rtp(9, b"\x09" * 160), to_b)
        assert (await caller.packets(1))[0].payload == b"\x09" * 160
        assert intruder.received.empty()
    finally:
        for phone in (caller, callee, intruder):
            phone.close()


MALFORMED = [
    "80 00 00",  # shorter than the fixed header
    "40 00 0001 00000000 0000cafe ffff",  # version 1
    "a0 00 0001 00000000 0000cafe ff 00",  # padding bit, padding count 0
    "a0 00 0001 00000000 0000cafe ff 05",  # padding count beyond the payload
    "82 00 0001 00000000 0000cafe 00000001",  # 2 CSRCs announced, 1 there
    "90 00 0001 00000000 0000cafe bede",  # extension header cut short
    "90 00 0001 00000000 0000cafe bede0002 00000000",  # extension longer than the packet
]


@needs_extension
@pytest.mark.parametrize("datagram", MALFORMED)
async def test_malformed_from_the_peer_dropped_and_counted_in_c(
    engine: MediaEngine, phones: list[Phone], datagram: str
) -> None:
    caller, callee, _ = phones
    to_a, _, a_id, _ = await start_call(engine, caller, callee)
    caller.send(bytes.fromhex(datagram), to_a)
    caller.send(rtp(5, b"\x22" * 160), to_a)
    [packet] = await callee.packets(1)  # the endpoint kept working
    assert packet.payload == b"\x22" * 160
    stats = await engine.stats(a_id)
    assert (stats.dropped_malformed, stats.packets_in) == (1, 1)
    assert await where(engine) == (1, 0)


@needs_extension
async def test_nothing_relayed_before_enable(engine: MediaEngine, phones: list[Phone]) -> None:
    caller, callee, _ = phones
    a = await engine.create_endpoint()
    b = await engine.create_endpoint()
    for local, phone in ((a, caller), (b, callee)):
        await engine.set_remote(
            local.endpoint_id,
            host=phone.address[0],
            port=phone.address[1],
            payload_type=0,
            encoding="PCMU",
        )
    bridge = await engine.create_bridge()
    await engine.add_to_bridge(bridge, a.endpoint_id, "customer")
    await engine.add_to_bridge(bridge, b.endpoint_id, "operator")
    await engine.enable(b.endpoint_id)  # only the callee's leg is answered
    for seq in range(3):
        caller.send(rtp(seq), (a.host, a.rtp_port))
    ep_a = engine._endpoints[a.endpoint_id]
    await eventually(lambda: ep_a.dropped_early == 3)
    assert callee.received.empty()
    assert (ep_a.packets_in, await where(engine)) == (0, (0, 0))


# --- what stays in Python ---------------------------------------------------------------------


@needs_extension
async def test_dtmf_goes_to_python_and_keeps_the_listeners_numbering(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    caller, callee, _ = phones
    to_a, _, _, _ = await start_call(engine, caller, callee, dtmf=96)
    events = dtmf_packets("7", payload_type=101, ssrc=0xCAFE, sequence_number=3, timestamp=480)
    datagrams = [rtp(1), rtp(2)] + [bytes(p) for p in events] + [rtp(3 + len(events))]
    for datagram in datagrams:
        caller.send(datagram, to_a)
    got = await callee.packets(len(datagrams))
    assert [p.payload_type for p in got] == [0, 0] + [96] * len(events) + [0]
    seqs = [p.sequence_number for p in got]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert len({p.ssrc for p in got}) == 1
    assert await where(engine) == (3, len(events))


class Tracks:
    def __init__(self) -> None:
        self.frames: dict[str, int] = {}

    def on_frame(self, participant_id: str, pcm: npt.NDArray[np.int16], timestamp: int) -> None:
        self.frames[participant_id] = self.frames.get(participant_id, 0) + 1


@needs_extension
async def test_recorded_bridge_is_relayed_in_c_and_buffered_for_the_tap(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    caller, callee, _ = phones
    to_a, _, a_id, _ = await start_call(engine, caller, callee)
    tracks = Tracks()
    engine.set_track_sink(next(iter(engine._bridges)), tracks)
    for seq in range(4):
        caller.send(rtp(seq), to_a)
    got = await callee.packets(4)  # forwarded at once, by the C pump
    assert [p.payload for p in got] == [rtp(seq)[12:] for seq in range(4)]
    assert await where(engine) == (4, 0)
    engine.tick()
    assert tracks.frames[a_id] == 1  # the pump pushed the payloads into the member's buffer


# --- fast path <-> mixing over the pump ---------------------------------------------------------


@needs_extension
async def test_switch_between_c_forwarding_and_mixing_is_continuous(
    engine: MediaEngine, clock: FakeClock, phones: list[Phone]
) -> None:
    caller, callee, _ = phones
    to_a, _, a_id, b_id = await start_call(engine, caller, callee)
    bridge = next(iter(engine._bridges))
    tone = await engine.add_tone(bridge, [1000.0])
    ep_a = engine._endpoints[a_id]
    start = clock.now
    heard: list[RtpPacket] = []
    for period in range(60):
        if period == 20:  # the operator also hears a tone: mixed from now on
            await engine.set_hearing(bridge, b_id, frozenset({a_id, tone}))
        if period == 40:  # back to the plain call: the C pump forwards again
            await engine.set_mode(bridge, "normal")
        clock.now = start + period * 0.02
        caller.send(rtp(period), to_a)
        await eventually(lambda: ep_a.packets_in == period + 1)  # noqa: B023 - awaited here
        clock.now += 0.005
        engine.tick()
        while not callee.received.empty():
            heard.append(RtpPacket.parse(await callee.next()))
    relayed, _ = await where(engine)
    assert relayed == 60  # all in C: forwarded, or (20-39) pushed into the buffer for mixing
    assert len(heard) == 60  # one packet per 20 ms, none doubled at a switch
    assert all((b.sequence_number - a.sequence_number) & 0xFFFF == 1 for a, b in pairs(heard))
    assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF == 160 for a, b in pairs(heard))
    assert {p.ssrc for p in heard} == {engine._endpoints[b_id].stream.ssrc}
    assert {p.payload for p in heard[25:40]} != {b"\xff" * 160}  # the tone, mixed


@needs_extension
async def test_silence_to_a_fast_path_listener_whose_source_pauses(
    engine: MediaEngine, clock: FakeClock, phones: list[Phone]
) -> None:
    """The mixer's tick sees the activity the pump records: 0.1 s after the caller's last
    packet the callee gets silence frames, then the caller's packets again, in one numbering."""
    caller, callee, _ = phones
    to_a, _, a_id, _ = await start_call(engine, caller, callee)
    ep_a = engine._endpoints[a_id]
    start = clock.now
    heard: list[RtpPacket] = []
    talking = [*range(0, 10), *range(20, 25)]
    for period in range(25):
        clock.now = start + period * 0.02
        if period in talking:
            caller.send(rtp(period, b"\x33" * 160), to_a)
            count = talking.index(period) + 1
            await eventually(lambda: ep_a.packets_in == count)  # noqa: B023 - awaited here
        clock.now += 0.005
        engine.tick()
        while not callee.received.empty():
            heard.append(RtpPacket.parse(await callee.next()))
    assert await where(engine) == (15, 0)
    payloads = [p.payload[:1] for p in heard]
    assert payloads == [b"\x33"] * 10 + [b"\xff"] * 6 + [b"\x33"] * 5  # silence from period 14
    assert all((b.sequence_number - a.sequence_number) & 0xFFFF == 1 for a, b in pairs(heard))
    steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in pairs(heard)]
    assert steps == [160] * 9 + [800] + [160] * 10  # the pause is kept in the timeline


def pairs(packets: list[RtpPacket]) -> list[tuple[RtpPacket, RtpPacket]]:
    return list(itertools.pairwise(packets))


# --- IPv6 ---------------------------------------------------------------------------------------


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@needs_extension
@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_relay_in_c(clock: FakeClock) -> None:
    engine = MediaEngine(
        MediaConfig(host="::1", ports=PORTS, rtp_timeout=None), clock=clock, rng=random.Random(1)
    )
    caller, callee = await open_phone("::1"), await open_phone("::1")
    try:
        to_a, _, _, _ = await start_call(engine, caller, callee)
        for seq in range(3):
            caller.send(rtp(seq, bytes([seq]) * 160), to_a)
        got = await callee.packets(3)
        assert [p.payload[0] for p in got] == [0, 1, 2]
        assert await where(engine) == (3, 0)
    finally:
        caller.close()
        callee.close()
        await engine.close()


# --- the shared fields ------------------------------------------------------------------------


CORES = [
    (OutgoingStream, "StreamCore"),
    (ReceptionStatistics, "ReceptionCore"),
    (RtpEndpoint, "EndpointCore"),
    (Member, "MemberCore"),
]


def c_fields(name: str) -> set[str]:
    import callwarden.media._fastpath as extension

    core = getattr(extension, name)
    return {field for field in vars(core) if not field.startswith("__")}


@needs_extension
@pytest.mark.parametrize(("cls", "core"), CORES, ids=[core for _, core in CORES])
def test_python_fallback_has_the_c_fields_and_no_class_shadows_them(
    cls: type[object], core: str
) -> None:
    fields = c_fields(core)
    assert set(getattr(_pycores, core).__slots__) == fields
    # A slot of the same name in a Python class would hide the C field from the pump.
    for klass in cls.__mro__:
        if klass.__module__ != "callwarden.media._fastpath":
            assert not set(klass.__dict__.get("__slots__", ())) & fields, klass


@needs_extension
def test_pump_refuses_bad_registrations() -> None:
    import callwarden.media._fastpath as extension

    pump = extension.Pump()
    endpoint = RtpEndpoint("e1", clock=FakeClock(), rng=random.Random(1), cname=b"x")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        pump.add(sock.fileno(), endpoint)
        with pytest.raises(ValueError, match=f"file descriptor {sock.fileno()} is already pumped"):
            pump.add(sock.fileno(), endpoint)
        pump.remove(sock.fileno())
        with pytest.raises(ValueError, match="is not pumped"):
            pump.remove(sock.fileno())
    with pytest.raises(TypeError):
        pump.add(0, object())  # type: ignore[arg-type]
    pump.close()
    with pytest.raises(ValueError, match="the pump is closed"):
        pump.fileno()


def test_pure_python_fallback_passes_the_engine_tests() -> None:
    """Without the extension (import blocked), the engine and bridge tests pass unchanged."""
    code = (
        "import sys; sys.modules['callwarden.media._fastpath'] = None; import pytest; "
        "from callwarden.media import fastpath; assert not fastpath.AVAILABLE; "
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
        "'tests/media/test_engine.py', 'tests/media/test_bridge.py', "
        "'tests/media/test_reception.py']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
