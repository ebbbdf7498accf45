"""Tone generation and FFT analysis for the phone harness.

Levels are in dBFS: a full-scale int16 sine measures 0 dB. A tone's level is the energy of a
Hann-windowed spectrum inside a narrow band around its frequency; the noise floor is the same
energy per band, averaged over the spectrum away from the tones (and their harmonics, which
G.711 companding creates), so ``tone_level_db - noise_floor_db`` is a signal-to-noise ratio.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]

FULL_SCALE = 32768.0
DEFAULT_RATE = 8000
_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_HEADER_MIN = 12
_CHUNK_HEADER = 8
_FMT_MIN = 16


class WavError(ValueError):
    """A WAV file this module cannot read (not RIFF/WAVE, not 16-bit PCM, no data chunk)."""


@dataclass(frozen=True)
class Wav:
    """Decoded audio: mono int16 samples (first channel if the file has several) and its rate."""

    samples: Samples
    rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate

    def between(self, start_s: float, end_s: float | None = None) -> Samples:
        """Samples from ``start_s`` to ``end_s`` seconds (end of file when None)."""
        start = round(start_s * self.rate)
        end = len(self.samples) if end_s is None else round(end_s * self.rate)
        return self.samples[start:end]


def tone(
    freqs_hz: float | Sequence[float],
    duration_s: float,
    amplitude: float = 0.25,
    rate: int = DEFAULT_RATE,
) -> Samples:
    """A sum of sines, each at ``amplitude`` of full scale (0 < amplitude <= 1)."""
    freqs = [freqs_hz] if isinstance(freqs_hz, int | float) else list(freqs_hz)
    if not freqs:
        raise ValueError("at least one frequency is needed")
    if not 0.0 < amplitude * len(freqs) <= 1.0:
        raise ValueError(f"amplitude {amplitude} x {len(freqs)} tones would clip")
    for freq in freqs:
        if not 0.0 < freq < rate / 2:
            raise ValueError(f"{freq} Hz is not below the Nyquist frequency of {rate} Hz")
    t = np.arange(round(duration_s * rate), dtype=np.float64) / rate
    signal = sum(np.sin(2.0 * np.pi * freq * t) for freq in freqs)
    scaled = np.asarray(signal, dtype=np.float64) * amplitude * (FULL_SCALE - 1)
    return np.round(scaled).astype(np.int16)


def write_wav(path: Path, samples: Samples, rate: int = DEFAULT_RATE) -> Path:
    """Write mono 16-bit PCM with a complete RIFF header."""
    data = np.asarray(samples, dtype="<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = struct.pack("<HHIIHH", _WAVE_FORMAT_PCM, 1, rate, rate * 2, 2, 16)
    path.write_bytes(
        header
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    return path


def write_tone_wav(
    path: Path,
    freqs_hz: float | Sequence[float],
    duration_s: float,
    amplitude: float = 0.25,
    rate: int = DEFAULT_RATE,
) -> Path:
    """A tone WAV (8 kHz mono int16 by default); make it longer than the test that plays it."""
    return write_wav(path, tone(freqs_hz, duration_s, amplitude, rate), rate)


def read_wav(path: Path) -> Wav:
    """Read 16-bit PCM, tolerating a header that was never finished.

    A pjsua recorder writes its RIFF and data sizes only when destroyed; until then they are
    zero (or stale). Any size that is zero or runs past the end of the file is taken to mean
    "up to the end of the file".
    """
    raw = path.read_bytes()
    if len(raw) < _HEADER_MIN or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise WavError(f"{path}: not a RIFF/WAVE file")
    offset = _HEADER_MIN
    rate = channels = 0
    while offset + _CHUNK_HEADER <= len(raw):
        chunk_id = raw[offset : offset + 4]
        (size,) = struct.unpack_from("<I", raw, offset + 4)
        body = offset + _CHUNK_HEADER
        if chunk_id == b"fmt ":
            if size < _FMT_MIN:
                raise WavError(f"{path}: fmt chunk of {size} bytes")
            fmt_tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", raw, body)
            if fmt_tag not in (_WAVE_FORMAT_PCM, _WAVE_FORMAT_EXTENSIBLE) or bits != 16:
                raise WavError(f"{path}: format {fmt_tag} with {bits} bits, not 16-bit PCM")
        elif chunk_id == b"data":
            if rate == 0:
                raise WavError(f"{path}: data chunk before fmt chunk")
            end = len(raw) if size == 0 or body + size > len(raw) else body + size
            end -= (end - body) % (2 * channels)
            frames = np.frombuffer(raw[body:end], dtype="<i2").reshape(-1, channels)
            return Wav(np.ascontiguousarray(frames[:, 0]).astype(np.int16), rate)
        offset = body + size + (size & 1)
    raise WavError(f"{path}: no data chunk")


def _power_spectrum(samples: Samples, rate: int) -> tuple[npt.NDArray[np.float64], float]:
    """One-sided power spectrum of the Hann-windowed signal, scaled so that summing the bins of
    a sine's lobe gives its mean square over full scale squared; and the bin width in Hz."""
    if len(samples) < rate // 10:
        raise ValueError(f"{len(samples)} samples is under 100 ms: too short to analyse")
    x = np.asarray(samples, dtype=np.float64) / FULL_SCALE
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window)) ** 2
    # Parseval: a sine of amplitude A puts N * sum(w^2) * A^2 / 4 into its positive lobe;
    # scaling by 2 / (N * sum(w^2)) turns that into A^2 / 2, its mean square.
    spectrum *= 2.0 / (len(x) * float(np.sum(window**2)))
    # Full scale is a sine of amplitude 1, mean square 1/2.
    return spectrum * 2.0, rate / len(x)


def _band_half_width(bandwidth_hz: float, bin_hz: float) -> float:
    # A Hann lobe is +-2 bins wide: never measure a band narrower than that.
    return max(bandwidth_hz, 2.0 * bin_hz)


def _to_db(power: float) -> float:
    return 10.0 * float(np.log10(max(power, 1e-20)))


def tone_level_db(samples: Samples, rate: int, freq_hz: float, bandwidth_hz: float = 3.0) -> float:
    """Level of the tone at ``freq_hz`` in dBFS, from the energy within +- ``bandwidth_hz``."""
    spectrum, bin_hz = _power_spectrum(samples, rate)
    half = _band_half_width(bandwidth_hz, bin_hz)
    freqs = np.arange(len(spectrum)) * bin_hz
    band = (freqs >= freq_hz - half) & (freqs <= freq_hz + half)
    return _to_db(float(np.sum(spectrum[band])))


def _harmonics(freqs_hz: Iterable[float], nyquist: float) -> list[float]:
    out: list[float] = []
    for freq in freqs_hz:
        out.extend(freq * k for k in range(1, int(nyquist // freq) + 1))
    return out


def noise_floor_db(
    samples: Samples,
    rate: int,
    exclude_hz: Iterable[float] = (),
    bandwidth_hz: float = 3.0,
    guard_hz: float = 25.0,
    low_hz: float = 100.0,
) -> float:
    """Mean energy of a +- ``bandwidth_hz`` band, in dBFS, over the spectrum from ``low_hz``
    to just under Nyquist, leaving out +- ``guard_hz`` around each excluded tone and each of
    its harmonics. Comparable directly with :func:`tone_level_db` at the same bandwidth."""
    spectrum, bin_hz = _power_spectrum(samples, rate)
    half = _band_half_width(bandwidth_hz, bin_hz)
    nyquist = rate / 2
    freqs = np.arange(len(spectrum)) * bin_hz
    keep = (freqs >= low_hz) & (freqs <= nyquist - low_hz)
    for freq in _harmonics(exclude_hz, nyquist):
        keep &= np.abs(freqs - freq) > guard_hz
    if not np.any(keep):
        raise ValueError("no spectrum left to measure the noise floor in")
    bins_per_band = 2.0 * half / bin_hz + 1.0
    return _to_db(float(np.mean(spectrum[keep])) * bins_per_band)


def tone_snr_db(
    samples: Samples,
    rate: int,
    freq_hz: float,
    exclude_hz: Iterable[float] = (),
    bandwidth_hz: float = 3.0,
) -> float:
    """Tone level over the noise floor (the floor leaves out this tone and ``exclude_hz``)."""
    others = [freq_hz, *exclude_hz]
    level = tone_level_db(samples, rate, freq_hz, bandwidth_hz)
    return level - noise_floor_db(samples, rate, others, bandwidth_hz)


def has_tone(
    samples: Samples,
    rate: int,
    freq_hz: float,
    min_snr_db: float = 20.0,
    exclude_hz: Iterable[float] = (),
) -> bool:
    """Whether a tone at ``freq_hz`` stands at least ``min_snr_db`` over the noise floor."""
    return tone_snr_db(samples, rate, freq_hz, exclude_hz) >= min_snr_db


def rms_dbfs(samples: Samples) -> float:
    """RMS level in dBFS (a full-scale sine is 0 dB), or -200 for empty input."""
    if len(samples) == 0:
        return -200.0
    x = np.asarray(samples, dtype=np.float64) / FULL_SCALE
    return _to_db(2.0 * float(np.mean(x**2)))


def longest_gap_ms(
    samples: Samples, rate: int, threshold_dbfs: float = -40.0, frame_ms: float = 5.0
) -> float:
    """Longest run of consecutive ``frame_ms`` frames whose RMS is under ``threshold_dbfs``,
    in milliseconds: how long the audio dropped out."""
    frame = max(1, round(rate * frame_ms / 1000.0))
    count = len(samples) // frame
    if count == 0:
        return 0.0
    frames = np.asarray(samples[: count * frame], dtype=np.float64).reshape(count, frame)
    mean_square = 2.0 * np.mean((frames / FULL_SCALE) ** 2, axis=1)
    quiet = mean_square < 10.0 ** (threshold_dbfs / 10.0)
    longest = run = 0
    for is_quiet in quiet:
        run = run + 1 if is_quiet else 0
        longest = max(longest, run)
    return longest * frame * 1000.0 / rate
