"""The simulated phones' RTP over loopback: port pairs, RFC 3550 headers, 20 ms pacing on a
fake clock, bounded catch-up, counting what arrives."""

from __future__ import annotations

import asyncio
import random
import struct
from typing import Any, cast

import pytest

from callwarden.media.rtp import RtpPacket
from callwarden.simulator.audio import CUSTOMER_VOICES, SpeechLoop
from callwarden.simulator.rtp_session import (
    MediaTicker,
    RtpCounters,
    RtpSession,
    bind_port_pair,
)
from callwarden.sip.clock import FakeClock

LOOPBACK = "127.0.0.1"


class Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.packets.append(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


async def _receiver() -> Receiver:
    _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        Receiver, local_addr=(LOOPBACK, 0)
    )
    return protocol


async def _until(condition: Any) -> None:
    async with asyncio.timeout(2.0):
        while not condition():  # noqa: ASYNC110 - polls what the protocol recorded
            await asyncio.sleep(0.005)


@pytest.fixture(scope="module")
def speech() -> SpeechLoop:
    return SpeechLoop.build(CUSTOMER_VOICES[0], seconds=2.0, seed=1)


def test_port_pairs_are_even_rtp_and_the_next_port_for_rtcp() -> None:
    for _ in range(5):
        rtp, rtcp = bind_port_pair(LOOPBACK)
        try:
            port = rtp.getsockname()[1]
            assert port % 2 == 0 and rtcp.getsockname()[1] == port + 1
        finally:
            rtp.close()
            rtcp.close()


async def test_packets_carry_consecutive_headers_and_the_speech(speech: SpeechLoop) -> None:
    receiver = await _receiver()
    session = RtpSession(speech, random.Random(4))
    await session.open(LOOPBACK)
    try:
        session.start(LOOPBACK, receiver.port, 0, now=100.0)
        session.send_due(100.0)
        session.send_due(100.1)
        await _until(lambda: len(receiver.packets) == 6)
        packets = [RtpPacket.parse(data) for data in receiver.packets]
        first = packets[0]
        assert first.marker and not any(packet.marker for packet in packets[1:])
        assert {packet.ssrc for packet in packets} == {session.ssrc}
        assert {packet.payload_type for packet in packets} == {0}
        for index, packet in enumerate(packets):
            assert packet.sequence_number == (first.sequence_number + index) & 0xFFFF
            assert packet.timestamp == (first.timestamp + 160 * index) & 0xFFFFFFFF
            assert len(packet.payload) == 160
        start = speech.frames.index(first.payload)
        assert [p.payload for p in packets] == [speech.frame(start + i) for i in range(6)]
        assert session.counters.packets_sent == 6
        assert session.counters.bytes_sent == 6 * 172
    finally:
        session.close()
        assert receiver.transport is not None
        receiver.transport.close()


async def test_after_a_stall_only_a_few_packets_catch_up(speech: SpeechLoop) -> None:
    receiver = await _receiver()
    session = RtpSession(speech, random.Random(5))
    await session.open(LOOPBACK)
    try:
        session.start(LOOPBACK, receiver.port, 0, now=0.0)
        session.send_due(0.0)
        session.send_due(1.0)  # 50 packets were due: 5 go out, the stale audio is skipped
        await _until(lambda: len(receiver.packets) == 6)
        first, *rest = [RtpPacket.parse(data) for data in receiver.packets]
        assert rest[0].sequence_number == (first.sequence_number + 46) & 0xFFFF
        assert rest[0].timestamp == (first.timestamp + 46 * 160) & 0xFFFFFFFF
        assert session.counters.packets_sent == 6
    finally:
        session.close()
        assert receiver.transport is not None
        receiver.transport.close()


async def test_arriving_rtp_is_counted_and_garbage_is_not(speech: SpeechLoop) -> None:
    totals = RtpCounters()
    session = RtpSession(speech, random.Random(6), totals=totals)
    await session.open(LOOPBACK)
    sender = await _receiver()
    assert sender.transport is not None
    try:
        packet = bytes(RtpPacket(0, 1, 160, 0x1234, b"\xff" * 160))
        for _ in range(3):
            sender.transport.sendto(packet, (LOOPBACK, session.port))
        sender.transport.sendto(b"\x00" * 20, (LOOPBACK, session.port))  # version 0
        sender.transport.sendto(b"\x81\xc9" + bytes(6), (LOOPBACK, session.port + 1))  # RTCP
        await _until(lambda: session.counters.malformed_received == 1)
        assert session.counters.packets_received == 3
        assert session.counters.bytes_received == 3 * 172
        assert totals.packets_received == 3 and totals.packets_sent == 0
    finally:
        session.close()
        sender.transport.close()


async def test_one_ticker_paces_every_session_at_50_packets_a_second(
    speech: SpeechLoop,
) -> None:
    clock = FakeClock(start=10.0)
    ticker = MediaTicker(clock)
    receiver = await _receiver()
    sessions = [RtpSession(speech, random.Random(seed)) for seed in (1, 2)]
    for session in sessions:
        await session.open(LOOPBACK)
    try:
        sessions[0].start(LOOPBACK, receiver.port, 0, clock.now())
        ticker.add(sessions[0])
        clock.advance(0.5)
        sessions[1].start(LOOPBACK, receiver.port, 0, clock.now())
        ticker.add(sessions[1])
        clock.advance(0.5)
        assert sessions[0].counters.packets_sent == 51  # at 0, 20 ms ... 1000 ms
        assert sessions[1].counters.packets_sent == 26
        assert clock.pending() == 1  # one timer for both
        ticker.discard(sessions[0])
        clock.advance(0.2)
        assert sessions[0].counters.packets_sent == 51
        assert sessions[1].counters.packets_sent == 36
        ticker.discard(sessions[1])
        clock.advance(0.1)
        assert clock.pending() == 0 and len(ticker) == 0  # idle: no timer left
        await _until(lambda: len(receiver.packets) == 87)
        ssrcs = [struct.unpack_from("!I", data, 8)[0] for data in receiver.packets]
        assert set(ssrcs) == {sessions[0].ssrc, sessions[1].ssrc}
    finally:
        ticker.close()
        for session in sessions:
            session.close()
        assert receiver.transport is not None
        receiver.transport.close()
