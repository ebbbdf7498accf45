"""Negative input for every route, generated from the running application and its OpenAPI
document: wrong JSON types and type confusion in every body field, injection strings in every
identifier, filter and sort field, malformed path ids, malformed JSON, unknown fields and huge
bodies. Each is refused with the field named (422) or as too large (413); no answer contains
database error text or the value sent; and the configuration tables are unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from callwarden.domain.policy import Resource, authorize
from callwarden.security.sessions import IssuedSession
from callwarden.web.access import AccessKind, own_target, route_access
from web import matrix
from web.dbstate import configuration
from web.matrix import EXAMPLE_BODIES, Placement
from web.support import Env

INJECTIONS = (
    "name; DROP TABLE users",
    "' OR 1=1 --",
    "1 UNION SELECT password_hash FROM users",
    "username DESC, (SELECT 1)",
    '{"$ne": null}',
    "../../etc/passwd",
    "robert\x00",
)
DATABASE_WORDS = (
    "sqlite",
    "psycopg",
    "sqlalchemy",
    "SELECT",
    "INSERT",
    "Traceback",
    "IntegrityError",
    "OperationalError",
    "syntax error",
    "constraint",
)
FREE_TEXT_BODY_FIELDS = frozenset(
    {
        "display_name",
        "description",
        "password",
        "sip_password",
        "auth_username",
        "code",
        "reason",
        "text",
        "note",
    }
)
"""Text taken as it is (stored verbatim through bound parameters, or compared as a secret):
an injection string there is a valid value. test_directory_api stores one and reads it back.
`auth_username` is a trunk's user name at the carrier, a credential like the password."""
SIGN_IN = ("POST", "/api/v1/sessions")
"""Sign-in takes any username and answers every failure alike (and audits it, and counts it
for throttling): a malformed username is one more failed attempt, not a 422."""
FREE_TEXT_FILTERS = frozenset({"actor_name", "object_id"})
"""Exact-match audit filters: an injection string is a value that matches nothing."""
CALLERS = ("admin", "auditor", "exporter", "supervisor", "operator", "keeper")


@pytest.fixture(autouse=True)
def _route_objects(env: Env) -> None:
    """The queues the queue routes are called on exist before a test takes the state."""
    matrix.matrix_queues(env)


@dataclass(frozen=True)
class Target:
    route: APIRoute
    method: str
    path: str
    session: IssuedSession | None
    path_parameter: str | None

    def __str__(self) -> str:
        return f"{self.method} {self.route.path}"


def _caller_for(env: Env, route: APIRoute, path_params: dict[str, str]) -> str | None:
    """A user the route's guard admits (None: the route is public)."""
    access = route_access(route)
    assert access is not None, route.path
    if access.kind is AccessKind.PUBLIC:
        return None
    if access.kind is not AccessKind.PERMISSION:
        return "admin"
    assert access.permission is not None and access.resource_kind is not None
    for username in CALLERS:
        user = env.user(username)
        if access.target is not None:
            resource = access.target.resolve(env.snapshot, path_params).resource
        elif access.own:
            resource = own_target(user, access.resource_kind).resource
        else:
            resource = Resource.global_resource(access.resource_kind)
        principal = env.snapshot.principal_for(user)
        if authorize(principal, access.permission, resource).allowed:
            return username
    raise AssertionError(f"nobody may call {route.path}")


def targets(env: Env) -> Iterator[Target]:
    for route in env.app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        parameter = matrix._path_parameter(route)
        for method in sorted(route.methods or ()):
            session = None
            value = None
            if parameter is not None:
                if parameter == "session_id":
                    session = env.sign_in_directly("admin")
                    value = int(session.session.id)
                else:
                    value = matrix.path_value(env, parameter, Placement.OWN_TEAM, None)
            params = {} if parameter is None else {parameter: str(value)}
            username = _caller_for(env, route, params)
            if session is None and username is not None:
                session = env.sign_in_directly(username)
            path = matrix.fill(route.path, parameter, value)
            yield Target(route, method, path, session, parameter)


def _problems_of(response: httpx.Response, sent: str | None) -> list[str]:
    problems = []
    text = response.text
    for word in DATABASE_WORDS:
        if word in text:
            problems.append(f"database text {word!r} in {text[:200]}")
    if sent is not None and len(sent) > 3 and sent in text:
        problems.append(f"the value sent is echoed: {text[:200]}")
    if response.status_code >= 500:
        problems.append(f"server error {response.status_code}")
    return problems


def _refused_naming(response: httpx.Response, field: str) -> str | None:
    if response.status_code != 422:
        return f"expected 422 naming {field!r}, got {response.status_code} {response.text[:200]}"
    body = response.json()
    named = body["details"].get("field", "")
    if not (named == field or named.startswith((f"{field}.", f"{field}["))):
        return f"422 names {named!r}, not {field!r}"
    return None


def _request_schema(env: Env, target: Target) -> dict[str, Any] | None:
    operation = env.app.openapi()["paths"][target.route.path][target.method.lower()]
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    reference = content["schema"]["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = env.app.openapi()["components"]["schemas"][reference]
    return schema


def _kind(schema: dict[str, Any]) -> str:
    for option in schema.get("anyOf", [schema]):
        if "$ref" in option:
            return "object"
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string"


WRONG_TYPE = {
    "string": 12345,
    "integer": "12",
    "boolean": "true",
    "array": "not-a-list",
    "object": "not-an-object",
}


async def _send(env: Env, target: Target, **kwargs: Any) -> httpx.Response:
    async with env.client(target.session) as client:
        return await client.request(target.method, target.path, **kwargs)


def _valid_body(env: Env, target: Target) -> dict[str, Any]:
    body: dict[str, Any] = EXAMPLE_BODIES[(target.method, target.route.path)](env)
    return body


async def test_every_body_field_refuses_wrong_types_and_injections(env: Env) -> None:
    failures: list[str] = []
    checked = 0
    for target in targets(env):
        schema = _request_schema(env, target)
        if schema is None:
            continue
        before = configuration(env.database)
        for field, field_schema in schema["properties"].items():
            kind = _kind(field_schema)
            values: list[Any] = [WRONG_TYPE[kind], {"$ne": None}, [field]]
            if kind == "string" and field not in FREE_TEXT_BODY_FIELDS:
                values += [] if (target.method, target.route.path) == SIGN_IN else list(INJECTIONS)
            elif kind == "array":
                values += [[injection] for injection in INJECTIONS] + [[{"$ne": None}]]
            elif kind == "integer":
                values += [1.5, True, -1, 2**40]
            for value in values:
                body = {**_valid_body(env, target), field: value}
                response = await _send(env, target, json=body)
                checked += 1
                sent = value if isinstance(value, str) else None
                problem = _refused_naming(response, field)
                if problem is not None:
                    failures.append(f"{target} {field}={value!r}: {problem}")
                failures += [f"{target} {field}: {p}" for p in _problems_of(response, sent)]
        unknown = await _send(env, target, json={**_valid_body(env, target), "is_admin": True})
        if (problem := _refused_naming(unknown, "is_admin")) is not None:
            failures.append(f"{target} unknown field: {problem}")
        if configuration(env.database) != before:
            failures.append(f"{target}: refused requests changed the configuration")
    assert not failures, "\n".join(failures)
    assert checked > 150


async def test_every_filter_and_sort_refuses_injections(env: Env) -> None:
    failures: list[str] = []
    checked = 0
    before = configuration(env.database)
    for target in targets(env):
        operation = env.app.openapi()["paths"][target.route.path][target.method.lower()]
        query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        for parameter in query:
            name = parameter["name"]
            kind = _kind(parameter["schema"])
            values = list(INJECTIONS) + {"integer": ["1.5", "abc", "-1"], "boolean": ["maybe"]}.get(
                kind, []
            )
            for value in values:
                response = await _send(env, target, params={name: value})
                checked += 1
                if name in FREE_TEXT_FILTERS and "\x00" not in value:
                    if response.status_code != 200 or response.json() != []:
                        failures.append(f"{target} {name}={value!r}: {response.status_code}")
                elif (problem := _refused_naming(response, name)) is not None:
                    failures.append(f"{target} {name}={value!r}: {problem}")
                failures += [f"{target} {name}: {p}" for p in _problems_of(response, value)]
        if query:
            extra = await _send(env, target, params={"password_hash": "x"})
            if (problem := _refused_naming(extra, "password_hash")) is not None:
                failures.append(f"{target} unknown parameter: {problem}")
    assert configuration(env.database) == before
    assert not failures, "\n".join(failures)
    assert checked > 80


async def test_every_path_id_refuses_malformed_values(env: Env) -> None:
    failures: list[str] = []
    before = configuration(env.database)
    for target in targets(env):
        parameter = target.path_parameter
        if parameter is None:
            continue
        for value in (
            "1;DROP TABLE users",
            "-1",
            "0",
            "1.5",
            "0x10",
            "99999999999999999999",
            "%00",
        ):
            path = matrix.fill(target.route.path, parameter, value)
            body = (
                EXAMPLE_BODIES[(target.method, target.route.path)](env)
                if (target.method, target.route.path) in EXAMPLE_BODIES
                else None
            )
            async with env.client(target.session) as client:
                response = await client.request(target.method, path, json=body)
            if (problem := _refused_naming(response, parameter)) is not None:
                failures.append(f"{target} {parameter}={value!r}: {problem}")
            failures += [f"{target}: {p}" for p in _problems_of(response, value)]
    assert configuration(env.database) == before
    assert not failures, "\n".join(failures)


async def test_malformed_and_huge_bodies_are_refused_before_anything_happens(env: Env) -> None:
    failures: list[str] = []
    before = configuration(env.database)
    huge = json.dumps({"username": "x" * (2 * 1024 * 1024)})
    for target in targets(env):
        if target.method not in ("POST", "PUT", "PATCH", "DELETE"):
            continue
        headers = {"content-type": "application/json"}
        too_big = await _send(env, target, content=huge, headers=headers)
        if too_big.status_code != 413 or too_big.json()["error_id"] != "payload_too_large":
            failures.append(f"{target}: huge body answered {too_big.status_code}")
        if _request_schema(env, target) is None:
            continue
        for broken in ('{"username": ', "[1, 2", "\xff\xfe", "null", "[]", '"text"'):
            response = await _send(env, target, content=broken.encode("latin-1"), headers=headers)
            if (problem := _refused_naming(response, "body")) is not None:
                failures.append(f"{target} body {broken!r}: {problem}")
            failures += [f"{target}: {p}" for p in _problems_of(response, None)]
    assert configuration(env.database) == before
    assert not failures, "\n".join(failures)


async def test_a_chunked_body_over_the_cap_is_cut_off(env: Env) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 64 * 1024

    async with env.client() as client:
        response = await client.post(
            "/api/v1/sessions", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert (
        response.json()["details"] == {"max_bytes": 1024 * 1024}
        or response.json()["error_id"] == "payload_too_large"
    )


async def test_sign_in_treats_injection_strings_as_one_more_failed_attempt(env: Env) -> None:
    async with env.client(address="203.0.113.9") as client:
        for username in INJECTIONS[:3]:
            response = await client.post(
                "/api/v1/sessions", json={"username": username, "password": "whatever-it-is"}
            )
            assert response.status_code == 401
            assert response.json()["error_id"] == "sign_in_failed"
            assert _problems_of(response, username) == []
    failed = env.audit_details("auth.login.failed")
    assert [entry["reason"] for entry in failed] == ["unknown_user"] * 3
