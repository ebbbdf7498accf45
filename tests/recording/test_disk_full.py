"""A failed write (disk full) never damages what was sealed before; crash recovery."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pytest

from callwarden.recording.errors import RecorderStateError, RecordingWriteFailed
from callwarden.recording.reader import SealedReader, recover
from callwarden.recording.writer import SealedWriter

from .sealing import FRAME, KEY, RATE, FakeClock, tone, ulaw_roundtrip


class FullDisk(io.FileIO):
    """A file that accepts ``budget`` bytes, writes part of the next write, then ENOSPC."""

    def __init__(self, path: Path, budget: int) -> None:
        super().__init__(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self.budget = budget

    def write(self, data: bytes | memoryview) -> int:  # type: ignore[override]
        if len(data) > self.budget:
            if self.budget:
                super().write(bytes(data[: self.budget]))  # a torn, partial record
                self.budget = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.budget -= len(data)
        return super().write(data)


def _opener(budget: int) -> Callable[[Path], BinaryIO]:
    def open_file(path: Path) -> BinaryIO:
        return cast(BinaryIO, FullDisk(path, budget))

    return open_file


def test_disk_full_keeps_earlier_chunks(tmp_path: Path) -> None:
    path = tmp_path / "full.cwrec"
    writer = SealedWriter.create(
        path, "rec-d", KEY, ["customer"], clock=FakeClock(), opener=_opener(20_000)
    )
    audio = tone(440, 5 * RATE)
    with pytest.raises(RecordingWriteFailed, match="No space left on device") as failure:
        for start in range(0, 5 * RATE, FRAME):
            writer.write("customer", start, audio[start : start + FRAME])
    assert failure.value.error_id == "recording_write_failed"
    assert writer.failed
    with pytest.raises(RecorderStateError):
        writer.write("customer", 5 * RATE, audio[:FRAME])
    reader = SealedReader.open(path, "rec-d", KEY)  # no torn tail: cut back on failure
    assert not reader.complete
    assert reader.track_duration("customer") == 2 * RATE
    assert np.array_equal(reader.pcm("customer"), ulaw_roundtrip(audio[: 2 * RATE]))


def test_disk_full_on_the_header_raises(tmp_path: Path) -> None:
    with pytest.raises(RecordingWriteFailed):
        SealedWriter.create(
            tmp_path / "h.cwrec", "rec-h", KEY, ["customer"], clock=FakeClock(), opener=_opener(10)
        )


def test_recover_cuts_a_torn_tail_left_by_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "crash.cwrec"
    clock = FakeClock()
    writer = SealedWriter.create(path, "rec-k", KEY, ["customer"], clock=clock)
    audio = tone(440, 3 * RATE)
    for start in range(0, 3 * RATE, FRAME):
        writer.write("customer", start, audio[start : start + FRAME])
        clock.now += 0.02
    writer.abort()
    sealed_size = path.stat().st_size
    with path.open("ab") as file:  # a crash in the middle of appending a record
        file.write(b"\x00\x00\x10\x00partial")
    with pytest.raises(Exception, match="truncated"):
        SealedReader.open(path, "rec-k", KEY)
    reader = recover(path, "rec-k", KEY)
    assert path.stat().st_size == sealed_size
    assert not reader.complete
    assert reader.track_duration("customer") == 2 * RATE
    assert np.array_equal(reader.pcm("customer"), ulaw_roundtrip(audio[: 2 * RATE]))


def test_disk_full_when_writing_the_trailer_leaves_an_incomplete_recording(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trailer.cwrec"
    header_and_chunk = 200 + 4 + 30 + 16 + 2 * RATE  # header, one 2 s chunk: no trailer room
    writer = SealedWriter.create(
        path, "rec-t", KEY, ["customer"], clock=FakeClock(), opener=_opener(header_and_chunk)
    )
    audio = tone(440, 2 * RATE)
    for start in range(0, 2 * RATE, FRAME):
        writer.write("customer", start, audio[start : start + FRAME])
    with pytest.raises(RecordingWriteFailed):
        writer.close()
    reader = SealedReader.open(path, "rec-t", KEY)
    assert not reader.complete
    assert np.array_equal(reader.pcm("customer"), ulaw_roundtrip(audio))
