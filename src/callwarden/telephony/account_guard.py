"""Guessing one account's password from many addresses (NIST SP 800-63B 5.2.2: at most 100
consecutive failed attempts on one account), without letting an attacker lock the user out.

The per-address throttles of the auth guard see each attacking address on its own: a botnet
of a thousand addresses gets five guesses at alice's password from each. `AccountGuard`
counts the failures claiming one user name from every address that has *not* authenticated
as that user before (its "known" addresses, remembered on each success). Past
`threshold` failures within `window` seconds the account is blocked for such addresses, for
a time that doubles with each block; alice's own phones, at the addresses they registered from,
are never blocked by it. Unknown user names are counted and blocked alike, so the block tells
an attacker nothing about which names exist.

Each block raises an `AccountGuessingAlert` on the bus (admins) and a log line.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from callwarden.bus.event import Event
from callwarden.sip.clock import Clock
from callwarden.telephony.security_events import AccountGuessingAlert
from callwarden.telephony.source_guard import source_key
from callwarden.telephony.throttle import FailureThrottle, ThrottleSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AccountGuardSettings:
    threshold: int = 100
    window: float = 3600.0
    block: float = 900.0
    max_block: float = 14_400.0
    known_per_user: int = 16
    max_users: int = 100_000


class AccountGuard:
    def __init__(
        self,
        clock: Clock,
        *,
        settings: AccountGuardSettings | None = None,
        publish: Callable[[Event], None],
        wall_clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings or AccountGuardSettings()
        self._failures = FailureThrottle(
            clock,
            ThrottleSettings(
                threshold=self.settings.threshold,
                window=self.settings.window,
                base_block=self.settings.block,
                max_block=self.settings.max_block,
                max_entries=self.settings.max_users,
            ),
        )
        self._known: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()
        self._publish = publish
        self._wall_clock = wall_clock

    def is_known(self, username: str, address: str) -> bool:
        """Whether `username` authenticated from `address` (for IPv6, from its /64: phones
        change their temporary addresses) recently."""
        known = self._known.get(username)
        return known is not None and source_key(address) in known

    def is_blocked(self, username: str, address: str) -> bool:
        """Whether attempts on `username` from `address` are refused now."""
        return not self.is_known(username, address) and self._failures.is_blocked(username)

    def record_failure(self, username: str, address: str) -> None:
        """A failed attempt claiming `username` from `address` (counted unless known)."""
        if self.is_known(username, address):
            return
        if self._failures.record_failure(username):
            logger.warning(
                "password guessing on SIP account %r from many addresses: blocked for "
                "addresses it never authenticated from (last failure from %s)",
                username,
                address,
            )
            self._publish(
                AccountGuessingAlert(
                    at=self._wall_clock(),
                    username=username,
                    failures=self.settings.threshold,
                    window=self.settings.window,
                )
            )

    def record_success(self, username: str, address: str) -> None:
        """`username` authenticated from `address`: that address is one of theirs now."""
        known = self._known.get(username)
        if known is None:
            known = self._known[username] = OrderedDict()
            if len(self._known) > self.settings.max_users:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(username)
        key = source_key(address)
        known[key] = None
        known.move_to_end(key)
        if len(known) > self.settings.known_per_user:
            known.popitem(last=False)
