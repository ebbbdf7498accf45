"""`PageRoute`: a page is a `GuardedRoute` (the same access declarations, the same guard, the
same access-matrix walk as the API) whose refusals are pages, not JSON.

A refusal keeps its status and names its `error_id` in the `X-Callwarden-Error` header (what the
access matrix reads). `Unauthenticated` (no session, or its MFA step not done) answers 401 with
the sign-in page itself (a browser asking for HTML is redirected to `/sign-in?next=...`), which
brings the browser back to the page asked for once signed in;
other refusals (403, 404, ...) answer with an error page in the caller's language.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from callwarden.domain.errors import DomainError
from callwarden.web.access import GuardedRoute
from callwarden.web.errors import Unauthenticated, status_for
from callwarden.web.pages.render import PageRenderer
from callwarden.web.services import app_part

ERROR_HEADER = "X-Callwarden-Error"


def error_page(request: Request, error: DomainError) -> Response:
    renderer = app_part(request, PageRenderer)
    status = status_for(error)
    headers = {ERROR_HEADER: error.error_id}
    if isinstance(error, Unauthenticated) and _browser_navigation(request):
        target = f"/sign-in?{urlencode({'next': request.url.path})}"
        return RedirectResponse(target, status_code=303, headers=headers)
    if isinstance(error, Unauthenticated):
        step = "password"
        if error.error_id == "mfa_required":
            step = "enrol" if error.details.get("enrolment_needed") else "mfa"
        return renderer.render(
            request,
            "sign_in.html",
            None,
            title_key="sign_in.title",
            status_code=status,
            context={"step": step, "next_path": request.url.path},
            headers=headers,
        )
    key = {403: "error.forbidden", 404: "error.not_found"}.get(status, "error.other")
    return renderer.render(
        request,
        "error.html",
        None,
        title_key="error.title",
        status_code=status,
        context={"message_key": key, "status": status},
        headers=headers,
    )


def _browser_navigation(request: Request) -> bool:
    """A browser loading a page (it asks for HTML): sent to the sign-in page by a redirect,
    where other clients get the 401 itself."""
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path of this site only (never `//host` or a URL)."""
    if path is None or not path.startswith("/") or path.startswith(("//", "/\\")):
        return "/"
    if any(character in path for character in "\\\r\n\t") or len(path) > 512:
        return "/"
    return path


class PageRoute(GuardedRoute):
    """A page: its access declaration runs first; a refusal is rendered as a page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as error:
                return error_page(request, error)

        return page
