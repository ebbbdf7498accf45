"""Helpers for the sealing tests: tones, a fake clock, a finished recording."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callwarden.recording.writer import SealedWriter, SealSummary

FRAME = 160
RATE = 8000
KEY = bytes(range(32))
OTHER_KEY = bytes(range(32, 64))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def tone(frequency: float, samples: int, start: int = 0) -> npt.NDArray[np.int16]:
    t = (np.arange(samples) + start) / RATE
    return (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


@dataclass
class Written:
    path: Path
    summary: SealSummary
    customer: npt.NDArray[np.int16]
    operator: npt.NDArray[np.int16]


def record_call(
    path: Path, recording_id: str = "rec-1", seconds: float = 5.0, key: bytes = KEY
) -> Written:
    """A two-track call: 440 Hz customer, 880 Hz operator, 20 ms frames, fake clock."""
    clock = FakeClock()
    writer = SealedWriter.create(path, recording_id, key, ["customer", "operator"], clock=clock)
    total = int(seconds * RATE)
    customer, operator = tone(440, total), tone(880, total)
    for start in range(0, total, FRAME):
        writer.write("customer", start, customer[start : start + FRAME])
        writer.write("operator", start, operator[start : start + FRAME].tobytes())
        clock.now += 0.02
    return Written(path, writer.close(), customer, operator)


def ulaw_roundtrip(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    from callwarden.recording.container import decode_pcm, encode_pcm

    return decode_pcm(encode_pcm(pcm))
