"""G.711 tables (ITU-T G.711): known code values, the reference implementation, error bounds."""

import warnings

import numpy as np
import pytest

from callwarden.media import g711
from callwarden.media.g711 import Encoding

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int64)


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (0xFF, 0),
        (0x7F, 0),
        (0xFE, 8),
        (0x7E, -8),
        (0xF0, 120),
        (0xEF, 132),
        (0x80, 32124),
        (0x00, -32124),
    ],
)
def test_ulaw_decode_known_values(code: int, value: int) -> None:
    assert g711.ULAW_DECODE[code] == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xD4, 24), (0xAA, 32256), (0x2A, -32256)],
)
def test_alaw_decode_known_values(code: int, value: int) -> None:
    assert g711.ALAW_DECODE[code] == value


@pytest.mark.parametrize(
    ("encoding", "sample", "code"),
    [
        (Encoding.PCMU, 0, 0xFF),
        (Encoding.PCMU, 32767, 0x80),
        (Encoding.PCMU, -32768, 0x00),
        (Encoding.PCMA, 0, 0xD5),
        (Encoding.PCMA, -1, 0x55),
        (Encoding.PCMA, 32767, 0xAA),
        (Encoding.PCMA, -32768, 0x2A),
    ],
)
def test_encode_known_values(encoding: Encoding, sample: int, code: int) -> None:
    assert g711.encode(np.array([sample], dtype=np.int16), encoding) == bytes([code])


def test_tables_equal_the_reference_c_implementation() -> None:
    """Python 3.11's audioop wraps the CCITT/Sun reference code: every entry must agree."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    samples = ALL_SAMPLES.astype(np.int16).tobytes()
    codes = bytes(range(256))
    assert (
        audioop.lin2ulaw(samples, 2)
        == g711.ULAW_ENCODE[ALL_SAMPLES.astype(np.int16).view(np.uint16)].tobytes()
    )
    assert (
        audioop.lin2alaw(samples, 2)
        == g711.ALAW_ENCODE[ALL_SAMPLES.astype(np.int16).view(np.uint16)].tobytes()
    )
    assert audioop.ulaw2lin(codes, 2) == g711.ULAW_DECODE.tobytes()
    assert audioop.alaw2lin(codes, 2) == g711.ALAW_DECODE.tobytes()


@pytest.mark.parametrize(
    ("encoding", "limit", "max_error", "max_relative", "small_error"),
    [(Encoding.PCMU, 32124, 516, 0.0625, 16), (Encoding.PCMA, 32256, 512, 0.032, 8)],
)
def test_round_trip_error_bounds(
    encoding: Encoding, limit: int, max_error: int, max_relative: float, small_error: int
) -> None:
    decoded = g711.decode(g711.encode(ALL_SAMPLES.astype(np.int16), encoding), encoding)
    error = np.abs(decoded.astype(np.int64) - ALL_SAMPLES)
    in_range = np.abs(ALL_SAMPLES) <= limit
    assert error[in_range].max() <= max_error
    large = in_range & (np.abs(ALL_SAMPLES) >= 256)
    assert (error[large] / np.abs(ALL_SAMPLES[large])).max() <= max_relative
    assert error[np.abs(ALL_SAMPLES) < 256].max() <= small_error
    # Beyond the largest code, samples clip to it.
    assert decoded[-1] == limit and decoded[0] == -limit


@pytest.mark.parametrize("encoding", list(Encoding))
def test_codes_round_trip_except_negative_zero(encoding: Encoding) -> None:
    codes = bytes(range(256))
    again = g711.encode(g711.decode(codes, encoding), encoding)
    differing = [c for c, d in zip(codes, again, strict=True) if c != d]
    assert differing == ([0x7F] if encoding is Encoding.PCMU else [])


def test_batched_frames_match_per_frame_coding() -> None:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 256, size=(5, 160), dtype=np.uint8)
    encodings = np.array([0, 1, 1, 0, 1], dtype=np.intp)
    pcm = g711.decode_frames(codes, encodings)
    for row, index in enumerate(encodings):
        encoding = Encoding.PCMU if index == 0 else Encoding.PCMA
        assert np.array_equal(pcm[row], g711.decode(codes[row].tobytes(), encoding))
    again = g711.encode_frames(pcm, encodings)
    for row, index in enumerate(encodings):
        encoding = Encoding.PCMU if index == 0 else Encoding.PCMA
        assert again[row].tobytes() == g711.encode(pcm[row], encoding)


def test_tables_are_read_only_and_encoding_names() -> None:
    with pytest.raises(ValueError):
        g711.ULAW_DECODE[0] = 1
    assert Encoding.from_name("pcma") is Encoding.PCMA
    assert (Encoding.PCMU.static_payload_type, Encoding.PCMA.static_payload_type) == (0, 8)
    with pytest.raises(ValueError, match="unsupported encoding: 'G729'"):
        Encoding.from_name("G729")
