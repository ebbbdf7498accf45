"""The open live connections, by session, so that ending a session closes its connections.

`SessionService` publishes `SessionsRevoked` from whichever thread ended the sessions (a
request's worker thread, the sweeper); `LiveConnections.on_revoked` only hands the ids over to
the event loop, where each connection's `ended` event is set and its stream closes it with
code 4401 and the reason (`disabled`, `logout`, ...). A stream ends its own connection the
same way when its user's principal changes (4409) or the bus closes (1001).
`LiveConnections.messages` encodes events once for all connections; `dispatch_for(bus)` is the
one subscription to the node's bus that feeds them all (`LiveDispatch`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from starlette.websockets import WebSocket

from callwarden.bus.protocol import EventBus
from callwarden.domain.ids import UserId
from callwarden.security.sessions import SessionId, SessionsRevoked
from callwarden.web.live.dispatch import LiveDispatch
from callwarden.web.live.messages import LiveMessages

logger = logging.getLogger(__name__)

CLOSE_SESSION_ENDED = 4401
"""The session ended (the reason says why): sign in again."""
CLOSE_PRINCIPAL_CHANGED = 4409
"""The user's grants or teams changed: reconnect to stream under the new ones."""
CLOSE_GOING_AWAY = 1001
"""The node is shutting down (RFC 6455 section 7.4.1)."""


@dataclass(eq=False)
class LiveConnection:
    websocket: WebSocket
    session_id: SessionId
    user_id: UserId
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""
    end_code: int = CLOSE_SESSION_ENDED

    def end(self, reason: str, code: int = CLOSE_SESSION_ENDED) -> None:
        """Ask the connection's stream to close it with `code` and `reason` (the first ask
        wins)."""
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.end_code = code
        self.ended.set()


class LiveConnections:
    """Connections by session id; lives on the event loop that serves them."""

    def __init__(self, messages: LiveMessages | None = None) -> None:
        self._by_session: dict[SessionId, set[LiveConnection]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.messages = LiveMessages() if messages is None else messages
        self._dispatch: LiveDispatch | None = None

    def dispatch_for(self, bus: EventBus) -> LiveDispatch:
        """The dispatcher of `bus`'s events to these connections (made on first use)."""
        if self._dispatch is None:
            self._dispatch = LiveDispatch(bus)
        return self._dispatch

    async def close(self) -> None:
        """Close every connection (1001) and stop dispatching."""
        self.close_all()
        if self._dispatch is not None:
            await self._dispatch.close()

    def __len__(self) -> int:
        return sum(len(connections) for connections in self._by_session.values())

    def add(self, connection: LiveConnection) -> None:
        self._loop = asyncio.get_running_loop()
        self._by_session.setdefault(connection.session_id, set()).add(connection)

    def remove(self, connection: LiveConnection) -> None:
        connections = self._by_session.get(connection.session_id)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._by_session[connection.session_id]

    def of_session(self, session_id: SessionId) -> frozenset[LiveConnection]:
        return frozenset(self._by_session.get(session_id, ()))

    def on_revoked(self, event: SessionsRevoked) -> None:
        """`SessionRevocations` listener: safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._end(event)
        else:
            loop.call_soon_threadsafe(self._end, event)

    def _end(self, event: SessionsRevoked) -> None:
        for session_id in event.session_ids:
            for connection in self._by_session.get(session_id, ()):
                logger.info(
                    "closing live connection of user %s: session %s ended (%s)",
                    event.user_id,
                    session_id,
                    event.reason.value,
                )
                connection.end(event.reason.value)

    def close_all(self, reason: str = "shutdown") -> None:
        for connections in self._by_session.values():
            for connection in connections:
                connection.end(reason, CLOSE_GOING_AWAY)
