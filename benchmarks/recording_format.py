"""Recording format: bytes per minute per track and CPU per call-minute for encode + seal.

Usage: .venv/bin/python benchmarks/recording_format.py [--minutes N] [--repeat N]

A "call-minute" is two tracks (customer, operator) of 60 s at 8 kHz, fed as the bridge feeds the
recorder (160-sample frames, 20 ms) and sealed in 2 s chunks (AES-256-GCM). The audio is
synthetic: talk spurts of a harmonic voice-like signal with pitch movement and noise, each party
talking about 45 % of the time, low background noise otherwise (real speech compresses
differently; the G.711 row does not depend on the content at all).

Rows:
* pcmu: G.711 µ-law through the lookup table, the format callwarden seals (the whole sealing
  path: ``SealedWriter`` writing a real file on a tmpfs-or-disk directory, fsync included);
* pcm16: linear 16-bit, for scale;
* pcmu+zlib: µ-law, then zlib level 1 (lossless) before sealing;
* flac: FLAC level 5 of the int16 PCM (``pyflac``, if installed); flac(pcmu): FLAC of the
  µ-law-decoded PCM (lossless with respect to a PCMU call; the µ-law round trip is timed too);
* opus16k: Opus at 16 kbit/s, VoIP mode, 20 ms frames (``opuslib`` + libopus, if installed).
The codec-only rows time encode + AES-GCM on the same chunks without file I/O.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callwarden.recording.container import decode_pcm, encode_pcm
from callwarden.recording.writer import SealedWriter

RATE = 8000
FRAME = 160
CHUNK = 2 * RATE
Pcm = npt.NDArray[np.int16]


def voice_track(seconds: float, seed: int) -> Pcm:
    """Talk spurts (0.5-3 s) of a harmonic signal with moving pitch; quiet noise between."""
    rng = np.random.default_rng(seed)
    total = int(seconds * RATE)
    out = rng.normal(0, 30, total)  # background noise, about -60 dBFS
    position, talking = 0, bool(seed % 2)
    while position < total:
        length = int(rng.uniform(0.5, 3.0) * RATE)
        if talking:
            n = min(length, total - position)
            t = np.arange(n) / RATE
            pitch = 120 + 40 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
            phase = 2 * np.pi * np.cumsum(pitch) / RATE
            voice = sum(np.sin(k * phase) / k for k in range(1, 12))
            envelope = np.minimum(1, np.minimum(t, t[::-1]) * 20)
            out[position : position + n] += 3000 * voice * envelope + rng.normal(0, 300, n)
        position += length
        talking = not talking
    return np.clip(out, -32768, 32767).astype(np.int16)


def _flac(pcm: Pcm) -> bytes:
    import pyflac  # type: ignore[import-not-found, import-untyped, unused-ignore]

    pieces: list[bytes] = []
    encoder = pyflac.StreamEncoder(RATE, lambda data, *_: pieces.append(bytes(data)))
    encoder.process(pcm)
    encoder.finish()
    return b"".join(pieces)


def _opus_encoder() -> Callable[[Pcm], bytes]:
    import opuslib  # type: ignore[import-not-found, import-untyped, unused-ignore]

    encoder = opuslib.Encoder(RATE, 1, opuslib.APPLICATION_VOIP)
    encoder.bitrate = 16000

    def encode(pcm: Pcm) -> bytes:
        frames = [
            encoder.encode(pcm[i : i + FRAME].tobytes(), FRAME) for i in range(0, len(pcm), FRAME)
        ]
        return b"".join(len(f).to_bytes(2, "big") + f for f in frames)

    return encode


def codecs() -> dict[str, Callable[[Pcm], bytes]]:
    found: dict[str, Callable[[Pcm], bytes]] = {
        "pcm16": lambda pcm: pcm.tobytes(),
        "pcmu": encode_pcm,
        "pcmu+zlib": lambda pcm: zlib.compress(encode_pcm(pcm), 1),
    }
    try:
        _flac(np.zeros(FRAME, np.int16))
        found["flac"] = _flac
        # What a PCMU call carried, losslessly: FLAC of the µ-law-decoded samples.
        found["flac(pcmu)"] = lambda pcm: _flac(decode_pcm(encode_pcm(pcm)))
    except ImportError:
        print("flac: pyflac not installed, row skipped")
    try:
        found["opus16k"] = _opus_encoder()
    except (ImportError, OSError):
        print("opus16k: opuslib/libopus not installed, row skipped")
    return found


def seal_cost(encode: Callable[[Pcm], bytes], tracks: list[Pcm], repeat: int) -> tuple[float, int]:
    """Best CPU seconds over ``repeat`` runs, and sealed bytes of the first track."""
    aead = AESGCM(secrets.token_bytes(32))
    best, size = float("inf"), 0
    for _ in range(repeat):
        started, sealed = time.process_time(), 0
        for index, track in enumerate(tracks):
            for start in range(0, len(track), CHUNK):
                payload = encode(track[start : start + CHUNK])
                record = aead.encrypt(os.urandom(12), payload, b"aad")
                if index == 0:
                    sealed += len(record) + 34  # record header, nonce, length prefix
        best, size = min(best, time.process_time() - started), sealed
    return best, size


def writer_cost(
    tracks: list[Pcm], repeat: int, directory: Path, batch: int
) -> tuple[float, float, int]:
    """The real SealedWriter, ``batch`` samples a call, fsync every 2 s: user and system CPU
    seconds, file bytes."""
    best, best_system, size = float("inf"), 0.0, 0
    for run in range(repeat):
        path = directory / f"bench-{run}.cwrec"
        started, before = time.process_time(), os.times()
        writer = SealedWriter.create(path, f"bench-{run}", secrets.token_bytes(32),
                                     ["customer", "operator"], clock=lambda: 0.0)  # fmt: skip
        for start in range(0, len(tracks[0]), batch):
            writer.write("customer", start, tracks[0][start : start + batch])
            writer.write("operator", start, tracks[1][start : start + batch])
        writer.close()
        cpu, after = time.process_time() - started, os.times()
        if cpu < best:
            best, best_system = cpu, after.system - before.system
        size = path.stat().st_size
        path.unlink()
    return best, best_system, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    minutes = arguments.minutes
    tracks = [voice_track(60 * minutes, 1), voice_track(60 * minutes, 2)]
    machine = platform.processor() or platform.machine()
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, {machine}, load {load:.1f}; {minutes:g} min")
    print(f"{'format':<11} {'bytes/min/track':>16} {'CPU ms per call-minute':>24}")
    for name, encode in codecs().items():
        cpu, size = seal_cost(encode, tracks, arguments.repeat)
        print(f"{name:<11} {size / minutes:>16,.0f} {1000 * cpu / minutes:>24.2f}")
    print("SealedWriter, pcmu, 2 tracks, fsync every 2 s, a file in the current directory:")
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as directory:
        for batch, label in ((FRAME, "20 ms"), (5 * FRAME, "100 ms")):
            cpu, system, size = writer_cost(tracks, arguments.repeat, Path(directory), batch)
            print(
                f"writes of {label:<6} {size / 2 / minutes:>12,.0f} {1000 * cpu / minutes:>24.2f}"
                f"  (of which system, mostly fsync: {1000 * system / minutes:.1f})"
            )


if __name__ == "__main__":
    main()
