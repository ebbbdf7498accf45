"""The route of `callwarden.web.recordings.verify` (a module of its own: the route is made inside
a function, and FastAPI must see its local declarations as objects, so no postponed
annotations here)."""

import asyncio
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter

from callwarden.domain.ids import RecordingId
from callwarden.domain.permissions import Permission
from callwarden.recording.commands import RecordingTools
from callwarden.recording.service import RecordingService
from callwarden.web.access import Caller, Target, require
from callwarden.web.recordings.verify import (
    RecordingNotVerifiable,
    VerificationOut,
    check,
    verification_out,
    verify_event,
)
from callwarden.web.services import WebServices


def _tools(services: WebServices) -> RecordingTools:
    tools = services.recording_tools()
    if tools is None:
        raise RecordingNotVerifiable("recordings cannot be verified: not configured on this node")
    return tools


def add_verify_route(
    router: APIRouter,
    services: WebServices,
    target: Target,
    service: Callable[[WebServices], RecordingService],
) -> None:
    """`POST /{recording_id}/verify`: `recordings.play` on the recording, audited. `service`
    finds the node's `RecordingService` (refusing when there is none)."""
    verifies_it = Annotated[Caller, require(Permission.RECORDINGS_PLAY, target=target)]

    @router.post("/{recording_id}/verify", summary="Verify a recording against its manifest")
    async def verify(caller: verifies_it) -> VerificationOut:
        assert caller.target is not None
        recording_id = RecordingId(caller.target.object_id)
        view = await asyncio.to_thread(service(services).get, caller.principal, recording_id)
        checked = await asyncio.to_thread(check, _tools(services), view.recording)
        await services.audit.record(verify_event(caller, recording_id, checked))
        return verification_out(recording_id, checked)
