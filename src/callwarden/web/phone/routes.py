"""`/api/v1/phone`: the browser phone's signalling, over the page's authenticated WebSocket.

The handshake needs a fully signed-in session from an allowed origin and
`agent_state.change_own` on one's own agent (whoever takes calls at the desk), like the desk's
live feed: the web session is the identity, there are no SIP credentials. Once accepted, the
socket greets (`{"type": "welcome", "ice_servers": [...]}`) and carries the phone's messages
(`callwarden.webrtc.phone`, docs/webrtc.md). The phone is bound to this session and this
socket: it is closed when the socket closes, and when the session ends (sign-out, expiry, the
user disabled), the phone closes at once and the socket closes with 4401 and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends
from starlette.websockets import WebSocket, WebSocketDisconnect

from callwarden.security.sessions import SessionEndReason
from callwarden.web.access import API_PREFIX, Caller, GuardedWebSocketRoute, established_caller
from callwarden.web.desk.routes import DESK_LIVE_ACCESS
from callwarden.web.live.connections import CLOSE_GOING_AWAY, CLOSE_SESSION_ENDED
from callwarden.web.services import services_of
from callwarden.webrtc.phone import BrowserPhone
from callwarden.webrtc.phones import TooManyPhones

logger = logging.getLogger(__name__)

PHONE_PATH = f"{API_PREFIX}/phone"
CLOSE_UNAVAILABLE = 4503
"""No browser phones on this node (not configured), or too many open."""
_GONE = (WebSocketDisconnect, OSError, RuntimeError)
_SESSION_ENDS = frozenset(reason.value for reason in SessionEndReason)


def _caller(websocket: WebSocket) -> Caller:
    return established_caller(websocket)


async def phone(websocket: WebSocket, caller: Annotated[Caller, Depends(_caller)]) -> None:
    services = services_of(websocket)
    phones = services.browser_phones()
    await websocket.accept()
    if phones is None:
        await websocket.close(code=CLOSE_UNAVAILABLE, reason="not_configured")
        return
    lock = asyncio.Lock()

    async def send(message: dict[str, Any]) -> None:
        """To the page; OSError once it has gone (what the phone expects of a lost page)."""
        async with lock:
            try:
                await websocket.send_json(message)
            except WebSocketDisconnect as error:
                raise ConnectionResetError(f"the page has gone ({error.code})") from error

    try:
        handset = await phones.open(caller.session.id, caller.user.id, caller.user.username, send)
    except TooManyPhones:
        await websocket.close(code=CLOSE_UNAVAILABLE, reason="too_many_phones")
        return
    try:
        now = services.clock.now().timestamp()
        ice = phones.settings.ice.for_page(str(caller.user.id), now)
        policy = phones.settings.ice.transport_policy
        welcome = {"type": "welcome", "user_id": caller.user.id, "ice_servers": ice}
        await send({**welcome, "ice_transport_policy": policy})
        await _serve(websocket, handset, send)
    except _GONE:
        pass
    finally:
        await handset.close("page_closed")
    reason = handset.close_reason
    code = CLOSE_SESSION_ENDED if reason in _SESSION_ENDS else CLOSE_GOING_AWAY
    with contextlib.suppress(*_GONE):
        await websocket.close(code=code, reason=reason)


async def _serve(
    websocket: WebSocket, handset: BrowserPhone, send: Callable[[dict[str, Any]], Awaitable[None]]
) -> None:
    """Hand the page's messages to the phone until the page leaves or the phone closes."""
    closed = asyncio.create_task(handset.closed.wait())
    try:
        while not handset.closed.is_set():
            receive = asyncio.create_task(websocket.receive_json())
            done, _ = await asyncio.wait({receive, closed}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError, *_GONE):
                    await receive
                return
            try:
                message = receive.result()
            except (ValueError, KeyError):
                await send({"type": "error", "error_id": "not_json"})
                continue
            await handset.handle(message)
    finally:
        closed.cancel()


def phone_route() -> GuardedWebSocketRoute:
    return GuardedWebSocketRoute(PHONE_PATH, phone, DESK_LIVE_ACCESS)
