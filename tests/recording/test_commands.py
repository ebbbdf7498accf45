"""`callwarden recording verify ID` and `callwarden recording export ID OUT`, end to end."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Table, select

from callwarden.cli import main
from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import CallId, RecordingId
from callwarden.recording.keyring import FileKeyRing, WrappedKey, new_data_key
from callwarden.recording.manifest import SignedManifest, seal_manifest
from callwarden.recording.models import NewRecording, RecordingStatus
from callwarden.recording.numbers import SealedNumbers
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.signing import NodeSigningKey
from callwarden.store.database import Database
from callwarden.store.schema import AuditLogRow

from .sealing import record_call

WHEN = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STORAGE_KEY = "2026/11/28/rec-cli.cwrec"


def _sealed(data_dir: Path) -> tuple[Path, WrappedKey, SignedManifest]:
    data_key = new_data_key()
    wrapped = FileKeyRing.for_data_dir(data_dir).wrap(data_key, "rec-cli")
    path = data_dir / "recordings" / STORAGE_KEY
    path.parent.mkdir(parents=True)
    record_call(path, "rec-cli", seconds=2, key=data_key)
    signing = NodeSigningKey.for_data_dir(data_dir)
    signed = seal_manifest(path, "rec-cli", data_key, signing, sealed_at=WHEN, call={"id": "c1"})
    return path, wrapped, signed


@pytest.fixture
def catalogued(tmp_path: Path, database: Database, numbers: SealedNumbers) -> list[str]:
    data_dir = tmp_path / "data"
    path, wrapped, signed = _sealed(data_dir)
    with database.sessions() as session, session.begin():
        repository = RecordingRepository(session, numbers)
        repository.create(
            NewRecording(
                recording_id=RecordingId("rec-cli"),
                call_id=CallId("c1"),
                direction=CallDirection.INBOUND,
                started_at=WHEN,
                storage_key=STORAGE_KEY,
                kek_id=wrapped.key_id,
                wrapped_key=wrapped.blob,
            )
        )
        repository.close(  # as the recorder does: the manifest's digest in the catalogue
            RecordingId("rec-cli"),
            status=RecordingStatus.COMPLETE,
            ended_at=WHEN + timedelta(seconds=2),
            duration_ms=2000,
            manifest_digest=hashlib.sha256(signed.body).hexdigest(),
            size_bytes=path.stat().st_size,
        )
    url = database.engine.url.render_as_string(hide_password=False)
    return ["--data-dir", str(data_dir), "--database-url", url]


def test_verify_by_id(catalogued: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recording", "verify", "rec-cli", *catalogued]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is True and report["complete"] is True
    assert report["checks"][:2] == ["signature", "catalogue digest"]


def test_verify_by_id_refuses_a_manifest_the_catalogue_did_not_record(
    catalogued: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Another manifest, signed by this node for the same file, put in place of the one sealed
    at close: the file and its signature are fine, the catalogue's digest is not."""
    data_dir = Path(catalogued[1])
    path = data_dir / "recordings" / STORAGE_KEY
    assert main(["recording", "verify", "rec-cli", *catalogued]) == 0
    capsys.readouterr()
    body = SignedManifest.load(path).body.replace(b'"c1"', b'"c2"')
    signing = NodeSigningKey.for_data_dir(data_dir)
    SignedManifest(body, signing.sign(body)).save(path)
    assert main(["recording", "verify", "rec-cli", *catalogued]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["error"].endswith("manifest is not the one the catalogue recorded")


def test_verify_tampered_exits_1(
    catalogued: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "data" / "recordings" / STORAGE_KEY
    data = bytearray(path.read_bytes())
    data[300] ^= 4
    path.write_bytes(bytes(data))
    assert main(["recording", "verify", "rec-cli", *catalogued]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is False
    assert "recording corrupted: rec-cli: chunk" in report["error"]


def test_unknown_recording_exits_2(
    catalogued: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recording", "verify", "rec-nope", *catalogued]) == 2
    assert "no recording rec-nope" in capsys.readouterr().err


def _exports(database: Database) -> list[tuple[str, str | None, str, str | None, str]]:
    with database.sessions() as session:
        rows = session.scalars(
            select(AuditLogRow).where(AuditLogRow.action == "recording.export")
        ).all()
        return [(r.actor_name, r.object_id, r.outcome, r.reason, r.actor_kind) for r in rows]


def test_export_by_id_is_audited(catalogued: list[str], tmp_path: Path, database: Database) -> None:
    out = tmp_path / "case"
    argv = ["recording", "export", "rec-cli", str(out), "--reason", "dispute 9", "--by", "eve"]
    assert main([*argv, *catalogued]) == 0
    assert json.loads((out / "export.json").read_bytes())["exported_by"] == "eve"
    assert (out / "stereo.wav").is_file() and (out / "manifest.sig").is_file()
    assert _exports(database) == [("cli:eve", "rec-cli", "success", "dispute 9", "system")]
    assert main([*argv, *catalogued]) == 2  # never overwrites an export
    assert len(_exports(database)) == 1


def test_export_of_a_corrupted_recording_is_refused_and_audited(
    catalogued: list[str], tmp_path: Path, database: Database
) -> None:
    path = tmp_path / "data" / "recordings" / STORAGE_KEY
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    out = tmp_path / "case"
    argv = ["recording", "export", "rec-cli", str(out), "--reason", "dispute 9", "--by", "eve"]
    assert main([*argv, *catalogued]) == 1
    assert not out.exists()
    assert _exports(database) == [("cli:eve", "rec-cli", "failed", "dispute 9", "system")]


def test_export_is_removed_when_the_audit_log_cannot_take_it(
    catalogued: list[str], tmp_path: Path, database: Database
) -> None:
    with database.engine.begin() as connection:
        cast(Table, AuditLogRow.__table__).drop(connection)
    out = tmp_path / "case"
    argv = ["recording", "export", "rec-cli", str(out), "--reason", "dispute 9", "--by", "eve"]
    assert main([*argv, *catalogued]) == 2
    assert not out.exists()


def test_verify_a_file_outside_the_catalogue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    path, wrapped, _ = _sealed(data_dir)
    argv = ["recording", "verify", "rec-cli", "--data-dir", str(data_dir), "--file", str(path)]
    assert main([*argv, "--wrapped-key", wrapped.encode()]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is True
    assert "catalogue digest" not in report["checks"]  # outside the catalogue: none to compare
    assert main([*argv, "--wrapped-key", "garbage"]) == 2
    (data_dir / "keys" / "recording" / "kek-0001.key").unlink()  # the key ring lost its KEK
    assert main([*argv, "--wrapped-key", wrapped.encode()]) == 2
    assert "not in the key ring" in capsys.readouterr().err
