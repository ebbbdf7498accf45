"""One call leg's RTP endpoint: an RTP/RTCP port pair with symmetric, hijack-proof latching.

Symmetric RTP (RFC 4961): we send to the address we receive from. What is accepted:

* before :meth:`RtpEndpoint.enable` (the call is not answered): nothing is relayed; packets
  from the signalled address are counted ``dropped_early``, others ``dropped_foreign``;
* once enabled: packets from the address signalling named (``set_remote``); with ``latch``
  (phones behind NAT announce an address they cannot be reached at) the source of the first
  packet after enabling instead, optionally only if it comes from ``latch_host`` (the
  address the phone's SIP arrived from). The first accepted packet fixes the peer for good;
  packets from any other address are dropped and counted. Only a new ``set_remote`` (a new
  offer/answer from authenticated signalling) moves the peer.

The hot path (:meth:`RtpEndpoint.datagram_received`) is one tuple compare, one struct unpack,
the reception statistics update and a call into the bridge. A malformed packet is counted and
dropped, never raised. With the C extension built, the engine's pump reads the RTP socket and
does the same for the plain case in C (:mod:`callwarden.media.fastpath`); only the rest (a
packet that may latch, telephone-events, other payload types, mixed or recorded members) comes
here.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import random
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callwarden.media.clock import Clock
from callwarden.media.dtmf import DtmfDigit, DtmfParseError, DtmfReceiver
from callwarden.media.fastpath import EndpointCore, PacketPump, SocketSender
from callwarden.media.g711 import Encoding
from callwarden.media.reception import ReceptionStatistics, round_trip_time
from callwarden.media.rtcp import (
    SDES_CNAME,
    Goodbye,
    ReceiverReport,
    RtcpPacket,
    RtcpParseError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    ntp_timestamp,
    parse_compound,
    serialize_compound,
)
from callwarden.media.rtp import RtpParseError, payload_bounds
from callwarden.media.stream import OutgoingStream, RtpSink

logger = logging.getLogger(__name__)

_unpack_header = struct.Struct("!BBHII").unpack_from
Address = tuple[str, int]


class Direction(enum.Enum):
    """The remote's SDP direction attribute (RFC 3264 6.1), from the remote's point of view."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def remote_sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def remote_receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)


class EndpointError(ValueError):
    """An endpoint command with an invalid value (not an IP literal, bad port or payload type)."""


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """Counters of one endpoint, as plain values (RFC 3550 6.4 terms where they apply)."""

    endpoint_id: str
    local_host: str
    local_port: int
    remote: tuple[str, int] | None
    enabled: bool
    latched: bool
    packets_in: int
    bytes_in: int
    packets_out: int
    bytes_out: int
    dropped_foreign: int
    dropped_malformed: int
    dropped_early: int
    dropped_payload_type: int
    lost: int
    jitter_ms: float
    dtmf_digits: int
    rtcp_in: int
    rtcp_out: int
    rtcp_dropped: int
    remote_fraction_lost: float | None
    remote_jitter_ms: float | None
    round_trip_ms: float | None
    #: SRTP (media.srtp): protected both ways, packets that failed authentication or replayed.
    srtp: bool = False
    dropped_auth: int = 0
    dropped_replay: int = 0


def normalize_host(host: str) -> str:
    """An IP literal in the form the socket layer reports it, or :class:`EndpointError`."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        raise EndpointError(f"not an IP address: {host!r}") from None


def _check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise EndpointError(f"port out of range: {port}")
    return port


class _RtcpProtocol(asyncio.DatagramProtocol):
    __slots__ = ("_endpoint",)

    def __init__(self, endpoint: RtpEndpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._endpoint.rtcp_received(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        logger.debug("endpoint %s: RTCP socket error %s", self._endpoint.id, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._endpoint.socket_closed()


class RtpEndpoint(EndpointCore, asyncio.DatagramProtocol):
    """An RTP endpoint of one call leg, bound to a port pair. Create through the engine."""

    # Slots, not an instance dict: attribute access on the per-packet path stays fast. The
    # fields the C pump reads and counts in live in EndpointCore: see callwarden.media.fastpath.
    __slots__ = (
        "_clock",
        "_closed",
        "_cname",
        "_dtmf",
        "_dtmf_payload_type",
        "_latch_host",
        "_next_report",
        "_on_dtmf",
        "_open_sockets",
        "_packets_at_report",
        "_peer",
        "_pump",
        "_remote_fraction_lost",
        "_remote_jitter",
        "_rng",
        "_round_trip",
        "_rtcp_peer",
        "_rtcp_transport",
        "_signalled",
        "_socket",
        "_transport",
        "direction",
        "dropped_payload_type",
        "dtmf_digits",
        "enabled_at",
        "id",
        "local_host",
        "local_port",
        "rtcp_dropped",
        "rtcp_in",
        "rtcp_interval",
        "rtcp_out",
        "stream",
        "timed_out",
        "timeout",
    )
    reception: ReceptionStatistics
    sink: RtpSink | None

    def __init__(
        self,
        endpoint_id: str,
        *,
        clock: Clock,
        rng: random.Random,
        cname: bytes,
        on_dtmf: Callable[[str, DtmfDigit], None] | None = None,
        rtcp_interval: float = 5.0,
    ) -> None:
        self.id = endpoint_id
        self._clock = clock
        self._now = clock.monotonic
        self._rng = rng
        self._cname = cname
        self._on_dtmf = on_dtmf
        self.rtcp_interval = rtcp_interval
        self.stream = OutgoingStream(rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32))
        self.reception = ReceptionStatistics()
        self._dtmf = DtmfReceiver()
        self._transport: asyncio.DatagramTransport | None = None
        self._socket: socket.socket | None = None
        self._pump: PacketPump | None = None
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self._open_sockets = 0
        self._closed: asyncio.Future[None] | None = None
        self.local_host = ""
        self.local_port = 0
        # Remote as signalled, and the peer actually accepted (equal unless latched elsewhere).
        self._signalled: Address | None = None
        self._peer: Address | None = None
        # The peer as the socket layer reports sources: (host, port), or a 4-tuple for IPv6.
        self._peer_key = None
        self._rtcp_peer: Address | None = None
        self._payload_type = -1
        self._dtmf_payload_type = -1
        self.direction = Direction.SENDRECV
        self.enabled = False
        self.enabled_at: float | None = None
        self._latch = False
        self._latch_host: str | None = None
        self._fixed = False
        self.sink = None
        self.last_receive = None
        self.timeout: float | None = None
        self.timed_out = False
        self._next_report: float | None = None
        self._packets_at_report = 0
        self.packets_in = 0
        self.bytes_in = 0
        self.dropped_foreign = 0
        self.dropped_malformed = 0
        self.dropped_early = 0
        self.dropped_payload_type = 0
        self.dtmf_digits = 0
        self.rtcp_in = 0
        self.rtcp_out = 0
        self.rtcp_dropped = 0
        self._remote_fraction_lost: float | None = None
        self._remote_jitter: float | None = None
        self._round_trip: float | None = None

    async def open(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        pump: PacketPump | None = None,
    ) -> None:
        """Bind RTP to ``port`` and RTCP to ``port + 1`` (raises OSError if either is taken).

        With a ``pump``, the RTP socket is read by the C pump (which hands this endpoint what
        it does not relay itself); without, it is an asyncio transport.
        """
        sock: socket.socket | None = None
        transport: asyncio.DatagramTransport | None = None
        if pump is not None:
            sock = pump.bind(host, port)
        else:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: self, local_addr=(host, port)
            )
        try:
            rtcp_transport, _ = await loop.create_datagram_endpoint(
                lambda: _RtcpProtocol(self), local_addr=(host, port + 1)
            )
        except OSError:
            if sock is not None:
                sock.close()
            if transport is not None:
                transport.close()
            raise
        if sock is not None and pump is not None:
            pump.add(sock, self)
            self._socket = sock
            self._pump = pump
            self.stream.transport = SocketSender(sock)
            self.stream.fd = sock.fileno()
        else:
            self._transport = transport
            self.stream.transport = transport
        self._rtcp_transport = rtcp_transport
        self._open_sockets = 2
        self._closed = loop.create_future()
        self.local_host = host
        self.local_port = port

    def set_remote(
        self,
        host: str,
        port: int,
        *,
        payload_type: int,
        encoding: Encoding,
        dtmf_payload_type: int | None = None,
        rtcp_port: int | None = None,
        direction: Direction = Direction.SENDRECV,
    ) -> None:
        """Apply the remote's SDP: where it receives, what it sends (RFC 3264)."""
        address = (normalize_host(host), _check_port(port))
        if not 0 <= payload_type <= 127:
            raise EndpointError(f"payload type out of range: {payload_type}")
        if dtmf_payload_type is not None and not 0 <= dtmf_payload_type <= 127:
            raise EndpointError(f"telephone-event payload type out of range: {dtmf_payload_type}")
        rtcp_address = (address[0], _check_port(rtcp_port) if rtcp_port else port + 1)
        if address != self._signalled or not self._fixed:
            # A new address from signalling moves the peer; the same one (a re-INVITE for hold,
            # say) keeps an address latched behind NAT.
            self._signalled = address
            self._peer = address
            self._peer_key = address if ":" not in address[0] else (*address, 0, 0)
            self._fixed = False
            self._rtcp_peer = rtcp_address
            self.stream.address = address
        self._payload_type = payload_type
        self._dtmf_payload_type = -1 if dtmf_payload_type is None else dtmf_payload_type
        self.direction = direction
        stream = self.stream
        stream.encoding = encoding
        stream.payload_type = payload_type
        stream.dtmf_payload_type = dtmf_payload_type
        stream.sending = direction.remote_receives

    def enable(self, *, latch: bool = False, latch_host: str | None = None) -> None:
        """The leg is answered: start relaying; with ``latch``, accept the first source seen.

        Enabling again with the same arguments changes nothing (a latched peer stays).
        """
        host = normalize_host(latch_host) if latch_host is not None else None
        if self.enabled and latch == self._latch and host == self._latch_host:
            return
        self._latch = latch
        self._latch_host = host
        self._fixed = False
        self.enabled = True
        now = self._now()
        self.enabled_at = now
        self._next_report = now + self.rtcp_interval * self._rng.uniform(0.5, 1.5)

    def attach(self, sink: RtpSink | None) -> None:
        self.sink = sink

    # --- the hot path -----------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if addr != self._peer_key and not self._latch_to(addr):
            return
        if not self.enabled:
            self.dropped_early += 1
            return
        try:
            first, second, sequence_number, timestamp, ssrc = _unpack_header(data)
        except struct.error:
            self.dropped_malformed += 1
            return
        if first == 0x80:
            payload = data[12:]
        else:
            try:
                start, end = payload_bounds(data)
            except RtpParseError:
                self.dropped_malformed += 1
                return
            payload = data[start:end]
        if not self._fixed:
            self._fixed = True
        now = self._now()
        self.packets_in += 1
        self.bytes_in += len(data)
        self.last_receive = now
        self.reception.update(ssrc, sequence_number, timestamp, now)
        payload_type = second & 0x7F
        sink = self.sink
        if payload_type == self._payload_type:
            if sink is not None:
                sink.on_audio(payload, second & 0x80, sequence_number, timestamp, now)
        elif payload_type == self._dtmf_payload_type:
            self._dtmf_received(payload, second & 0x80, sequence_number, timestamp, now)
        else:
            self.dropped_payload_type += 1

    def _may_latch(self, addr: tuple[Any, ...]) -> bool:
        """Whether a packet from ``addr``, not the current peer, could latch (changes nothing)."""
        return not (
            self._fixed
            or not self.enabled
            or not self._latch
            or (self._latch_host is not None and addr[0] != self._latch_host)
        )

    def _latch_to(self, addr: tuple[Any, ...]) -> bool:
        """Decide on a packet from an address other than the current peer."""
        if not self._may_latch(addr):
            self.dropped_foreign += 1
            return False
        peer = (str(addr[0]), int(addr[1]))
        logger.info(
            "endpoint %s: latched to %s:%s (signalled %s)",
            self.id,
            peer[0],
            peer[1],
            self._signalled,
        )
        self._peer = peer
        self._peer_key = addr
        self._fixed = True
        self.stream.address = peer
        if self._rtcp_peer is not None and self._rtcp_peer[0] != peer[0]:
            self._rtcp_peer = None  # learnt from the first RTCP packet of the latched host
        return True

    def _dtmf_received(
        self, payload: bytes, marker: int, sequence_number: int, timestamp: int, now: float
    ) -> None:
        try:
            digit = self._dtmf.receive(bool(marker), timestamp, payload)
        except DtmfParseError:
            self.dropped_malformed += 1
            return
        if digit is not None:
            self.dtmf_digits += 1
            # Never the digit itself: digits may be card data (PCI DSS 3.3.1).
            logger.debug("endpoint %s: a DTMF key press", self.id)
            if self._on_dtmf is not None:
                self._on_dtmf(self.id, digit)
        sink = self.sink
        if sink is not None:
            sink.on_dtmf(payload, marker, sequence_number, timestamp, now)

    def error_received(self, exc: Exception) -> None:
        logger.debug("endpoint %s: RTP socket error %s", self.id, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.socket_closed()

    def socket_closed(self) -> None:
        self._open_sockets -= 1
        if self._open_sockets <= 0 and self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until both sockets are really closed (their ports can be bound again)."""
        if self._closed is not None:
            await self._closed

    # --- RTCP (RFC 3550 6) --------------------------------------------------------------------

    def rtcp_received(self, data: bytes, addr: Address) -> None:
        peer = self._peer
        if not self.enabled or peer is None or addr[0] != peer[0]:
            self.rtcp_dropped += 1
            return
        if self._rtcp_peer is None:
            self._rtcp_peer = addr
        elif addr != self._rtcp_peer:
            self.rtcp_dropped += 1
            return
        try:
            packets = parse_compound(data)
        except RtcpParseError as error:
            logger.debug("endpoint %s: malformed RTCP: %s", self.id, error)
            self.rtcp_dropped += 1
            return
        self.rtcp_in += 1
        self._account_rtcp(packets)

    def _account_rtcp(self, packets: list[RtcpPacket]) -> None:
        now = self._now()
        arrival_ntp = ntp_timestamp(self._clock.wall())
        for packet in packets:
            if isinstance(packet, SenderReport):
                self.reception.note_sender_report(packet.ntp_timestamp, now)
            if isinstance(packet, SenderReport | ReceiverReport):
                for block in packet.reports:
                    if block.ssrc == self.stream.ssrc:
                        self._remote_fraction_lost = block.fraction_lost / 256.0
                        self._remote_jitter = block.jitter / self.stream.clock_rate
                        self._round_trip = round_trip_time(block, arrival_ntp)
            elif isinstance(packet, Goodbye):
                logger.debug("endpoint %s: RTCP BYE from %s", self.id, packet.sources)

    def report(self, now: float) -> bytes:
        """The compound RTCP report to send now: SR if we sent since the last one, else RR."""
        block = self.reception.report_block(now)
        blocks = (block,) if block is not None else ()
        stream = self.stream
        first: RtcpPacket
        if stream.packets > self._packets_at_report:
            first = SenderReport(
                ssrc=stream.ssrc,
                ntp_timestamp=ntp_timestamp(self._clock.wall()),
                rtp_timestamp=stream.rtp_timestamp_at(now),
                packet_count=stream.packets,
                octet_count=stream.octets,
                reports=blocks,
            )
        else:
            first = ReceiverReport(ssrc=stream.ssrc, reports=blocks)
        self._packets_at_report = stream.packets
        sdes = SourceDescription((SdesChunk(stream.ssrc, ((SDES_CNAME, self._cname),)),))
        return serialize_compound([first, sdes])

    def housekeeping(self, now: float) -> bool:
        """Send RTCP when due; return True the first time the RTP timeout expires."""
        due = self._next_report
        if due is not None and now >= due:
            self._next_report = now + self.rtcp_interval * self._rng.uniform(0.5, 1.5)
            if self._rtcp_transport is not None and self._rtcp_peer is not None:
                self._send_rtcp(self._rtcp_transport, self.report(now), self._rtcp_peer)
                self.rtcp_out += 1
        timeout = self.timeout
        if timeout is None or not self.enabled or not self.direction.remote_sends:
            return False
        since = self.last_receive if self.last_receive is not None else self.enabled_at
        if since is not None and now - since >= timeout:
            if not self.timed_out:
                self.timed_out = True
                return True
        else:
            self.timed_out = False
        return False

    def _send_rtcp(
        self, transport: asyncio.DatagramTransport, packet: bytes, address: Address
    ) -> None:
        """Send one compound RTCP packet (an SRTP endpoint protects it first)."""
        transport.sendto(packet, address)

    def stats(self) -> EndpointStats:
        stream = self.stream
        return EndpointStats(
            endpoint_id=self.id,
            local_host=self.local_host,
            local_port=self.local_port,
            remote=self._peer,
            enabled=self.enabled,
            latched=self._fixed,
            packets_in=self.packets_in,
            bytes_in=self.bytes_in,
            packets_out=stream.packets,
            bytes_out=stream.octets,
            dropped_foreign=self.dropped_foreign,
            dropped_malformed=self.dropped_malformed,
            dropped_early=self.dropped_early,
            dropped_payload_type=self.dropped_payload_type,
            lost=self.reception.cumulative_lost,
            jitter_ms=self.reception.jitter_seconds * 1000.0,
            dtmf_digits=self.dtmf_digits,
            rtcp_in=self.rtcp_in,
            rtcp_out=self.rtcp_out,
            rtcp_dropped=self.rtcp_dropped,
            remote_fraction_lost=self._remote_fraction_lost,
            remote_jitter_ms=None if self._remote_jitter is None else self._remote_jitter * 1000,
            round_trip_ms=None if self._round_trip is None else self._round_trip * 1000,
        )

    def close(self) -> None:
        """Send an RTCP BYE (RFC 3550 6.6) and close both sockets."""
        if self._rtcp_transport is not None:
            if self.enabled and self._rtcp_peer is not None:
                bye = serialize_compound(
                    [
                        ReceiverReport(ssrc=self.stream.ssrc),
                        Goodbye((self.stream.ssrc,)),
                    ]
                )
                self._send_rtcp(self._rtcp_transport, bye, self._rtcp_peer)
            self._rtcp_transport.close()
            self._rtcp_transport = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._socket is not None:
            if self._pump is not None:
                self._pump.remove(self._socket)
            self._socket.close()
            self._socket = None
            self.socket_closed()
        self.stream.transport = None
        self.stream.fd = -1
        self.sink = None
        self.enabled = False
