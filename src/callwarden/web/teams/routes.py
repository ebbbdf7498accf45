"""`/api/v1/teams`: each route needs `teams.manage` on the team concerned (or on teams at
large, for the list and for creation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web import targets
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, require
from callwarden.web.schemas import Page
from callwarden.web.services import app_part
from callwarden.web.teams.schemas import NewTeam, TeamListParameters, TeamPatch, TeamView
from callwarden.web.teams.service import TeamAdmin

router = APIRouter(prefix=f"{API_PREFIX}/teams", tags=["teams"], route_class=GuardedRoute)

ManageTeams = Annotated[Caller, require(Permission.TEAMS_MANAGE, kind=ResourceKind.TEAM)]
ManageTeam = Annotated[Caller, require(Permission.TEAMS_MANAGE, target=targets.TEAM)]
TeamIdPath = Annotated[int, Path(ge=1, le=targets.MAX_ID)]


def _admin(request: Request) -> TeamAdmin:
    return app_part(request, TeamAdmin)


Admin = Annotated[TeamAdmin, Depends(_admin)]


@router.get("", summary="List teams")
async def list_teams(
    caller: ManageTeams, admin: Admin, query: TeamListParameters
) -> Page[TeamView]:
    return admin.list(caller, query)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a team")
async def create_team(caller: ManageTeams, admin: Admin, body: NewTeam) -> TeamView:
    return await admin.create(caller, body)


@router.get("/{team_id}", summary="Read a team")
async def get_team(caller: ManageTeam, admin: Admin, team_id: TeamIdPath) -> TeamView:
    return admin.get(caller)


@router.patch("/{team_id}", summary="Rename a team or move it under another")
async def update_team(
    caller: ManageTeam, admin: Admin, team_id: TeamIdPath, body: TeamPatch
) -> TeamView:
    return await admin.update(caller, body)
