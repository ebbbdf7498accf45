"""`/api/v1/sessions` and `/api/v1/mfa`: signing in (public), the MFA step and sign-out (any
live session), and the caller's own sessions and second factor (self-service: a fully signed-in
session acting on its own user only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from callwarden.domain.errors import Forbidden
from callwarden.web.access import (
    API_PREFIX,
    Caller,
    GuardedRoute,
    public,
    self_service,
    session_step,
)
from callwarden.web.services import app_part, services_of
from callwarden.web.sign_in.cookies import clear_session_cookie, set_session_cookie
from callwarden.web.sign_in.schemas import (
    Credentials,
    EnrolmentDone,
    EnrolmentRequest,
    EnrolmentView,
    MfaCode,
    MfaStatusView,
    ReAuthentication,
    RecoveryCodesView,
    SessionState,
    SessionView,
)
from callwarden.web.sign_in.service import SignIn

sessions = APIRouter(prefix=f"{API_PREFIX}/sessions", tags=["sessions"], route_class=GuardedRoute)
mfa = APIRouter(prefix=f"{API_PREFIX}/mfa", tags=["mfa"], route_class=GuardedRoute)

AnySession = Annotated[Caller, session_step("the MFA step and sign-out work before MFA is done")]
Own = Annotated[Caller, self_service("acts on the caller's own sessions or second factor only")]
SessionIdPath = Annotated[int, Path(ge=1, le=2**62)]


def _sign_in(request: Request) -> SignIn:
    return app_part(request, SignIn)


Service = Annotated[SignIn, Depends(_sign_in)]


def _same_site_origin(request: Request) -> None:
    """A browser's sign-in form may only post from an allowed origin (login CSRF); clients
    that send no Origin (scripts, the CLI) are not browsers and are let through."""
    origin = request.headers.get("origin")
    allowed = services_of(request).settings.allowed_origins
    if origin is not None and allowed and origin.rstrip("/") not in allowed:
        raise Forbidden("sign-in from this origin is not allowed", error_id="origin_refused")


@sessions.post(
    "",
    summary="Sign in with username and password (sets the session cookie)",
    dependencies=[public("signing in is how a session begins")],
)
async def sign_in(
    request: Request, response: Response, body: Credentials, service: Service
) -> SessionState:
    _same_site_origin(request)
    state, issued = await service.sign_in(request, body)
    set_session_cookie(response, issued.token)
    return state


@sessions.post("/mfa/verify", summary="Complete sign-in with a TOTP or recovery code")
async def verify_mfa(
    request: Request, response: Response, caller: AnySession, body: MfaCode, service: Service
) -> SessionState:
    state, issued = await service.verify_mfa(request, body.code)
    set_session_cookie(response, issued.token)
    return state


@sessions.get("/current", summary="The caller's session: MFA state and CSRF token")
async def current(caller: AnySession, service: Service) -> SessionState:
    return service.current(caller)


@sessions.post(
    "/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out (end this session)"
)
async def sign_out(
    request: Request, response: Response, caller: AnySession, service: Service
) -> None:
    await service.sign_out(request, caller)
    clear_session_cookie(response)


@sessions.get("", summary="The caller's active sessions")
async def list_sessions(caller: Own, service: Service) -> list[SessionView]:
    return await service.list_sessions(caller)


@sessions.delete(
    "/{session_id}", status_code=status.HTTP_204_NO_CONTENT, summary="End one of your sessions"
)
async def end_session(
    response: Response, caller: Own, service: Service, session_id: SessionIdPath
) -> None:
    if await service.end_session(caller, session_id):
        clear_session_cookie(response)


@sessions.post(
    "/logout-everywhere",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End all of your sessions, this one included",
)
async def sign_out_everywhere(response: Response, caller: Own, service: Service) -> None:
    await service.sign_out_everywhere(caller)
    clear_session_cookie(response)


@mfa.get("", summary="Whether your account has MFA, and recovery codes left")
async def mfa_status(caller: Own, service: Service) -> MfaStatusView:
    return await service.mfa_status(caller)


@mfa.post("/enroll", summary="Start setting up TOTP (shows the seed once)")
async def begin_enrolment(
    request: Request, caller: AnySession, body: EnrolmentRequest, service: Service
) -> EnrolmentView:
    return await service.begin_enrolment(request, caller, body)


@mfa.post("/confirm", summary="Finish setting up TOTP with a first code (shows recovery codes)")
async def confirm_enrolment(
    request: Request, response: Response, caller: AnySession, body: MfaCode, service: Service
) -> EnrolmentDone:
    done, issued = await service.confirm_enrolment(request, caller, body.code)
    if issued is not None:
        set_session_cookie(response, issued.token)
    return done


@mfa.post("/recovery-codes", summary="Replace your recovery codes (needs your password)")
async def replace_recovery_codes(
    caller: Own, body: ReAuthentication, service: Service
) -> RecoveryCodesView:
    return await service.replace_recovery_codes(caller, body.password)
