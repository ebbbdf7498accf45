"""Use cases of the user routes. Routes have checked `users.manage` on the user concerned
(see `callwarden.web.access`); what is decided here is what only the change itself shows:

- **The granting rule for people.** Giving a user a role (at creation or by a role change) is
  giving them that role's grants, so the caller must hold every one of them, at least as wide
  (`may_give_person`): an admin cannot make someone (an account whose password they set, say)
  an auditor or a supervisor and so reach recordings or live audio. Setting the password or SIP
  password of a user whose role holds grants beyond the caller's is refused for the same
  reason: it would let the caller sign in as them. Grants at scope `own` are exempt for a
  caller holding `users.manage:all` (power over the grantee's own calls only), so the built-in
  admin creates operators and sets their passwords.
- **Sessions end with the change.** Disabling a user, changing their role or their password
  ends all their sessions at once (and with them their live connections).
- Each change is audited with before and after in its own transaction; each refusal of this
  kind is audited as a permission denial.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from callwarden.domain.errors import Conflict, Forbidden, InvalidState, JsonValue, ValidationFailed
from callwarden.domain.ids import UserId
from callwarden.domain.models import User
from callwarden.domain.permissions import (
    Grant,
    Permission,
    grants_beyond,
    grants_beyond_for_person,
)
from callwarden.domain.policy import list_scope
from callwarden.provisioning.document import ProvisioningDocument, UserSpec
from callwarden.provisioning.state import StoredState
from callwarden.security.audit import AuditAction, AuditEvent
from callwarden.security.sessions import SessionEndReason, SessionId
from callwarden.store.mapping import grants_from_rows, user_from_row
from callwarden.store.schema import RoleRow, UserRow
from callwarden.web.access import Caller
from callwarden.web.admin_api import found
from callwarden.web.directory_writes import DirectoryAdmin, changes, denial, row_by_id
from callwarden.web.errors import body_field_error
from callwarden.web.schemas import Page
from callwarden.web.services import WebServices
from callwarden.web.users.schemas import (
    MfaResetView,
    NewUser,
    RoleChange,
    UserListQuery,
    UserPatch,
    UserView,
)


def _role_row(stored: StoredState, role_id: int, field: str) -> RoleRow:
    for row in stored.roles.values():
        if row.id == role_id:
            return row
    raise body_field_error(field, f"unknown role {role_id}")


def _team_name(stored: StoredState, team_id: int, field: str) -> str:
    name = stored.team_name(team_id)
    if name is None:
        raise body_field_error(field, f"unknown team {team_id}")
    return name


def _grants_of(row: RoleRow) -> frozenset[Grant]:
    return grants_from_rows(row.grants, f"role {row.name}")


def check_may_give(
    caller: Caller, grants: Collection[Grant], field: str, what: str, *, to_person: bool = True
) -> None:
    """Refuse (403 `grant_not_held`) unless the caller may give all of `grants`: to a person
    (`to_person`, `grants_beyond_for_person`: own-scope grants exempt for `users.manage:all`)
    or to a role (`grants_beyond`: every grant held at least as wide)."""
    rule = grants_beyond_for_person if to_person else grants_beyond
    beyond = rule(caller.principal.grants, grants)
    if beyond:
        listed: list[JsonValue] = [str(grant) for grant in sorted(beyond, key=str)]
        raise Forbidden(
            f"{what} holds grants you do not hold yourself: {', '.join(map(str, listed))}",
            error_id="grant_not_held",
            details={"field": field, "grants": listed},
        )


def _view_details(view: UserView) -> dict[str, JsonValue]:
    return dict(view.model_dump(mode="json"))


def _load_view(session: Session, username: str) -> tuple[User, UserView]:
    session.expire_all()  # read back what was flushed, relationships included
    row = session.scalar(
        select(UserRow)
        .options(selectinload(UserRow.supervised))
        .where(UserRow.username == username)
    )
    assert row is not None
    user = user_from_row(row)
    role = session.get_one(RoleRow, user.role_id)
    return user, UserView.of(user, role.name)


@dataclass
class _Create:
    caller: Caller
    body: NewUser
    services: WebServices
    username: str = ""

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        body = self.body
        if body.username in stored.users:
            raise Conflict(f"username {body.username!r} is taken", error_id="username_taken")
        role = _role_row(stored, body.role_id, "role_id")
        check_may_give(self.caller, _grants_of(role), "role_id", f"role {role.name!r}")
        data: dict[str, Any] = {"username": body.username, "role": role.name}
        if body.display_name is not None:
            data["display_name"] = body.display_name
        if body.team_id is not None:
            data["team"] = _team_name(stored, body.team_id, "team_id")
        if body.extension is not None:
            data["extension"] = body.extension
        if body.password is not None:
            check_password(self.services, body.password, body.username, body.display_name)
            data["password"] = body.password
        if body.sip_password is not None:
            data["sip_password"] = body.sip_password
        data["supervises"] = [
            _team_name(stored, team_id, f"supervises[{index}]")
            for index, team_id in enumerate(body.supervises)
        ]
        self.username = body.username
        return ProvisioningDocument(users=[UserSpec.model_validate(data)])

    def finish(self, session: Session) -> tuple[UserView, Sequence[AuditEvent]]:
        user, view = _load_view(session, self.username)
        return view, [
            self.caller.succeeded(
                AuditAction.USER_CREATE, "user", user.id, {"after": _view_details(view)}
            )
        ]


def check_password(
    services: WebServices, password: str, username: str, display_name: str | None
) -> None:
    """The password policy, reported on the field `password` (422 `password_rejected`)."""
    rejected = services.password_policy.problem(
        password, username=username, display_name=display_name
    )
    if rejected is not None:
        error = body_field_error("password", rejected.reason_message)
        raise ValidationFailed(
            error.message,
            error_id="password_rejected",
            details={**error.details, "reason": rejected.reason.value},
        )


Builder = Callable[[StoredState, UserRow, RoleRow], dict[str, Any]]
"""What a change sets, as keys of the provisioning `UserSpec` (checks raise from inside)."""


@dataclass
class _Change:
    """A change to an existing user: `fields` of the provisioning `UserSpec`."""

    caller: Caller
    user_id: UserId
    build: Builder
    username: str = ""
    before: UserView | None = None
    changed: tuple[str, ...] = ()

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        row = row_by_id(stored.users.values(), self.user_id, "user")
        role = session.get_one(RoleRow, row.role_id)
        self.username = row.username
        self.before = UserView.of(user_from_row(row), role.name)
        data: dict[str, Any] = self.build(stored, row, role)
        self.changed = tuple(
            sorted(key for key, value in data.items() if key != "role" or value != role.name)
        )
        return ProvisioningDocument(
            users=[UserSpec.model_validate({"username": row.username, "role": role.name, **data})]
        )

    def finish(self, session: Session) -> tuple[UserView, Sequence[AuditEvent]]:
        user, view = _load_view(session, self.username)
        assert self.before is not None
        details = changes(_view_details(self.before), _view_details(view))
        details["fields"] = list(self.changed)
        return view, [self.caller.succeeded(AuditAction.USER_UPDATE, "user", user.id, details)]


class UserAdmin(DirectoryAdmin):
    """The user routes' use cases; blocking work runs in worker threads."""

    async def list(self, caller: Caller, query: UserListQuery) -> Page[UserView]:
        return await asyncio.to_thread(self._list, caller, query)

    def _list(self, caller: Caller, query: UserListQuery) -> Page[UserView]:
        scope = list_scope(caller.principal, Permission.USERS_MANAGE)
        conditions: list[ColumnElement[bool]] = []
        if not scope.everything:
            visible: list[ColumnElement[bool]] = []
            if scope.owner_id is not None:
                visible.append(UserRow.id == scope.owner_id)
            if scope.team_ids:
                visible.append(UserRow.team_id.in_(sorted(scope.team_ids)))
            if not visible:
                return Page(items=[], total=0, limit=query.limit, offset=query.offset)
            conditions.append(visible[0] if len(visible) == 1 else visible[0] | visible[1])
        if query.team_id is not None:
            conditions.append(UserRow.team_id == query.team_id)
        if query.role_id is not None:
            conditions.append(UserRow.role_id == query.role_id)
        if query.enabled is not None:
            conditions.append(UserRow.enabled == query.enabled)
        if query.username_prefix is not None:
            conditions.append(UserRow.username.startswith(query.username_prefix, autoescape=True))
        column = {
            "username": UserRow.username,
            "display_name": UserRow.display_name,
            "id": UserRow.id,
            "extension": UserRow.extension,
        }[query.sort]
        order = column.asc() if query.order == "asc" else column.desc()
        statement = (
            select(UserRow)
            .options(selectinload(UserRow.supervised))
            .where(*conditions)
            .order_by(order, UserRow.id)
            .limit(query.limit)
            .offset(query.offset)
        )
        with self._services.database() as session:
            total = session.scalar(select(func.count()).select_from(UserRow).where(*conditions))
            rows = list(session.scalars(statement))
            roles = {row.id: row.name for row in session.scalars(select(RoleRow))}
            items = [UserView.of(user_from_row(row), roles[row.role_id]) for row in rows]
        return Page(items=items, total=total or 0, limit=query.limit, offset=query.offset)

    def get(self, caller: Caller, user_id: int) -> UserView:
        snapshot = self._snapshot
        user = found(snapshot.user(UserId(user_id)), f"user {user_id}")
        return UserView.of(user, snapshot.role_of(user).name)

    async def create(self, caller: Caller, body: NewUser) -> UserView:
        return await self._write(caller, _Create(caller, body, self._services))

    async def update(self, caller: Caller, user_id: int, body: UserPatch) -> UserView:
        services = self._services

        def build(stored: StoredState, row: UserRow, role: RoleRow) -> dict[str, Any]:
            data: dict[str, Any] = {}
            if body.given("password") or body.given("sip_password"):
                check_may_give(caller, _grants_of(role), "password", f"user {row.id}'s role")
            if body.given("display_name"):
                data["display_name"] = body.display_name
            if body.given("team_id"):
                team_id = body.team_id
                data["team"] = None if team_id is None else _team_name(stored, team_id, "team_id")
            if body.given("extension"):
                data["extension"] = body.extension
            if body.given("password"):
                if body.password is not None:
                    display_name = body.display_name or row.display_name
                    check_password(services, body.password, row.username, display_name)
                data["password"] = body.password
            if body.given("sip_password"):
                data["sip_password"] = body.sip_password
            if body.supervises is not None:
                data["supervises"] = [
                    _team_name(stored, team_id, f"supervises[{index}]")
                    for index, team_id in enumerate(body.supervises)
                ]
            return data

        view = await self._write(caller, _Change(caller, UserId(user_id), build))
        if body.given("password"):
            # Changing one's own password keeps the session it was changed from (ASVS V7.4.3).
            keep = caller.session.id if view.id == caller.user.id else None
            await self._end_sessions(caller, view.id, SessionEndReason.PASSWORD_CHANGED, keep)
        return view

    async def change_role(self, caller: Caller, user_id: int, body: RoleChange) -> UserView:
        def build(stored: StoredState, row: UserRow, role: RoleRow) -> dict[str, Any]:
            new_role = _role_row(stored, body.role_id, "role_id")
            check_may_give(caller, _grants_of(new_role), "role_id", f"role {new_role.name!r}")
            return {"role": new_role.name}

        change = _Change(caller, UserId(user_id), build)
        view = await self._write(caller, change)
        if change.changed:
            await self._end_sessions(caller, view.id, SessionEndReason.ROLE_CHANGED)
        return view

    async def disable(self, caller: Caller, user_id: int) -> UserView:
        return await self._set_enabled(caller, user_id, enabled=False)

    async def enable(self, caller: Caller, user_id: int) -> UserView:
        return await self._set_enabled(caller, user_id, enabled=True)

    async def _set_enabled(self, caller: Caller, user_id: int, *, enabled: bool) -> UserView:
        def build(stored: StoredState, row: UserRow, role: RoleRow) -> dict[str, Any]:
            if not enabled and row.id == caller.user.id:
                raise InvalidState("you cannot disable yourself", error_id="cannot_disable_self")
            return {"enabled": enabled}

        view = await self._write(caller, _Change(caller, UserId(user_id), build))
        if not enabled:
            await self._end_sessions(caller, view.id, SessionEndReason.DISABLED)
        return view

    async def reset_mfa(self, caller: Caller, user_id: int) -> MfaResetView:
        """Remove the user's second factor (a lost phone): they enrol again at their next
        sign-in. Resetting it opens the account to whoever knows its password, so the granting
        rule applies as for setting a password, and all the user's sessions end. One's own
        factor is changed through the self-service MFA routes, not here."""
        services = self._services
        if user_id == caller.user.id:
            raise InvalidState(
                "reset your own second factor through your MFA settings",
                error_id="cannot_reset_own_mfa",
            )
        snapshot = self._snapshot
        user = found(snapshot.user(UserId(user_id)), f"user {user_id}")
        try:
            check_may_give(
                caller, snapshot.role_of(user).grants, "user_id", f"user {user.username!r}"
            )
        except Forbidden as refusal:
            await services.audit.record_quietly(denial(caller, refusal, "user", user_id))
            raise
        removed = await asyncio.to_thread(services.mfa.reset, UserId(user_id))
        details: dict[str, JsonValue] = {"reset_by_admin": True, "had_mfa": removed}
        await services.audit.record(
            caller.succeeded(AuditAction.MFA_DISABLED, "user", user_id, details)
        )
        await self._end_sessions(caller, user_id, SessionEndReason.MFA_CHANGED)
        return MfaResetView(user_id=user_id, had_mfa=removed)

    async def _write(self, caller: Caller, change: _Create | _Change) -> UserView:
        return await self._writer.run_or_audit_refusal(change, caller, "user", self._services)

    async def _end_sessions(
        self,
        caller: Caller,
        user_id: int,
        reason: SessionEndReason,
        keep: SessionId | None = None,
    ) -> None:
        services = self._services
        ended = await asyncio.to_thread(
            services.sessions.revoke_all, UserId(user_id), reason, keep=keep
        )
        if ended:
            details: dict[str, JsonValue] = {
                "reason": reason.value,
                "sessions": [int(session) for session in ended],
            }
            await services.audit.record(
                caller.succeeded(AuditAction.SESSION_ENDED, "user", user_id, details)
            )
