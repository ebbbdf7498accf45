"""The synthetic speech: 20 ms µ-law frames with speech's level, rhythm, band and pauses, and a
pitch that tells the customer from the operator."""

from __future__ import annotations

import random

import numpy as np
import pytest

from callwarden.media.g711 import Encoding, decode
from callwarden.simulator.audio import (
    CUSTOMER_VOICES,
    FRAME_SAMPLES,
    OPERATOR_VOICES,
    SAMPLE_RATE,
    SpeechLoop,
    Voice,
    encode_frames,
    synthesize,
)

SECONDS = 30.0


def _pcm(loop: SpeechLoop) -> np.ndarray:
    return np.concatenate([decode(frame, Encoding.PCMU) for frame in loop.frames]).astype(float)


def _frame_dbfs(pcm: np.ndarray, samples: int = FRAME_SAMPLES) -> np.ndarray:
    frames = pcm[: len(pcm) - len(pcm) % samples].reshape(-1, samples)
    rms = np.sqrt((frames**2).mean(axis=1))
    return 20 * np.log10(rms / 32767 + 1e-12)


def _median_pitch_hz(pcm: np.ndarray) -> float:
    """Autocorrelation pitch of the loudest 40 ms stretches (voiced vowels)."""
    levels = _frame_dbfs(pcm, 320)
    frames = pcm[: len(levels) * 320].reshape(-1, 320)[levels > np.percentile(levels, 80)]
    lags = []
    shortest, longest = SAMPLE_RATE // 400, SAMPLE_RATE // 60
    for frame in frames:
        centred = frame - frame.mean()
        correlation = np.correlate(centred, centred, "full")[len(centred) - 1 :]
        lags.append(shortest + int(np.argmax(correlation[shortest:longest])))
    return float(SAMPLE_RATE / np.median(lags))


@pytest.fixture(scope="module")
def loops() -> dict[str, SpeechLoop]:
    return {
        voice.name: SpeechLoop.build(voice, seconds=SECONDS, seed=7)
        for voice in CUSTOMER_VOICES + OPERATOR_VOICES
    }


def test_a_loop_is_whole_20ms_mu_law_frames(loops: dict[str, SpeechLoop]) -> None:
    for loop in loops.values():
        assert loop.encoding is Encoding.PCMU
        assert len(loop.frames) == SECONDS * 50
        assert {len(frame) for frame in loop.frames} == {FRAME_SAMPLES}
        assert loop.frame(len(loop.frames) + 3) == loop.frames[3]  # it loops


def test_speech_alternates_with_pauses_at_speech_levels(loops: dict[str, SpeechLoop]) -> None:
    for name, loop in loops.items():
        levels = _frame_dbfs(_pcm(loop))
        speaking = (levels > -35).mean()
        silent = (levels < -50).mean()
        assert 0.3 < speaking < 0.7, name
        assert 0.25 < silent < 0.65, name
        assert -20 < levels.max() < -6, name  # loud enough, never clipping
        assert levels.min() > -80, name  # a noise floor, not digital silence


def test_energy_is_in_the_telephone_band(loops: dict[str, SpeechLoop]) -> None:
    for name, loop in loops.items():
        power = np.abs(np.fft.rfft(_pcm(loop))) ** 2
        frequencies = np.fft.rfftfreq(len(power) * 2 - 2, 1 / SAMPLE_RATE)
        in_band = power[(frequencies >= 250) & (frequencies <= 3500)].sum() / power.sum()
        assert in_band > 0.97, name


def test_loudness_pulses_at_the_syllable_rate(loops: dict[str, SpeechLoop]) -> None:
    """The 10 ms energy envelope's modulation spectrum peaks at 2.5-6 Hz (syllables)."""
    for name, loop in loops.items():
        pcm = _pcm(loop)
        frames = pcm.reshape(-1, 80)
        envelope = np.sqrt((frames**2).mean(axis=1))
        envelope -= envelope.mean()
        spectrum = np.abs(np.fft.rfft(envelope * np.hanning(len(envelope))))
        frequencies = np.fft.rfftfreq(len(envelope), 0.01)
        window = (frequencies >= 1.5) & (frequencies <= 12)
        peak = frequencies[window][np.argmax(spectrum[window])]
        assert 2.5 <= peak <= 6.0, (name, peak)


def test_customers_and_operators_sound_different(loops: dict[str, SpeechLoop]) -> None:
    for voice in CUSTOMER_VOICES + OPERATOR_VOICES:
        pitch = _median_pitch_hz(_pcm(loops[voice.name]))
        assert abs(pitch - voice.pitch_hz) < 0.15 * voice.pitch_hz, (voice.name, pitch)
    highest_customer = max(voice.pitch_hz for voice in CUSTOMER_VOICES)
    lowest_operator = min(voice.pitch_hz for voice in OPERATOR_VOICES)
    assert lowest_operator > 1.4 * highest_customer


def test_the_same_seed_gives_the_same_audio_and_another_seed_other_audio() -> None:
    voice = CUSTOMER_VOICES[0]
    first = SpeechLoop.build(voice, seconds=2, seed=1)
    assert SpeechLoop.build(voice, seconds=2, seed=1) == first
    assert SpeechLoop.build(voice, seconds=2, seed=2).frames != first.frames


def test_encode_frames_drops_a_partial_frame_and_encodes_alaw() -> None:
    pcm = synthesize(OPERATOR_VOICES[0], 1.01, random.Random(3))
    assert len(pcm) == 8080
    frames = encode_frames(pcm, Encoding.PCMA)
    assert len(frames) == 50
    decoded = np.concatenate([decode(frame, Encoding.PCMA) for frame in frames])
    error = np.abs(decoded.astype(int) - pcm[:8000].astype(int))
    assert error.max() <= max(16, int(np.abs(pcm).max()) // 16)  # G.711 quantisation only


@pytest.mark.parametrize(
    ("voice", "message"),
    [
        (dict(pitch_hz=30.0), "pitch 30.0 Hz outside 60-400"),
        (dict(formant_scale=2.0), "formant scale outside 0.7-1.5"),
        (dict(syllables_per_second=20.0), "1 to 10 syllables a second"),
        (dict(talk_share=1.0), "talk share outside 0.1-0.9"),
    ],
)
def test_voices_out_of_human_range_are_refused(voice: dict[str, float], message: str) -> None:
    values = {"pitch_hz": 120.0, "formant_scale": 1.0, "syllables_per_second": 4.0, **voice}
    with pytest.raises(ValueError, match=message):
        Voice("odd", **values)


def test_less_than_a_frame_of_audio_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one 20 ms frame"):
        synthesize(CUSTOMER_VOICES[0], 0.01, random.Random(1))
