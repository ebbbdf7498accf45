"""`/api/v1/phone`: the browser phone's signalling, over the page's authenticated WebSocket.

The handshake needs a fully signed-in session from an allowed origin and
`agent_state.change_own` on one's own agent (whoever takes calls at the desk), like the desk's
live feed: the web session is the identity, there are no SIP credentials. Once accepted, the
socket greets (`{"type": "welcome", "ice_servers": [...]}`) and carries the phone's messages
(`callwarden.webrtc.phone`, docs/webrtc.md). The phone is bound to this session and this
socket: it is closed when the page leaves (the socket closes with 1000 or 1001), and when the
session ends (sign-out, expiry, the user disabled) the phone closes at once and the socket
closes with 4401 and the reason. When the socket drops otherwise during a call, the call waits
for the page (`WebRtcSettings.rejoin_grace_seconds`): the page connects again with `?rejoin=1`
and sends `{"type": "rejoin", "token": ...}` first; the same session's phone with that token is
taken back (the welcome carries `rejoined`), else the page gets a new phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

from fastapi import Depends
from starlette.websockets import WebSocket, WebSocketDisconnect

from callwarden.security.sessions import SessionEndReason
from callwarden.web.access import API_PREFIX, Caller, GuardedWebSocketRoute, established_caller
from callwarden.web.desk.routes import DESK_LIVE_ACCESS
from callwarden.web.live.connections import CLOSE_GOING_AWAY, CLOSE_SESSION_ENDED
from callwarden.web.services import services_of
from callwarden.webrtc.phone import Attachment, BrowserPhone
from callwarden.webrtc.phones import TooManyPhones

logger = logging.getLogger(__name__)

PHONE_PATH = f"{API_PREFIX}/phone"
REJOIN_WAIT = 10.0
"""Seconds a rejoining page has to send its `rejoin` message."""
PAGE_LEFT = frozenset({1000, 1001})
"""Close codes of a page that left on purpose (closed, reloaded, signed out): its call ends."""
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

    taken = None
    if websocket.query_params.get("rejoin") == "1":
        try:
            token = await _rejoin_token(websocket)
        except _GONE:
            return
        taken = await phones.rejoin(caller.session.id, token, send)
    rejoined: dict[str, Any] | None = None
    if taken is None:
        try:
            handset = await phones.open(
                caller.session.id, caller.user.id, caller.user.username, send
            )
        except TooManyPhones:
            await websocket.close(code=CLOSE_UNAVAILABLE, reason="too_many_phones")
            return
        attachment = handset.attachment
    else:
        handset, attachment = taken
        call_id = handset.call.call_id if handset.call is not None else None
        rejoined = {"call_id": call_id, "held": handset.held, "token": handset.rejoin_token}
    if attachment is None:  # closed while it opened (the session ended)
        await websocket.close(code=CLOSE_SESSION_ENDED, reason=handset.close_reason)
        return
    left: int | None = None
    try:
        now = services.clock.now().timestamp()
        ice = phones.settings.ice.for_page(str(caller.user.id), now)
        policy = phones.settings.ice.transport_policy
        welcome = {"type": "welcome", "user_id": caller.user.id, "ice_servers": ice}
        welcome["ice_transport_policy"] = policy
        if rejoined is not None:
            welcome["rejoined"] = rejoined
        await send(welcome)
        await _serve(websocket, handset, attachment)
    except WebSocketDisconnect as gone:
        left = gone.code
    except _GONE:
        pass
    finally:
        if left in PAGE_LEFT:
            await handset.close("page_closed")
        else:  # dropped: a call in progress waits for the page
            await handset.detach(attachment)
    reason = handset.close_reason if handset.closed.is_set() else "call_kept"
    code = CLOSE_SESSION_ENDED if reason in _SESSION_ENDS else CLOSE_GOING_AWAY
    with contextlib.suppress(*_GONE):
        await websocket.close(code=code, reason=reason)


async def _rejoin_token(websocket: WebSocket) -> object:
    """The token of the page's first message, `{"type": "rejoin", "token": ...}`, or None."""
    try:
        async with asyncio.timeout(REJOIN_WAIT):
            message = await websocket.receive_json()
    except (TimeoutError, ValueError, KeyError):
        return None
    return (
        message.get("token")
        if isinstance(message, dict) and message.get("type") == "rejoin"
        else None
    )


async def _serve(websocket: WebSocket, handset: BrowserPhone, attachment: Attachment) -> None:
    """Hand the page's messages to the phone until the page leaves, the phone closes or
    another socket of the page takes the phone."""
    ended = asyncio.create_task(attachment.ended.wait())
    try:
        while not attachment.ended.is_set():
            receive = asyncio.create_task(websocket.receive_json())
            done, _ = await asyncio.wait({receive, ended}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError, *_GONE):
                    await receive
                return
            try:
                message = receive.result()
            except (ValueError, KeyError):
                await attachment.send({"type": "error", "error_id": "not_json"})
                continue
            await handset.handle(message)
    finally:
        ended.cancel()


def phone_route() -> GuardedWebSocketRoute:
    return GuardedWebSocketRoute(PHONE_PATH, phone, DESK_LIVE_ACCESS)
