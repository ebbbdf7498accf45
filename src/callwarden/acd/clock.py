"""The time the ACD needs, injected: a monotonic clock with one-shot timers, and wall time.

`Clock` has the shape of `callwarden.sip.clock.Clock` (the ACD must not import `sip`), so the
node passes one clock object to both, and tests drive a fake clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

__all__ = ["Clock", "Sleep", "TimerHandle", "WallClock", "stop_task"]

Sleep = Callable[[float], Awaitable[None]]
"""`asyncio.sleep` in production; tests inject one that steps a fake wall clock."""

WallClock = Callable[[], datetime]
"""Timezone-aware wall time, stamped on events (`datetime.now(UTC)` in production)."""


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (only differences are meaningful)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object], /) -> TimerHandle:
        """Run `callback()` once, `delay` seconds from now."""
        ...


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel a background loop (`None`: nothing) and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
