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
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callwarden.config import Settings
from callwarden.domain.errors import ValidationFailed
from callwarden.security.audit import AuditHead, VerifyResult, verify
from callwarden.store.database import DATABASE_FILE_NAME, Database
from callwarden.store.schema import AuditLogRow

EXIT_OK = 0
EXIT_BROKEN = 1


class AdminCommandError(Exception):
    """The command cannot run (no database, no audit log, an unreadable head file)."""


@contextmanager
def _audit_session(settings: Settings) -> Iterator[Session]:
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
        with database.sessions() as session, session.begin():
            yield session
    finally:
        database.close()


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
