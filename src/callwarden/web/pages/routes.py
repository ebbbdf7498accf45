"""The pages, served under `/` next to the API under `/api/v1`; each declares its access like
an API route (`callwarden.web.access`), so the access matrix walks them too.

| path | access | page |
|---|---|---|
| `/` | self-service | sends the browser to the first page the user may use |
| `/sign-in` | public | password, MFA prompt, MFA set-up with its QR code, recovery codes |
| `POST /sign-in/qr` | session step | the QR code (SVG) of an `otpauth://` URI, drawn here |
| `/account/sessions` | self-service | your sessions and sign-ins; sign out everywhere |
| `/desk` | `agent_state.change_own` on one's own agent | the operator desktop |
| `/wallboard` | `live.view` (any scope) | the supervisor console |
| `/recordings` | `recordings.play` (any scope) | search, play, annotate recordings |
| `/audit` | `audit.view` | the audit trail, its chain's verification, its export |
| `/static/{asset_path}` | public | the ES modules and style sheet |

Pages only read; every change goes through the API from the ES modules, with the CSRF token
the page carries (`<meta name="csrf-token">`).
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path as FilePath
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.responses import FileResponse, RedirectResponse, Response

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind, not_found
from callwarden.security.login import MfaRequired
from callwarden.web.access import (
    SESSION_COOKIE,
    Caller,
    public,
    require,
    self_service,
    session_step,
)
from callwarden.web.dispositions.store import DispositionStore
from callwarden.web.pages.consoles import desk_context, wallboard_context
from callwarden.web.pages.figures import QueueFigures
from callwarden.web.pages.i18n import format_datetime
from callwarden.web.pages.records import audit_context, recordings_context
from callwarden.web.pages.render import PageRenderer, allows, page_headers
from callwarden.web.pages.routing import PageRoute, safe_next
from callwarden.web.schemas import RequestModel
from callwarden.web.services import app_part, services_of
from callwarden.web.sign_in.service import SignIn

STATIC_DIR = FilePath(__file__).resolve().parent.parent / "static"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

router = APIRouter(route_class=PageRoute, include_in_schema=False)

Own = Annotated[Caller, self_service("the caller's own pages")]
AnySession = Annotated[Caller, session_step("MFA set-up happens before MFA is done")]
Desk = Annotated[Caller, require(Permission.AGENT_STATE_OWN, kind=ResourceKind.AGENT, own=True)]
Wallboard = Annotated[Caller, require(Permission.LIVE_VIEW, kind=ResourceKind.AGENT, own=True)]
Recordings = Annotated[
    Caller, require(Permission.RECORDINGS_PLAY, kind=ResourceKind.RECORDING, own=True)
]
Audit = Annotated[Caller, require(Permission.AUDIT_VIEW, kind=ResourceKind.AUDIT_LOG)]


async def _renderer(request: Request) -> PageRenderer:
    return app_part(request, PageRenderer)


async def _figures(request: Request) -> QueueFigures:
    figures = app_part(request, QueueFigures)
    await figures.ensure_started()
    return figures


Renderer = Annotated[PageRenderer, Depends(_renderer)]
Figures = Annotated[QueueFigures, Depends(_figures)]

HOME_ORDER = ("/wallboard", "/desk", "/recordings", "/audit", "/account/sessions")


@router.get("/")
async def home(caller: Own, renderer: Renderer, figures: Figures) -> Response:
    by_path = {item.path: item for item in renderer.navigation}
    target = next(
        path for path in HOME_ORDER if path not in by_path or allows(by_path[path].access, caller)
    )
    return RedirectResponse(target, status_code=303)


@router.get("/sign-in", dependencies=[public("the sign-in page itself")])
async def sign_in_page(request: Request, renderer: Renderer, figures: Figures) -> Response:
    """The password step, or the MFA step of a session waiting for it; a fully signed-in
    browser goes to its start page."""
    services = services_of(request)
    found = await asyncio.to_thread(
        services.login.authenticate, request.cookies.get(SESSION_COOKIE)
    )
    if found is not None and not isinstance(found, MfaRequired):
        return RedirectResponse("/", status_code=303)
    step = "password"
    if isinstance(found, MfaRequired):
        step = "enrol" if found.enrolment_needed else "mfa"
    return renderer.render(
        request,
        "sign_in.html",
        None,
        title_key="sign_in.title",
        context={"step": step, "next_path": safe_next(request.query_params.get("next"))},
    )


class QrRequest(RequestModel):
    uri: Annotated[str, Field(min_length=10, max_length=1024, pattern=r"^otpauth://totp/")]


@router.post("/sign-in/qr")
async def qr_code(caller: AnySession, body: QrRequest, request: Request) -> Response:
    """The QR code of a TOTP set-up URI, as SVG drawn on the server (nothing leaves the node)."""
    renderer = app_part(request, PageRenderer)
    title = renderer.catalog(request).text("mfa.qr_title")
    buffer = io.BytesIO()
    segno.make(body.uri, error="m").save(
        buffer, kind="svg", scale=5, border=4, xmldecl=False, nl=False, title=title
    )
    return Response(
        buffer.getvalue(),
        media_type="image/svg+xml",
        headers=page_headers(services_of(request).settings.allowed_origins),
    )


@router.get("/account/sessions")
async def sessions_page(caller: Own, request: Request, renderer: Renderer) -> Response:
    language = renderer.catalog(request).language
    sessions = await app_part(request, SignIn).list_sessions(caller)
    rows = [
        {
            "id": session.id,
            "created": format_datetime(session.created_at, language, renderer.time_zone),
            "last_seen": format_datetime(session.last_seen_at, language, renderer.time_zone),
            "address": session.client_address,
            "user_agent": session.user_agent,
            "current": session.current,
        }
        for session in sessions
    ]
    return renderer.render(
        request, "sessions.html", caller, title_key="sessions.title", context={"sessions": rows}
    )


@router.get("/desk")
async def desk_page(caller: Desk, request: Request, renderer: Renderer) -> Response:
    services = services_of(request)
    codes = await asyncio.to_thread(DispositionStore(services.database).codes)
    context = desk_context(services, request, caller, codes)
    return renderer.render(request, "desk.html", caller, title_key="desk.title", context=context)


@router.get("/wallboard")
async def wallboard_page(
    caller: Wallboard, request: Request, renderer: Renderer, figures: Figures
) -> Response:
    context = wallboard_context(services_of(request), request, caller, figures.figures())
    return renderer.render(
        request, "wallboard.html", caller, title_key="wallboard.title", context=context
    )


@router.get("/recordings")
async def recordings_page(caller: Recordings, request: Request, renderer: Renderer) -> Response:
    context = recordings_context(services_of(request), caller)
    return renderer.render(
        request, "recordings.html", caller, title_key="recordings.title", context=context
    )


@router.get("/audit")
async def audit_page(caller: Audit, request: Request, renderer: Renderer) -> Response:
    context = audit_context(services_of(request), caller)
    return renderer.render(request, "audit.html", caller, title_key="audit.title", context=context)


@router.get("/static/{asset_path:path}", dependencies=[public("scripts and styles of the pages")])
async def static_asset(asset_path: str) -> Response:
    """A file of `callwarden/web/static` of a known type; nothing outside it, ever."""
    try:
        candidate = (STATIC_DIR / asset_path).resolve()
        found = (
            candidate.is_relative_to(STATIC_DIR)
            and candidate.suffix in STATIC_TYPES
            and candidate.is_file()
        )
    except (ValueError, OSError):  # a NUL byte, a name too long
        found = False
    if not found:
        raise not_found("asset")
    return FileResponse(
        candidate,
        media_type=STATIC_TYPES[candidate.suffix],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
