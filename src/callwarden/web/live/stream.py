"""One live connection's stream: bus events out, pings in, closed when it must be.

A stream runs three tasks beside waiting for its connection's end:

- the **pump** reads the connection's subscription (`LiveDispatch`, filtered by `live_filter`)
  and sends
  each event as a text frame (`LiveMessages`). The subscription is bounded: a client that reads
  slowly makes its own pump wait on the socket while the bus drops its oldest events (the
  publisher never waits); the pump then tells the client how many it lost (`dropped`) before
  the next event;
- the **receiver** answers `{"type": "ping"}` and notices the client leaving;
- the **watcher** rechecks, every `recheck_seconds`, that the user's principal is what the
  subscription filters with; the pump rechecks before every event it sends, so no event goes
  out under grants or teams the user no longer has. A change closes the connection (4409).

The connection closes with its `end_code` and `end_reason` once something ends it: the session
ending (4401, from `LiveConnections.on_revoked`), the principal changing, the bus closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.websockets import WebSocketDisconnect

from callwarden.bus.subscription import Subscription
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import UserId
from callwarden.domain.policy import Principal
from callwarden.web.live.connections import (
    CLOSE_GOING_AWAY,
    CLOSE_PRINCIPAL_CHANGED,
    LiveConnection,
)
from callwarden.web.live.messages import LiveMessages, dropped_message
from callwarden.web.services import DirectoryProvider

__all__ = ["PRINCIPAL_CHANGED", "SHUTDOWN", "LiveStream", "current_principal"]

logger = logging.getLogger(__name__)

PRINCIPAL_CHANGED = "principal_changed"
SHUTDOWN = "shutdown"
_GONE = (WebSocketDisconnect, OSError, RuntimeError)
"""What sending or receiving raises once the client has gone (or the socket is closing)."""


def current_principal(snapshot: DirectorySnapshot, user_id: UserId) -> Principal | None:
    """The principal of `user_id` in `snapshot`, or None if they are gone or disabled."""
    user = snapshot.user(user_id)
    if user is None or not user.enabled:
        return None
    return snapshot.principal_for(user)


class LiveStream:
    """Serves one accepted live connection until it ends (`await run()`)."""

    def __init__(
        self,
        connection: LiveConnection,
        subscription: Subscription,
        principal: Principal,
        *,
        messages: LiveMessages,
        directory: DirectoryProvider,
        recheck_seconds: float,
    ) -> None:
        self._connection = connection
        self._subscription = subscription
        self._principal = principal
        self._messages = messages
        self._directory = directory
        self._recheck_seconds = recheck_seconds
        self._checked: DirectorySnapshot | None = None
        self._send_lock = asyncio.Lock()
        self.sent = 0

    async def run(self) -> None:
        connection = self._connection
        tasks = [
            asyncio.create_task(self._receive(), name="live-receive"),
            asyncio.create_task(self._pump(), name="live-pump"),
            asyncio.create_task(self._watch(), name="live-watch"),
            asyncio.create_task(connection.ended.wait(), name="live-ended"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        for task in done:  # a bug in a task surfaces here rather than vanishing
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error
        if connection.ended.is_set():
            logger.info(
                "closing live connection of user %s (%s, %s)",
                connection.user_id,
                connection.end_code,
                connection.end_reason,
            )
            with contextlib.suppress(*_GONE):
                await connection.websocket.close(
                    code=connection.end_code, reason=connection.end_reason
                )

    # -- tasks ------------------------------------------------------------------------------

    async def _pump(self) -> None:
        subscription = self._subscription
        reported = 0
        try:
            async for event in subscription:
                if self._principal_changed():
                    self._connection.end(PRINCIPAL_CHANGED, CLOSE_PRINCIPAL_CHANGED)
                    return
                dropped = subscription.dropped
                if dropped != reported:
                    await self._send(dropped_message(dropped - reported, dropped))
                    reported = dropped
                try:
                    text = self._messages.text(event, self._principal)
                except ValueError:
                    logger.exception("live event %s cannot be encoded; not sent", event.kind)
                    continue
                await self._send(text)
                self.sent += 1
        except _GONE:
            return  # the client left; the receiver sees it too
        self._connection.end(SHUTDOWN, CLOSE_GOING_AWAY)

    async def _receive(self) -> None:
        websocket = self._connection.websocket
        while True:
            try:
                message: Any = await websocket.receive_json()
            except _GONE:
                return
            except (ValueError, KeyError):
                await self._send_quietly('{"type":"error","error_id":"not_json"}')
                continue
            if isinstance(message, dict) and message.get("type") == "ping":
                await self._send_quietly('{"type":"pong"}')

    async def _watch(self) -> None:
        while True:
            if self._principal_changed():
                self._connection.end(PRINCIPAL_CHANGED, CLOSE_PRINCIPAL_CHANGED)
                return
            await asyncio.sleep(self._recheck_seconds)

    # -- helpers ----------------------------------------------------------------------------

    def _principal_changed(self) -> bool:
        """Whether the directory now gives the user another principal (checked again only
        when the directory snapshot was replaced)."""
        snapshot = self._directory.snapshot
        if snapshot is self._checked:
            return False
        self._checked = snapshot
        return current_principal(snapshot, self._connection.user_id) != self._principal

    async def _send(self, text: str) -> None:
        async with self._send_lock:
            await self._connection.websocket.send_text(text)

    async def _send_quietly(self, text: str) -> None:
        with contextlib.suppress(*_GONE):
            await self._send(text)
