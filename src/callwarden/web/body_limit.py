"""A cap on request bodies, answered with the API's own 413 error before anything is parsed.

A declared `Content-Length` above the cap is refused without reading a byte; a body streamed
without one (chunked) is counted as it arrives and refused once it passes the cap. The route
never sees a partial body.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callwarden.web.errors import error_response

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` to stop the application reading on. An HTTP exception, so that
    a route reading the body lets it through to the error handlers (which answer 413)."""

    def __init__(self) -> None:
        super().__init__(413)


class BodyLimitMiddleware:
    """Pure ASGI middleware: HTTP bodies of at most `max_body_bytes`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must not be negative")
        self._app = app
        self._max = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._max:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        logger.info("request body over %d bytes refused: %s", self._max, scope.get("path"))
        response = error_response(
            413,
            "payload_too_large",
            f"the request body is larger than {self._max} bytes",
            {"max_bytes": self._max},
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
