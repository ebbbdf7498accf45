"""Time, injected: a monotonic clock for media timing and a wall clock for RTCP NTP timestamps."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (arrival times, ticks, timeouts)."""
        ...

    def wall(self) -> float:
        """Unix time in seconds (NTP timestamps of sender reports, RFC 3550 6.4.1)."""
        ...


class SystemClock:
    """The real clocks (the functions themselves: no Python frame on the per-packet path)."""

    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)
