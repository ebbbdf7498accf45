"""`callwarden audit verify` and `callwarden audit export-head`, run as real processes against a
data directory whose audit log the test writes (and tampers with) through the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from callwarden.domain.ids import UserId
from callwarden.security.audit import AuditActor, AuditEvent, AuditLog, AuditOutcome
from callwarden.store.database import Database, data_dir_url
from callwarden.store.migrations import upgrade


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("CALLWARDEN_")
    }
    return subprocess.run(
        [sys.executable, "-m", "callwarden.cli", "audit", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A migrated data directory whose audit log holds three entries."""
    directory = tmp_path / "data"
    url = data_dir_url(directory)
    upgrade(url)
    with Database(url) as database:
        AuditLog(database.sessions).append_many(
            [
                AuditEvent(
                    action="user.update",
                    actor=AuditActor.user(UserId(1), "admin"),
                    outcome=AuditOutcome.SUCCESS,
                    object_kind="user",
                    object_id=number,
                    details={"after": {"enabled": False}},
                )
                for number in (11, 12, 13)
            ]
        )
    return directory


def _tamper(data_dir: Path, *statements: str) -> None:
    with Database(data_dir_url(data_dir)) as database, database.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_log_no_update"))
        connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        for statement in statements:
            connection.execute(text(statement))


def test_an_intact_log_verifies_and_its_head_is_exported(data_dir: Path, tmp_path: Path) -> None:
    head_file = tmp_path / "head.json"
    exported = _run("export-head", "--data-dir", str(data_dir), "--out", str(head_file))
    assert (exported.returncode, exported.stdout) == (0, f"head 3 written to {head_file}\n")
    with Database(data_dir_url(data_dir)) as database:
        head = AuditLog(database.sessions).export_head()
    assert head is not None
    assert json.loads(head_file.read_text()) == json.loads(head.to_json())
    printed = _run("export-head", "--data-dir", str(data_dir))
    assert (printed.returncode, printed.stdout) == (0, head.to_json() + "\n")

    verified = _run("verify", "--data-dir", str(data_dir), "--head", str(head_file))
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"audit log intact: 3 entries, head 3 {head.entry_hash} at ")


def test_an_edited_entry_fails_verification_and_is_not_anchored(
    data_dir: Path, tmp_path: Path
) -> None:
    _tamper(data_dir, "UPDATE audit_log SET object_id = '99' WHERE sequence = 2")
    verified = _run("verify", "--data-dir", str(data_dir))
    assert verified.returncode == 1
    assert verified.stdout == (
        "audit log broken at entry 2: entry 2 was altered: its content does not match its hash\n"
    )
    head_file = tmp_path / "head.json"
    exported = _run("export-head", "--data-dir", str(data_dir), "--out", str(head_file))
    assert exported.returncode == 1
    assert exported.stdout.endswith("no head exported: the chain is broken\n")
    assert not head_file.exists()


def test_truncation_is_caught_with_the_exported_head(data_dir: Path, tmp_path: Path) -> None:
    head_file = tmp_path / "head.json"
    assert _run("export-head", "--data-dir", str(data_dir), "--out", str(head_file)).returncode == 0
    _tamper(data_dir, "DELETE FROM audit_log WHERE sequence = 3")
    assert _run("verify", "--data-dir", str(data_dir)).returncode == 0
    verified = _run("verify", "--data-dir", str(data_dir), "--head", str(head_file))
    assert (verified.returncode, verified.stdout) == (
        1,
        "audit log broken at entry 3: the chain ends at entry 2 but the exported head is "
        "entry 3: entry 3 was removed\n",
    )


def test_what_cannot_be_verified_is_a_usage_error(data_dir: Path, tmp_path: Path) -> None:
    missing = _run("verify", "--data-dir", str(tmp_path / "nowhere"))
    assert (missing.returncode, missing.stderr) == (
        2,
        f"callwarden: no database in {tmp_path / 'nowhere'}\n",
    )
    assert not (tmp_path / "nowhere").exists()
    bad_head = tmp_path / "bad.json"
    bad_head.write_text('{"sequence": 3}')
    refused = _run("verify", "--data-dir", str(data_dir), "--head", str(bad_head))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"callwarden: {bad_head}: exported audit head: expected an object with exactly hash, "
        "sequence and timestamp\n"
    )


def test_an_empty_log_has_no_head_to_export(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    upgrade(data_dir_url(directory))
    exported = _run("export-head", "--data-dir", str(directory))
    assert (exported.returncode, exported.stdout) == (
        1,
        "no head exported: the audit log is empty\n",
    )
    assert _run("verify", "--data-dir", str(directory)).stdout == "audit log intact: no entries\n"
