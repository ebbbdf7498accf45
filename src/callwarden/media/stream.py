"""The RTP stream one endpoint sends: it owns its SSRC, sequence numbers and timestamps.

Everything sent to a listener goes through its :class:`OutgoingStream`, whether a frame the
mixer produced (:meth:`OutgoingStream.send_frame`) or a packet forwarded unchanged from the one
source the listener hears (:meth:`OutgoingStream.forward`, the fast path). Forwarding maps the
source's sequence numbers and timestamps onto the stream's own by offsets fixed at the first
forwarded packet, so switching between the two paths never makes the listener's sequence
numbers skip or its timestamps jump (RFC 3550 5.1: the SSRC, sequence number and timestamp
belong to the sender, here this stream).
"""

from __future__ import annotations

import struct
from typing import Protocol

from callwarden.media.fastpath import StreamCore
from callwarden.media.g711 import Encoding

_HEADER = struct.Struct("!BBHII")
_pack = _HEADER.pack
FRAME_SECONDS = 0.020
#: A pause longer than this (no packet sent) makes the next timestamp follow wall-clock time.
_GAP_SECONDS = 0.050
#: Sequence jumps forward beyond this, or backward beyond 100, restart the mapping (RFC 3550 A.1).
_MAX_DROPOUT = 3000
_MAX_MISORDER = 0x10000 - 100


class DatagramSender(Protocol):
    """What a stream needs of a transport: ``asyncio.DatagramTransport`` satisfies it."""

    def sendto(self, data: bytes, addr: tuple[str, int], /) -> None: ...


class OutgoingStream(StreamCore):
    """One outgoing RTP stream (RFC 3550 5.1). Not thread-safe; lives on the event loop."""

    # The numbering and counters live in StreamCore (C when the extension is built), where the
    # pump forwards packets too: see callwarden.media.fastpath.
    __slots__ = ("dtmf_payload_type", "encoding", "transport")

    def __init__(
        self,
        ssrc: int,
        sequence_number: int,
        timestamp: int,
        *,
        encoding: Encoding = Encoding.PCMU,
        clock_rate: int = 8000,
        frame_samples: int = 160,
    ) -> None:
        self.ssrc = ssrc
        #: The last sequence number and timestamp sent (the next frame uses +1 and +samples).
        self.sequence_number = sequence_number & 0xFFFF
        self.timestamp = timestamp & 0xFFFFFFFF
        self.encoding = encoding
        self.payload_type = encoding.static_payload_type
        self.dtmf_payload_type: int | None = None
        self.clock_rate = clock_rate
        self.frame_samples = frame_samples
        self.transport: DatagramSender | None = None
        #: The socket the C pump sends this stream's forwarded packets from (-1: none).
        self.fd = -1
        self.address = None
        #: False while the remote does not want our media (direction sendonly/inactive).
        self.sending = True
        self.packets = 0
        self.octets = 0
        self.last_send = None
        self._source = None
        self._seq_offset = 0
        self._ts_offset = 0

    def _advance(self, now: float) -> int:
        """Timestamp units to add for the next frame: one frame, or the wall time of a gap."""
        last = self.last_send
        if last is None or now - last <= _GAP_SECONDS:
            return self.frame_samples
        frames = round((now - last) / FRAME_SECONDS)
        return frames * self.frame_samples

    def send_frame(self, payload: bytes, now: float, marker: bool = False) -> None:
        """Send one frame the engine produced (mixed, generated or silence)."""
        transport = self.transport
        address = self.address
        if transport is None or address is None or not self.sending:
            return
        self._source = None
        sequence_number = (self.sequence_number + 1) & 0xFFFF
        timestamp = (self.timestamp + self._advance(now)) & 0xFFFFFFFF
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.last_send = now
        packet = (
            _pack(
                0x80,
                (0x80 if marker else 0) | self.payload_type,
                sequence_number,
                timestamp,
                self.ssrc,
            )
            + payload
        )
        self.packets += 1
        self.octets += len(payload)
        transport.sendto(packet, address)

    def forward(
        self,
        source: object,
        payload: bytes,
        marker: int,
        sequence_number: int,
        timestamp: int,
        now: float,
        payload_type: int,
    ) -> None:
        """Forward a packet of ``source`` with this stream's own header (the fast path).

        ``marker`` is 0 or 0x80. The first packet from a source (or after frames were sent in
        between) fixes the offsets: it gets the next sequence number and a timestamp one frame
        (or the elapsed time) after the last one sent; later packets keep the source's spacing.
        """
        transport = self.transport
        address = self.address
        if transport is None or address is None or not self.sending:
            return
        out_seq = (sequence_number + self._seq_offset) & 0xFFFF
        delta = (out_seq - self.sequence_number) & 0xFFFF
        if source is not self._source or _MAX_DROPOUT < delta < _MAX_MISORDER:
            # A new source, or this one restarted its numbering (RFC 3550 A.1): re-anchor.
            self._source = source
            self._seq_offset = (self.sequence_number + 1 - sequence_number) & 0xFFFF
            self._ts_offset = (self.timestamp + self._advance(now) - timestamp) & 0xFFFFFFFF
            out_seq = (self.sequence_number + 1) & 0xFFFF
            delta = 1
        out_ts = (timestamp + self._ts_offset) & 0xFFFFFFFF
        if delta < 0x8000:  # in order: the newest sequence number and timestamp sent
            self.sequence_number = out_seq
            self.timestamp = out_ts
        self.last_send = now
        self.packets += 1
        self.octets += len(payload)
        transport.sendto(
            _pack(0x80, marker | payload_type, out_seq, out_ts, self.ssrc) + payload, address
        )

    def forwarded_after(self, when: float) -> bool:
        """True when the last packet sent was forwarded (fast path) later than ``when``."""
        return self._source is not None and self.last_send is not None and self.last_send > when

    def rtp_timestamp_at(self, now: float) -> int:
        """The RTP timestamp corresponding to ``now``, for a sender report (RFC 3550 6.4.1)."""
        if self.last_send is None:
            return self.timestamp
        elapsed = int((now - self.last_send) * self.clock_rate)
        return (self.timestamp + elapsed) & 0xFFFFFFFF


class RtpSink(Protocol):
    """Where an endpoint delivers the accepted packets of its remote (a bridge member).

    ``marker`` is 0 or 0x80; ``now`` is the arrival time on the engine's monotonic clock.
    """

    def on_audio(
        self, payload: bytes, marker: int, sequence_number: int, timestamp: int, now: float
    ) -> None: ...

    def on_dtmf(
        self, payload: bytes, marker: int, sequence_number: int, timestamp: int, now: float
    ) -> None: ...
