"""The signed manifest of a sealed recording.

Written on completion (and for an incomplete recording found after a crash): call metadata
(given by the caller as plain JSON values), participants, tracks, pause intervals, monitoring
sessions, the SHA-256 of every record of the sealed file and of the whole file, and the SHA-256
of the canonical WAV renderings (:mod:`callwarden.recording.wav`) so an exported WAV can be
matched to what was sealed. The body is canonical JSON (sorted keys, no whitespace, UTF-8) and
is signed as is with the node's Ed25519 key; the signature is the raw 64 bytes.

Beside a sealed file ``X`` the manifest is stored as ``X.manifest.json`` and ``X.manifest.sig``
(written to a temporary name, fsync'd, renamed).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from callwarden.recording.container import CODEC, SAMPLE_RATE, canonical_json
from callwarden.recording.reader import STEREO_LEFT, STEREO_RIGHT, SealedReader
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.wav import has_stereo, sha256_of, stereo_wav, track_wav

FORMAT = "callwarden-recording-manifest/1"
MAX_DEPTH = 8

JsonPlain = None | bool | int | float | str | list["JsonPlain"] | dict[str, "JsonPlain"]


@dataclass(frozen=True, slots=True)
class SignedManifest:
    """The manifest's canonical bytes and their Ed25519 signature."""

    body: bytes
    signature: bytes

    def fields(self) -> dict[str, Any]:
        value = json.loads(self.body)
        if not isinstance(value, dict):
            raise ValueError("a manifest is a JSON object")
        return value

    def save(self, sealed_path: Path) -> tuple[Path, Path]:
        """Store beside ``sealed_path`` (atomic replace); returns (manifest, signature) paths."""
        body_path, signature_path = manifest_paths(sealed_path)
        _write_atomic(body_path, self.body)
        _write_atomic(signature_path, self.signature)
        return body_path, signature_path

    @classmethod
    def load(cls, sealed_path: Path) -> SignedManifest:
        body_path, signature_path = manifest_paths(sealed_path)
        return cls(body_path.read_bytes(), signature_path.read_bytes())


def manifest_paths(sealed_path: Path) -> tuple[Path, Path]:
    return (
        sealed_path.with_name(sealed_path.name + ".manifest.json"),
        sealed_path.with_name(sealed_path.name + ".manifest.sig"),
    )


def check_plain(value: object, where: str = "metadata", depth: int = 0) -> None:
    """Refuse anything but plain JSON values (``ValueError`` naming where)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{where} is nested too deeply")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} holds a non-finite number")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_plain(item, f"{where}[{index}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a key that is not a string: {key!r}")
            check_plain(item, f"{where}.{key}", depth + 1)
        return
    raise ValueError(f"{where} holds a {type(value).__name__}, not a plain JSON value")


def build_manifest(
    reader: SealedReader,
    *,
    sealed_at: datetime,
    call: Mapping[str, object],
    participants: Sequence[Mapping[str, object]] = (),
    monitoring_sessions: Sequence[Mapping[str, object]] = (),
) -> dict[str, Any]:
    """The manifest fields of an opened (so authenticated) recording."""
    check_plain(dict(call), "call")
    check_plain([dict(p) for p in participants], "participants")
    check_plain([dict(m) for m in monitoring_sessions], "monitoring_sessions")
    if sealed_at.tzinfo is None:
        raise ValueError("sealed_at must carry a time zone")
    stereo = None
    if has_stereo(reader):
        stereo = {
            "left": STEREO_LEFT,
            "right": STEREO_RIGHT,
            "wav_sha256": sha256_of(stereo_wav(reader)),
        }
    return {
        "format": FORMAT,
        "recording_id": reader.recording_id,
        "sealed_at": sealed_at.isoformat(),
        "complete": reader.complete,
        "call": dict(call),
        "participants": [dict(p) for p in participants],
        "monitoring_sessions": [dict(m) for m in monitoring_sessions],
        "audio": {
            "codec": CODEC,
            "sample_rate": SAMPLE_RATE,
            "duration_samples": reader.duration_samples,
        },
        "tracks": [
            {
                "name": name,
                "duration_samples": reader.track_duration(name),
                "wav_sha256": sha256_of(track_wav(reader, name)),
            }
            for name in reader.tracks
        ],
        "stereo": stereo,
        "pauses": [{"start_samples": p.start, "end_samples": p.end} for p in reader.pauses],
        "sealed_file": {
            "sha256": reader.file_sha256,
            "bytes": reader.file_bytes,
            "chunk_count": len(reader.chunk_digests),
        },
        "chunk_sha256": list(reader.chunk_digests),
    }


def sign_manifest(fields: Mapping[str, Any], key: NodeSigningKey) -> SignedManifest:
    body = canonical_json(dict(fields))
    return SignedManifest(body, key.sign(body))


def seal_manifest(
    path: Path,
    recording_id: str,
    data_key: bytes,
    key: NodeSigningKey,
    *,
    sealed_at: datetime,
    call: Mapping[str, object],
    participants: Sequence[Mapping[str, object]] = (),
    monitoring_sessions: Sequence[Mapping[str, object]] = (),
) -> SignedManifest:
    """Open the sealed file, build and sign its manifest, store it beside the file."""
    reader = SealedReader.open(path, recording_id, data_key)
    fields = build_manifest(
        reader,
        sealed_at=sealed_at,
        call=call,
        participants=participants,
        monitoring_sessions=monitoring_sessions,
    )
    signed = sign_manifest(fields, key)
    signed.save(path)
    return signed


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
