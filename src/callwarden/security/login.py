"""The sign-in use case: password, network policy, throttling, MFA step, new-device notice.

`LoginService.sign_in` runs, in order:

1. Throttling (`callwarden.security.throttle`): a key still in its delay answers `RetryAfter`
   without looking at the password.
2. The password, verified with argon2id. An unknown username, a user without a web password and
   a disabled user are verified against a dummy hash, so each attempt costs the same work and
   takes about the same time (no user enumeration by timing, ASVS 5.0 V6.3.8).
3. The network policy (`callwarden.security.network_policy`).
4. A new session (a new token: session fixation), at MFA level "pending" when the user's role
   needs MFA (`MfaPolicy`) or the user has set it up; `Success.needs_mfa` says so and
   `Success.mfa_enrolment_needed` whether TOTP must be set up first.

Every outcome (`Success`, `Failure`, `RetryAfter`) carries who, from where and why, for the
caller's audit entry. `Failure.reason` is for the log only: the client must get the same answer
for every failure (`PUBLIC_FAILURE_MESSAGE`). `verify_mfa` and `complete_mfa_enrolment` finish
a pending session: they rotate its token again and mark the (address, browser) as known.
`authenticate` is what every later request calls with its cookie's token.
"""

from __future__ import annotations

import enum
import logging
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from callwarden.domain.ids import UserId
from callwarden.domain.models import User
from callwarden.security.clock import Clock
from callwarden.security.devices import DeviceNovelty, KnownDevices
from callwarden.security.mfa import (
    MfaPolicy,
    MfaService,
    MfaVerification,
    RecoveryCodes,
    TotpEnrolment,
)
from callwarden.security.network_policy import (
    IpAddress,
    NetworkPolicy,
    address_key,
    parse_client_address,
    unmapped,
)
from callwarden.security.password_policy import PASSWORD_MAX_LENGTH, normalize_password
from callwarden.security.passwords import PasswordHasher
from callwarden.security.sessions import (
    AuthLevel,
    IssuedSession,
    SessionService,
    WebSession,
)
from callwarden.security.throttle import LoginThrottle, ThrottleScope
from callwarden.store.mapping import user_from_row
from callwarden.store.schema import RoleRow, UserRow

logger = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]

PUBLIC_FAILURE_MESSAGE = "The username or password is incorrect."
USERNAME_LENGTH = 64
ATTEMPTED_NAME_LENGTH = 255
USER_AGENT_LENGTH = 512


@dataclass(frozen=True)
class ClientInfo:
    """Where an attempt comes from: the client's address and its User-Agent header."""

    address: IpAddress
    user_agent: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", unmapped(self.address))
        object.__setattr__(self, "user_agent", self.user_agent[:USER_AGENT_LENGTH])

    @classmethod
    def parse(cls, address: str, user_agent: str | None) -> ClientInfo:
        """From the web server's view of a request; `ValidationFailed` for a bad address."""
        return cls(parse_client_address(address), user_agent or "")

    @property
    def address_key(self) -> str:
        return address_key(self.address)


class FailureReason(enum.Enum):
    """Why an attempt failed: for the audit log and alerts, never for the client."""

    UNKNOWN_USER = "unknown_user"
    BAD_PASSWORD = "bad_password"  # noqa: S105 (a reason, not a secret)
    ACCOUNT_DISABLED = "account_disabled"
    NO_WEB_PASSWORD = "no_web_password"  # noqa: S105 (a reason, not a secret)
    NETWORK_DENIED = "network_denied"
    MALFORMED_INPUT = "malformed_input"
    SESSION_INVALID = "session_invalid"
    MFA_NOT_PENDING = "mfa_not_pending"
    MFA_NOT_ENROLLED = "mfa_not_enrolled"
    MFA_ALREADY_ENROLLED = "mfa_already_enrolled"
    MFA_BAD_CODE = "mfa_bad_code"
    MFA_CODE_REPLAYED = "mfa_code_replayed"


@dataclass(frozen=True)
class Success:
    """Signed in. With `needs_mfa` the session is pending: only the MFA step (or, with
    `mfa_enrolment_needed`, TOTP enrolment) may use it."""

    session: IssuedSession
    user_id: UserId
    username: str
    client: ClientInfo
    needs_mfa: bool = False
    mfa_enrolment_needed: bool = False
    new_device: bool = False
    new_address: bool = False
    used_recovery_code: bool = False
    recovery_codes: RecoveryCodes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Failure:
    """Refused; the client gets `public_message` and nothing else."""

    public_message: ClassVar[str] = PUBLIC_FAILURE_MESSAGE

    reason: FailureReason
    username: str
    client: ClientInfo
    user_id: UserId | None = None


@dataclass(frozen=True)
class RetryAfter:
    """Throttled: the client may try again after `seconds` (an HTTP 429 with Retry-After)."""

    seconds: int
    scope: ThrottleScope
    username: str
    client: ClientInfo
    user_id: UserId | None = None


SignInOutcome = Success | Failure | RetryAfter


@dataclass(frozen=True)
class Authenticated:
    """A request's session is fully signed in."""

    session: WebSession


@dataclass(frozen=True)
class MfaRequired:
    """A request's session is waiting for its MFA step: refuse everything but that step."""

    session: WebSession
    enrolment_needed: bool


def normalize_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username).strip().lower()


class LoginService:
    """Signs people in; see the module docstring. Argon2 verification is CPU-bound (tens of
    milliseconds): call these methods from a worker thread, not the event loop."""

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        clock: Clock,
        hasher: PasswordHasher,
        sessions: SessionService,
        mfa: MfaService,
        throttle: LoginThrottle,
        network_policy: NetworkPolicy,
        devices: KnownDevices,
        mfa_policy: MfaPolicy | None = None,
    ) -> None:
        self._db = session_factory
        self._clock = clock
        self._hasher = hasher
        self._sessions = sessions
        self._mfa = mfa
        self._throttle = throttle
        self._network = network_policy
        self._devices = devices
        self._mfa_policy = mfa_policy if mfa_policy is not None else MfaPolicy()
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(24))

    def sign_in(self, username: str, password: str, client: ClientInfo) -> SignInOutcome:
        """Check a username and password from `client` (see the module docstring)."""
        name = normalize_username(username)
        attempted = name[:ATTEMPTED_NAME_LENGTH]
        user, role_name = self._find(name)
        user_id = None if user is None else user.id
        where = client.address_key
        # One lookup whether or not the user exists (id 0 is never a user's): equal work.
        known = self._devices.address_known(UserId(0) if user is None else user.id, where)
        delay = self._throttle.check_sign_in(name, where, known_address=known)
        if delay is not None:
            logger.info("sign-in of %r from %s throttled (%s)", attempted, where, delay.scope.value)
            return RetryAfter(delay.seconds, delay.scope, attempted, client, user_id)
        reason = self._password_problem(user, password)
        if reason is None and user is not None and not self._network.allows(user, client.address):
            reason = FailureReason.NETWORK_DENIED
        if reason is not None or user is None:
            self._throttle.record_sign_in_failure(name, where)
            failed = reason or FailureReason.UNKNOWN_USER
            logger.info("sign-in of %r from %s failed: %s", attempted, where, failed.value)
            return Failure(failed, attempted, client, user_id)
        self._throttle.record_sign_in_success(name, where)
        self._rehash_if_needed(user, password)
        enrolled = self._mfa.status(user.id).enrolled
        needs_mfa = enrolled or self._mfa_policy.required_for(role_name)
        if needs_mfa:
            novelty = self._devices.novelty(user.id, where, client.user_agent)
        else:
            novelty = self._devices.remember(user.id, where, client.user_agent)
        issued = self._sessions.create(
            user.id,
            auth_level=AuthLevel.PASSWORD,
            mfa_required=needs_mfa,
            client_address=str(client.address),
            user_agent=client.user_agent,
        )
        logger.info("user %s signed in from %s (MFA %s)", user.id, where, needs_mfa)
        return Success(
            issued,
            user.id,
            user.username,
            client,
            needs_mfa=needs_mfa,
            mfa_enrolment_needed=needs_mfa and not enrolled,
            new_device=novelty.new_device,
            new_address=novelty.new_address,
        )

    def verify_mfa(self, token: str | None, code: str, client: ClientInfo) -> SignInOutcome:
        """Complete a pending session with a TOTP or recovery code: the session under a new
        token, or a failure (counted by the MFA throttle)."""
        pending = self._pending(token, client)
        if not isinstance(pending, tuple):
            return pending
        session, user = pending
        delay = self._throttle.check_mfa(user.id)
        if delay is not None:
            return RetryAfter(delay.seconds, delay.scope, user.username, client, user.id)
        verification = self._mfa.verify(user.id, code)
        if not verification.accepted:
            self._throttle.record_mfa_failure(user.id)
            reason = {
                MfaVerification.NOT_ENROLLED: FailureReason.MFA_NOT_ENROLLED,
                MfaVerification.REPLAYED: FailureReason.MFA_CODE_REPLAYED,
            }.get(verification, FailureReason.MFA_BAD_CODE)
            logger.info("MFA of user %s failed: %s", user.id, reason.value)
            return Failure(reason, user.username, client, user.id)
        used_recovery = verification is MfaVerification.ACCEPTED_RECOVERY_CODE
        return self._complete(session, user, client, used_recovery_code=used_recovery)

    def begin_mfa_enrolment(self, token: str | None, client: ClientInfo) -> TotpEnrolment | Failure:
        """A TOTP seed for a pending session whose user has not set up MFA yet."""
        pending = self._pending(token, client)
        if not isinstance(pending, tuple):
            return pending
        _, user = pending
        if self._mfa.status(user.id).enrolled:
            return Failure(FailureReason.MFA_ALREADY_ENROLLED, user.username, client, user.id)
        return self._mfa.begin_enrolment(user.id, user.username)

    def complete_mfa_enrolment(
        self, token: str | None, code: str, client: ClientInfo
    ) -> SignInOutcome:
        """Confirm the seed from `begin_mfa_enrolment` with a first code: the session under a new
        token, with the recovery codes to show once."""
        pending = self._pending(token, client)
        if not isinstance(pending, tuple):
            return pending
        session, user = pending
        delay = self._throttle.check_mfa(user.id)
        if delay is not None:
            return RetryAfter(delay.seconds, delay.scope, user.username, client, user.id)
        if self._mfa.status(user.id).enrolled:
            return Failure(FailureReason.MFA_ALREADY_ENROLLED, user.username, client, user.id)
        codes = self._mfa.confirm_enrolment(user.id, code)
        if codes is None:
            self._throttle.record_mfa_failure(user.id)
            return Failure(FailureReason.MFA_BAD_CODE, user.username, client, user.id)
        return self._complete(session, user, client, recovery_codes=codes)

    def authenticate(self, token: str | None) -> Authenticated | MfaRequired | None:
        """What a request's session token stands for: None (no valid session: 401),
        `MfaRequired` (only the MFA step may proceed) or `Authenticated`."""
        session = self._sessions.validate(token)
        if session is None:
            return None
        if session.fully_authenticated:
            return Authenticated(session)
        return MfaRequired(session, not self._mfa.status(session.user_id).enrolled)

    def _find(self, name: str) -> tuple[User | None, str]:
        if not name or len(name) > USERNAME_LENGTH:
            return None, ""
        with self._db() as db:
            found = db.execute(
                select(UserRow, RoleRow.name)
                .join(RoleRow, RoleRow.id == UserRow.role_id)
                .where(UserRow.username == name)
            ).one_or_none()
            if found is None:
                return None, ""
            return user_from_row(found[0]), found[1]

    def _password_problem(self, user: User | None, password: str) -> FailureReason | None:
        """Verify with the same work whatever the account; the reason it fails, if it does."""
        normalized = normalize_password(password)
        if len(normalized) > PASSWORD_MAX_LENGTH or not _encodable(normalized):
            self._hasher.verify(self._dummy_hash, "")
            return FailureReason.MALFORMED_INPUT
        stored = None if user is None else user.password_hash
        matches = self._hasher.verify(stored or self._dummy_hash, password) and stored is not None
        if user is None:
            return FailureReason.UNKNOWN_USER
        if stored is None:
            return FailureReason.NO_WEB_PASSWORD
        if not user.enabled:
            return FailureReason.ACCOUNT_DISABLED
        return None if matches else FailureReason.BAD_PASSWORD

    def _rehash_if_needed(self, user: User, password: str) -> None:
        if user.password_hash is None or not self._hasher.needs_rehash(user.password_hash):
            return
        with self._db() as db:
            row = db.get(UserRow, user.id)
            if row is not None and row.password_hash == user.password_hash:
                row.password_hash = self._hasher.hash(password)
                db.commit()
                logger.info("rehashed the password of user %s with current parameters", user.id)

    def _pending(self, token: str | None, client: ClientInfo) -> tuple[WebSession, User] | Failure:
        session = self._sessions.validate(token)
        if session is None:
            return Failure(FailureReason.SESSION_INVALID, "", client)
        with self._db() as db:
            row = db.get(UserRow, session.user_id)
            user = None if row is None else user_from_row(row)
        if user is None:
            return Failure(FailureReason.SESSION_INVALID, "", client)
        if session.fully_authenticated:
            return Failure(FailureReason.MFA_NOT_PENDING, user.username, client, user.id)
        return session, user

    def _complete(
        self,
        session: WebSession,
        user: User,
        client: ClientInfo,
        *,
        used_recovery_code: bool = False,
        recovery_codes: RecoveryCodes | None = None,
    ) -> Success:
        self._throttle.record_mfa_success(user.id)
        elevated = self._sessions.elevate(session.id)
        novelty: DeviceNovelty = self._devices.remember(
            user.id, client.address_key, client.user_agent
        )
        logger.info("user %s completed MFA from %s", user.id, client.address_key)
        return Success(
            elevated,
            user.id,
            user.username,
            client,
            new_device=novelty.new_device,
            new_address=novelty.new_address,
            used_recovery_code=used_recovery_code,
            recovery_codes=recovery_codes,
        )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
