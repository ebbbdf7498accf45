"""`/api/v1/teams`: each route needs `teams.manage` on the team concerned (or on teams at
large, for the list and for creation)."""

from __future__ import annotations

from typing import Annotated

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web import targets
from callwarden.web.access import Caller, require
from callwarden.web.admin_api import AdminRoutes
from callwarden.web.schemas import Page
from callwarden.web.teams.schemas import NewTeam, TeamListParameters, TeamPatch, TeamView
from callwarden.web.teams.service import TeamAdmin

routes = AdminRoutes(
    "team",
    TeamAdmin,
    manage_all=Annotated[Caller, require(Permission.TEAMS_MANAGE, kind=ResourceKind.TEAM)],
    manage_one=Annotated[Caller, require(Permission.TEAMS_MANAGE, target=targets.TEAM)],
)
routes.crud(
    {
        "list": "List teams",
        "create": "Create a team",
        "get": "Read a team",
        "update": "Rename a team or move it under another",
    },
    view=TeamView,
    listing=Page[TeamView],
    query=TeamListParameters,
    new=NewTeam,
    patch=TeamPatch,
)
router = routes.router
