"""Today's queue figures for the wallboard's tiles, kept by one `StatisticsAccumulator`
(`callwarden.acd.statistics`, the same formulas as the ACD's statistics) fed from the node's
bus.

It starts with the web application's first page (`ensure_started`) and counts from then on:
calls answered, abandoned or overflowed before that are not in today's figures (a node's
figures begin when it starts serving). A new day starts a new accumulator at the center's
local midnight. The wallboard's ES module applies the same events on top of these figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, time
from zoneinfo import ZoneInfo

from callwarden.acd.events import ACD_EVENT_TYPES
from callwarden.acd.statistics import CenterFigures, StatisticsAccumulator
from callwarden.bus.event import of_kinds
from callwarden.bus.protocol import EventBus
from callwarden.bus.subscription import Subscription
from callwarden.domain.directory import DirectorySnapshot

logger = logging.getLogger(__name__)


class QueueFigures:
    def __init__(
        self,
        bus: EventBus,
        directory: Callable[[], DirectorySnapshot],
        now: Callable[[], datetime],
        time_zone: str,
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._now = now
        self._zone = ZoneInfo(time_zone)
        self._day_start = self._midnight(now())
        self._accumulator = StatisticsAccumulator(directory().queues, day_start=self._day_start)
        self._task: asyncio.Task[None] | None = None

    def _midnight(self, moment: datetime) -> datetime:
        local = moment.astimezone(self._zone)
        return datetime.combine(local.date(), time(0), tzinfo=self._zone)

    def ensure_started(self) -> None:
        """Subscribe to the bus (once; again if the bus closed and a new page asks)."""
        if self._task is not None and not self._task.done():
            return
        subscription = self._bus.subscribe(of_kinds(*ACD_EVENT_TYPES))
        self._task = asyncio.create_task(self._run(subscription), name="page-queue-figures")

    async def _run(self, subscription: Subscription) -> None:
        async for event in subscription:
            self._roll_over(event.at)
            self._accumulator.apply(event)
        logger.info("the bus closed: queue figures for the wallboard stop")

    def _roll_over(self, moment: datetime) -> None:
        day_start = self._midnight(moment)
        if day_start > self._day_start:
            self._day_start = day_start
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
