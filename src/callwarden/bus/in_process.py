"""The default bus of a single node: events go straight to this process's subscribers."""

from __future__ import annotations

from callwarden.bus.event import Event, EventFilter
from callwarden.bus.subscription import DEFAULT_MAX_PENDING, Fanout, Subscription


class InProcessBus:
    """An `EventBus` within one process and one event loop."""

    __slots__ = ("_fanout", "published")

    def __init__(self) -> None:
        self._fanout = Fanout()
        self.published = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._fanout)

    def publish(self, event: Event) -> None:
        self.published += 1
        self._fanout.deliver(event)

    def subscribe(
        self, event_filter: EventFilter | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> Subscription:
        return self._fanout.subscribe(event_filter, max_pending=max_pending)

    async def close(self) -> None:
        self._fanout.close_all()
