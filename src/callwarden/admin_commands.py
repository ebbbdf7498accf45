"""Administration commands behind the `callwarden` CLI: audit log verification and head export.

Both read the database named by the settings (SQLite in the data directory by default) and
write nothing to it: they neither migrate nor append. A database that does not exist yet, or
has no audit log, is an error (exit status 2), never created on the way.

- `audit_verify`: recompute the hash chain; 0 when intact, 1 naming the first broken entry.
  With a head file exported earlier, a chain that ends before that head or differs from it is
  broken too (truncation, rewriting).
- `audit_export_head`: verify, then write the newest entry's `{"hash", "sequence", "timestamp"}`
  to a file (replaced atomically) or to standard output; a broken or empty chain exports
  nothing (status 1), so a tampered chain is never anchored.
- `user_reset_mfa`: the break-glass path for a lost second factor when nobody may reset it over
  the API (the granting rule: nobody resets the factor of an account holding grants beyond
  their own, and no built-in role holds every grant). Whoever runs it holds the data directory
  and its keys, so it needs no web session; it removes the user's TOTP seed and recovery codes,
  ends their sessions and appends an audit entry (actor `system`, the reason given, the
  operating-system user) to the chain. It needs a migrated database; it writes nothing else.
"""

from __future__ import annotations

import getpass
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from sqlalchemy import inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callwarden.config import Settings
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import UserId
from callwarden.security.audit import (
    AuditAction,
    AuditActor,
    AuditEvent,
    AuditHead,
    AuditLog,
    AuditOutcome,
    VerifyResult,
    verify,
)
from callwarden.security.clock import SystemClock
from callwarden.security.mfa import SEED_KEY_FILE, MfaService
from callwarden.security.secret_box import SecretBox
from callwarden.security.sessions import SessionEndReason, SessionRevocations, SessionService
from callwarden.store.database import DATABASE_FILE_NAME, Database
from callwarden.store.schema import AuditLogRow, UserRow

EXIT_OK = 0
EXIT_BROKEN = 1


class AdminCommandError(Exception):
    """The command cannot run (no database, no audit log, an unreadable head file)."""


@contextmanager
def _migrated_database(settings: Settings) -> Iterator[Database]:
    """The node's database, which must exist and hold the audit log (never created here)."""
    if settings.database_url is None and not (settings.data_dir / DATABASE_FILE_NAME).is_file():
        raise AdminCommandError(f"no database in {settings.data_dir}")
    url = settings.effective_database_url
    shown = make_url(url).render_as_string(hide_password=True)
    database = Database(url)
    try:
        try:
            present = inspect(database.engine).has_table(AuditLogRow.__tablename__)
        except SQLAlchemyError as error:
            raise AdminCommandError(f"cannot open the database {shown}: {error}") from error
        if not present:
            raise AdminCommandError(f"the database {shown} has no audit log (not migrated)")
        yield database
    finally:
        database.close()


@contextmanager
def _audit_session(settings: Settings) -> Iterator[Session]:
    with (
        _migrated_database(settings) as database,
        database.sessions() as session,
        session.begin(),
    ):
        yield session


def _read_head(path: Path) -> AuditHead:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AdminCommandError(f"cannot read the head file {path}: {error}") from error
    try:
        return AuditHead.from_json(text)
    except ValidationFailed as error:
        raise AdminCommandError(f"{path}: {error.message}") from error


def _verified(settings: Settings, expected_head: AuditHead | None) -> VerifyResult:
    with _audit_session(settings) as session:
        return verify(session, expected_head=expected_head)


def audit_verify(settings: Settings, *, head_file: Path | None, out: TextIO) -> int:
    """`callwarden audit verify [--head FILE]`: the chain's state on `out`, and the status."""
    expected = None if head_file is None else _read_head(head_file)
    result = _verified(settings, expected)
    out.write(result.summary() + "\n")
    return EXIT_OK if result.intact else EXIT_BROKEN


def audit_export_head(settings: Settings, *, out_file: Path | None, out: TextIO) -> int:
    """`callwarden audit export-head [--out FILE]`: verify, then write the head."""
    result = _verified(settings, None)
    if not result.intact:
        out.write(result.summary() + "\nno head exported: the chain is broken\n")
        return EXIT_BROKEN
    if result.head is None:
        out.write("no head exported: the audit log is empty\n")
        return EXIT_BROKEN
    text = result.head.to_json() + "\n"
    if out_file is None:
        out.write(text)
    else:
        _write_atomically(out_file, text)
        out.write(f"head {result.head.sequence} written to {out_file}\n")
    return EXIT_OK


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to a new file beside `path` (mode 0600), then rename it over `path`."""
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".audit-head-", dir=path.parent)
    except OSError as error:
        raise AdminCommandError(f"cannot write the head file {path}: {error}") from error
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise AdminCommandError(f"cannot write the head file {path}: {error}") from error


def user_reset_mfa(settings: Settings, *, username: str, reason: str, out: TextIO) -> int:
    """`callwarden user reset-mfa USERNAME --reason TEXT`: remove a user's second factor."""
    if not reason.strip():
        raise AdminCommandError("a reason is required (--reason)")
    key_file = settings.data_dir / "keys" / SEED_KEY_FILE
    with _migrated_database(settings) as database:
        factory = database.sessions
        with factory() as session:
            user_id = session.scalar(select(UserRow.id).where(UserRow.username == username))
        if user_id is None:
            raise AdminCommandError(f"no user {username!r}")
        clock = SystemClock()
        removed = False
        if key_file.is_file():  # no key file: the node never started, nobody enrolled
            removed = MfaService(factory, SecretBox.from_key_file(key_file), clock).reset(
                UserId(user_id)
            )
        sessions = SessionService(factory, clock, SessionRevocations())
        ended = sessions.revoke_all(UserId(user_id), SessionEndReason.MFA_CHANGED)
        AuditLog(factory, clock).append(
            AuditEvent(
                action=AuditAction.MFA_DISABLED,
                actor=AuditActor.system(),
                outcome=AuditOutcome.SUCCESS,
                object_kind="user",
                object_id=user_id,
                reason=reason.strip(),
                details={
                    "reset_by": "callwarden user reset-mfa",
                    "os_user": getpass.getuser(),
                    "had_mfa": removed,
                    "sessions_ended": len(ended),
                },
            )
        )
    state = "removed" if removed else "none was set up"
    out.write(f"{username}: second factor {state}; {len(ended)} session(s) ended\n")
    return EXIT_OK
