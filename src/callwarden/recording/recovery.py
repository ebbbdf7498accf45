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

Only a node's own recordings should be recovered by it when several nodes share a catalogue;
this is the single-node case (every RECORDING row at start-up belongs to a dead process).
"""

from __future__ import annotations

import hashlib
import logging
import os
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


def recover_open_recordings(services: RecoveryServices) -> RecoveryReport:
    """Close every recording left RECORDING (see the module docstring)."""
    with services.sessions() as session:
        open_recordings = RecordingRepository(session, services.numbers).find_open()
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
