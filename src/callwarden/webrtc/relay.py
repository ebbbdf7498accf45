"""The browser leg's RTP toward the call's media endpoint, over loopback.

One UDP socket per browser phone. While a call is connected (`connect`), packets from exactly
the endpoint's address are decoded into the browser's track, and the browser's audio goes to
that address as G.711 RTP with this relay's own SSRC, sequence numbers and timestamps
(RFC 3550 5.1); key presses go as RFC 4733 events when the call negotiated them. Anything
from another address, or while no call is connected, is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import cast

from callwarden.media.dtmf import dtmf_packets
from callwarden.media.g711 import Encoding
from callwarden.media.rtp import FIXED_HEADER, RTP_VERSION, RtpParseError, payload_bounds
from callwarden.webrtc.audio import FRAME_SAMPLES, BridgeAudioTrack

__all__ = ["RelayTarget", "RtpRelay"]

logger = logging.getLogger(__name__)

_DTMF_DURATION = 800  # 100 ms at 8 kHz
_FIRST_OCTET = RTP_VERSION << 6
"""Version 2, no padding, extension or CSRCs: every packet the relay sends."""


@dataclass(frozen=True, slots=True)
class RelayTarget:
    """Where the call's endpoint is and what it speaks (from the SDP negotiation)."""

    host: str
    port: int
    payload_type: int
    encoding: Encoding
    dtmf_payload_type: int | None


class RtpRelay(asyncio.DatagramProtocol):
    def __init__(self, track: BridgeAudioTrack) -> None:
        self._track = track
        self._transport: asyncio.DatagramTransport | None = None
        self.target: RelayTarget | None = None
        self.muted = False
        """On hold: nothing of the browser's voice goes to the bridge."""
        self._ssrc = secrets.randbits(32)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self.received = 0
        self.sent = 0
        self.dropped = 0

    async def open(self, host: str) -> int:
        """Bind a UDP port on `host`; returns it."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, 0))
        port: int = transport.get_extra_info("sockname")[1]
        return port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def close(self) -> None:
        self.disconnect()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def connect(self, target: RelayTarget) -> None:
        self.target = target
        self._track.clear()

    def disconnect(self) -> None:
        self.target = None
        self._track.clear()

    @property
    def connected(self) -> bool:
        return self.target is not None and self._transport is not None

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        target = self.target
        if target is None or (addr[0], addr[1]) != (target.host, target.port):
            self.dropped += 1
            return
        try:  # the payload's bounds only (RFC 3550 5.1 framing checked): one packet a 20 ms
            start, end = payload_bounds(data)
        except RtpParseError:
            self.dropped += 1
            return
        if data[1] & 0x7F != target.payload_type:
            return  # telephone-event or comfort noise: nothing the browser plays
        self.received += 1
        self._track.push_payload(data[start:end], target.encoding)

    def send_payload(self, payload: bytes) -> None:
        """One 20 ms G.711 payload of the browser's voice."""
        target, transport = self.target, self._transport
        if target is None or transport is None or self.muted:
            return
        header = FIXED_HEADER.pack(
            _FIRST_OCTET, target.payload_type, self._sequence, self._timestamp, self._ssrc
        )
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        transport.sendto(header + payload, (target.host, target.port))
        self.sent += 1

    def send_digit(self, digit: str) -> bool:
        """A key press as RFC 4733 events; False when the call negotiated none."""
        target, transport = self.target, self._transport
        if target is None or transport is None or target.dtmf_payload_type is None:
            return False
        packets = dtmf_packets(
            digit,
            payload_type=target.dtmf_payload_type,
            ssrc=self._ssrc,
            sequence_number=self._sequence,
            timestamp=self._timestamp,
            duration=_DTMF_DURATION,
        )
        for packet in packets:
            transport.sendto(bytes(packet), (target.host, target.port))
        self._sequence = (self._sequence + len(packets)) & 0xFFFF
        self._timestamp = (self._timestamp + _DTMF_DURATION) & 0xFFFFFFFF
        return True

    def error_received(self, exc: Exception) -> None:
        logger.debug("browser relay socket error: %s", exc)
