"""The session cookie: `__Host-callwarden_session`, Secure, HttpOnly, SameSite=Strict, Path=/,
no Domain (the `__Host-` prefix makes browsers insist on all of that, RFC 6265bis 4.1.3.2).
It holds the session token and nothing else, and lives as long as the browser session (the
server ends it sooner: idle timeout, absolute lifetime)."""

from __future__ import annotations

from starlette.responses import Response

from callwarden.web.access import SESSION_COOKIE


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, path="/", secure=True, httponly=True, samesite="strict"
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
