"""Server-side web sessions: random tokens, stored hashed, with idle and absolute timeouts.

- A token is `secrets.token_urlsafe(32)`: 256 bits from the OS CSPRNG (ASVS 5.0 V7.2.3 asks for
  at least 128). The database keeps only its SHA-256, so reading the table (a backup, an
  injection) gives no cookie that works; the token itself exists only in the response that sets
  the cookie. Each session has its own random CSRF token.
- A new token at sign-in (`create`) and another at MFA (`elevate`, which replaces the token of
  the same session row): a token planted before either step is worthless after it (session
  fixation, ASVS V7.2.4).
- A session ends after `idle_timeout` without a request (default 30 min) and `absolute_lifetime`
  after sign-in (default 12 h), as NIST SP 800-63B section 7.2 asks for AAL2. A session still
  waiting for its MFA code lives `mfa_step_lifetime` (default 10 min). Ended sessions stay
  listed (with why they ended) for `keep_ended_for`, then `sweep` deletes them.
- `revoke_all` ends every session of a user (disabled, role or password changed, "sign out
  everywhere") and tells `SessionRevocations` subscribers, so whoever holds live WebSocket
  connections closes them at once. Subscribers are told after the change is committed.
- `validate` also refuses (and ends) the session of a user who has been disabled meanwhile.

`last_seen_at` is written at most once per `touch_interval` (default 60 s), not on every request.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NewType

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.orm import Session

from callwarden.domain.errors import InvalidState, NotFound
from callwarden.domain.ids import UserId
from callwarden.security.clock import Clock
from callwarden.store.database import WRITE_TRANSACTION
from callwarden.store.schema import UserRow, WebSessionRow

logger = logging.getLogger(__name__)

SessionId = NewType("SessionId", int)
SessionFactory = Callable[[], Session]

TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
USER_AGENT_LENGTH = 512
ADDRESS_LENGTH = 64


class AuthLevel(enum.Enum):
    """How far a session has authenticated: the password only, or the password and MFA."""

    PASSWORD = "password"  # noqa: S105 (a level's name, not a secret)
    MFA = "mfa"


class SessionEndReason(enum.Enum):
    LOGOUT = "logout"
    LOGOUT_ALL = "logout_all"
    DISABLED = "disabled"
    ROLE_CHANGED = "role_changed"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (a reason, not a secret)
    MFA_CHANGED = "mfa_changed"
    ADMIN_REVOKED = "admin_revoked"
    IDLE_TIMEOUT = "idle_timeout"
    EXPIRED = "expired"


@dataclass(frozen=True)
class SessionSettings:
    absolute_lifetime: timedelta = timedelta(hours=12)
    idle_timeout: timedelta = timedelta(minutes=30)
    mfa_step_lifetime: timedelta = timedelta(minutes=10)
    touch_interval: timedelta = timedelta(seconds=60)
    keep_ended_for: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.touch_interval < self.idle_timeout <= self.absolute_lifetime:
            raise ValueError("need 0 <= touch_interval < idle_timeout <= absolute_lifetime")
        if not timedelta(0) < self.mfa_step_lifetime <= self.absolute_lifetime:
            raise ValueError("need 0 < mfa_step_lifetime <= absolute_lifetime")


@dataclass(frozen=True)
class WebSession:
    """A session as stored (never its token). `fully_authenticated` is what routes other than
    the MFA step require."""

    id: SessionId
    user_id: UserId
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    idle_expires_at: datetime
    auth_level: AuthLevel
    mfa_required: bool
    client_address: str
    user_agent: str
    csrf_token: str = field(repr=False)
    ended_at: datetime | None = None
    end_reason: SessionEndReason | None = None

    @property
    def fully_authenticated(self) -> bool:
        return self.auth_level is AuthLevel.MFA or not self.mfa_required

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether a request's CSRF header carries this session's token (constant time)."""
        if presented is None:
            return False
        return hmac.compare_digest(presented.encode(), self.csrf_token.encode())


@dataclass(frozen=True)
class IssuedSession:
    """A session and its token: the token goes into the cookie and is never shown again."""

    token: str = field(repr=False)
    session: WebSession


@dataclass(frozen=True)
class SessionsRevoked:
    """Sessions of `user_id` ended together (by revocation or expiry)."""

    user_id: UserId
    session_ids: tuple[SessionId, ...]
    reason: SessionEndReason


RevocationListener = Callable[[SessionsRevoked], None]


class SessionRevocations:
    """In-process notice of ended sessions, for whoever holds live connections (the WebSocket).

    Listeners run synchronously in the revoking thread, so they should only schedule work (e.g.
    `loop.call_soon_threadsafe`); one that raises is logged and the others still run.
    """

    def __init__(self) -> None:
        self._listeners: list[RevocationListener] = []

    def subscribe(self, listener: RevocationListener) -> Callable[[], None]:
        """Call `listener` for each revocation from now on; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: SessionsRevoked) -> None:
        if not event.session_ids:
            return
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("session revocation listener failed for user %s", event.user_id)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _well_formed(token: str | None) -> bool:
    return token is not None and _TOKEN_SHAPE.fullmatch(token) is not None


def writing(session_factory: SessionFactory) -> Session:
    """A session whose transaction takes the write lock as it begins (SQLite `BEGIN
    IMMEDIATE`), for read-decide-write steps; other databases lock the rows read `FOR UPDATE`."""
    db = session_factory()
    db.connection(execution_options=WRITE_TRANSACTION)
    return db


class SessionService:
    """Creates, checks, elevates, lists and ends web sessions; each call is one transaction."""

    def __init__(
        self,
        session_factory: SessionFactory,
        clock: Clock,
        revocations: SessionRevocations,
        settings: SessionSettings | None = None,
    ) -> None:
        self._db = session_factory
        self._clock = clock
        self._revocations = revocations
        self.settings = settings if settings is not None else SessionSettings()

    def create(
        self,
        user_id: UserId,
        *,
        auth_level: AuthLevel,
        mfa_required: bool,
        client_address: str,
        user_agent: str,
    ) -> IssuedSession:
        """A new session with a new token (called at each sign-in; never reuses a token)."""
        now = self._clock.now()
        pending = mfa_required and auth_level is AuthLevel.PASSWORD
        lifetime = self.settings.mfa_step_lifetime if pending else self.settings.absolute_lifetime
        token = secrets.token_urlsafe(TOKEN_BYTES)
        row = WebSessionRow(
            token_hash=token_hash(token),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            auth_level=auth_level.value,
            mfa_required=mfa_required,
            client_address=client_address[:ADDRESS_LENGTH],
            user_agent=user_agent[:USER_AGENT_LENGTH],
            csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
        )
        with self._db() as db:
            db.add(row)
            db.commit()
            return IssuedSession(token, self._value(row))

    def elevate(self, session_id: SessionId) -> IssuedSession:
        """Mark an active password-level session MFA-complete under a new token and CSRF token
        (the old token stops working); its absolute lifetime now counts from sign-in."""
        now = self._clock.now()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with writing(self._db) as db:
            row = db.get(WebSessionRow, session_id, with_for_update=True)
            if row is None or row.ended_at is not None or self._end_reason(row, now) is not None:
                raise InvalidState("the session has ended", error_id="session_ended")
            if row.auth_level != AuthLevel.PASSWORD.value:
                raise InvalidState("the session has completed MFA already", error_id="mfa_done")
            row.token_hash = token_hash(token)
            row.csrf_token = secrets.token_urlsafe(TOKEN_BYTES)
            row.auth_level = AuthLevel.MFA.value
            row.last_seen_at = now
            row.expires_at = row.created_at + self.settings.absolute_lifetime
            db.commit()
            return IssuedSession(token, self._value(row))

    def validate(self, token: str | None) -> WebSession | None:
        """The active session of `token`, its last use noted; None for an unknown, ended, timed
        out or disabled user's session (the last three are ended now, with their reason)."""
        if not _well_formed(token):
            return None
        assert token is not None
        now = self._clock.now()
        with self._db() as db:
            found = db.execute(
                select(WebSessionRow, UserRow.enabled)
                .join(UserRow, UserRow.id == WebSessionRow.user_id)
                .where(WebSessionRow.token_hash == token_hash(token))
            ).one_or_none()
        if found is None or found[0].ended_at is not None:
            return None
        row, enabled = found
        reason = SessionEndReason.DISABLED if not enabled else self._end_reason(row, now)
        if reason is not None:
            self._end_if_active(row, reason, now)
            return None
        if now - row.last_seen_at >= self.settings.touch_interval:
            with self._db() as db:
                db.execute(
                    update(WebSessionRow)
                    .where(WebSessionRow.id == row.id, WebSessionRow.ended_at.is_(None))
                    .values(last_seen_at=now)
                )
                db.commit()
            row.last_seen_at = now
        return self._value(row)

    def _end_if_active(self, row: WebSessionRow, reason: SessionEndReason, now: datetime) -> None:
        with self._db() as db:
            result = db.execute(
                update(WebSessionRow)
                .where(WebSessionRow.id == row.id, WebSessionRow.ended_at.is_(None))
                .values(ended_at=now, end_reason=reason.value)
            )
            db.commit()
        if isinstance(result, CursorResult) and result.rowcount == 1:
            self._revocations.publish(
                SessionsRevoked(UserId(row.user_id), (SessionId(row.id),), reason)
            )

    def get(self, session_id: SessionId) -> WebSession:
        with self._db() as db:
            row = db.get(WebSessionRow, session_id)
            if row is None:
                raise NotFound(f"session {session_id} not found", error_id="session_not_found")
            return self._value(row)

    def list_for_user(self, user_id: UserId, *, include_ended: bool = False) -> list[WebSession]:
        """The user's sessions, newest first (the "your sessions" page); timed-out ones count
        as ended even before `sweep` has marked them."""
        now = self._clock.now()
        with self._db() as db:
            query = select(WebSessionRow).where(WebSessionRow.user_id == user_id)
            if not include_ended:
                query = query.where(WebSessionRow.ended_at.is_(None))
            rows = db.scalars(query.order_by(WebSessionRow.created_at.desc(), WebSessionRow.id))
            sessions = [self._value(row) for row in rows]
        if include_ended:
            return sessions
        return [item for item in sessions if self._timed_out(item, now) is None]

    def revoke(self, session_id: SessionId, reason: SessionEndReason) -> bool:
        """End one session; False if it had ended already."""
        with writing(self._db) as db:
            row = db.get(WebSessionRow, session_id, with_for_update=True)
            if row is None or row.ended_at is not None:
                return False
            self._end(db, [row], reason, self._clock.now())
            db.commit()
            event = SessionsRevoked(UserId(row.user_id), (session_id,), reason)
        self._revocations.publish(event)
        return True

    def revoke_own(self, user_id: UserId, session_id: SessionId, reason: SessionEndReason) -> None:
        """End one of the user's own sessions; another user's or an ended one is `NotFound`."""
        with self._db() as db:
            row = db.get(WebSessionRow, session_id)
            owned = row is not None and row.user_id == user_id and row.ended_at is None
        if not owned or not self.revoke(session_id, reason):
            raise NotFound(f"session {session_id} not found", error_id="session_not_found")

    def revoke_token(self, token: str | None, reason: SessionEndReason) -> WebSession | None:
        """End the session of `token` (sign out); the ended session, or None if there was none."""
        if not _well_formed(token):
            return None
        assert token is not None
        with self._db() as db:
            session_id = db.scalar(
                select(WebSessionRow.id).where(
                    WebSessionRow.token_hash == token_hash(token), WebSessionRow.ended_at.is_(None)
                )
            )
        if session_id is None or not self.revoke(SessionId(session_id), reason):
            return None
        return self.get(SessionId(session_id))

    def revoke_all(
        self, user_id: UserId, reason: SessionEndReason, *, keep: SessionId | None = None
    ) -> tuple[SessionId, ...]:
        """End every active session of the user (but `keep`, if given); the ended ids."""
        with writing(self._db) as db:
            query = select(WebSessionRow).where(
                WebSessionRow.user_id == user_id, WebSessionRow.ended_at.is_(None)
            )
            if keep is not None:
                query = query.where(WebSessionRow.id != keep)
            rows = list(db.scalars(query.order_by(WebSessionRow.id).with_for_update()))
            self._end(db, rows, reason, self._clock.now())
            db.commit()
        ended = tuple(SessionId(row.id) for row in rows)
        if ended:
            logger.info("ended %d sessions of user %s: %s", len(ended), user_id, reason.value)
        self._revocations.publish(SessionsRevoked(user_id, ended, reason))
        return ended

    def sweep(self) -> int:
        """End timed-out sessions (telling subscribers) and delete those ended more than
        `keep_ended_for` ago; run it every minute or so. Returns how many were ended."""
        now = self._clock.now()
        settings = self.settings
        events: list[SessionsRevoked] = []
        with writing(self._db) as db:
            rows = db.scalars(
                select(WebSessionRow)
                .where(
                    WebSessionRow.ended_at.is_(None),
                    or_(
                        WebSessionRow.expires_at <= now,
                        WebSessionRow.last_seen_at <= now - settings.idle_timeout,
                    ),
                )
                .with_for_update()
            ).all()
            for row in rows:
                reason = self._end_reason(row, now) or SessionEndReason.EXPIRED
                self._end(db, [row], reason, now)
                events.append(SessionsRevoked(UserId(row.user_id), (SessionId(row.id),), reason))
            old = db.execute(
                delete(WebSessionRow).where(WebSessionRow.ended_at < now - settings.keep_ended_for)
            )
            db.commit()
        if isinstance(old, CursorResult) and old.rowcount:
            logger.debug("deleted %d long-ended sessions", old.rowcount)
        for event in events:
            self._revocations.publish(event)
        return len(events)

    def _end_reason(self, row: WebSessionRow, now: datetime) -> SessionEndReason | None:
        if now >= row.expires_at:
            return SessionEndReason.EXPIRED
        if now >= row.last_seen_at + self.settings.idle_timeout:
            return SessionEndReason.IDLE_TIMEOUT
        return None

    def _timed_out(self, session: WebSession, now: datetime) -> SessionEndReason | None:
        if now >= session.expires_at:
            return SessionEndReason.EXPIRED
        if now >= session.idle_expires_at:
            return SessionEndReason.IDLE_TIMEOUT
        return None

    @staticmethod
    def _end(
        db: Session, rows: Sequence[WebSessionRow], reason: SessionEndReason, now: datetime
    ) -> None:
        for row in rows:
            row.ended_at = now
            row.end_reason = reason.value
        db.flush()

    def _value(self, row: WebSessionRow) -> WebSession:
        return WebSession(
            id=SessionId(row.id),
            user_id=UserId(row.user_id),
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            idle_expires_at=min(row.expires_at, row.last_seen_at + self.settings.idle_timeout),
            auth_level=AuthLevel(row.auth_level),
            mfa_required=row.mfa_required,
            client_address=row.client_address,
            user_agent=row.user_agent,
            csrf_token=row.csrf_token,
            ended_at=row.ended_at,
            end_reason=None if row.end_reason is None else SessionEndReason(row.end_reason),
        )
