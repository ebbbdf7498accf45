"""Changing a web password: by its owner (who proves the current one) or by an administrator.

Either way the new password must pass the `PasswordPolicy`, is stored as an argon2id hash of
its NFKC form, and every session of the user ends (`SessionEndReason.PASSWORD_CHANGED`, which
also closes their live WebSocket connections): whoever might have had the old password or a
session made with it is out. The owner signs in again with the new password.

A wrong current password counts as a failed sign-in from that address (the same throttle), so a
stolen session cannot be used to guess the password at full speed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from callwarden.domain.errors import NotFound, ValidationFailed
from callwarden.domain.ids import UserId
from callwarden.security.devices import KnownDevices
from callwarden.security.password_policy import PasswordPolicy
from callwarden.security.passwords import PasswordHasher
from callwarden.security.sessions import SessionEndReason, SessionId, SessionService
from callwarden.security.throttle import LoginThrottle
from callwarden.store.schema import UserRow

logger = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]


class PasswordRetryLater(ValidationFailed):
    """Too many wrong current passwords from this address: retry after `seconds`."""

    default_error_id = "retry_later"

    def __init__(self, seconds: int) -> None:
        super().__init__(
            f"too many attempts; retry after {seconds} s",
            details={"current_password": "too many attempts", "retry_after": seconds},
        )
        self.seconds = seconds


class PasswordChanges:
    """Sets web passwords through the policy and ends the user's sessions afterwards."""

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        sessions: SessionService,
        throttle: LoginThrottle,
        devices: KnownDevices,
    ) -> None:
        self._db = session_factory
        self._hasher = hasher
        self._policy = policy
        self._sessions = sessions
        self._throttle = throttle
        self._devices = devices

    def change_own(
        self, user_id: UserId, current_password: str, new_password: str, *, address: str
    ) -> tuple[SessionId, ...]:
        """The owner's change (`address` is the `address_key` of their request). Raises
        `ValidationFailed` naming `current_password` (wrong), `PasswordRetryLater`, or
        `PasswordRejected` naming `password`; returns the ended sessions."""
        username, display_name, stored = self._user(user_id)
        known = self._devices.address_known(user_id, address)
        delay = self._throttle.check_sign_in(username, address, known_address=known)
        if delay is not None:
            raise PasswordRetryLater(delay.seconds)
        if stored is None or not self._hasher.verify(stored, current_password):
            self._throttle.record_sign_in_failure(username, address)
            raise ValidationFailed(
                "the current password is not correct",
                error_id="current_password_incorrect",
                details={"current_password": "not correct"},
            )
        self._store(user_id, new_password, username, display_name)
        self._throttle.record_sign_in_success(username, address)
        return self._sessions.revoke_all(user_id, SessionEndReason.PASSWORD_CHANGED)

    def set_by_administrator(self, user_id: UserId, new_password: str) -> tuple[SessionId, ...]:
        """An administrator's reset (the caller authorizes it and audits it); the user's
        sessions end. MFA stays as it is: a reset never bypasses the second factor."""
        username, display_name, _ = self._user(user_id)
        self._store(user_id, new_password, username, display_name)
        return self._sessions.revoke_all(user_id, SessionEndReason.PASSWORD_CHANGED)

    def _user(self, user_id: UserId) -> tuple[str, str, str | None]:
        with self._db() as db:
            row = db.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"user {user_id} not found", error_id="user_not_found")
            return row.username, row.display_name, row.password_hash

    def _store(self, user_id: UserId, new_password: str, username: str, display_name: str) -> None:
        normalized = self._policy.check(new_password, username=username, display_name=display_name)
        password_hash = self._hasher.hash(normalized)
        with self._db() as db:
            row = db.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"user {user_id} not found", error_id="user_not_found")
            row.password_hash = password_hash
            db.commit()
        logger.info("web password of user %s changed", user_id)
