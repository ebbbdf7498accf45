"""Canonical WAV renderings of a sealed recording (RIFF, PCM 16-bit little-endian, 8 kHz).

The bytes are a pure function of the sealed audio, so their SHA-256 can go into the signed
manifest at sealing time and a third party can check an exported WAV with ``sha256sum``:
mono per track, and stereo with the customer left and the operator right; the whole duration
of the recording, silence where nothing was recorded (gaps, pauses).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from callwarden.recording.container import SAMPLE_RATE
from callwarden.recording.reader import STEREO_LEFT, STEREO_RIGHT, SealedReader

BLOCK_SAMPLES = SAMPLE_RATE * 30


def wav_header(channels: int, frames: int, sample_rate: int = SAMPLE_RATE) -> bytes:
    """The 44-byte RIFF/WAVE header of 16-bit PCM."""
    data_bytes = frames * channels * 2
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", 36 + data_bytes),
            b"WAVEfmt ",
            struct.pack(
                "<IHHIIHH",
                16,
                1,
                channels,
                sample_rate,
                sample_rate * channels * 2,
                channels * 2,
                16,
            ),
            b"data",
            struct.pack("<I", data_bytes),
        )
    )


def track_wav(reader: SealedReader, track: str) -> Iterator[bytes]:
    """The mono WAV of ``track``, in pieces."""
    yield wav_header(1, reader.duration_samples)
    for block in reader.iter_pcm(track, BLOCK_SAMPLES):
        yield block.astype("<i2").tobytes()


def stereo_wav(
    reader: SealedReader, left: str = STEREO_LEFT, right: str = STEREO_RIGHT
) -> Iterator[bytes]:
    """The stereo WAV, ``left`` and ``right`` interleaved, in pieces."""
    yield wav_header(2, reader.duration_samples)
    for start in range(0, reader.duration_samples, BLOCK_SAMPLES):
        end = min(reader.duration_samples, start + BLOCK_SAMPLES)
        block = reader.stereo(start, end, left=left, right=right)
        yield np.ascontiguousarray(block).astype("<i2").tobytes()


def has_stereo(reader: SealedReader) -> bool:
    return STEREO_LEFT in reader.tracks and STEREO_RIGHT in reader.tracks


def sha256_of(pieces: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece)
    return digest.hexdigest()


def write_file(path: Path, pieces: Iterable[bytes]) -> str:
    """Write ``pieces`` to a new file (0600); returns its SHA-256."""
    digest = hashlib.sha256()
    with path.open("xb") as file:
        path.chmod(0o600)
        for piece in pieces:
            digest.update(piece)
            file.write(piece)
    return digest.hexdigest()
