"""`callwarden recording purge`, run as a real process against a data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from callwarden.recording.holds import RetentionPolicyRepository
from callwarden.recording.keyring import FileKeyRing
from callwarden.recording.models import RecordingStatus, RetentionPolicy, RetentionScope
from callwarden.recording.numbers import SealedNumbers, catalogue_secret
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.storage import LocalStorage
from callwarden.store.database import Database, data_dir_url
from callwarden.store.migrations import upgrade
from callwarden.store.schema import AuditLogRow

from .sealed import Owner, Sealer


def _purge(data_dir: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("CALLWARDEN_")
    }
    return subprocess.run(
        [sys.executable, "-m", "callwarden.cli", "recording", "purge", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_purge_command_shreds_expired_recordings_and_reports_progress(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    url = data_dir_url(data_dir)
    upgrade(url)
    now = datetime.now(UTC)
    with Database(url) as database:
        numbers = SealedNumbers(catalogue_secret(data_dir))
        storage = LocalStorage.for_data_dir(data_dir)
        sealer = Sealer(database.sessions, numbers, storage, FileKeyRing.for_data_dir(data_dir))
        nobody = Owner(None, None, None)
        old = sealer.make(nobody, started_at=now - timedelta(days=10), seconds=0.5)
        young = sealer.make(nobody, started_at=now - timedelta(hours=1), seconds=0.5)
        with database.sessions() as session, session.begin():
            RetentionPolicyRepository(session).set(
                RetentionPolicy(scope=RetentionScope.DEFAULT, days=7), by=None, at=now
            )

    first = _purge(data_dir)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == (
        "purge done: 1 examined, 1 purged, 0 on legal hold, 0 resumed, 0 failed"
    )
    assert not (storage.root / old.storage_key).exists()
    assert (storage.root / young.storage_key).exists()
    with Database(url) as database, database.sessions() as session:
        repository = RecordingRepository(session, numbers)
        assert repository.get(old.id).status is RecordingStatus.PURGED
        assert repository.get(old.id).wrapped_key is None
        assert repository.get(young.id).status is RecordingStatus.COMPLETE
        entries = session.scalars(
            select(AuditLogRow).where(AuditLogRow.action == "recording.purge")
        ).all()
        assert [(e.object_id, e.actor_kind, e.details["rule"]) for e in entries] == [
            (old.id, "system", "default:7d")
        ]

    again = _purge(data_dir)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == (
        "purge done: 0 examined, 0 purged, 0 on legal hold, 0 resumed, 0 failed"
    )
