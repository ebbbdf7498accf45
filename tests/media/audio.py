"""Test helpers for audio: tones in, spectra out (not a test module)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from callwarden.media import g711
from callwarden.media.g711 import Encoding
from callwarden.media.rtp import RtpPacket

SAMPLE_RATE = 8000


class Collector:
    """A datagram transport that keeps what is sent (the far end of a stream, in memory)."""

    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, addr: tuple[str, int], /) -> None:
        self.datagrams.append((data, addr))

    @property
    def packets(self) -> list[RtpPacket]:
        return [RtpPacket.parse(data) for data, _ in self.datagrams]


def tone_level_db(pcm: npt.NDArray[np.int16], frequency: float, width: float = 4.0) -> float:
    """Level of a tone in dB relative to a full-scale sine, from the energy within +-width Hz."""
    samples = pcm.astype(np.float64) / 32768.0
    window = np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(samples * window)) / (window.sum() / 2)
    freqs = np.fft.rfftfreq(samples.size, 1 / SAMPLE_RATE)
    band = (freqs >= frequency - width) & (freqs <= frequency + width)
    # Amplitude-normalised bins; a Hann window spreads a tone's power by its noise bandwidth, 1.5.
    return float(10 * np.log10(np.sum(spectrum[band] ** 2) / 1.5 + 1e-20))


def decode_packets(packets: list[RtpPacket], encoding: Encoding) -> npt.NDArray[np.int16]:
    if not packets:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([g711.decode(p.payload, encoding) for p in packets])
