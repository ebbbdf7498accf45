"""The time the ACD needs, injected: a monotonic clock with one-shot timers, and wall time.

`Clock` has the shape of `callwarden.sip.clock.Clock` (the ACD must not import `sip`), so the
node passes one clock object to both, and tests drive a fake clock instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

__all__ = ["Clock", "TimerHandle", "WallClock"]

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
