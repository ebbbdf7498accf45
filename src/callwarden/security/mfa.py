"""TOTP second factor (RFC 6238, through pyotp) and single-use recovery codes.

TOTP:
- Enrolment: `begin_enrolment` makes a 160-bit random seed (RFC 4226 section 4, R6) and returns
  it with its `otpauth://` provisioning URI (for the QR code); it is not used for sign-in until
  `confirm_enrolment` has seen one valid code from the authenticator app. The seed is stored
  sealed with AES-GCM (`SecretBox`), bound to the user's id.
- Codes are 6 digits, 30 s steps (RFC 6238 section 4, the defaults authenticator apps assume);
  a code of the step before or after the current one is accepted too (section 5.2, clock drift).
- A code is usable once (RFC 6238 section 5.2, ASVS 5.0 V6.5.1): the newest step accepted is kept
  per user and a code is accepted only for a later step, by one conditional UPDATE, so two
  concurrent uses of one code cannot both succeed, and an older code seen over a shoulder is
  refused once a newer one has been used.

Recovery codes: 10 per user, each 16 characters of Crockford's base32 alphabet (80 random bits),
shown once when made, each usable once. They are stored as SHA-256 of the user id and the code,
not with a slow password hash: an 80-bit random code cannot be found by trying candidates
against its hash (2^79 SHA-256 on average, per user, since the user id is part of the input),
so a slow hash would add only cost at each use; it also lets a code be found by its hash with one
indexed, conditional UPDATE (single use even under concurrency).

Who must use MFA is `MfaPolicy`: every role but those named optional (default: operators).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pyotp
from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.orm import Session

from callwarden.domain.errors import InvalidState
from callwarden.domain.ids import UserId
from callwarden.security.clock import Clock
from callwarden.security.secret_box import SecretBox
from callwarden.security.sessions import writing
from callwarden.store.schema import MfaRecoveryCodeRow, MfaTotpRow

logger = logging.getLogger(__name__)

TOTP_DIGITS = 6
TOTP_STEP_SECONDS = 30
TOTP_WINDOW_STEPS = 1
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 16
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower-cased
_RECOVERY_READS_AS = str.maketrans({"i": "1", "l": "1", "o": "0"})
DEFAULT_ISSUER = "callwarden"
SEED_KEY_FILE = "mfa-seeds.key"
"""The file in `<data_dir>/keys/` holding the key that seals TOTP seeds."""

SessionFactory = Callable[[], Session]


class MfaVerification(enum.Enum):
    """The outcome of checking a second-factor code."""

    ACCEPTED_TOTP = "accepted_totp"
    ACCEPTED_RECOVERY_CODE = "accepted_recovery_code"
    REJECTED = "rejected"
    REPLAYED = "replayed"
    """A correct TOTP code whose step (or a later one) was used already: worth an alert."""
    NOT_ENROLLED = "not_enrolled"

    @property
    def accepted(self) -> bool:
        return self in (MfaVerification.ACCEPTED_TOTP, MfaVerification.ACCEPTED_RECOVERY_CODE)


@dataclass(frozen=True)
class MfaPolicy:
    """MFA is required for every role except those in `optional_roles`.

    The default leaves it optional for operators only (supervisors, admins, auditors and any
    custom role must use it); `MfaPolicy(optional_roles=frozenset())` requires it of everyone.
    A user who has enrolled uses it whatever the policy says.
    """

    optional_roles: frozenset[str] = frozenset({"operator"})

    def required_for(self, role_name: str) -> bool:
        return role_name not in self.optional_roles


@dataclass(frozen=True)
class TotpEnrolment:
    """What the enrolment page shows once: the seed as text and as an `otpauth://` URI."""

    secret: str = field(repr=False)
    provisioning_uri: str = field(repr=False)


@dataclass(frozen=True)
class RecoveryCodes:
    """Freshly made recovery codes, formatted `xxxx-xxxx-xxxx-xxxx`; shown once, never again."""

    codes: tuple[str, ...] = field(repr=False)


@dataclass(frozen=True)
class MfaStatus:
    enrolled: bool
    enrolled_at: datetime | None
    recovery_codes_left: int


def time_step(moment: datetime) -> int:
    """The RFC 6238 section 4.2 counter T = floor((unix time - T0) / X), T0 = 0, X = 30."""
    return int(moment.timestamp()) // TOTP_STEP_SECONDS


def _normalize_totp_code(code: str) -> str | None:
    digits = code.replace(" ", "").strip()
    if len(digits) != TOTP_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def _normalize_recovery_code(code: str) -> str | None:
    text = code.strip().lower().replace("-", "").replace(" ", "").translate(_RECOVERY_READS_AS)
    if len(text) != RECOVERY_CODE_LENGTH or any(char not in RECOVERY_ALPHABET for char in text):
        return None
    return text


def _recovery_code_hash(user_id: UserId, normalized: str) -> str:
    return hashlib.sha256(f"callwarden-recovery-code:{user_id}:{normalized}".encode()).hexdigest()


def _new_recovery_code() -> tuple[str, str]:
    """A new code as shown (`xxxx-xxxx-xxxx-xxxx`) and as hashed."""
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return "-".join(raw[index : index + 4] for index in range(0, RECOVERY_CODE_LENGTH, 4)), raw


class MfaService:
    """TOTP enrolment and verification, and recovery codes; each call is one transaction."""

    def __init__(
        self,
        session_factory: SessionFactory,
        secret_box: SecretBox,
        clock: Clock,
        *,
        issuer: str = DEFAULT_ISSUER,
    ) -> None:
        self._db = session_factory
        self._box = secret_box
        self._clock = clock
        self._issuer = issuer

    def status(self, user_id: UserId) -> MfaStatus:
        with self._db() as db:
            confirmed_at = db.scalar(
                select(MfaTotpRow.confirmed_at).where(MfaTotpRow.user_id == user_id)
            )
            left = db.scalar(
                select(func.count())
                .select_from(MfaRecoveryCodeRow)
                .where(MfaRecoveryCodeRow.user_id == user_id, MfaRecoveryCodeRow.used_at.is_(None))
            )
        return MfaStatus(confirmed_at is not None, confirmed_at, left or 0)

    def begin_enrolment(self, user_id: UserId, account_name: str) -> TotpEnrolment:
        """A new seed for `user_id`, replacing an unconfirmed one. A confirmed enrolment must be
        removed with `reset` first (after the caller has re-authenticated the user)."""
        secret = pyotp.random_base32()
        now = self._clock.now()
        with writing(self._db) as db:
            row = db.get(MfaTotpRow, user_id)
            if row is not None and row.confirmed_at is not None:
                raise InvalidState("MFA is already set up", error_id="mfa_already_enrolled")
            if row is None:
                row = MfaTotpRow(user_id=user_id)
                db.add(row)
            row.secret_sealed = self._box.seal(secret.encode("ascii"), self._owner(user_id))
            row.created_at = now
            row.confirmed_at = None
            row.last_used_step = None
            db.commit()
        uri = pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=self._issuer)
        return TotpEnrolment(secret, uri)

    def confirm_enrolment(self, user_id: UserId, code: str) -> RecoveryCodes | None:
        """Switch MFA on if `code` is valid for the pending seed: the new recovery codes, or
        None for a wrong code. The code's step counts as used."""
        digits = _normalize_totp_code(code)
        now = self._clock.now()
        with writing(self._db) as db:
            row = db.get(MfaTotpRow, user_id, with_for_update=True)
            if row is None or row.confirmed_at is not None:
                raise InvalidState("no MFA enrolment is pending", error_id="mfa_not_pending")
            step = None if digits is None else self._matching_step(row, user_id, digits, now)
            if step is None:
                return None
            row.confirmed_at = now
            row.last_used_step = step
            codes = self._replace_recovery_codes(db, user_id, now)
            db.commit()
        logger.info("user %s set up TOTP", user_id)
        return codes

    def verify(self, user_id: UserId, code: str) -> MfaVerification:
        """Check a TOTP code or, if `code` has that shape, a recovery code (which is used up)."""
        if _normalize_totp_code(code) is None and _normalize_recovery_code(code) is not None:
            return self.use_recovery_code(user_id, code)
        return self.verify_totp(user_id, code)

    def verify_totp(self, user_id: UserId, code: str) -> MfaVerification:
        digits = _normalize_totp_code(code)
        now = self._clock.now()
        with self._db() as db:
            row = db.get(MfaTotpRow, user_id)
        if row is None or row.confirmed_at is None:
            return MfaVerification.NOT_ENROLLED
        step = None if digits is None else self._matching_step(row, user_id, digits, now)
        if step is None:
            return MfaVerification.REJECTED
        # A fresh transaction for the write (a read one upgraded could fail on SQLite's WAL).
        with self._db() as db:
            result = db.execute(
                update(MfaTotpRow)
                .where(
                    MfaTotpRow.user_id == user_id,
                    or_(MfaTotpRow.last_used_step.is_(None), MfaTotpRow.last_used_step < step),
                )
                .values(last_used_step=step)
            )
            db.commit()
        if isinstance(result, CursorResult) and result.rowcount == 1:
            return MfaVerification.ACCEPTED_TOTP
        logger.warning("user %s presented a TOTP code that was used already", user_id)
        return MfaVerification.REPLAYED

    def use_recovery_code(self, user_id: UserId, code: str) -> MfaVerification:
        normalized = _normalize_recovery_code(code)
        if normalized is None:
            return MfaVerification.REJECTED
        with self._db() as db:
            enrolled = db.get(MfaTotpRow, user_id) is not None
        if not enrolled:
            return MfaVerification.NOT_ENROLLED
        with self._db() as db:
            result = db.execute(
                update(MfaRecoveryCodeRow)
                .where(
                    MfaRecoveryCodeRow.user_id == user_id,
                    MfaRecoveryCodeRow.code_hash == _recovery_code_hash(user_id, normalized),
                    MfaRecoveryCodeRow.used_at.is_(None),
                )
                .values(used_at=self._clock.now())
            )
            db.commit()
        if isinstance(result, CursorResult) and result.rowcount == 1:
            logger.info("user %s used a recovery code", user_id)
            return MfaVerification.ACCEPTED_RECOVERY_CODE
        return MfaVerification.REJECTED

    def regenerate_recovery_codes(self, user_id: UserId) -> RecoveryCodes:
        """Replace all of the user's recovery codes (after re-authentication, by the caller)."""
        now = self._clock.now()
        with writing(self._db) as db:
            row = db.get(MfaTotpRow, user_id)
            if row is None or row.confirmed_at is None:
                raise InvalidState("MFA is not set up", error_id="mfa_not_enrolled")
            codes = self._replace_recovery_codes(db, user_id, now)
            db.commit()
        return codes

    def reset(self, user_id: UserId) -> bool:
        """Remove the user's TOTP seed and recovery codes; whether there was anything."""
        with writing(self._db) as db:
            removed = db.execute(delete(MfaTotpRow).where(MfaTotpRow.user_id == user_id))
            db.execute(delete(MfaRecoveryCodeRow).where(MfaRecoveryCodeRow.user_id == user_id))
            db.commit()
        return isinstance(removed, CursorResult) and removed.rowcount > 0

    def _matching_step(
        self, row: MfaTotpRow, user_id: UserId, digits: str, now: datetime
    ) -> int | None:
        """The step in [now - 1, now + 1] whose code is `digits` (the current step first)."""
        secret = self._box.open(row.secret_sealed, self._owner(user_id)).decode("ascii")
        totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)
        current = time_step(now)
        window = range(-TOTP_WINDOW_STEPS, TOTP_WINDOW_STEPS + 1)
        for step in sorted((current + offset for offset in window), key=lambda s: abs(s - current)):
            if hmac.compare_digest(totp.generate_otp(step), digits):
                return step
        return None

    def _replace_recovery_codes(self, db: Session, user_id: UserId, now: datetime) -> RecoveryCodes:
        db.execute(delete(MfaRecoveryCodeRow).where(MfaRecoveryCodeRow.user_id == user_id))
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        db.add_all(
            MfaRecoveryCodeRow(
                user_id=user_id, code_hash=_recovery_code_hash(user_id, raw), created_at=now
            )
            for _, raw in codes
        )
        db.flush()
        return RecoveryCodes(tuple(shown for shown, _ in codes))

    @staticmethod
    def _owner(user_id: UserId) -> bytes:
        return f"callwarden-totp:{user_id}".encode()
