"""Today's queue figures for the wallboard's tiles, kept by one `StatisticsAccumulator`
(`callwarden.acd.statistics`, the same formulas as the ACD's statistics and the reports).

Today is the center's day (`time_zone`), from local midnight. When it starts, `QueueFigures`
subscribes to the node's bus, then reads the day's events so far from the stored ACD history
(`history`, `load_history` from local midnight, as a report of the day does) and applies them,
then the bus's events on top. So a node restarted during the day shows the figures it showed
before (those of `compute_report` over the same day), not a count from its start. An event both
stored and heard on the bus (another node's, written while this one started) counts once. At
local midnight a new accumulator begins, empty. The node starts it before its ACD (nothing is
missed); a web application built without a node starts it with its first page. The wallboard's
ES module applies the same events on top of these figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from callwarden.acd.events import ACD_EVENT_TYPES
from callwarden.acd.statistics import CenterFigures, StatisticsAccumulator
from callwarden.acd.today import History, local_midnight
from callwarden.bus.event import Event, of_kinds
from callwarden.bus.protocol import EventBus
from callwarden.bus.subscription import Subscription
from callwarden.domain.directory import DirectorySnapshot
from callwarden.web.services import part_name

logger = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=1)
"""How far back from its start a stored event may also arrive over the bus (another node's
event written meanwhile): those are remembered, so they count once."""
MAX_PENDING = 100_000
"""The subscription's bound while the history is read (events published meanwhile wait)."""


async def start_page_figures(app: FastAPI) -> None:
    """Start the wallboard's figures of an application made by `create_app` (the node does,
    before its ACD publishes anything)."""
    figures = getattr(app.state, part_name(QueueFigures))
    assert isinstance(figures, QueueFigures)
    await figures.ensure_started()


class QueueFigures:
    def __init__(
        self,
        bus: EventBus,
        directory: Callable[[], DirectorySnapshot],
        now: Callable[[], datetime],
        time_zone: str,
        history: History,
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._now = now
        self._zone = ZoneInfo(time_zone)
        self._history = history
        self._day_start = local_midnight(now(), self._zone)
        self._accumulator = StatisticsAccumulator(directory().queues, day_start=self._day_start)
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._seen: set[Event] = set()
        self._seeded_at = self._day_start

    async def ensure_started(self) -> None:
        """Subscribe to the bus and read today's stored events (once; again if the bus closed
        and a new page asks). Returns when the figures include the day so far."""
        if self._task is not None and not self._task.done():
            return
        async with self._starting:
            if self._task is not None and not self._task.done():
                return
            subscription = self._bus.subscribe(of_kinds(*ACD_EVENT_TYPES), max_pending=MAX_PENDING)
            try:
                await self._seed()
            except BaseException:
                subscription.close()
                raise
            self._task = asyncio.create_task(self._run(subscription), name="page-queue-figures")

    async def _seed(self) -> None:
        now = self._now()
        day_start = local_midnight(now, self._zone)
        # Up to a day ahead: what another node stored meanwhile is then taken once, here.
        stored = await asyncio.to_thread(self._history, day_start, now + timedelta(days=1))
        self._day_start = day_start
        self._accumulator = StatisticsAccumulator(self._directory().queues, day_start=day_start)
        recent = now - OVERLAP
        for event in stored:
            self._accumulator.apply(event)
        self._seen = {event for event in stored if event.at >= recent}
        self._seeded_at = now
        logger.info("wallboard figures: %d stored events since %s", len(stored), day_start)

    async def _run(self, subscription: Subscription) -> None:
        async for event in subscription:
            if self._seen:
                if event in self._seen:
                    self._seen.discard(event)
                    continue
                if event.at > self._seeded_at + OVERLAP:
                    self._seen.clear()
            self._roll_over(event.at)
            self._accumulator.apply(event)
        logger.info("the bus closed: queue figures for the wallboard stop")

    def _roll_over(self, moment: datetime) -> None:
        day_start = local_midnight(moment, self._zone)
        if day_start > self._day_start:
            self._day_start = day_start
            self._seen.clear()
            self._accumulator = StatisticsAccumulator(self._directory().queues, day_start=day_start)

    def figures(self) -> CenterFigures:
        now = self._now()
        self._roll_over(now)
        return self._accumulator.figures(now)

    async def close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            if not self._task.cancelled():
                raise
        self._task = None
