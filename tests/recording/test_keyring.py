"""Key ring: wrap/unwrap, file modes, rotation, re-wrap, destroyed keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from callwarden.recording.errors import KeyUnavailable
from callwarden.recording.keyring import FileKeyRing, WrappedKey, new_data_key, rewrap
from callwarden.recording.reader import SealedReader

from .sealing import record_call


def test_first_use_creates_a_private_kek(tmp_path: Path) -> None:
    ring = FileKeyRing.for_data_dir(tmp_path)
    assert ring.current_key_id() == "kek-0001"
    key_file = tmp_path / "keys" / "recording" / "kek-0001.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert len(key_file.read_bytes()) == 32


def test_wrap_unwrap_binds_the_recording(tmp_path: Path) -> None:
    ring = FileKeyRing.for_data_dir(tmp_path)
    data_key = new_data_key()
    wrapped = ring.wrap(data_key, "rec-1")
    assert data_key not in wrapped.blob
    assert ring.unwrap(WrappedKey.decode(wrapped.encode()), "rec-1") == data_key
    with pytest.raises(KeyUnavailable, match="does not unwrap"):
        ring.unwrap(wrapped, "rec-2")


def test_rotation_keeps_old_keys_and_rewrap_moves_to_newest(tmp_path: Path) -> None:
    ring = FileKeyRing.for_data_dir(tmp_path)
    data_key = new_data_key()
    old = ring.wrap(data_key, "rec-1")
    written = record_call(tmp_path / "r.cwrec", key=data_key)
    assert ring.rotate() == "kek-0002"
    assert ring.key_ids() == ["kek-0001", "kek-0002"]
    assert ring.wrap(new_data_key(), "rec-9").key_id == "kek-0002"
    assert SealedReader.open(written.path, "rec-1", ring.unwrap(old, "rec-1")).complete
    moved = rewrap(ring, old, "rec-1")
    assert moved.key_id == "kek-0002"
    assert rewrap(ring, moved, "rec-1") is moved
    (tmp_path / "keys" / "recording" / "kek-0001.key").unlink()  # the old KEK retired
    assert ring.unwrap(moved, "rec-1") == data_key
    with pytest.raises(KeyUnavailable, match="not in the key ring"):
        ring.unwrap(old, "rec-1")


def test_destroyed_wrapped_key_leaves_the_file_unreadable(tmp_path: Path) -> None:
    ring = FileKeyRing.for_data_dir(tmp_path)
    data_key = new_data_key()
    wrapped = ring.wrap(data_key, "rec-1")
    record_call(tmp_path / "r.cwrec", key=data_key)
    del data_key, wrapped  # crypto-shredding: only the wrapped copy was ever stored
    from callwarden.recording.errors import RecordingCorrupted

    with pytest.raises(RecordingCorrupted, match="failed authentication"):
        SealedReader.open(tmp_path / "r.cwrec", "rec-1", new_data_key())


@pytest.mark.parametrize("text", ["kek-0001", "kek-0001:", ":AAAA", "kek-0001:not base64!"])
def test_bad_wrapped_key_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="wrapped key"):
        WrappedKey.decode(text)


def test_unknown_key_id_is_refused(tmp_path: Path) -> None:
    ring = FileKeyRing.for_data_dir(tmp_path)
    with pytest.raises(KeyUnavailable, match="not a key-encryption key id"):
        ring.unwrap(WrappedKey("../../etc/passwd", b"x" * 60), "rec-1")
