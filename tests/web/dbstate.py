"""The configuration tables as plain rows, to show that a refused request changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from callwarden.store.database import Database
from callwarden.store.schema import Base

VOLATILE_TABLES = frozenset(
    {
        "audit_log",
        "web_sessions",
        "login_throttle",
        "known_devices",
        "mfa_totp",
        "mfa_recovery_codes",
    }
)
"""Written by every request (session use, audit entries of refusals) or by sign-in itself."""


def configuration(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the volatile ones, in a stable order."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    with database.sessions() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in VOLATILE_TABLES:
                continue
            rows = session.execute(select(table)).all()
            state[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return state
