"""`callwarden user reset-mfa`, the break-glass path for a lost second factor, run as a real
process against a data directory the test prepares (a provisioned user with TOTP and a session)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from callwarden.config import Settings
from callwarden.security.audit import AuditLog
from callwarden.security.clock import SystemClock
from callwarden.security.mfa import SEED_KEY_FILE, MfaService, time_step
from callwarden.security.secret_box import SecretBox
from callwarden.security.sessions import AuthLevel, SessionRevocations, SessionService
from callwarden.store.database import Database, data_dir_url
from callwarden.store.directory import UserDirectory
from callwarden.store.schema import AuditLogRow

CENTER = """
teams: [{name: support}]
users:
  - {username: sam, role: supervisor, team: support, supervises: [support],
     password: "a-long-demo-password-4711"}
"""


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("CALLWARDEN_")
    }
    return subprocess.run(
        [sys.executable, "-m", "callwarden.cli", "user", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    from callwarden.app import provision_file

    directory = tmp_path / "data"
    center = tmp_path / "center.yaml"
    center.write_text(CENTER)
    provision_file(Settings(data_dir=directory), center)
    return directory


def _enrol_and_sign_in(data_dir: Path) -> tuple[Database, SessionService, int]:
    database = Database(data_dir_url(data_dir))
    directory = UserDirectory(database.sessions)
    directory.reload()
    user = directory.snapshot.user_by_username("sam")
    assert user is not None
    clock = SystemClock()
    box = SecretBox.from_key_file(data_dir / "keys" / SEED_KEY_FILE)
    mfa = MfaService(database.sessions, box, clock)
    enrolment = mfa.begin_enrolment(user.id, "sam")
    code = pyotp.TOTP(enrolment.secret).generate_otp(time_step(clock.now()))
    assert mfa.confirm_enrolment(user.id, code) is not None
    sessions = SessionService(database.sessions, clock, SessionRevocations())
    sessions.create(
        user.id,
        auth_level=AuthLevel.MFA,
        mfa_required=True,
        client_address="127.0.0.1",
        user_agent="tests",
    )
    return database, sessions, user.id


def test_reset_mfa_removes_the_factor_ends_sessions_and_is_audited(data_dir: Path) -> None:
    database, sessions, user_id = _enrol_and_sign_in(data_dir)
    with database:
        result = _run(
            "reset-mfa", "sam", "--reason", "phone lost, ticket 4711", "--data-dir", str(data_dir)
        )
        assert (result.returncode, result.stdout) == (
            0,
            "sam: second factor removed; 1 session(s) ended\n",
        ), result.stderr
        mfa = MfaService(database.sessions, SecretBox.generate(), SystemClock())
        assert not mfa.status(user_id).enrolled
        assert sessions.list_for_user(user_id) == []
        log = AuditLog(database.sessions)
        with database.sessions() as session:
            entry = session.scalars(
                select(AuditLogRow)
                .where(AuditLogRow.action == "auth.mfa.disabled")
                .order_by(AuditLogRow.sequence.desc())
            ).first()
        assert entry is not None
        assert (entry.actor_kind, entry.object_id) == ("system", str(user_id))
        assert entry.reason == "phone lost, ticket 4711"
        assert entry.details["had_mfa"] is True
        assert log.verify().intact
    again = _run("reset-mfa", "sam", "--reason", "again", "--data-dir", str(data_dir))
    assert again.stdout == "sam: second factor none was set up; 0 session(s) ended\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("reset-mfa", "nobody", "--reason", "x"), "no user 'nobody'"),
        (("reset-mfa", "sam", "--reason", "  "), "a reason is required"),
    ],
)
def test_reset_mfa_refuses_what_it_cannot_do(
    data_dir: Path, arguments: tuple[str, ...], message: str
) -> None:
    result = _run(*arguments, "--data-dir", str(data_dir))
    assert result.returncode == 2
    assert message in result.stderr


def test_reset_mfa_never_creates_a_database(tmp_path: Path) -> None:
    result = _run("reset-mfa", "sam", "--reason", "x", "--data-dir", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "no database" in result.stderr
    assert not (tmp_path / "none").exists()
