"""The sealed writer: per-track PCM in, encrypted append-only chunks out.

API (synchronous; run it on a worker thread, never on the event loop)::

    writer = SealedWriter.create(path, recording_id, data_key, ["customer", "operator"],
                                 start_timestamp=bridge.sample_clock, flush_interval_s=2.0,
                                 clock=time.monotonic)
    writer.write("customer", timestamp, pcm)   # 8 kHz int16 (bytes or numpy), e.g. 160 samples
    writer.write_codes([("customer", timestamp, ulaw)])  # or µ-law bytes as received, batched
    writer.pause(timestamp); writer.resume(timestamp)
    writer.flush()                              # seal pending audio, fsync
    summary = writer.close(end_timestamp)       # trailer, fsync -> SealSummary

Timestamps count samples on the bridge's common 8 kHz timeline. A gap between a track's
frames is silence (nothing is stored for it); a frame that does not follow the previous one
starts a new chunk. Pending audio of every track is sealed and fsync'd when a track has
``flush_interval_s`` of audio pending or ``flush_interval_s`` of ``clock`` time has passed
since the last flush (checked on each write; call :meth:`flush` from a timer if frames may stop
coming), so a crash loses at most that much.

Pause: :meth:`pause` discards pending samples at or after its timestamp, writes a PAUSE marker
and fsyncs before returning (the confirmation: if it raises, stop recording: fail closed).
Frames written while paused, or before the resume timestamp, are dropped and never reach the
file, not even encrypted. Pausing twice or resuming while not paused does nothing.

Failure: a write or fsync error (disk full) truncates the file back to its last whole record,
marks the writer failed and raises :class:`RecordingWriteFailed`; chunks sealed before stay
readable. Every public method takes an internal lock, so one producer thread and one flushing
thread may share a writer.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callwarden.recording.container import (
    NO_TRACK,
    NONCE_BYTES,
    SAMPLE_RATE,
    ChunkHeader,
    FileHeader,
    Kind,
    PcmArray,
    aad_prefix,
    canonical_json,
    encode_pcm,
    header_digest,
    record_bytes,
)
from callwarden.recording.errors import RecorderStateError, RecordingWriteFailed

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Opener = Callable[[Path], BinaryIO]
_INT16 = np.dtype(np.int16)


@dataclass(frozen=True, slots=True)
class PauseInterval:
    """A paused stretch in samples from the recording's start; ``end`` None: never resumed."""

    start: int
    end: int | None


@dataclass(frozen=True, slots=True)
class SealSummary:
    """What :meth:`SealedWriter.close` sealed; durations in samples from the recording start."""

    recording_id: str
    chunk_count: int
    chunk_digests: tuple[str, ...]
    file_sha256: str
    file_bytes: int
    duration_samples: int
    track_durations: dict[str, int]
    pauses: tuple[PauseInterval, ...]
    frames_dropped_paused: int = 0

    @property
    def duration_seconds(self) -> float:
        return self.duration_samples / SAMPLE_RATE


def open_exclusive(path: Path) -> BinaryIO:
    """Create ``path`` (0600, must not exist) for appending, unbuffered."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    return os.fdopen(fd, "ab", buffering=0)


def as_pcm(pcm: bytes | PcmArray) -> PcmArray:
    """int16 samples from little-endian bytes or a numpy array."""
    if isinstance(pcm, bytes | bytearray | memoryview):
        if len(pcm) % 2:
            raise ValueError("PCM bytes must hold whole 16-bit samples")
        return np.frombuffer(pcm, dtype="<i2").astype(np.int16, copy=False)
    array = np.asarray(pcm)
    if array.dtype != np.int16 or array.ndim != 1:
        raise ValueError(f"PCM must be a 1-D int16 array, got {array.dtype} {array.shape}")
    return array


@dataclass(slots=True)
class _Track:
    index: int
    pending: list[bytes] = field(default_factory=list)  # µ-law, one byte a sample
    pending_start: int = 0
    pending_samples: int = 0
    end: int = 0  # absolute timestamp after the last sample accepted
    audio_end: int = 0  # absolute timestamp after the last sample sealed

    @property
    def pending_end(self) -> int:
        return self.pending_start + self.pending_samples


class SealedWriter:
    """Writes one sealed recording file; see the module docstring."""

    def __init__(
        self,
        file: BinaryIO,
        header: FileHeader,
        data_key: bytes,
        *,
        flush_interval_s: float,
        clock: Clock,
    ) -> None:
        self._file = file
        self._header = header
        self._aead = AESGCM(data_key)
        self._lock = threading.Lock()
        self._clock = clock
        self._flush_interval_s = flush_interval_s
        self._chunk_samples = max(1, int(flush_interval_s * SAMPLE_RATE))
        header_bytes = bytes(header)
        self._digest = header_digest(header_bytes)
        #: Each track's part of the associated data, and the markers' (NO_TRACK).
        self._aad = {
            index: aad_prefix(header, self._digest, index)
            for index in (*range(len(header.tracks)), NO_TRACK)
        }
        self._file_hash = hashlib.sha256()
        self._size = 0
        self._chunk_digests: list[str] = []
        self._tracks = {
            name: _Track(index, end=header.start_timestamp)
            for index, name in enumerate(header.tracks)
        }
        self._paused_at: int | None = None
        self._resume_at = header.start_timestamp
        self._pauses: list[tuple[int, int | None]] = []
        self._last_flush = clock()
        self._dropped = 0
        self._unsynced = False
        self._closed = False
        self._failed = False
        self._append(header_bytes)
        self._sync()

    @classmethod
    def create(
        cls,
        path: Path,
        recording_id: str,
        data_key: bytes,
        tracks: Sequence[str],
        *,
        start_timestamp: int = 0,
        flush_interval_s: float = 2.0,
        clock: Clock = time.monotonic,
        opener: Opener = open_exclusive,
    ) -> SealedWriter:
        """Create ``path`` (it must not exist) and write the container header (fsync'd)."""
        if len(data_key) != 32:
            raise ValueError("the data key must be 32 bytes (AES-256)")
        if not 0 < flush_interval_s <= 2.0:
            raise ValueError("flush_interval_s must be in (0, 2] seconds")
        header = FileHeader.new(recording_id, tuple(tracks), start_timestamp)
        file = opener(path)
        try:
            writer = cls(file, header, data_key, flush_interval_s=flush_interval_s, clock=clock)
        except BaseException:
            file.close()
            raise
        _sync_directory(path.parent)
        return writer

    @property
    def recording_id(self) -> str:
        return self._header.recording_id

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    @property
    def failed(self) -> bool:
        return self._failed

    def write(self, track: str, timestamp: int, pcm: bytes | PcmArray) -> None:
        """Add samples of ``track`` starting at ``timestamp``; dropped while paused."""
        if type(pcm) is np.ndarray and pcm.dtype == _INT16 and pcm.ndim == 1:
            samples: PcmArray = pcm
        else:
            samples = as_pcm(pcm)
        codes = encode_pcm(samples)
        with self._lock:
            self._add_locked(track, timestamp, codes)
            self._flush_if_due()

    def write_codes(self, runs: Iterable[tuple[str, int, bytes]], *, sync: bool = True) -> None:
        """Add G.711 µ-law samples (one byte each) as ``(track, timestamp, codes)`` runs, with
        one flush check for all of them: the capture's path, nothing decoded or re-encoded.

        ``sync=False`` (group commit): a due flush seals and appends but does not fsync; the
        caller makes it durable soon with :meth:`sync`, or with one ``syncfs`` of the file
        system for many writers followed by :meth:`mark_synced` (see :attr:`unsynced`)."""
        with self._lock:
            for track, timestamp, codes in runs:
                self._add_locked(track, timestamp, codes)
            self._flush_if_due(sync=sync)

    @property
    def unsynced(self) -> bool:
        """Sealed records were appended without an fsync (``write_codes(sync=False)``)."""
        return self._unsynced

    def fileno(self) -> int:
        return self._file.fileno()

    def sync(self) -> None:
        """fdatasync what was appended (a group commit's fallback)."""
        with self._lock:
            self._check_open()
            self._sync()

    def mark_synced(self) -> None:
        """The caller made the file durable (``syncfs`` of its file system after the appends)."""
        with self._lock:
            self._unsynced = False

    def _add_locked(self, track: str, timestamp: int, codes: bytes) -> None:
        if self._failed or self._closed:
            self._check_open()
        state = self._tracks.get(track)
        if state is None:
            raise ValueError(f"unknown track {track!r}; tracks are {self._header.tracks}")
        if timestamp < state.end:
            raise ValueError(f"track {track}: timestamp {timestamp} goes back before {state.end}")
        if self._paused_at is not None:
            self._dropped += 1
            return
        if timestamp < self._resume_at:  # a frame straddling the resume: keep the tail
            codes = codes[self._resume_at - timestamp :]
            timestamp = self._resume_at
        size = len(codes)
        if size == 0:
            return
        pending = state.pending
        if pending and timestamp != state.pending_start + state.pending_samples:
            number = len(self._chunk_digests)
            self._append_records([self._seal_track(state, number, os.urandom(NONCE_BYTES))])
            pending = state.pending
        if not pending:
            state.pending_start = timestamp
        pending.append(bytes(codes))
        state.pending_samples += size
        state.end = timestamp + size

    def _flush_if_due(self, *, sync: bool = True) -> None:
        if (
            any(state.pending_samples >= self._chunk_samples for state in self._tracks.values())
            or self._clock() - self._last_flush >= self._flush_interval_s
        ):
            self._flush_locked(sync=sync)
            if not sync:
                self._unsynced = True

    def flush(self) -> None:
        """Seal every track's pending audio and fsync."""
        with self._lock:
            self._check_open()
            self._flush_locked()

    def pause(self, timestamp: int) -> None:
        """Stop recording at ``timestamp``: pending audio from there on is discarded; fsync'd."""
        with self._lock:
            self._check_open()
            if self._paused_at is not None:
                return
            start = max(timestamp, self._header.start_timestamp)
            for state in self._tracks.values():
                self._trim_pending(state, start)
            self._flush_locked(sync=False)
            sealed_end = max(state.audio_end for state in self._tracks.values())
            if sealed_end > start:  # audio past the pause was sealed already: pause after it
                logger.warning(
                    "recording %s: pause at %d moved to %d, after audio already sealed",
                    self.recording_id,
                    start,
                    sealed_end,
                )
                start = sealed_end
            self._seal(Kind.PAUSE, NO_TRACK, start, 0, b"")
            self._sync()
            self._paused_at = start
            self._pauses.append((start, None))
            logger.info("recording %s paused at %d", self.recording_id, start)

    def resume(self, timestamp: int) -> None:
        """Record again from ``timestamp`` (not before the pause); fsync'd."""
        with self._lock:
            self._check_open()
            if self._paused_at is None:
                return
            self._resume_locked(max(timestamp, self._paused_at))

    def close(self, end_timestamp: int | None = None) -> SealSummary:
        """Seal what is pending, end an open pause, write the trailer, fsync and close."""
        with self._lock:
            self._check_open()
            self._flush_locked(sync=False)
            end = max(
                self._header.start_timestamp,
                end_timestamp or 0,
                *(state.audio_end for state in self._tracks.values()),
                *(start for start, _ in self._pauses),
                *(stop or 0 for _, stop in self._pauses),
            )
            if self._paused_at is not None:
                self._resume_locked(end, sync=False)
            trailer = {
                "end_timestamp": end,
                "pauses": [[start, stop] for start, stop in self._pauses],
                "records": len(self._chunk_digests),
                "track_ends": {name: state.audio_end for name, state in self._tracks.items()},
            }
            self._seal(Kind.TRAILER, NO_TRACK, end, 0, canonical_json(trailer))
            self._sync()
            self._closed = True
            self._file.close()
            summary = self._summary(end)
            logger.info(
                "recording %s sealed: %d chunks, %.1f s",
                self.recording_id,
                summary.chunk_count,
                summary.duration_seconds,
            )
            return summary

    def abort(self) -> None:
        """Close the file without a trailer (it stays readable as an incomplete recording)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._file.close()

    # -- internals (lock held) --

    def _check_open(self) -> None:
        if self._failed:
            raise RecorderStateError(f"recording {self.recording_id} failed; it is read-only")
        if self._closed:
            raise RecorderStateError(f"recording {self.recording_id} is closed")

    def _resume_locked(self, timestamp: int, *, sync: bool = True) -> None:
        assert self._paused_at is not None
        self._seal(Kind.RESUME, NO_TRACK, timestamp, 0, b"")
        if sync:
            self._sync()
        self._pauses[-1] = (self._paused_at, timestamp)
        self._paused_at = None
        self._resume_at = timestamp
        logger.info("recording %s resumed at %d", self.recording_id, timestamp)

    def _trim_pending(self, state: _Track, limit: int) -> None:
        if not state.pending or state.pending_end <= limit:
            return
        joined = b"".join(state.pending)[: max(0, limit - state.pending_start)]
        state.pending = [joined] if joined else []
        state.pending_samples = len(joined)
        state.end = max(limit, state.audio_end)

    def _flush_locked(self, *, sync: bool = True) -> None:
        """Seal every track's pending audio and append the records with one write."""
        pending = [state for state in self._tracks.values() if state.pending]
        if pending:
            nonces = os.urandom(NONCE_BYTES * len(pending))
            number = len(self._chunk_digests)
            records = []
            for offset, state in enumerate(pending):
                nonce = nonces[offset * NONCE_BYTES : (offset + 1) * NONCE_BYTES]
                records.append(self._seal_track(state, number + offset, nonce))
            self._append_records(records)
        if sync:
            self._sync()
        self._last_flush = self._clock()

    def _seal_track(self, state: _Track, number: int, nonce: bytes) -> bytes:
        """The sealed record of the track's pending audio, as chunk ``number``."""
        codes = b"".join(state.pending) if len(state.pending) > 1 else state.pending[0]
        start, count = state.pending_start, state.pending_samples
        state.pending, state.pending_samples = [], 0
        state.audio_end = start + count
        return self._record(Kind.AUDIO, state.index, number, start, count, codes, nonce)

    def _record(
        self,
        kind: Kind,
        track: int,
        number: int,
        timestamp: int,
        samples: int,
        plain: bytes,
        nonce: bytes,
    ) -> bytes:
        chunk = ChunkHeader(kind, track, number, timestamp, samples)
        head = bytes(chunk)
        ciphertext = self._aead.encrypt(nonce, plain, self._aad[track] + head)
        return record_bytes(head, nonce, ciphertext)

    def _seal(self, kind: Kind, track: int, timestamp: int, samples: int, plain: bytes) -> None:
        """Seal and append one record (markers, the trailer, a run cut by a gap)."""
        number = len(self._chunk_digests)
        nonce = os.urandom(NONCE_BYTES)
        self._append_records([self._record(kind, track, number, timestamp, samples, plain, nonce)])

    def _append_records(self, records: list[bytes]) -> None:
        """Append whole records in one write; their digests count once they are written."""
        self._append(records[0] if len(records) == 1 else b"".join(records))
        self._chunk_digests.extend(hashlib.sha256(record).hexdigest() for record in records)

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = self._file.write(view)
                if not written:
                    raise OSError(errno.EIO, "write returned no progress")
                view = view[written:]
        except OSError as exc:
            self._fail(exc, truncate=True)
        self._file_hash.update(data)
        self._size += len(data)

    def _sync(self) -> None:
        self._unsynced = False
        try:
            self._file.flush()
            # fdatasync: the appended data and the new file size, not the timestamps.
            os.fdatasync(self._file.fileno())
        except OSError as exc:
            self._fail(exc, truncate=False)

    def _fail(self, exc: OSError, *, truncate: bool) -> None:
        self._failed = True
        if truncate:
            try:
                self._file.truncate(self._size)
                os.fsync(self._file.fileno())
            except OSError:
                logger.exception("recording %s: cannot cut a torn record", self.recording_id)
        try:
            self._file.close()
        except OSError:
            logger.exception("recording %s: close after a failed write", self.recording_id)
        logger.error("recording %s: write failed: %s", self.recording_id, exc)
        raise RecordingWriteFailed(self.recording_id, exc.strerror or str(exc)) from exc

    def _summary(self, end: int) -> SealSummary:
        origin = self._header.start_timestamp
        return SealSummary(
            recording_id=self.recording_id,
            chunk_count=len(self._chunk_digests),
            chunk_digests=tuple(self._chunk_digests),
            file_sha256=self._file_hash.hexdigest(),
            file_bytes=self._size,
            duration_samples=end - origin,
            track_durations={n: max(0, s.audio_end - origin) for n, s in self._tracks.items()},
            pauses=tuple(
                PauseInterval(s - origin, None if e is None else e - origin)
                for s, e in self._pauses
            ),
            frames_dropped_paused=self._dropped,
        )


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # not Linux/glibc
        return None
    return function


_SYNCFS = _load_syncfs()


def syncfs(fd: int) -> bool:
    """Flush the whole file system holding ``fd`` (one journal commit for every file written
    there, Linux ``syncfs(2)``); False when it is not available or failed (then fsync each)."""
    if _SYNCFS is None:
        return False
    if _SYNCFS(fd) != 0:
        logger.warning("syncfs failed: %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def _sync_directory(directory: Path) -> None:
    """fsync the directory so a newly created file's entry survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
