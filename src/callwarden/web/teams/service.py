"""Use cases of the team routes (`teams.manage`, checked by the routes). Changes go through the
provisioning rules (names, no nesting cycles) and are audited with before and after. A team's
monitoring transparency applies to the next monitoring session of its operators."""

from __future__ import annotations

import functools
from typing import Any

from callwarden.domain.ids import TeamId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Resource, ResourceKind, list_scope
from callwarden.provisioning.document import TeamSpec
from callwarden.provisioning.state import StoredState
from callwarden.store.mapping import team_from_row
from callwarden.store.schema import TeamRow
from callwarden.web.access import Caller
from callwarden.web.admin_api import found, page_of
from callwarden.web.directory_writes import Create, DirectoryAdmin, ObjectKind, Update
from callwarden.web.errors import body_field_error
from callwarden.web.schemas import Page
from callwarden.web.teams.schemas import NewTeam, TeamListQuery, TeamPatch, TeamView


def _parent_name(stored: StoredState, parent_id: int) -> str:
    name = stored.team_name(parent_id)
    if name is None:
        raise body_field_error("parent_id", f"unknown team {parent_id}")
    return name


def _create_data(body: NewTeam, stored: StoredState) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if body.display_name is not None:
        data["display_name"] = body.display_name
    if body.parent_id is not None:
        data["parent"] = _parent_name(stored, body.parent_id)
    if body.monitoring_transparency is not None:
        data["monitoring_transparency"] = body.monitoring_transparency
    return data


def _update_data(body: TeamPatch, stored: StoredState, row: TeamRow) -> dict[str, Any]:
    data: dict[str, Any] = {"name": row.name}
    if body.given("display_name"):
        data["display_name"] = body.display_name
    if body.given("parent_id"):
        data["parent"] = None if body.parent_id is None else _parent_name(stored, body.parent_id)
    if body.given("monitoring_transparency"):
        data["monitoring_transparency"] = body.monitoring_transparency
    return data


TEAM = ObjectKind[TeamRow, TeamView]("team", TeamSpec, lambda row: TeamView.of(team_from_row(row)))


class TeamAdmin(DirectoryAdmin):
    def list(self, caller: Caller, query: TeamListQuery) -> Page[TeamView]:
        """From the directory snapshot, filtered to the teams the caller may manage."""
        scope = list_scope(caller.principal, Permission.TEAMS_MANAGE)
        teams = [
            team
            for team in self._snapshot.teams
            if scope.admits(Resource.of(ResourceKind.TEAM, team=team.id))
            and (query.parent_id is None or team.parent_id == query.parent_id)
        ]
        return page_of(teams, query, TeamView.of)

    def get(self, caller: Caller, team_id: int) -> TeamView:
        team = self._snapshot.team(TeamId(team_id))
        return TeamView.of(found(team, f"team {team_id}"))

    async def create(self, caller: Caller, body: NewTeam) -> TeamView:
        data = functools.partial(_create_data, body)
        return await self._writer.run(Create(TEAM, caller, body.name, data))

    async def update(self, caller: Caller, team_id: int, body: TeamPatch) -> TeamView:
        data = functools.partial(_update_data, body)
        return await self._writer.run(Update(TEAM, caller, team_id, data))
