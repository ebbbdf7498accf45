"""A browser's audio both ways through the node's peer connection, with an aiortc peer as the
browser: its PCMU reaches the bridge's endpoint as it arrives (aiortc's decoder bypassed), or
its Opus decoded and resampled to 8 kHz when the node prefers Opus, and what the endpoint sends
reaches the browser, each tone found by FFT."""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame

from callwarden.media.g711 import Encoding, decode, encode
from callwarden.media.rtp import RtpPacket
from callwarden.webrtc.audio import BridgeAudioTrack
from callwarden.webrtc.peer import BrowserPeer
from callwarden.webrtc.relay import RelayTarget, RtpRelay
from webrtc.phone_support import Microphone, peak_hz, tone


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.payloads.append(RtpPacket.parse(data).payload)


@pytest.mark.parametrize(
    ("codecs", "chosen"),
    [(("pcmu", "pcma", "opus"), "audio/PCMU"), (("opus", "pcmu"), "audio/opus")],
)
async def test_audio_both_ways_through_the_node_peer(codecs: tuple[str, ...], chosen: str) -> None:
    loop = asyncio.get_running_loop()
    endpoint = Endpoint()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: endpoint, local_addr=("127.0.0.1", 0)
    )
    endpoint_port = transport.get_extra_info("sockname")[1]
    track = BridgeAudioTrack()
    relay = RtpRelay(track)
    relay_port = await relay.open("127.0.0.1")
    relay.connect(RelayTarget("127.0.0.1", endpoint_port, 0, Encoding.PCMU, None))
    node = BrowserPeer(
        relay, track, on_connected=lambda: None, on_closed=lambda: None, codecs=codecs
    )
    browser = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    heard: list[npt.NDArray[np.int16]] = []
    rates: set[int] = set()

    @browser.on("track")
    def _listen(remote: MediaStreamTrack) -> None:
        async def listen() -> None:
            while True:
                frame = await remote.recv()
                assert isinstance(frame, AudioFrame) and frame.format.name == "s16"
                rates.add(frame.sample_rate)
                channels = len(frame.layout.channels)  # Opus: 48 kHz stereo, interleaved
                heard.append(frame.to_ndarray().reshape(-1, channels)[:, 0].astype(np.int16))

        listening.append(loop.create_task(listen()))

    listening: list[asyncio.Task[None]] = []
    try:
        browser.addTransceiver(Microphone(440), direction="sendrecv")
        await browser.setLocalDescription(await browser.createOffer())
        answer = await node.answer(browser.localDescription.sdp)
        assert node.codec == chosen
        await browser.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        bridge_says = encode(tone(880, 8000), Encoding.PCMU)
        sender = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        for i in range(150):  # 3 s of the bridge's 880 Hz toward the browser
            packet = RtpPacket(0, i, i * 160, 99, bridge_says[(i % 50) * 160 : (i % 50 + 1) * 160])
            transport.sendto(bytes(packet), ("127.0.0.1", relay_port))
            await asyncio.sleep(0.02)
        sender[0].close()
        assert len(endpoint.payloads) > 50, len(endpoint.payloads)
        assert node.frames_received >= len(endpoint.payloads)
        spoken = np.concatenate([decode(p, Encoding.PCMU) for p in endpoint.payloads[-50:]])
        assert abs(peak_hz(spoken, 8000) - 440) < 3
        assert heard, "the browser heard nothing"
        received = np.concatenate(heard[-25:])
        (rate,) = rates
        assert abs(peak_hz(received, rate) - 880) < 5
    finally:
        for task in listening:
            task.cancel()
        await browser.close()
        await node.close()
        relay.close()
        transport.close()
