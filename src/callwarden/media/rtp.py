"""RTP data packets (RFC 3550 section 5.1), sans-IO.

Two ways in:

* :class:`RtpPacket` is the full, typed view: ``RtpPacket.parse(data)`` and ``bytes(packet)``.
  It handles padding (5.1 "P"), the header extension (5.3.1) and CSRC lists.
* :func:`payload_bounds` plus :data:`FIXED_HEADER` serve the hot loop: one ``struct`` unpack of the
  12-byte fixed header and, only when the first byte is not the plain ``0x80``, a bounds check of
  the variable parts, without building objects.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Self

RTP_VERSION = 2
FIXED_HEADER_SIZE = 12
#: The fixed header: (V, P, X, CC) byte, (M, PT) byte, sequence number, timestamp, SSRC.
FIXED_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_CSRC = struct.Struct("!I")

SEQUENCE_MODULO = 1 << 16
TIMESTAMP_MODULO = 1 << 32


class RtpParseError(ValueError):
    """The bytes are not an RTP packet (RFC 3550 5.1); the message says exactly why."""


@dataclass(frozen=True, slots=True)
class HeaderExtension:
    """The header extension (RFC 3550 5.3.1): a profile-defined 16-bit id and 32-bit words."""

    profile: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise ValueError(f"extension profile out of range: {self.profile}")
        if len(self.data) % 4:
            raise ValueError("extension data must be a multiple of 4 bytes")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP data packet (RFC 3550 5.1).

    ``padding`` is the number of padding octets (0 = the P bit is clear); the padding bytes are
    zero on output except for the final count octet (5.1 "padding").
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: HeaderExtension | None = None
    padding: int = 0
    version: int = field(default=RTP_VERSION)

    def __post_init__(self) -> None:
        if self.version != RTP_VERSION:
            raise ValueError(f"RTP version must be 2, not {self.version}")
        if not 0 <= self.payload_type <= 0x7F:
            raise ValueError(f"payload type out of range: {self.payload_type}")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise ValueError(f"sequence number out of range: {self.sequence_number}")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise ValueError(f"timestamp out of range: {self.timestamp}")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise ValueError(f"SSRC out of range: {self.ssrc}")
        if len(self.csrcs) > 15:
            raise ValueError("at most 15 CSRC identifiers")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding out of range: {self.padding}")

    @classmethod
    def parse(cls, data: bytes) -> Self:
        """Parse one packet; raise :class:`RtpParseError` for anything RFC 3550 5.1 forbids."""
        start, end = payload_bounds(data)
        first, second, sequence_number, timestamp, ssrc = FIXED_HEADER.unpack_from(data)
        csrc_count = first & 0x0F
        csrcs = tuple(
            _CSRC.unpack_from(data, FIXED_HEADER_SIZE + 4 * i)[0] for i in range(csrc_count)
        )
        extension = None
        if first & 0x10:
            offset = FIXED_HEADER_SIZE + 4 * csrc_count
            profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            extension = HeaderExtension(profile, bytes(data[offset + 4 : offset + 4 + 4 * words]))
        return cls(
            payload_type=second & 0x7F,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[start:end]),
            marker=bool(second & 0x80),
            csrcs=csrcs,
            extension=extension,
            padding=len(data) - end,
        )

    def __bytes__(self) -> bytes:
        first = (
            (RTP_VERSION << 6)
            | (0x20 if self.padding else 0)
            | (0x10 if self.extension is not None else 0)
            | len(self.csrcs)
        )
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [FIXED_HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)]
        parts.extend(_CSRC.pack(csrc) for csrc in self.csrcs)
        if self.extension is not None:
            ext = self.extension
            parts.append(_EXTENSION_HEADER.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def payload_bounds(data: bytes) -> tuple[int, int]:
    """Return ``(start, end)`` of the payload in ``data``, validating RFC 3550 5.1 framing.

    Raises :class:`RtpParseError` for a short packet, a version other than 2, a CSRC list or
    header extension running past the end, or a padding count larger than what is left.
    """
    size = len(data)
    if size < FIXED_HEADER_SIZE:
        raise RtpParseError(f"packet too short for the RTP header: {size} bytes")
    first = data[0]
    if first >> 6 != RTP_VERSION:
        raise RtpParseError(f"RTP version {first >> 6}, expected 2")
    start = FIXED_HEADER_SIZE + 4 * (first & 0x0F)
    if start > size:
        raise RtpParseError("CSRC list runs past the end of the packet")
    if first & 0x10:
        if start + 4 > size:
            raise RtpParseError("header extension runs past the end of the packet")
        words = _EXTENSION_HEADER.unpack_from(data, start)[1]
        start += 4 + 4 * words
        if start > size:
            raise RtpParseError("header extension runs past the end of the packet")
    end = size
    if first & 0x20:
        padding = data[-1]
        if padding == 0:
            raise RtpParseError("padding bit set but padding count is zero")
        end = size - padding
        if end < start:
            raise RtpParseError("padding count exceeds the packet")
    return start, end


def seq_newer(candidate: int, reference: int) -> bool:
    """True when sequence number ``candidate`` comes after ``reference`` (serial arithmetic)."""
    return 0 < ((candidate - reference) & 0xFFFF) < 0x8000
