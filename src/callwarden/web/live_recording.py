"""Control of a live call's recording over HTTP: pause and resume (card data, PCI DSS), and on
demand start and stop (docs/recording.md, "Control from the API").

Two doors to the same control, each with the one permission it declares:

- `/api/v1/calls/{call_id}/recording`: the call's own operator, `recordings.pause_own` (scope
  own: anyone else's call reads as not found or forbidden, as the policy says);
- `/api/v1/supervision/calls/{call_id}/recording`: a supervisor of the call's team,
  `monitor.listen` on the call (another team's call is not found).

`GET` says the state (`not_recording`, `recording`, `paused`); `PUT {state, reason}` asks for
one. `paused` answers only once the media process has confirmed that nothing more is recorded;
a pause that cannot be confirmed stops the recording (fail closed) and answers 409
`pause_not_confirmed`. `stopped` needs a reason and a call whose policy is `on_demand` (409
`recording_required_by_policy` otherwise); `recording` resumes a paused recording or starts an
on-demand one. Each change is audited (`recording.pause`, ...) with the reason given.
"""

# No `from __future__ import annotations`: the routes are made inside a function and their
# annotations name its local declarations, which FastAPI must see as objects.
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import InvalidState, ValidationFailed
from callwarden.domain.ids import CallId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Resource, ResourceKind, not_found
from callwarden.telephony.recording_control import (
    PauseNotConfirmed,
    RecordingControl,
    RecordingState,
)
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, Target, TargetFound, require
from callwarden.web.monitoring import CALL_ID
from callwarden.web.schemas import RequestModel, ResponseModel
from callwarden.web.services import WebServices, services_of

__all__ = ["live_recording_routers"]

CallIdPath = Annotated[str, Path(min_length=1, max_length=255)]
MIN_CALL_ID_LENGTH = 8


class RecordingControlUnavailable(InvalidState):
    default_error_id = "recording_not_running"


class WantedState(RequestModel):
    state: Literal["recording", "paused", "stopped"]
    reason: Annotated[str | None, Field(max_length=500)] = None


class PauseView(ResponseModel):
    started_at: datetime
    ended_at: datetime | None


class RecordingStateView(ResponseModel):
    call_id: str
    policy: Literal["all", "none", "on_demand"]
    state: Literal["not_recording", "recording", "paused"]
    recording_id: str | None
    pauses: list[PauseView]
    failure: str | None

    @classmethod
    def of(cls, state: RecordingState) -> "RecordingStateView":
        return cls(
            call_id=str(state.call_id),
            policy=state.policy.value,
            state=state.state,  # type: ignore[arg-type]
            recording_id=state.recording_id,
            pauses=[PauseView(started_at=start, ended_at=end) for start, end in state.pauses],
            failure=state.failure,
        )


def _control(services: WebServices) -> RecordingControl:
    control = services.recording_control()
    if control is None:
        raise RecordingControlUnavailable("call recording is not running on this node")
    return control


def is_call_id(value: str) -> bool:
    """A SIP Call-ID (RFC 3261 25.1 `word ["@" word]`) of at least 8 characters with a letter
    in it: Call-IDs are globally unique random strings (8.1.1.4), so "0" or "-1" are ids
    typed by mistake, refused before any lookup; no path-like text ("../") either."""
    return (
        CALL_ID.fullmatch(value) is not None
        and len(value) >= MIN_CALL_ID_LENGTH
        and any(character.isalpha() for character in value)
        and "../" not in value
        and "/.." not in value
    )


def _call_target(services: WebServices) -> Target:
    """The recorded call named by the path (a call not recorded, or unknown, is not found)."""

    def resolve(snapshot: DirectorySnapshot, path_params: Mapping[str, Any]) -> TargetFound:
        call_id = str(path_params.get("call_id", ""))
        if not is_call_id(call_id):
            problem = "must be a SIP Call-ID as the call's events and CDR show it"
            raise ValidationFailed(
                f"call_id: {problem}",
                details={
                    "field": "call_id",
                    "problems": [{"location": "path", "field": "call_id", "problem": problem}],
                },
            )
        what = "call"  # never the value sent: a hidden call and a missing one read alike
        control = services.recording_control()
        call = None if control is None else control.recorded_call(CallId(call_id))
        if call is None:
            raise not_found(what)
        resource = Resource.of(
            ResourceKind.CALL, owner=call.facts.operator_id, team=call.facts.team_id
        )
        return TargetFound(resource, what, call_id)

    return Target(ResourceKind.CALL, "call_id", resolve)


async def apply_state(
    control: RecordingControl, caller: Caller, call_id: CallId, wanted: WantedState
) -> RecordingState:
    """Bring the call's recording to the state asked for; the state once done (a pause only
    once confirmed)."""
    principal, reason = caller.principal, wanted.reason
    current = control.state_of(call_id, principal)
    if wanted.state == "paused":
        if not await control.pause(call_id, principal, by="api", reason=reason):
            raise PauseNotConfirmed(
                f"the pause of call {call_id}'s recording was not confirmed: "
                "the recording was stopped (fail closed)"
            )
    elif wanted.state == "stopped":
        await control.stop(call_id, principal, reason=reason)
    elif current.state == "paused":
        await control.resume(call_id, principal, by="api", reason=reason)
    elif current.state == "not_recording":
        await control.start(call_id, principal, reason=reason)
    return control.state_of(call_id, principal)


def _router(services: WebServices, prefix: str, permission: Permission, tag: str) -> APIRouter:
    router = APIRouter(prefix=f"{API_PREFIX}{prefix}", tags=[tag], route_class=GuardedRoute)
    on_call = Annotated[Caller, require(permission, target=_call_target(services))]

    def control_of(request: Request) -> RecordingControl:
        return _control(services_of(request))

    control_dependency = Annotated[RecordingControl, Depends(control_of)]

    @router.get("/{call_id}/recording", summary="The recording state of a live call")
    async def read(
        caller: on_call, control: control_dependency, call_id: CallIdPath
    ) -> RecordingStateView:
        return RecordingStateView.of(control.state_of(CallId(call_id), caller.principal))

    @router.put("/{call_id}/recording", summary="Pause, resume, start or stop the recording")
    async def change(
        caller: on_call, control: control_dependency, call_id: CallIdPath, body: WantedState
    ) -> RecordingStateView:
        state = await apply_state(control, caller, CallId(call_id), body)
        return RecordingStateView.of(state)

    return router


def live_recording_routers(services: WebServices) -> tuple[APIRouter, APIRouter]:
    """The operator's door (own calls) and the supervisor's door (the team's calls)."""
    return (
        _router(services, "/calls", Permission.RECORDING_PAUSE_OWN, "live recording"),
        _router(services, "/supervision/calls", Permission.MONITOR_LISTEN, "live recording"),
    )
