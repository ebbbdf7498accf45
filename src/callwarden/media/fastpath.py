"""The C fast path of the media engine: shared fields, and a pump that reads every RTP socket.

Relaying one RTP packet through Python on uvloop costs about 20 µs of CPU, a third of it in
Python: too much for hundreds of calls per core. The C extension ``_fastpath`` (built by the
package's own build from ``csrc/``) removes the Python part of the plain case:

* **Shared fields.** The per-packet objects keep the fields both sides touch in C structs:
  :class:`~callwarden.media.stream.OutgoingStream`, ``ReceptionStatistics``, ``RtpEndpoint`` and
  the bridge's ``Member`` subclass the core types imported here. Python reads and writes them
  as ordinary attributes, the pump in place; nothing is copied or synchronised, so a listener's
  SSRC, sequence numbers and timestamps are one state whichever side sends next (switching a
  listener between forwarding and mixing has no discontinuity).
* **The pump** (:class:`PacketPump`): every RTP socket of an engine is a plain non-blocking
  socket registered with the pump's epoll set, and that one descriptor with the event loop. When
  it is ready the pump drains each ready socket with ``recvmmsg``. A packet from the accepted
  peer of an enabled endpoint, valid RTP in the endpoint's audio payload type, whose bridge
  member's fast-path listeners all send through pump sockets, is counted, enters the reception
  statistics and goes out with each listener's own header through ``sendmmsg``, all in C,
  exactly as ``RtpEndpoint.datagram_received`` and ``Member.on_audio`` would; when the member is
  also mixed or recorded (it has a jitter buffer), the pump pushes the payload into that buffer:
  in C when it is the extension's ``JitterBuffer`` (the engine's, see
  :mod:`callwarden.media.jitter`), else with one Python call. Clearly foreign, early and
  malformed packets are counted and dropped in C by the same rules. Anything else (a packet
  that may latch a NAT peer, telephone-events, other payload types) goes to
  ``RtpEndpoint.datagram_received`` unchanged. Sends the pump
  has queued are flushed first, so the order on the wire stays the order of arrival.

* **Recording taps** (:class:`Tap`, :func:`tap_frames`, ``csrc/tap.c``): in a recorded bridge,
  whatever its topology (two parties, hold music, a supervisor mixed in), the mixer's tick pops
  every RTP participant's jitter buffer and appends the frame's µ-law codes (PCMU as received,
  PCMA by table, silence for a missing frame) to the participant's tap in one C call for all of
  them, and keeps the popped frame on the tap for the mixing; a player's tap is fed its encoded
  frame (``Tap.feed``). The recorder gets a tap back only when it holds a whole batch (1.2 s),
  so recording costs no Python per tick and participant (see
  :mod:`callwarden.recording.capture`).

RTCP sockets stay asyncio transports. Silence to idle fast-path listeners, DTMF forwarding and
detection, and mixing are the Python code they always were.

Without the extension (not built), the core types are plain slotted classes
(:mod:`callwarden.media._pycores`), :data:`AVAILABLE` is False and the engine uses asyncio
transports: the pure-Python engine. With ``CI=true`` the tests require the extension.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callwarden.media._fastpath import (
        EndpointCore,
        MemberCore,
        Pump,
        ReceptionCore,
        StreamCore,
        Tap,
        tap_frames,
    )
    from callwarden.media._fastpath import JitterBuffer as CJitterBuffer

    AVAILABLE: bool
else:
    try:
        from callwarden.media._fastpath import (
            EndpointCore,
            MemberCore,
            Pump,
            ReceptionCore,
            StreamCore,
            Tap,
            tap_frames,
        )
        from callwarden.media._fastpath import JitterBuffer as CJitterBuffer

        AVAILABLE = True
    except ImportError:  # not built: the same fields as slots, and no pump
        from callwarden.media._pycores import EndpointCore, MemberCore, ReceptionCore, StreamCore

        Pump = Tap = tap_frames = CJitterBuffer = None
        AVAILABLE = False

__all__ = [
    "AVAILABLE",
    "CJitterBuffer",
    "EndpointCore",
    "MemberCore",
    "PacketPump",
    "PumpStats",
    "ReceptionCore",
    "SocketSender",
    "StreamCore",
    "Tap",
    "tap_frames",
]

logger = logging.getLogger(__name__)


class SocketSender:
    """The ``transport`` of a stream whose socket the pump reads: sends, never queues.

    A full socket buffer drops the datagram (RTP is better late never than late), as the pump does.
    """

    __slots__ = ("_socket",)

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock

    def sendto(self, data: bytes, addr: tuple[str, int], /) -> None:
        try:
            self._socket.sendto(data, addr)
        except OSError as error:
            logger.debug("RTP send to %s failed: %s", addr, error)


@dataclass(frozen=True, slots=True)
class PumpStats:
    """Packets the pump relayed in C, handed to Python, dropped in C, failed to send."""

    relayed: int
    to_python: int
    dropped: int
    send_errors: int


class PacketPump:
    """The C pump of one engine on its event loop (needs the extension: see :data:`AVAILABLE`)."""

    __slots__ = ("_fd", "_loop", "_pump")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        if not AVAILABLE:
            raise RuntimeError("the C extension callwarden.media._fastpath is not built")
        self._pump = Pump()
        self._loop = loop
        self._fd = self._pump.fileno()
        loop.add_reader(self._fd, self._pump.run)

    @staticmethod
    def bind(host: str, port: int) -> socket.socket:
        """A non-blocking UDP socket bound to ``host:port`` (raises OSError if taken)."""
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.bind(address)
        except OSError:
            sock.close()
            raise
        return sock

    def add(self, sock: socket.socket, endpoint: EndpointCore) -> None:
        """Read ``sock`` for ``endpoint`` from now on (its ``datagram_received`` gets the rest)."""
        self._pump.add(sock.fileno(), endpoint)

    def remove(self, sock: socket.socket) -> None:
        """Stop reading ``sock``; call before closing it."""
        self._pump.remove(sock.fileno())

    def stats(self) -> PumpStats:
        pump = self._pump
        return PumpStats(pump.relayed, pump.to_python, pump.dropped, pump.send_errors)

    @property
    def sockets(self) -> int:
        return self._pump.sockets

    def close(self) -> None:
        """Leave the event loop and forget every socket (the endpoints close their own)."""
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            self._fd = -1
        self._pump.close()
