"""The timers of a queue call and its periodic announcement.

`CallTimers` keeps one-shot timers by name on the injected clock; each fires as a `TimerDue`
event of the call's own task (never as a callback into the middle of its work), and a timer
replaced or cancelled before its event is taken is recognised as stale by its serial.

`Announcer` plays, every `Queue.announce_seconds` while the caller waits, the caller's
position and then the expected wait (`telephony.prompts`), one prompt after the other, then
the hold music again; the next announcement is due that many seconds after the music resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from callwarden.acd.clock import Clock, TimerHandle
from callwarden.telephony.prompts import Prompts
from callwarden.telephony.queue_events import TimerDue
from callwarden.telephony.queue_hold import CallerAudio

__all__ = ["ANNOUNCE", "PROMPT", "Announcer", "CallTimers"]

ANNOUNCE = "announce"
PROMPT = "prompt"


class CallTimers:
    """Named one-shot timers whose expiry is posted to the call (`post`)."""

    def __init__(self, clock: Clock, post: Callable[[TimerDue], None]) -> None:
        self._clock = clock
        self._post = post
        self._timers: dict[str, tuple[int, TimerHandle]] = {}
        self._serial = 0

    def set(self, name: str, delay: float) -> None:
        """(Re)start timer `name`: due `delay` seconds from now."""
        self.cancel(name)
        self._serial += 1
        due = TimerDue(name, self._serial)
        self._timers[name] = (self._serial, self._clock.call_later(delay, partial(self._post, due)))

    def cancel(self, name: str) -> None:
        found = self._timers.pop(name, None)
        if found is not None:
            found[1].cancel()

    def take(self, event: TimerDue) -> bool:
        """Whether `event` is the live expiry of its timer (which is then over)."""
        found = self._timers.get(event.name)
        if found is None or found[0] != event.serial:
            return False
        del self._timers[event.name]
        return True

    def pending(self, name: str) -> bool:
        return name in self._timers

    def cancel_all(self) -> None:
        for _serial, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


class Announcer:
    """A waiting caller's periodic position / expected-wait announcement."""

    def __init__(
        self,
        timers: CallTimers,
        prompts: Prompts | None,
        every_seconds: int | None,
        *,
        where: Callable[[], tuple[int, float] | None],
    ) -> None:
        """`where()`: the caller's position and expected wait, None while not announceable."""
        self._timers = timers
        self._prompts = prompts
        self._every = every_seconds
        self._where = where
        self._parts: list[tuple[Path, float]] = []
        self.count = 0
        """How many announcements were begun."""
        self.heard: list[tuple[int, float]] = []
        """(position, expected wait) of each announcement, in order."""

    @property
    def enabled(self) -> bool:
        return bool(self._every) and self._prompts is not None

    def schedule(self) -> None:
        if self.enabled and self._every:
            self._timers.set(ANNOUNCE, float(self._every))

    def stop(self) -> None:
        self._parts = []
        self._timers.cancel(ANNOUNCE)
        self._timers.cancel(PROMPT)

    async def on_timer(self, name: str, audio: CallerAudio) -> None:
        """The ANNOUNCE or PROMPT timer fired (already `take`n)."""
        if name == ANNOUNCE:
            await self._begin(audio)
        else:
            await self._next(audio)

    async def _begin(self, audio: CallerAudio) -> None:
        found = self._where()
        if found is None or self._prompts is None:
            self.schedule()
            return
        position, wait_seconds = found
        self._parts = [self._prompts.position(position)]
        wait = self._prompts.wait(wait_seconds)
        if wait is not None:
            self._parts.append(wait)
        self.count += 1
        self.heard.append(found)
        await self._next(audio)

    async def _next(self, audio: CallerAudio) -> None:
        if not self._parts or self._where() is None:
            self._parts = []
            if audio.playing == "prompt":
                await audio.resume_hold()
            self.schedule()
            return
        path, seconds = self._parts.pop(0)
        await audio.play_prompt(path)
        self._timers.set(PROMPT, seconds)
