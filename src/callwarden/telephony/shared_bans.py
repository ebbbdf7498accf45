"""Bans shared by the nodes of an installation: each node's `SourceGuard` applies the bans the
other nodes publish on the bus.

A node that bans an address publishes `SourceBanned` stamped with its node id (and
`SourceUnbanned` when the ban ends). `SharedBans` reads those events from the bus and, for the
ones another node made, has the local guard adopt the ban for the time it has left there
(`until` on the wall clock; nodes' clocks are assumed NTP-close) and lift it when that node
says it ended. On the Redis bus this spans every node behind a dispatcher; on the in-process
bus (one node) there is no other node, and nothing to adopt.

An adopted ban is not published again (no echo between nodes), its address is never one this
node trusts, and it is bounded like the node's own bans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from callwarden.bus.event import Event
from callwarden.bus.protocol import EventBus
from callwarden.bus.subscription import Subscription
from callwarden.telephony.security_events import SourceBanned, SourceUnbanned
from callwarden.telephony.source_guard import SourceGuard

__all__ = ["SharedBans"]

logger = logging.getLogger(__name__)


def _is_ban_event(event: Event) -> bool:
    return isinstance(event, SourceBanned | SourceUnbanned)


class SharedBans:
    """`start()` subscribes to the bus and applies other nodes' bans until `await close()`."""

    def __init__(
        self, bus: EventBus, guard: SourceGuard, wall_clock: Callable[[], datetime]
    ) -> None:
        self._bus = bus
        self._guard = guard
        self._wall_clock = wall_clock
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._subscription = self._bus.subscribe(_is_ban_event)
        self._task = asyncio.create_task(self._run(self._subscription), name="shared-bans")

    def apply(self, event: Event) -> bool:
        """Apply one event heard on the bus; True when it changed this node's bans."""
        guard = self._guard
        if isinstance(event, SourceBanned):
            if not event.node or event.node == guard.node_id:
                return False
            left = (event.until - self._wall_clock()).total_seconds()
            return guard.adopt_ban(
                event.address,
                left,
                reason=event.reason,
                offences=event.offences,
                ban_number=event.ban_number,
                origin=event.node,
            )
        if isinstance(event, SourceUnbanned) and event.node and event.node != guard.node_id:
            return guard.end_adopted_ban(event.address, event.node)
        return False

    async def _run(self, subscription: Subscription) -> None:
        async for event in subscription:
            try:
                self.apply(event)
            except Exception:  # one bad event must not stop the others from applying
                logger.exception("could not apply a shared ban event %r", event)

    async def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
