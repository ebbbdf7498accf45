"""Brute-force protection for sign-in and MFA: growing delays, never an attacker-made lock-out.

Failures are counted under four kinds of key; each kind has a number of free failures, then a
delay that doubles with each further failure up to a cap. While a key is in its delay the
attempt is answered "retry after N seconds" without looking at the password (and not counted).

- pair (account, address): 3 free, then 2 s doubling to 15 min. This is what stops a guesser
  at one address; it never touches the real user at another address.
- address (any account): 30 free, then doubling to 15 min, against password spraying. Skipped
  when the account has completed sign-in from this address before, so colleagues behind one
  VPN or office address are not held up by a guesser among them.
- account (any address): 10 free, then 1 s doubling to a bounded 60 s, against guessing from
  many addresses. It applies only at addresses the account has never completed sign-in from,
  so it can slow down, but not lock out, the real user; at a known address it does not apply.
- mfa (user): 3 free, then 2 s doubling to 15 min, against guessing TOTP codes. Only someone who
  has the password reaches it.

Failures are forgotten `forget_after` (24 h) after the last one, and a success clears the pair,
account and mfa counters. With the defaults, 100 consecutive failures on one account (the bound
of NIST SP 800-63B 5.2.2) take more than an hour from any number of new addresses, and a day from
one. Usernames are kept only as a hash in the keys: people type passwords into username fields.

The counters are rows in the database (not memory): every node of a cluster sees the same
counts, a restart does not reset them, and each change is one atomic upsert. `sweep` deletes
the forgotten ones.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from callwarden.domain.ids import UserId
from callwarden.security.clock import Clock
from callwarden.store.schema import LoginThrottleRow

SessionFactory = Callable[[], Session]


class ThrottleScope(enum.Enum):
    PAIR = "pair"
    ADDRESS = "address"
    ACCOUNT = "account"
    MFA = "mfa"


@dataclass(frozen=True)
class ThrottleRule:
    free_failures: int
    base_delay: timedelta
    max_delay: timedelta

    def delay(self, failures: int) -> timedelta:
        """The wait after `failures` failures: none while free, then doubling up to the cap."""
        if failures < self.free_failures:
            return timedelta(0)
        doublings = min(failures - self.free_failures, 20)
        grown: timedelta = self.base_delay * (1 << doublings)
        return min(grown, self.max_delay)


@dataclass(frozen=True)
class ThrottleSettings:
    pair: ThrottleRule = ThrottleRule(3, timedelta(seconds=2), timedelta(minutes=15))
    address: ThrottleRule = ThrottleRule(30, timedelta(seconds=2), timedelta(minutes=15))
    account: ThrottleRule = ThrottleRule(10, timedelta(seconds=1), timedelta(seconds=60))
    mfa: ThrottleRule = ThrottleRule(3, timedelta(seconds=2), timedelta(minutes=15))
    forget_after: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class Delay:
    """An attempt refused for now: retry after `seconds` (rounded up); `scope` for the log."""

    seconds: int
    scope: ThrottleScope


def _count_failure(
    dialect: str, key: str, now: datetime, cutoff: datetime
) -> postgresql.Insert | sqlite.Insert:
    """INSERT the first failure under `key`, or count one more (restarting from 1 if the last
    one is older than `cutoff`): one atomic statement on SQLite and PostgreSQL alike."""
    values = {"key": key, "failures": 1, "first_failure_at": now, "last_failure_at": now}
    if dialect == "postgresql":
        statement: postgresql.Insert | sqlite.Insert = postgresql.insert(LoginThrottleRow)
    else:
        statement = sqlite.insert(LoginThrottleRow)
    statement = statement.values(values)
    proposed = statement.excluded
    forgotten = LoginThrottleRow.last_failure_at < cutoff
    return statement.on_conflict_do_update(
        index_elements=[LoginThrottleRow.key],
        set_={
            "failures": case((forgotten, 1), else_=LoginThrottleRow.failures + 1),
            "first_failure_at": case(
                (forgotten, proposed.first_failure_at), else_=LoginThrottleRow.first_failure_at
            ),
            "last_failure_at": proposed.last_failure_at,
        },
    )


def _account_digest(username: str) -> str:
    return hashlib.sha256(f"callwarden-throttle:{username}".encode()).hexdigest()[:32]


class LoginThrottle:
    """Counts failures per key and says how long an attempt must wait."""

    def __init__(
        self,
        session_factory: SessionFactory,
        clock: Clock,
        settings: ThrottleSettings | None = None,
    ) -> None:
        self._db = session_factory
        self._clock = clock
        self.settings = settings if settings is not None else ThrottleSettings()

    def _sign_in_keys(
        self, username: str, address: str, *, known_address: bool
    ) -> list[tuple[ThrottleScope, str, ThrottleRule]]:
        account = _account_digest(username)
        keys = [(ThrottleScope.PAIR, f"pair:{account}:{address}", self.settings.pair)]
        if not known_address:
            keys.append((ThrottleScope.ADDRESS, f"address:{address}", self.settings.address))
            keys.append((ThrottleScope.ACCOUNT, f"account:{account}", self.settings.account))
        return keys

    def _mfa_key(self, user_id: UserId) -> tuple[ThrottleScope, str, ThrottleRule]:
        return ThrottleScope.MFA, f"mfa:{user_id}", self.settings.mfa

    def check_sign_in(self, username: str, address: str, *, known_address: bool) -> Delay | None:
        """The longest wait among the keys this attempt falls under, or None to go ahead."""
        return self._check(self._sign_in_keys(username, address, known_address=known_address))

    def record_sign_in_failure(self, username: str, address: str) -> None:
        keys = self._sign_in_keys(username, address, known_address=False)
        self._record_failure([key for _, key, _ in keys])

    def record_sign_in_success(self, username: str, address: str) -> None:
        account = _account_digest(username)
        self._clear([f"pair:{account}:{address}", f"account:{account}"])

    def check_mfa(self, user_id: UserId) -> Delay | None:
        return self._check([self._mfa_key(user_id)])

    def record_mfa_failure(self, user_id: UserId) -> None:
        self._record_failure([self._mfa_key(user_id)[1]])

    def record_mfa_success(self, user_id: UserId) -> None:
        self._clear([self._mfa_key(user_id)[1]])

    def failures(self, scope: ThrottleScope, key_text: str) -> int:
        """The current count under a raw key (`pair:<digest>:<address>` etc.), for reports."""
        with self._db() as db:
            row = db.get(LoginThrottleRow, f"{scope.value}:{key_text}")
            return 0 if row is None or self._forgotten(row, self._clock.now()) else row.failures

    def sweep(self) -> int:
        """Delete counters whose last failure is older than `forget_after`; how many."""
        cutoff = self._clock.now() - self.settings.forget_after
        with self._db() as db:
            result = db.execute(
                delete(LoginThrottleRow).where(LoginThrottleRow.last_failure_at < cutoff)
            )
            db.commit()
        return int(getattr(result, "rowcount", 0) or 0)

    def _forgotten(self, row: LoginThrottleRow, now: datetime) -> bool:
        return row.last_failure_at < now - self.settings.forget_after

    def _check(self, keys: list[tuple[ThrottleScope, str, ThrottleRule]]) -> Delay | None:
        now = self._clock.now()
        with self._db() as db:
            rows = {
                row.key: row
                for row in db.scalars(
                    select(LoginThrottleRow).where(
                        LoginThrottleRow.key.in_([k for _, k, _ in keys])
                    )
                )
            }
        longest: Delay | None = None
        for scope, key, rule in keys:
            row = rows.get(key)
            if row is None or self._forgotten(row, now):
                continue
            wait = (row.last_failure_at + rule.delay(row.failures) - now).total_seconds()
            if wait > 0 and (longest is None or wait > longest.seconds):
                longest = Delay(math.ceil(wait), scope)
        return longest

    def _record_failure(self, keys: list[str]) -> None:
        now = self._clock.now()
        cutoff = now - self.settings.forget_after
        with self._db() as db:
            dialect = db.get_bind().dialect.name
            for key in keys:
                db.execute(_count_failure(dialect, key, now, cutoff))
            db.commit()

    def _clear(self, keys: list[str]) -> None:
        with self._db() as db:
            db.execute(delete(LoginThrottleRow).where(LoginThrottleRow.key.in_(keys)))
            db.commit()
