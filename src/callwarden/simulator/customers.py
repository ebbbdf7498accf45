"""Simulated customers: when they call (:class:`CallArrivals`) and how each behaves on the line
(:class:`Customer`): wait for an operator up to their patience (ringing, or on hold in a
queue), talk, hang up, unless the operator hangs up first. Both run on an injected clock and
random source only, so they are tested with a fake clock; the simulator connects them to SIP
calls.
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
    ENDED_WAITING = "the call ended while waiting in the queue"
    NOT_CONNECTED = "not connected"


class Customer:
    """One customer on one call. :meth:`dialled` once the call is placed; the SIP side reports
    :meth:`connected` (the 2xx) and :meth:`ended`, and :meth:`picked_up` when an operator takes
    a call that waits in a queue. ``on_done`` gets the customer once the call is over.

    A call to an operator is picked up when it is connected. A queue answers at once and plays
    hold audio; the customer waits there (up to ``patience`` in all, then hangs up: an abandon)
    until an operator picks up, then talks ``talk`` seconds and hangs up, unless the operator
    hangs up first."""

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
        self.via_queue = False
        self._timer: TimerHandle | None = None
        self.dialled_at: float | None = None
        self.connected_at: float | None = None
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.planned_talk: float | None = None
        self._gave_up = False
        self._hung_up = False
        self.end: CustomerEnd | None = None

    def dialled(self, call: PlacedCall, *, via_queue: bool = False) -> None:
        self.call = call
        self.via_queue = via_queue
        self.dialled_at = self._clock.now()
        self._timer = self._clock.call_later(self._patience, self._give_up)

    def connected(self) -> None:
        """The call was answered (SIP 2xx): by the operator, or by a queue with hold audio."""
        self.connected_at = self._clock.now()
        if not self.via_queue:
            self.picked_up()

    def picked_up(self) -> None:
        """An operator took the call: talk from now on."""
        if self.answered_at is not None or self.end is not None:
            return
        self._cancel_timer()
        self.answered_at = self._clock.now()
        self.planned_talk = self._rng.uniform(self._talk.low, self._talk.high)
        self._timer = self._clock.call_later(self.planned_talk, self._hang_up)

    def ended(self) -> None:
        if self.end is not None:
            return
        self._cancel_timer()
        self.ended_at = self._clock.now()
        if self.answered_at is not None:
            self.end = CustomerEnd.HUNG_UP if self._hung_up else CustomerEnd.OPERATOR_HUNG_UP
        elif self._gave_up:
            self.end = CustomerEnd.GAVE_UP
        elif self.connected_at is not None:
            self.end = CustomerEnd.ENDED_WAITING
        else:
            self.end = CustomerEnd.NOT_CONNECTED
        self._on_done(self)

    @property
    def waited(self) -> float | None:
        """Seconds from dialling to the operator (or to the end, never picked up)."""
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
        """Out of patience: CANCEL while it rings, BYE while on hold in a queue (an abandon)."""
        self._timer = None
        self._gave_up = True
        if self.call is None:
            return
        if self.connected_at is None:
            self.call.cancel()
        else:
            self.call.hang_up()

    def _hang_up(self) -> None:
        self._timer = None
        self._hung_up = True
        if self.call is not None:
            self.call.hang_up()

    def close(self) -> None:
        self._cancel_timer()
