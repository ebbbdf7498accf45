"""Writer and reader: round trip, gaps, pauses, flush interval, incomplete files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from callwarden.recording.errors import RecorderStateError
from callwarden.recording.reader import SealedReader
from callwarden.recording.writer import PauseInterval, SealedWriter

from .sealing import FRAME, KEY, RATE, FakeClock, record_call, tone, ulaw_roundtrip


def test_round_trip_keeps_each_track_separate(tmp_path: Path) -> None:
    written = record_call(tmp_path / "r.cwrec", seconds=5)
    reader = SealedReader.open(written.path, "rec-1", KEY)
    assert reader.complete
    assert reader.tracks == ("customer", "operator")
    assert reader.duration_samples == 5 * RATE
    assert np.array_equal(reader.pcm("customer"), ulaw_roundtrip(written.customer))
    assert np.array_equal(reader.pcm("operator"), ulaw_roundtrip(written.operator))
    stereo = reader.stereo(RATE, 2 * RATE)
    assert stereo.shape == (RATE, 2)
    assert np.array_equal(stereo[:, 0], ulaw_roundtrip(written.customer)[RATE : 2 * RATE])
    assert written.summary.chunk_count == len(reader.chunk_digests)
    assert written.summary.chunk_digests == reader.chunk_digests
    assert written.summary.file_sha256 == reader.file_sha256
    assert written.summary.track_durations == {"customer": 5 * RATE, "operator": 5 * RATE}


def test_no_plaintext_audio_in_the_file(tmp_path: Path) -> None:
    written = record_call(tmp_path / "r.cwrec", seconds=2)
    data = written.path.read_bytes()
    from callwarden.recording.container import encode_pcm

    assert encode_pcm(written.customer[:FRAME])[:32] not in data
    assert written.customer[:FRAME].tobytes()[:32] not in data


def test_gap_reads_as_silence_and_pause_holds_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "p.cwrec"
    writer = SealedWriter.create(
        path, "rec-p", KEY, ["customer"], start_timestamp=1000, clock=clock
    )
    audio = tone(440, 3 * RATE)
    for start in range(0, 3 * RATE, FRAME):
        if start == RATE:
            writer.pause(1000 + start)
        if start == 2 * RATE:
            writer.resume(1000 + start)
        writer.write("customer", 1000 + start, audio[start : start + FRAME])
    summary = writer.close()
    assert summary.pauses == (PauseInterval(RATE, 2 * RATE),)
    assert summary.frames_dropped_paused == RATE // FRAME
    reader = SealedReader.open(path, "rec-p", KEY)
    assert reader.pauses == (PauseInterval(RATE, 2 * RATE),)
    pcm = reader.pcm("customer")
    assert len(pcm) == 3 * RATE
    assert not pcm[RATE : 2 * RATE].any()
    assert pcm[:RATE].any() and pcm[2 * RATE :].any()


def test_flush_every_interval_of_wall_time(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "f.cwrec"
    writer = SealedWriter.create(path, "rec-f", KEY, ["customer"], clock=clock)
    writer.write("customer", 0, tone(440, FRAME))
    size = path.stat().st_size
    clock.now = 1.9
    writer.write("customer", FRAME, tone(440, FRAME))
    assert path.stat().st_size == size  # still pending
    clock.now = 2.0
    writer.write("customer", 2 * FRAME, tone(440, FRAME))
    assert path.stat().st_size > size  # sealed and written
    reader = SealedReader.open(path, "rec-f", KEY)
    assert not reader.complete
    assert reader.track_duration("customer") == 3 * FRAME
    writer.abort()


def test_flush_after_two_seconds_of_audio_even_if_the_clock_stands(tmp_path: Path) -> None:
    path = tmp_path / "a.cwrec"
    writer = SealedWriter.create(path, "rec-a", KEY, ["customer"], clock=FakeClock())
    for start in range(0, 2 * RATE, FRAME):
        writer.write("customer", start, tone(440, FRAME, start))
    reader = SealedReader.open(path, "rec-a", KEY)
    assert reader.track_duration("customer") == 2 * RATE
    assert not reader.complete
    writer.abort()


def test_incomplete_file_reads_up_to_its_last_chunk(tmp_path: Path) -> None:
    path = tmp_path / "i.cwrec"
    clock = FakeClock()
    writer = SealedWriter.create(path, "rec-i", KEY, ["customer", "operator"], clock=clock)
    for start in range(0, 3 * RATE, FRAME):
        writer.write("customer", start, tone(440, FRAME, start))
        clock.now += 0.02
    writer.abort()  # like a crash: no trailer, last 1 s pending lost
    reader = SealedReader.open(path, "rec-i", KEY)
    assert not reader.complete
    assert reader.track_duration("customer") == 2 * RATE
    assert np.array_equal(reader.pcm("customer", 0, 2 * RATE), ulaw_roundtrip(tone(440, 2 * RATE)))


def test_closed_writer_refuses_more(tmp_path: Path) -> None:
    path = tmp_path / "c.cwrec"
    writer = SealedWriter.create(path, "rec-c", KEY, ["customer"], clock=FakeClock())
    writer.close()
    with pytest.raises(RecorderStateError):
        writer.write("customer", 0, tone(440, FRAME))


def test_bad_input_is_refused_and_state_kept(tmp_path: Path) -> None:
    path = tmp_path / "b.cwrec"
    writer = SealedWriter.create(path, "rec-b", KEY, ["customer"], clock=FakeClock())
    writer.write("customer", FRAME, tone(440, FRAME))
    with pytest.raises(ValueError, match="unknown track"):
        writer.write("nobody", 2 * FRAME, tone(440, FRAME))
    with pytest.raises(ValueError, match="goes back"):
        writer.write("customer", 0, tone(440, FRAME))
    with pytest.raises(ValueError, match="whole 16-bit"):
        writer.write("customer", 2 * FRAME, b"\x00\x01\x02")
    writer.write("customer", 2 * FRAME, tone(440, FRAME))
    summary = writer.close()
    assert summary.track_durations == {"customer": 3 * FRAME}
    with pytest.raises(FileExistsError):
        SealedWriter.create(path, "rec-b", KEY, ["customer"], clock=FakeClock())
