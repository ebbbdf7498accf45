"""What every event bus offers: publish without waiting, subscribe with a filter."""

from __future__ import annotations

from typing import Protocol

from callwarden.bus.event import Event, EventFilter
from callwarden.bus.subscription import DEFAULT_MAX_PENDING, Subscription


class EventBus(Protocol):
    """Publish/subscribe for `Event`s.

    `publish` never blocks and never raises for a subscriber's sake: each subscriber has a
    bounded queue that drops its oldest event when full (`Subscription.dropped` counts them).
    Every subscriber of the node sees the events published on the node, in publication order;
    a bus spanning several nodes also delivers the other nodes' events (at most once each).
    """

    def publish(self, event: Event) -> None:
        """Deliver `event` to every subscriber whose filter admits it."""
        ...

    def subscribe(
        self, event_filter: EventFilter | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> Subscription:
        """A new subscription receiving the events published from now on."""
        ...

    async def close(self) -> None:
        """Close every subscription (readers drain what is queued, then stop)."""
        ...
