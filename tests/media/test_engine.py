"""MediaEngine over real loopback UDP: latching, counters, two-party relay, DTMF, timeouts, RTCP."""

from __future__ import annotations

import asyncio
import random
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import uvloop

from callwarden.media import g711
from callwarden.media.control import (
    DtmfEvent,
    EndpointId,
    MediaConfig,
    MediaError,
    MediaEvent,
    RtpTimeoutEvent,
)
from callwarden.media.dtmf import dtmf_packets
from callwarden.media.engine import MediaEngine
from callwarden.media.g711 import Encoding
from callwarden.media.player import PlayerError
from callwarden.media.ports import PortsExhaustedError
from callwarden.media.rtcp import (
    ReceiverReport,
    ReportBlock,
    SenderReport,
    SourceDescription,
    parse_compound,
)

from .netutil import FakeClock, Phone, eventually, open_phone, rtp
from .netutil import start_call as call

PORTS = "47000-47099"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=[True, False], ids=["c-pump", "python"])
async def engine(clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[MediaEngine]:
    """Every engine test runs on the C pump (when built) and on the pure-Python path."""
    fast_path: bool = request.param
    engine = MediaEngine(
        MediaConfig(ports=PORTS, rtp_timeout=30.0, fast_path=fast_path),
        clock=clock,
        rng=random.Random(1),
    )
    yield engine
    await engine.close()


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    opened = [await open_phone() for _ in range(3)]
    yield opened
    for phone in opened:
        phone.close()


async def test_signalled_remote_accepted_foreign_dropped_and_counted(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    phone, intruder, _ = phones
    local = await engine.create_endpoint()
    media = (local.host, local.rtp_port)
    await engine.set_remote(
        local.endpoint_id,
        host=phone.address[0],
        port=phone.address[1],
        payload_type=0,
        encoding="PCMU",
    )
    phone.send(rtp(1), media)  # before answer: not relayed
    await eventually(lambda: engine._endpoints[local.endpoint_id].dropped_early == 1)
    await engine.enable(local.endpoint_id)
    for seq in range(2, 5):
        phone.send(rtp(seq), media)
        intruder.send(rtp(seq), media)
    await eventually(lambda: engine._endpoints[local.endpoint_id].packets_in == 3)
    await eventually(lambda: engine._endpoints[local.endpoint_id].dropped_foreign == 3)
    stats = await engine.stats(local.endpoint_id)
    assert (stats.packets_in, stats.dropped_foreign, stats.dropped_early) == (3, 3, 1)
    assert stats.bytes_in == 3 * 172
    assert stats.remote == phone.address and stats.latched


async def test_latch_to_first_packet_after_answer_then_fixed(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    caller, callee, intruder = phones
    a = await engine.create_endpoint()
    b = await engine.create_endpoint()
    # The caller is behind NAT: its SDP names a private address we cannot reach.
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
    intruder.send(rtp(1), (a.host, a.rtp_port))  # before answer: cannot latch
    await eventually(lambda: engine._endpoints[a.endpoint_id].dropped_foreign == 1)
    await engine.enable(a.endpoint_id, latch=True)
    await engine.enable(b.endpoint_id)
    caller.send(rtp(2), (a.host, a.rtp_port))
    await eventually(lambda: engine._endpoints[a.endpoint_id].packets_in == 1)
    intruder.send(rtp(3), (a.host, a.rtp_port))
    await eventually(lambda: engine._endpoints[a.endpoint_id].dropped_foreign == 2)
    # Symmetric RTP: what the callee says goes to where the caller's packets came from.
    callee.send(rtp(7, b"\x11" * 160), (b.host, b.rtp_port))
    [packet] = await caller.packets(1)
    assert packet.payload == b"\x11" * 160
    assert intruder.received.empty()
    stats = await engine.stats(a.endpoint_id)
    assert stats.remote == caller.address and stats.latched


async def test_latch_host_restricts_who_may_latch(engine: MediaEngine) -> None:
    local = await engine.create_endpoint()
    other = await open_phone("127.0.0.2")
    phone = await open_phone("127.0.0.1")
    try:
        await engine.set_remote(
            local.endpoint_id, host="10.0.0.5", port=4000, payload_type=0, encoding="PCMU"
        )
        await engine.enable(local.endpoint_id, latch=True, latch_host="127.0.0.1")
        other.send(rtp(1), (local.host, local.rtp_port))
        await eventually(lambda: engine._endpoints[local.endpoint_id].dropped_foreign == 1)
        phone.send(rtp(2), (local.host, local.rtp_port))
        await eventually(lambda: engine._endpoints[local.endpoint_id].packets_in == 1)
        assert (await engine.stats(local.endpoint_id)).remote == phone.address
    finally:
        other.close()
        phone.close()


@pytest.mark.parametrize(
    "datagram",
    [
        b"\x80\x00\x00",  # shorter than the header
        bytes.fromhex("40000001000000000000cafe") + b"\xff" * 160,  # version 1
        bytes.fromhex("a0000001000000000000cafe") + b"\xff\x00",  # padding count 0
        bytes.fromhex("8f000001000000000000cafe"),  # 15 CSRCs announced, none there
        bytes.fromhex("80650001000000000000cafe") + b"\x01",  # telephone-event of 1 byte
    ],
)
async def test_malformed_packets_are_counted_and_dropped(
    engine: MediaEngine, phones: list[Phone], datagram: bytes
) -> None:
    phone, peer, _ = phones
    a = await engine.create_endpoint()
    b = await engine.create_endpoint()
    for local, remote in ((a, phone), (b, peer)):
        await engine.set_remote(
            local.endpoint_id,
            host=remote.address[0],
            port=remote.address[1],
            payload_type=0,
            encoding="PCMU",
            dtmf_payload_type=101,
        )
        await engine.enable(local.endpoint_id)
    bridge = await engine.create_bridge()
    await engine.add_to_bridge(bridge, a.endpoint_id, "customer")
    await engine.add_to_bridge(bridge, b.endpoint_id, "operator")
    phone.send(datagram, (a.host, a.rtp_port))
    phone.send(rtp(5, b"\x22" * 160), (a.host, a.rtp_port))
    [packet] = await peer.packets(1)  # the endpoint kept working
    assert packet.payload == b"\x22" * 160
    assert (await engine.stats(a.endpoint_id)).dropped_malformed == 1


async def test_two_party_relay_both_ways_with_own_numbering(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    caller, callee, _ = phones
    to_a, to_b, _a_id, b_id = await call(engine, caller, callee)
    for seq in range(60000, 60010):
        caller.send(rtp(seq, bytes([seq % 256]) * 160), to_a)
        callee.send(rtp(seq + 5, bytes([(seq + 1) % 256]) * 160), to_b)
    got_b = await callee.packets(10)
    got_a = await caller.packets(10)
    assert [p.payload[0] for p in got_b] == [seq % 256 for seq in range(60000, 60010)]
    assert [p.payload[0] for p in got_a] == [(seq + 1) % 256 for seq in range(60000, 60010)]
    for packets in (got_a, got_b):
        assert len({p.ssrc for p in packets}) == 1 and packets[0].ssrc != 0xCAFE
        seqs = [p.sequence_number for p in packets]
        assert [(s - seqs[0]) & 0xFFFF for s in seqs] == list(range(10))
    stats = await engine.stats(b_id)
    assert (stats.packets_out, stats.bytes_out, stats.lost) == (10, 1600, 0)


async def test_dtmf_reported_once_and_forwarded_with_listeners_payload_type(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    caller, callee, _ = phones
    events: list[MediaEvent] = []
    unsubscribe = engine.subscribe(events.append)
    to_a, _, a_id, _ = await call(engine, caller, callee, dtmf=96)
    packets = dtmf_packets("5", payload_type=101, ssrc=0xCAFE, sequence_number=10, timestamp=1600)
    packets += dtmf_packets("#", payload_type=101, ssrc=0xCAFE, sequence_number=20, timestamp=4000)
    for packet in packets:
        caller.send(bytes(packet), to_a)
    forwarded = await callee.packets(len(packets))
    assert {p.payload_type for p in forwarded} == {96}
    assert [p.payload for p in forwarded] == [p.payload for p in packets]
    assert [p.marker for p in forwarded] == [p.marker for p in packets]
    assert events == [DtmfEvent(a_id, "5", 1600), DtmfEvent(a_id, "#", 4000)]
    unsubscribe()


async def test_rtp_timeout_event_once_with_fake_clock(
    engine: MediaEngine, clock: FakeClock, phones: list[Phone]
) -> None:
    caller, callee, _ = phones
    events: list[MediaEvent] = []
    engine.subscribe(events.append)
    to_a, _, a_id, b_id = await call(engine, caller, callee)
    caller.send(rtp(1), to_a)
    await eventually(lambda: engine._endpoints[a_id].packets_in == 1)
    clock.now += 29.0
    for _ in range(50):
        engine.tick()
    assert events == []
    clock.now += 2.0
    for _ in range(100):
        engine.tick()
    assert sorted(e.endpoint_id for e in events if isinstance(e, RtpTimeoutEvent)) == sorted(
        [a_id, b_id]
    )
    assert all(e == RtpTimeoutEvent(e.endpoint_id, 30.0) for e in events)


async def test_rtcp_reports_sent_and_received(
    engine: MediaEngine, clock: FakeClock, phones: list[Phone]
) -> None:
    caller, _callee, _ = phones
    caller_rtcp = await open_phone()
    try:
        a = await engine.create_endpoint()
        await engine.set_remote(
            a.endpoint_id,
            host=caller.address[0],
            port=caller.address[1],
            payload_type=0,
            encoding="PCMU",
            rtcp_port=caller_rtcp.address[1],
        )
        await engine.enable(a.endpoint_id)
        for seq in (1, 2, 4):  # 3 is lost
            caller.send(rtp(seq), (a.host, a.rtp_port))
        await eventually(lambda: engine._endpoints[a.endpoint_id].packets_in == 3)
        clock.now += 10.0
        for _ in range(50):
            engine.tick()
        report = parse_compound(await caller_rtcp.next())
        assert isinstance(report[0], ReceiverReport)  # we have sent nothing yet
        assert isinstance(report[1], SourceDescription)
        assert report[1].chunks[0].items == ((1, b"callwarden"),)
        [block] = report[0].reports
        assert (block.ssrc, block.cumulative_lost, block.highest_sequence) == (0xCAFE, 1, 4)
        assert block.fraction_lost == (1 << 8) // 4
        our_ssrc = report[0].ssrc
        # The phone reports on our stream: 25 % lost.
        rr = ReceiverReport(0xCAFE, (ReportBlock(our_ssrc, 64, 3, 100, 80),))
        caller_rtcp.send(bytes(rr), (a.host, a.rtcp_port))
        caller_rtcp.send(b"\x80garbage", (a.host, a.rtcp_port))
        await eventually(lambda: engine._endpoints[a.endpoint_id].rtcp_dropped == 1)
        stats = await engine.stats(a.endpoint_id)
        assert (
            stats.rtcp_in,
            stats.rtcp_out,
            stats.remote_fraction_lost,
            stats.remote_jitter_ms,
        ) == (1, 1, 0.25, 10.0)
        await engine.close_endpoint(a.endpoint_id)
        bye = parse_compound(await caller_rtcp.next())
        assert [type(p).__name__ for p in bye] == ["ReceiverReport", "Goodbye"]
        assert not isinstance(bye[0], SenderReport)
    finally:
        caller_rtcp.close()


async def test_port_exhaustion_and_release(clock: FakeClock) -> None:
    engine = MediaEngine(MediaConfig(ports="47100-47103"), clock=clock)
    try:
        first = await engine.create_endpoint()
        await engine.create_endpoint()
        with pytest.raises(PortsExhaustedError):
            await engine.create_endpoint()
        await engine.close_endpoint(first.endpoint_id)
        again = await engine.create_endpoint()
        assert again.rtp_port == first.rtp_port
        assert (await engine.engine_stats()).endpoints == 2
    finally:
        await engine.close()


async def test_commands_with_unknown_ids_or_bad_values_raise_media_error(
    engine: MediaEngine,
) -> None:
    local = await engine.create_endpoint()
    with pytest.raises(MediaError, match="no endpoint 'nope'"):
        await engine.enable("nope")
    with pytest.raises(MediaError, match=r"not an IP address: 'phone\.example'"):
        await engine.set_remote(
            local.endpoint_id, host="phone.example", port=4000, payload_type=0, encoding="PCMU"
        )
    with pytest.raises(MediaError, match="unsupported encoding: 'G722'"):
        await engine.set_remote(
            local.endpoint_id, host="127.0.0.1", port=4000, payload_type=9, encoding="G722"
        )
    with pytest.raises(MediaError, match="port out of range: 0"):
        await engine.set_remote(
            local.endpoint_id, host="127.0.0.1", port=0, payload_type=0, encoding="PCMU"
        )
    bridge = await engine.create_bridge()
    with pytest.raises(MediaError, match="unknown hearing mode 'spy'"):
        await engine.set_mode(bridge, "spy")
    await engine.add_to_bridge(bridge, local.endpoint_id, "customer")
    other = await engine.create_bridge()
    with pytest.raises(
        MediaError, match=f"endpoint {local.endpoint_id} is already in bridge {bridge}"
    ):
        await engine.add_to_bridge(other, local.endpoint_id, "customer")
    with pytest.raises(MediaError, match="no participant 'x'"):
        await engine.set_hearing(bridge, local.endpoint_id, frozenset({"x"}))


async def test_modes_and_tone_player_through_the_engine(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    caller, callee, _ = phones
    _, _, a_id, b_id = await call(engine, caller, callee)
    bridge = next(iter(engine._bridges))
    tone = await engine.add_tone(bridge, [1000.0])
    await engine.set_hearing(bridge, a_id, frozenset({tone}))
    assert (await engine.hearing(bridge))[a_id] == frozenset({tone})
    for _ in range(3):
        engine.tick()
    got = await caller.packets(3)
    assert all(p.payload != b"\xff" * 160 for p in got)  # the tone, mixed for the caller
    await engine.set_mode(bridge, "normal")
    assert (await engine.hearing(bridge)) == {
        a_id: frozenset({b_id}),
        b_id: frozenset({a_id}),
        tone: frozenset(),
    }
    await engine.close_bridge(bridge)
    assert (await engine.engine_stats()).bridges == 0


def test_relay_on_uvloop_with_the_real_ticker() -> None:
    async def scenario() -> None:
        async with MediaEngine(MediaConfig(ports="47200-47299")) as engine:
            caller, callee = await open_phone(), await open_phone()
            try:
                to_a, _, _, _ = await call(engine, caller, callee)
                for seq in range(20):
                    caller.send(rtp(seq), to_a)
                    await asyncio.sleep(0.02)
                got = await callee.packets(20)
                assert [p.sequence_number - got[0].sequence_number for p in got] == list(range(20))
                stats = await engine.engine_stats()
                assert stats.ticks >= 15
            finally:
                caller.close()
                callee.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def test_remote_on_hold_gets_nothing_until_resumed(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    caller, callee, _ = phones
    to_a, _, _, b_id = await call(engine, caller, callee)
    # The callee's re-INVITE puts the call on hold: it only sends (RFC 3264 8.4).
    await engine.set_remote(
        b_id,
        host=callee.address[0],
        port=callee.address[1],
        payload_type=0,
        encoding="PCMU",
        direction="sendonly",
    )
    caller.send(rtp(1, b"\x44" * 160), to_a)
    for _ in range(3):
        engine.tick()
    await eventually(
        lambda: (
            engine._endpoints[EndpointId(b_id)].stream.packets == 0
            and engine._endpoints[to_id(engine, to_a)].packets_in == 1
        )
    )
    assert callee.received.empty()
    await engine.set_remote(
        b_id, host=callee.address[0], port=callee.address[1], payload_type=0, encoding="PCMU"
    )
    caller.send(rtp(2, b"\x55" * 160), to_a)
    [packet] = await callee.packets(1)
    assert packet.payload == b"\x55" * 160


def to_id(engine: MediaEngine, address: tuple[str, int]) -> EndpointId:
    return next(eid for eid, ep in engine._endpoints.items() if ep.local_port == address[1])


async def test_wav_player_through_the_engine(
    engine: MediaEngine, phones: list[Phone], tmp_path: Path
) -> None:
    caller, callee, _ = phones
    _, _, a_id, _ = await call(engine, caller, callee)
    with wave.open(str(tmp_path / "hold.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(np.full(320, 1000, dtype="<i2").tobytes())
    bridge = next(iter(engine._bridges))
    music = await engine.add_wav(bridge, str(tmp_path / "hold.wav"), loop=False)
    await engine.set_hearing(bridge, a_id, frozenset({music}))
    for _ in range(3):
        engine.tick()
    got = await caller.packets(3)
    level = int(
        g711.decode(g711.encode(np.array([1000], np.int16), Encoding.PCMU), Encoding.PCMU)[0]
    )
    assert level == 988  # 1000 quantised by µ-law
    assert [g711.decode(p.payload, Encoding.PCMU)[0] for p in got] == [level, level, 0]
    with pytest.raises(PlayerError, match="not a readable WAV file"):
        (tmp_path / "bad.wav").write_bytes(b"")
        await engine.add_wav(bridge, str(tmp_path / "bad.wav"))


async def test_reinvite_with_same_address_keeps_the_latched_peer(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    caller, intruder, _ = phones
    local = await engine.create_endpoint()
    to_local = (local.host, local.rtp_port)
    remote = {"host": "10.0.0.5", "port": 4000, "payload_type": 0, "encoding": "PCMU"}
    await engine.set_remote(local.endpoint_id, **remote)  # type: ignore[arg-type]
    await engine.enable(local.endpoint_id, latch=True)
    caller.send(rtp(1), to_local)
    await eventually(lambda: engine._endpoints[local.endpoint_id].packets_in == 1)
    await engine.set_remote(local.endpoint_id, **remote, direction="sendonly")  # type: ignore[arg-type]
    await engine.enable(local.endpoint_id, latch=True)
    intruder.send(rtp(2), to_local)
    await eventually(lambda: engine._endpoints[local.endpoint_id].dropped_foreign == 1)
    assert (await engine.stats(local.endpoint_id)).remote == caller.address


async def test_sender_report_after_sending_and_lsr_from_their_sr(
    engine: MediaEngine, clock: FakeClock, phones: list[Phone]
) -> None:
    caller, callee, callee_rtcp = phones
    to_a, to_b, _, b_id = await call(engine, caller, callee)
    await engine.set_remote(
        b_id,
        host=callee.address[0],
        port=callee.address[1],
        payload_type=0,
        encoding="PCMU",
        rtcp_port=callee_rtcp.address[1],
    )
    for seq in range(3):
        caller.send(rtp(seq), to_a)
    await callee.packets(3)
    their_sr = SenderReport(0xBEEF, 0xE5A1B2C3_80000000, 0, 10, 1600)
    callee.send(rtp(1), to_b)  # the callee's RTP fixes its SSRC and host first
    await eventually(lambda: engine._endpoints[b_id].packets_in == 1)
    callee_rtcp.send(bytes(their_sr), (to_b[0], to_b[1] + 1))
    await eventually(lambda: engine._endpoints[b_id].rtcp_in == 1)
    clock.now += 8.0
    for _ in range(50):
        engine.tick()
    report = parse_compound(await callee_rtcp.next())
    sender = report[0]
    assert isinstance(sender, SenderReport)
    # The 3 relayed packets, plus silence frames of the ticks before the report went out.
    assert sender.packet_count >= 3 and sender.octet_count == 160 * sender.packet_count
    assert sender.ntp_timestamp >> 32 == int(clock.wall()) + 2_208_988_800
    [block] = sender.reports
    assert block.last_sr == 0xB2C38000
    assert block.delay_since_last_sr == 8 * 65536
