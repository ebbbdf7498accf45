"""One recording's writer where it writes: the writer thread's, or the writer process's, half of
a capture (see :mod:`callwarden.recording.capture` and :mod:`callwarden.recording.capture_process`).

A :class:`WriterSlot` opens the recording's writer, feeds it the work the media loop handed
over (µ-law runs, pause and resume markers) in order, and closes it. Sealed batches are appended
unsynced and made durable by :func:`group_commit`, one ``syncfs`` for all of them. Any writer
error (disk full, I/O error, a bug) aborts the recording there, keeping what was written, and is
reported once through ``on_fail``; the call goes on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import cast

from callwarden.recording.capture_io import GroupCommitWriter, TrackWriter, WriterOpener
from callwarden.recording.container import decode_pcm
from callwarden.recording.writer import syncfs

__all__ = ["SLOW_COMMIT_SECONDS", "Run", "WriterSlot", "group_commit"]

logger = logging.getLogger(__name__)

SLOW_COMMIT_SECONDS = 0.5
"""A group commit slower than this is logged (the file system is too slow for the crash bound)."""

Run = tuple[str, int, bytes | bytearray]
"""µ-law samples of one track: ``(track, first sample since the recording's start, codes)``."""


class WriterSlot:
    """One recording's writer, used from one thread only."""

    def __init__(self, recording_id: str, on_fail: Callable[[str], None]) -> None:
        self.recording_id = recording_id
        self._on_fail = on_fail
        self.writer: TrackWriter | None = None
        #: The writer again when it takes µ-law runs and group commits (the sealed one).
        self.grouped: GroupCommitWriter | None = None
        self.failed = False

    def open(self, opener: WriterOpener, spec: Mapping[str, object]) -> None:
        try:
            self.writer = opener(spec)
            # checked once: a runtime protocol check costs microseconds
            grouped = isinstance(self.writer, GroupCommitWriter)
            self.grouped = cast(GroupCommitWriter, self.writer) if grouped else None
        except Exception as error:
            self._fail(f"cannot open the recording: {type(error).__name__}: {error}")

    def run(self, kind: str, payload: object) -> bool:
        """``frames`` (a sequence of :data:`Run`), ``pause`` or ``resume`` (a sample time);
        True when it left sealed audio to make durable (see :attr:`unsynced`)."""
        writer = self.writer
        if self.failed or writer is None:
            return False
        try:
            if kind == "frames":
                self._write_runs(writer, cast("Sequence[Run]", payload))
            elif kind == "pause":
                writer.pause(cast(int, payload))
            elif kind == "resume":
                writer.resume(cast(int, payload))
            else:
                raise ValueError(f"unknown recording work {kind!r}")
        except Exception as error:  # disk full, I/O error, a writer bug: the call goes on
            self._abort(f"{type(error).__name__}: {error}")
        return self.unsynced

    @property
    def unsynced(self) -> bool:
        """Its writer appended sealed chunks that no fsync covers yet (group commit)."""
        grouped = self.grouped
        return grouped is not None and grouped is self.writer and grouped.unsynced

    def commit(self, synced: bool) -> None:
        """After a group commit: ``synced`` when a ``syncfs`` covered the file, else fsync it."""
        writer = self.grouped
        if writer is None or writer is not self.writer or not writer.unsynced:
            return
        try:
            if synced:
                writer.mark_synced()
            else:
                writer.sync()
        except Exception as error:
            self._abort(f"{type(error).__name__}: {error}")

    def close(self, end: int) -> Mapping[str, object]:
        """Write the trailer (a healthy writer) and close; what the manifest needs, or {}."""
        written: Mapping[str, object] = {}
        writer, self.writer = self.writer, None
        if writer is not None:  # healthy (a writer error already aborted it): a trailer
            try:
                written = writer.close(end)
            except Exception as error:
                writer.abort()
                self._fail(f"{type(error).__name__}: {error}")
        return written

    def abort(self, reason: str) -> None:
        """Stop here, keeping what was written (the writer process's parent went away)."""
        self._abort(reason)

    def _write_runs(self, writer: TrackWriter, runs: Sequence[Run]) -> None:
        grouped = self.grouped
        if grouped is not None:  # the sealed writer: the µ-law as it is
            grouped.write_codes([(t, s, bytes(c)) for t, s, c in runs], sync=False)
            return
        for track, start, codes in runs:
            writer.write(track, decode_pcm(bytes(codes)), start)

    def _abort(self, reason: str) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.abort()
        self._fail(reason)

    def _fail(self, reason: str) -> None:
        if not self.failed:
            self.failed = True
            self._on_fail(reason)


def group_commit(slots: Iterable[WriterSlot]) -> None:
    """Make every dirty recording durable: one ``syncfs`` when they share a file system (the
    usual case: one recordings directory), else (or if it fails) one fdatasync each."""
    dirty = list(slots)
    writers = [s.grouped for s in dirty if s.grouped is not None and s.grouped is s.writer]
    if not writers:
        return
    started = time.monotonic()
    synced = False
    try:
        devices = {os.fstat(writer.fileno()).st_dev for writer in writers}
        synced = len(devices) == 1 and syncfs(writers[0].fileno())
    except OSError:
        logger.exception("group commit: cannot stat a recording file; fsync each")
    for slot in dirty:
        slot.commit(synced)
    took = time.monotonic() - started
    if took > SLOW_COMMIT_SECONDS:  # the file system is slow: the 2 s crash bound is at risk
        logger.warning("group commit of %d recordings took %.2f s", len(writers), took)
