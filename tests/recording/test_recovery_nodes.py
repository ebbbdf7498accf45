"""Crash recovery with several nodes sharing one catalogue: a node's start-up recovery closes
only its own open recordings (and rows from before revision 0011, which no node claims), never
another node's live ones; a node's id survives restarts (`node_identity`)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.ids import RecordingId
from callwarden.recording.keyring import FileKeyRing
from callwarden.recording.models import RecordingStatus
from callwarden.recording.numbers import SealedNumbers, catalogue_secret
from callwarden.recording.recovery import (
    RecoveryServices,
    node_identity,
    recover_open_recordings,
)
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import LocalStorage
from callwarden.recording.writer import SealedWriter
from callwarden.store.database import Database, data_dir_url
from callwarden.store.migrations import upgrade

from .catalogued import START, open_row
from .conftest import Center, make_center
from .sealed import FRAME, SAMPLE_RATE, tone


def _open_recording(
    sessions: sessionmaker[Session],
    storage: LocalStorage,
    keys: FileKeyRing,
    center: Center,
    node_id: str | None,
) -> RecordingId:
    """A RECORDING row of `node_id` with 1 s sealed and no trailer (its writer still going, or
    its node dead)."""
    row = open_row(sessions, keys, center.support, operator_id=center.alice, node_id=node_id)
    recording_id, data_key, key = row.recording_id, row.data_key, row.storage_key
    writer = SealedWriter.create(
        storage.path_for_writing(key), recording_id, data_key, ["customer", "operator"]
    )
    audio = tone(440.0, 0, SAMPLE_RATE)
    for start in range(0, SAMPLE_RATE, FRAME):
        writer.write("customer", start, audio[start : start + FRAME])
    writer.flush()
    writer.abort()
    return recording_id


def _status(
    sessions: sessionmaker[Session], recording_id: RecordingId, secret: bytes = bytes(32)
) -> RecordingStatus:
    with sessions() as session:
        return RecordingRepository(session, SealedNumbers(secret)).get(recording_id).status


def test_a_node_recovers_its_own_recordings_and_leaves_the_others_alone(
    sessions: sessionmaker[Session], tmp_path: Path, center: Center
) -> None:
    keys, storage = FileKeyRing(tmp_path / "keys"), LocalStorage(tmp_path / "recordings")
    mine = _open_recording(sessions, storage, keys, center, "node-a")
    theirs = _open_recording(sessions, storage, keys, center, "node-b")
    legacy = _open_recording(sessions, storage, keys, center, None)  # from before 0011
    with sessions() as session:
        row = RecordingRepository(session, SealedNumbers(bytes(32))).get(mine)
    assert row.node_id == "node-a"

    def services(node_id: str | None) -> RecoveryServices:
        return RecoveryServices(
            sessions,
            SealedNumbers(bytes(32)),
            keys,
            storage,
            NodeSigningKey.generate(),
            lambda: START,
            node_id=node_id,
        )

    report = recover_open_recordings(services("node-a"))
    assert sorted(report.incomplete) == sorted([mine, legacy]) and report.failed == ()
    assert _status(sessions, mine) is RecordingStatus.INCOMPLETE
    assert _status(sessions, theirs) is RecordingStatus.RECORDING  # node b's call goes on
    assert recover_open_recordings(services("node-a")).incomplete == ()
    # Node b restarts after a crash of its own: now its recording is closed.
    assert recover_open_recordings(services("node-b")).incomplete == (theirs,)
    assert _status(sessions, theirs) is RecordingStatus.INCOMPLETE


def test_a_nodes_identity_is_configured_or_kept_in_its_data_directory(tmp_path: Path) -> None:
    assert node_identity(tmp_path, "sip-1.tokyo") == "sip-1.tokyo"
    assert not (tmp_path / "node-id").exists()
    made = node_identity(tmp_path)
    assert made.startswith("node-") and len(made) == len("node-") + 12
    assert stat.S_IMODE((tmp_path / "node-id").stat().st_mode) == 0o600
    assert node_identity(tmp_path) == made  # the same after a restart
    (tmp_path / "other").mkdir()
    assert node_identity(tmp_path / "other") != made  # another node's data directory
    with pytest.raises(ValueError, match="1 to 64 letters"):
        node_identity(tmp_path, "bad id/with slash")
    (tmp_path / "node-id").write_text("not a node id!\n")
    with pytest.raises(ValueError, match="does not hold a node id"):
        node_identity(tmp_path)


def _recover(data_dir: Path, node: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("CALLWARDEN_")
    }
    command = ["recording", "recover", "--node", node, "--data-dir", str(data_dir)]
    return subprocess.run(
        [sys.executable, "-m", "callwarden.cli", *command],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_a_node_gone_for_good_is_recovered_from_another_data_directory(tmp_path: Path) -> None:
    """`callwarden recording recover --node ID`, as a real process: the gone node's open
    recordings are closed, a live node's are not; this node's own id and a bad id are refused."""
    data_dir = tmp_path / "data"
    url = data_dir_url(data_dir)
    upgrade(url)
    with Database(url) as database:
        center = make_center(database.sessions)
        keys, storage = FileKeyRing.for_data_dir(data_dir), LocalStorage.for_data_dir(data_dir)
        gone = _open_recording(database.sessions, storage, keys, center, "node-gone")
        live = _open_recording(database.sessions, storage, keys, center, "node-live")
    done = _recover(data_dir, "node-gone")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "node node-gone: 1 recordings closed incomplete, 0 failed\n"
    with Database(url) as database:
        assert _status(database.sessions, gone, catalogue_secret(data_dir)) is (
            RecordingStatus.INCOMPLETE
        )
        assert _status(database.sessions, live, catalogue_secret(data_dir)) is (
            RecordingStatus.RECORDING
        )
    own = _recover(data_dir, node_identity(data_dir))
    assert own.returncode == 2 and "is this data directory's node" in own.stderr
    bad = _recover(data_dir, "no/such node")
    assert bad.returncode == 2 and "1 to 64 letters" in bad.stderr
