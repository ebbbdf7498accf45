"""The admin console's pages: users, roles and their grants, teams. Each is declared with the
permission its API needs (`users.manage`, `roles.manage`, `teams.manage`), so the navigation
shows it only to whoever may use it and the access matrix walks it like any page.

`/admin/queues` (`queues.manage`) lists the queues and changes them (`admin_queues.js` over
`/api/v1/queues`): strategy, members with skill level and penalty, timers, service-level
target, recording policy, overflow; create and delete.
`/admin/retention` (`retention.manage`) sets how long recordings are kept, by default, per
team and per queue (`/api/v1/retention-policies`), and shows and starts the purge
(`/api/v1/retention-policies/purge`). `/admin/holds` (`recordings.legal_hold`) lists, places
and releases legal holds (`/api/v1/legal-holds`). `/admin/network` (`settings.manage`) lists,
adds and removes the sign-in networks (`/api/v1/sign-in-networks`). `/admin/trunks`
(`trunks.manage`) lists, adds, changes and removes trunks (`/api/v1/trunks`).

The pages only read. Their ES modules (`admin_users.js`, `admin_roles.js`, `admin_teams.js`,
`admin_queues.js`) list and change through the API (`/api/v1/users`, `/roles`, `/teams`,
`/queues`), which checks each
change again, applies the granting rule and audits it; a refusal is shown with its reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import (
    HoldMusic,
    MonitoringTransparency,
    QueueOverflow,
    QueueStrategy,
    RecordingPolicy,
    Transport,
)
from callwarden.domain.permissions import Grant, Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web.access import Caller, require
from callwarden.web.pages.render import PageRenderer, script_json
from callwarden.web.pages.routing import PageRoute
from callwarden.web.services import app_part, services_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ManageUsers = Annotated[Caller, require(Permission.USERS_MANAGE, kind=ResourceKind.USER)]
ManageRoles = Annotated[Caller, require(Permission.ROLES_MANAGE, kind=ResourceKind.ROLE)]
ManageTeams = Annotated[Caller, require(Permission.TEAMS_MANAGE, kind=ResourceKind.TEAM)]
ManageRetention = Annotated[
    Caller, require(Permission.RETENTION_MANAGE, kind=ResourceKind.RETENTION_POLICY)
]
HoldRecordings = Annotated[
    Caller, require(Permission.RECORDINGS_LEGAL_HOLD, kind=ResourceKind.RECORDING)
]
HOLD_KINDS = ("recording", "call", "user", "queue")
ManageTrunks = Annotated[Caller, require(Permission.TRUNKS_MANAGE, kind=ResourceKind.TRUNK)]
ManageSettings = Annotated[Caller, require(Permission.SETTINGS_MANAGE, kind=ResourceKind.SETTINGS)]
ManageQueues = Annotated[Caller, require(Permission.QUEUES_MANAGE, kind=ResourceKind.QUEUE)]
RETENTION_SCOPES = ("default", "team", "queue")


async def _renderer(request: Request) -> PageRenderer:
    return app_part(request, PageRenderer)


Renderer = Annotated[PageRenderer, Depends(_renderer)]


def _render(
    renderer: PageRenderer, request: Request, caller: Caller, page: str, context: dict[str, Any]
) -> Response:
    """The page `admin_{page}.html`, titled `admin.{page}.title`."""
    return renderer.render(
        request, f"admin_{page}.html", caller, title_key=f"admin.{page}.title", context=context
    )


def _roles(snapshot: DirectorySnapshot) -> list[tuple[str, str]]:
    return [(str(role.id), role.name) for role in snapshot.roles]


def _teams(snapshot: DirectorySnapshot) -> list[tuple[str, str]]:
    return [(str(team.id), team.display_name or team.name) for team in snapshot.teams]


def permission_rows() -> list[dict[str, Any]]:
    """One row per permission: its code and the grant texts of the scopes it may be held at
    (what `PUT /roles/{id}/grants` takes)."""
    return [
        {
            "code": permission.value,
            "grants": [
                (scope.value, str(Grant(permission, scope)))
                for scope in sorted(permission.scopes, key=lambda scope: scope.rank)
            ],
        }
        for permission in Permission
    ]


def admin_context(snapshot: DirectorySnapshot) -> dict[str, Any]:
    roles = _roles(snapshot)
    teams = _teams(snapshot)
    queues = [(str(queue.id), queue.display_name or queue.name) for queue in snapshot.queues]
    return {
        "roles": roles,
        "teams": teams,
        "queues": queues,
        "scopes": RETENTION_SCOPES,
        "names_json": script_json(
            {"roles": dict(roles), "teams": dict(teams), "queues": dict(queues)}
        ),
    }


@router.get("/admin/users")
async def users_page(caller: ManageUsers, request: Request, renderer: Renderer) -> Response:
    context = admin_context(services_of(request).directory.snapshot)
    return _render(renderer, request, caller, "users", context)


@router.get("/admin/roles")
async def roles_page(caller: ManageRoles, request: Request, renderer: Renderer) -> Response:
    context = {"permissions": permission_rows()}
    return _render(renderer, request, caller, "roles", context)


@router.get("/admin/teams")
async def teams_page(caller: ManageTeams, request: Request, renderer: Renderer) -> Response:
    context = admin_context(services_of(request).directory.snapshot)
    context["transparencies"] = [policy.value for policy in MonitoringTransparency]
    return _render(renderer, request, caller, "teams", context)


@router.get("/admin/retention")
async def retention_page(caller: ManageRetention, request: Request, renderer: Renderer) -> Response:
    context = admin_context(services_of(request).directory.snapshot)
    return _render(renderer, request, caller, "retention", context)


@router.get("/admin/trunks")
async def trunks_page(caller: ManageTrunks, request: Request, renderer: Renderer) -> Response:
    context = {
        "transports": [(transport.value, transport.value.upper()) for transport in Transport]
    }
    return _render(renderer, request, caller, "trunks", context)


@router.get("/admin/network")
async def network_page(caller: ManageSettings, request: Request, renderer: Renderer) -> Response:
    services = services_of(request)
    context = admin_context(services.directory.snapshot)
    context["sip_trusted_networks"] = services.settings.sip_trusted_networks
    return _render(renderer, request, caller, "network", context)


def holds_context(snapshot: DirectorySnapshot) -> dict[str, Any]:
    """What the legal holds form offers: the kinds of target, people and queues by name."""
    users = [(str(user.id), user.display_name or user.username) for user in snapshot.users]
    queues = [(str(queue.id), queue.display_name or queue.name) for queue in snapshot.queues]
    return {
        "hold_kinds": HOLD_KINDS,
        "users": users,
        "queues": queues,
        "names_json": script_json({"users": dict(users), "queues": dict(queues)}),
    }


@router.get("/admin/holds")
async def holds_page(caller: HoldRecordings, request: Request, renderer: Renderer) -> Response:
    context = holds_context(services_of(request).directory.snapshot)
    return _render(renderer, request, caller, "holds", context)


def queue_context(snapshot: DirectorySnapshot) -> dict[str, Any]:
    """What the queue form offers: teams, people (members and overflow), and every choice of
    strategy, recording policy, hold music and overflow, as the API takes them."""
    teams = _teams(snapshot)
    users = [(str(user.id), user.display_name or user.username) for user in snapshot.users]
    return {
        "teams": teams,
        "users": users,
        "strategies": [strategy.value for strategy in QueueStrategy],
        "recording_policies": [policy.value for policy in RecordingPolicy],
        "hold_music": [music.value for music in HoldMusic],
        "overflow_actions": [action.value for action in QueueOverflow],
        "names_json": script_json({"teams": dict(teams), "users": dict(users)}),
    }


@router.get("/admin/queues")
async def queues_page(caller: ManageQueues, request: Request, renderer: Renderer) -> Response:
    context = queue_context(services_of(request).directory.snapshot)
    return _render(renderer, request, caller, "queues", context)
