"""Use cases of the role routes (`roles.manage`, checked by the routes).

The granting rule (`may_grant`): a custom role may only be given grants the caller holds
themselves, at a scope no wider than theirs; taking grants away is always allowed. The built-in
roles' grants are fixed (409 `builtin_role_fixed`). Refusals are audited as permission denials,
changes with before and after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callwarden.domain.errors import Conflict, Forbidden, InvalidState, JsonValue
from callwarden.domain.ids import RoleId
from callwarden.domain.permissions import Grant
from callwarden.domain.policy import not_found
from callwarden.provisioning.document import ProvisioningDocument, RoleSpec
from callwarden.provisioning.state import StoredState
from callwarden.security.audit import AuditAction, AuditEvent, AuditOutcome
from callwarden.store.mapping import grants_from_rows, role_from_row
from callwarden.store.schema import RoleRow
from callwarden.web.access import Caller
from callwarden.web.directory_writes import DirectoryWriter
from callwarden.web.roles.schemas import (
    GrantsChange,
    NewRole,
    PatternsChange,
    RoleListQuery,
    RoleView,
)
from callwarden.web.schemas import Page
from callwarden.web.services import WebServices
from callwarden.web.users.service import check_may_give


def _load(session: Session, name: str) -> RoleView:
    session.expire_all()
    row = session.scalar(
        select(RoleRow).options(selectinload(RoleRow.grants)).where(RoleRow.name == name)
    )
    assert row is not None
    return RoleView.of(role_from_row(row))


@dataclass
class _Create:
    caller: Caller
    body: NewRole

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        body = self.body
        if body.name in stored.roles:
            raise Conflict(f"role name {body.name!r} is taken", error_id="role_name_taken")
        grants = [Grant.parse(text) for text in body.grants]
        check_may_give(self.caller, grants, "grants", f"role {body.name!r}", to_person=False)
        data: dict[str, Any] = body.model_dump()
        return ProvisioningDocument(roles=[RoleSpec.model_validate(data)])

    def finish(self, session: Session) -> tuple[RoleView, Sequence[AuditEvent]]:
        view = _load(session, self.body.name)
        after: dict[str, JsonValue] = dict(view.model_dump(mode="json"))
        return view, [
            self.caller.succeeded(AuditAction.ROLE_CREATE, "role", view.id, {"after": after})
        ]


@dataclass
class _ChangeGrants:
    caller: Caller
    role_id: RoleId
    body: GrantsChange
    name: str = ""
    before: list[str] = field(default_factory=list)

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        row = next((row for row in stored.roles.values() if row.id == self.role_id), None)
        if row is None:
            raise not_found(f"role {self.role_id}")
        if row.builtin:
            raise InvalidState(
                f"the grants of built-in role {row.name!r} are fixed; define a custom role",
                error_id="builtin_role_fixed",
            )
        current = grants_from_rows(row.grants, f"role {row.name}")
        wanted = {Grant.parse(text) for text in self.body.grants}
        check_may_give(
            self.caller, wanted - current, "grants", f"role {row.name!r}", to_person=False
        )
        self.name = row.name
        self.before = sorted(str(grant) for grant in current)
        return ProvisioningDocument(
            roles=[RoleSpec.model_validate({"name": row.name, "grants": list(self.body.grants)})]
        )

    def finish(self, session: Session) -> tuple[RoleView, Sequence[AuditEvent]]:
        view = _load(session, self.name)
        after = sorted(view.grants)
        details: dict[str, JsonValue] = {
            "before": {"grants": list(self.before)},
            "after": {"grants": list(after)},
            "added": sorted(set(after) - set(self.before)),
            "removed": sorted(set(self.before) - set(after)),
        }
        return view, [self.caller.succeeded(AuditAction.ROLE_UPDATE, "role", view.id, details)]


@dataclass
class _ChangePatterns:
    """A role's outbound allow-list, built-in roles' included (only their grants are fixed)."""

    caller: Caller
    role_id: RoleId
    body: PatternsChange
    name: str = ""
    before: list[str] = field(default_factory=list)

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        row = next((row for row in stored.roles.values() if row.id == self.role_id), None)
        if row is None:
            raise not_found(f"role {self.role_id}")
        self.name = row.name
        self.before = list(row.outbound_patterns)
        data = {"name": row.name, "outbound_patterns": list(self.body.outbound_patterns)}
        return ProvisioningDocument(roles=[RoleSpec.model_validate(data)])

    def finish(self, session: Session) -> tuple[RoleView, Sequence[AuditEvent]]:
        view = _load(session, self.name)
        details: dict[str, JsonValue] = {
            "before": {"outbound_patterns": list[JsonValue](self.before)},
            "after": {"outbound_patterns": list[JsonValue](view.outbound_patterns)},
        }
        return view, [self.caller.succeeded(AuditAction.ROLE_UPDATE, "role", view.id, details)]


class RoleAdmin:
    def __init__(self, services: WebServices, writer: DirectoryWriter) -> None:
        self._services = services
        self._writer = writer

    def list(self, caller: Caller, query: RoleListQuery) -> Page[RoleView]:
        roles = [
            role
            for role in self._services.directory.snapshot.roles
            if query.builtin is None or role.builtin == query.builtin
        ]
        key = query.sort
        roles.sort(key=lambda role: (getattr(role, key), role.id), reverse=query.order == "desc")
        page = roles[query.offset : query.offset + query.limit]
        return Page(
            items=[RoleView.of(role) for role in page],
            total=len(roles),
            limit=query.limit,
            offset=query.offset,
        )

    def get(self, caller: Caller) -> RoleView:
        assert caller.target is not None
        role = self._services.directory.snapshot.role(RoleId(int(caller.target.object_id)))
        if role is None:
            raise not_found(caller.target.what)
        return RoleView.of(role)

    async def create(self, caller: Caller, body: NewRole) -> RoleView:
        return await self._write(caller, _Create(caller, body))

    async def change_grants(self, caller: Caller, body: GrantsChange) -> RoleView:
        assert caller.target is not None
        change = _ChangeGrants(caller, RoleId(int(caller.target.object_id)), body)
        return await self._write(caller, change)

    async def change_patterns(self, caller: Caller, body: PatternsChange) -> RoleView:
        assert caller.target is not None
        change = _ChangePatterns(caller, RoleId(int(caller.target.object_id)), body)
        return await self._write(caller, change)

    async def _write(
        self, caller: Caller, change: _Create | _ChangeGrants | _ChangePatterns
    ) -> RoleView:
        try:
            view: RoleView = await asyncio.to_thread(self._writer.write, change)
        except Forbidden as refusal:
            await self._services.audit.record_quietly(
                AuditEvent(
                    action=AuditAction.PERMISSION_DENIED,
                    actor=caller.actor,
                    outcome=AuditOutcome.DENIED,
                    object_kind="role",
                    object_id=None if caller.target is None else caller.target.object_id,
                    source_address=caller.source_address,
                    details={"decision": refusal.error_id, **refusal.details},
                )
            )
            raise
        return view
