"""Chain-of-custody export: a third party verifies it following the README's steps."""

from __future__ import annotations

import hashlib
import json
import subprocess
import wave
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.export import export_recording
from callwarden.recording.manifest import seal_manifest
from callwarden.recording.signing import NodeSigningKey

from .sealing import KEY, RATE, record_call, ulaw_roundtrip

WHEN = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _export(tmp_path: Path, out: Path) -> tuple[Path, np.ndarray, np.ndarray, NodeSigningKey]:
    key = NodeSigningKey.generate()
    written = record_call(tmp_path / "r.cwrec", seconds=2)
    signed = seal_manifest(written.path, "rec-1", KEY, key, sealed_at=WHEN, call={"id": "c1"})
    export_recording(
        written.path, "rec-1", KEY, signed, key.public_key(), out,
        exported_by="auditor-1", reason="dispute #123", exported_at=WHEN,
    )  # fmt: skip
    return out, written.customer, written.operator, key


def _third_party_checks(folder: Path, fingerprint_of: NodeSigningKey) -> None:
    """The README's steps, done with python's cryptography and hashlib."""
    pem = (folder / "node-signing-public.pem").read_bytes()
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, Ed25519PublicKey)
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fingerprint = hashlib.sha256(der).hexdigest()
    assert fingerprint in (folder / "README.txt").read_text()
    assert fingerprint_of.public_key_pem() == pem  # step 1: the key is the node's
    body = (folder / "manifest.json").read_bytes()
    public.verify((folder / "manifest.sig").read_bytes(), body)  # step 2 (raises if bad)
    manifest = json.loads(body)
    assert _sha256(folder / "recording.cwrec") == manifest["sealed_file"]["sha256"]  # step 3
    for track in manifest["tracks"]:
        assert _sha256(folder / "tracks" / f"{track['name']}.wav") == track["wav_sha256"]
    assert _sha256(folder / "stereo.wav") == manifest["stereo"]["wav_sha256"]
    for line in (folder / "SHA256SUMS").read_text().splitlines():  # step 4
        digest, name = line.split("  ")
        assert _sha256(folder / name) == digest


def test_export_directory_verifies_with_documented_steps(tmp_path: Path) -> None:
    folder, customer, operator, key = _export(tmp_path, tmp_path / "export")
    _third_party_checks(folder, key)
    with wave.open(str(folder / "stereo.wav")) as stereo:
        assert (stereo.getnchannels(), stereo.getframerate(), stereo.getsampwidth()) == (2, RATE, 2)
        frames = np.frombuffer(stereo.readframes(stereo.getnframes()), "<i2").reshape(-1, 2)
    assert np.array_equal(frames[:, 0], ulaw_roundtrip(customer))  # customer left
    assert np.array_equal(frames[:, 1], ulaw_roundtrip(operator))  # operator right
    info = json.loads((folder / "export.json").read_bytes())
    assert info == {
        "exported_at": WHEN.isoformat(),
        "exported_by": "auditor-1",
        "reason": "dispute #123",
        "recording_id": "rec-1",
    }


def test_export_openssl_and_sha256sum_as_in_the_readme(tmp_path: Path) -> None:
    folder, _, _, _ = _export(tmp_path, tmp_path / "export")
    verified = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "node-signing-public.pem",
         "-rawin", "-in", "manifest.json", "-sigfile", "manifest.sig"],
        cwd=folder, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Signature Verified Successfully" in verified.stdout, verified.stderr
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True, check=False
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr
    (folder / "manifest.json").write_bytes((folder / "manifest.json").read_bytes() + b" ")
    refused = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "node-signing-public.pem",
         "-rawin", "-in", "manifest.json", "-sigfile", "manifest.sig"],
        cwd=folder, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Signature Verification Failure" in refused.stdout + refused.stderr


def test_readme_one_liner_runs(tmp_path: Path) -> None:
    folder, _, _, _ = _export(tmp_path, tmp_path / "export")
    readme = (folder / "README.txt").read_text()
    command = readme.split("The same in one command:\n")[1].splitlines()[0].strip()
    done = subprocess.run(
        command, shell=True, cwd=folder, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["customer", "True", "operator", "True", "stereo", "True"]


def test_export_zip(tmp_path: Path) -> None:
    out, _, _, key = _export(tmp_path, tmp_path / "case-123.zip")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        assert "case-123/manifest.json" in names and "case-123/tracks/customer.wav" in names
        archive.extractall(tmp_path / "unzipped")
    _third_party_checks(tmp_path / "unzipped" / "case-123", key)
    assert not any(p.name.startswith("tmp") for p in tmp_path.iterdir())


def test_corrupted_recording_is_not_exported(tmp_path: Path) -> None:
    key = NodeSigningKey.generate()
    path = record_call(tmp_path / "r.cwrec", seconds=2).path
    signed = seal_manifest(path, "rec-1", KEY, key, sealed_at=WHEN, call={})
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingCorrupted):
        export_recording(
            path, "rec-1", KEY, signed, key.public_key(), tmp_path / "out",
            exported_by="a", reason="r", exported_at=WHEN,
        )  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_export_needs_a_reason_and_a_new_place(tmp_path: Path) -> None:
    key = NodeSigningKey.generate()
    path = record_call(tmp_path / "r.cwrec", seconds=1).path
    signed = seal_manifest(path, "rec-1", KEY, key, sealed_at=WHEN, call={})
    with pytest.raises(ValueError, match="needs a reason"):
        export_recording(
            path, "rec-1", KEY, signed, key.public_key(), tmp_path / "out",
            exported_by="a", reason=" ", exported_at=WHEN,
        )  # fmt: skip
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError):
        export_recording(
            path, "rec-1", KEY, signed, key.public_key(), tmp_path / "taken",
            exported_by="a", reason="r", exported_at=WHEN,
        )  # fmt: skip
