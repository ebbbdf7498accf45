"""The audio a waiting caller hears, synthesised once at start-up as small WAV files.

No speech engine and no download: the announcements are tone patterns a caller learns at
once, written as mono 16-bit 8 kHz WAV files (what the media engine's WAV player reads) into
`<data_dir>/prompts/`:

- `position-N.wav` (N = 1..9): N short high beeps (1,300 Hz, 150 ms on, 250 ms off): "you are
  caller number N" (9 stands for 9 or more);
- `wait-M.wav` (M = 1..9): M longer beeps (880 Hz, 400 ms on, 300 ms off): "about M minutes"
  (rounded up; 9 stands for 9 or more);
- `melody.wav`: hold music, a soft 12-second arpeggio (C major, then A minor) that loops.

The files are rewritten at each start, so a changed rule here always reaches the disk.
"""

from __future__ import annotations

import logging
import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_COUNT",
    "POSITION_BEEP_HZ",
    "SAMPLE_RATE",
    "WAIT_BEEP_HZ",
    "Prompts",
    "wait_minutes",
]

SAMPLE_RATE = 8000
MAX_COUNT = 9
POSITION_BEEP_HZ = 1300.0
POSITION_BEEP = (0.15, 0.25)
WAIT_BEEP_HZ = 880.0
WAIT_BEEP = (0.4, 0.3)
LEVEL_DBFS = -16.0
_MELODY_HZ = (261.63, 329.63, 392.0, 523.25, 220.0, 261.63, 329.63, 440.0)
_MELODY_NOTE_SECONDS = 0.75


def wait_minutes(seconds: float) -> int:
    """Expected wait as announced: whole minutes rounded up, 0 for no wait, at most 9."""
    if seconds <= 0:
        return 0
    return min(MAX_COUNT, math.ceil(seconds / 60))


def _tone(frequency: float, seconds: float) -> npt.NDArray[np.float64]:
    count = round(seconds * SAMPLE_RATE)
    t = np.arange(count) / SAMPLE_RATE
    ramp = min(count // 2, SAMPLE_RATE // 100)  # 10 ms fades: no clicks
    envelope = np.ones(count)
    envelope[:ramp] = np.linspace(0.0, 1.0, ramp)
    envelope[count - ramp :] = np.linspace(1.0, 0.0, ramp)
    result: npt.NDArray[np.float64] = np.sin(2 * np.pi * frequency * t) * envelope
    return result


def _beeps(frequency: float, count: int, on_off: tuple[float, float]) -> npt.NDArray[np.float64]:
    silence = np.zeros(round(on_off[1] * SAMPLE_RATE))
    parts = [np.concatenate((_tone(frequency, on_off[0]), silence)) for _ in range(count)]
    return np.concatenate(parts)


def _melody() -> npt.NDArray[np.float64]:
    notes = []
    for frequency in _MELODY_HZ * 2:
        count = round(_MELODY_NOTE_SECONDS * SAMPLE_RATE)
        decay = np.exp(-np.arange(count) / (0.35 * SAMPLE_RATE))
        notes.append(_tone(frequency, _MELODY_NOTE_SECONDS) * decay)
    return np.concatenate(notes)


def _write(path: Path, signal: npt.NDArray[np.float64]) -> None:
    amplitude = 32767 * 10 ** (LEVEL_DBFS / 20)
    pcm = np.round(signal * amplitude).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm.tobytes())


@dataclass(frozen=True, slots=True)
class Prompts:
    """Where the synthesised prompts are (`synthesise` writes them; blocking: run it in a
    thread at start-up)."""

    directory: Path

    @classmethod
    def synthesise(cls, directory: Path) -> Prompts:
        directory.mkdir(parents=True, exist_ok=True)
        for count in range(1, MAX_COUNT + 1):
            _write(
                directory / f"position-{count}.wav", _beeps(POSITION_BEEP_HZ, count, POSITION_BEEP)
            )
            _write(directory / f"wait-{count}.wav", _beeps(WAIT_BEEP_HZ, count, WAIT_BEEP))
        _write(directory / "melody.wav", _melody())
        logger.info("queue prompts written to %s", directory)
        return cls(directory)

    @property
    def melody(self) -> Path:
        return self.directory / "melody.wav"

    def position(self, position: int) -> tuple[Path, float]:
        """The file announcing `position` and how long it plays (seconds)."""
        count = max(1, min(MAX_COUNT, position))
        return self.directory / f"position-{count}.wav", count * sum(POSITION_BEEP)

    def wait(self, seconds: float) -> tuple[Path, float] | None:
        """The file announcing an expected wait of `seconds` (None: no wait to announce)."""
        minutes = wait_minutes(seconds)
        if minutes == 0:
            return None
        return self.directory / f"wait-{minutes}.wav", minutes * sum(WAIT_BEEP)
