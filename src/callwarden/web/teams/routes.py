"""`/api/v1/teams`: each route needs `teams.manage` on the team concerned (or on teams at
large, for the list and for creation)."""

from __future__ import annotations

from callwarden.domain.permissions import Permission
from callwarden.web import targets
from callwarden.web.admin_api import AdminRoutes
from callwarden.web.schemas import Page
from callwarden.web.teams.schemas import NewTeam, TeamListParameters, TeamPatch, TeamView
from callwarden.web.teams.service import TeamAdmin

routes = AdminRoutes("team", TeamAdmin, Permission.TEAMS_MANAGE, target=targets.TEAM)
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
