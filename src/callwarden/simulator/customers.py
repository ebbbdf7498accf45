"""Simulated customers: when they call (:class:`CallArrivals`) and how each behaves on the line
(:class:`Customer`): wait for an answer up to their patience, talk, hang up, unless the
operator hangs up first. Both run on an injected clock and random source only, so they are
tested with a fake clock; the simulator connects them to SIP calls.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from typing import Protocol

from callwarden.simulator.settings import SecondsRange
from callwarden.sip.clock import Clock, TimerHandle

__all__ = ["CallArrivals", "Customer", "CustomerEnd", "PlacedCall", "caller_number"]

logger = logging.getLogger(__name__)


def caller_number(rng: random.Random) -> str:
    """A made-up national mobile number for a customer's caller ID (06 and eight digits)."""
    return "06" + "".join(str(rng.randrange(10)) for _ in range(8))


class CallArrivals:
    """When customers call: the first call ``first_after`` seconds after :meth:`start`, then
    one every ``interval`` seconds (drawn uniformly each time). An arrival that finds
    ``max_concurrent`` customers already on the line is dropped (counted in ``skipped``):
    that customer calls some other time, so the offered rate never piles up."""

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        *,
        interval: SecondsRange,
        first_after: float,
        max_concurrent: int,
        place_call: Callable[[], None],
        active: Callable[[], int],
    ) -> None:
        self._clock = clock
        self._rng = rng
        self._interval = interval
        self._first_after = first_after
        self._max_concurrent = max_concurrent
        self._place_call = place_call
        self._active = active
        self._timer: TimerHandle | None = None
        self.placed = 0
        self.skipped = 0

    @property
    def running(self) -> bool:
        return self._timer is not None

    def start(self) -> None:
        if self._timer is None:
            self._timer = self._clock.call_later(self._first_after, self._arrive)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arrive(self) -> None:
        delay = self._rng.uniform(self._interval.low, self._interval.high)
        self._timer = self._clock.call_later(delay, self._arrive)
        if self._active() >= self._max_concurrent:
            self.skipped += 1
            logger.debug("all %d simulated customer lines busy", self._max_concurrent)
            return
        self.placed += 1
        self._place_call()


class PlacedCall(Protocol):
    """What a customer does with their call."""

    def cancel(self) -> None: ...

    def hang_up(self) -> None: ...


class CustomerEnd(enum.Enum):
    HUNG_UP = "customer hung up"
    OPERATOR_HUNG_UP = "operator hung up"
    GAVE_UP = "customer gave up waiting"
    NOT_CONNECTED = "not connected"


class Customer:
    """One customer on one call. :meth:`dialled` once the call is placed; the SIP side reports
    :meth:`answered` and :meth:`ended`. ``on_done`` gets the customer once the call is over."""

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        *,
        talk: SecondsRange,
        patience: float,
        on_done: Callable[[Customer], None],
    ) -> None:
        self._clock = clock
        self._rng = rng
        self._talk = talk
        self._patience = patience
        self._on_done = on_done
        self.call: PlacedCall | None = None
        self._timer: TimerHandle | None = None
        self.dialled_at: float | None = None
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.planned_talk: float | None = None
        self._gave_up = False
        self._hung_up = False
        self.end: CustomerEnd | None = None

    def dialled(self, call: PlacedCall) -> None:
        self.call = call
        self.dialled_at = self._clock.now()
        self._timer = self._clock.call_later(self._patience, self._give_up)

    def answered(self) -> None:
        self._cancel_timer()
        self.answered_at = self._clock.now()
        self.planned_talk = self._rng.uniform(self._talk.low, self._talk.high)
        self._timer = self._clock.call_later(self.planned_talk, self._hang_up)

    def ended(self) -> None:
        if self.end is not None:
            return
        self._cancel_timer()
        self.ended_at = self._clock.now()
        if self.answered_at is None:
            self.end = CustomerEnd.GAVE_UP if self._gave_up else CustomerEnd.NOT_CONNECTED
        else:
            self.end = CustomerEnd.HUNG_UP if self._hung_up else CustomerEnd.OPERATOR_HUNG_UP
        self._on_done(self)

    @property
    def waited(self) -> float | None:
        """Seconds from dialling to the answer (or to the end, unanswered)."""
        if self.dialled_at is None:
            return None
        until = self.answered_at if self.answered_at is not None else self.ended_at
        return None if until is None else until - self.dialled_at

    @property
    def talked(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.answered_at

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _give_up(self) -> None:
        self._timer = None
        self._gave_up = True
        if self.call is not None:
            self.call.cancel()

    def _hang_up(self) -> None:
        self._timer = None
        self._hung_up = True
        if self.call is not None:
            self.call.hang_up()

    def close(self) -> None:
        self._cancel_timer()
