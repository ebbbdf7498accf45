"""Signed manifest and verification: a good recording verifies; any alteration is refused."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callwarden.recording.container import canonical_json
from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.manifest import SignedManifest, seal_manifest
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.verify import verify_recording
from callwarden.recording.writer import SealedWriter

from .sealing import KEY, RATE, FakeClock, record_call, tone

SEALED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CALL = {"call_id": "call-7", "queue": "support", "direction": "inbound", "caller": "+3312345"}
PEOPLE = [{"role": "customer", "number": "+3312345"}, {"role": "operator", "user": "alice"}]


@pytest.fixture
def signing_key(tmp_path: Path) -> NodeSigningKey:
    return NodeSigningKey.for_data_dir(tmp_path / "data")


def _seal(tmp_path: Path, key: NodeSigningKey) -> tuple[Path, SignedManifest]:
    path = record_call(tmp_path / "r.cwrec", seconds=3).path
    signed = seal_manifest(
        path, "rec-1", KEY, key, sealed_at=SEALED_AT, call=CALL, participants=PEOPLE
    )
    return path, signed


def test_signing_key_is_created_private_and_reused(tmp_path: Path) -> None:
    first = NodeSigningKey.for_data_dir(tmp_path)
    path = tmp_path / "keys" / "node-signing.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = NodeSigningKey.for_data_dir(tmp_path)
    assert again.public_key_pem() == first.public_key_pem()
    assert first.public_key_pem().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_manifest_content_and_verification(tmp_path: Path, signing_key: NodeSigningKey) -> None:
    path, signed = _seal(tmp_path, signing_key)
    fields = signed.fields()
    assert canonical_json(fields) == signed.body
    assert fields["recording_id"] == "rec-1"
    assert fields["call"] == CALL
    assert fields["participants"] == PEOPLE
    assert fields["monitoring_sessions"] == []
    assert fields["complete"] is True
    assert [t["name"] for t in fields["tracks"]] == ["customer", "operator"]
    assert fields["audio"]["duration_samples"] == 3 * RATE
    assert SignedManifest.load(path) == signed
    result = verify_recording(path, "rec-1", KEY, signed, signing_key.public_key())
    assert result.complete
    assert result.chunk_count == len(fields["chunk_sha256"])
    assert result.checks[0] == "signature" and "audio digests" in result.checks


def test_the_catalogues_manifest_digest_is_checked_when_given(
    tmp_path: Path, signing_key: NodeSigningKey
) -> None:
    """Against the catalogue, the manifest must be the one whose SHA-256 it recorded at close:
    a later manifest, validly signed for the same file, is not."""
    path, signed = _seal(tmp_path, signing_key)
    digest = hashlib.sha256(signed.body).hexdigest()
    result = verify_recording(path, "rec-1", KEY, signed, signing_key.public_key(), digest)
    assert result.checks[:2] == ("signature", "catalogue digest")
    later = seal_manifest(path, "rec-1", KEY, signing_key, sealed_at=SEALED_AT, call={})
    assert later.body != signed.body
    with pytest.raises(RecordingCorrupted, match="not the one the catalogue recorded"):
        verify_recording(path, "rec-1", KEY, later, signing_key.public_key(), digest)


def test_edited_manifest_is_refused(tmp_path: Path, signing_key: NodeSigningKey) -> None:
    path, signed = _seal(tmp_path, signing_key)
    fields = signed.fields()
    fields["call"]["caller"] = "+33999"
    edited = SignedManifest(canonical_json(fields), signed.signature)
    with pytest.raises(RecordingCorrupted, match="manifest signature does not verify"):
        verify_recording(path, "rec-1", KEY, edited, signing_key.public_key())


def test_manifest_signed_by_another_key_is_refused(
    tmp_path: Path, signing_key: NodeSigningKey
) -> None:
    path, signed = _seal(tmp_path, signing_key)
    other = NodeSigningKey.generate()
    with pytest.raises(RecordingCorrupted, match="signature does not verify"):
        verify_recording(path, "rec-1", KEY, signed, other.public_key())


def test_audio_replaced_by_a_validly_sealed_other_take_is_refused(
    tmp_path: Path, signing_key: NodeSigningKey
) -> None:
    """Someone holding the data key re-seals different audio: the digests give it away."""
    path, signed = _seal(tmp_path, signing_key)
    path.unlink()
    record_call(path, seconds=3)  # same id, same key, different nonces and bytes
    with pytest.raises(RecordingCorrupted, match="chunk 0 digest does not match"):
        verify_recording(path, "rec-1", KEY, signed, signing_key.public_key())


def test_flipped_audio_byte_is_refused(tmp_path: Path, signing_key: NodeSigningKey) -> None:
    path, signed = _seal(tmp_path, signing_key)
    data = bytearray(path.read_bytes())
    data[400] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingCorrupted, match="failed authentication"):
        verify_recording(path, "rec-1", KEY, signed, signing_key.public_key())


def test_manifest_for_another_recording_is_refused(
    tmp_path: Path, signing_key: NodeSigningKey
) -> None:
    _, signed = _seal(tmp_path, signing_key)
    other = record_call(tmp_path / "o.cwrec", recording_id="rec-2").path
    with pytest.raises(RecordingCorrupted, match="another recording"):
        verify_recording(other, "rec-2", KEY, signed, signing_key.public_key())


def test_incomplete_recording_gets_a_manifest_saying_so(
    tmp_path: Path, signing_key: NodeSigningKey
) -> None:
    path = tmp_path / "i.cwrec"
    clock = FakeClock()
    writer = SealedWriter.create(path, "rec-i", KEY, ["customer"], clock=clock)
    for start in range(0, 3 * RATE, 160):
        writer.write("customer", start, tone(440, 160, start))
    writer.abort()
    signed = seal_manifest(path, "rec-i", KEY, signing_key, sealed_at=SEALED_AT, call={})
    assert signed.fields()["complete"] is False
    assert signed.fields()["stereo"] is None
    assert verify_recording(path, "rec-i", KEY, signed, signing_key.public_key()).complete is False


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"when": datetime(2026, 1, 1)}, "call.when holds a datetime"),
        ({"x": float("nan")}, "non-finite"),
        ({1: "a"}, "key that is not a string"),
    ],
)
def test_metadata_must_be_plain(
    tmp_path: Path, signing_key: NodeSigningKey, call: dict[object, object], message: str
) -> None:
    path = record_call(tmp_path / "r.cwrec", seconds=1).path
    with pytest.raises(ValueError, match=message):
        seal_manifest(path, "rec-1", KEY, signing_key, sealed_at=SEALED_AT, call=call)  # type: ignore[arg-type]
    assert not (tmp_path / "r.cwrec.manifest.json").exists()


def test_manifest_json_is_what_was_signed(tmp_path: Path, signing_key: NodeSigningKey) -> None:
    path, signed = _seal(tmp_path, signing_key)
    on_disk = (tmp_path / "r.cwrec.manifest.json").read_bytes()
    assert on_disk == signed.body
    assert json.loads(on_disk)["sealed_file"]["bytes"] == path.stat().st_size
