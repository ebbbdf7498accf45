"""The pieces under every route: the error mapping, the error shape for what no route handles,
the 500 that says nothing, the audit log being down, headers, the public routes and how routes
find their objects."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter

from callwarden.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from callwarden.domain.policy import Resource, ResourceKind
from callwarden.security.audit import AuditUnavailable
from callwarden.security.password_policy import PasswordRejected, PasswordRejection
from callwarden.web import targets
from callwarden.web.access import GuardedRoute, public
from callwarden.web.app import create_app
from callwarden.web.errors import (
    STATUS_BY_ERROR,
    PayloadTooLarge,
    TooManyRequests,
    Unauthenticated,
    status_for,
)
from web.support import BASE_URL, PASSWORD, Env


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Unauthenticated("x"), 401),
        (Forbidden("x"), 403),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (InvalidState("x"), 409),
        (PayloadTooLarge("x"), 413),
        (ValidationFailed("x"), 422),
        (PasswordRejected(PasswordRejection.COMMON, "is common"), 422),
        (TooManyRequests("x", retry_after=1.2), 429),
        (AuditUnavailable("x"), 503),
        (DomainError("x"), 400),
    ],
)
def test_each_domain_error_has_one_status(error: DomainError, status: int) -> None:
    assert status_for(error) == status


def test_the_mapped_classes_do_not_overlap() -> None:
    classes = [error_class for error_class, _ in STATUS_BY_ERROR]
    for first in classes:
        for second in classes:
            assert first is second or not issubclass(first, second), (first, second)


async def test_what_no_route_handles_has_the_error_shape(env: Env) -> None:
    async with env.client() as client:
        missing = await client.get("/api/v1/nothing-here")
        wrong_method = await client.put("/healthz")
    assert missing.status_code == 404
    assert missing.json() == {
        "error_id": "route_not_found",
        "message": "no such route",
        "details": {},
    }
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error_id"] == "method_not_allowed"


async def test_an_unexpected_error_is_a_bare_500(env: Env) -> None:
    app = create_app(env.services)
    broken = APIRouter(route_class=GuardedRoute)

    @broken.get("/broken", dependencies=[public("a test route")])
    async def fail() -> None:
        raise RuntimeError("SELECT password_hash FROM users: disk I/O error")

    app.router.routes.extend(broken.routes)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        response = await client.get("/broken")
    assert response.status_code == 500
    assert response.json() == {
        "error_id": "internal_error",
        "message": "internal error",
        "details": {},
    }


async def test_an_act_that_cannot_be_audited_does_not_complete(env: Env) -> None:
    await env.writer.close()
    async with env.client() as client:
        response = await client.post(
            "/api/v1/sessions", json={"username": "operator", "password": PASSWORD}
        )
    assert response.status_code == 503
    assert response.json()["error_id"] == "audit_unavailable"
    assert "set-cookie" not in response.headers


async def test_public_routes_and_security_headers(env: Env) -> None:
    async with env.client() as client:
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")
        document = await client.get("/api/v1/openapi.json")
    assert health.json() == {"status": "ok", "active_calls": 0, "registered_phones": 0}
    assert "callwarden_registered_phones 0.0" in metrics.text
    assert document.json()["info"]["title"] == "callwarden"
    assert "/api/v1/users/{user_id}/role" in document.json()["paths"]
    for response in (health, document):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"


def test_routes_find_their_objects_as_the_policy_sees_them(env: Env) -> None:
    snapshot = env.snapshot
    colleague, stranger = env.user("colleague"), env.user("stranger")
    found = targets.USER.resolve(snapshot, {"user_id": str(colleague.id)})
    assert found.resource == Resource.of(
        ResourceKind.USER, owner=colleague.id, team=colleague.team_id
    )
    assert found.what == f"user {colleague.id}"
    other = targets.USER.resolve(snapshot, {"user_id": str(stranger.id)})
    assert other.resource.team_ids == {stranger.team_id} != found.resource.team_ids
    south = next(team for team in snapshot.teams if team.name == "south")
    assert targets.TEAM.resolve(snapshot, {"team_id": str(south.id)}).resource == Resource.of(
        ResourceKind.TEAM, team=south.id
    )
    quality = snapshot.role_by_name("quality")
    assert quality is not None
    assert targets.ROLE.resolve(snapshot, {"role_id": str(quality.id)}).resource.is_global
    with pytest.raises(NotFound) as missing:
        targets.USER.resolve(snapshot, {"user_id": "424242"})
    assert (missing.value.error_id, missing.value.message) == ("not_found", "user 424242 not found")
    for bad in ("0", "-3", "1e3", "٣", "2147483648"):
        with pytest.raises(ValidationFailed) as invalid:
            targets.TEAM.resolve(snapshot, {"team_id": bad})
        assert invalid.value.details["field"] == "team_id"
