"""Use cases of the role routes (`roles.manage`, checked by the routes).

The granting rule (`may_grant`): a custom role may only be given grants the caller holds
themselves, at a scope no wider than theirs; taking grants away is always allowed. The built-in
roles' grants are fixed (409 `builtin_role_fixed`). Refusals are audited as permission denials,
changes with before and after.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from callwarden.domain.errors import InvalidState, JsonValue
from callwarden.domain.ids import RoleId
from callwarden.domain.permissions import Grant
from callwarden.provisioning.document import ProvisioningDocument, RoleSpec
from callwarden.provisioning.state import StoredState
from callwarden.security.audit import AuditEvent
from callwarden.store.mapping import grants_from_rows, role_from_row
from callwarden.store.schema import RoleRow
from callwarden.web.access import Caller
from callwarden.web.admin_api import found, page_of
from callwarden.web.directory_writes import Create, DirectoryAdmin, DirectoryChange, ObjectKind
from callwarden.web.roles.schemas import (
    GrantsChange,
    NewRole,
    PatternsChange,
    RoleListQuery,
    RoleView,
)
from callwarden.web.schemas import Page
from callwarden.web.users.service import check_may_give


def _create_data(caller: Caller, body: NewRole, stored: StoredState) -> dict[str, Any]:
    grants = [Grant.parse(text) for text in body.grants]
    check_may_give(caller, grants, "grants", f"role {body.name!r}", to_person=False)
    return body.model_dump()


ROLE = ObjectKind[RoleRow, RoleView]("role", RoleSpec, lambda row: RoleView.of(role_from_row(row)))


@dataclass
class _ChangeGrants:
    caller: Caller
    role_id: RoleId
    body: GrantsChange
    name: str = ""
    before: list[str] = field(default_factory=list)

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        row = ROLE.stored(stored, self.role_id)
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
        return ROLE.document({"name": row.name, "grants": list(self.body.grants)})

    def finish(self, session: Session) -> tuple[RoleView, Sequence[AuditEvent]]:
        view = ROLE.load(session, self.name)
        after = sorted(view.grants)
        details: dict[str, JsonValue] = {
            "before": {"grants": list(self.before)},
            "after": {"grants": list(after)},
            "added": sorted(set(after) - set(self.before)),
            "removed": sorted(set(self.before) - set(after)),
        }
        return view, [ROLE.succeeded(self.caller, "update", view.id, details)]


@dataclass
class _ChangePatterns:
    """A role's outbound allow-list, built-in roles' included (only their grants are fixed)."""

    caller: Caller
    role_id: RoleId
    body: PatternsChange
    name: str = ""
    before: list[str] = field(default_factory=list)

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        row = ROLE.stored(stored, self.role_id)
        self.name = row.name
        self.before = list(row.outbound_patterns)
        return ROLE.document(
            {"name": row.name, "outbound_patterns": list(self.body.outbound_patterns)}
        )

    def finish(self, session: Session) -> tuple[RoleView, Sequence[AuditEvent]]:
        view = ROLE.load(session, self.name)
        details: dict[str, JsonValue] = {
            "before": {"outbound_patterns": list[JsonValue](self.before)},
            "after": {"outbound_patterns": list[JsonValue](view.outbound_patterns)},
        }
        return view, [ROLE.succeeded(self.caller, "update", view.id, details)]


class RoleAdmin(DirectoryAdmin):
    def list(self, caller: Caller, query: RoleListQuery) -> Page[RoleView]:
        roles = [
            role
            for role in self._snapshot.roles
            if query.builtin is None or role.builtin == query.builtin
        ]
        return page_of(roles, query, RoleView.of)

    def get(self, caller: Caller, role_id: int) -> RoleView:
        role = self._snapshot.role(RoleId(role_id))
        return RoleView.of(found(role, f"role {role_id}"))

    async def create(self, caller: Caller, body: NewRole) -> RoleView:
        data = functools.partial(_create_data, caller, body)
        return await self._write(caller, Create(ROLE, caller, body.name, data))

    async def change_grants(self, caller: Caller, role_id: int, body: GrantsChange) -> RoleView:
        return await self._write(caller, _ChangeGrants(caller, RoleId(role_id), body))

    async def change_patterns(self, caller: Caller, role_id: int, body: PatternsChange) -> RoleView:
        return await self._write(caller, _ChangePatterns(caller, RoleId(role_id), body))

    async def _write(self, caller: Caller, change: DirectoryChange[RoleView]) -> RoleView:
        return await self._writer.run_or_audit_refusal(change, caller, "role", self._services)
