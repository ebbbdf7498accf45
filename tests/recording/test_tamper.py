"""Every tamper case is refused with RecordingCorrupted naming what failed."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from callwarden.recording.container import FileHeader
from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.reader import SealedReader

from .sealing import KEY, OTHER_KEY, record_call


def _records(data: bytes) -> tuple[bytes, list[bytes]]:
    """Split a file into its header and its records."""
    offset = FileHeader.prefix_size() + FileHeader.body_size(data[: FileHeader.prefix_size()])
    header, records = data[:offset], []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        records.append(data[offset : offset + 4 + length])
        offset += 4 + length
    return header, records


def _open(path: Path, recording_id: str = "rec-1", key: bytes = KEY) -> SealedReader:
    return SealedReader.open(path, recording_id, key)


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    return record_call(tmp_path / "r.cwrec", seconds=6).path


def test_flipped_byte_anywhere_is_caught(sealed: Path) -> None:
    data = bytearray(sealed.read_bytes())
    header, records = _records(bytes(data))
    for position in (len(header) + 40, len(header) + len(records[0]) + 100, len(data) - 1):
        copy = bytearray(data)
        copy[position] ^= 0x01
        sealed.write_bytes(bytes(copy))
        with pytest.raises(RecordingCorrupted, match="recording corrupted: rec-1: chunk"):
            _open(sealed)


def test_flipped_byte_in_header_is_caught(sealed: Path) -> None:
    data = sealed.read_bytes()
    sealed.write_bytes(data.replace(b'"customer"', b'"cuxtomer"', 1))
    with pytest.raises(RecordingCorrupted, match="chunk 0 failed authentication"):
        _open(sealed)


def test_swapped_chunks_are_caught(sealed: Path) -> None:
    header, records = _records(sealed.read_bytes())
    records[1], records[2] = records[2], records[1]
    sealed.write_bytes(header + b"".join(records))
    with pytest.raises(RecordingCorrupted, match="chunk 1 is out of place"):
        _open(sealed)


def test_renumbered_chunk_is_caught(sealed: Path) -> None:
    header, records = _records(sealed.read_bytes())
    first, second = bytearray(records[1]), bytearray(records[2])
    first[6:10], second[6:10] = second[6:10], first[6:10]  # swap the chunk numbers too
    records[1], records[2] = bytes(second), bytes(first)
    sealed.write_bytes(header + b"".join(records))
    with pytest.raises(RecordingCorrupted, match="chunk 1 failed authentication"):
        _open(sealed)


def test_chunk_from_another_recording_is_caught(tmp_path: Path, sealed: Path) -> None:
    other = record_call(tmp_path / "o.cwrec", "rec-2", seconds=6, key=OTHER_KEY).path
    header, records = _records(sealed.read_bytes())
    _, foreign = _records(other.read_bytes())
    records[2] = foreign[2]
    sealed.write_bytes(header + b"".join(records))
    with pytest.raises(RecordingCorrupted, match="chunk 2 failed authentication"):
        _open(sealed)


def test_chunk_from_another_recording_with_the_same_key_is_caught(
    tmp_path: Path, sealed: Path
) -> None:
    other = record_call(tmp_path / "o.cwrec", recording_id="rec-2", seconds=6).path
    header, records = _records(sealed.read_bytes())
    _, foreign = _records(other.read_bytes())
    records[3] = foreign[3]
    sealed.write_bytes(header + b"".join(records))
    with pytest.raises(RecordingCorrupted, match="chunk 3 failed authentication"):
        _open(sealed)


def test_file_of_another_recording_is_caught(tmp_path: Path) -> None:
    other = record_call(tmp_path / "o.cwrec", recording_id="rec-2").path
    with pytest.raises(RecordingCorrupted, match="belongs to recording 'rec-2'"):
        _open(other, "rec-1")


def test_wrong_key_is_caught(sealed: Path) -> None:
    with pytest.raises(RecordingCorrupted, match="chunk 0 failed authentication"):
        _open(sealed, key=OTHER_KEY)


def test_truncated_mid_chunk_is_corrupted(sealed: Path) -> None:
    data = sealed.read_bytes()
    sealed.write_bytes(data[:-7])
    with pytest.raises(RecordingCorrupted, match=r"file ends inside chunk \d+ \(truncated\)"):
        _open(sealed)


def test_truncated_after_a_whole_chunk_is_incomplete(sealed: Path) -> None:
    header, records = _records(sealed.read_bytes())
    sealed.write_bytes(header + b"".join(records[:-2]))
    reader = _open(sealed)
    assert not reader.complete
    assert len(reader.chunk_digests) == len(records) - 2


def test_dropped_chunk_in_the_middle_is_caught(sealed: Path) -> None:
    header, records = _records(sealed.read_bytes())
    del records[1]
    sealed.write_bytes(header + b"".join(records))
    with pytest.raises(RecordingCorrupted, match="chunk 1 is out of place"):
        _open(sealed)


def test_data_after_the_trailer_is_caught(sealed: Path) -> None:
    header, records = _records(sealed.read_bytes())
    sealed.write_bytes(header + b"".join(records) + records[1])
    with pytest.raises(RecordingCorrupted, match="data after the trailer"):
        _open(sealed)


def test_not_a_recording_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"RIFF" + b"\x00" * 100)
    with pytest.raises(RecordingCorrupted, match="bad magic"):
        _open(path)


def test_tamper_does_not_affect_other_recordings(tmp_path: Path, sealed: Path) -> None:
    other = record_call(tmp_path / "o.cwrec", recording_id="rec-2").path
    data = bytearray(sealed.read_bytes())
    data[-5] ^= 0xFF
    sealed.write_bytes(bytes(data))
    with pytest.raises(RecordingCorrupted):
        _open(sealed)
    assert _open(other, "rec-2").complete


def test_header_that_does_not_round_trip_is_refused(sealed: Path) -> None:
    header, records = _records(sealed.read_bytes())
    body = header[14:].replace(b'"start_timestamp":0', b'"start_timestamp":true')
    sealed.write_bytes(header[:10] + struct.pack(">I", len(body)) + body + b"".join(records))
    with pytest.raises(RecordingCorrupted, match="header is not in canonical form"):
        _open(sealed)
