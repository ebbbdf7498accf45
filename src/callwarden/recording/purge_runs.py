"""Running the purge in the node: one run at a time, on a schedule or on demand, and how far
the current (or last) run got, for the API and the UI's progress indicator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from callwarden.recording.purge import PurgeProgress, Purger, WallClock

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class PurgeStatus:
    """The current run (`running`) or the last one; `progress` None before the first."""

    running: bool
    started_at: datetime | None
    finished_at: datetime | None
    progress: PurgeProgress | None


class PurgeRuns:
    """At most one purge at a time in this node; `status()` says how far it is."""

    def __init__(self, purger: Purger, clock: WallClock) -> None:
        self._purger = purger
        self._clock = clock
        self._lock = asyncio.Lock()
        self._progress: PurgeProgress | None = None
        self._started_at: datetime | None = None
        self._finished_at: datetime | None = None
        self._task: asyncio.Task[PurgeProgress | None] | None = None

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def status(self) -> PurgeStatus:
        progress = None if self._progress is None else replace(self._progress)
        return PurgeStatus(self.running, self._started_at, self._finished_at, progress)

    def _update(self, progress: PurgeProgress) -> None:
        self._progress = replace(progress)

    async def run(self) -> PurgeProgress | None:
        """One purge, unless one is running already (then None, at once)."""
        if self._lock.locked():
            return None
        async with self._lock:
            self._started_at, self._finished_at = self._clock(), None
            self._progress = PurgeProgress()
            try:
                return await self._purger.run(self._update)
            finally:
                self._finished_at = self._clock()

    def start_now(self) -> bool:
        """Start a run in the background; False if one is running."""
        if self.running or (self._task is not None and not self._task.done()):
            return False
        self._task = asyncio.create_task(self._run_logged(), name="recording-purge-now")
        return True

    async def _run_logged(self) -> PurgeProgress | None:
        try:
            return await self.run()
        except Exception:  # reported in the status (no finished progress) and the log
            logger.exception("recording purge started by hand failed")
            return None

    async def wait(self) -> None:
        """Until the run `start_now` started (if any) is over."""
        if self._task is not None:
            await self._task

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class ScheduledPurge:
    """Calls `run` every `interval_seconds` (the first time one interval after `start`); a
    failed run is logged and the next one tries again. `close()` stops it."""

    def __init__(
        self,
        run: Callable[[], Awaitable[object]],
        interval_seconds: float,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._run = run
        self._interval = interval_seconds
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="recording-purge")

    async def _loop(self) -> None:
        while True:
            await self._sleep(self._interval)
            try:
                await self._run()
            except Exception:  # the database may be down for a while: try again next time
                logger.exception("scheduled recording purge failed")
            self.runs += 1

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
