"""`GET /api/v1/desk/call`: the operator's own current call with its caller's number as the
policy lets them see it.

No desk event carries a customer's number (least exposure: `acd.events`), so the desk asks for
it here when a call is offered or answered. The number comes from the node's ACD while the call
is in it (offered, in progress), else from the recorder (a recorded call's facts, in wrap-up
too), and is shown through `domain.policy.shown_number` on the call: whole to someone with
`numbers.view` on it, masked but for the last four digits to everyone else (the built-in
operator). Only the caller's own
agent's call is ever answered (`agent_state.change_own`, scope own), with its phase (ringing,
talking, wrap_up: a desk loaded during a call starts from it); all null without a call, and
`caller` null when the node does not know the number.
"""

# No `from __future__ import annotations`: FastAPI must see the route's annotations as objects.
from typing import Annotated, Literal

from fastapi import APIRouter

from callwarden.acd.agent import AgentState
from callwarden.acd.engine import AcdEngine
from callwarden.acd.errors import UnknownAgent
from callwarden.domain.ids import CallId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Resource, ResourceKind, shown_number
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, require
from callwarden.web.schemas import ResponseModel
from callwarden.web.services import WebServices

__all__ = ["DESK_CALL_PATH", "desk_call_router"]

DESK_CALL_PATH = f"{API_PREFIX}/desk/call"


Phase = Literal["ringing", "talking", "wrap_up"]
PHASES: dict[AgentState, Phase] = {
    AgentState.RINGING: "ringing",
    AgentState.ON_CALL: "talking",
    AgentState.WRAP_UP: "wrap_up",
}
"""The desk's phase of the call by the agent's state (a page loaded mid-call starts from it)."""


class DeskCallView(ResponseModel):
    call_id: str | None
    queue_id: int | None
    phase: Phase | None
    caller: str | None


def _number(services: WebServices, engine: AcdEngine, call_id: CallId) -> str | None:
    """The ACD's number of the call while it has it (offered, in progress), else the
    recorder's (a recorded call, in wrap-up too); an empty number is no number."""
    number = engine.caller_of(call_id)
    if not number:
        control = services.recording_control()
        recorded = None if control is None else control.recorded_call(call_id)
        number = None if recorded is None else recorded.facts.caller_number
    return number or None


def current_call(services: WebServices, caller: Caller) -> DeskCallView:
    """The caller's own agent's call (offered, in progress or in wrap-up), number masked per
    policy."""
    nothing = DeskCallView(call_id=None, queue_id=None, phase=None, caller=None)
    engine = services.acd()
    if engine is None:
        return nothing
    try:
        agent = engine.agent(caller.user.id)
    except UnknownAgent:
        return nothing
    if agent.call_id is None or agent.state not in PHASES:
        return nothing
    number = _number(services, engine, agent.call_id)
    resource = Resource.of(ResourceKind.CALL, owner=agent.user_id, team=agent.team_id)
    shown = None if number is None else shown_number(caller.principal, resource, number)
    return DeskCallView(
        call_id=str(agent.call_id),
        queue_id=agent.queue_id,
        phase=PHASES[agent.state],
        caller=shown,
    )


def desk_call_router(services: WebServices) -> APIRouter:
    router = APIRouter(tags=["desk"], route_class=GuardedRoute)
    own_agent = Annotated[
        Caller, require(Permission.AGENT_STATE_OWN, kind=ResourceKind.AGENT, own=True)
    ]

    @router.get(DESK_CALL_PATH, summary="One's own current call, caller masked per policy")
    async def read(caller: own_agent) -> DeskCallView:
        return current_call(services, caller)

    return router
