"""Concurrent browser-phone legs one node carries, and their CPU against SIP legs.

Each call is a two-party bridge of the media engine (as a queue call is). Its far side is a
plain RTP phone (PCMU, 50 packets/s each way). Its near side is, in turn:

* ``webrtc``: a browser leg as the node runs it (`callwarden.webrtc`: an aiortc peer
  connection with ICE, DTLS-SRTP, PCMU, whose audio the `RtpRelay` carries to and from the
  bridge over loopback), with an aiortc peer in another process standing in for the browser
  and sending a 440 Hz tone (PCMU handed to its sender already encoded, and what it receives
  counted but not decoded, so that the load generator costs less than the node it loads; by
  default the stand-ins also take the node's lean G.711 path, `webrtc/fast_rtp.py`, without
  which one process of them needs more than a core at 100 legs: `--aiortc-peers` for aiortc's
  own path);
* ``sip``: a plain RTP phone, what a SIP leg costs the node.

The browsers and phones run in a child process, so the node side's CPU (this process: the
media engine, the peer connections, the relays) is measured alone, over the same window, for
both kinds, in the same invocation. Loss is counted at the far phones (what the near side sent
through the bridge) and at the near side (RTP packets the browser's peer received, from its
inbound-rtp statistics, or packets the plain phone received), against 50 packets/s per leg.

Usage: .venv/bin/python benchmarks/webrtc.py [--legs 25,50,100] [--duration 10] [--aiortc-peers]
[--aiortc-node] (the node without its lean G.711 path, to compare)
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import multiprocessing
import struct
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import uvloop

from callwarden.media.control import MediaConfig
from callwarden.media.engine import MediaEngine
from callwarden.media.g711 import Encoding, encode
from callwarden.webrtc.audio import BridgeAudioTrack
from callwarden.webrtc.peer import BrowserPeer
from callwarden.webrtc.relay import RelayTarget, RtpRelay

HOST = "127.0.0.1"
ENGINE_PORTS = "24000-27999"  # below the ephemeral ports the peers take
PACKETS_PER_SECOND = 50
WARM_UP = 2.0


def tone_payloads(hz: float, count: int = 50) -> list[bytes]:
    t = np.arange(160 * count) / 8000.0
    pcm = (0.25 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return [encode(pcm[i * 160 : (i + 1) * 160], Encoding.PCMU) for i in range(count)]


# -- the child: browsers and phones -------------------------------------------------------------


class RtpPhone(asyncio.DatagramProtocol):
    """A plain RTP phone: sends a tone every 20 ms (by the shared ticker), counts what comes."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] | None = None
        self.received = 0
        self.sequence = 0
        self.ssrc = int.from_bytes(np.random.bytes(4), "big")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received += 1

    def send(self, payload: bytes) -> None:
        if self.transport is None or self.remote is None:
            return
        header = struct.pack(
            "!BBHII", 0x80, 0, self.sequence & 0xFFFF, self.sequence * 160, self.ssrc
        )
        self.sequence += 1
        self.transport.sendto(header + payload, self.remote)


async def open_phone() -> tuple[RtpPhone, int]:
    loop = asyncio.get_running_loop()
    phone = RtpPhone()
    transport, _ = await loop.create_datagram_endpoint(lambda: phone, local_addr=(HOST, 0))
    return phone, int(transport.get_extra_info("sockname")[1])


async def ticker(phones: list[RtpPhone], stop: asyncio.Event) -> None:
    payloads = tone_payloads(1000.0)
    loop = asyncio.get_running_loop()
    start, tick = loop.time(), 0
    while not stop.is_set():
        for phone in phones:
            phone.send(payloads[tick % len(payloads)])
        tick += 1
        await asyncio.sleep(max(0.0, start + tick * 0.02 - loop.time()))


async def browsers_and_phones(
    pipe: Connection, kind: str, legs: int, duration: float, lean: bool
) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamTrack
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from av import Packet

    from callwarden.webrtc.fast_rtp import SenderPacer, install_receiver, install_sender

    class LeanTone(BridgeAudioTrack):
        """The same microphone for the lean path: the pacer takes its payloads."""

        def __init__(self) -> None:
            super().__init__()
            self.pass_encoded(Encoding.PCMU)
            self.payloads = tone_payloads(440.0)
            self.frame = 0

        def take_encoded(self) -> bytes:
            self.frame += 1
            return self.payloads[self.frame % len(self.payloads)]

    class Tone(MediaStreamTrack):
        """A browser's 440 Hz microphone, already PCMU (aiortc's sender only packs it)."""

        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.pts = 0
            self.start: float | None = None
            self.payloads = tone_payloads(440.0)

        async def recv(self) -> Packet[Any]:
            loop = asyncio.get_running_loop()
            if self.start is None:
                self.start = loop.time()
            wait = self.start + self.pts / 8000 - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.06:  # a stalled loop: skip the missed frames, as a browser would
                self.pts += int(-wait * 8000) // 160 * 160
            packet: Packet[Any] = Packet(self.payloads[(self.pts // 160) % len(self.payloads)])
            packet.pts, packet.time_base = self.pts, fractions.Fraction(1, 8000)
            self.pts += 160
            return packet

    def count_only(pc: Any) -> None:
        """The stand-in counts what it receives (inbound-rtp) without decoding it."""
        for transceiver in pc.getTransceivers():
            jitter = transceiver.receiver._RTCRtpReceiver__jitter_buffer
            jitter.add = lambda packet: (False, None)

    pacer = SenderPacer()

    loop = asyncio.get_running_loop()
    far = [await open_phone() for _ in range(legs)]
    near_phones: list[tuple[RtpPhone, int]] = []
    peers: list[Any] = []
    offers: list[str] = []
    if kind == "sip":
        near_phones = [await open_phone() for _ in range(legs)]
    else:
        for _ in range(legs):
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            if lean:
                lean_tone = LeanTone()
                sender = pc.addTransceiver(lean_tone, direction="sendrecv").sender
                install_sender(sender, lean_tone, pacer, ("audio/PCMU",))
                pcmu = RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000, payloadType=0)
                install_receiver(pc.getTransceivers()[0].receiver, pcmu, lambda payload: None)
            else:
                pc.addTransceiver(Tone(), direction="sendrecv")
            count_only(pc)
            await pc.setLocalDescription(await pc.createOffer())
            peers.append(pc)
            offers.append(pc.localDescription.sdp)
    pipe.send(
        {
            "far": [port for _, port in far],
            "near": [port for _, port in near_phones],
            "offers": offers,
        }
    )
    setup = await loop.run_in_executor(None, pipe.recv)
    for (phone, _), port in zip(far, setup["far"], strict=True):
        phone.remote = (HOST, port)
    for (phone, _), port in zip(near_phones, setup["near"] if kind == "sip" else [], strict=True):
        phone.remote = (HOST, port)
    for pc, answer in zip(peers, setup["answers"], strict=True):
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    stop = asyncio.Event()
    sending = [phone for phone, _ in far + near_phones]
    tick_task = loop.create_task(ticker(sending, stop))
    await asyncio.sleep(WARM_UP)

    async def near_received() -> int:
        if kind == "sip":
            return sum(phone.received for phone, _ in near_phones)
        total = 0
        for pc in peers:
            for stat in (await pc.getStats()).values():
                if stat.type == "inbound-rtp":
                    total += stat.packetsReceived
        return total

    before = (sum(p.received for p, _ in far), await near_received(), time.process_time())
    wall = time.monotonic()
    pipe.send("start")
    await asyncio.sleep(duration)
    pipe.send("stop")
    after = (sum(p.received for p, _ in far), await near_received(), time.process_time())
    wall = time.monotonic() - wall  # longer than `duration` when this loop is saturated
    stop.set()
    await tick_task
    connected = sum(1 for pc in peers if pc.connectionState == "connected")
    pipe.send(
        {
            "far": after[0] - before[0],
            "near": after[1] - before[1],
            "cpu": after[2] - before[2],
            "window": wall,
            "connected": connected if kind == "webrtc" else legs,
        }
    )
    for pc in peers:
        await pc.close()
    await pacer.close()


def child(pipe: Connection, kind: str, legs: int, duration: float, lean: bool) -> None:
    uvloop.run(browsers_and_phones(pipe, kind, legs, duration, lean))


# -- the node side ------------------------------------------------------------------------------


@dataclass
class Figures:
    kind: str
    legs: int
    connected: int
    node_cpu: float
    browser_cpu: float
    far_loss: float
    near_loss: float


async def node_side(
    kind: str, legs: int, duration: float, lean_peers: bool = True, lean_node: bool = True
) -> Figures:
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    process = context.Process(
        target=child, args=(theirs, kind, legs, duration, lean_peers), daemon=True
    )
    process.start()
    loop = asyncio.get_running_loop()
    ports = await loop.run_in_executor(None, mine.recv)
    peers: list[BrowserPeer] = []
    relays: list[RtpRelay] = []
    tracks: list[BridgeAudioTrack] = []
    async with MediaEngine(MediaConfig(ports=ENGINE_PORTS, rtp_timeout=None)) as engine:
        far_ports, near_ports, answers = [], [], []
        for leg in range(legs):
            bridge = await engine.create_bridge()
            near = await engine.create_endpoint(bridge_id=bridge)
            far = await engine.create_endpoint(bridge_id=bridge)
            await engine.set_remote(
                far.endpoint_id, host=HOST, port=ports["far"][leg], payload_type=0, encoding="PCMU"
            )
            if kind == "sip":
                near_port = ports["near"][leg]
            else:
                track = BridgeAudioTrack()
                relay = RtpRelay(track)
                near_port = await relay.open(HOST)
                relay.connect(RelayTarget(HOST, near.rtp_port, 0, Encoding.PCMU, None))
                peer = BrowserPeer(
                    relay,
                    track,
                    on_connected=lambda: None,
                    on_closed=lambda: None,
                    lean_path=lean_node,
                )
                answers.append(await peer.answer(ports["offers"][leg]))
                peers.append(peer)
                relays.append(relay)
                tracks.append(track)
            await engine.set_remote(
                near.endpoint_id, host=HOST, port=near_port, payload_type=0, encoding="PCMU"
            )
            for local, role in ((near, "operator"), (far, "customer")):
                await engine.add_to_bridge(bridge, local.endpoint_id, role)
                await engine.enable(local.endpoint_id)
            far_ports.append(far.rtp_port)
            near_ports.append(near.rtp_port)
        mine.send({"far": far_ports, "near": near_ports, "answers": answers})
        assert await loop.run_in_executor(None, mine.recv) == "start"
        cpu, sent = time.process_time(), sum(track.frames_sent for track in tracks)
        wall = time.monotonic()
        relayed = sum(relay.sent for relay in relays)
        skipped = sum(track.frames_skipped for track in tracks)
        assert await loop.run_in_executor(None, mine.recv) == "stop"
        node_cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        sent = sum(track.frames_sent for track in tracks) - sent
        relayed = sum(relay.sent for relay in relays) - relayed
        skipped = sum(track.frames_skipped for track in tracks) - skipped
        result = await loop.run_in_executor(None, mine.recv)
        for peer in peers:
            await peer.close()
        for relay in relays:
            relay.close()
    process.join(30)
    # Each side counts over the window it saw (the pipe's messages come late to a busy loop).
    expected = legs * PACKETS_PER_SECOND * wall
    far_expected = legs * PACKETS_PER_SECOND * result["window"]
    print(f"        windows: node {wall:.2f} s, peers {result['window']:.2f} s")
    if kind == "webrtc":
        print(
            f"        node sent {sent / expected:.1%} of the expected frames to the browsers"
            f" ({skipped / expected:.1%} skipped after stalls)"
            f" and relayed {relayed / expected:.1%} of theirs to the bridge"
        )
    return Figures(
        kind,
        legs,
        result["connected"],
        100 * node_cpu / wall,
        100 * result["cpu"] / result["window"],
        max(0.0, 1 - result["far"] / far_expected),
        max(0.0, 1 - result["near"] / far_expected),
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--legs", default="25,50,100")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--aiortc-peers", action="store_true", help="the stand-ins on aiortc's own RTP path"
    )
    parser.add_argument(
        "--aiortc-node", action="store_true", help="the node on aiortc's own RTP path"
    )
    args = parser.parse_args()
    print(
        f"{'kind':7} {'legs':>5} {'up':>4} {'node CPU %':>10} {'per leg %':>9} "
        f"{'peer CPU %':>10} {'far loss':>9} {'near loss':>9}"
    )
    for legs in (int(n) for n in args.legs.split(",")):
        figures = [
            await node_side(kind, legs, args.duration, not args.aiortc_peers, not args.aiortc_node)
            for kind in ("sip", "webrtc")
        ]
        for f in figures:
            print(
                f"{f.kind:7} {f.legs:5d} {f.connected:4d} {f.node_cpu:10.1f} "
                f"{f.node_cpu / f.legs:9.2f} {f.browser_cpu:10.1f} "
                f"{100 * f.far_loss:8.2f}% {100 * f.near_loss:8.2f}%"
            )
        sip, webrtc = figures
        ratio = (webrtc.node_cpu / webrtc.legs) / max(sip.node_cpu / sip.legs, 1e-9)
        print(f"        a browser leg costs the node {ratio:.1f}x the CPU of a SIP leg")


if __name__ == "__main__":
    uvloop.run(main())
