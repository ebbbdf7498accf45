from __future__ import annotations

import io
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from callwarden.domain.errors import NotFound, ValidationFailed
from callwarden.domain.ids import RecordingId
from callwarden.recording.keyring import new_data_key
from callwarden.recording.playback import (
    PlaybackGrants,
    PlaybackMode,
    RangeNotSatisfiable,
    RecordingAudio,
    Rendition,
    parse_range,
    waveform,
)
from callwarden.recording.reader import SealedReader
from callwarden.recording.writer import SealedWriter

from .sealed import CUSTOMER_HZ, FRAME, OPERATOR_HZ, SAMPLE_RATE, tone

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECONDS = 3


@pytest.fixture
def reader(tmp_path: Path) -> SealedReader:
    key = new_data_key()
    path = tmp_path / "r.cwr"
    writer = SealedWriter.create(path, "rec-1", key, ["customer", "operator"])
    total = SECONDS * SAMPLE_RATE
    for start in range(0, total, FRAME):
        writer.write("customer", start, tone(CUSTOMER_HZ, start, FRAME))
        writer.write("operator", start, tone(OPERATOR_HZ, start, FRAME))
    writer.close(total)
    return SealedReader.open(path, "rec-1", key)


def level(samples: np.ndarray, frequency: float) -> float:
    """The magnitude of `frequency` in `samples` (a 1 s window is enough at 8 kHz)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    bins = np.fft.rfftfreq(samples.size, 1 / SAMPLE_RATE)
    return float(spectrum[np.argmin(np.abs(bins - frequency))])


def test_stereo_wav_has_the_customer_left_and_the_operator_right(reader: SealedReader) -> None:
    audio = RecordingAudio(reader, Rendition(PlaybackMode.STEREO))
    data = audio.read()
    assert len(data) == audio.size
    with wave.open(io.BytesIO(data)) as parsed:
        assert (parsed.getnchannels(), parsed.getsampwidth(), parsed.getframerate()) == (2, 2, 8000)
        assert parsed.getnframes() == SECONDS * SAMPLE_RATE
        frames = np.frombuffer(parsed.readframes(parsed.getnframes()), dtype="<i2").reshape(-1, 2)
    left, right = frames[:SAMPLE_RATE, 0], frames[:SAMPLE_RATE, 1]
    assert level(left, CUSTOMER_HZ) > 1000 * level(left, OPERATOR_HZ)
    assert level(right, OPERATOR_HZ) > 1000 * level(right, CUSTOMER_HZ)


@pytest.mark.parametrize(
    ("rendition", "present", "absent"),
    [
        (Rendition(PlaybackMode.TRACK, "customer"), CUSTOMER_HZ, OPERATOR_HZ),
        (Rendition(PlaybackMode.TRACK, "operator"), OPERATOR_HZ, CUSTOMER_HZ),
    ],
)
def test_one_track(
    reader: SealedReader, rendition: Rendition, present: float, absent: float
) -> None:
    with wave.open(io.BytesIO(RecordingAudio(reader, rendition).read())) as parsed:
        assert parsed.getnchannels() == 1
        samples = np.frombuffer(parsed.readframes(SAMPLE_RATE), dtype="<i2")
    assert level(samples, present) > 1000 * level(samples, absent)


def test_mix_holds_both(reader: SealedReader) -> None:
    with wave.open(io.BytesIO(RecordingAudio(reader, Rendition(PlaybackMode.MIX)).read())) as w:
        samples = np.frombuffer(w.readframes(SAMPLE_RATE), dtype="<i2")
    assert level(samples, CUSTOMER_HZ) > 0.5 * level(samples, OPERATOR_HZ) > 0


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-43", 0, 43),
        ("bytes=40-50", 40, 50),  # across the end of the header
        ("bytes=1001-", 1001, None),
        ("bytes=-7", None, None),
        ("bytes=12345-23456", 12345, 23456),  # odd offsets inside frames
        ("bytes=95000-999999999", 95000, None),  # clipped to the end
    ],
)
def test_ranges_return_exactly_the_bytes_of_the_whole_file(
    reader: SealedReader, header: str, first: int | None, last: int | None
) -> None:
    audio = RecordingAudio(reader, Rendition(PlaybackMode.STEREO))
    whole = audio.read()
    byte_range = parse_range(header, audio.size)
    assert byte_range is not None
    expected_first = audio.size - 7 if first is None else first
    expected_last = audio.size - 1 if last is None else last
    assert (byte_range.first, byte_range.last) == (expected_first, expected_last)
    assert audio.read(byte_range) == whole[expected_first : expected_last + 1]
    assert byte_range.content_range == f"bytes {expected_first}-{expected_last}/{audio.size}"


@pytest.mark.parametrize(
    "header",
    ["bytes=500-400", "bytes=999999999-", "items=0-1", "bytes=0-1,4-5", "bytes=x-", "bytes=-0"],
)
def test_unsatisfiable_ranges_are_refused(reader: SealedReader, header: str) -> None:
    audio = RecordingAudio(reader, Rendition(PlaybackMode.MIX))
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, audio.size)


def test_download_watermark_is_a_list_info_chunk(reader: SealedReader) -> None:
    info = {"ICMT": "downloaded by auditor (user 4) at 2026-05-01T12:00:00+00:00: dispute #9"}
    data = RecordingAudio(reader, Rendition(PlaybackMode.MIX), info).read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    position = data.index(b"LIST")
    assert data[position + 8 : position + 12] == b"INFO"
    assert info["ICMT"].encode() + b"\x00" in data
    with wave.open(io.BytesIO(data)) as parsed:  # still a valid WAV for any player
        assert parsed.getnframes() == SECONDS * SAMPLE_RATE


def test_unknown_track_or_bad_rendition_is_refused(reader: SealedReader) -> None:
    with pytest.raises(ValidationFailed):
        RecordingAudio(reader, Rendition(PlaybackMode.TRACK, "supervisor"))
    with pytest.raises(ValidationFailed):
        Rendition(PlaybackMode.MIX, "customer")


def test_waveform_min_max_per_bucket(reader: SealedReader) -> None:
    shape = waveform(reader, 30)
    assert shape.bucket_frames == SECONDS * SAMPLE_RATE // 30
    assert len(shape.minimum) == len(shape.maximum) == 30
    mix = reader.mix()
    for index in (0, 7, 29):
        part = mix[index * shape.bucket_frames : (index + 1) * shape.bucket_frames]
        assert (shape.minimum[index], shape.maximum[index]) == (int(part.min()), int(part.max()))
    with pytest.raises(ValidationFailed):
        waveform(reader, 0)


def test_grants_are_bound_to_the_session_and_expire() -> None:
    grants = PlaybackGrants(b"s" * 32, lifetime=timedelta(minutes=10))
    rendition = Rendition(PlaybackMode.TRACK, "customer")
    grant = grants.issue(RecordingId("abc"), 7, rendition, NOW)
    assert grants.check(grant.token, 7, NOW + timedelta(minutes=9)).rendition == rendition
    for token, session, when in [
        (grant.token, 8, NOW),  # another session
        (grant.token, 7, NOW + timedelta(minutes=10)),  # expired
        (grant.token[:-2] + "AA", 7, NOW),  # tampered signature
        ("garbage", 7, NOW),
        (PlaybackGrants(b"t" * 32).issue(RecordingId("abc"), 7, rendition, NOW).token, 7, NOW),
    ]:
        with pytest.raises(NotFound) as refused:
            grants.check(token, session, when)
        assert refused.value.error_id == "playback_grant_not_found"
