"""The ACD's "today": the center's day, from local midnight in its time zone.

`DailyCounts` keeps each agent's calls taken (the fewest-calls strategy's count, shown on the
operator's desk and the wallboard) to the day: at start it sets them from the stored history of
the day so far (`calls_taken`, the operators' `answered` of `compute_statistics` over the
events since local midnight, as the reports count them), so a node restarted during the day
goes on counting from where it was; at each local midnight it sets them back to zero.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from callwarden.acd.clock import Sleep, stop_task
from callwarden.acd.engine import AcdEngine
from callwarden.acd.history import load_history
from callwarden.acd.statistics import compute_statistics
from callwarden.bus.event import Event
from callwarden.domain.ids import UserId
from callwarden.domain.models import Queue

__all__ = [
    "DailyCounts",
    "History",
    "calls_taken",
    "local_midnight",
    "next_midnight",
    "stored_history",
]

logger = logging.getLogger(__name__)

History = Callable[[datetime, datetime], Sequence[Event]]
"""The stored ACD events of [since, until), after each agent's last state before `since`."""


def stored_history(sessions: Callable[[], Session]) -> History:
    """`History` read from the database (`acd_events`, `load_history`)."""

    def read(since: datetime, until: datetime) -> Sequence[Event]:
        with sessions() as session:
            return load_history(session, since, until)

    return read


def local_midnight(moment: datetime, zone: ZoneInfo) -> datetime:
    """The start of `moment`'s day in `zone`."""
    local = moment.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone)


def next_midnight(moment: datetime, zone: ZoneInfo) -> datetime:
    """The start of the day after `moment`'s in `zone`."""
    local = moment.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)


def calls_taken(
    events: Iterable[Event], queues: Iterable[Queue], *, day_start: datetime, now: datetime
) -> dict[UserId, int]:
    """Each operator's calls answered since `day_start` (`CenterFigures.operators`)."""
    figures = compute_statistics(events, queues, day_start=day_start, now=now)
    return {user_id: row.answered for user_id, row in figures.operators.items()}


class DailyCounts:
    """`start()` (before calls arrive), then `close()`."""

    def __init__(
        self,
        engine: AcdEngine,
        history: History,
        queues: Callable[[], Iterable[Queue]],
        time_zone: str,
        now: Callable[[], datetime],
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._engine = engine
        self._history = history
        self._queues = queues
        self._zone = ZoneInfo(time_zone)
        self._now = now
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.resets = 0

    async def start(self) -> None:
        """Seed the engine's counts from today's stored events, then roll over at midnight."""
        now = self._now()
        day_start = local_midnight(now, self._zone)
        events = await asyncio.to_thread(self._history, day_start, now + timedelta(days=1))
        counts = calls_taken(events, self._queues(), day_start=day_start, now=now)
        await self._engine.reset_daily_counts(counts)
        logger.info("calls taken today (since %s): %d operators", day_start, len(counts))
        self._task = asyncio.create_task(self._roll_over(), name="acd-daily-counts")

    async def _roll_over(self) -> None:
        while True:
            midnight = next_midnight(self._now(), self._zone)
            while (left := (midnight - self._now().astimezone(UTC)).total_seconds()) > 0:
                await self._sleep(left)
            await self._engine.reset_daily_counts()
            self.resets += 1

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
