"""The browser leg's relay and audio framing: RTP to and from the bridge's endpoint only, RFC
4733 key presses, 20 ms G.711 frames from any browser frame, the browser's track paced, and
the bridge's G.711 handed to aiortc still encoded."""

from __future__ import annotations

import asyncio
import fractions
import time

import numpy as np
import numpy.typing as npt
from av import AudioFrame, Packet

from callwarden.media.g711 import Encoding, decode, encode
from callwarden.media.rtp import RtpPacket
from callwarden.webrtc.audio import FRAME_SAMPLES, BridgeAudioTrack, FrameEncoder
from callwarden.webrtc.relay import RelayTarget, RtpRelay


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: asyncio.Queue[RtpPacket] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.packets.put_nowait(RtpPacket.parse(data))


def tone(hz: float, rate: int, samples: int) -> npt.NDArray[np.int16]:
    t = np.arange(samples) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def peak_hz(pcm: npt.NDArray[np.int16], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(pcm))


async def test_the_relay_talks_only_with_the_endpoint_and_sends_key_presses() -> None:
    loop = asyncio.get_running_loop()
    endpoint = Endpoint()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: endpoint, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    track = BridgeAudioTrack()
    relay = RtpRelay(track)
    relay_port = await relay.open("127.0.0.1")
    try:
        relay.send_payload(b"\xff" * 160)  # not connected: nothing goes
        assert relay.sent == 0
        relay.connect(RelayTarget("127.0.0.1", port, 0, Encoding.PCMU, 101))
        relay.send_payload(b"\x01" * 160)
        relay.send_payload(b"\x02" * 160)
        first = await asyncio.wait_for(endpoint.packets.get(), 2)
        second = await asyncio.wait_for(endpoint.packets.get(), 2)
        assert (first.payload_type, first.payload) == (0, b"\x01" * 160)
        assert second.sequence_number == (first.sequence_number + 1) & 0xFFFF
        assert second.timestamp == (first.timestamp + 160) & 0xFFFFFFFF
        assert relay.send_digit("5")
        event = await asyncio.wait_for(endpoint.packets.get(), 2)
        assert (event.payload_type, event.marker, event.payload[0]) == (101, True, 5)

        spoken = encode(tone(440, 8000, 160), Encoding.PCMU)
        packet = RtpPacket(payload_type=0, sequence_number=1, timestamp=0, ssrc=7, payload=spoken)
        assert endpoint.transport is not None
        stranger = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        stranger[0].sendto(bytes(packet), ("127.0.0.1", relay_port))
        endpoint.transport.sendto(bytes(packet), ("127.0.0.1", relay_port))
        for _ in range(100):
            if relay.received:
                break
            await asyncio.sleep(0.01)
        assert (relay.received, relay.dropped) == (1, 1)
        frame = await track.recv()
        heard = frame.to_ndarray().reshape(-1)
        assert np.array_equal(heard, decode(spoken, Encoding.PCMU))
        stranger[0].close()
    finally:
        relay.close()
        transport.close()


def test_frames_of_any_rate_become_20_ms_g711_payloads() -> None:
    encoder = FrameEncoder()
    pcm = tone(440, 48000, 48000)
    payloads: list[bytes] = []
    for start in range(0, len(pcm), 960):
        frame = AudioFrame.from_ndarray(pcm[start : start + 960].reshape(1, -1), "s16", "mono")
        frame.sample_rate, frame.pts = 48000, start
        frame.time_base = fractions.Fraction(1, 48000)
        payloads += encoder.payloads(frame, Encoding.PCMA)
    assert all(len(payload) == FRAME_SAMPLES for payload in payloads)
    assert len(payloads) >= 48  # one second, less what the resampler still holds
    decoded = np.concatenate([decode(payload, Encoding.PCMA) for payload in payloads])
    assert abs(peak_hz(decoded[800:], 8000) - 440) < 2
    narrow = AudioFrame.from_ndarray(tone(880, 8000, 160).reshape(1, -1), "s16", "mono")
    narrow.sample_rate = 8000
    (only,) = FrameEncoder().payloads(narrow, Encoding.PCMU)
    assert only == encode(tone(880, 8000, 160), Encoding.PCMU)


async def test_the_browser_hears_silence_paced_in_real_time() -> None:
    track = BridgeAudioTrack()
    loop = asyncio.get_running_loop()
    started = loop.time()
    frames = [await track.recv() for _ in range(10)]
    elapsed = loop.time() - started
    assert 0.15 <= elapsed < 0.5  # 9 frame periods of 20 ms after the first
    assert [frame.pts for frame in frames] == [160 * i for i in range(10)]
    assert not any(frame.to_ndarray().any() for frame in frames)
    track.stop()


async def test_a_g711_browser_gets_the_bridges_payloads_as_packets() -> None:
    track = BridgeAudioTrack()
    track.pass_encoded(Encoding.PCMA)
    spoken = encode(tone(440, 8000, 320), Encoding.PCMU)
    track.push_payload(spoken, Encoding.PCMU)  # two frames of the other law, in one packet
    track.push_payload(encode(tone(880, 8000, 160), Encoding.PCMA), Encoding.PCMA)
    packets = [await track.recv() for _ in range(4)]
    assert all(isinstance(packet, Packet) for packet in packets)
    assert [packet.pts for packet in packets] == [0, 160, 320, 480]
    payloads = [bytes(packet) for packet in packets]
    assert payloads[0] == encode(decode(spoken[:160], Encoding.PCMU), Encoding.PCMA)
    assert payloads[1] == encode(decode(spoken[160:], Encoding.PCMU), Encoding.PCMA)
    assert payloads[2] == encode(tone(880, 8000, 160), Encoding.PCMA)
    assert payloads[3] == bytes([Encoding.PCMA.silence_code]) * FRAME_SAMPLES
    assert (track.frames_sent, track.frames_from_bridge) == (4, 3)
    track.stop()


async def test_a_stalled_track_skips_the_missed_frames_instead_of_bursting() -> None:
    track = BridgeAudioTrack()
    first = await track.recv()
    time.sleep(0.3)  # noqa: ASYNC251 (the event loop stalls for 15 frame periods)
    after = await track.recv()
    assert first.pts == 0 and after.pts is not None and after.pts >= 160 * 12
    assert track.frames_skipped == after.pts // 160 - 1
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(3):
        await track.recv()
    assert loop.time() - started >= 0.03  # paced again: about 20 ms a frame, not a burst
    track.stop()
