"""`/api/v1/desk/live`: the operator desktop's WebSocket, streaming the ACD events about the
caller's own agent and own calls (state changes, calls offered to them, answered, ended,
handled), the recorder's events of their own calls (recording, paused, resumed, failed) and
the monitoring of their own calls when their team's transparency policy says operators are
told, in the message format of `/api/v1/live` (docs/api.md).

Why a stream of its own: `/api/v1/live` sends what `live.view` allows, and the built-in
`operator` holds no `live.view` at all (least exposure: no wallboard). An operator's own state
and own calls are theirs by `agent_state.change_own` on their own agent, which is what this
route declares; the filter admits nothing about anyone else. The handshake needs a fully
signed-in session and an allowed `Origin`, like `/api/v1/live`; the stream ends when the
session ends (4401) or the user's grants change (4409).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends
from starlette.websockets import WebSocket

from callwarden.acd.events import ACD_EVENT_TYPES
from callwarden.bus.event import Event, EventFilter
from callwarden.domain.ids import UserId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.recording.capture_events import CAPTURE_EVENT_TYPES
from callwarden.telephony.monitoring_events import MonitoringEvent
from callwarden.web.access import (
    API_PREFIX,
    Access,
    AccessKind,
    Caller,
    GuardedWebSocketRoute,
    established_caller,
)
from callwarden.web.live.connections import LiveConnection
from callwarden.web.live.routes import serve_stream
from callwarden.web.services import services_of

logger = logging.getLogger(__name__)

DESK_LIVE_PATH = f"{API_PREFIX}/desk/live"
DESK_LIVE_ACCESS = Access(
    AccessKind.PERMISSION,
    permission=Permission.AGENT_STATE_OWN,
    resource_kind=ResourceKind.AGENT,
    own=True,
)


DESK_EVENT_TYPES: tuple[type[Event], ...] = (*ACD_EVENT_TYPES, *CAPTURE_EVENT_TYPES)
"""What the desk shows of one's own calls: the ACD's events and the recorder's (recording,
paused, resumed, stopped, failed)."""


def own_events(user_id: UserId) -> EventFilter:
    """ACD and recording events about `user_id`'s own agent or own calls, and the monitoring
    of their own calls when the team's transparency policy tells operators
    (`operator_notified`); nothing else."""

    def admits(event: Event) -> bool:
        if event.user_id != user_id:
            return False
        if isinstance(event, MonitoringEvent):
            return event.operator_notified
        return isinstance(event, DESK_EVENT_TYPES)

    return admits


def _caller(websocket: WebSocket) -> Caller:
    return established_caller(websocket)


async def desk_live(websocket: WebSocket, caller: Annotated[Caller, Depends(_caller)]) -> None:
    services = services_of(websocket)
    settings = services.settings
    connection = LiveConnection(websocket, caller.session.id, caller.user.id)
    subscription = services.bus.subscribe(
        own_events(caller.user.id), max_pending=settings.live_queue
    )
    try:
        await serve_stream(websocket, caller, connection, subscription)
    finally:
        subscription.close()


def desk_live_route() -> GuardedWebSocketRoute:
    return GuardedWebSocketRoute(DESK_LIVE_PATH, desk_live, DESK_LIVE_ACCESS)
