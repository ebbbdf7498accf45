"""`/api/v1/live`: the live WebSocket. The handshake is refused (HTTP 403 to the client) without
a fully signed-in session cookie or from an origin not in `allowed_origins` (cross-site
WebSocket hijacking, ASVS V4.4.2); a connection closes (4401, with the reason) as soon as its
session ends: sign-out, expiry, the user disabled, their role or password changed.

For now it greets, answers `{"type": "ping"}` with `{"type": "pong"}` and waits; live events
arrive with the ACD issue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

from fastapi import Depends
from starlette.websockets import WebSocket, WebSocketDisconnect

from callwarden.web.access import (
    API_PREFIX,
    WEBSOCKET_CLOSE_UNAUTHENTICATED,
    Access,
    AccessKind,
    Caller,
    GuardedWebSocketRoute,
    established_caller,
)
from callwarden.web.live.connections import LiveConnection, LiveConnections
from callwarden.web.services import app_part

logger = logging.getLogger(__name__)

LIVE_PATH = f"{API_PREFIX}/live"
LIVE_ACCESS = Access(
    AccessKind.SELF_SERVICE, note="a fully signed-in session from an allowed origin"
)


def _caller(websocket: WebSocket) -> Caller:
    """The caller the route's guard established before the handshake was accepted."""
    return established_caller(websocket)


async def live(websocket: WebSocket, caller: Annotated[Caller, Depends(_caller)]) -> None:
    hub = app_part(websocket, LiveConnections)
    connection = LiveConnection(websocket, caller.session.id, caller.user.id)
    hub.add(connection)
    try:
        await websocket.accept()
        await websocket.send_json({"type": "welcome", "user_id": caller.user.id})
        await _serve(connection)
    finally:
        hub.remove(connection)


async def _serve(connection: LiveConnection) -> None:
    websocket = connection.websocket
    ended = asyncio.ensure_future(connection.ended.wait())
    try:
        while True:
            receiving = asyncio.ensure_future(websocket.receive_json())
            done, _ = await asyncio.wait({receiving, ended}, return_when=asyncio.FIRST_COMPLETED)
            if ended in done:
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await receiving
                await websocket.close(
                    code=WEBSOCKET_CLOSE_UNAUTHENTICATED, reason=connection.end_reason
                )
                return
            try:
                message: Any = receiving.result()
            except WebSocketDisconnect:
                return
            except (ValueError, KeyError):
                await websocket.send_json({"type": "error", "error_id": "not_json"})
                continue
            if isinstance(message, dict) and message.get("type") == "ping":
                await websocket.send_json({"type": "pong"})
    finally:
        ended.cancel()


def live_route() -> GuardedWebSocketRoute:
    return GuardedWebSocketRoute(LIVE_PATH, live, LIVE_ACCESS)
