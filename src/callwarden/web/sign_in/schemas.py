"""Request and response models of signing in, the MFA step, MFA set-up and one's sessions.

No response ever carries a session token (it travels only in the `Set-Cookie` header) or a
password; the TOTP seed and recovery codes are shown once, in the response that makes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from callwarden.security.mfa import MfaStatus
from callwarden.security.sessions import WebSession
from callwarden.web.schemas import RequestModel, ResponseModel

MAX_PASSWORD_INPUT = 4096

PasswordInput = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_INPUT)]
CodeInput = Annotated[str, Field(min_length=1, max_length=64)]


class Credentials(RequestModel):
    username: Annotated[str, Field(min_length=1, max_length=255)]
    password: PasswordInput


class MfaCode(RequestModel):
    """A 6-digit TOTP code, or one of the recovery codes."""

    code: CodeInput


class ReAuthentication(RequestModel):
    """The password again, before a change to the second factor (ASVS V7.5.1)."""

    password: PasswordInput


class EnrolmentRequest(RequestModel):
    """`password` is needed when the session is already fully signed in (adding MFA to an
    account that has none); a session waiting for its MFA set-up has just given it."""

    password: PasswordInput | None = None


class SessionState(ResponseModel):
    """Where the caller's session stands; `csrf_token` goes into `X-CSRF-Token` of every
    state-changing request."""

    session_id: int
    user_id: int
    username: str
    mfa_complete: bool
    mfa_enrolment_needed: bool
    csrf_token: str
    expires_at: datetime
    idle_expires_at: datetime
    new_device: bool = False
    new_address: bool = False

    @classmethod
    def of(
        cls,
        session: WebSession,
        username: str,
        *,
        enrolment_needed: bool = False,
        new_device: bool = False,
        new_address: bool = False,
    ) -> SessionState:
        return cls(
            session_id=session.id,
            user_id=session.user_id,
            username=username,
            mfa_complete=session.fully_authenticated,
            mfa_enrolment_needed=enrolment_needed and not session.fully_authenticated,
            csrf_token=session.csrf_token,
            expires_at=session.expires_at,
            idle_expires_at=session.idle_expires_at,
            new_device=new_device,
            new_address=new_address,
        )


class SessionView(ResponseModel):
    """One of the caller's sessions, as the "your sessions" page lists it."""

    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    client_address: str
    user_agent: str
    mfa_complete: bool
    current: bool

    @classmethod
    def of(cls, session: WebSession, current_id: int) -> SessionView:
        return cls(
            id=session.id,
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            expires_at=session.expires_at,
            client_address=session.client_address,
            user_agent=session.user_agent,
            mfa_complete=session.fully_authenticated,
            current=session.id == current_id,
        )


class EnrolmentView(ResponseModel):
    """The new TOTP seed, as text and as an `otpauth://` URI for a QR code; shown once."""

    secret: str
    provisioning_uri: str


class RecoveryCodesView(ResponseModel):
    codes: list[str]


class EnrolmentDone(ResponseModel):
    """MFA is set up: the recovery codes (shown once) and, when the set-up completed a
    waiting session, that session's new state (it has a new id and CSRF token)."""

    recovery_codes: list[str]
    session: SessionState | None


class MfaStatusView(ResponseModel):
    enrolled: bool
    enrolled_at: datetime | None
    recovery_codes_left: int

    @classmethod
    def of(cls, status: MfaStatus) -> MfaStatusView:
        return cls(
            enrolled=status.enrolled,
            enrolled_at=status.enrolled_at,
            recovery_codes_left=status.recovery_codes_left,
        )
