"""RTCP packets (RFC 3550 section 6), sans-IO.

Sender and receiver reports (6.4.1, 6.4.2) with their report blocks, source descriptions (6.5),
BYE (6.6), and compound packets (6.1). Packet types this engine does not interpret (APP, feedback,
XR) are kept as :class:`RtcpRawPacket` so a compound packet always round-trips byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Self

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203

SDES_CNAME = 1

_HEADER = struct.Struct("!BBH")
_SSRC = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!QIII")
_REPORT_BLOCK = struct.Struct("!IIIIII")
REPORT_BLOCK_SIZE = _REPORT_BLOCK.size
#: Seconds from the NTP epoch (1900) to the Unix epoch (1970).
NTP_UNIX_OFFSET = 2_208_988_800


class RtcpParseError(ValueError):
    """The bytes are not a valid RTCP packet (RFC 3550 6.1, A.2); the message says why."""


def ntp_timestamp(unix_time: float) -> int:
    """The 64-bit NTP timestamp (RFC 3550 4) of a Unix time in seconds."""
    return int((unix_time + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as used by LSR (RFC 3550 6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 6.4.1).

    ``cumulative_lost`` is signed (24-bit two's complement on the wire): duplicates can make it
    negative. ``last_sr`` is LSR, ``delay_since_last_sr`` is DLSR in units of 1/65536 s.
    """

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    jitter: int
    last_sr: int = 0
    delay_since_last_sr: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError(f"fraction lost out of range: {self.fraction_lost}")
        if not -(1 << 23) <= self.cumulative_lost < (1 << 23):
            raise ValueError(f"cumulative lost out of range: {self.cumulative_lost}")

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> Self:
        if len(data) - offset < REPORT_BLOCK_SIZE:
            raise RtcpParseError("report block truncated")
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost_word & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        return cls(ssrc, lost_word >> 24, cumulative, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        lost_word = (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF)
        return _REPORT_BLOCK.pack(
            self.ssrc,
            lost_word,
            self.highest_sequence,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        )


def _header(packet_type: int, count: int, body_length: int, padded: bool = False) -> bytes:
    return _HEADER.pack(0x80 | (0x20 if padded else 0) | count, packet_type, body_length // 4)


def _parse_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    if offset + count * REPORT_BLOCK_SIZE > len(body):
        raise RtcpParseError(f"{count} report blocks do not fit in the packet")
    return tuple(ReportBlock.parse(body, offset + i * REPORT_BLOCK_SIZE) for i in range(count))


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR: sender info plus reception report blocks (RFC 3550 6.4.1)."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> Self:
        if len(body) < 4 + _SENDER_INFO.size:
            raise RtcpParseError("sender report shorter than its sender info")
        (ssrc,) = _SSRC.unpack_from(body)
        ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body, 4)
        blocks_at = 4 + _SENDER_INFO.size
        reports = _parse_blocks(body, blocks_at, count)
        extension = bytes(body[blocks_at + count * REPORT_BLOCK_SIZE :])
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports, extension)

    def __bytes__(self) -> bytes:
        body = b"".join(
            [
                _SSRC.pack(self.ssrc),
                _SENDER_INFO.pack(
                    self.ntp_timestamp,
                    self.rtp_timestamp,
                    self.packet_count & 0xFFFFFFFF,
                    self.octet_count & 0xFFFFFFFF,
                ),
                *(bytes(block) for block in self.reports),
                self.extension,
            ]
        )
        return _header(RTCP_SR, len(self.reports), len(body)) + body


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR: reception report blocks of a participant that is not sending (RFC 3550 6.4.2)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> Self:
        if len(body) < 4:
            raise RtcpParseError("receiver report without SSRC")
        (ssrc,) = _SSRC.unpack_from(body)
        reports = _parse_blocks(body, 4, count)
        return cls(ssrc, reports, bytes(body[4 + count * REPORT_BLOCK_SIZE :]))

    def __bytes__(self) -> bytes:
        body = b"".join(
            [_SSRC.pack(self.ssrc), *(bytes(block) for block in self.reports), self.extension]
        )
        return _header(RTCP_RR, len(self.reports), len(body)) + body


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """One SDES chunk: an SSRC and its items as ``(item type, value)`` pairs (RFC 3550 6.5)."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...]

    def __bytes__(self) -> bytes:
        parts = [_SSRC.pack(self.ssrc)]
        for item_type, value in self.items:
            if not 1 <= item_type <= 255 or len(value) > 255:
                raise ValueError(f"invalid SDES item type {item_type} or value length")
            parts.append(bytes((item_type, len(value))) + value)
        raw = b"".join(parts)
        # The item list ends with a null octet, then pads to the next 32-bit boundary (6.5).
        return raw + bytes(4 - len(raw) % 4)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (RFC 3550 6.5)."""

    chunks: tuple[SdesChunk, ...]

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> Self:
        chunks = []
        offset = 0
        for _ in range(count):
            if offset + 4 > len(body):
                raise RtcpParseError("SDES chunk truncated")
            (ssrc,) = _SSRC.unpack_from(body, offset)
            offset += 4
            items = []
            while True:
                if offset >= len(body):
                    raise RtcpParseError("SDES item list not terminated")
                item_type = body[offset]
                if item_type == 0:
                    offset = (offset + 4) & ~3
                    break
                if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                    raise RtcpParseError("SDES item runs past the end of the packet")
                length = body[offset + 1]
                items.append((item_type, bytes(body[offset + 2 : offset + 2 + length])))
                offset += 2 + length
            chunks.append(SdesChunk(ssrc, tuple(items)))
        return cls(tuple(chunks))

    def __bytes__(self) -> bytes:
        if len(self.chunks) > 31:
            raise ValueError("at most 31 SDES chunks per packet")
        body = b"".join(bytes(chunk) for chunk in self.chunks)
        return _header(RTCP_SDES, len(self.chunks), len(body)) + body


@dataclass(frozen=True, slots=True)
class Goodbye:
    """BYE (RFC 3550 6.6)."""

    sources: tuple[int, ...]
    reason: bytes = b""

    @classmethod
    def parse_body(cls, count: int, body: bytes) -> Self:
        if len(body) < 4 * count:
            raise RtcpParseError("BYE source list truncated")
        sources = tuple(_SSRC.unpack_from(body, 4 * i)[0] for i in range(count))
        reason = b""
        if len(body) > 4 * count:
            length = body[4 * count]
            if 4 * count + 1 + length > len(body):
                raise RtcpParseError("BYE reason runs past the end of the packet")
            reason = bytes(body[4 * count + 1 : 4 * count + 1 + length])
        return cls(sources, reason)

    def __bytes__(self) -> bytes:
        if len(self.sources) > 31 or len(self.reason) > 255:
            raise ValueError("BYE: at most 31 sources and a 255-byte reason")
        body = b"".join(_SSRC.pack(source) for source in self.sources)
        if self.reason:
            raw = bytes((len(self.reason),)) + self.reason
            body += raw + bytes(-len(raw) % 4)
        return _header(RTCP_BYE, len(self.sources), len(body)) + body


@dataclass(frozen=True, slots=True)
class RtcpRawPacket:
    """An RTCP packet of a type this engine does not interpret, kept verbatim."""

    packet_type: int
    count: int
    body: bytes

    def __bytes__(self) -> bytes:
        return _header(self.packet_type, self.count, len(self.body)) + self.body


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye | RtcpRawPacket


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Split and parse a compound RTCP packet (RFC 3550 6.1, validity checks of A.2).

    Every packet must be version 2 and its length field must fit exactly; only the last packet
    may carry padding. Raises :class:`RtcpParseError` otherwise.
    """
    packets: list[RtcpPacket] = []
    offset = 0
    size = len(data)
    if size < 4:
        raise RtcpParseError(f"RTCP packet too short: {size} bytes")
    while offset < size:
        if size - offset < 4:
            raise RtcpParseError("trailing bytes after the last RTCP packet")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != 2:
            raise RtcpParseError(f"RTCP version {first >> 6}, expected 2")
        end = offset + 4 + 4 * words
        if end > size:
            raise RtcpParseError("RTCP length field runs past the end of the datagram")
        body = bytes(data[offset + 4 : end])
        if first & 0x20:
            if end != size:
                raise RtcpParseError("padding in an RTCP packet that is not the last")
            if not body or not 0 < body[-1] <= len(body):
                raise RtcpParseError("invalid RTCP padding count")
            body = body[: -body[-1]]
        packets.append(_parse_one(packet_type, first & 0x1F, body))
        offset = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == RTCP_SR:
        return SenderReport.parse_body(count, body)
    if packet_type == RTCP_RR:
        return ReceiverReport.parse_body(count, body)
    if packet_type == RTCP_SDES:
        return SourceDescription.parse_body(count, body)
    if packet_type == RTCP_BYE:
        return Goodbye.parse_body(count, body)
    return RtcpRawPacket(packet_type, count, body)


def serialize_compound(packets: list[RtcpPacket]) -> bytes:
    """Concatenate packets into one compound RTCP datagram (RFC 3550 6.1)."""
    return b"".join(bytes(packet) for packet in packets)
