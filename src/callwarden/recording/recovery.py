"""Crash recovery: close the recordings a stopped node left open.

A node killed mid-call (``kill -9``, power loss) leaves its recordings RECORDING in the
catalogue and their sealed files without a trailer; at most the last ``flush_interval`` (2 s)
of audio was still in memory. At start-up, before any call, :func:`recover_open_recordings`
takes each such file from the storage backend (`reclaim`: the local file, or for an object
store the spool copy or the parts shipped before the crash), opens it with its data key, cuts a
record torn by the crash (the bytes after the last whole record: never readable, never
authenticated), writes the signed manifest over what is readable, `commit`s file and manifest
to the backend and closes the row as INCOMPLETE with the duration that survived. A recording
whose file is missing or holds nothing readable is marked FAILED. Blocking: run it in a thread.

Several nodes share a catalogue: each row names the node recording it (`recordings.node_id`),
and a node's start-up recovery closes only its own open recordings (and rows no node claims,
from before revision 0011), never another node's live ones. A node's id is the configured
`node_id`, else one made once and kept in `<data_dir>/node-id` (`node_identity`), so it stays
the same across restarts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from callwarden.domain.ids import RecordingId
from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.keyring import KeyEncryptionService, WrappedKey
from callwarden.recording.manifest import seal_manifest
from callwarden.recording.models import Recording, RecordingStatus
from callwarden.recording.numbers import NumberProtector
from callwarden.recording.reader import SealedReader
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import RecordingStorage

logger = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What start-up recovery did: recording ids closed incomplete, and marked failed."""

    incomplete: tuple[str, ...]
    failed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecoveryServices:
    sessions: SessionFactory
    numbers: NumberProtector
    keys: KeyEncryptionService
    storage: RecordingStorage
    signing_key: NodeSigningKey
    wall_clock: Callable[[], datetime]
    #: This node's id (`node_identity`): start-up recovery closes only its recordings (and
    #: those no node claims); None closes every open one (a single node).
    node_id: str | None = None


def recover_open_recordings(services: RecoveryServices) -> RecoveryReport:
    """Close every recording this node left RECORDING (see the module docstring)."""
    with services.sessions() as session:
        repository = RecordingRepository(session, services.numbers)
        open_recordings = repository.find_open(services.node_id)
    incomplete: list[str] = []
    failed: list[str] = []
    for recording in open_recordings:
        try:
            recovered = _recover(services, recording)
        except Exception as error:  # one bad recording must not stop the node from starting
            logger.exception("recording %s: recovery failed", recording.id)
            _mark_failed(services, recording, f"recovery failed: {type(error).__name__}")
            failed.append(recording.id)
            continue
        (incomplete if recovered else failed).append(recording.id)
    if open_recordings:
        logger.warning(
            "crash recovery: %d recordings closed incomplete, %d failed",
            len(incomplete),
            len(failed),
        )
    services.storage.finish_pending()  # an object store that refused a commit before
    return RecoveryReport(tuple(incomplete), tuple(failed))


def recover_recording(services: RecoveryServices, recording_id: RecordingId) -> bool:
    """Close one recording whose media process is gone (its worker died mid-call) the way
    start-up recovery does; True if closed INCOMPLETE, False if marked FAILED."""
    with services.sessions() as session:
        recording = RecordingRepository(session, services.numbers).get(recording_id)
    if recording.status is not RecordingStatus.RECORDING:
        return recording.status.playable
    try:
        return _recover(services, recording)
    except Exception as error:
        logger.exception("recording %s: recovery failed", recording.id)
        _mark_failed(services, recording, f"recovery failed: {type(error).__name__}")
        return False


def _recover(services: RecoveryServices, recording: Recording) -> bool:
    if recording.wrapped_key is None or recording.kek_id is None:
        _mark_failed(services, recording, "no data key")
        return False
    data_key = services.keys.unwrap(
        WrappedKey(recording.kek_id, recording.wrapped_key), recording.id
    )
    path = services.storage.reclaim(recording.storage_key)
    if path is None:
        _mark_failed(services, recording, "no sealed file")
        return False
    try:
        reader = SealedReader.open(path, recording.id, data_key, allow_torn_tail=True)
    except RecordingCorrupted as error:
        _mark_failed(services, recording, f"unreadable: {error.reason}")
        return False
    if reader.torn_tail_bytes:
        logger.warning(
            "recording %s: cutting %d bytes of a record torn by the crash",
            recording.id,
            reader.torn_tail_bytes,
        )
        _truncate(path, reader.file_bytes)
    duration_ms = reader.duration_samples * 1000 // reader.sample_rate
    ended_at = recording.started_at + timedelta(milliseconds=duration_ms)
    signed = seal_manifest(
        path,
        recording.id,
        data_key,
        services.signing_key,
        sealed_at=services.wall_clock(),
        call=_call_metadata(recording, ended_at),
    )
    services.storage.commit(recording.storage_key)
    with services.sessions() as session, session.begin():
        RecordingRepository(session, services.numbers).close(
            recording.id,
            status=RecordingStatus.INCOMPLETE,
            ended_at=ended_at,
            duration_ms=duration_ms,
            manifest_digest=hashlib.sha256(signed.body).hexdigest(),
            size_bytes=reader.file_bytes,
        )
    logger.info("recording %s: recovered, %.1f s playable", recording.id, duration_ms / 1000)
    return True


NODE_ID_FILE = "node-id"
_NODE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def node_identity(data_dir: Path, configured: str | None = None) -> str:
    """This node's id for its recordings: `configured` (the `node_id` setting), else the one in
    `<data_dir>/node-id`, made once (``node-`` and 12 random hex digits, 0600)."""
    if configured is not None:
        if not _NODE_ID.fullmatch(configured):
            raise ValueError(f"node id {configured!r}: 1 to 64 letters, digits, '.', '_' or '-'")
        return configured
    path = data_dir / NODE_ID_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text(encoding="ascii").strip()
        if not _NODE_ID.fullmatch(value):
            raise ValueError(f"{path} does not hold a node id (found {value[:70]!r})") from None
        return value
    value = f"node-{secrets.token_hex(6)}"
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(value + "\n")
        file.flush()
        os.fsync(file.fileno())
    return value


def _call_metadata(recording: Recording, ended_at: datetime) -> dict[str, object]:
    return {
        "call_id": str(recording.call_id),
        "direction": recording.direction.value,
        "queue_id": recording.queue_id,
        "team_id": recording.team_id,
        "operator_id": recording.operator_id,
        "started_at": recording.started_at.isoformat(),
        "ended_at": ended_at.isoformat(),
        "failure": "recovered after its media process stopped mid-recording",
    }


def _truncate(path: Path, size: int) -> None:
    descriptor = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(descriptor, size)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _mark_failed(services: RecoveryServices, recording: Recording, reason: str) -> None:
    logger.error("recording %s: closed as failed at recovery: %s", recording.id, reason)
    with services.sessions() as session, session.begin():
        RecordingRepository(session, services.numbers).mark_failed(
            recording.id, reason, ended_at=services.wall_clock()
        )
