"""G.711 µ-law (PCMU) and A-law (PCMA) through numpy lookup tables (ITU-T G.711, RFC 3551 4.5.14).

Decoding is a 256-entry table to int16; encoding is a 65536-entry table indexed by the int16
sample viewed as uint16. Both work on whole arrays at once, so one tick's frames of every call
are decoded or encoded in a single indexing operation. The tables are built once at import with
vectorised arithmetic that follows the segment rules of G.711 (the same rounding as the
reference C implementation CCITT published and Python's former ``audioop`` used) and are
read-only.
"""

from __future__ import annotations

import enum
from typing import TypeVar

import numpy as np
import numpy.typing as npt

PcmArray = npt.NDArray[np.int16]
CodeArray = npt.NDArray[np.uint8]
_T = TypeVar("_T", bound=np.generic)

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


class Encoding(enum.Enum):
    """The G.711 encodings, with their static payload types and silence codes (RFC 3551 6)."""

    PCMU = "PCMU"
    PCMA = "PCMA"

    @property
    def static_payload_type(self) -> int:
        return 0 if self is Encoding.PCMU else 8

    @property
    def silence_code(self) -> int:
        """The code of a zero sample: 0xFF for µ-law, 0xD5 for A-law."""
        return 0xFF if self is Encoding.PCMU else 0xD5

    @property
    def index(self) -> int:
        """Row of this encoding in :data:`DECODE_TABLES` and :data:`ENCODE_TABLES`."""
        return 0 if self is Encoding.PCMU else 1

    @classmethod
    def from_name(cls, name: str) -> Encoding:
        """The encoding of an SDP rtpmap name (case-insensitive), e.g. ``"pcmu"``."""
        try:
            return cls(name.upper())
        except ValueError:
            raise ValueError(f"unsupported encoding: {name!r}") from None


def _ulaw_decode_table() -> PcmArray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    value = np.where(code & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS)
    return value.astype(np.int16)


def _alaw_decode_table() -> PcmArray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code & 0x70) >> 4
    quantised = (code & 0x0F) << 4
    magnitude = np.where(
        segment == 0, quantised + 8, (quantised + 0x108) << np.maximum(segment - 1, 0)
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _ulaw_encode_table() -> CodeArray:
    # Index i is the int16 sample whose uint16 bit pattern is i.
    sample = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)
    value = sample >> 2  # 14-bit range
    mask = np.where(value < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(value), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, value, side="left")
    code = np.where(
        segment >= 8,
        0x7F,
        (segment << 4) | ((value >> (np.minimum(segment, 7) + 1)) & 0x0F),
    )
    return (code ^ mask).astype(np.uint8)


def _alaw_encode_table() -> CodeArray:
    sample = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)
    value = sample >> 3  # 13-bit range
    mask = np.where(value >= 0, 0xD5, 0x55)
    value = np.where(value >= 0, value, -value - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, value, side="left")
    shift = np.where(segment < 2, 1, np.minimum(segment, 7))
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((value >> shift) & 0x0F))
    return (code ^ mask).astype(np.uint8)


def _frozen(array: npt.NDArray[_T]) -> npt.NDArray[_T]:
    array.flags.writeable = False
    return array


ULAW_DECODE: PcmArray = _frozen(_ulaw_decode_table())
ALAW_DECODE: PcmArray = _frozen(_alaw_decode_table())
ULAW_ENCODE: CodeArray = _frozen(_ulaw_encode_table())
ALAW_ENCODE: CodeArray = _frozen(_alaw_encode_table())
#: Both decode tables back to back: index ``code + 256 * Encoding.index`` (batched decoding).
DECODE_TABLES: PcmArray = _frozen(np.concatenate([ULAW_DECODE, ALAW_DECODE]))
#: Both encode tables back to back: index ``uint16(sample) + 65536 * Encoding.index``.
ENCODE_TABLES: CodeArray = _frozen(np.concatenate([ULAW_ENCODE, ALAW_ENCODE]))


def decode(payload: bytes, encoding: Encoding) -> PcmArray:
    """Decode G.711 bytes to int16 samples."""
    table = ULAW_DECODE if encoding is Encoding.PCMU else ALAW_DECODE
    return table[np.frombuffer(payload, dtype=np.uint8)]


def encode(pcm: PcmArray, encoding: Encoding) -> bytes:
    """Encode int16 samples to G.711 bytes."""
    table = ULAW_ENCODE if encoding is Encoding.PCMU else ALAW_ENCODE
    return table[np.ascontiguousarray(pcm, dtype=np.int16).view(np.uint16)].tobytes()


def decode_frames(frames: CodeArray, encodings: npt.NDArray[np.intp]) -> PcmArray:
    """Decode a (rows, samples) array of codes, row ``i`` in encoding index ``encodings[i]``."""
    return DECODE_TABLES[frames.astype(np.intp) + (encodings[:, None] << 8)]


def encode_frames(pcm: PcmArray, encodings: npt.NDArray[np.intp]) -> CodeArray:
    """Encode a (rows, samples) int16 array, row ``i`` in encoding index ``encodings[i]``."""
    return ENCODE_TABLES[pcm.view(np.uint16).astype(np.intp) + (encodings[:, None] << 16)]
