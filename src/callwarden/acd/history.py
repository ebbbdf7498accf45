"""The ACD's event history: what a node's engine publishes, kept in the database for reports.

The composition root gives the engine a `RecordedBus` around the node's bus: each ACD event the
engine publishes goes to the bus as before and to an `AcdHistory`, which writes them in batches
off the event loop (`acd_events`, migration 0009, in the bus's wire form). Only the events of
the node's own engine are written, so with several nodes on a Redis bus each event is stored
once, by the node that made it.

`load_history` reads a period back as events, with each agent's last state change before the
period first (so a break that began yesterday counts from the period's start), ready for
`callwarden.acd.statistics.compute_report`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from callwarden.acd.events import ACD_EVENT_TYPES, AgentStateChanged
from callwarden.bus.codec import EventCodec, MalformedEvent
from callwarden.bus.event import Event, EventFilter
from callwarden.bus.protocol import EventBus
from callwarden.bus.subscription import DEFAULT_MAX_PENDING, Subscription
from callwarden.store.acd_events import AcdEventRepository, StoredAcdEvent

__all__ = ["AcdHistory", "RecordedBus", "load_history", "stored_event"]

logger = logging.getLogger(__name__)

HISTORY_NODE = "history"
_CODEC = EventCodec(ACD_EVENT_TYPES)
_ACD_TYPES = tuple(ACD_EVENT_TYPES)


def stored_event(event: Event) -> StoredAcdEvent:
    """The row of one ACD event."""
    return StoredAcdEvent(
        at=event.at,
        kind=event.kind,
        body=_CODEC.encode(event, node_id=HISTORY_NODE).decode(),
        team_id=event.team_id,
        user_id=event.user_id,
        queue_id=getattr(event, "queue_id", None),
        call_id=getattr(event, "call_id", None),
    )


class AcdHistory:
    """`start()`, then `record()` from the event loop (never blocks), then `close()`.

    Events wait in memory as they are (at most `max_pending`; beyond, the oldest are dropped and
    counted in `dropped`) and are encoded and written in batches by a task of its own, each
    batch in a worker thread and one transaction, so `record` costs the engine an append. A
    failed batch is logged and counted (`failed`), never retried: the engine must not wait for
    the database.
    """

    def __init__(
        self,
        sessions: Callable[[], Session],
        *,
        max_pending: int = 100_000,
        max_batch: int = 500,
    ) -> None:
        self._sessions = sessions
        self._pending: deque[Event] = deque()
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.written = 0
        self.failed = 0
        self.dropped = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="acd-history")

    def record(self, event: Event) -> None:
        if self._closed or not isinstance(event, _ACD_TYPES):
            return
        if len(self._pending) >= self._max_pending:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(event)  # encoded in the writer's thread, off the engine's path
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            if self._closed:
                return

    async def flush(self) -> None:
        """Write everything recorded so far."""
        while self._pending:
            batch = [
                self._pending.popleft() for _ in range(min(self._max_batch, len(self._pending)))
            ]
            await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[Event]) -> None:
        try:
            rows = [stored_event(event) for event in batch]
            with self._sessions() as session, session.begin():
                AcdEventRepository(session).append_many(rows)
        except Exception:  # the history must never stop the ACD, whatever the database says
            logger.exception("writing %d ACD events to the history failed", len(batch))
            self.failed += len(batch)
            return
        self.written += len(batch)

    async def close(self) -> None:
        """Write what is pending, then stop; later events are not recorded."""
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            await self.flush()
            return
        self._wake.set()
        await task


class RecordedBus:
    """An `EventBus` that hands every event published through it to `record` as well."""

    def __init__(self, bus: EventBus, record: Callable[[Event], None]) -> None:
        self._bus = bus
        self._record = record

    @property
    def inner(self) -> EventBus:
        return self._bus

    def publish(self, event: Event) -> None:
        self._bus.publish(event)
        self._record(event)

    def subscribe(
        self, event_filter: EventFilter | None = None, *, max_pending: int = DEFAULT_MAX_PENDING
    ) -> Subscription:
        return self._bus.subscribe(event_filter, max_pending=max_pending)

    async def close(self) -> None:
        await self._bus.close()


def _decoded(rows: Sequence[StoredAcdEvent]) -> list[Event]:
    events: list[Event] = []
    for row in rows:
        try:
            events.append(_CODEC.decode(row.body).event)
        except MalformedEvent as error:  # written by other code: left out, and said so
            logger.warning("an ACD history row of kind %s is unreadable: %s", row.kind, error)
    return events


def load_history(session: Session, since: datetime, until: datetime) -> list[Event]:
    """The ACD events of [`since`, `until`), after each agent's last state change before
    `since` (the state they were in when the period began), in the order they happened."""
    repository = AcdEventRepository(session)
    before = repository.latest_before(AgentStateChanged.kind, since)
    return _decoded(before) + _decoded(repository.between(since, until))
