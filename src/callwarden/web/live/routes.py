"""`/api/v1/live`: the live WebSocket. The handshake is refused (HTTP 403 to the client) without
a fully signed-in session cookie or from an origin not in `allowed_origins` (cross-site
WebSocket hijacking, ASVS V4.4.2).

Once accepted, it greets (`{"type": "welcome", "user_id": ...}`) and streams the bus events the
user may see (`LiveStream`, `live_filter`): what `authorize()` allows them on each event's object,
and the notices about their own account. It answers `{"type": "ping"}` with `{"type": "pong"}`.
It closes (4401, with the reason) as soon as its session ends (sign-out, expiry, the user
disabled, their role or password changed), and (4409, `principal_changed`) when the user's
grants or teams change. docs/api.md describes the messages.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends
from starlette.websockets import WebSocket

from callwarden.bus.subscription import Subscription
from callwarden.web.access import (
    API_PREFIX,
    Access,
    AccessKind,
    Caller,
    GuardedWebSocketRoute,
    established_caller,
)
from callwarden.web.live.connections import LiveConnection, LiveConnections
from callwarden.web.live.stream import LiveStream
from callwarden.web.services import app_part, services_of

logger = logging.getLogger(__name__)

LIVE_PATH = f"{API_PREFIX}/live"
LIVE_ACCESS = Access(
    AccessKind.SELF_SERVICE, note="a fully signed-in session from an allowed origin"
)


def _caller(websocket: WebSocket) -> Caller:
    """The caller the route's guard established before the handshake was accepted."""
    return established_caller(websocket)


async def live(websocket: WebSocket, caller: Annotated[Caller, Depends(_caller)]) -> None:
    services = services_of(websocket)
    settings = services.settings
    hub = app_part(websocket, LiveConnections)
    connection = LiveConnection(websocket, caller.session.id, caller.user.id)
    dispatch = hub.dispatch_for(services.bus)
    # Subscribed before the handshake completes: nothing published from here on is missed.
    subscription = dispatch.subscribe(caller.principal, max_pending=settings.live_queue)
    try:
        await serve_stream(websocket, caller, connection, subscription)
    finally:
        dispatch.unsubscribe(subscription)


async def serve_stream(
    websocket: WebSocket,
    caller: Caller,
    connection: LiveConnection,
    subscription: Subscription,
) -> None:
    """Accept the handshake, greet, and stream `subscription` until the connection ends; the
    connection is known to the node's hub (revocations, shutdown) meanwhile. The caller made
    the subscription before the handshake, so nothing published since is missed, and releases
    it afterwards."""
    services = services_of(websocket)
    hub = app_part(websocket, LiveConnections)
    hub.add(connection)
    try:
        await websocket.accept()
        await websocket.send_json({"type": "welcome", "user_id": caller.user.id})
        stream = LiveStream(
            connection,
            subscription,
            caller.principal,
            messages=hub.messages,
            directory=services.directory,
            recheck_seconds=services.settings.live_recheck_seconds,
        )
        await stream.run()
    finally:
        hub.remove(connection)


def live_route() -> GuardedWebSocketRoute:
    return GuardedWebSocketRoute(LIVE_PATH, live, LIVE_ACCESS)
