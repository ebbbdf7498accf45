"""Use cases of the team routes (`teams.manage`, checked by the routes). Changes go through the
provisioning rules (names, no nesting cycles) and are audited with before and after. A team's
monitoring transparency applies to the next monitoring session of its operators."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callwarden.domain.errors import Conflict, JsonValue, ValidationFailed
from callwarden.domain.ids import TeamId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Resource, ResourceKind, list_scope, not_found
from callwarden.provisioning.document import ProvisioningDocument, TeamSpec
from callwarden.provisioning.state import StoredState
from callwarden.security.audit import AuditAction, AuditEvent
from callwarden.store.mapping import team_from_row
from callwarden.store.schema import TeamRow
from callwarden.web.access import Caller
from callwarden.web.directory_writes import DirectoryWriter
from callwarden.web.schemas import Page
from callwarden.web.services import WebServices
from callwarden.web.teams.schemas import NewTeam, TeamListQuery, TeamPatch, TeamView


def _parent_name(stored: StoredState, parent_id: int) -> str:
    name = stored.team_name(parent_id)
    if name is None:
        problem = f"unknown team {parent_id}"
        raise ValidationFailed(
            f"parent_id: {problem}",
            details={
                "field": "parent_id",
                "problems": [{"location": "body", "field": "parent_id", "problem": problem}],
            },
        )
    return name


def _load(session: Session, name: str) -> TeamView:
    session.expire_all()
    row = session.scalar(select(TeamRow).where(TeamRow.name == name))
    assert row is not None
    return TeamView.of(team_from_row(row))


@dataclass
class _Create:
    caller: Caller
    body: NewTeam

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        body = self.body
        if body.name in stored.teams:
            raise Conflict(f"team name {body.name!r} is taken", error_id="team_name_taken")
        data: dict[str, Any] = {"name": body.name}
        if body.display_name is not None:
            data["display_name"] = body.display_name
        if body.parent_id is not None:
            data["parent"] = _parent_name(stored, body.parent_id)
        if body.monitoring_transparency is not None:
            data["monitoring_transparency"] = body.monitoring_transparency
        return ProvisioningDocument(teams=[TeamSpec.model_validate(data)])

    def finish(self, session: Session) -> tuple[TeamView, Sequence[AuditEvent]]:
        view = _load(session, self.body.name)
        after: dict[str, JsonValue] = dict(view.model_dump(mode="json"))
        return view, [
            self.caller.succeeded(AuditAction.TEAM_CREATE, "team", view.id, {"after": after})
        ]


@dataclass
class _Update:
    caller: Caller
    team_id: TeamId
    body: TeamPatch
    name: str = ""
    before: dict[str, JsonValue] = field(default_factory=dict)

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        row = next((row for row in stored.teams.values() if row.id == self.team_id), None)
        if row is None:
            raise not_found(f"team {self.team_id}")
        self.name = row.name
        self.before = dict(TeamView.of(team_from_row(row)).model_dump(mode="json"))
        data: dict[str, Any] = {"name": row.name}
        if self.body.given("display_name"):
            data["display_name"] = self.body.display_name
        if self.body.given("parent_id"):
            parent = self.body.parent_id
            data["parent"] = None if parent is None else _parent_name(stored, parent)
        if self.body.given("monitoring_transparency"):
            data["monitoring_transparency"] = self.body.monitoring_transparency
        return ProvisioningDocument(teams=[TeamSpec.model_validate(data)])

    def finish(self, session: Session) -> tuple[TeamView, Sequence[AuditEvent]]:
        view = _load(session, self.name)
        after: dict[str, JsonValue] = dict(view.model_dump(mode="json"))
        details: dict[str, JsonValue] = {
            "before": {k: v for k, v in self.before.items() if after.get(k) != v},
            "after": {k: v for k, v in after.items() if self.before.get(k) != v},
        }
        return view, [self.caller.succeeded(AuditAction.TEAM_UPDATE, "team", view.id, details)]


class TeamAdmin:
    def __init__(self, services: WebServices, writer: DirectoryWriter) -> None:
        self._services = services
        self._writer = writer

    def list(self, caller: Caller, query: TeamListQuery) -> Page[TeamView]:
        """From the directory snapshot, filtered to the teams the caller may manage."""
        scope = list_scope(caller.principal, Permission.TEAMS_MANAGE)
        teams = [
            team
            for team in self._services.directory.snapshot.teams
            if scope.admits(Resource.of(ResourceKind.TEAM, team=team.id))
            and (query.parent_id is None or team.parent_id == query.parent_id)
        ]
        key = query.sort
        teams.sort(key=lambda team: (getattr(team, key), team.id), reverse=query.order == "desc")
        page = teams[query.offset : query.offset + query.limit]
        return Page(
            items=[TeamView.of(team) for team in page],
            total=len(teams),
            limit=query.limit,
            offset=query.offset,
        )

    def get(self, caller: Caller) -> TeamView:
        assert caller.target is not None
        team = self._services.directory.snapshot.team(TeamId(int(caller.target.object_id)))
        if team is None:
            raise not_found(caller.target.what)
        return TeamView.of(team)

    async def create(self, caller: Caller, body: NewTeam) -> TeamView:
        return await asyncio.to_thread(self._writer.write, _Create(caller, body))

    async def update(self, caller: Caller, body: TeamPatch) -> TeamView:
        assert caller.target is not None
        change = _Update(caller, TeamId(int(caller.target.object_id)), body)
        return await asyncio.to_thread(self._writer.write, change)
