"""Bounded per-subscriber queues and the fan-out that fills them.

A publisher never waits for a subscriber: delivery appends to each subscriber's queue and
returns. When a subscriber's queue is full, its oldest event is dropped and counted in
`Subscription.dropped`, so a slow consumer (a stalled browser tab) loses history instead of
slowing down call handling. Everything here runs on one event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator

from callwarden.bus.event import Event, EventFilter

__all__ = ["DEFAULT_MAX_PENDING", "Fanout", "Subscription", "SubscriptionClosed"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_PENDING = 1000


class SubscriptionClosed(Exception):  # noqa: N818 (reads as a state, like asyncio.QueueEmpty)
    """`Subscription.get()` on a closed subscription with nothing left to read."""


class Subscription:
    """The events one subscriber has yet to read; iterate it with `async for`.

    Iteration ends when the subscription is closed (by `close()`, or by its bus closing) and
    every event delivered before that has been read. Use it as a context manager to close it.
    """

    __slots__ = ("_closed", "_events", "_fanout", "_filter", "_waiter", "dropped", "max_pending")

    def __init__(self, fanout: Fanout, event_filter: EventFilter | None, max_pending: int) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._fanout = fanout
        self._filter = event_filter
        self._events: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.max_pending = max_pending
        self.dropped = 0
        """Events dropped (oldest first) because this subscriber fell `max_pending` behind."""

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Events delivered and not yet read."""
        return len(self._events)

    def deliver(self, event: Event) -> None:
        """Queue `event` if the filter admits it; never blocks, drops the oldest when full."""
        if self._closed:
            return
        event_filter = self._filter
        if event_filter is not None:
            try:
                if not event_filter(event):
                    return
            except Exception:  # a broken filter must not break the publisher or other subscribers
                logger.exception(
                    "subscription filter raised on %s; event not delivered", event.kind
                )
                return
        events = self._events
        if len(events) >= self.max_pending:
            events.popleft()
            self.dropped += 1
        events.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> Event | None:
        """The oldest unread event, or None if there is none right now."""
        return self._events.popleft() if self._events else None

    async def get(self) -> Event:
        """The oldest unread event, waiting for one; raises `SubscriptionClosed` when closed
        and drained."""
        while not self._events:
            if self._closed:
                raise SubscriptionClosed("subscription closed")
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        return self._events.popleft()

    def close(self) -> None:
        """Stop receiving; events already queued can still be read."""
        if self._closed:
            return
        self._closed = True
        self._fanout.remove(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Fanout:
    """The subscribers of one bus; `deliver` hands an event to each of them."""

    __slots__ = ("_subscribers",)

    def __init__(self) -> None:
        self._subscribers: tuple[Subscription, ...] = ()

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(
        self, event_filter: EventFilter | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> Subscription:
        subscription = Subscription(self, event_filter, max_pending)
        self._subscribers = (*self._subscribers, subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        self._subscribers = tuple(s for s in self._subscribers if s is not subscription)

    def deliver(self, event: Event) -> None:
        for subscription in self._subscribers:
            subscription.deliver(event)

    def close_all(self) -> None:
        for subscription in self._subscribers:
            subscription.close()
