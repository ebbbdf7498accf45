"""Filters, sort and page of an audit log query, validated before any SQL is built.

Every field of `AuditQuery` is checked when it is built and a bad one raises `ValidationFailed`
naming it: times must be aware, the action prefix must be a dotted name, the sort field comes
from `SORT_FIELDS` only, a page holds at most `MAX_PAGE_SIZE` entries. Text filters are encoded
like stored text (see `audit_text`) and compared for equality, so they match exactly what was
logged and never reach SQL as anything but a bound parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from callwarden.domain.errors import JsonValue, ValidationFailed
from callwarden.domain.ids import UserId
from callwarden.security.audit_chain import format_timestamp
from callwarden.security.audit_model import (
    ACTION_LENGTH,
    ACTOR_NAME_LENGTH,
    OBJECT_ID_LENGTH,
    OBJECT_KIND_LENGTH,
    AuditOutcome,
)
from callwarden.security.audit_text import encode_text
from callwarden.store.schema import AuditLogRow

MAX_PAGE_SIZE = 500
ACTION_PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*\.?")

SORT_FIELDS: frozenset[str] = frozenset(
    {"sequence", "recorded_at", "action", "actor_name", "outcome"}
)
"""The only columns a query may sort by (ties are broken by sequence)."""


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, error_id="audit_query_invalid", details={"field": field})


def _check_text(field: str, value: str | None, limit: int) -> None:
    if value is not None and not 1 <= len(value) <= limit:
        raise _invalid(field, f"{field} must be 1 to {limit} characters")


@dataclass(frozen=True, kw_only=True)
class AuditQuery:
    """Which entries to read; all given filters must hold.

    `since` is inclusive and `until` exclusive, both on the entry's time. `action_prefix`
    matches the action itself and the actions below it (`auth.login` matches
    `auth.login.failed`, not `auth.logins`; `auth.` matches everything under `auth`).
    """

    since: datetime | None = None
    until: datetime | None = None
    actor_user_id: UserId | None = None
    actor_name: str | None = None
    action_prefix: str | None = None
    object_kind: str | None = None
    object_id: str | None = None
    outcome: AuditOutcome | None = None
    sort: str = "sequence"
    descending: bool = True
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        for name, moment in (("since", self.since), ("until", self.until)):
            if moment is not None and moment.utcoffset() is None:
                raise _invalid(name, f"{name} must be timezone-aware")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise _invalid("until", "until must be after since")
        prefix = self.action_prefix
        if prefix is not None and (
            len(prefix) > ACTION_LENGTH or ACTION_PREFIX_PATTERN.fullmatch(prefix) is None
        ):
            raise _invalid("action_prefix", "action_prefix must be a dotted lower-case name")
        _check_text("actor_name", self.actor_name, ACTOR_NAME_LENGTH)
        _check_text("object_kind", self.object_kind, OBJECT_KIND_LENGTH)
        _check_text("object_id", self.object_id, OBJECT_ID_LENGTH)
        if self.sort not in SORT_FIELDS:
            raise _invalid("sort", f"sort must be one of {', '.join(sorted(SORT_FIELDS))}")
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise _invalid("limit", f"limit must be between 1 and {MAX_PAGE_SIZE}")
        if self.offset < 0:
            raise _invalid("offset", "offset must not be negative")

    def conditions(self) -> list[ColumnElement[bool]]:
        row = AuditLogRow
        conditions: list[ColumnElement[bool]] = []
        if self.since is not None:
            conditions.append(row.recorded_at >= self.since)
        if self.until is not None:
            conditions.append(row.recorded_at < self.until)
        if self.actor_user_id is not None:
            conditions.append(row.actor_user_id == self.actor_user_id)
        if self.actor_name is not None:
            conditions.append(row.actor_name == encode_text(self.actor_name, ACTOR_NAME_LENGTH))
        if self.action_prefix is not None:
            conditions.append(_action_condition(self.action_prefix))
        if self.object_kind is not None:
            conditions.append(row.object_kind == encode_text(self.object_kind, OBJECT_KIND_LENGTH))
        if self.object_id is not None:
            conditions.append(row.object_id == encode_text(self.object_id, OBJECT_ID_LENGTH))
        if self.outcome is not None:
            conditions.append(row.outcome == self.outcome.value)
        return conditions

    def statement(self) -> Select[AuditLogRow]:
        column: InstrumentedAttribute[Any] = getattr(AuditLogRow, self.sort)
        order = (
            [column.desc(), AuditLogRow.sequence.desc()]
            if self.descending
            else [column.asc(), AuditLogRow.sequence.asc()]
        )
        return (
            select(AuditLogRow)
            .where(*self.conditions())
            .order_by(*order)
            .limit(self.limit)
            .offset(self.offset)
        )

    def as_details(self) -> dict[str, JsonValue]:
        """The query as recorded in the `audit.read` entry (only what was given)."""
        given: dict[str, JsonValue] = {
            "since": None if self.since is None else format_timestamp(self.since),
            "until": None if self.until is None else format_timestamp(self.until),
            "actor_user_id": self.actor_user_id,
            "actor_name": self.actor_name,
            "action_prefix": self.action_prefix,
            "object_kind": self.object_kind,
            "object_id": self.object_id,
            "outcome": None if self.outcome is None else self.outcome.value,
        }
        filters: dict[str, JsonValue] = {
            key: value for key, value in given.items() if value is not None
        }
        return {
            "filters": filters,
            "sort": self.sort,
            "descending": self.descending,
            "limit": self.limit,
            "offset": self.offset,
        }


def _action_condition(prefix: str) -> ColumnElement[bool]:
    if prefix.endswith("."):
        return AuditLogRow.action.startswith(prefix, autoescape=True)
    return or_(
        AuditLogRow.action == prefix,
        AuditLogRow.action.startswith(prefix + ".", autoescape=True),
    )
