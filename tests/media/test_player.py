"""Tone and WAV players: frames, cadence, looping, and typed errors for bad input."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from callwarden.media.player import PcmSource, PlayerError, ToneSource, load_wav

from .audio import tone_level_db


def test_tone_is_continuous_and_at_its_level() -> None:
    source = ToneSource([440.0], level_dbfs=-6.0)
    frames = [source.read_frame() for _ in range(50)]
    pcm = np.concatenate([f for f in frames if f is not None])
    assert pcm.size == 8000
    assert abs(tone_level_db(pcm, 440.0) - -6.0) < 0.5
    # Phase-continuous across frame boundaries: no click between frames.
    assert (
        np.abs(np.diff(pcm.astype(np.int32))).max()
        < 32767 * 10 ** (-6 / 20) * 2 * np.pi * 440 / 8000 * 1.05
    )


def test_cadence_switches_tone_on_and_off() -> None:
    source = ToneSource([425.0], cadence=(0.2, 0.4))
    pattern = [source.read_frame() is not None for _ in range(60)]
    assert pattern == ([True] * 10 + [False] * 20) * 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frequencies": []}, "tone frequencies must be within 0-4000 Hz: []"),
        ({"frequencies": [5000.0]}, "tone frequencies must be within 0-4000 Hz: [5000.0]"),
        ({"frequencies": [440.0], "level_dbfs": 3.0}, "tone level must be at most 0 dBFS: 3.0"),
        ({"frequencies": [440.0], "cadence": (0.0, 1.0)}, "invalid cadence: (0.0, 1.0)"),
    ],
)
def test_tone_rejects_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PlayerError) as caught:
        ToneSource(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())


def test_wav_plays_once_padded_or_in_a_loop(tmp_path: Path) -> None:
    samples = np.arange(200, dtype=np.int16)
    write_wav(tmp_path / "a.wav", samples)
    loaded = load_wav(tmp_path / "a.wav")
    assert np.array_equal(loaded, samples)
    once = PcmSource(loaded)
    first, second = once.read_frame(), once.read_frame()
    assert first is not None and second is not None
    assert np.array_equal(first, samples[:160])
    assert np.array_equal(second, np.concatenate([samples[160:], np.zeros(120, np.int16)]))
    assert once.read_frame() is None and once.finished
    looped = PcmSource(loaded, loop=True)
    frames = [looped.read_frame() for _ in range(3)]
    assert frames[2] is not None and np.array_equal(frames[2], samples[:160])


@pytest.mark.parametrize(
    ("rate", "channels", "message"),
    [(16000, 1, "must be 8000 Hz, not 16000"), (8000, 2, "must be mono 16-bit PCM")],
)
def test_wav_format_errors(tmp_path: Path, rate: int, channels: int, message: str) -> None:
    write_wav(tmp_path / "b.wav", np.zeros(320, np.int16), rate=rate, channels=channels)
    with pytest.raises(PlayerError, match=message):
        load_wav(tmp_path / "b.wav")


def test_not_a_wav_file(tmp_path: Path) -> None:
    (tmp_path / "c.wav").write_bytes(b"RIFFnonsense")
    with pytest.raises(PlayerError, match="not a readable WAV file"):
        load_wav(tmp_path / "c.wav")
