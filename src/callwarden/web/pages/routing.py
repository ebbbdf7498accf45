"""`PageRoute`: a page is a `GuardedRoute` (the same access declarations, the same guard, the
same access-matrix walk as the API) whose refusals are pages, not JSON.

A refusal keeps its status and names its `error_id` in the `X-Callwarden-Error` header (what the
access matrix reads). `Unauthenticated` (no session, or its MFA step not done) answers 401 with
the sign-in page itself, which brings the browser back to the page asked for once signed in;
other refusals (403, 404, ...) answer with an error page in the caller's language.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

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
    if isinstance(error, Unauthenticated):
        return renderer.render(
            request,
            "sign_in.html",
            None,
            title_key="sign_in.title",
            status_code=status,
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
