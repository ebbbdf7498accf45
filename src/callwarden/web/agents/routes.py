"""`/api/v1/agents`: an operator's own state (`agent_state.change_own`), the live agent states
of the teams one watches (`live.view`), and a supervisor's forced break or sign-out of an
operator of their team (`agents.manage` on that agent: another team's agent is 404)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import UserId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Resource, ResourceKind, not_found
from callwarden.web import targets
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, Target, TargetFound, require
from callwarden.web.agents.schemas import (
    AgentList,
    AgentListParameters,
    AgentView,
    ForcedStateChange,
    OwnStateChange,
)
from callwarden.web.agents.service import AgentDesk
from callwarden.web.services import app_part


def _agent(snapshot: DirectorySnapshot, path_params: Mapping[str, Any]) -> TargetFound:
    user_id = UserId(targets.path_id(path_params, "user_id"))
    what = f"agent {user_id}"
    user = snapshot.user(user_id)
    if user is None:
        raise not_found(what)
    return TargetFound(
        Resource.of(ResourceKind.AGENT, owner=user.id, team=user.team_id), what, str(user_id)
    )


AGENT = Target(ResourceKind.AGENT, "user_id", _agent)
"""An agent, owned by its user and belonging to the user's team."""

router = APIRouter(prefix=f"{API_PREFIX}/agents", tags=["agents"], route_class=GuardedRoute)

OwnState = Annotated[Caller, require(Permission.AGENT_STATE_OWN, kind=ResourceKind.AGENT, own=True)]
LiveView = Annotated[Caller, require(Permission.LIVE_VIEW, kind=ResourceKind.AGENT, own=True)]
ManageAgent = Annotated[Caller, require(Permission.AGENTS_MANAGE, target=AGENT)]
UserIdPath = Annotated[int, Path(ge=1, le=targets.MAX_ID)]


def _desk(request: Request) -> AgentDesk:
    return app_part(request, AgentDesk)


Desk = Annotated[AgentDesk, Depends(_desk)]


@router.get("/me", summary="Read one's own agent state")
async def get_own_state(caller: OwnState, desk: Desk) -> AgentView:
    return desk.me(caller)


@router.post("/me/state", summary="Become available, go on break or sign out")
async def change_own_state(caller: OwnState, desk: Desk, body: OwnStateChange) -> AgentView:
    return await desk.change_own(caller, body)


@router.get("", summary="Live agent states of the teams one watches")
async def list_agents(caller: LiveView, desk: Desk, query: AgentListParameters) -> AgentList:
    return desk.list(caller, query.team)


@router.post("/{user_id}/state", summary="Force an operator on break or sign them out")
async def force_state(
    caller: ManageAgent, desk: Desk, user_id: UserIdPath, body: ForcedStateChange
) -> AgentView:
    return await desk.force(caller, body)
