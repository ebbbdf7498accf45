"""Known devices: the (address, browser) pairs each user has completed sign-in from.

A sign-in from a pair not seen before is reported in the sign-in outcome (`new_device`, and
`new_address` when the address itself is new for the user), so the caller records it in the audit
log and tells the user and their supervisor (issue 3, network policy). Addresses are kept as
`address_key` (IPv6 as its /64); the browser as a SHA-256 of its User-Agent (the key) plus the
first 255 characters of it (to show). A pair is remembered only once sign-in is complete (after
MFA where MFA is needed), so a password alone does not make an address "known"; known addresses
are also spared the account-wide sign-in slow-down (`callwarden.security.throttle`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CursorResult, delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callwarden.domain.ids import UserId
from callwarden.security.clock import Clock
from callwarden.store.schema import KnownDeviceRow

SessionFactory = Callable[[], Session]
USER_AGENT_DISPLAY_LENGTH = 255


@dataclass(frozen=True)
class DeviceNovelty:
    """What was new about a sign-in: the address for this user, or the (address, browser)."""

    new_address: bool
    new_device: bool


@dataclass(frozen=True)
class KnownDevice:
    address: str
    user_agent: str
    first_seen_at: datetime
    last_seen_at: datetime


def user_agent_hash(user_agent: str) -> str:
    return hashlib.sha256(user_agent.encode("utf-8", "replace")).hexdigest()


class KnownDevices:
    """Remembers, lists and forgets users' known (address, browser) pairs."""

    def __init__(self, session_factory: SessionFactory, clock: Clock) -> None:
        self._db = session_factory
        self._clock = clock

    def novelty(self, user_id: UserId, address: str, user_agent: str) -> DeviceNovelty:
        """What would be new about a sign-in from here (nothing is recorded)."""
        with self._db() as db:
            rows = db.execute(
                select(KnownDeviceRow.user_agent_hash).where(
                    KnownDeviceRow.user_id == user_id, KnownDeviceRow.address == address
                )
            ).scalars()
            hashes = set(rows)
        return DeviceNovelty(
            new_address=not hashes, new_device=user_agent_hash(user_agent) not in hashes
        )

    def address_known(self, user_id: UserId, address: str) -> bool:
        with self._db() as db:
            return bool(
                db.scalar(
                    select(
                        exists().where(
                            KnownDeviceRow.user_id == user_id, KnownDeviceRow.address == address
                        )
                    )
                )
            )

    def remember(self, user_id: UserId, address: str, user_agent: str) -> DeviceNovelty:
        """Record a completed sign-in from here; what was new about it."""
        novelty = self.novelty(user_id, address, user_agent)
        now = self._clock.now()
        key = (user_id, address, user_agent_hash(user_agent))
        with self._db() as db:
            seen = db.execute(
                update(KnownDeviceRow)
                .where(
                    KnownDeviceRow.user_id == user_id,
                    KnownDeviceRow.address == address,
                    KnownDeviceRow.user_agent_hash == key[2],
                )
                .values(last_seen_at=now)
            )
            if isinstance(seen, CursorResult) and seen.rowcount == 1:
                db.commit()
                return novelty
            db.add(
                KnownDeviceRow(
                    user_id=user_id,
                    address=address,
                    user_agent_hash=key[2],
                    user_agent=user_agent[:USER_AGENT_DISPLAY_LENGTH],
                    first_seen_at=now,
                    last_seen_at=now,
                )
            )
            try:
                db.commit()
            except IntegrityError:  # the same new device signed in twice at once
                db.rollback()
                return DeviceNovelty(new_address=False, new_device=False)
        return novelty

    def list_for_user(self, user_id: UserId) -> list[KnownDevice]:
        """Newest first."""
        with self._db() as db:
            rows = db.scalars(
                select(KnownDeviceRow)
                .where(KnownDeviceRow.user_id == user_id)
                .order_by(KnownDeviceRow.last_seen_at.desc())
            )
            return [
                KnownDevice(row.address, row.user_agent, row.first_seen_at, row.last_seen_at)
                for row in rows
            ]

    def forget_all(self, user_id: UserId) -> None:
        with self._db() as db:
            db.execute(delete(KnownDeviceRow).where(KnownDeviceRow.user_id == user_id))
            db.commit()
