"""The lean G.711 path through aiortc (`fast_rtp`): the browser's packets taken in the socket's
callback, the node's sent by one shared pacer, with aiortc's RTCP reports still right both ways;
a stalled loop's missed frames skipped; aiortc's own path kept when its internals change."""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
import types
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, clock
from aiortc.mediastreams import MediaStreamTrack
from av import Packet

from callwarden.media.g711 import Encoding
from callwarden.media.rtp import RtpPacket
from callwarden.webrtc.audio import BridgeAudioTrack
from callwarden.webrtc.fast_rtp import SenderPacer, install_receiver, install_sender, ntp_time
from callwarden.webrtc.peer import BrowserPeer
from callwarden.webrtc.relay import RelayTarget, RtpRelay

SAY = bytes(range(160))


class Microphone(MediaStreamTrack):
    """A browser's PCMU microphone, 20 ms a packet (aiortc's own sender paces and sends it)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.pts = 0

    async def recv(self) -> Packet[Any]:
        await asyncio.sleep(0.02)
        packet: Packet[Any] = Packet(SAY)
        packet.pts, packet.time_base = self.pts, fractions.Fraction(1, 8000)
        self.pts += 160
        return packet


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.payloads.append(RtpPacket.parse(data).payload)


def stats_of(report: Any, kind: str) -> list[Any]:
    return [stat for stat in report.values() if stat.type == kind]


async def test_pcmu_and_its_rtcp_reports_both_ways_on_the_lean_path() -> None:
    loop = asyncio.get_running_loop()
    endpoint = Endpoint()
    bridge, _ = await loop.create_datagram_endpoint(lambda: endpoint, local_addr=("127.0.0.1", 0))
    track = BridgeAudioTrack()
    relay = RtpRelay(track)
    relay_port = await relay.open("127.0.0.1")
    relay.connect(
        RelayTarget("127.0.0.1", bridge.get_extra_info("sockname")[1], 0, Encoding.PCMU, None)
    )
    pacer = SenderPacer()
    node = BrowserPeer(relay, track, on_connected=lambda: None, on_closed=lambda: None, pacer=pacer)
    browser = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    heard: list[bytes] = []

    @browser.on("track")
    def _listen(remote: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in browser.getTransceivers())
        jitter = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]

        def add(packet: Any) -> tuple[bool, None]:  # what aiortc parsed, undecoded
            heard.append(packet.payload)
            return False, None

        jitter.add = add

    try:
        browser.addTransceiver(Microphone(), direction="sendrecv")
        await browser.setLocalDescription(await browser.createOffer())
        answer = await node.answer(browser.localDescription.sdp)
        await browser.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        assert node.fast_receiver is not None
        bridge_says = bytes(reversed(range(160)))
        for i in range(200):  # 4 s of the bridge's audio: aiortc sends RTCP every 0.5-1.5 s
            packet = RtpPacket(0, i, i * 160, 99, bridge_says)
            bridge.sendto(bytes(packet), ("127.0.0.1", relay_port))
            await asyncio.sleep(0.02)
        assert len(pacer) == 1
        # The browser's voice reached the bridge, taken by the lean path.
        assert len(endpoint.payloads) > 100
        assert set(endpoint.payloads) == {SAY}
        assert node.fast_receiver.packets > 0.9 * node.frames_received
        assert node.fast_receiver.dropped == 0
        # The paced packets parse in aiortc as its own (payload type, mid, SSRC).
        assert len(heard) > 100 and bridge_says in heard
        # aiortc counts a packet in its statistics before its jitter buffer sees it, and the
        # pacer goes on sending while getStats awaits: compare with what was heard before it.
        heard_before_stats = len(heard)
        browser_stats = await browser.getStats()
        (inbound,) = stats_of(browser_stats, "inbound-rtp")
        assert inbound.packetsReceived >= heard_before_stats
        # The node's sender reports (SR) count what was paced; its receiver reports (RR), fed
        # by the lean path, count what the browser sent.
        (remote_outbound,) = stats_of(browser_stats, "remote-outbound-rtp")
        assert 0 < remote_outbound.packetsSent <= inbound.packetsReceived + 5
        (remote_inbound,) = stats_of(browser_stats, "remote-inbound-rtp")
        (outbound,) = stats_of(browser_stats, "outbound-rtp")
        assert remote_inbound.packetsLost == 0
        assert 0 < remote_inbound.packetsReceived <= outbound.packetsSent
        taken = node.fast_receiver.packets
        node_stats = await node._pc.getStats()
        (node_inbound,) = stats_of(node_stats, "inbound-rtp")
        assert node_inbound.packetsReceived >= taken
        (node_transport,) = stats_of(node_stats, "transport")
        assert node_transport.packetsReceived >= taken
        assert node_transport.packetsSent >= heard_before_stats
    finally:
        await browser.close()
        await node.close()
        relay.close()
        bridge.close()
        await pacer.close()
    assert len(pacer) == 0


class FakeSender:
    def __init__(self) -> None:
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent: list[int] = []
        self.skipped = 0

    def skip(self, frames: int) -> None:
        self.skipped += frames

    def send(self, ntp_timestamp: int) -> None:
        self.sent.append(ntp_timestamp)

    def end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


async def test_one_pacer_sends_every_20_ms_and_skips_what_a_stall_missed() -> None:
    pacer = SenderPacer()
    senders = [FakeSender() for _ in range(3)]
    for sender in senders:
        pacer.add(sender)  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    assert all(8 <= len(sender.sent) <= 11 for sender in senders), [len(s.sent) for s in senders]
    time.sleep(0.3)  # noqa: ASYNC251 (the event loop stalls for 15 ticks)
    await asyncio.sleep(0.1)
    for sender in senders:
        assert 12 <= sender.skipped <= 16
        assert len(sender.sent) <= 11 + 3 + 6  # a frame or three after the stall, not a burst
    senders[0].end()
    await asyncio.sleep(0.05)
    assert len(pacer) == 2
    await pacer.close()
    assert len(pacer) == 0 and all(sender.ended.done() for sender in senders)


def test_ntp_time_is_aiortc_clock_without_datetime() -> None:
    assert abs(ntp_time() - clock.current_ntp_time()) < (1 << 32) // 100  # within 10 ms


async def test_aiortc_path_is_kept_when_its_internals_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    changed = types.SimpleNamespace(transport=types.SimpleNamespace(), _run_rtp=None)
    codec = types.SimpleNamespace(payloadType=0, clockRate=8000)
    with caplog.at_level(logging.WARNING, logger="callwarden.webrtc.fast_rtp"):
        assert install_receiver(changed, codec, lambda payload: None) is None  # type: ignore[arg-type]
        assert not install_sender(changed, BridgeAudioTrack(), SenderPacer(), ("audio/PCMU",))  # type: ignore[arg-type]
    assert [record.message.split(" (")[0] for record in caplog.records] == [
        "aiortc's receiver has changed",
        "aiortc's sender has changed",
    ]
    assert changed._run_rtp is None
