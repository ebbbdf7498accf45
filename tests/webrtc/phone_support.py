"""Stand-ins for the browser phone's tests: a SIP customer on loopback (a plain user agent over
UDP, with an RTP endpoint playing 440 Hz in PCMU) and a page's media (an aiortc peer connection
with an 880 Hz microphone, keeping what it hears), with the FFT that tells the tones apart."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import re
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from callwarden.media.g711 import Encoding, decode, encode
from callwarden.sip.message import SipRequest, SipResponse, parse_message
from callwarden.sip.uri import SipUri

CUSTOMER_HZ = 440
BROWSER_HZ = 880
WAIT = 10.0


def tone(hz: float, samples: int, rate: int = 8000) -> npt.NDArray[np.int16]:
    return (8000 * np.sin(2 * np.pi * hz * np.arange(samples) / rate)).astype(np.int16)


def peak_hz(pcm: npt.NDArray[np.int16], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * rate / len(pcm))


class Microphone(MediaStreamTrack):
    """The page's microphone: a tone in 20 ms frames at 8 kHz."""

    kind = "audio"

    def __init__(self, hz: float) -> None:
        super().__init__()
        self.pcm = tone(hz, 8000)
        self.pts = 0

    async def recv(self) -> AudioFrame:
        await asyncio.sleep(0.02)
        offset = self.pts % 8000
        frame = AudioFrame.from_ndarray(
            self.pcm[offset : offset + 160].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, self.pts
        frame.time_base = fractions.Fraction(1, 8000)
        self.pts += 160
        return frame


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # not a subclass here

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.on_datagram(data, addr)


@dataclass
class Customer:
    """A plain SIP user agent calling the browser phone (RFC 3261 as a UAC, over UDP) and its
    RTP endpoint, which sends a 440 Hz tone in PCMU and keeps what it hears."""

    sip: asyncio.DatagramTransport
    rtp: asyncio.DatagramTransport
    responses: asyncio.Queue[SipResponse] = field(default_factory=asyncio.Queue)
    bye: asyncio.Event = field(default_factory=asyncio.Event)
    heard: list[bytes] = field(default_factory=list)
    call_id: str = field(default_factory=lambda: f"{secrets.token_hex(8)}@127.0.0.1")
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    relay: tuple[str, int] | None = None
    _speaking: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls) -> Customer:
        loop = asyncio.get_running_loop()
        holder: list[Customer] = []
        sip, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(lambda data, addr: holder[0]._sip_received(data, addr)),
            local_addr=("127.0.0.1", 0),
        )
        rtp, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(lambda data, addr: holder[0].heard.append(data[12:])),
            local_addr=("127.0.0.1", 0),
        )
        customer = cls(sip, rtp)
        holder.append(customer)
        return customer

    @property
    def sip_port(self) -> int:
        return int(self.sip.get_extra_info("sockname")[1])

    def _sip_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        message = parse_message(data)
        if isinstance(message, SipResponse):
            self.responses.put_nowait(message)
        elif message.method == "BYE":
            self.bye.set()
            ok = "\r\n".join(
                [
                    "SIP/2.0 200 OK",
                    *(f"{name}: {value}" for name, value in _dialog_headers(message)),
                    "Content-Length: 0",
                    "",
                    "",
                ]
            )
            self.sip.sendto(ok.encode(), (str(addr[0]), int(addr[1])))

    def _send(self, method: str, uri: str, to: str, cseq: int, body: str = "") -> None:
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.sip_port};branch=z9hG4bK{secrets.token_hex(6)}"
            ";rport",
            "Max-Forwards: 70",
            f"From: <sip:customer@127.0.0.1>;tag={self.tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:customer@127.0.0.1:{self.sip_port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines += [f"Content-Length: {len(body)}", "", body]
        target = SipUri.parse(uri)
        self.sip.sendto("\r\n".join(lines).encode(), (target.host, target.port or 5060))

    async def response(self, status: int) -> SipResponse:
        async with asyncio.timeout(WAIT):
            while True:
                response = await self.responses.get()
                if response.status == status:
                    return response

    async def calls(self, contact: SipUri) -> None:
        """INVITE the phone at `contact` with an offer of PCMU (RFC 3264) and wait for 180."""
        rtp_port = self.rtp.get_extra_info("sockname")[1]
        sdp = (
            "v=0\r\no=customer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        )
        self._contact = str(contact)
        self._send("INVITE", self._contact, f"<{contact}>", 1, sdp)
        await self.response(180)

    async def answered(self) -> None:
        """The 200 OK: ACK it (RFC 3261 13.2.2.4) and speak toward the relay it names."""
        ok = await self.response(200)
        port = re.search(rb"m=audio (\d+)", ok.body)
        assert port is not None
        self.relay = ("127.0.0.1", int(port.group(1)))
        (contact,) = ok.contacts
        self._dialog = (str(contact.sip_uri), str(ok.to))
        self._send("ACK", *self._dialog, 1)
        self._speaking = asyncio.get_running_loop().create_task(self._speak())

    async def _speak(self) -> None:
        payload = encode(tone(CUSTOMER_HZ, 8000), Encoding.PCMU)
        ssrc, sequence = secrets.randbits(32), 0
        start = time.monotonic()
        while True:
            part = payload[(sequence % 50) * 160 : (sequence % 50 + 1) * 160]
            header = struct.pack("!BBHII", 0x80, 0, sequence & 0xFFFF, sequence * 160, ssrc)
            assert self.relay is not None
            self.rtp.sendto(header + part, self.relay)
            sequence += 1
            await asyncio.sleep(max(0.0, start + sequence * 0.02 - time.monotonic()))

    async def hangs_up(self) -> None:
        """BYE in the call's dialog (RFC 3261 15.1.1), answered 200."""
        self._send("BYE", *self._dialog, 2)
        await self.response(200)

    def hears(self, seconds: float = 0.5) -> float:
        frames = round(seconds * 50)
        assert len(self.heard) >= frames, f"the customer heard {len(self.heard)} frames"
        pcm = np.concatenate([decode(p, Encoding.PCMU) for p in self.heard[-frames:]])
        return peak_hz(pcm, 8000)

    async def close(self) -> None:
        if self._speaking is not None:
            self._speaking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._speaking
        self.sip.close()
        self.rtp.close()


def _dialog_headers(request: SipRequest) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name in ("Via", "From", "To", "Call-ID", "CSeq")
        for value in request.headers.get_all(name)
    ]


class PageMedia:
    """The page's peer connection: it offers with its microphone, and keeps what it hears."""

    def __init__(self) -> None:
        self.pc: RTCPeerConnection | None = None
        self.heard: list[npt.NDArray[np.int16]] = []
        self.rate = 0
        self._listening: list[asyncio.Task[None]] = []

    async def negotiate(
        self,
        say: Callable[[dict[str, Any]], Awaitable[None]],
        expect: Callable[[str], Awaitable[dict[str, Any]]],
        until: str,
    ) -> None:
        """A new peer connection offered through `say`; returns once the phone says `until`."""
        await self.close()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        self.heard = []

        @pc.on("track")
        def _listen(remote: MediaStreamTrack) -> None:
            async def listen() -> None:
                while True:
                    try:
                        frame = await remote.recv()
                    except MediaStreamError:  # the peer connection closed
                        return
                    assert isinstance(frame, AudioFrame)
                    self.rate = frame.sample_rate
                    channels = len(frame.layout.channels)
                    self.heard.append(frame.to_ndarray().reshape(-1, channels)[:, 0])

            self._listening.append(asyncio.get_running_loop().create_task(listen()))

        pc.addTransceiver(Microphone(BROWSER_HZ), direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        await say({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await expect("answer")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await expect(until)

    async def close(self) -> None:
        """The page's media goes (its DTLS closed: the node's peer connection closes too)."""
        listening, self._listening = self._listening, []
        for task in listening:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.pc is not None:
            await self.pc.close()
            self.pc = None

    def peak(self, seconds: float = 0.5) -> float:
        assert self.heard, "the page heard nothing"
        samples = np.concatenate(self.heard)[-round(seconds * self.rate) :]
        return peak_hz(samples.astype(np.int16), self.rate)
