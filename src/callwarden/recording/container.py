"""The sealed container format, version 1 (sans-IO: bytes in, bytes out).

One file per recording holds every track (see ``docs/recording.md`` for why)::

    file    = header record*
    header  = magic "CWRC\\r\\n\\x1a\\n" (8) | version u16 | length u32 | header JSON (length)
    record  = length u32 | kind u8 | track u8 | chunk u32 | timestamp u64 | samples u32
              | nonce (12) | AES-256-GCM ciphertext + tag (length - 30)

All integers are big-endian. The header JSON (canonical: sorted keys, no spaces) names the
recording id, the tracks, the codec (``pcmu``: G.711 µ-law, 8 kHz), the sample rate, the
timestamp the recording starts at on the bridge's timeline and a random file nonce.

Records are numbered 0, 1, 2... in file order (``chunk``), whatever their kind:

* ``AUDIO`` (1): ``samples`` µ-law bytes of track ``track`` starting at ``timestamp``;
* ``PAUSE`` (2) / ``RESUME`` (3): markers at ``timestamp``; empty plaintext, authenticated;
* ``TRAILER`` (4): the last record of a closed recording; its plaintext is a JSON summary and
  ``chunk`` is the number of records before it.

Each record's associated data is the format version, the SHA-256 of the header bytes, the
recording id, the track name and the record's 18 header bytes (kind, track, chunk number,
timestamp, sample count). A byte changed anywhere, a record moved within the file, or copied
from another recording fails authentication; a missing trailer marks the file incomplete.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from callwarden.media.g711 import ULAW_DECODE, ULAW_ENCODE

MAGIC = b"CWRC\r\n\x1a\n"
VERSION = 1
SAMPLE_RATE = 8000
CODEC = "pcmu"
NO_TRACK = 0xFF
MAX_TRACKS = 16
_PREFIX = struct.Struct(">8sHI")
_LENGTH = struct.Struct(">I")
_CHUNK = struct.Struct(">BBIQI")
NONCE_BYTES = 12
TAG_BYTES = 16
#: A record longer than this is refused as corrupted rather than read into memory.
MAX_RECORD_BYTES = 16 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
_AAD_PREFIX = b"callwarden/recording-chunk\x00"

PcmArray = npt.NDArray[np.int16]


class FormatError(ValueError):
    """Bytes that are not a well-formed container (the reader turns it into RecordingCorrupted)."""


class Kind(IntEnum):
    AUDIO = 1
    PAUSE = 2
    RESUME = 3
    TRAILER = 4


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: the same value gives the same bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@dataclass(frozen=True, slots=True)
class FileHeader:
    recording_id: str
    tracks: tuple[str, ...]
    start_timestamp: int
    file_nonce: str
    codec: str = CODEC
    sample_rate: int = SAMPLE_RATE
    version: int = VERSION

    @classmethod
    def new(cls, recording_id: str, tracks: tuple[str, ...], start_timestamp: int) -> FileHeader:
        if not recording_id:
            raise ValueError("a recording needs an id")
        if not tracks or len(tracks) > MAX_TRACKS or len(set(tracks)) != len(tracks):
            raise ValueError(f"tracks must be 1..{MAX_TRACKS} distinct names, got {tracks!r}")
        if any(not name for name in tracks):
            raise ValueError("a track name cannot be empty")
        if start_timestamp < 0:
            raise ValueError("start_timestamp cannot be negative")
        return cls(recording_id, tracks, start_timestamp, secrets.token_hex(16))

    def __bytes__(self) -> bytes:
        body = canonical_json(
            {
                "codec": self.codec,
                "file_nonce": self.file_nonce,
                "recording_id": self.recording_id,
                "sample_rate": self.sample_rate,
                "start_timestamp": self.start_timestamp,
                "tracks": list(self.tracks),
            }
        )
        return _PREFIX.pack(MAGIC, self.version, len(body)) + body

    @staticmethod
    def prefix_size() -> int:
        return _PREFIX.size

    @staticmethod
    def body_size(prefix: bytes) -> int:
        """The JSON length announced by the fixed prefix; checks magic and version."""
        if len(prefix) < _PREFIX.size:
            raise FormatError("file is shorter than the container header")
        magic, version, length = _PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise FormatError("not a callwarden sealed recording (bad magic)")
        if version != VERSION:
            raise FormatError(f"unsupported container version {version}")
        if length > MAX_HEADER_BYTES:
            raise FormatError(f"header length {length} is too large")
        return int(length)

    @classmethod
    def parse(cls, data: bytes) -> FileHeader:
        length = cls.body_size(data[: _PREFIX.size])
        body = data[_PREFIX.size : _PREFIX.size + length]
        if len(body) != length:
            raise FormatError("file ends inside the container header")
        try:
            fields = json.loads(body)
            header = cls(
                recording_id=str(fields["recording_id"]),
                tracks=tuple(str(name) for name in fields["tracks"]),
                start_timestamp=int(fields["start_timestamp"]),
                file_nonce=str(fields["file_nonce"]),
                codec=str(fields["codec"]),
                sample_rate=int(fields["sample_rate"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise FormatError(f"container header is not valid: {exc}") from None
        if header.codec != CODEC or header.sample_rate != SAMPLE_RATE:
            raise FormatError(f"unsupported codec {header.codec} at {header.sample_rate} Hz")
        if bytes(header) != data[: _PREFIX.size + length]:
            raise FormatError("container header is not in canonical form")
        return header


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    kind: Kind
    track: int
    chunk: int
    timestamp: int
    samples: int

    SIZE = _CHUNK.size

    def __bytes__(self) -> bytes:
        return _CHUNK.pack(self.kind, self.track, self.chunk, self.timestamp, self.samples)

    @classmethod
    def parse(cls, data: bytes) -> ChunkHeader:
        kind, track, chunk, timestamp, samples = _CHUNK.unpack(data[: _CHUNK.size])
        try:
            return cls(Kind(kind), track, chunk, timestamp, samples)
        except ValueError:
            raise FormatError(f"record {chunk} has unknown kind {kind}") from None


def header_digest(header_bytes: bytes) -> bytes:
    return hashlib.sha256(header_bytes).digest()


def chunk_aad(header: FileHeader, digest: bytes, chunk: ChunkHeader) -> bytes:
    """Associated data of one record: binds version, header, recording, track and position."""
    return aad_prefix(header, digest, chunk.track) + bytes(chunk)


def aad_prefix(header: FileHeader, digest: bytes, track_index: int) -> bytes:
    """The part of :func:`chunk_aad` common to every record of one track (a writer keeps it)."""
    track_name = header.tracks[track_index] if track_index < len(header.tracks) else ""
    recording = header.recording_id.encode()
    track = track_name.encode()
    return b"".join(
        (
            _AAD_PREFIX,
            struct.pack(">H", header.version),
            digest,
            _LENGTH.pack(len(recording)),
            recording,
            _LENGTH.pack(len(track)),
            track,
        )
    )


def record_bytes(chunk: ChunkHeader | bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """A whole record; ``chunk`` is its header or the header's bytes."""
    head = chunk if isinstance(chunk, bytes) else bytes(chunk)
    body_length = len(head) + len(nonce) + len(ciphertext)
    return b"".join((_LENGTH.pack(body_length), head, nonce, ciphertext))


def record_length(prefix: bytes) -> int:
    """Body length from a record's 4-byte prefix."""
    (length,) = _LENGTH.unpack(prefix)
    return int(length)


LENGTH_BYTES = _LENGTH.size
MIN_BODY_BYTES = ChunkHeader.SIZE + NONCE_BYTES + TAG_BYTES


def encode_pcm(pcm: PcmArray) -> bytes:
    """int16 PCM to G.711 µ-law bytes (lookup table)."""
    return bytes(ULAW_ENCODE[np.ascontiguousarray(pcm, dtype=np.int16).view(np.uint16)].data)


def decode_pcm(payload: bytes) -> PcmArray:
    """G.711 µ-law bytes to int16 PCM."""
    decoded: PcmArray = ULAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]
    return decoded
