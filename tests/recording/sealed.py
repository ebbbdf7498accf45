"""Real sealed recordings for tests: tones written by the sealed writer (rec-seal's), the data
key wrapped by a file key ring, the row created and closed through the repository. They are
made without a manifest (as a recording closed with "manifest not written"); a test that signs
one records its digest in the catalogue with `catalogue_manifest`, as the recorder does."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import CallId, QueueId, RecordingId, TeamId, UserId
from callwarden.recording.keyring import FileKeyRing, new_data_key
from callwarden.recording.models import NewRecording, Recording, RecordingStatus
from callwarden.recording.numbers import NumberProtector
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.storage import LocalStorage, recording_storage_key
from callwarden.recording.writer import SealedWriter
from callwarden.store.schema import RecordingRow

SAMPLE_RATE = 8000
FRAME = 160
CUSTOMER_HZ = 440.0
OPERATOR_HZ = 880.0


def tone(frequency: float, start: int, samples: int, amplitude: int = 8000) -> np.ndarray:
    t = (np.arange(start, start + samples)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


@dataclass(frozen=True)
class Owner:
    team_id: TeamId | None
    queue_id: QueueId | None
    operator_id: UserId | None


@dataclass
class Sealer:
    """Makes sealed recordings in `storage`, keys wrapped by `keyring`."""

    sessions: sessionmaker[Session]
    numbers: NumberProtector
    storage: LocalStorage
    keyring: FileKeyRing

    def make(
        self,
        owner: Owner,
        *,
        started_at: datetime,
        seconds: float = 2.0,
        caller: str | None = "+49 30 1234567",
        call_id: str | None = None,
        status: RecordingStatus = RecordingStatus.COMPLETE,
    ) -> Recording:
        recording_id = RecordingId(uuid.uuid4().hex)
        key = recording_storage_key(recording_id, started_at)
        data_key = new_data_key()
        wrapped = self.keyring.wrap(data_key, recording_id)
        path = self.storage.path_for_writing(key)
        writer = SealedWriter.create(path, recording_id, data_key, ["customer", "operator"])
        total = int(seconds * SAMPLE_RATE)
        for start in range(0, total, FRAME):
            writer.write("customer", start, tone(CUSTOMER_HZ, start, FRAME))
            writer.write("operator", start, tone(OPERATOR_HZ, start, FRAME))
        summary = writer.close(total)
        new = NewRecording(
            recording_id=recording_id,
            call_id=CallId(call_id or f"call-{recording_id[:8]}"),
            direction=CallDirection.INBOUND,
            started_at=started_at,
            storage_key=key,
            kek_id=wrapped.key_id,
            wrapped_key=wrapped.blob,
            queue_id=owner.queue_id,
            team_id=owner.team_id,
            operator_id=owner.operator_id,
            caller_number=caller,
        )
        with self.sessions() as session, session.begin():
            repository = RecordingRepository(session, self.numbers)
            repository.create(new)
            return repository.close(
                recording_id,
                status=status,
                ended_at=started_at + timedelta(seconds=seconds),
                duration_ms=int(seconds * 1000),
                manifest_digest=None,  # no manifest written: see `catalogue_manifest`
                size_bytes=summary.file_bytes,
            )


def catalogue_manifest(sessions: sessionmaker[Session], recording_id: str, body: bytes) -> None:
    """Record the SHA-256 of the manifest `body` signed for `recording_id` in its catalogue row,
    as the recorder and the recovery do when they close a recording."""
    with sessions() as session, session.begin():
        session.execute(
            update(RecordingRow)
            .where(RecordingRow.id == recording_id)
            .values(manifest_digest=hashlib.sha256(body).hexdigest())
        )
