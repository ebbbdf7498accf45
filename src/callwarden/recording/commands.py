"""``callwarden recording verify ID`` and ``callwarden recording export ID OUT``.

A recording is located either in the catalogue (the ``recordings`` table: its storage key in
the storage backend, a local directory or an object store; its KEK id and wrapped data key)
or, for a file outside any catalogue, by an explicit path and wrapped key
(``<kek_id>:<base64>``). The data key is unwrapped with the key ring; the manifest is read from
beside the sealed file and checked with the public half of the node's signing key. Exit status:
0 verified (or exported), 1 corrupted, 2 cannot run. Nothing here writes to the database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from callwarden.recording.errors import KeyUnavailable, RecordingCorrupted
from callwarden.recording.export import export_recording
from callwarden.recording.keyring import KeyEncryptionService, WrappedKey
from callwarden.recording.manifest import SignedManifest
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import RecordingStorage
from callwarden.recording.verify import VerificationResult, verify_recording
from callwarden.store.database import Database
from callwarden.store.schema import RecordingRow

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CORRUPTED = 1
EXIT_CANNOT_RUN = 2


class RecordingCommandError(Exception):
    """The command cannot run: recording unknown, key destroyed, file or manifest missing."""


@dataclass(frozen=True, slots=True)
class SealedLocation:
    """Where a sealed recording is, the wrapped key that opens it and, from the catalogue, the
    SHA-256 of the manifest signed at close (None for a file outside it, or none recorded)."""

    path: Path
    wrapped: WrappedKey
    manifest_digest: str | None = None


#: Opens a recording's sealed file: a local path for the duration of the ``with`` (the file
#: itself, or a ciphertext copy from an object store), and its wrapped key.
Locator = Callable[[str], AbstractContextManager[SealedLocation]]
#: Records an export attempt (recording id, succeeded, destination or error) in the audit log;
#: raising means it could not be recorded, and then a written export is removed again.
ExportRecorder = Callable[[str, bool, str], None]


def catalogue_locator(database: Database, storage: RecordingStorage) -> Locator:
    """Find recordings in the ``recordings`` table; their files in ``storage``."""

    @contextlib.contextmanager
    def locate(recording_id: str) -> Iterator[SealedLocation]:
        query = select(
            RecordingRow.storage_key,
            RecordingRow.kek_id,
            RecordingRow.wrapped_key,
            RecordingRow.manifest_digest,
        )
        try:
            with database.sessions() as session:
                row = session.execute(query.where(RecordingRow.id == recording_id)).one_or_none()
        except SQLAlchemyError as error:
            raise RecordingCommandError(f"cannot read the recordings catalogue: {error}") from None
        if row is None:
            raise RecordingCommandError(f"no recording {recording_id}")
        storage_key, kek_id, wrapped_key, manifest_digest = row
        if kek_id is None or wrapped_key is None:
            raise RecordingCommandError(f"recording {recording_id}: its key was destroyed")
        with contextlib.ExitStack() as stack:
            try:
                path = stack.enter_context(storage.local_copy(storage_key))
            except FileNotFoundError:
                raise RecordingCommandError(
                    f"recording {recording_id}: no file for {storage_key}"
                ) from None
            yield SealedLocation(path, WrappedKey(kek_id, wrapped_key), manifest_digest)

    return locate


def file_locator(path: Path, wrapped_key: str) -> Locator:
    """One sealed file outside the catalogue, with its wrapped key as text."""
    try:
        wrapped = WrappedKey.decode(wrapped_key)
    except ValueError as error:
        raise RecordingCommandError(str(error)) from None
    return lambda _recording_id: contextlib.nullcontext(SealedLocation(path, wrapped))


@dataclass(frozen=True, slots=True)
class RecordingTools:
    """What both commands need: where recordings are, the key ring, the node's key."""

    locate: Locator
    keys: KeyEncryptionService
    signing_key_path: Path

    @contextlib.contextmanager
    def opened(self, recording_id: str) -> Iterator[tuple[SealedLocation, bytes, SignedManifest]]:
        """The sealed file (local for the ``with``), its data key and its manifest."""
        with self.locate(recording_id) as location:
            if not location.path.is_file():
                raise RecordingCommandError(f"recording {recording_id}: no file {location.path}")
            try:
                data_key = self.keys.unwrap(location.wrapped, recording_id)
            except KeyUnavailable as error:
                raise RecordingCommandError(error.message) from None
            try:
                signed = SignedManifest.load(location.path)
            except FileNotFoundError as error:
                raise RecordingCommandError(
                    f"recording {recording_id}: no manifest ({error})"
                ) from None
            yield location, data_key, signed

    def signing_key(self) -> NodeSigningKey:
        if not self.signing_key_path.is_file():
            raise RecordingCommandError(f"no node signing key at {self.signing_key_path}")
        return NodeSigningKey.load_or_create(self.signing_key_path)


def _report(result: VerificationResult) -> str:
    return json.dumps(
        {
            "recording_id": result.recording_id,
            "verified": True,
            "complete": result.complete,
            "chunks": result.chunk_count,
            "duration_seconds": result.duration_samples / 8000,
            "file_sha256": result.file_sha256,
            "signer_fingerprint": result.signer_fingerprint,
            "checks": list(result.checks),
        },
        sort_keys=True,
    )


def verify_command(tools: RecordingTools, recording_id: str, out: TextIO) -> int:
    """Check signature, digests and decryption; one JSON line on ``out``."""
    with tools.opened(recording_id) as (location, data_key, signed):
        public_key = tools.signing_key().public_key()
        try:
            result = verify_recording(
                location.path, recording_id, data_key, signed, public_key, location.manifest_digest
            )
        except RecordingCorrupted as error:
            out.write(json.dumps({"recording_id": recording_id, "verified": False,
                                  "error": error.message}, sort_keys=True) + "\n")  # fmt: skip
            logger.error("%s", error.message)
            return EXIT_CORRUPTED
    out.write(_report(result) + "\n")
    return EXIT_OK


def export_command(
    tools: RecordingTools,
    recording_id: str,
    destination: Path,
    *,
    exported_by: str,
    reason: str,
    now: datetime,
    out: TextIO,
    record: ExportRecorder,
) -> int:
    """Verify, write the chain-of-custody export to ``destination`` (dir or .zip), audit it.

    The export holds decrypted audio, so it is kept only once ``record`` has succeeded.
    """
    with tools.opened(recording_id) as (location, data_key, signed):
        public_key = tools.signing_key().public_key()
        try:
            result = export_recording(
                location.path, recording_id, data_key, signed, public_key, destination,
                exported_by=exported_by, reason=reason, exported_at=now,
                catalogued=location.manifest_digest,
            )  # fmt: skip
        except RecordingCorrupted as error:
            out.write(f"not exported: {error.message}\n")
            logger.error("%s", error.message)
            record(recording_id, False, error.message)
            return EXIT_CORRUPTED
        except (FileExistsError, ValueError) as error:
            raise RecordingCommandError(str(error)) from None
    try:
        record(recording_id, True, str(result.path))
    except Exception as error:
        _remove(result.path)
        raise RecordingCommandError(
            f"export removed: it could not be recorded in the audit log ({error})"
        ) from error
    out.write(f"recording {recording_id} verified and exported to {result.path}\n")
    logger.warning(
        "recording %s exported (decrypted audio) to %s by %s: %s",
        recording_id,
        result.path,
        exported_by,
        reason,
    )
    return EXIT_OK


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
