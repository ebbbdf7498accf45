"""What the recordings and audit pages show when they load: the choices of their filters, limited
to what the caller may see, and which actions their permissions allow. The ES modules
(`recordings.js`, `audit.js`) search, play and annotate through the API; the server decides
each call again.

The filters offer only the teams, queues and people whose recordings the caller may play
(`list_scope` of `recordings.play`, the decision the search itself applies), so a supervisor
sees no names of other teams. The caller-number filter is offered only to whoever holds
`numbers.view`; download only to whoever holds `recordings.download` (at some scope: the API
decides per recording).
"""

from __future__ import annotations

from typing import Any

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import User
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Principal, Resource, ResourceKind, authorize, list_scope
from callwarden.web.access import Caller
from callwarden.web.pages.render import script_json
from callwarden.web.services import WebServices

DIRECTIONS = ("inbound", "outbound", "internal")
PLAY_MODES = ("mix", "stereo", "track:customer", "track:operator")
AUDIT_OUTCOMES = ("success", "denied", "failed")
LISTENING_ACTIONS = ("recording.play", "monitoring.")


def _name(user: User) -> str:
    return user.display_name or user.username


def _choices(snapshot: DirectorySnapshot, principal: Principal) -> dict[str, dict[str, str]]:
    scope = list_scope(principal, Permission.RECORDINGS_PLAY)
    kind = ResourceKind.RECORDING
    teams = {
        str(team.id): team.display_name or team.name
        for team in snapshot.teams
        if scope.admits(Resource.of(kind, team=team.id))
    }
    queues = {
        str(queue.id): queue.display_name or queue.name
        for queue in snapshot.queues
        if scope.admits(Resource.of(kind, team=queue.team_id))
    }
    people = {
        str(user.id): _name(user)
        for user in snapshot.users
        if scope.admits(Resource.of(kind, owner=user.id, team=user.team_id))
    }
    return {"teams": teams, "queues": queues, "operators": people}


def _sorted(names: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(names.items(), key=lambda item: item[1])


def recordings_context(services: WebServices, caller: Caller) -> dict[str, Any]:
    snapshot = services.directory.snapshot
    principal = caller.principal
    choices = _choices(snapshot, principal)
    return {
        "teams": _sorted(choices["teams"]),
        "queues": _sorted(choices["queues"]),
        "operators": _sorted(choices["operators"]),
        "directions": DIRECTIONS,
        "play_modes": PLAY_MODES,
        "may_search_numbers": principal.scope_of(Permission.NUMBERS_VIEW) is not None,
        "may_download": principal.scope_of(Permission.RECORDINGS_DOWNLOAD) is not None,
        "may_audit": authorize(
            principal, Permission.AUDIT_VIEW, Resource.global_resource(ResourceKind.AUDIT_LOG)
        ).allowed,
        "names_json": script_json(choices),
    }


def audit_context(services: WebServices, caller: Caller) -> dict[str, Any]:
    snapshot = services.directory.snapshot
    log = Resource.global_resource(ResourceKind.AUDIT_LOG)
    return {
        "outcomes": AUDIT_OUTCOMES,
        "people": _sorted({str(user.id): _name(user) for user in snapshot.users}),
        "may_export": authorize(caller.principal, Permission.AUDIT_EXPORT, log).allowed,
    }
