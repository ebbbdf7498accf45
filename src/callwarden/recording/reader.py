"""The sealed reader: authenticates a whole recording on open, then decrypts on demand.

API::

    reader = SealedReader.open(path, recording_id, data_key)
    reader.tracks, reader.duration_samples, reader.pauses, reader.complete
    reader.pcm("customer", start, end)        # int16, silence where nothing was recorded
    reader.stereo(start, end)                 # (n, 2) int16: customer left, operator right
    reader.mix(start, end)                    # int16, tracks summed with saturation
    reader.iter_pcm("customer", block)        # blocks of the whole track, for streaming

Sample positions count from the recording's start (its ``start_timestamp`` on the bridge's
timeline). :meth:`SealedReader.open` reads every record, checks it is the next in sequence and
decrypts it (AES-GCM authentication), and checks the trailer; any failure raises
:class:`RecordingCorrupted` naming the record. A file that ends right after a whole record with
no trailer opens with ``complete`` False. With ``allow_torn_tail`` (crash recovery only) a
final record cut short is ignored and its size reported in ``torn_tail_bytes``.

Chunks are decrypted again when read, so a file altered after it was opened is still caught.

:meth:`SealedReader.open_indexed` is the quick open for streaming (playback): given the chunk
digests of the recording's manifest it reads only each record's clear header (length, kind,
track, number, timestamp, samples), checks the sequence, the sizes and the count against the
manifest (a removed, swapped or added chunk, a cut file, data after the trailer are refused at
once), and decrypts only the few pause, resume and trailer records. An audio chunk is verified
when its audio is read: its SHA-256 against the manifest's, then AES-GCM; so the first bytes of
a long recording come after reading a few hundred headers, not the whole file, and a chunk
altered in place is refused when it is reached.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callwarden.recording.container import (
    LENGTH_BYTES,
    MAX_RECORD_BYTES,
    MIN_BODY_BYTES,
    NONCE_BYTES,
    SAMPLE_RATE,
    TAG_BYTES,
    ChunkHeader,
    FileHeader,
    FormatError,
    Kind,
    PcmArray,
    chunk_aad,
    decode_pcm,
    header_digest,
    record_length,
)
from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.writer import PauseInterval

logger = logging.getLogger(__name__)

STEREO_LEFT = "customer"
STEREO_RIGHT = "operator"


@dataclass(frozen=True, slots=True)
class _Audio:
    start: int  # samples from the recording start
    samples: int
    offset: int  # of the record body in the file
    length: int
    chunk: ChunkHeader


@dataclass(frozen=True, slots=True)
class _Scan:
    audio: dict[int, list[_Audio]]
    pauses: tuple[PauseInterval, ...]
    digests: tuple[str, ...]
    file_sha256: str | None  # None: an indexed open (digests are the manifest's, unchecked)
    file_bytes: int
    complete: bool
    end: int
    torn_tail_bytes: int


class SealedReader:
    """An opened, authenticated sealed recording; see the module docstring."""

    def __init__(self, path: Path, header: FileHeader, data_key: bytes, scan: _Scan) -> None:
        self.path = path
        #: The manifest's digests that each audio chunk is checked against when read
        #: (`open_indexed`); None when the whole file was authenticated at open.
        self._check_digests = scan.digests if scan.file_sha256 is None else None
        self.header = header
        self._aead = AESGCM(data_key)
        self._digest = header_digest(bytes(header))
        self._scan = scan
        self._starts = {index: [a.start for a in chunks] for index, chunks in scan.audio.items()}

    @classmethod
    def open(
        cls, path: Path, recording_id: str, data_key: bytes, *, allow_torn_tail: bool = False
    ) -> SealedReader:
        """Read and authenticate ``path``; raises :class:`RecordingCorrupted` on any tamper."""
        with path.open("rb") as file:
            header = _own_header(file, recording_id, data_key)
            scanner = _Scanner(header, AESGCM(data_key), allow_torn_tail)
            scan = scanner.run(file)
        return cls(path, header, data_key, scan)

    @classmethod
    def open_indexed(
        cls, path: Path, recording_id: str, data_key: bytes, chunk_digests: Sequence[str]
    ) -> SealedReader:
        """The quick open for streaming (see the module docstring); raises
        :class:`RecordingCorrupted` on what the headers show, the chunk reads on the rest."""
        with path.open("rb") as file:
            header = _own_header(file, recording_id, data_key)
            scanner = _Scanner(header, AESGCM(data_key), allow_torn_tail=False)
            scan = scanner.index(file, os.fstat(file.fileno()).st_size, tuple(chunk_digests))
        return cls(path, header, data_key, scan)

    @property
    def recording_id(self) -> str:
        return self.header.recording_id

    @property
    def tracks(self) -> tuple[str, ...]:
        return self.header.tracks

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def complete(self) -> bool:
        """True when the trailer is there: the recording was closed by its writer."""
        return self._scan.complete

    @property
    def duration_samples(self) -> int:
        return self._scan.end

    @property
    def duration_seconds(self) -> float:
        return self._scan.end / SAMPLE_RATE

    @property
    def pauses(self) -> tuple[PauseInterval, ...]:
        return self._scan.pauses

    @property
    def chunk_digests(self) -> tuple[str, ...]:
        """SHA-256 of every record as stored (length prefix included), in file order."""
        return self._scan.digests

    @property
    def file_sha256(self) -> str:
        """SHA-256 of the file up to the end of its last whole record."""
        if self._scan.file_sha256 is None:
            raise ValueError("an indexed open does not hash the whole file")
        return self._scan.file_sha256

    @property
    def file_bytes(self) -> int:
        return self._scan.file_bytes

    @property
    def torn_tail_bytes(self) -> int:
        return self._scan.torn_tail_bytes

    def track_duration(self, track: str) -> int:
        """Samples from the recording start to the end of ``track``'s last chunk."""
        chunks = self._scan.audio.get(self._track_index(track), [])
        return chunks[-1].start + chunks[-1].samples if chunks else 0

    def pcm(self, track: str, start: int = 0, end: int | None = None) -> PcmArray:
        """``track`` from sample ``start`` to ``end`` (default: the end), silence-filled."""
        end = self._scan.end if end is None else end
        if start < 0 or end < start:
            raise ValueError(f"bad sample range {start}..{end}")
        out = np.zeros(end - start, dtype=np.int16)
        index = self._track_index(track)
        chunks = self._scan.audio.get(index, [])
        first = max(0, bisect.bisect_right(self._starts.get(index, []), start) - 1)
        with self.path.open("rb") as file:
            for chunk in chunks[first:]:
                if chunk.start >= end:
                    break
                if chunk.start + chunk.samples <= start:
                    continue
                audio = self._decrypt_audio(file, chunk)
                lo, hi = max(start, chunk.start), min(end, chunk.start + chunk.samples)
                out[lo - start : hi - start] = audio[lo - chunk.start : hi - chunk.start]
        return out

    def iter_pcm(self, track: str, block_samples: int = SAMPLE_RATE * 10) -> Iterator[PcmArray]:
        """The whole track in blocks of ``block_samples`` (the last may be shorter)."""
        for start in range(0, self._scan.end, block_samples):
            yield self.pcm(track, start, min(self._scan.end, start + block_samples))

    def stereo(
        self,
        start: int = 0,
        end: int | None = None,
        *,
        left: str = STEREO_LEFT,
        right: str = STEREO_RIGHT,
    ) -> PcmArray:
        """Two channels, ``left`` and ``right`` tracks (customer left, operator right)."""
        return np.stack([self.pcm(left, start, end), self.pcm(right, start, end)], axis=1)

    def mix(
        self, start: int = 0, end: int | None = None, tracks: Sequence[str] | None = None
    ) -> PcmArray:
        """The tracks (default: all) summed, saturated to int16."""
        names = self.tracks if tracks is None else tuple(tracks)
        end = self._scan.end if end is None else end
        total = np.zeros(max(0, end - start), dtype=np.int32)
        for name in names:
            total += self.pcm(name, start, end)
        return np.clip(total, -32768, 32767).astype(np.int16)

    def _track_index(self, track: str) -> int:
        try:
            return self.tracks.index(track)
        except ValueError:
            raise ValueError(f"unknown track {track!r}; tracks are {self.tracks}") from None

    def _decrypt_audio(self, file: BinaryIO, chunk: _Audio) -> PcmArray:
        number = chunk.chunk.chunk
        if self._check_digests is not None:
            file.seek(chunk.offset - LENGTH_BYTES)
            record = file.read(LENGTH_BYTES + chunk.length)
            if hashlib.sha256(record).hexdigest() != self._check_digests[number]:
                raise RecordingCorrupted(
                    self.recording_id, f"chunk {number} digest does not match the manifest"
                )
            body = record[LENGTH_BYTES:]
        else:
            file.seek(chunk.offset)
            body = file.read(chunk.length)
        nonce = body[ChunkHeader.SIZE : ChunkHeader.SIZE + NONCE_BYTES]
        sealed = body[ChunkHeader.SIZE + NONCE_BYTES :]
        try:
            if len(body) != chunk.length or ChunkHeader.parse(body) != chunk.chunk:
                raise InvalidTag
            plain = self._aead.decrypt(
                nonce, sealed, chunk_aad(self.header, self._digest, chunk.chunk)
            )
        except (InvalidTag, FormatError):
            raise RecordingCorrupted(
                self.recording_id,
                f"chunk {number} failed authentication when read (altered, from another"
                " recording, or the wrong key)",
            ) from None
        return decode_pcm(plain)


def _own_header(file: BinaryIO, recording_id: str, data_key: bytes) -> FileHeader:
    """The file's header, if it is a sealed file of `recording_id` (and the key a 256-bit one)."""
    if len(data_key) != 32:
        raise ValueError("the data key must be 32 bytes (AES-256)")
    try:
        header = _read_header(file)
    except FormatError as exc:
        raise RecordingCorrupted(recording_id, str(exc)) from None
    if header.recording_id != recording_id:
        raise RecordingCorrupted(recording_id, f"file belongs to recording {header.recording_id!r}")
    return header


def _read_header(file: BinaryIO) -> FileHeader:
    prefix = file.read(FileHeader.prefix_size())
    body = file.read(FileHeader.body_size(prefix))
    return FileHeader.parse(prefix + body)


class _Scanner:
    """One pass over the records: sequence, authentication, pauses, trailer."""

    def __init__(self, header: FileHeader, aead: AESGCM, allow_torn_tail: bool) -> None:
        self.header = header
        self.aead = aead
        self.allow_torn_tail = allow_torn_tail
        self.digest = header_digest(bytes(header))
        self.origin = header.start_timestamp
        self.audio: dict[int, list[_Audio]] = {}
        self.pauses: list[tuple[int, int | None]] = []
        self.digests: list[str] = []
        self.end = 0
        self.complete = False

    def fail(self, reason: str) -> RecordingCorrupted:
        return RecordingCorrupted(self.header.recording_id, reason)

    def run(self, file: BinaryIO) -> _Scan:
        header_bytes = bytes(self.header)
        file_hash = hashlib.sha256(header_bytes)
        offset, torn = len(header_bytes), 0
        while True:
            prefix = file.read(LENGTH_BYTES)
            if not prefix:
                break
            number = len(self.digests)
            if self.complete:
                raise self.fail(f"data after the trailer (at byte {offset})")
            length = record_length(prefix) if len(prefix) == LENGTH_BYTES else -1
            if length != -1 and not MIN_BODY_BYTES <= length <= MAX_RECORD_BYTES:
                raise self.fail(f"chunk {number} has an impossible length {length}")
            body = file.read(length) if length > 0 else b""
            if length == -1 or len(body) != length:
                if self.allow_torn_tail:
                    torn = len(prefix) + len(body)
                    break
                raise self.fail(f"file ends inside chunk {number} (truncated)")
            self._record(number, offset + LENGTH_BYTES, body)
            record = prefix + body
            file_hash.update(record)
            self.digests.append(hashlib.sha256(record).hexdigest())
            offset += len(record)
        return self._scan(tuple(self.digests), file_hash.hexdigest(), offset, torn)

    def index(self, file: BinaryIO, size: int, expected: tuple[str, ...]) -> _Scan:
        """The headers-only pass of `SealedReader.open_indexed`, against the manifest's
        `expected` chunk digests."""
        offset = len(bytes(self.header))
        number = 0
        while offset < size:
            if self.complete:
                raise self.fail(f"data after the trailer (at byte {offset})")
            file.seek(offset)
            head = file.read(LENGTH_BYTES + ChunkHeader.SIZE)
            length = record_length(head[:LENGTH_BYTES]) if len(head) >= LENGTH_BYTES else -1
            if length != -1 and not MIN_BODY_BYTES <= length <= MAX_RECORD_BYTES:
                raise self.fail(f"chunk {number} has an impossible length {length}")
            if length == -1 or offset + LENGTH_BYTES + length > size:
                raise self.fail(f"file ends inside chunk {number} (truncated)")
            if number >= len(expected):
                raise self.fail(f"chunk {number} is not in the manifest")
            try:
                chunk = ChunkHeader.parse(head[LENGTH_BYTES:])
            except FormatError as exc:
                raise self.fail(str(exc)) from None
            if chunk.kind is Kind.AUDIO:
                if chunk.chunk != number:
                    raise self.fail(
                        f"chunk {number} is out of place (it says it is chunk {chunk.chunk})"
                    )
                position = chunk.timestamp - self.origin
                if position < 0:
                    raise self.fail(f"chunk {number} starts before the recording")
                sealed = length - ChunkHeader.SIZE - NONCE_BYTES - TAG_BYTES
                self._audio(number, offset + LENGTH_BYTES, length, chunk, position, sealed)
                self.end = max(self.end, position)
            else:  # a few bytes: checked against the manifest and decrypted now
                record = head + file.read(length - ChunkHeader.SIZE)
                if hashlib.sha256(record).hexdigest() != expected[number]:
                    raise self.fail(f"chunk {number} digest does not match the manifest")
                self._record(number, offset + LENGTH_BYTES, record[LENGTH_BYTES:])
            offset += LENGTH_BYTES + length
            number += 1
        if number != len(expected):
            raise self.fail(
                f"file ends after chunk {number} of the manifest's {len(expected)} (truncated)"
            )
        return self._scan(expected, None, offset, 0)

    def _scan(
        self, digests: tuple[str, ...], file_sha256: str | None, size: int, torn: int
    ) -> _Scan:
        return _Scan(
            audio=self.audio,
            pauses=tuple(
                PauseInterval(s - self.origin, None if e is None else e - self.origin)
                for s, e in self.pauses
            ),
            digests=digests,
            file_sha256=file_sha256,
            file_bytes=size,
            complete=self.complete,
            end=self.end,
            torn_tail_bytes=torn,
        )

    def _record(self, number: int, offset: int, body: bytes) -> None:
        try:
            chunk = ChunkHeader.parse(body)
        except FormatError as exc:
            raise self.fail(str(exc)) from None
        if chunk.chunk != number:
            raise self.fail(f"chunk {number} is out of place (it says it is chunk {chunk.chunk})")
        nonce = body[ChunkHeader.SIZE : ChunkHeader.SIZE + NONCE_BYTES]
        try:
            plain = self.aead.decrypt(
                nonce,
                body[ChunkHeader.SIZE + NONCE_BYTES :],
                chunk_aad(self.header, self.digest, chunk),
            )
        except InvalidTag:
            raise self.fail(
                f"chunk {number} failed authentication (altered, moved, from another "
                "recording, or the wrong key)"
            ) from None
        position = chunk.timestamp - self.origin
        if position < 0:
            raise self.fail(f"chunk {number} starts before the recording")
        if chunk.kind is Kind.AUDIO:
            self._audio(number, offset, len(body), chunk, position, len(plain))
        elif chunk.kind is Kind.PAUSE:
            if self.pauses and self.pauses[-1][1] is None:
                raise self.fail(f"chunk {number} pauses a paused recording")
            self.pauses.append((chunk.timestamp, None))
        elif chunk.kind is Kind.RESUME:
            if not self.pauses or self.pauses[-1][1] is not None:
                raise self.fail(f"chunk {number} resumes a recording that is not paused")
            self.pauses[-1] = (self.pauses[-1][0], chunk.timestamp)
        else:
            self._trailer(number, plain)
        self.end = max(self.end, position)

    def _audio(
        self, number: int, offset: int, length: int, chunk: ChunkHeader, position: int, size: int
    ) -> None:
        """An audio chunk of `size` plaintext bytes (one µ-law byte per sample)."""
        if chunk.track >= len(self.header.tracks) or size != chunk.samples:
            raise self.fail(f"chunk {number} does not match its header")
        chunks = self.audio.setdefault(chunk.track, [])
        if chunks and chunks[-1].start + chunks[-1].samples > position:
            raise self.fail(f"chunk {number} overlaps the chunk before it")
        chunks.append(_Audio(position, chunk.samples, offset, length, chunk))
        self.end = max(self.end, position + chunk.samples)

    def _trailer(self, number: int, plain: bytes) -> None:
        try:
            summary = json.loads(plain)
            records = int(summary["records"])
        except (ValueError, KeyError, TypeError):
            raise self.fail(f"trailer (chunk {number}) is not readable") from None
        if records != number:
            raise self.fail(f"trailer counts {records} chunks, the file has {number}")
        self.complete = True


def recover(path: Path, recording_id: str, data_key: bytes) -> SealedReader:
    """After a crash: cut a torn final record (if any), fsync, and open what remains.

    The file stays without a trailer, so the reader (and the manifest) call it incomplete;
    everything up to the last whole record, i.e. the last flush, is playable.
    """
    reader = SealedReader.open(path, recording_id, data_key, allow_torn_tail=True)
    if reader.torn_tail_bytes:
        with path.open("r+b") as file:
            file.truncate(reader.file_bytes)
            file.flush()
            os.fsync(file.fileno())
        logger.warning(
            "recording %s: cut %d bytes of a torn final chunk",
            recording_id,
            reader.torn_tail_bytes,
        )
        reader = SealedReader.open(path, recording_id, data_key)
    return reader
