"""The one mapping from errors to HTTP: every error body is `{"error_id", "message", "details"}`.

Domain errors carry a stable `error_id` (see `callwarden.domain.errors`); here each class gets
its status code once:

| error | status |
|---|---|
| `Unauthenticated` (no session, expired, MFA still missing) | 401 |
| `Forbidden` (visible object, action not allowed; CSRF token missing) | 403 |
| `NotFound` (missing, or invisible to the caller: the same words) | 404 |
| `Conflict`, `InvalidState` | 409 |
| `PayloadTooLarge` | 413 |
| `ValidationFailed`, request validation by FastAPI/pydantic | 422 |
| `TooManyRequests` (throttled; `Retry-After` header) | 429 |
| `AuditUnavailable` (an act that cannot be recorded does not happen) | 503 |
| SQLAlchemy `OperationalError` (the database cannot be reached: fail closed) | 503 |

Request validation errors name the field (`details.field`, and every problem in
`details.problems`) but never echo the input, and nothing from the database ever reaches a
body: an unexpected exception is logged and answered with a bare 500 `internal_error`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from callwarden.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidState,
    JsonValue,
    NotFound,
    ValidationFailed,
)
from callwarden.security.audit import AuditUnavailable

logger = logging.getLogger(__name__)


class ApiError(BaseModel):
    """The body of every error response."""

    error_id: str
    message: str
    details: dict[str, Any]


class Unauthenticated(DomainError):  # noqa: N818 (the names are the API)
    """No valid session: none given, expired, revoked, or its MFA step is not done yet."""

    default_error_id = "unauthenticated"


class PayloadTooLarge(DomainError):  # noqa: N818 (the names are the API)
    default_error_id = "payload_too_large"


class TooManyRequests(DomainError):  # noqa: N818 (the names are the API)
    """Throttled; `retry_after` seconds until the next attempt may succeed."""

    default_error_id = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float, error_id: str | None = None) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(message, error_id=error_id, details={"retry_after": seconds})
        self.retry_after = seconds


STATUS_BY_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidState, 409),
    (PayloadTooLarge, 413),
    (ValidationFailed, 422),
    (TooManyRequests, 429),
    (AuditUnavailable, 503),
)
"""Most specific first is not needed: the classes are disjoint (checked by a test)."""


def status_for(error: DomainError) -> int:
    """The HTTP status of a domain error (400 for a domain error of no listed class)."""
    for error_class, status in STATUS_BY_ERROR:
        if isinstance(error, error_class):
            return status
    return 400


def error_response(
    status: int,
    error_id: str,
    message: str,
    details: Mapping[str, JsonValue] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ApiError(error_id=error_id, message=message, details=dict(details or {}))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def domain_error_response(error: DomainError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Cookie realm="callwarden"'
    return error_response(
        status_for(error), error.error_id, error.message, error.details, headers=headers
    )


def _field_name(location: Sequence[int | str]) -> tuple[str, str]:
    """(`where`, `field`) of a pydantic error location: `("body", "grants", 0)` is
    `("body", "grants[0]")`; an error about the whole body is field `body`."""
    if not location:
        return "body", "body"
    where = str(location[0])
    parts = list(location[1:])
    if where == "body" and parts and isinstance(parts[0], int):
        parts = parts[1:]  # a JSON decode error's position, not a field
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return where, name or where


VALUE_PLACEHOLDER = "<value>"


def _without_input(message: str, given: object) -> str:
    """A validator's message with the value it was given taken out (some quote it)."""
    if isinstance(given, str) and given.strip():
        return message.replace(given, VALUE_PLACEHOLDER)
    return message


def validation_problems(errors: Sequence[Any]) -> list[dict[str, JsonValue]]:
    """Each problem as `{"location", "field", "problem"}`; never the input value."""
    problems: list[dict[str, JsonValue]] = []
    for item in errors:
        location = tuple(item.get("loc", ()))
        where, name = _field_name(location)
        message = _without_input(str(item.get("msg", "invalid value")), item.get("input"))
        if item.get("type") == "json_invalid":
            message = "the body is not valid JSON"
        elif item.get("type") == "extra_forbidden":
            message = "this field cannot be set here"
        problems.append({"location": where, "field": name, "problem": message})
    return problems


def body_field_error(field: str, problem: str) -> ValidationFailed:
    """A 422 about one body field that a check past the request model found (an unknown id),
    in the shape of `validation_problems`."""
    return ValidationFailed(
        f"{field}: {problem}",
        details={
            "field": field,
            "problems": [{"location": "body", "field": field, "problem": problem}],
        },
    )


def request_validation_response(errors: Sequence[Any]) -> JSONResponse:
    problems = validation_problems(errors)
    first = problems[0] if problems else {"field": "body", "problem": "invalid request"}
    return error_response(
        422,
        "validation_failed",
        f"{first['field']}: {first['problem']}",
        {"field": first["field"], "problems": list(problems)},
    )


_HTTP_ERROR_IDS = {
    400: "bad_request",
    404: "route_not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on `app` (every error any route can raise goes through here)."""

    async def on_domain_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DomainError)
        if status_for(error) >= 500:
            logger.error("request failed: %r", error)
        return domain_error_response(error)

    async def on_validation_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return request_validation_response(error.errors())

    async def on_http_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        error_id = _HTTP_ERROR_IDS.get(error.status_code, "http_error")
        message = {
            "route_not_found": "no such route",
            "method_not_allowed": "method not allowed on this route",
            "payload_too_large": "the request body is too large",
        }.get(error_id, "the request could not be handled")
        return error_response(
            error.status_code, error_id, message, headers=dict(error.headers or {})
        )

    async def on_database_unavailable(_request: Request, error: Exception) -> JSONResponse:
        """The database is down or unreachable: nothing can be checked, so nothing is allowed
        (a session guard included), and the client may retry (T30, ASVS V16.5.3)."""
        logger.error("database unavailable: %s", type(error).__name__)
        return error_response(
            503,
            "database_unavailable",
            "the service is unavailable; try again shortly",
            headers={"Retry-After": "5"},
        )

    async def on_unexpected(_request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error in a request", exc_info=error)
        return error_response(500, "internal_error", "internal error")

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(OperationalError, on_database_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
