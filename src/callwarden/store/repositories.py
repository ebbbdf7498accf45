"""Repositories of the configuration: teams, roles, users, trunks and queues.

Each repository works inside a caller's `Session` (the unit of work): it flushes but never
commits, so a use case that touches several repositories commits once. Reads return domain
values; a missing object raises `NotFound` with an error id naming its kind.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callwarden.domain.errors import InvalidState, NotFound
from callwarden.domain.ids import QueueId, RoleId, TeamId, TrunkId, UserId
from callwarden.domain.models import Queue, Role, Team, Trunk, User
from callwarden.domain.permissions import Grant
from callwarden.store.mapping import (
    grant_rows,
    queue_from_row,
    role_from_row,
    team_from_row,
    trunk_from_row,
    user_from_row,
)
from callwarden.store.schema import Base, QueueRow, RoleRow, TeamRow, TrunkRow, UserRow

_Row = TypeVar("_Row", bound=Base)


def _row_by_id(session: Session, row_class: type[_Row], row_id: int, kind: str) -> _Row:
    row = session.get(row_class, row_id)
    if row is None:
        raise NotFound(f"{kind} {row_id} not found", error_id=f"{kind}_not_found")
    return row


class TeamRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def list_all(self) -> Sequence[Team]:
        rows = self._session.scalars(select(TeamRow).order_by(TeamRow.name))
        return [team_from_row(row) for row in rows]

    def get(self, team_id: TeamId) -> Team:
        return team_from_row(_row_by_id(self._session, TeamRow, team_id, "team"))

    def get_by_name(self, name: str) -> Team:
        row = self._session.scalar(select(TeamRow).where(TeamRow.name == name))
        if row is None:
            raise NotFound(f"team {name!r} not found", error_id="team_not_found")
        return team_from_row(row)


class RoleRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def list_all(self) -> Sequence[Role]:
        query = select(RoleRow).options(selectinload(RoleRow.grants)).order_by(RoleRow.name)
        return [role_from_row(row) for row in self._session.scalars(query)]

    def get(self, role_id: RoleId) -> Role:
        return role_from_row(_row_by_id(self._session, RoleRow, role_id, "role"))

    def get_by_name(self, name: str) -> Role:
        row = self._session.scalar(select(RoleRow).where(RoleRow.name == name))
        if row is None:
            raise NotFound(f"role {name!r} not found", error_id="role_not_found")
        return role_from_row(row)

    def set_grants(self, role_id: RoleId, grants: Collection[Grant]) -> Role:
        """Replace a custom role's grants. Whether the caller may give them (`may_grant`) is
        the caller's check; the built-in roles' grants are fixed and raise `InvalidState`."""
        row = _row_by_id(self._session, RoleRow, role_id, "role")
        if row.builtin:
            raise InvalidState(
                f"the grants of built-in role {row.name!r} cannot be changed",
                error_id="builtin_role_fixed",
            )
        wanted = {(grant_row.permission, grant_row.scope) for grant_row in grant_rows(grants)}
        if {(grant_row.permission, grant_row.scope) for grant_row in row.grants} != wanted:
            row.grants = grant_rows(grants)
            self._session.flush()
        return role_from_row(row)


class UserRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def list_all(self, *, team_ids: Collection[TeamId] | None = None) -> Sequence[User]:
        """All users, or those of `team_ids` only, in username order."""
        query = select(UserRow).options(selectinload(UserRow.supervised)).order_by(UserRow.username)
        if team_ids is not None:
            query = query.where(UserRow.team_id.in_(list(team_ids)))
        return [user_from_row(row) for row in self._session.scalars(query)]

    def get(self, user_id: UserId) -> User:
        return user_from_row(_row_by_id(self._session, UserRow, user_id, "user"))

    def find_by_username(self, username: str) -> User | None:
        row = self._session.scalar(select(UserRow).where(UserRow.username == username))
        return None if row is None else user_from_row(row)

    def set_password_hash(self, user_id: UserId, password_hash: str | None) -> None:
        """Store a new web password hash (None: the user can no longer sign in to the web)."""
        _row_by_id(self._session, UserRow, user_id, "user").password_hash = password_hash
        self._session.flush()

    def set_enabled(self, user_id: UserId, enabled: bool) -> None:
        _row_by_id(self._session, UserRow, user_id, "user").enabled = enabled
        self._session.flush()


class TrunkRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def list_all(self) -> Sequence[Trunk]:
        query = (
            select(TrunkRow).options(selectinload(TrunkRow.inbound_numbers)).order_by(TrunkRow.name)
        )
        return [trunk_from_row(row) for row in self._session.scalars(query)]

    def get(self, trunk_id: TrunkId) -> Trunk:
        return trunk_from_row(_row_by_id(self._session, TrunkRow, trunk_id, "trunk"))

    def get_by_name(self, name: str) -> Trunk:
        row = self._session.scalar(select(TrunkRow).where(TrunkRow.name == name))
        if row is None:
            raise NotFound(f"trunk {name!r} not found", error_id="trunk_not_found")
        return trunk_from_row(row)


class QueueRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def list_all(self, *, team_ids: Collection[TeamId] | None = None) -> Sequence[Queue]:
        """All queues, or those of `team_ids` only, in name order."""
        query = select(QueueRow).options(selectinload(QueueRow.members)).order_by(QueueRow.name)
        if team_ids is not None:
            query = query.where(QueueRow.team_id.in_(list(team_ids)))
        return [queue_from_row(row) for row in self._session.scalars(query)]

    def get(self, queue_id: QueueId) -> Queue:
        return queue_from_row(_row_by_id(self._session, QueueRow, queue_id, "queue"))

    def get_by_number(self, number: str) -> Queue:
        row = self._session.scalar(select(QueueRow).where(QueueRow.number == number))
        if row is None:
            raise NotFound(f"queue {number!r} not found", error_id="queue_not_found")
        return queue_from_row(row)
