"""The admin console's pages: users, roles and their grants, teams. Each is declared with the
permission its API needs (`users.manage`, `roles.manage`, `teams.manage`), so the navigation
shows it only to whoever may use it and the access matrix walks it like any page.

`/admin/queues` (`queues.manage`) shows the queues as configured, read-only: there is no
queue API yet, so the page reads the directory (the provisioning file sets queues).
`/admin/retention` (`retention.manage`) sets how long recordings are kept, by default, per
team and per queue (`/api/v1/retention-policies`).

The pages only read. Their ES modules (`admin_users.js`, `admin_roles.js`, `admin_teams.js`)
list and change through the API (`/api/v1/users`, `/roles`, `/teams`), which checks each
change again, applies the granting rule and audits it; a refusal is shown with its reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import Queue, QueueOverflow
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
ManageQueues = Annotated[Caller, require(Permission.QUEUES_MANAGE, kind=ResourceKind.QUEUE)]
RETENTION_SCOPES = ("default", "team", "queue")


async def _renderer(request: Request) -> PageRenderer:
    return app_part(request, PageRenderer)


Renderer = Annotated[PageRenderer, Depends(_renderer)]


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
    return renderer.render(
        request, "admin_users.html", caller, title_key="admin.users.title", context=context
    )


@router.get("/admin/roles")
async def roles_page(caller: ManageRoles, request: Request, renderer: Renderer) -> Response:
    context = {"permissions": permission_rows()}
    return renderer.render(
        request, "admin_roles.html", caller, title_key="admin.roles.title", context=context
    )


@router.get("/admin/teams")
async def teams_page(caller: ManageTeams, request: Request, renderer: Renderer) -> Response:
    context = admin_context(services_of(request).directory.snapshot)
    return renderer.render(
        request, "admin_teams.html", caller, title_key="admin.teams.title", context=context
    )


@router.get("/admin/retention")
async def retention_page(caller: ManageRetention, request: Request, renderer: Renderer) -> Response:
    context = admin_context(services_of(request).directory.snapshot)
    return renderer.render(
        request, "admin_retention.html", caller, title_key="admin.retention.title", context=context
    )


def _overflow_target(queue: Queue, snapshot: DirectorySnapshot) -> str | None:
    if queue.overflow is QueueOverflow.QUEUE and queue.overflow_queue_id is not None:
        target = snapshot.queue(queue.overflow_queue_id)
        return None if target is None else target.display_name or target.name
    if queue.overflow is QueueOverflow.USER and queue.overflow_user_id is not None:
        user = snapshot.user(queue.overflow_user_id)
        return None if user is None else user.display_name or user.username
    return None


def queue_rows(snapshot: DirectorySnapshot) -> list[dict[str, Any]]:
    """Each queue as configured: strategy, members, timers, service level, recording, overflow."""
    rows = []
    for queue in snapshot.queues:
        team = snapshot.team(queue.team_id)
        members = []
        for member in queue.members:
            user = snapshot.user(member.user_id)
            name = str(member.user_id) if user is None else user.display_name or user.username
            members.append({"name": name, "skill": member.skill_level, "penalty": member.penalty})
        rows.append(
            {
                "name": queue.display_name or queue.name,
                "number": queue.number,
                "team": "" if team is None else team.display_name or team.name,
                "strategy": queue.strategy.value,
                "members": members,
                "wrap_up": queue.wrap_up_seconds,
                "ring_timeout": queue.ring_timeout_seconds,
                "max_wait": queue.max_wait_seconds,
                "sl_seconds": queue.service_level_seconds,
                "sl_percent": queue.service_level_percent,
                "recording": queue.recording.value,
                "overflow": queue.overflow.value,
                "overflow_target": _overflow_target(queue, snapshot),
            }
        )
    return rows


@router.get("/admin/queues")
async def queues_page(caller: ManageQueues, request: Request, renderer: Renderer) -> Response:
    context = {"queues": queue_rows(services_of(request).directory.snapshot)}
    return renderer.render(
        request, "admin_queues.html", caller, title_key="admin.queues.title", context=context
    )
