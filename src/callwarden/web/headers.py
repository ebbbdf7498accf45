"""Response headers every API answer carries: nothing is cached, nothing is sniffed or framed,
no referrer leaks (ASVS V3.4); over HTTPS, HSTS (RFC 6797) so a browser that has been here once
never comes back over plain HTTP."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)

STRICT_TRANSPORT_SECURITY = ("Strict-Transport-Security", "max-age=31536000")
"""One year; no includeSubDomains: the node does not speak for the rest of its domain. Sent on
HTTPS answers only (RFC 6797 7.2: a plain-HTTP answer must not carry it)."""


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
                if scope.get("scheme") == "https":
                    headers.setdefault(*STRICT_TRANSPORT_SECURITY)
            await send(message)

        await self._app(scope, receive, send_with_headers)
