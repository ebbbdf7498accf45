"""Injected time for the SIP stack (and anyone else who needs timers).

Protocol timers (RFC 3261 17.1.1.2, 17.1.2.2, 17.2.1, 17.2.2, RFC 6026 Timers L and M) are
scheduled through a :class:`Clock`, never through the event loop directly, so tests drive a
:class:`FakeClock` instead of sleeping and production wires a :class:`LoopClock`.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Protocol, TypeVarTuple, Unpack

__all__ = ["Clock", "FakeClock", "FakeTimerHandle", "LoopClock", "TimerHandle"]

_Ts = TypeVarTuple("_Ts")


class TimerHandle(Protocol):
    """A scheduled callback that may still be cancelled."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time plus one-shot timers."""

    def now(self) -> float:
        """Monotonic seconds (only differences are meaningful)."""
        ...

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> TimerHandle:
        """Run ``callback(*args)`` once, ``delay`` seconds from now."""
        ...


class LoopClock:
    """A :class:`Clock` backed by an asyncio (or uvloop) event loop."""

    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def now(self) -> float:
        return self._loop.time()

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> TimerHandle:
        return self._loop.call_later(delay, callback, *args)


class FakeTimerHandle:
    """Timer of a :class:`FakeClock`."""

    __slots__ = ("_args", "_callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[object, ...]):
        self.when = when
        self._callback = callback
        self._args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def _run(self) -> None:
        self._callback(*self._args)


class FakeClock:
    """A manually driven :class:`Clock` for tests.

    :meth:`advance` moves time forward and fires every due callback in order of its due
    time (ties in scheduling order), setting :meth:`now` to each timer's due time while it
    runs; callbacks scheduled while advancing fire too if they fall due within the step.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sequence = 0
        self._heap: list[tuple[float, int, FakeTimerHandle]] = []

    def now(self) -> float:
        return self._now

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> FakeTimerHandle:
        if delay < 0:
            delay = 0.0
        handle = FakeTimerHandle(self._now + delay, callback, tuple(args))
        self._sequence += 1
        heapq.heappush(self._heap, (handle.when, self._sequence, handle))
        return handle

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due callbacks in order."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        """Move time forward to ``when``, firing due callbacks in order."""
        if when < self._now:
            raise ValueError("time only moves forward")
        heap = self._heap
        while heap and heap[0][0] <= when:
            due, _, handle = heapq.heappop(heap)
            if handle.cancelled:
                continue
            self._now = due
            handle._run()
        self._now = when

    def pending(self) -> int:
        """Number of timers scheduled and not cancelled."""
        return sum(1 for _, _, handle in self._heap if not handle.cancelled)

    def next_deadline(self) -> float | None:
        """Due time of the earliest pending timer, or None."""
        live = [entry[0] for entry in self._heap if not entry[2].cancelled]
        return min(live) if live else None
