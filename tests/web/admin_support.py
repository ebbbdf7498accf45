"""Helpers of the admin API tests (users, roles, teams, queues, trunks, sign-in networks): ids
by name, the admin's client, an object created as the admin, and a request refused as invalid
with nothing changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from web.dbstate import configuration
from web.support import Env


def role_id(env: Env, name: str) -> int:
    role = env.snapshot.role_by_name(name)
    assert role is not None
    return role.id


def team_id(env: Env, name: str) -> int:
    return next(team.id for team in env.snapshot.teams if team.name == name)


@asynccontextmanager
async def admin_client(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as the admin (MFA done)."""
    async with env.client(env.sign_in_directly("admin")) as client:
        yield client


async def create_as_admin(env: Env, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to `route` as the admin: 201, the created object."""
    async with admin_client(env) as client:
        response = await client.post(route, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def problem_fields(response: httpx.Response) -> list[str]:
    """The fields a 422 names, in its order."""
    return [problem["field"] for problem in response.json()["details"]["problems"]]


async def refused_as_invalid(
    env: Env, method: str, path: str, body: dict[str, Any], field: str
) -> httpx.Response:
    """As the admin, `body` is refused with a 422 naming `field`, and the configuration is as
    it was."""
    before = configuration(env.database)
    async with admin_client(env) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert field in problem_fields(response), response.json()
    assert configuration(env.database) == before
    return response


async def post_user(
    client: httpx.AsyncClient, env: Env, username: str, role: str, **fields: Any
) -> httpx.Response:
    """`POST /api/v1/users`: `username` with the role named `role`, and `fields`."""
    body = {"username": username, "role_id": role_id(env, role), **fields}
    return await client.post("/api/v1/users", json=body)
