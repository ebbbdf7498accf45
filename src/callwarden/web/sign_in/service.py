"""Use cases of signing in and out, the MFA step, MFA set-up and one's own sessions.

The decisions are `callwarden.security.login`'s (throttling, password, network policy, MFA,
session rotation); this module turns their outcomes into HTTP answers and audit entries:

- every sign-in attempt is audited (success, failure with its reason, throttled); the client
  gets one answer for every failure (no user enumeration);
- a sign-in from a new device or address is audited as `auth.login.new_device`, reported in
  the response and published on the bus (`NewSignInLocation`: the live stream shows it to the
  user and their supervisors);
- changes to the second factor need the password again when the session is already fully
  signed in (ASVS V7.5.1), and end the user's other sessions;
- a wrong or replayed MFA code gets the same answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from starlette.requests import HTTPConnection

from callwarden.domain.errors import Forbidden, InvalidState, JsonValue
from callwarden.domain.ids import UserId
from callwarden.security.account_events import NewSignInLocation
from callwarden.security.audit import AuditAction, AuditActor, AuditEvent, AuditOutcome
from callwarden.security.login import (
    PUBLIC_FAILURE_MESSAGE,
    ClientInfo,
    Failure,
    FailureReason,
    RetryAfter,
    SignInOutcome,
    Success,
)
from callwarden.security.mfa import TotpEnrolment
from callwarden.security.sessions import IssuedSession, SessionEndReason, SessionId
from callwarden.web.access import SESSION_COOKIE, Caller, source_address
from callwarden.web.errors import TooManyRequests, Unauthenticated
from callwarden.web.services import WebServices
from callwarden.web.sign_in.schemas import (
    Credentials,
    EnrolmentDone,
    EnrolmentRequest,
    EnrolmentView,
    MfaStatusView,
    RecoveryCodesView,
    SessionState,
    SessionView,
)

logger = logging.getLogger(__name__)

NEW_DEVICE_ACTION = "auth.login.new_device"
RECOVERY_CODES_ACTION = "auth.mfa.recovery_codes_replaced"
REAUTH_FAILED_ACTION = "auth.reauthentication.failed"
CODE_REJECTED = "the code is not valid"


UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104 (a client of unknown address, not a bind address)


def client_of(connection: HTTPConnection) -> ClientInfo:
    return ClientInfo.parse(
        source_address(connection) or UNKNOWN_ADDRESS,
        connection.headers.get("user-agent"),
    )


class SignIn:
    def __init__(self, services: WebServices) -> None:
        self._services = services

    # signing in

    async def sign_in(
        self, connection: HTTPConnection, body: Credentials
    ) -> tuple[SessionState, IssuedSession]:
        client = client_of(connection)
        outcome = await asyncio.to_thread(
            self._services.login.sign_in, body.username, body.password, client
        )
        success = await self._settle(outcome, step="password")
        state = SessionState.of(
            success.session.session,
            success.username,
            enrolment_needed=success.mfa_enrolment_needed,
            new_device=success.new_device,
            new_address=success.new_address,
        )
        return state, success.session

    async def verify_mfa(
        self, connection: HTTPConnection, code: str
    ) -> tuple[SessionState, IssuedSession]:
        outcome = await asyncio.to_thread(
            self._services.login.verify_mfa,
            connection.cookies.get(SESSION_COOKIE),
            code,
            client_of(connection),
        )
        success = await self._settle(outcome, step="mfa")
        state = SessionState.of(
            success.session.session,
            success.username,
            new_device=success.new_device,
            new_address=success.new_address,
        )
        return state, success.session

    async def _settle(self, outcome: SignInOutcome, *, step: str) -> Success:
        """Audit an outcome; return a success, raise the HTTP answer for the rest."""
        audit = self._services.audit
        address = str(outcome.client.address)
        if isinstance(outcome, Success):
            actor = AuditActor.user(outcome.user_id, outcome.username)
            details: dict[str, JsonValue] = {
                "step": step,
                "session": int(outcome.session.session.id),
                "mfa_pending": outcome.needs_mfa,
                "recovery_code_used": outcome.used_recovery_code,
            }
            await audit.record(self._event(AuditAction.LOGIN_SUCCEEDED, actor, address, details))
            if outcome.used_recovery_code:
                await audit.record(self._event(AuditAction.MFA_RECOVERY_USED, actor, address, {}))
            if (outcome.new_device or outcome.new_address) and not outcome.needs_mfa:
                novelty: dict[str, JsonValue] = {
                    "new_device": outcome.new_device,
                    "new_address": outcome.new_address,
                    "user_agent": outcome.client.user_agent,
                }
                await audit.record(self._event(NEW_DEVICE_ACTION, actor, address, novelty))
                self._publish_new_location(outcome)
            return outcome
        actor = (
            AuditActor.anonymous()
            if outcome.user_id is None
            else AuditActor.user(outcome.user_id, outcome.username)
        )
        if isinstance(outcome, RetryAfter):
            details = {
                "step": step,
                "throttled": outcome.scope.value,
                "retry_after": outcome.seconds,
            }
            await audit.record_quietly(
                self._event(
                    AuditAction.LOGIN_FAILED,
                    actor,
                    address,
                    details,
                    outcome=AuditOutcome.DENIED,
                    attempted=outcome.username,
                )
            )
            raise TooManyRequests(
                "too many failed attempts; try again later",
                retry_after=outcome.seconds,
                error_id="sign_in_throttled",
            )
        details = {"step": step, "reason": outcome.reason.value}
        await audit.record_quietly(
            self._event(
                AuditAction.LOGIN_FAILED,
                actor,
                address,
                details,
                outcome=AuditOutcome.FAILED,
                attempted=outcome.username,
            )
        )
        raise self._failure_error(outcome, step)

    def _publish_new_location(self, success: Success) -> None:
        """Show the new sign-in location live to the user and their supervisors."""
        services = self._services
        user = services.directory.snapshot.user(success.user_id)
        services.bus.publish(
            NewSignInLocation(
                at=services.clock.now(),
                user_id=success.user_id,
                team_id=None if user is None else user.team_id,
                username=success.username,
                address=str(success.client.address),
                user_agent=success.client.user_agent,
                new_address=success.new_address,
                new_device=success.new_device,
            )
        )

    @staticmethod
    def _failure_error(failure: Failure, step: str) -> Exception:
        reason = failure.reason
        if reason in (FailureReason.MFA_NOT_PENDING, FailureReason.MFA_ALREADY_ENROLLED):
            return InvalidState(
                "this session has no MFA step waiting"
                if reason is FailureReason.MFA_NOT_PENDING
                else "MFA is already set up for this account",
                error_id=reason.value,
            )
        if reason is FailureReason.SESSION_INVALID:
            return Unauthenticated("sign in first")
        if step == "password":
            return Unauthenticated(PUBLIC_FAILURE_MESSAGE, error_id="sign_in_failed")
        return Unauthenticated(CODE_REJECTED, error_id="mfa_code_rejected")

    @staticmethod
    def _event(
        action: str,
        actor: AuditActor,
        address: str | None,
        details: Mapping[str, JsonValue],
        *,
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
        attempted: str | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            action=action,
            actor=actor,
            outcome=outcome,
            object_kind=None if actor.user_id is None and attempted is None else "user",
            object_id=actor.user_id if actor.user_id is not None else attempted,
            source_address=address,
            details=details,
        )

    # the current session

    def current(self, caller: Caller) -> SessionState:
        return SessionState.of(caller.session, caller.user.username)

    async def sign_out(self, connection: HTTPConnection, caller: Caller) -> None:
        services = self._services
        await asyncio.to_thread(
            services.sessions.revoke_token,
            connection.cookies.get(SESSION_COOKIE),
            SessionEndReason.LOGOUT,
        )
        await services.audit.record(
            self._caller_event(caller, AuditAction.LOGOUT, {"session": int(caller.session.id)})
        )

    async def list_sessions(self, caller: Caller) -> list[SessionView]:
        sessions = await asyncio.to_thread(self._services.sessions.list_for_user, caller.user.id)
        return [SessionView.of(session, caller.session.id) for session in sessions]

    async def end_session(self, caller: Caller, session_id: int) -> bool:
        """End one of the caller's sessions; whether it was the current one."""
        await asyncio.to_thread(
            self._services.sessions.revoke_own,
            caller.user.id,
            SessionId(session_id),
            SessionEndReason.LOGOUT,
        )
        await self._services.audit.record(
            self._caller_event(
                caller, AuditAction.SESSION_ENDED, {"session": session_id, "reason": "logout"}
            )
        )
        return session_id == caller.session.id

    async def sign_out_everywhere(self, caller: Caller) -> int:
        ended = await asyncio.to_thread(
            self._services.sessions.revoke_all, caller.user.id, SessionEndReason.LOGOUT_ALL
        )
        details: dict[str, JsonValue] = {
            "reason": SessionEndReason.LOGOUT_ALL.value,
            "sessions": [int(session_id) for session_id in ended],
        }
        await self._services.audit.record(
            self._caller_event(caller, AuditAction.SESSION_ENDED, details)
        )
        return len(ended)

    # MFA set-up

    async def mfa_status(self, caller: Caller) -> MfaStatusView:
        status = await asyncio.to_thread(self._services.mfa.status, caller.user.id)
        return MfaStatusView.of(status)

    async def begin_enrolment(
        self, connection: HTTPConnection, caller: Caller, body: EnrolmentRequest
    ) -> EnrolmentView:
        services = self._services
        if not caller.session.fully_authenticated:
            result: TotpEnrolment | Failure = await asyncio.to_thread(
                services.login.begin_mfa_enrolment,
                connection.cookies.get(SESSION_COOKIE),
                client_of(connection),
            )
            if isinstance(result, Failure):
                raise self._failure_error(result, "mfa")
            enrolment = result
        else:
            await self._reauthenticate(caller, body.password)
            enrolment = await asyncio.to_thread(
                services.mfa.begin_enrolment, caller.user.id, caller.user.username
            )
        return EnrolmentView(secret=enrolment.secret, provisioning_uri=enrolment.provisioning_uri)

    async def confirm_enrolment(
        self, connection: HTTPConnection, caller: Caller, code: str
    ) -> tuple[EnrolmentDone, IssuedSession | None]:
        services = self._services
        if not caller.session.fully_authenticated:
            outcome = await asyncio.to_thread(
                services.login.complete_mfa_enrolment,
                connection.cookies.get(SESSION_COOKIE),
                code,
                client_of(connection),
            )
            success = await self._settle(outcome, step="mfa")
            await services.audit.record(self._caller_event(caller, AuditAction.MFA_ENROLLED, {}))
            codes = [] if success.recovery_codes is None else list(success.recovery_codes.codes)
            state = SessionState.of(success.session.session, success.username)
            return EnrolmentDone(recovery_codes=codes, session=state), success.session
        user_id = caller.user.id
        await self._check_mfa_throttle(user_id)
        recovery = await asyncio.to_thread(services.mfa.confirm_enrolment, user_id, code)
        if recovery is None:
            await asyncio.to_thread(services.throttle.record_mfa_failure, user_id)
            raise Unauthenticated(CODE_REJECTED, error_id="mfa_code_rejected")
        await asyncio.to_thread(services.throttle.record_mfa_success, user_id)
        ended = await asyncio.to_thread(
            services.sessions.revoke_all,
            user_id,
            SessionEndReason.MFA_CHANGED,
            keep=caller.session.id,
        )
        details: dict[str, JsonValue] = {"other_sessions_ended": len(ended)}
        await services.audit.record(self._caller_event(caller, AuditAction.MFA_ENROLLED, details))
        return EnrolmentDone(recovery_codes=list(recovery.codes), session=None), None

    async def replace_recovery_codes(self, caller: Caller, password: str) -> RecoveryCodesView:
        await self._reauthenticate(caller, password)
        codes = await asyncio.to_thread(
            self._services.mfa.regenerate_recovery_codes, caller.user.id
        )
        await self._services.audit.record(self._caller_event(caller, RECOVERY_CODES_ACTION, {}))
        return RecoveryCodesView(codes=list(codes.codes))

    async def _check_mfa_throttle(self, user_id: UserId) -> None:
        delay = await asyncio.to_thread(self._services.throttle.check_mfa, user_id)
        if delay is not None:
            raise TooManyRequests(
                "too many failed attempts; try again later",
                retry_after=delay.seconds,
                error_id="mfa_throttled",
            )

    async def _reauthenticate(self, caller: Caller, password: str | None) -> None:
        """The caller's password again (throttled like MFA codes), or 403."""
        services = self._services
        await self._check_mfa_throttle(caller.user.id)
        stored = caller.user.password_hash
        matches = (
            password is not None
            and stored is not None
            and await asyncio.to_thread(services.password_hasher.verify, stored, password)
        )
        if not matches:
            await asyncio.to_thread(services.throttle.record_mfa_failure, caller.user.id)
            await services.audit.record_quietly(
                self._caller_event(caller, REAUTH_FAILED_ACTION, {}, outcome=AuditOutcome.FAILED)
            )
            raise Forbidden(
                "give your password again to change your second factor",
                error_id="reauthentication_failed",
                details={"field": "password"},
            )

    @staticmethod
    def _caller_event(
        caller: Caller,
        action: str,
        details: Mapping[str, JsonValue],
        *,
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
    ) -> AuditEvent:
        return AuditEvent(
            action=action,
            actor=caller.actor,
            outcome=outcome,
            object_kind="user",
            object_id=caller.user.id,
            source_address=caller.source_address,
            details=details,
        )
