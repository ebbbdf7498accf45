"""Wall-clock time for sign-in, sessions and MFA, injected so tests use a fixed clock.

Session expiry, throttling delays and TOTP time steps (RFC 6238 section 4) are all computed
from `Clock.now()`, an aware UTC datetime; nothing in these services reads the system clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """The current time as an aware datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
