"""Synthetic speech-like audio for simulated callers, generated once and looped.

Not speech, but it has speech's shape, so a listener (or the mixer, a recorder, a level meter)
meets what a real call carries: syllables at about four a second, each a short burst of a
voiced buzz at the speaker's pitch with a noisy consonant onset, filtered through the formants
of a vowel (F1-F3, scaled per voice) and band-limited to the telephone band (300-3400 Hz,
ITU-T G.712); words of one to three syllables; phrases of a few words; pauses between phrases
and longer ones where the other party would speak. Each :class:`Voice` has its own pitch,
vocal tract scale and pace, so the customer and the operator of a call sound different.

A loop of ``seconds`` is built with numpy in a few milliseconds and encoded to G.711 µ-law
(RFC 3551 4.5.14) once; sending is then only slicing 20 ms frames out of it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callwarden.media.g711 import Encoding, PcmArray, encode

__all__ = [
    "CUSTOMER_VOICES",
    "FRAME_SAMPLES",
    "OPERATOR_VOICES",
    "SAMPLE_RATE",
    "SpeechLoop",
    "Voice",
    "encode_frames",
    "synthesize",
]

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
"""Samples in one 20 ms packet at 8 kHz (RFC 3551 4.5: G.711 default packetization)."""

_FloatArray = npt.NDArray[np.float64]

# Formant frequencies (Hz) of a few vowels of an adult speaker: /a/ /e/ /i/ /o/ /u/ /ae/.
_VOWELS = (
    (730.0, 1090.0, 2440.0),
    (530.0, 1840.0, 2480.0),
    (270.0, 2290.0, 3010.0),
    (570.0, 840.0, 2410.0),
    (300.0, 870.0, 2240.0),
    (660.0, 1720.0, 2410.0),
)
_FORMANT_GAINS = (1.0, 0.5, 0.25)
_TARGET_RMS = 0.1 * 32767  # -20 dBFS while speaking
_NOISE_FLOOR = 0.0006 * 32767  # about -64 dBFS: the line is never digitally dead


@dataclass(frozen=True, slots=True)
class Voice:
    """How one simulated person sounds: mean pitch, vocal tract scale (formants are multiplied
    by it: above 1 sounds smaller/brighter), speaking rate, and how much of the time they talk."""

    name: str
    pitch_hz: float
    formant_scale: float
    syllables_per_second: float
    talk_share: float = 0.6

    def __post_init__(self) -> None:
        if not 60 <= self.pitch_hz <= 400:
            raise ValueError(f"voice {self.name}: pitch {self.pitch_hz} Hz outside 60-400")
        if not 0.7 <= self.formant_scale <= 1.5:
            raise ValueError(f"voice {self.name}: formant scale outside 0.7-1.5")
        if not 1 <= self.syllables_per_second <= 10:
            raise ValueError(f"voice {self.name}: 1 to 10 syllables a second")
        if not 0.1 <= self.talk_share <= 0.9:
            raise ValueError(f"voice {self.name}: talk share outside 0.1-0.9")


CUSTOMER_VOICES = (
    Voice("customer-low", pitch_hz=105.0, formant_scale=0.95, syllables_per_second=3.8),
    Voice("customer-mid", pitch_hz=130.0, formant_scale=1.0, syllables_per_second=4.4),
)
"""Customers: lower, slower voices."""

OPERATOR_VOICES = (
    Voice("operator-high", pitch_hz=215.0, formant_scale=1.18, syllables_per_second=4.8),
    Voice("operator-bright", pitch_hz=190.0, formant_scale=1.12, syllables_per_second=5.2),
)
"""Operators: higher, brighter, a little quicker: a listener tells the two sides apart."""


def _segments(voice: Voice, total: int, rng: random.Random) -> Iterator[tuple[int, int]]:
    """(start, length) in samples of every syllable: words, phrases, pauses."""
    syllable = SAMPLE_RATE / voice.syllables_per_second
    position = int(rng.uniform(0.1, 0.4) * SAMPLE_RATE)
    # A phrase lasts `talk_share` of a phrase-plus-pause on average.
    pause_scale = (1 - voice.talk_share) / voice.talk_share
    while position < total:
        phrase_start = position
        for _ in range(rng.randint(2, 6)):  # words in the phrase
            for _ in range(rng.randint(1, 3)):  # syllables in the word
                length = int(syllable * rng.uniform(0.7, 1.3))
                if position + length > total:
                    return
                yield position, length
                position += length
            position += int(rng.uniform(0.03, 0.12) * SAMPLE_RATE)
        spoken = position - phrase_start
        position += int(spoken * pause_scale * rng.uniform(0.5, 1.5))


def _syllable(
    voice: Voice, length: int, rng: random.Random, noise: np.random.Generator
) -> _FloatArray:
    """One syllable: a consonant-like noise onset, then a voiced vowel, under an envelope."""
    times = np.arange(length) / SAMPLE_RATE
    pitch = voice.pitch_hz * rng.uniform(0.85, 1.15)
    contour = pitch * (1 + 0.06 * np.sin(2 * np.pi * rng.uniform(2.0, 5.0) * times))
    phase = np.cumsum(contour / SAMPLE_RATE)
    pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per glottal period
    onset = int(length * rng.uniform(0.1, 0.3))
    excitation = pulses * 8.0
    excitation[:onset] = 0.0
    excitation += noise.standard_normal(length) * np.where(np.arange(length) < onset, 1.0, 0.15)
    spectrum = np.fft.rfft(excitation)
    frequencies = np.fft.rfftfreq(length, 1 / SAMPLE_RATE)
    formants = [f * voice.formant_scale for f in rng.choice(_VOWELS)]
    shape = np.zeros_like(frequencies)
    for formant, gain in zip(formants, _FORMANT_GAINS, strict=True):
        bandwidth = 60.0 + formant * 0.08
        shape += gain / (1.0 + ((frequencies - formant) / bandwidth) ** 2)
    telephone_band = (frequencies >= 300.0) & (frequencies <= 3400.0)
    filtered = np.fft.irfft(spectrum * shape * telephone_band, n=length)
    attack = min(length // 4, int(0.03 * SAMPLE_RATE))
    release = min(length // 3, int(0.06 * SAMPLE_RATE))
    envelope = np.ones(length)
    envelope[:attack] = np.sin(np.linspace(0, np.pi / 2, attack)) ** 2
    envelope[length - release :] = np.cos(np.linspace(0, np.pi / 2, release)) ** 2
    result: _FloatArray = filtered * envelope * rng.uniform(0.6, 1.0)
    return result


def synthesize(voice: Voice, seconds: float, rng: random.Random) -> PcmArray:
    """``seconds`` of speech-like int16 audio at 8 kHz in ``voice`` (deterministic for a seeded
    ``rng``): speech at about -20 dBFS RMS, pauses at the noise floor."""
    total = int(seconds * SAMPLE_RATE)
    if total < FRAME_SAMPLES:
        raise ValueError("at least one 20 ms frame of audio")
    noise = np.random.default_rng(rng.getrandbits(64))
    signal = np.zeros(total)
    speaking = np.zeros(total, dtype=bool)
    for start, length in _segments(voice, total, rng):
        signal[start : start + length] = _syllable(voice, length, rng, noise)
        speaking[start : start + length] = True
    if speaking.any():
        level = float(np.sqrt(np.mean(signal[speaking] ** 2)))
        if level > 0:
            signal *= _TARGET_RMS / level
    signal += noise.standard_normal(total) * _NOISE_FLOOR
    return np.clip(np.round(signal), -32767, 32767).astype(np.int16)


def encode_frames(pcm: PcmArray, encoding: Encoding = Encoding.PCMU) -> tuple[bytes, ...]:
    """G.711 payloads of 20 ms each (a trailing partial frame is dropped)."""
    whole = len(pcm) - len(pcm) % FRAME_SAMPLES
    data = encode(pcm[:whole], encoding)
    return tuple(data[i : i + FRAME_SAMPLES] for i in range(0, whole, FRAME_SAMPLES))


@dataclass(frozen=True, slots=True)
class SpeechLoop:
    """A voice's pre-encoded 20 ms payloads; a call plays them in a loop from any offset."""

    voice: Voice
    encoding: Encoding
    frames: tuple[bytes, ...]

    @classmethod
    def build(
        cls,
        voice: Voice,
        *,
        seconds: float = 30.0,
        seed: int = 0,
        encoding: Encoding = Encoding.PCMU,
    ) -> SpeechLoop:
        pcm = synthesize(voice, seconds, random.Random(f"{voice.name}/{seed}"))
        return cls(voice, encoding, encode_frames(pcm, encoding))

    def frame(self, index: int) -> bytes:
        frames = self.frames
        return frames[index % len(frames)]
