"""Recordings in the web tests' world: the service the recording routes use, over the same
database, with real sealed files in a temporary directory, and one recording of each team:
`north` (the operator `operator`'s, of the queue-less team north) and `south` (`stranger`'s)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from callwarden.bus.event import Event
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import User
from callwarden.recording.keyring import FileKeyRing, WrappedKey
from callwarden.recording.manifest import seal_manifest
from callwarden.recording.models import Recording
from callwarden.recording.numbers import SealedNumbers
from callwarden.recording.playback import PlaybackGrants
from callwarden.recording.purge import Purger, Shredder
from callwarden.recording.purge_runs import PurgeRuns
from callwarden.recording.service import RecordingService
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import LocalStorage
from callwarden.web.recordings.audit import RecordingAuditPort
from callwarden.web.services import AuditSink
from recording.sealed import Owner, Sealer, catalogue_manifest

SECRET = bytes(range(100, 132))


@dataclass
class RecordingWorld:
    service: RecordingService
    runs: PurgeRuns
    sealer: Sealer
    storage: LocalStorage
    signing_key_path: Path
    by_team: dict[str, Recording] = field(default_factory=dict)
    #: The `recording.corrupted` alerts the service raised.
    alerts: list[Event] = field(default_factory=list)
    _directory: tempfile.TemporaryDirectory[str] | None = None

    def owner(self, user: User) -> Owner:
        return Owner(user.team_id, None, user.id)

    def make(self, user: User, started_at: datetime, **options: object) -> Recording:
        return self.sealer.make(self.owner(user), started_at=started_at, **options)  # type: ignore[arg-type]

    def file(self, recording: Recording) -> Path:
        return self.storage.root / recording.storage_key

    def file_sha256(self, recording: Recording) -> str:
        """The sealed file's SHA-256, as its manifest records it."""
        return hashlib.sha256(self.file(recording).read_bytes()).hexdigest()

    def seal_manifest(
        self, recording: Recording, monitoring_sessions: tuple[dict[str, object], ...] = ()
    ) -> None:
        """Writes the signed manifest beside the sealed file and its digest in the catalogue, as
        the recorder does at the end."""
        assert recording.kek_id is not None and recording.wrapped_key is not None
        wrapped = WrappedKey(recording.kek_id, recording.wrapped_key)
        data_key = self.sealer.keyring.unwrap(wrapped, recording.id)
        signed = seal_manifest(
            self.file(recording),
            recording.id,
            data_key,
            NodeSigningKey.load_or_create(self.signing_key_path),
            sealed_at=recording.ended_at or recording.started_at,
            call={"call_id": recording.call_id},
            monitoring_sessions=monitoring_sessions,
        )
        catalogue_manifest(self.sealer.sessions, recording.id, signed.body)


def build_recordings(
    sessions: sessionmaker[Session],
    snapshot: DirectorySnapshot,
    audit: AuditSink,
    now: Callable[[], datetime],
) -> RecordingWorld:
    directory = tempfile.TemporaryDirectory(prefix="cw-recordings-")
    root = Path(directory.name)
    numbers = SealedNumbers(SECRET)
    storage = LocalStorage(root / "recordings")
    keyring = FileKeyRing(root / "keys")
    shredder = Shredder(sessions, numbers, storage, RecordingAuditPort(audit), now)
    runs = PurgeRuns(Purger(sessions, numbers, shredder, now), now)
    signing_key_path = root / "keys" / "node-signing.key"
    signers = (NodeSigningKey.load_or_create(signing_key_path).public_key(),)
    alerts: list[Event] = []
    service = RecordingService(
        sessions,
        numbers,
        keyring,
        storage,
        shredder,
        PlaybackGrants(SECRET),
        now,
        signers=signers,
        alert=alerts.append,
        purges=runs,
    )
    sealer = Sealer(sessions, numbers, storage, keyring)
    world = RecordingWorld(service, runs, sealer, storage, signing_key_path, alerts=alerts)
    world._directory = directory
    start = now() - timedelta(hours=1)
    for team, username in (("north", "operator"), ("south", "stranger")):
        user = snapshot.user_by_username(username)
        assert user is not None
        world.by_team[team] = world.make(user, start, seconds=1.0)
    return world
