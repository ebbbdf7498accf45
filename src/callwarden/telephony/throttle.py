"""Throttling of repeated authentication failures per source address.

After `threshold` failures from one address within `window` seconds, that address is refused
for a block time that doubles with each further block (up to `max_block`). The table is
bounded: the oldest entries are evicted first, so a flood of spoofed addresses cannot grow it
without limit. A real user on another address is never affected by an attacker's failures.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from callwarden.sip.clock import Clock

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Entry:
    failures: int
    first_failure: float
    blocked_until: float
    blocks: int


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    threshold: int = 5
    window: float = 60.0
    base_block: float = 10.0
    max_block: float = 600.0
    max_entries: int = 100_000


class FailureThrottle:
    def __init__(self, clock: Clock, settings: ThrottleSettings | None = None) -> None:
        self._clock = clock
        self.settings = settings or ThrottleSettings()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def is_blocked(self, address: str) -> bool:
        entry = self._entries.get(address)
        return entry is not None and entry.blocked_until > self._clock.now()

    def record_failure(self, address: str) -> bool:
        """Count a failure; True when this failure starts a block for `address`."""
        now = self._clock.now()
        settings = self.settings
        entry = self._entries.get(address)
        if entry is None:
            entry = self._entries[address] = _Entry(0, now, 0.0, 0)
        elif now - entry.first_failure > settings.window:
            entry.failures = 0  # a new count; a block still running stands
            entry.first_failure = now
        self._entries.move_to_end(address)
        entry.failures += 1
        while len(self._entries) > settings.max_entries:
            self._entries.popitem(last=False)
        if entry.failures < settings.threshold:
            return False
        duration = min(settings.base_block * (2**entry.blocks), settings.max_block)
        entry.blocks += 1
        entry.failures = 0
        entry.first_failure = now
        entry.blocked_until = now + duration
        logger.warning(
            "authentication failures from %s: blocked for %.0f s (block %d)",
            address,
            duration,
            entry.blocks,
        )
        return True

    def record_success(self, address: str) -> None:
        """A success clears the failure count (but not a block already running)."""
        entry = self._entries.get(address)
        if entry is not None and entry.blocked_until <= self._clock.now():
            del self._entries[address]
