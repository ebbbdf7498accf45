"""Whatever happens to a sealed file, the reader answers RecordingCorrupted or 'incomplete'."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.reader import SealedReader

from .sealing import KEY, record_call

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("pristine") / "r.cwrec"
    return record_call(path, seconds=5).path.read_bytes()


@SETTINGS
@given(
    flips=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4
    )
)
def test_any_mutation_is_refused(
    pristine: bytes, tmp_path: Path, flips: list[tuple[float, int]]
) -> None:
    mutated = bytearray(pristine)
    positions = {int(where * len(mutated)): mask for where, mask in flips}  # distinct bytes
    for position, mask in positions.items():
        mutated[position] ^= mask
    path = tmp_path / "m.cwrec"
    path.write_bytes(bytes(mutated))
    with pytest.raises(RecordingCorrupted, match="recording corrupted: rec-1: "):
        SealedReader.open(path, "rec-1", KEY)


@SETTINGS
@given(cut=st.integers(0, 100_000))
def test_any_truncation_is_incomplete_or_refused(pristine: bytes, tmp_path: Path, cut: int) -> None:
    path = tmp_path / "t.cwrec"
    path.write_bytes(pristine[: min(cut, len(pristine) - 1)])
    try:
        reader = SealedReader.open(path, "rec-1", KEY)
    except RecordingCorrupted as error:
        assert "truncated" in error.reason or "header" in error.reason
    else:
        assert not reader.complete
        assert reader.file_bytes == path.stat().st_size  # ended on a record boundary


@SETTINGS
@given(garbage=st.binary(max_size=300))
def test_garbage_is_refused(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "g.cwrec"
    path.write_bytes(garbage)
    with pytest.raises(RecordingCorrupted):
        SealedReader.open(path, "rec-1", KEY)
