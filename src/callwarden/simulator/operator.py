"""A simulated operator at their desk: signed in while their phone is registered, lets a call
ring for a moment, answers, talks, sometimes hangs up first, wraps up, and is available again.

:class:`OperatorDesk` is the behaviour alone, over an injected clock and random source and a
small :class:`OfferedCall` interface, so it is tested with a fake clock; the states carry the
agent-state names of DESIGN.md. :class:`SimulatedOperator` puts a desk behind a registered
SIP phone.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable
from typing import Protocol

from callwarden.simulator.calls import IncomingCall, SipCall
from callwarden.simulator.registration import Registration
from callwarden.simulator.settings import OperatorAccount, SecondsRange
from callwarden.simulator.user_agent import UserAgent
from callwarden.sip.clock import Clock, TimerHandle
from callwarden.sip.tx_base import check_transition

__all__ = ["DeskState", "OfferedCall", "OperatorDesk", "SimulatedOperator"]

logger = logging.getLogger(__name__)

BUSY = 486


class DeskState(enum.Enum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"


_TRANSITIONS = {
    DeskState.OFFLINE: frozenset({DeskState.AVAILABLE}),
    DeskState.AVAILABLE: frozenset({DeskState.RINGING, DeskState.OFFLINE}),
    DeskState.RINGING: frozenset({DeskState.ON_CALL, DeskState.AVAILABLE, DeskState.OFFLINE}),
    DeskState.ON_CALL: frozenset({DeskState.WRAP_UP}),
    DeskState.WRAP_UP: frozenset({DeskState.AVAILABLE, DeskState.OFFLINE}),
}


class OfferedCall(Protocol):
    """What a desk does with a call that rings at it."""

    @property
    def call_id(self) -> str: ...

    def answer(self) -> None: ...

    def hang_up(self) -> None: ...

    def reject(self, status: int, detail: str = "") -> None: ...


def draw(rng: random.Random, seconds: SecondsRange) -> float:
    return rng.uniform(seconds.low, seconds.high)


class OperatorDesk:
    """One operator's behaviour. ``offer`` a call: a busy desk refuses it (486 Busy Here); an
    available one lets it ring ``ring`` seconds, answers, and hangs up after ``talk`` seconds
    unless the caller hangs up first (:meth:`call_ended`); then ``wrap_up`` seconds of
    after-call work before the next call. Signed out while the phone is not registered."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        rng: random.Random,
        *,
        ring: SecondsRange,
        talk: SecondsRange,
        wrap_up: SecondsRange,
    ) -> None:
        self.name = name
        self._clock = clock
        self._rng = rng
        self._ring = ring
        self._talk = talk
        self._wrap_up = wrap_up
        self.state = DeskState.OFFLINE
        self.call: OfferedCall | None = None
        self._timer: TimerHandle | None = None
        self._signed_in = False
        self.answered = 0
        self.refused = 0
        self.hung_up_first = 0

    def _transition(self, new: DeskState) -> None:
        self.state = check_transition(_TRANSITIONS, self.state, new)
        logger.debug("%s is %s", self.name, new.value)

    def _schedule(self, delay: float, action: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self._clock.call_later(delay, action)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def sign_in(self) -> None:
        """The phone is registered: take calls (after wrap-up, if one is running)."""
        self._signed_in = True
        if self.state is DeskState.OFFLINE:
            self._transition(DeskState.AVAILABLE)

    def sign_out(self) -> None:
        """The phone is no longer registered: take no new calls (a call in progress goes on)."""
        self._signed_in = False
        if self.state in (DeskState.AVAILABLE, DeskState.RINGING):
            call, self.call = self.call, None
            self._cancel_timer()
            self._transition(DeskState.OFFLINE)
            if call is not None:
                call.reject(480)

    def offer(self, call: OfferedCall) -> bool:
        """A call rings here; False (and 486) when the operator is not available."""
        if self.state is not DeskState.AVAILABLE:
            self.refused += 1
            call.reject(BUSY, f"{self.name} is {self.state.value}")
            return False
        self.call = call
        self._transition(DeskState.RINGING)
        self._schedule(draw(self._rng, self._ring), self._answer)
        return True

    def call_ended(self, call: OfferedCall) -> None:
        """The call ended from the other side (caller hung up or gave up) or failed."""
        if call is not self.call:
            return
        self.call = None
        self._cancel_timer()
        if self.state is DeskState.RINGING:
            self._transition(DeskState.AVAILABLE)
        elif self.state is DeskState.ON_CALL:
            self._start_wrap_up()

    def _answer(self) -> None:
        self._timer = None
        if self.call is None or self.state is not DeskState.RINGING:
            return
        self._transition(DeskState.ON_CALL)
        self.answered += 1
        self._schedule(draw(self._rng, self._talk), self._hang_up)
        self.call.answer()

    def _hang_up(self) -> None:
        self._timer = None
        call, self.call = self.call, None
        if call is None or self.state is not DeskState.ON_CALL:
            return
        self.hung_up_first += 1
        self._start_wrap_up()
        call.hang_up()

    def _start_wrap_up(self) -> None:
        self._transition(DeskState.WRAP_UP)
        self._schedule(draw(self._rng, self._wrap_up), self._ready)

    def _ready(self) -> None:
        self._timer = None
        if self.state is DeskState.WRAP_UP:
            self._transition(DeskState.AVAILABLE if self._signed_in else DeskState.OFFLINE)

    def close(self) -> None:
        self._cancel_timer()


class SimulatedOperator:
    """An :class:`OperatorDesk` behind a SIP phone registered as ``account``."""

    def __init__(
        self,
        agent: UserAgent,
        account: OperatorAccount,
        desk: OperatorDesk,
        *,
        realm: str,
        expires: int,
    ) -> None:
        self.agent = agent
        self.account = account
        self.desk = desk
        self.registration = Registration(
            agent, account, realm=realm, expires=expires, on_change=self._registration_changed
        )
        self.on_signed_in: Callable[[SimulatedOperator], None] | None = None
        self.on_answered: Callable[[IncomingCall], None] | None = None
        agent.handler = self

    async def start(self) -> None:
        await self.agent.start()
        self.registration.start()

    async def close(self) -> None:
        self.registration.close()
        self.desk.close()
        await self.agent.close()

    def _registration_changed(self, registration: Registration) -> None:
        if registration.registered:
            self.desk.sign_in()
            if self.on_signed_in is not None:
                self.on_signed_in(self)
        else:
            self.desk.sign_out()

    def on_incoming(self, call: IncomingCall) -> None:
        call.on_ended = self._ended
        call.on_answered = self._answered
        if self.desk.offer(call):
            self.agent.spawn(call.ring())

    def _answered(self, call: SipCall) -> None:
        assert isinstance(call, IncomingCall)
        if self.on_answered is not None:
            self.on_answered(call)

    def _ended(self, call: SipCall) -> None:
        assert isinstance(call, IncomingCall)
        self.desk.call_ended(call)
