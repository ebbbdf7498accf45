"""Verify a sealed recording against its signed manifest.

:func:`verify_recording` checks, in order: the manifest's Ed25519 signature; that it names this
recording; when the catalogue recorded the manifest's SHA-256 at close, that it is that manifest;
that every record of the sealed file is in sequence and authenticates (AES-GCM, so
the audio decrypts); the SHA-256 of every record and of the whole file against the manifest;
completeness; and the SHA-256 of each canonical WAV rendering. The first failure raises
:class:`RecordingCorrupted` naming it; success returns a :class:`VerificationResult`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.manifest import FORMAT, SignedManifest
from callwarden.recording.reader import SealedReader
from callwarden.recording.signing import signature_valid
from callwarden.recording.wav import sha256_of, stereo_wav, track_wav

_Fail = Callable[[str], RecordingCorrupted]


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """What was checked, for a recording that passed every check."""

    recording_id: str
    complete: bool
    chunk_count: int
    duration_samples: int
    file_sha256: str
    signer_fingerprint: str
    checks: tuple[str, ...]


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the DER public key: ``openssl pkey -pubin -outform DER | sha256sum``."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def verify_recording(
    path: Path,
    recording_id: str,
    data_key: bytes,
    signed: SignedManifest,
    public_key: Ed25519PublicKey,
    catalogued: str | None = None,
) -> VerificationResult:
    """Check ``path`` against ``signed``; raises :class:`RecordingCorrupted` on any mismatch.
    ``catalogued`` is the manifest's SHA-256 as the catalogue recorded it (its row's
    ``manifest_digest``), when the check runs against the catalogue; a copy outside it (a
    chain-of-custody export) has none."""

    def fail(reason: str) -> RecordingCorrupted:
        return RecordingCorrupted(recording_id, reason)

    if not signature_valid(public_key, signed.body, signed.signature):
        raise fail("manifest signature does not verify (manifest or signature altered)")
    try:
        manifest = signed.fields()
    except ValueError as exc:
        raise fail(f"manifest is not readable JSON: {exc}") from None
    checks = ["signature"]
    if manifest.get("format") != FORMAT or manifest.get("recording_id") != recording_id:
        raise fail("manifest is for another recording or format")
    if catalogued is not None:
        if not hmac.compare_digest(hashlib.sha256(signed.body).hexdigest(), catalogued):
            raise fail("manifest is not the one the catalogue recorded")
        checks.append("catalogue digest")
    reader = SealedReader.open(path, recording_id, data_key)
    checks.append("chunks authenticate and decrypt")
    _check_digests(manifest, reader, fail)
    checks += ["chunk digests", "file digest", "completeness"]
    _check_audio(manifest, reader, fail)
    checks.append("audio digests")
    return VerificationResult(
        recording_id=recording_id,
        complete=reader.complete,
        chunk_count=len(reader.chunk_digests),
        duration_samples=reader.duration_samples,
        file_sha256=reader.file_sha256,
        signer_fingerprint=key_fingerprint(public_key),
        checks=tuple(checks),
    )


def _check_digests(manifest: dict[str, Any], reader: SealedReader, fail: _Fail) -> None:
    expected = manifest.get("chunk_sha256")
    if not isinstance(expected, list):
        raise fail("manifest lists no chunk digests")
    for number, (want, have) in enumerate(zip(expected, reader.chunk_digests, strict=False)):
        if want != have:
            raise fail(f"chunk {number} digest does not match the manifest")
    if len(expected) != len(reader.chunk_digests):
        raise fail(
            f"manifest lists {len(expected)} chunks, the file has {len(reader.chunk_digests)}"
        )
    sealed = manifest.get("sealed_file") or {}
    if sealed.get("sha256") != reader.file_sha256 or sealed.get("bytes") != reader.file_bytes:
        raise fail("whole-file digest does not match the manifest")
    if reader.path.stat().st_size != reader.file_bytes:
        raise fail("file has bytes after its last chunk")
    if manifest.get("complete") is not reader.complete:
        raise fail("completeness does not match the manifest")


def _check_audio(manifest: dict[str, Any], reader: SealedReader, fail: _Fail) -> None:
    tracks = manifest.get("tracks")
    if not isinstance(tracks, list) or [t.get("name") for t in tracks] != list(reader.tracks):
        raise fail("manifest track list does not match the file")
    for track in tracks:
        if sha256_of(track_wav(reader, track["name"])) != track.get("wav_sha256"):
            raise fail(f"audio of track {track['name']} does not match the manifest")
    stereo = manifest.get("stereo")
    if stereo is not None:
        rendered = stereo_wav(reader, stereo["left"], stereo["right"])
        if sha256_of(rendered) != stereo.get("wav_sha256"):
            raise fail("stereo audio does not match the manifest")
