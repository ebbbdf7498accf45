"""The access matrix: every route of the running application, for every built-in role fully
signed in, a session still waiting for MFA, and no session, with the route's object in the
caller's own team and in another team, answers exactly what `authorize()` says (see
`web/matrix.py`). Runs on SQLite, and once on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from fastapi import APIRouter

from callwarden.security.password_policy import PasswordPolicy
from callwarden.store.database import Database
from callwarden.store.migrations import upgrade
from callwarden.store.testing import temporary_postgres_schema
from callwarden.web.access import GuardedRoute, require
from callwarden.web.app import create_app
from callwarden.web.errors import install_error_handlers
from web import matrix
from web.matrix import Case, Expected
from web.support import (
    Env,
    FakeClock,
    WebSocketSession,
    build_env,
    provision_organisation,
    websocket_headers,
)


async def _websocket_outcome(env: Env, case: Case, want: Expected) -> str | None:
    session = matrix.session_for(env, case.caller)
    connection = WebSocketSession(env.app, case.path_template, websocket_headers(session))
    accepted = await connection.connect()
    if accepted:
        await connection.disconnect()
    if want.status in (None, 200):
        return None if accepted else f"{case}: refused ({connection.close_reason})"
    if accepted:
        return f"{case}: accepted, expected {want}"
    if connection.close_reason != want.error_id:
        return f"{case}: refused with {connection.close_reason}, expected {want}"
    return None


async def run_matrix(env: Env) -> tuple[list[str], Counter[str]]:
    """Every case; the failures, and how many cases expected what."""
    failures = [f"no access declaration: {route}" for route in matrix.undeclared_routes(env.app)]
    seen: Counter[str] = Counter()
    for case in matrix.cases(env.app):
        parameter = matrix._path_parameter(case.route)
        session = matrix.session_for(env, case.caller)
        value = None
        if parameter is not None:
            own = None if session is None else int(session.session.id)
            value = matrix.path_value(env, parameter, case.placement, own or 1)
        path_params = {} if parameter is None else {parameter: str(value)}
        want = matrix.expected(env, case, path_params)
        seen[str(want)] += 1
        if matrix.is_websocket(case.route):
            problem = await _websocket_outcome(env, case, want)
            if problem is not None:
                failures.append(problem)
            continue
        key = (case.method, case.path_template)
        if matrix.needs_body(case.route) and key not in matrix.EXAMPLE_BODIES:
            failures.append(f"{case}: no example body in web/matrix.py EXAMPLE_BODIES")
            continue
        path = matrix.fill(case.path_template, parameter, value)
        status, error_id = await matrix.send(env, case, session, path)
        if not want.met_by(status, error_id):
            failures.append(f"{case}: expected {want}, got {status} {error_id}")
    return failures, seen


def _assert_matrix(failures: list[str], seen: Counter[str]) -> None:
    assert not failures, "\n".join(failures)
    # The matrix is not vacuous: every kind of answer occurs, many times.
    for outcome in (
        "2xx",
        "404 not_found",
        "403 forbidden",
        "401 unauthenticated",
        "401 mfa_required",
    ):
        assert seen[outcome] >= 5, (outcome, seen)
    assert sum(seen.values()) >= 250, seen


async def test_every_route_answers_as_the_policy_says(env: Env) -> None:
    failures, seen = await run_matrix(env)
    _assert_matrix(failures, seen)


@pytest.fixture
async def postgres_env(password_policy: PasswordPolicy) -> AsyncIterator[Env]:
    with temporary_postgres_schema() as url:
        upgrade(url)
        with Database(url) as database:
            provision_organisation(database)
            running = build_env(database, FakeClock(), policy=password_policy)
            try:
                await running.start()
                yield running
            finally:
                await running.close()


@pytest.mark.postgres
async def test_every_route_answers_as_the_policy_says_on_postgresql(postgres_env: Env) -> None:
    failures, seen = await run_matrix(postgres_env)
    _assert_matrix(failures, seen)


def test_every_route_of_the_application_declares_its_access(env: Env) -> None:
    assert matrix.undeclared_routes(env.app) == []
    declared = {
        (route.path, method)
        for route in env.app.routes
        if isinstance(route, GuardedRoute)
        for method in route.methods or ()
    }
    document = env.app.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert (path, method.upper()) in declared
            assert operation["x-callwarden-access"]["kind"] in {
                "public",
                "session_step",
                "self_service",
                "permission",
            }, (path, method)


async def test_a_route_added_without_a_declaration_fails_the_matrix(env: Env) -> None:
    """What a later issue's forgotten declaration looks like to the matrix."""
    app = create_app(env.services)
    careless = APIRouter(route_class=GuardedRoute)

    @careless.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"secret": "anyone can read this"}

    app.router.routes.extend(careless.routes)
    install_error_handlers(app)
    assert matrix.undeclared_routes(app) == ["['GET'] /api/v1/forgotten"]
    env.app = app
    failures, _ = await run_matrix(env)
    assert failures == ["no access declaration: ['GET'] /api/v1/forgotten"]


def test_a_route_cannot_declare_two_accesses() -> None:
    from callwarden.domain.permissions import Permission
    from callwarden.domain.policy import ResourceKind

    router = APIRouter(route_class=GuardedRoute)
    with pytest.raises(ValueError, match="declares 2 accesses"):

        @router.get(
            "/twice",
            dependencies=[
                require(Permission.USERS_MANAGE, kind=ResourceKind.USER),
                require(Permission.TEAMS_MANAGE, kind=ResourceKind.TEAM),
            ],
        )
        async def twice() -> None:
            return None
