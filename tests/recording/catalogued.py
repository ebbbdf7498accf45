"""An open catalogue row for storage and recovery tests: a recording RECORDING in the
`recordings` table with its data key wrapped by a file key ring (the sealed file is the test's
to write)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import CallId, RecordingId, TeamId, UserId
from callwarden.recording.keyring import FileKeyRing, new_data_key
from callwarden.recording.models import NewRecording
from callwarden.recording.numbers import SealedNumbers
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.storage import recording_storage_key

START = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
NUMBERS = SealedNumbers(bytes(32))


@dataclass(frozen=True)
class OpenRow:
    recording_id: RecordingId
    data_key: bytes
    storage_key: str


def open_row(
    sessions: sessionmaker[Session],
    keys: FileKeyRing,
    team_id: TeamId,
    *,
    operator_id: UserId | None = None,
    node_id: str | None = None,
) -> OpenRow:
    recording_id = RecordingId(uuid.uuid4().hex)
    data_key = new_data_key()
    wrapped = keys.wrap(data_key, recording_id)
    key = recording_storage_key(recording_id, START)
    with sessions() as session, session.begin():
        RecordingRepository(session, NUMBERS).create(
            NewRecording(
                recording_id=recording_id,
                call_id=CallId(f"{recording_id}@example"),
                direction=CallDirection.INBOUND,
                started_at=START,
                storage_key=key,
                kek_id=wrapped.key_id,
                wrapped_key=wrapped.blob,
                team_id=team_id,
                operator_id=operator_id,
                node_id=node_id,
            )
        )
    return OpenRow(recording_id, data_key, key)
