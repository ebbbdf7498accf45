"""Toll-fraud guards on calls: concurrent-call limits per user and per trunk, an outbound
call-rate ("spend-rate") limit per user and per trunk, and alerts on bursts and on unusual
destinations.

The dial plan already decides *where* a user may call (the per-role outbound allow-list) and
refuses dial strings with separators or URIs; this module bounds *how much*: a stolen phone
password, or an operator's phone taken over, cannot start a hundred parallel calls to a
premium number. Every new call asks `TollGuard.admit` before it starts and gives its
`CallLease` back when it ends.

- concurrent calls: at most `max_calls_per_user` calls placed by one user at a time (403 Too
  Many Calls beyond), at most `max_calls_per_trunk` calls through one trunk, in or out (503
  with Retry-After beyond: the carrier's channels are a shared resource);
- outbound rate: at most `user_outbound_per_minute` calls out through trunks per user and
  `trunk_outbound_per_minute` per trunk in any `window` seconds (403 / 503 beyond);
- alerts (bus events for admins, `security_events`): `CallBurstAlert` when a user's outbound
  calls in the window reach `burst_alert_calls` (and when a rate limit refuses a call),
  `NewDestinationAlert` on the first outbound call since start to a country code not called
  before (`+44` after `+1`...). An alert is raised once per window per party.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from callwarden.bus.event import Event
from callwarden.domain.ids import TrunkId, UserId
from callwarden.sip.clock import Clock
from callwarden.sip.errors import SipError
from callwarden.telephony.call_context import CallerInfo
from callwarden.telephony.dialplan import Route, ToTrunk
from callwarden.telephony.security_events import CallBurstAlert, CallRefused, NewDestinationAlert

logger = logging.getLogger(__name__)

_ONE_DIGIT_CODES = frozenset({"1", "7"})
_TWO_DIGIT_RANGES = (
    (20, 20), (27, 27), (30, 34), (36, 36), (39, 41), (43, 49), (51, 58), (60, 66),
    (81, 82), (84, 84), (86, 86), (90, 95), (98, 98),
)  # fmt: skip
_TWO_DIGIT_CODES = frozenset(
    str(code) for low, high in _TWO_DIGIT_RANGES for code in range(low, high + 1)
)
"""ITU-T E.164 country codes of one and two digits; every other code has three."""

_INTERNATIONAL_PREFIXES = ("+", "00", "011")


def country_code(number: str) -> str | None:
    """`+44` for `+442071234567`, `0044...` or `011 44...` (E.164 assignment: the one- and
    two-digit codes are listed, the others take three digits); None for a national number."""
    for prefix in _INTERNATIONAL_PREFIXES:
        if number.startswith(prefix):
            digits = number[len(prefix) :]
            break
    else:
        return None
    if not digits.isdigit():
        return None
    if digits[:1] in _ONE_DIGIT_CODES:
        return "+" + digits[:1]
    if digits[:2] in _TWO_DIGIT_CODES:
        return "+" + digits[:2]
    return "+" + digits[:3] if len(digits) >= 3 else None


@dataclass(frozen=True, slots=True)
class TollGuardSettings:
    max_calls_per_user: int = 4
    max_calls_per_trunk: int = 500
    user_outbound_per_minute: int = 10
    trunk_outbound_per_minute: int = 1200
    burst_alert_calls: int = 5
    window: float = 60.0

    def __post_init__(self) -> None:
        values = (
            self.max_calls_per_user,
            self.max_calls_per_trunk,
            self.user_outbound_per_minute,
            self.trunk_outbound_per_minute,
            self.burst_alert_calls,
        )
        if min(values) < 1 or self.window <= 0:
            raise ValueError("toll-fraud limits must be at least 1 and the window positive")


@dataclass(frozen=True, slots=True)
class CallLease:
    """What one admitted call holds: the parties whose concurrent-call counts it raised."""

    parties: tuple[str, ...]


class _Rate:
    """Start times of outbound calls in the last window, and when the last alert was raised."""

    __slots__ = ("alerted_at", "starts")

    def __init__(self) -> None:
        self.starts: deque[float] = deque()
        self.alerted_at: float | None = None

    def count(self, now: float, window: float) -> int:
        while self.starts and now - self.starts[0] >= window:
            self.starts.popleft()
        return len(self.starts)


def _user(user_id: UserId) -> str:
    return f"user:{user_id}"


def _trunk(trunk_id: TrunkId) -> str:
    return f"trunk:{trunk_id}"


class TollGuard:
    def __init__(
        self,
        clock: Clock,
        *,
        settings: TollGuardSettings | None = None,
        publish: Callable[[Event], None],
        wall_clock: Callable[[], datetime],
    ) -> None:
        self._clock = clock
        self.settings = settings or TollGuardSettings()
        self._publish = publish
        self._wall_clock = wall_clock
        self._active: dict[str, int] = {}
        self._rates: dict[str, _Rate] = {}
        self._countries: set[str] = set()

    def active(self, party: str) -> int:
        """Calls held now by `party` (`user:<id>` or `trunk:<id>`)."""
        return self._active.get(party, 0)

    def admit(self, caller: CallerInfo, route: Route, call_id: str) -> CallLease:
        """Admit a new call of `caller` taking `route`, or raise the SipError to answer."""
        settings = self.settings
        parties: list[tuple[str, int, SipError]] = []
        if caller.user_id is not None:
            refusal = SipError("too many calls for this user", 403, "Too Many Calls")
            parties.append((_user(caller.user_id), settings.max_calls_per_user, refusal))
        trunk_ids = {caller.trunk_id} if caller.trunk_id is not None else set()
        if isinstance(route, ToTrunk):
            trunk_ids.add(route.trunk.id)
        for trunk_id in sorted(trunk_ids):
            refusal = SipError(
                "the trunk's channels are all in use", 503, headers=(("Retry-After", "5"),)
            )
            parties.append((_trunk(trunk_id), settings.max_calls_per_trunk, refusal))
        for party, limit, refusal in parties:
            if self.active(party) >= limit:
                logger.warning("call %s refused: %s holds %d calls", call_id, party, limit)
                raise self.refused(caller, refusal)
        if isinstance(route, ToTrunk):
            self._check_outbound(caller, route, call_id)
        for party, _, _ in parties:
            self._active[party] = self._active.get(party, 0) + 1
        return CallLease(tuple(party for party, _, _ in parties))

    def refused(self, caller: CallerInfo, error: SipError) -> SipError:
        """Report a call of `caller` refused with `error` (by this guard or, for a destination
        outside the allow-list, by the dial plan): an event for admins; `error` is returned
        for the caller to raise."""
        if caller.user_id is not None:
            party = _user(caller.user_id)
        elif caller.trunk_id is not None:
            party = _trunk(caller.trunk_id)
        else:
            party = caller.label
        self._publish(
            CallRefused(
                at=self._wall_clock(),
                party=party,
                number=caller.dialled,
                status=error.status,
                reason=error.reason,
            )
        )
        return error

    def release(self, lease: CallLease) -> None:
        """The call holding `lease` ended."""
        for party in lease.parties:
            count = self._active.get(party, 0) - 1
            if count > 0:
                self._active[party] = count
            else:
                self._active.pop(party, None)

    def _check_outbound(self, caller: CallerInfo, route: ToTrunk, call_id: str) -> None:
        """The spend-rate limits of an outbound call, and its alerts; records the start."""
        settings = self.settings
        now = self._clock.now()
        trunk_party = _trunk(route.trunk.id)
        trunk_rate = self._rates.setdefault(trunk_party, _Rate())
        if trunk_rate.count(now, settings.window) >= settings.trunk_outbound_per_minute:
            self._alert_burst(trunk_party, "trunk", trunk_rate, now)
            logger.warning("call %s refused: outbound call rate of %s", call_id, trunk_party)
            raise self.refused(
                caller,
                SipError("outbound call rate exceeded", 503, headers=(("Retry-After", "10"),)),
            )
        user_rate: _Rate | None = None
        user_party = caller.label
        if caller.user_id is not None:
            user_party = _user(caller.user_id)
            user_rate = self._rates.setdefault(user_party, _Rate())
            count = user_rate.count(now, settings.window)
            if count >= settings.user_outbound_per_minute:
                self._alert_burst(user_party, "user", user_rate, now)
                logger.warning("call %s refused: outbound call rate of %s", call_id, user_party)
                raise self.refused(
                    caller, SipError("outbound call rate exceeded", 403, "Call Rate Exceeded")
                )
            user_rate.starts.append(now)
            if count + 1 >= settings.burst_alert_calls:
                self._alert_burst(user_party, "user", user_rate, now)
        trunk_rate.starts.append(now)
        code = country_code(route.number)
        if code is not None and code not in self._countries:
            self._countries.add(code)
            logger.warning(
                "call %s: first call to country code %s (by %s)", call_id, code, user_party
            )
            self._publish(
                NewDestinationAlert(
                    at=self._wall_clock(), party=user_party, country_code=code, number=route.number
                )
            )

    def _alert_burst(self, party: str, kind: str, rate: _Rate, now: float) -> None:
        window = self.settings.window
        if rate.alerted_at is not None and now - rate.alerted_at < window:
            return
        rate.alerted_at = now
        calls = rate.count(now, window)
        logger.warning("call burst: %s started %d outbound calls in %.0f s", party, calls, window)
        self._publish(
            CallBurstAlert(
                at=self._wall_clock(), party_kind=kind, party=party, calls=calls, window=window
            )
        )
