"""The simulated phones' RTP: one port pair per call, sending pre-encoded speech every 20 ms.

:class:`RtpSession` owns an RTP socket on an even port and its RTCP socket on the next one
(RFC 3550 11), both asyncio datagram endpoints (uvloop in ``callwarden demo``). It sends
symmetric RTP (RFC 4961: from the port it receives on, which the node latches to) with its own
random SSRC, sequence number and timestamp start (RFC 3550 5.1), and counts what arrives.
:class:`MediaTicker` paces every session of the simulator from one timer on the injected
clock, so a hundred calls cost one wake-up per 20 ms, not a hundred.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import socket
import struct
from dataclasses import dataclass
from typing import Any

from callwarden.media.rtp import RtpParseError, payload_bounds
from callwarden.simulator.audio import FRAME_SAMPLES, SpeechLoop
from callwarden.sip.clock import Clock, TimerHandle

__all__ = ["MediaTicker", "RtpCounters", "RtpSession", "bind_port_pair"]

logger = logging.getLogger(__name__)

PACKET_INTERVAL = 0.02
"""20 ms of audio per packet (RFC 3551 4.5)."""
_MAX_CATCH_UP = 5
_HEADER = struct.Struct("!BBHII")
_BIND_ATTEMPTS = 50


@dataclass(slots=True)
class RtpCounters:
    """Packets and octets of RTP sent and received (RTCP is not counted)."""

    packets_sent: int = 0
    packets_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    malformed_received: int = 0


def bind_port_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on ``host``: RTP on an even port chosen by the system, RTCP on the next
    (RFC 3550 11). Raises OSError when no pair is free after a few attempts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(_BIND_ATTEMPTS):
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, 0))
            port = int(rtp.getsockname()[1])
            if port % 2 or port == 65535:
                rtp.close()
                continue
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtcp.bind((host, port + 1))
            except OSError as error:
                rtcp.close()
                rtp.close()
                if error.errno == errno.EADDRINUSE:
                    continue
                raise
        except OSError:
            rtp.close()
            raise
        rtp.setblocking(False)
        rtcp.setblocking(False)
        return rtp, rtcp
    raise OSError(errno.EADDRINUSE, f"no free RTP/RTCP port pair on {host}")


class _RtcpSink(asyncio.DatagramProtocol):
    """Receives the node's RTCP reports so they meet an open port; they are not needed."""


class RtpSession(asyncio.DatagramProtocol):
    """One call's media: :meth:`open`, :meth:`start` towards the answer's address, then the
    :class:`MediaTicker` calls :meth:`send_due`; :meth:`close` at hang-up."""

    def __init__(
        self,
        speech: SpeechLoop,
        rng: random.Random,
        *,
        totals: RtpCounters | None = None,
    ) -> None:
        self.speech = speech
        self.counters = RtpCounters()
        self._totals = totals
        self.ssrc = rng.getrandbits(32)
        self._sequence = rng.getrandbits(16)
        self._timestamp = rng.getrandbits(32)
        self._frame = rng.randrange(len(speech.frames))
        self._payload_type = speech.encoding.static_payload_type
        self._marker = True
        self._remote: tuple[str, int] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._port = 0
        self.started_at: float | None = None
        self.sent_frames = 0

    @property
    def port(self) -> int:
        """The RTP port (even; RTCP is the next one), once open."""
        return self._port

    @property
    def sending(self) -> bool:
        return self._remote is not None and self._transport is not None

    async def open(self, host: str) -> None:
        loop = asyncio.get_running_loop()
        rtp, rtcp = bind_port_pair(host)
        self._port = int(rtp.getsockname()[1])
        transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=rtp)
        self._transport = transport
        rtcp_transport, _ = await loop.create_datagram_endpoint(_RtcpSink, sock=rtcp)
        self._rtcp = rtcp_transport

    def start(self, remote_host: str, remote_port: int, payload_type: int, now: float) -> None:
        """Send to ``remote_host``:``remote_port`` from now on (the negotiated payload type)."""
        self._remote = (remote_host, remote_port)
        self._payload_type = payload_type
        self.started_at = now
        self.sent_frames = 0

    def send_due(self, now: float) -> None:
        """Send the packets due by ``now`` since :meth:`start` (at most a few at once after a
        stall: late audio is dropped, never sent in a burst)."""
        if self.started_at is None or not self.sending:
            return
        # (a timer may fire a hair early: 1 ms of slack)
        due = int((now - self.started_at + 0.001) / PACKET_INTERVAL) + 1 - self.sent_frames
        if due > _MAX_CATCH_UP:
            skipped = due - _MAX_CATCH_UP
            self._skip(skipped)
            due = _MAX_CATCH_UP
        for _ in range(due):
            self._send_one()

    def _skip(self, frames: int) -> None:
        self.sent_frames += frames
        self._frame += frames
        self._sequence = (self._sequence + frames) & 0xFFFF
        self._timestamp = (self._timestamp + frames * FRAME_SAMPLES) & 0xFFFFFFFF

    def _send_one(self) -> None:
        transport, remote = self._transport, self._remote
        assert transport is not None and remote is not None
        payload = self.speech.frame(self._frame)
        second = self._payload_type | (0x80 if self._marker else 0)
        header = _HEADER.pack(0x80, second, self._sequence, self._timestamp, self.ssrc)
        transport.sendto(header + payload, remote)
        self._marker = False
        self._skip(1)
        size = _HEADER.size + len(payload)
        counters = self.counters
        counters.packets_sent += 1
        counters.bytes_sent += size
        if self._totals is not None:
            self._totals.packets_sent += 1
            self._totals.bytes_sent += size

    # -- asyncio.DatagramProtocol ------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        counters = self.counters
        try:
            payload_bounds(data)
        except RtpParseError:
            counters.malformed_received += 1
            return
        counters.packets_received += 1
        counters.bytes_received += len(data)
        if self._totals is not None:
            self._totals.packets_received += 1
            self._totals.bytes_received += len(data)

    def error_received(self, exc: Exception) -> None:
        logger.debug("RTP port %d: %s", self._port, exc)

    def close(self) -> None:
        self._remote = None
        for transport in (self._transport, self._rtcp):
            if transport is not None:
                transport.close()
        self._transport = self._rtcp = None


class MediaTicker:
    """Calls :meth:`RtpSession.send_due` for every sending session every 20 ms (one timer on the
    injected clock for all of them; it stops when none is left)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._sessions: set[RtpSession] = set()
        self._timer: TimerHandle | None = None
        self._next = 0.0

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: RtpSession) -> None:
        """Start pacing ``session`` (its first packet goes out now)."""
        self._sessions.add(session)
        session.send_due(self._clock.now())
        if self._timer is None:
            self._next = self._clock.now() + PACKET_INTERVAL
            self._timer = self._clock.call_later(PACKET_INTERVAL, self._tick)

    def discard(self, session: RtpSession) -> None:
        self._sessions.discard(session)

    def _tick(self) -> None:
        self._timer = None
        if not self._sessions:
            return
        now = self._clock.now()
        for session in list(self._sessions):
            try:
                session.send_due(now)
            except OSError as error:
                logger.warning("RTP port %d: sending failed: %s", session.port, error)
                self._sessions.discard(session)
        # Drift-free: the next tick is due one interval after the previous due time.
        self._next = max(self._next + PACKET_INTERVAL, now + 0.001)
        self._timer = self._clock.call_later(self._next - now, self._tick)

    def close(self) -> None:
        self._sessions.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
