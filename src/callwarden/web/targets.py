"""How routes find the object their permission is checked against, from the path.

Each resolver reads the current directory snapshot (the same one principals are built from),
so the policy judges the object as it is now. A missing object raises exactly what the policy
raises for an invisible one (`not_found("user 7")`), so the two cannot be told apart; a
malformed id is a 422 naming the path parameter.

Users are owned by themselves and belong to their team; teams belong to themselves; roles are
global (the catalogue of roles is no secret to whoever may manage them); queues belong to their
team; trunks are global.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import QueueId, RoleId, TeamId, TrunkId, UserId
from callwarden.domain.policy import Resource, ResourceKind, not_found
from callwarden.web.access import Target, TargetFound

MAX_ID = 2**31 - 1


def path_id(path_params: Mapping[str, Any], name: str) -> int:
    """A path parameter that must be a positive integer (422 naming it otherwise)."""
    text = str(path_params.get(name, ""))
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        problem = f"must be a whole number from 1 to {MAX_ID}"
        raise ValidationFailed(
            f"{name}: {problem}",
            details={
                "field": name,
                "problems": [{"location": "path", "field": name, "problem": problem}],
            },
        )
    return int(text)


def _user(snapshot: DirectorySnapshot, path_params: Mapping[str, Any]) -> TargetFound:
    user_id = UserId(path_id(path_params, "user_id"))
    what = f"user {user_id}"
    user = snapshot.user(user_id)
    if user is None:
        raise not_found(what)
    return TargetFound(
        Resource.of(ResourceKind.USER, owner=user.id, team=user.team_id), what, str(user_id)
    )


def _team(snapshot: DirectorySnapshot, path_params: Mapping[str, Any]) -> TargetFound:
    team_id = TeamId(path_id(path_params, "team_id"))
    what = f"team {team_id}"
    if snapshot.team(team_id) is None:
        raise not_found(what)
    return TargetFound(Resource.of(ResourceKind.TEAM, team=team_id), what, str(team_id))


def _role(snapshot: DirectorySnapshot, path_params: Mapping[str, Any]) -> TargetFound:
    role_id = RoleId(path_id(path_params, "role_id"))
    what = f"role {role_id}"
    if snapshot.role(role_id) is None:
        raise not_found(what)
    return TargetFound(Resource.global_resource(ResourceKind.ROLE), what, str(role_id))


def _queue(snapshot: DirectorySnapshot, path_params: Mapping[str, Any]) -> TargetFound:
    queue_id = QueueId(path_id(path_params, "queue_id"))
    what = f"queue {queue_id}"
    queue = snapshot.queue(queue_id)
    if queue is None:
        raise not_found(what)
    return TargetFound(Resource.of(ResourceKind.QUEUE, team=queue.team_id), what, str(queue_id))


def _trunk(snapshot: DirectorySnapshot, path_params: Mapping[str, Any]) -> TargetFound:
    trunk_id = TrunkId(path_id(path_params, "trunk_id"))
    what = f"trunk {trunk_id}"
    if snapshot.trunk(trunk_id) is None:
        raise not_found(what)
    return TargetFound(Resource.global_resource(ResourceKind.TRUNK), what, str(trunk_id))


USER = Target(ResourceKind.USER, "user_id", _user)
TEAM = Target(ResourceKind.TEAM, "team_id", _team)
ROLE = Target(ResourceKind.ROLE, "role_id", _role)
QUEUE = Target(ResourceKind.QUEUE, "queue_id", _queue)
TRUNK = Target(ResourceKind.TRUNK, "trunk_id", _trunk)
