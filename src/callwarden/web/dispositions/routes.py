"""`/api/v1/calls/{call_id}/disposition`: a call's wrap-up disposition code and note.

- `PUT {code, note}`: the call's own operator sets them, during the call, its wrap-up or later
  (a call is known while the ACD or the recorder has it, and afterwards by the disposition it
  already has); `calls.take` at scope own, so anyone else's call reads as not found or
  forbidden, as the policy says. The code must be one the provisioning file lists
  (`dispositions`, 422 `disposition_unknown` otherwise); the note is free text of at most
  `NOTE_LIMIT` characters. Each change is audited (`call.disposition`, code and note, and the
  code it replaced) in the transaction that stores it.
- `GET`: whoever may see the call's team's reports (`reports.view`: the team's supervisor,
  admins and auditors) reads them; `code` and `note` are null while none is set.
"""

# No `from __future__ import annotations`: the routes are made inside a function and their
# annotations name its local declarations, which FastAPI must see as objects.
import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import AfterValidator, Field

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import JsonValue, ValidationFailed
from callwarden.domain.ids import CallId, TeamId, UserId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Resource, ResourceKind, not_found
from callwarden.security.audit import AuditEvent, AuditOutcome
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, Target, TargetFound, require
from callwarden.web.dispositions.store import (
    NOTE_LIMIT,
    CallDisposition,
    DispositionStore,
)
from callwarden.web.live_recording import is_call_id
from callwarden.web.schemas import RequestModel, ResponseModel
from callwarden.web.services import WebServices

__all__ = ["AUDIT_ACTION", "disposition_router"]

AUDIT_ACTION = "call.disposition"
CallIdPath = Annotated[str, Path(min_length=1, max_length=255)]


class DispositionUnknown(ValidationFailed):
    default_error_id = "disposition_unknown"


def _printable(text: str) -> str:
    """Free text, lines and tabs allowed; no other control character (NUL cannot even be
    stored by PostgreSQL)."""
    if any(ord(character) < 0x20 and character not in "\n\r\t" for character in text):
        raise ValueError("must not contain control characters")
    if "\x7f" in text:
        raise ValueError("must not contain control characters")
    return text


class DispositionRequest(RequestModel):
    code: Annotated[str, Field(min_length=1, max_length=32), AfterValidator(_printable)]
    note: Annotated[str, Field(max_length=NOTE_LIMIT), AfterValidator(_printable)] = ""


class DispositionView(ResponseModel):
    call_id: str
    code: str | None
    note: str | None
    user_id: int | None
    team_id: int | None
    updated_at: datetime | None

    @classmethod
    def of(cls, call_id: str, disposition: CallDisposition | None) -> "DispositionView":
        if disposition is None:
            return cls(
                call_id=call_id, code=None, note=None, user_id=None, team_id=None, updated_at=None
            )
        return cls(
            call_id=call_id,
            code=disposition.code,
            note=disposition.note,
            user_id=disposition.user_id,
            team_id=disposition.team_id,
            updated_at=disposition.updated_at,
        )


def call_owner(
    services: WebServices, store: DispositionStore, call_id: CallId
) -> tuple[UserId | None, TeamId | None] | None:
    """The operator and team of the call: from the ACD (offered, in progress, in wrap-up), the
    recorder (a recorded call), or the disposition already stored; None if none knows it."""
    engine = services.acd()
    if engine is not None:
        for agent in engine.agents():
            if agent.call_id == call_id:
                return agent.user_id, agent.team_id
    control = services.recording_control()
    recorded = None if control is None else control.recorded_call(call_id)
    if recorded is not None and recorded.facts.operator_id is not None:
        return recorded.facts.operator_id, recorded.facts.team_id
    stored = store.of_call(call_id)
    return None if stored is None else (stored.user_id, stored.team_id)


def _call_target(services: WebServices, store: DispositionStore) -> Target:
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
        owner = call_owner(services, store, CallId(call_id))
        if owner is None:
            raise not_found("call")
        resource = Resource.of(ResourceKind.CALL, owner=owner[0], team=owner[1])
        return TargetFound(resource, "call", call_id)

    return Target(ResourceKind.CALL, "call_id", resolve)


def _unknown_code(code: str) -> DispositionUnknown:
    problem = "not a disposition code of the provisioning file"
    return DispositionUnknown(
        f"code: {problem}",
        details={
            "field": "code",
            "problems": [{"location": "body", "field": "code", "problem": problem}],
        },
    )


def _audit_event(
    caller: Caller, saved: CallDisposition
) -> Callable[[CallDisposition | None], AuditEvent]:
    def event(before: CallDisposition | None) -> AuditEvent:
        details: dict[str, JsonValue] = {
            "code": saved.code,
            "note": saved.note,
            "previous_code": None if before is None else before.code,
        }
        return AuditEvent(
            action=AUDIT_ACTION,
            actor=caller.actor,
            outcome=AuditOutcome.SUCCESS,
            object_kind="call",
            object_id=saved.call_id,
            source_address=caller.source_address,
            details=details,
        )

    return event


def disposition_router(services: WebServices) -> APIRouter:
    store = DispositionStore(services.database)
    target = _call_target(services, store)
    router = APIRouter(prefix=f"{API_PREFIX}/calls", tags=["wrap-up"], route_class=GuardedRoute)
    own_call = Annotated[Caller, require(Permission.CALLS_TAKE, target=target)]
    team_call = Annotated[Caller, require(Permission.REPORTS_VIEW, target=target)]

    @router.put("/{call_id}/disposition", summary="Set one's own call's disposition and note")
    async def change(
        caller: own_call, call_id: CallIdPath, body: DispositionRequest
    ) -> DispositionView:
        codes = await asyncio.to_thread(store.codes)
        if body.code not in {known.code for known in codes}:
            raise _unknown_code(body.code)
        saved = CallDisposition(
            call_id=call_id,
            user_id=caller.user.id,
            team_id=caller.user.team_id,
            code=body.code,
            note=body.note,
            updated_at=services.clock.now(),
        )
        await asyncio.to_thread(store.save, saved, _audit_event(caller, saved), services.clock)
        return DispositionView.of(call_id, saved)

    @router.get("/{call_id}/disposition", summary="A call's disposition and note")
    async def read(caller: team_call, call_id: CallIdPath) -> DispositionView:
        found = await asyncio.to_thread(store.of_call, call_id)
        return DispositionView.of(call_id, found)

    return router
