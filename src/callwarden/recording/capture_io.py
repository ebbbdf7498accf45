"""The capture's side of the sealed writer: what a track writer is, and the sealed one.

:class:`TrackWriter` is what :mod:`callwarden.recording.capture` needs from a writer (the tests
give it one in memory); :class:`GroupCommitWriter` is one that also takes µ-law runs as they are
and leaves the fsync to the capture's group commit. :func:`open_sealed` opens the real one, a
:class:`~callwarden.recording.writer.SealedWriter`, from ``start_recording``'s spec
(:class:`SealSpec`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from callwarden.recording.writer import SealedWriter

DEFAULT_TRACKS = ("customer", "operator", "supervisor", "supervisor-2")
"""The tracks a recording declares unless its spec names others (``spec["tracks"]``)."""
BATCH_SAMPLES = 60 * 160
"""Frames go to the writer thread in batches of 1.2 s (60 ticks) per recording, as µ-law."""
FLUSH_INTERVAL_SECONDS = BATCH_SAMPLES / 8000
"""The sealed writer seals each batch as it arrives (its chunk is one batch) and the capture's
group commit makes it durable within ``GROUP_COMMIT_SECONDS``: a crash loses the batch being
gathered, at most 1.2 s of audio, plus the hand-over to the writer thread (0.1 s), what waits in
its queue and the commit (< 2 s)."""

Pcm = npt.NDArray[np.int16]


class TrackWriter(Protocol):
    """What the capture needs from a sealed writer (called on the writer thread only)."""

    def write(self, track: str, pcm: Pcm, timestamp: int) -> None:
        """Samples of one track starting at ``timestamp`` (samples since the start)."""
        ...

    def pause(self, timestamp: int) -> None: ...

    def resume(self, timestamp: int) -> None: ...

    def close(self, end: int) -> Mapping[str, object]:
        """Write the last chunk and close the file; ``end`` is the recording's length in
        samples. Returns what the manifest needs (chunk digests...), plain values."""
        ...

    def abort(self) -> None:
        """Close the file after a failure, keeping what was written; never raises."""
        ...


@runtime_checkable
class GroupCommitWriter(TrackWriter, Protocol):
    """A TrackWriter that takes µ-law runs as they are and leaves the fsync to a group commit."""

    @property
    def unsynced(self) -> bool: ...

    def write_codes(self, runs: Iterable[tuple[str, int, bytes]], *, sync: bool) -> None: ...

    def fileno(self) -> int: ...

    def sync(self) -> None: ...

    def mark_synced(self) -> None: ...


WriterOpener = Callable[[Mapping[str, object]], TrackWriter]
"""Opens the writer of one recording from ``start_recording``'s spec."""


def track_names(spec: Mapping[str, object]) -> tuple[str, ...]:
    """The tracks a recording declares (its spec's ``tracks``, else the default ones)."""
    names = spec.get("tracks")
    if names is None:
        return DEFAULT_TRACKS
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError("spec 'tracks' must be a list of track names")
    return tuple(names)


@dataclass(frozen=True, slots=True)
class SealSpec:
    """What ``start_recording``'s spec carries to open a sealed writer (plain values).

    ``data_key`` is the recording's unwrapped AES-256 key: it crosses only the local command
    pipe to the media process and lives in its memory, never on disk unwrapped."""

    recording_id: str
    path: str
    data_key: bytes = field(repr=False)
    tracks: tuple[str, ...] = DEFAULT_TRACKS

    def to_plain(self) -> dict[str, object]:
        return {
            "recording_id": self.recording_id,
            "path": self.path,
            "data_key": self.data_key,
            "tracks": list(self.tracks),
        }

    @classmethod
    def from_plain(cls, spec: Mapping[str, object]) -> SealSpec:
        recording_id, path, key = spec.get("recording_id"), spec.get("path"), spec.get("data_key")
        if not isinstance(recording_id, str) or not isinstance(path, str):
            raise ValueError("a recording spec needs 'recording_id' and 'path' strings")
        if not isinstance(key, bytes) or len(key) != 32:
            raise ValueError("a recording spec needs a 32-byte 'data_key'")
        return cls(recording_id, path, key, track_names(spec))


class SealedTrackWriter:
    """The capture's TrackWriter over a :class:`SealedWriter` (timestamps from the start)."""

    def __init__(self, writer: SealedWriter) -> None:
        self._writer = writer

    def write(self, track: str, pcm: Pcm, timestamp: int) -> None:
        self._writer.write(track, timestamp, pcm)

    def write_codes(self, runs: Iterable[tuple[str, int, bytes]], *, sync: bool) -> None:
        """µ-law runs ``(track, timestamp, codes)``, sealed as they are (no decode)."""
        self._writer.write_codes(runs, sync=sync)

    @property
    def unsynced(self) -> bool:
        return self._writer.unsynced

    def fileno(self) -> int:
        return self._writer.fileno()

    def sync(self) -> None:
        self._writer.sync()

    def mark_synced(self) -> None:
        self._writer.mark_synced()

    def pause(self, timestamp: int) -> None:
        self._writer.pause(timestamp)

    def resume(self, timestamp: int) -> None:
        self._writer.resume(timestamp)

    def close(self, end: int) -> Mapping[str, object]:
        return dataclasses.asdict(self._writer.close(end))

    def abort(self) -> None:
        self._writer.abort()


def open_sealed(spec: Mapping[str, object]) -> TrackWriter:
    """Create the sealed file of one recording (on the writer thread)."""
    seal = SealSpec.from_plain(spec)
    path = Path(seal.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SealedTrackWriter(
        SealedWriter.create(
            path,
            seal.recording_id,
            seal.data_key,
            seal.tracks,
            flush_interval_s=FLUSH_INTERVAL_SECONDS,
        )
    )
