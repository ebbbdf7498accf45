"""Chain-of-custody export: what a third party needs to check a recording used in a dispute.

The export is a directory (or a ``.zip`` of one) holding::

    README.txt                  how to verify, with standard tools (openssl, sha256sum, python)
    manifest.json               the signed manifest, byte for byte as sealed
    manifest.sig                its raw 64-byte Ed25519 signature
    node-signing-public.pem     the node's public key (check its fingerprint out of band)
    recording.cwrec             the sealed file itself (encrypted; its digest is in the manifest)
    stereo.wav                  customer left, operator right (when both tracks exist)
    tracks/<track>.wav          each track alone
    export.json                 who exported, when, why (not signed: the audit log holds it)
    SHA256SUMS                  sha256sum -c list of every file above

The WAV files are decrypted on purpose: this is the deliberate, audited export. Their SHA-256
are in the signed manifest (``tracks[].wav_sha256``, ``stereo.wav_sha256``), so the receiver
can check the audio they got is what was sealed. The recording is verified first; a corrupted
one is not exported.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from callwarden.recording.container import canonical_json
from callwarden.recording.manifest import SignedManifest
from callwarden.recording.reader import SealedReader
from callwarden.recording.signing import public_key_pem
from callwarden.recording.verify import VerificationResult, key_fingerprint, verify_recording
from callwarden.recording.wav import has_stereo, stereo_wav, track_wav, write_file

SEALED_NAME = "recording.cwrec"
README_NAME = "README.txt"


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    files: tuple[str, ...]
    verification: VerificationResult


def export_recording(
    path: Path,
    recording_id: str,
    data_key: bytes,
    signed: SignedManifest,
    public_key: Ed25519PublicKey,
    out: Path,
    *,
    exported_by: str,
    reason: str,
    exported_at: datetime,
    catalogued: str | None = None,
) -> ExportResult:
    """Verify (against the catalogue's manifest digest `catalogued` too, when given), then
    write the export to ``out`` (a new directory, or a ``.zip`` file)."""
    if out.exists():
        raise FileExistsError(f"{out} already exists")
    if not reason.strip():
        raise ValueError("an export needs a reason")
    verification = verify_recording(path, recording_id, data_key, signed, public_key, catalogued)
    who = {"exported_by": exported_by, "reason": reason, "exported_at": exported_at.isoformat()}
    sealed = (path, recording_id, data_key, signed, public_key)
    if out.suffix != ".zip":
        return ExportResult(out, _write_export(*sealed, out, who), verification)
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        files = _write_export(*sealed, Path(scratch) / out.stem, who)
        archive = shutil.make_archive(str(out.with_suffix("")), "zip", scratch, out.stem)
        Path(archive).chmod(0o600)
    return ExportResult(out, files, verification)


def _write_export(
    path: Path,
    recording_id: str,
    data_key: bytes,
    signed: SignedManifest,
    public_key: Ed25519PublicKey,
    folder: Path,
    who: dict[str, str],
) -> tuple[str, ...]:
    folder.mkdir(mode=0o700)
    (folder / "tracks").mkdir(mode=0o700)
    reader = SealedReader.open(path, recording_id, data_key)
    sums: dict[str, str] = {}
    sums["manifest.json"] = write_file(folder / "manifest.json", [signed.body])
    sums["manifest.sig"] = write_file(folder / "manifest.sig", [signed.signature])
    pem = public_key_pem(public_key)
    sums["node-signing-public.pem"] = write_file(folder / "node-signing-public.pem", [pem])
    with path.open("rb") as sealed:
        sums[SEALED_NAME] = write_file(
            folder / SEALED_NAME, iter(lambda: sealed.read(1 << 20), b"")
        )
    if has_stereo(reader):
        sums["stereo.wav"] = write_file(folder / "stereo.wav", stereo_wav(reader))
    for track in reader.tracks:
        name = f"tracks/{_safe(track)}.wav"
        sums[name] = write_file(folder / name, track_wav(reader, track))
    info = dict(who, recording_id=recording_id)
    sums["export.json"] = write_file(folder / "export.json", [canonical_json(info) + b"\n"])
    readme = readme_text(recording_id, key_fingerprint(public_key), reader.tracks).encode()
    sums[README_NAME] = write_file(folder / README_NAME, [readme])
    lines = "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items()))
    write_file(folder / "SHA256SUMS", [lines.encode()])
    return (*sorted(sums), "SHA256SUMS")


def _safe(track: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in track)
    return cleaned or hashlib.sha256(track.encode()).hexdigest()[:12]


def readme_text(recording_id: str, fingerprint: str, tracks: tuple[str, ...]) -> str:
    """Verification instructions a third party can follow with standard tools."""
    track_list = ", ".join(f"tracks/{_safe(t)}.wav" for t in tracks)
    checks = json.dumps(
        "import hashlib, json; m = json.load(open('manifest.json', 'rb')); "
        "h = lambda p: hashlib.sha256(open(p, 'rb').read()).hexdigest(); "
        "assert h('recording.cwrec') == m['sealed_file']['sha256']; "
        "[print(t['name'], h('tracks/' + t['name'] + '.wav') == t['wav_sha256']) "
        "for t in m['tracks']]; "
        "print('stereo', m['stereo'] is None or h('stereo.wav') == m['stereo']['wav_sha256'])"
    )
    return f"""Chain-of-custody export of callwarden recording {recording_id}

This folder holds a call recording as sealed by a callwarden node, and what you need to
check that it has not been altered since it was sealed.

Files: manifest.json (signed description of the recording), manifest.sig (its Ed25519
signature, 64 raw bytes), node-signing-public.pem (the node's public key), recording.cwrec
(the sealed, encrypted recording), stereo.wav (customer left, operator right), {track_list}
(each voice alone), export.json (who exported it, when and why), SHA256SUMS.

1. Check the public key is the node's. Its SHA-256 fingerprint is
       {fingerprint}
   Compute it with
       openssl pkey -pubin -in node-signing-public.pem -outform DER | sha256sum
   and compare it with the fingerprint the call center publishes or gives you separately
   (not from this folder).

2. Check the signature of the manifest (OpenSSL 3.0 or later):
       openssl pkeyutl -verify -pubin -inkey node-signing-public.pem -rawin \\
           -in manifest.json -sigfile manifest.sig
   It must print "Signature Verified Successfully". Or, with python's cryptography package:
       python3 -c "from cryptography.hazmat.primitives.serialization import \\
load_pem_public_key as l; l(open('node-signing-public.pem','rb').read()).verify(\\
open('manifest.sig','rb').read(), open('manifest.json','rb').read()); print('ok')"

3. Check the files against the signed manifest. Compute
       sha256sum recording.cwrec stereo.wav tracks/*.wav
   and compare: recording.cwrec with "sealed_file"."sha256", each tracks/NAME.wav with the
   "wav_sha256" of the track NAME in "tracks", stereo.wav with "stereo"."wav_sha256".
   The same in one command:
       python3 -c {checks}

4. Optional: sha256sum -c SHA256SUMS checks nothing was damaged in transfer. It is not
   proof on its own (anyone can rewrite that file); steps 1 to 3 are.

The manifest also lists the SHA-256 of every chunk of the sealed file ("chunk_sha256"),
the pause intervals (paused stretches hold no audio at all), and whether the recording was
complete or cut short (for example by a server crash). Sample positions are at 8000 Hz.
"""
