"""The open live connections, by session, so that ending a session closes its connections.

`SessionService` publishes `SessionsRevoked` from whichever thread ended the sessions (a
request's worker thread, the sweeper); `LiveConnections.on_revoked` only hands the ids over to
the event loop, where each connection's `ended` event is set and its handler closes it with
code 4401 and the reason (`disabled`, `logout`, ...). Events about calls and agents will be
pushed through `LiveConnection.send` when the ACD issue lands, each filtered by the policy.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from starlette.websockets import WebSocket

from callwarden.domain.ids import UserId
from callwarden.security.sessions import SessionId, SessionsRevoked

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class LiveConnection:
    websocket: WebSocket
    session_id: SessionId
    user_id: UserId
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""

    def end(self, reason: str) -> None:
        self.end_reason = reason
        self.ended.set()


class LiveConnections:
    """Connections by session id; lives on the event loop that serves them."""

    def __init__(self) -> None:
        self._by_session: dict[SessionId, set[LiveConnection]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

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
                connection.end(reason)
