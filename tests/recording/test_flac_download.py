"""FLAC downloads: decoded again with libsndfile (soundfile), the customer's 440 Hz and the
operator's 880 Hz are where the rendition puts them (checked by FFT), every sample equals the
WAV rendition's (lossless), and the watermark (who, when, why) is in the Vorbis comments."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]

from callwarden.recording.playback import (
    DownloadFormat,
    PlaybackMode,
    RecordingAudio,
    Rendition,
    flac_download,
)
from callwarden.recording.reader import SealedReader

from .sealed import CUSTOMER_HZ, OPERATOR_HZ, SAMPLE_RATE
from .test_playback import SECONDS, level, reader

__all__ = ["reader"]  # the fixture, used by name

WATERMARK = {
    "INAM": "callwarden recording rec-1",
    "ICRD": "2026-11-29",
    "ICMT": "downloaded by auditor (user 4) at 2026-11-29T04:00:00+00:00; reason: dispute #9",
}


@dataclass(frozen=True)
class Decoded:
    frames: np.ndarray  # (n, channels) int16
    samplerate: int
    channels: int
    format: str
    tags: tuple[str, str, str]  # TITLE, DATE, COMMENT


def _decode(data: bytes) -> Decoded:
    with soundfile.SoundFile(io.BytesIO(data)) as decoded:
        return Decoded(
            decoded.read(dtype="int16", always_2d=True),
            decoded.samplerate,
            decoded.channels,
            decoded.format,
            (decoded.title, decoded.date, decoded.comment),
        )


def test_stereo_flac_has_the_customer_left_and_the_operator_right(reader: SealedReader) -> None:
    data = flac_download(RecordingAudio(reader, Rendition(PlaybackMode.STEREO)), WATERMARK)
    assert data[:4] == b"fLaC"
    decoded = _decode(data)
    frames = decoded.frames
    assert (decoded.samplerate, decoded.channels, decoded.format) == (SAMPLE_RATE, 2, "FLAC")
    assert frames.shape == (SECONDS * SAMPLE_RATE, 2)
    left, right = frames[:SAMPLE_RATE, 0], frames[:SAMPLE_RATE, 1]
    assert level(left, CUSTOMER_HZ) > 1000 * level(left, OPERATOR_HZ)
    assert level(right, OPERATOR_HZ) > 1000 * level(right, CUSTOMER_HZ)
    assert len(data) < SECONDS * SAMPLE_RATE * 2 * 2  # compressed: smaller than the PCM


@pytest.mark.parametrize("mode", [PlaybackMode.MIX, PlaybackMode.STEREO])
def test_flac_is_the_wav_rendition_losslessly(reader: SealedReader, mode: PlaybackMode) -> None:
    audio = RecordingAudio(reader, Rendition(mode))
    with wave.open(io.BytesIO(audio.read())) as parsed:
        pcm = np.frombuffer(parsed.readframes(parsed.getnframes()), dtype="<i2")
    decoded = _decode(flac_download(audio, WATERMARK))
    assert np.array_equal(decoded.frames.reshape(-1), pcm)


def test_the_watermark_is_in_the_vorbis_comments(reader: SealedReader) -> None:
    data = flac_download(
        RecordingAudio(reader, Rendition(PlaybackMode.TRACK, "operator")), WATERMARK
    )
    decoded = _decode(data)
    frames = decoded.frames
    assert decoded.tags == (
        WATERMARK["INAM"],
        WATERMARK["ICRD"],
        WATERMARK["ICMT"],
    )
    assert level(frames[:SAMPLE_RATE, 0], OPERATOR_HZ) > 1000 * level(
        frames[:SAMPLE_RATE, 0], CUSTOMER_HZ
    )
    assert DownloadFormat.FLAC.media_type == "audio/flac"
    with pytest.raises(ValueError, match="no FLAC tag"):
        flac_download(RecordingAudio(reader, Rendition(PlaybackMode.MIX)), {"IART": "x"})
