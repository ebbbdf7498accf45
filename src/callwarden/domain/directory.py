"""An immutable, indexed view of the whole configuration, for readers on the hot path.

The SIP registrar, the dial plan and the ACD look users, trunks and queues up here instead of
querying the database per request. A snapshot never changes; the store builds a new one on
reload and swaps it in whole, so a reader always sees one consistent configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TypeVar

from callwarden.domain.ids import QueueId, RoleId, TeamId, TrunkId, UserId
from callwarden.domain.models import InboundNumber, Queue, Role, Team, Trunk, User
from callwarden.domain.policy import Principal

_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


def _index(items: Iterable[tuple[_Key, _Value]]) -> Mapping[_Key, _Value]:
    return MappingProxyType(dict(items))


class DirectorySnapshot:
    """Teams, roles, users, trunks and queues, indexed by the keys the call path uses."""

    def __init__(
        self,
        *,
        teams: Iterable[Team] = (),
        roles: Iterable[Role] = (),
        users: Iterable[User] = (),
        trunks: Iterable[Trunk] = (),
        queues: Iterable[Queue] = (),
        break_reasons: Iterable[str] = (),
    ) -> None:
        self.break_reasons: tuple[str, ...] = tuple(break_reasons)
        """The reasons an operator may give for a break, in their provisioned order (the
        digit after the break feature code is the 1-based index); empty: the ACD's default."""
        self.teams: tuple[Team, ...] = tuple(sorted(teams, key=lambda team: team.name))
        self.roles: tuple[Role, ...] = tuple(sorted(roles, key=lambda role: role.name))
        self.users: tuple[User, ...] = tuple(sorted(users, key=lambda user: user.username))
        self.trunks: tuple[Trunk, ...] = tuple(sorted(trunks, key=lambda trunk: trunk.name))
        self.queues: tuple[Queue, ...] = tuple(sorted(queues, key=lambda queue: queue.name))
        self._teams: Mapping[TeamId, Team] = _index((team.id, team) for team in self.teams)
        self._roles: Mapping[RoleId, Role] = _index((role.id, role) for role in self.roles)
        self._roles_by_name = _index((role.name, role) for role in self.roles)
        self._users: Mapping[UserId, User] = _index((user.id, user) for user in self.users)
        self._users_by_name = _index((user.username, user) for user in self.users)
        self._users_by_extension = _index(
            (user.extension, user) for user in self.users if user.extension is not None
        )
        self._trunks: Mapping[TrunkId, Trunk] = _index((trunk.id, trunk) for trunk in self.trunks)
        self._trunks_by_name = _index((trunk.name, trunk) for trunk in self.trunks)
        self._inbound = _index(
            (inbound.number, (trunk, inbound))
            for trunk in self.trunks
            for inbound in trunk.inbound_numbers
        )
        self._queues: Mapping[QueueId, Queue] = _index((queue.id, queue) for queue in self.queues)
        self._queues_by_number = _index((queue.number, queue) for queue in self.queues)
        self._queues_by_name = _index((queue.name, queue) for queue in self.queues)
        children: dict[TeamId, list[TeamId]] = {}
        for team in self.teams:
            if team.parent_id is not None:
                children.setdefault(team.parent_id, []).append(team.id)
        self._team_children: Mapping[TeamId, tuple[TeamId, ...]] = _index(
            (parent, tuple(kids)) for parent, kids in children.items()
        )

    def __repr__(self) -> str:
        return (
            f"DirectorySnapshot(teams={len(self.teams)}, roles={len(self.roles)}, "
            f"users={len(self.users)}, trunks={len(self.trunks)}, queues={len(self.queues)})"
        )

    # users and roles

    def user(self, user_id: UserId) -> User | None:
        return self._users.get(user_id)

    def user_by_username(self, username: str) -> User | None:
        return self._users_by_name.get(username)

    def user_by_extension(self, extension: str) -> User | None:
        return self._users_by_extension.get(extension)

    def role(self, role_id: RoleId) -> Role | None:
        return self._roles.get(role_id)

    def role_by_name(self, name: str) -> Role | None:
        return self._roles_by_name.get(name)

    def role_of(self, user: User) -> Role:
        """The user's role; a snapshot always holds the role of each of its users."""
        return self._roles[user.role_id]

    def principal_for(self, user: User) -> Principal:
        """Who `user` is to the policy: their role's grants, their team, and the teams they
        supervise with every team nested below those."""
        supervised: frozenset[TeamId] = frozenset().union(
            *(self.team_with_descendants(team_id) for team_id in user.supervised_team_ids)
        )
        return Principal(
            user_id=user.id,
            team_id=user.team_id,
            supervised_team_ids=supervised,
            grants=self.role_of(user).grants,
            enabled=user.enabled,
        )

    def may_dial_out(self, user: User, number: str) -> bool:
        """Whether `user` may call `number` through a trunk (their role's allow-list)."""
        return user.enabled and self.role_of(user).allows_dialling(number)

    # teams

    def team(self, team_id: TeamId) -> Team | None:
        return self._teams.get(team_id)

    def team_with_descendants(self, team_id: TeamId) -> frozenset[TeamId]:
        """`team_id` and every team nested below it (a team of teams)."""
        found: set[TeamId] = set()
        pending = [team_id]
        while pending:
            current = pending.pop()
            if current in found:
                continue
            found.add(current)
            pending.extend(self._team_children.get(current, ()))
        return frozenset(found)

    # trunks and queues

    def trunk(self, trunk_id: TrunkId) -> Trunk | None:
        return self._trunks.get(trunk_id)

    def trunk_by_name(self, name: str) -> Trunk | None:
        return self._trunks_by_name.get(name)

    def inbound_number(self, number: str) -> tuple[Trunk, InboundNumber] | None:
        """The trunk owning inbound `number`, and where that number goes."""
        return self._inbound.get(number)

    def trunks_for_outbound(self, number: str) -> tuple[Trunk, ...]:
        """Enabled trunks whose outbound patterns match `number`, in name order."""
        return tuple(trunk for trunk in self.trunks if trunk.routes_outbound(number))

    def queue(self, queue_id: QueueId) -> Queue | None:
        return self._queues.get(queue_id)

    def queue_by_number(self, number: str) -> Queue | None:
        return self._queues_by_number.get(number)

    def queue_by_name(self, name: str) -> Queue | None:
        return self._queues_by_name.get(name)
