"""Writer details: pauses at the edges, threads, reading ranges, a second key service."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from callwarden.recording.container import encode_pcm
from callwarden.recording.keyring import (
    FileKeyRing,
    WrappedKey,
    new_data_key,
    rewrap,
    unwrap_with,
    wrap_with,
)
from callwarden.recording.reader import SealedReader
from callwarden.recording.writer import PauseInterval, SealedWriter

from .sealing import FRAME, KEY, RATE, FakeClock, tone, ulaw_roundtrip


def _writer(path: Path, tracks: list[str] | None = None) -> SealedWriter:
    return SealedWriter.create(path, "rec-w", KEY, tracks or ["customer"], clock=FakeClock())


def test_pause_discards_pending_audio_from_its_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "p.cwrec"
    writer = _writer(path)
    writer.write("customer", 0, tone(440, 10 * FRAME))  # pending, not yet sealed
    writer.pause(4 * FRAME)
    writer.pause(6 * FRAME)  # already paused: nothing changes
    assert writer.paused
    writer.resume(8 * FRAME)
    writer.resume(9 * FRAME)  # not paused: nothing changes
    writer.write("customer", 10 * FRAME, tone(440, FRAME))
    summary = writer.close()
    assert summary.pauses == (PauseInterval(4 * FRAME, 8 * FRAME),)
    pcm = SealedReader.open(path, "rec-w", KEY).pcm("customer")
    assert pcm[: 4 * FRAME].any()
    assert not pcm[4 * FRAME : 10 * FRAME].any()
    assert pcm[10 * FRAME :].any()


def test_frame_straddling_the_resume_keeps_only_its_tail(tmp_path: Path) -> None:
    path = tmp_path / "s.cwrec"
    writer = _writer(path)
    writer.pause(0)
    writer.resume(100)
    writer.write("customer", 0, tone(440, FRAME))  # samples 0..159, resume at 100
    writer.close()
    reader = SealedReader.open(path, "rec-w", KEY)
    pcm = reader.pcm("customer")
    assert not pcm[:100].any()
    assert np.array_equal(pcm[100:FRAME], ulaw_roundtrip(tone(440, FRAME))[100:])


def test_close_while_paused_ends_the_pause_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "c.cwrec"
    writer = _writer(path)
    writer.write("customer", 0, tone(440, RATE))
    writer.pause(RATE)
    summary = writer.close(3 * RATE)
    assert summary.pauses == (PauseInterval(RATE, 3 * RATE),)
    assert summary.duration_samples == 3 * RATE
    reader = SealedReader.open(path, "rec-w", KEY)
    assert reader.pauses == (PauseInterval(RATE, 3 * RATE),)
    assert reader.duration_samples == 3 * RATE


def test_crash_while_paused_reads_an_open_pause(tmp_path: Path) -> None:
    path = tmp_path / "o.cwrec"
    writer = _writer(path)
    writer.write("customer", 0, tone(440, RATE))
    writer.pause(RATE)
    writer.abort()
    reader = SealedReader.open(path, "rec-w", KEY)
    assert reader.pauses == (PauseInterval(RATE, None),)
    assert not reader.complete
    assert reader.duration_samples == RATE


def test_ranges_stereo_and_mix(tmp_path: Path) -> None:
    path = tmp_path / "m.cwrec"
    writer = _writer(path, ["customer", "operator", "supervisor"])
    loud = np.full(FRAME, 30000, dtype=np.int16)
    writer.write("customer", 0, loud)
    writer.write("operator", 0, loud)
    writer.write("operator", 3 * FRAME, loud)  # a gap: silence between
    writer.close()
    reader = SealedReader.open(path, "rec-w", KEY)
    assert reader.track_duration("supervisor") == 0
    assert reader.duration_samples == 4 * FRAME
    assert not reader.pcm("operator", FRAME, 3 * FRAME).any()
    assert reader.pcm("operator", 3 * FRAME + 10, 3 * FRAME + 20).min() > 29000
    mixed = reader.mix(0, FRAME)
    assert mixed.dtype == np.int16 and mixed.max() == 32767  # saturated, not wrapped
    assert reader.stereo(0, 2 * FRAME).shape == (2 * FRAME, 2)
    assert [len(b) for b in reader.iter_pcm("customer", 300)] == [300, 300, 40]
    with pytest.raises(ValueError, match="unknown track"):
        reader.pcm("nobody")
    with pytest.raises(ValueError, match="bad sample range"):
        reader.pcm("customer", 10, 5)


def test_producer_and_flusher_threads_share_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "t.cwrec"
    writer = _writer(path, ["customer", "operator"])
    audio = tone(440, 20 * RATE)
    done = threading.Event()

    def produce() -> None:
        for start in range(0, len(audio), FRAME):
            writer.write("customer", start, audio[start : start + FRAME])
            writer.write("operator", start, audio[start : start + FRAME])
        done.set()

    def flush() -> None:
        while not done.is_set():
            writer.flush()

    threads = [threading.Thread(target=produce), threading.Thread(target=flush)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    writer.close()
    reader = SealedReader.open(path, "rec-w", KEY)
    assert reader.complete
    expected = ulaw_roundtrip(audio)
    assert np.array_equal(reader.pcm("customer"), expected)
    assert np.array_equal(reader.pcm("operator"), expected)


class SingleKeyService:
    """A second KeyEncryptionService (as an external KMS would be): one KEK in memory."""

    def __init__(self) -> None:
        self._kek = new_data_key()

    def current_key_id(self) -> str:
        return "kms-1"

    def wrap(self, data_key: bytes, recording_id: str) -> WrappedKey:
        return wrap_with(self._kek, "kms-1", data_key, recording_id)

    def unwrap(self, wrapped: WrappedKey, recording_id: str) -> bytes:
        return unwrap_with(self._kek, wrapped, recording_id)


def test_keys_move_from_the_file_ring_to_another_service(tmp_path: Path) -> None:
    ring, kms = FileKeyRing(tmp_path / "keys"), SingleKeyService()
    data_key = new_data_key()
    wrapped = ring.wrap(data_key, "rec-1")
    moved = rewrap(kms, wrapped, "rec-1", source=ring)
    assert moved.key_id == "kms-1"
    assert kms.unwrap(moved, "rec-1") == data_key


def test_pause_never_covers_audio_already_sealed(tmp_path: Path) -> None:
    path = tmp_path / "late.cwrec"
    writer = _writer(path)
    writer.write("customer", 0, tone(440, 2 * RATE))  # 2 s: sealed at once
    writer.pause(RATE)  # too late for the second half: the pause starts after it
    writer.resume(3 * RATE)
    summary = writer.close()
    assert summary.pauses == (PauseInterval(2 * RATE, 3 * RATE),)
    reader = SealedReader.open(path, "rec-w", KEY)
    for pause in reader.pauses:
        assert pause.end is not None
        assert not reader.pcm("customer", pause.start, pause.end).any()


def test_frames_after_a_trimmed_pause_may_continue_from_the_pause(tmp_path: Path) -> None:
    path = tmp_path / "trim.cwrec"
    writer = _writer(path)
    writer.write("customer", 0, tone(440, 10 * FRAME))
    writer.pause(5 * FRAME)
    writer.resume(5 * FRAME)
    writer.write("customer", 5 * FRAME, tone(880, FRAME))  # not "going back": it was cut
    writer.close()
    pcm = SealedReader.open(path, "rec-w", KEY).pcm("customer")
    assert np.array_equal(pcm[5 * FRAME : 6 * FRAME], ulaw_roundtrip(tone(880, FRAME)))


def test_write_codes_seals_mulaw_runs_as_given_with_one_flush(tmp_path: Path) -> None:
    path = tmp_path / "codes.cwrec"
    writer = SealedWriter.create(
        path, "rec-w", KEY, ["customer", "operator"], flush_interval_s=0.04, clock=FakeClock()
    )
    customer = ulaw_roundtrip(tone(440, 4 * FRAME))
    operator = ulaw_roundtrip(tone(880, 4 * FRAME))
    codes = {
        name: encode_pcm(pcm) for name, pcm in (("customer", customer), ("operator", operator))
    }
    writer.write_codes([("customer", 0, codes["customer"][: 2 * FRAME])])  # 40 ms: sealed
    writer.write_codes(
        [
            ("customer", 2 * FRAME, codes["customer"][2 * FRAME :]),
            ("operator", 0, codes["operator"]),
        ]
    )
    writer.pause(4 * FRAME)
    writer.write_codes([("customer", 4 * FRAME, codes["customer"][:FRAME])])  # paused: dropped
    summary = writer.close(5 * FRAME)
    reader = SealedReader.open(path, "rec-w", KEY)
    assert reader.complete and summary.frames_dropped_paused == 1
    np.testing.assert_array_equal(reader.pcm("customer")[: 4 * FRAME], customer)
    np.testing.assert_array_equal(reader.pcm("operator")[: 4 * FRAME], operator)
    assert not reader.pcm("customer")[4 * FRAME :].any()
