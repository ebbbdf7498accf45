"""Retention of the ACD history (`acd_events`): events older than `acd_history_days` go.

`HistoryRetention.run()` counts the events before the cutoff (now − `days`); when there are
some, it has the purge audited first (`audit`, a callable the composition root gives: the
`acd` package does not know the audit log), then deletes them in batches of `batch_size`, each
batch one transaction in a worker thread, so the database is never locked for long. If the
audit entry cannot be written nothing is deleted (the error propagates). A run that finds
nothing to delete writes no entry. `start(interval)` runs it on a schedule (the first run one
interval after start); a failed run is logged and the next one tries again.

Reports over a period that begins before the cutoff lose what was deleted, including each
agent's state before the period when their last change is older than that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from callwarden.acd.clock import Sleep, stop_task
from callwarden.store.acd_events import AcdEventRepository

__all__ = ["HistoryPurge", "HistoryRetention"]

logger = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600.0
"""How often the node purges the history."""


@dataclass(frozen=True)
class HistoryPurge:
    """One purge: the events before `before` (now − `days`), `events` of them."""

    before: datetime
    days: int
    events: int


Audit = Callable[[HistoryPurge], Awaitable[None]]


class HistoryRetention:
    def __init__(
        self,
        sessions: Callable[[], Session],
        *,
        days: int,
        now: Callable[[], datetime],
        audit: Audit,
        batch_size: int = 5000,
    ) -> None:
        if days < 1:
            raise ValueError("days must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._sessions = sessions
        self._days = days
        self._now = now
        self._audit = audit
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    async def run(self) -> HistoryPurge:
        """Delete the events older than the retention; what was deleted."""
        before = self._now() - timedelta(days=self._days)
        found = await asyncio.to_thread(self._count, before)
        purge = HistoryPurge(before=before, days=self._days, events=0)
        if found == 0:
            return purge
        await self._audit(HistoryPurge(before=before, days=self._days, events=found))
        deleted = 0
        while batch := await asyncio.to_thread(self._delete_batch, before):
            deleted += batch
        logger.info("ACD history: %d events before %s deleted", deleted, before.isoformat())
        return HistoryPurge(before=before, days=self._days, events=deleted)

    def _count(self, before: datetime) -> int:
        with self._sessions() as session:
            return AcdEventRepository(session).count_before(before)

    def _delete_batch(self, before: datetime) -> int:
        with self._sessions() as session, session.begin():
            return AcdEventRepository(session).delete_before(before, self._batch_size)

    def start(
        self, interval_seconds: float = PURGE_INTERVAL_SECONDS, sleep: Sleep = asyncio.sleep
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._task = asyncio.create_task(self._loop(interval_seconds, sleep), name="acd-retention")

    async def _loop(self, interval_seconds: float, sleep: Sleep) -> None:
        while True:
            await sleep(interval_seconds)
            try:
                await self.run()
            except Exception:  # the database or the audit log may be down: next time
                logger.exception("purging the ACD history failed")
            self.runs += 1

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
