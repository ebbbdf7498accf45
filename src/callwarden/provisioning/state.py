"""The stored configuration, loaded once per run, and the state a document would leave behind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callwarden.provisioning.document import ProvisioningDocument, TrunkSpec, UserSpec
from callwarden.store.schema import QueueRow, RoleRow, TeamRow, TrunkRow, UserRow

_Row = TypeVar("_Row")


def _except(rows: Mapping[str, _Row], names: set[str]) -> dict[str, _Row]:
    return {name: row for name, row in rows.items() if name not in names}


class StoredState:
    """The configuration rows by name, read inside the run's transaction."""

    def __init__(self, session: Session) -> None:
        self.roles = {row.name: row for row in session.scalars(select(RoleRow))}
        self.teams = {row.name: row for row in session.scalars(select(TeamRow))}
        users = select(UserRow).options(selectinload(UserRow.supervised))
        self.users = {row.username: row for row in session.scalars(users)}
        trunks = select(TrunkRow).options(selectinload(TrunkRow.inbound_numbers))
        self.trunks = {row.name: row for row in session.scalars(trunks)}
        queues = select(QueueRow).options(selectinload(QueueRow.members))
        self.queues = {row.name: row for row in session.scalars(queues)}
        self._team_names = {row.id: name for name, row in self.teams.items()}

    def team_name(self, team_id: int | None) -> str | None:
        return None if team_id is None else self._team_names.get(team_id)


class TargetState:
    """What the configuration will be once `document` is applied to `stored`.

    Objects absent from the document stay (unless it prunes); keys absent from an object keep
    their stored values.
    """

    def __init__(self, document: ProvisioningDocument, stored: StoredState) -> None:
        self.document = document
        self.stored = stored
        prune = document.prune
        listed_users = {user.username for user in document.users}
        listed_teams = {team.name for team in document.teams}
        listed_trunks = {trunk.name for trunk in document.trunks}
        listed_queues = {queue.name for queue in document.queues}
        self.kept_users = {} if prune else _except(stored.users, listed_users)
        self.kept_teams = {} if prune else _except(stored.teams, listed_teams)
        self.kept_trunks = {} if prune else _except(stored.trunks, listed_trunks)
        self.kept_queues = {} if prune else _except(stored.queues, listed_queues)
        self.team_names = listed_teams | set(self.kept_teams)
        self.user_names = listed_users | set(self.kept_users)
        self.role_names = {role.name for role in document.roles} | {
            name for name, row in stored.roles.items() if row.builtin or not prune
        }

    def extension_of(self, spec: UserSpec) -> str | None:
        if spec.given("extension"):
            return spec.extension
        row = self.stored.users.get(spec.username)
        return None if row is None else row.extension

    def team_of(self, spec: UserSpec) -> str | None:
        if spec.given("team"):
            return spec.team
        row = self.stored.users.get(spec.username)
        return None if row is None else self.stored.team_name(row.team_id)

    def supervised_by(self, spec: UserSpec) -> list[str]:
        if spec.given("supervises"):
            return list(spec.supervises)
        row = self.stored.users.get(spec.username)
        if row is None:
            return []
        names = (self.stored.team_name(link.team_id) for link in row.supervised)
        return [name for name in names if name is not None]

    def parent_of(self, name: str, parent: str | None, *, given: bool) -> str | None:
        if given:
            return parent
        row = self.stored.teams.get(name)
        return None if row is None else self.stored.team_name(row.parent_id)

    def inbound_of(self, spec: TrunkSpec) -> list[tuple[str, str | None]]:
        if spec.given("inbound_numbers"):
            return [(inbound.number, inbound.destination) for inbound in spec.inbound_numbers]
        row = self.stored.trunks.get(spec.name)
        if row is None:
            return []
        return [(inbound.number, inbound.destination) for inbound in row.inbound_numbers]
