"""PCM sources for bridges: tones (with an optional on/off cadence) and 8 kHz WAV files.

Both are :class:`callwarden.media.bridge.FrameSource`: the mixer pulls one 160-sample frame per
tick. They are useful for hold music, ringback and tests.
"""

from __future__ import annotations

import math
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from callwarden.media.g711 import PcmArray

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160


class PlayerError(ValueError):
    """A player was given a file or parameters it cannot play."""


class ToneSource:
    """A sum of sine tones at ``level_dbfs`` each, continuous in phase across frames.

    ``cadence`` = (on seconds, off seconds) makes it a ringback- or busy-like pattern.
    """

    def __init__(
        self,
        frequencies: Sequence[float],
        *,
        level_dbfs: float = -12.0,
        cadence: tuple[float, float] | None = None,
    ) -> None:
        if not frequencies or any(not 0 < f < SAMPLE_RATE / 2 for f in frequencies):
            raise PlayerError(f"tone frequencies must be within 0-4000 Hz: {list(frequencies)}")
        if level_dbfs > 0:
            raise PlayerError(f"tone level must be at most 0 dBFS: {level_dbfs}")
        if cadence is not None and (cadence[0] <= 0 or cadence[1] < 0):
            raise PlayerError(f"invalid cadence: {cadence}")
        self._steps = np.array([2 * math.pi * f / SAMPLE_RATE for f in frequencies])
        self._phases = np.zeros(len(frequencies))
        self._amplitude = 32767 * 10 ** (level_dbfs / 20)
        self._ramp = np.arange(FRAME_SAMPLES)
        self._cadence = cadence
        self._samples = 0

    def read_frame(self) -> PcmArray | None:
        position = self._samples
        self._samples += FRAME_SAMPLES
        angles = self._phases[:, None] + self._steps[:, None] * self._ramp
        self._phases = (self._phases + self._steps * FRAME_SAMPLES) % (2 * math.pi)
        if self._cadence is not None:
            on, off = self._cadence
            period = round((on + off) * SAMPLE_RATE)
            if position % period >= round(on * SAMPLE_RATE):
                return None
        samples = np.sin(angles).sum(axis=0) * self._amplitude
        frame: PcmArray = np.clip(samples, -32768, 32767).astype(np.int16)
        return frame


class PcmSource:
    """Plays int16 samples once or in a loop, one frame per tick."""

    def __init__(self, samples: PcmArray, *, loop: bool = False) -> None:
        if samples.ndim != 1 or samples.size == 0:
            raise PlayerError("samples must be a non-empty one-dimensional array")
        padded = -samples.size % FRAME_SAMPLES
        self._samples = np.concatenate([samples.astype(np.int16), np.zeros(padded, np.int16)])
        self._loop = loop
        self._position = 0

    @property
    def finished(self) -> bool:
        return not self._loop and self._position >= self._samples.size

    def read_frame(self) -> PcmArray | None:
        if self._position >= self._samples.size:
            if not self._loop:
                return None
            self._position = 0
        frame = self._samples[self._position : self._position + FRAME_SAMPLES]
        self._position += FRAME_SAMPLES
        return frame


def load_wav(path: Path) -> PcmArray:
    """Read a mono 16-bit 8 kHz WAV file (blocking: call from a worker thread)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise PlayerError(f"{path}: must be mono 16-bit PCM")
            if wav.getframerate() != SAMPLE_RATE:
                raise PlayerError(f"{path}: must be 8000 Hz, not {wav.getframerate()}")
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as error:
        raise PlayerError(f"{path}: not a readable WAV file: {error}") from None
    samples = np.frombuffer(data, dtype="<i2").astype(np.int16)
    if samples.size == 0:
        raise PlayerError(f"{path}: no audio")
    return samples
