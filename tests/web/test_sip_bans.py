"""`GET /api/v1/sip/bans`: admins see the SIP source guard's bans and counters; every other
role is refused (403, audited), no session is 401. The access matrix walks this route too
(test_access_matrix); here the answers are checked against a guard that really banned."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from callwarden.sip.addressing import Source
from callwarden.sip.clock import FakeClock
from callwarden.telephony.source_guard import SourceGuard, SourceGuardSettings
from callwarden.web.app import create_app
from web import matrix
from web.support import Env

PATH = "/api/v1/sip/bans"
WALL = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _banning_env(env: Env) -> tuple[Env, SourceGuard, FakeClock]:
    clock = FakeClock(start=50.0)
    guard = SourceGuard(
        clock,
        settings=SourceGuardSettings(ban_threshold=3, ban_seconds=120.0),
        publish=env.services.bus.publish,
        wall_clock=lambda: WALL,
    )
    services = replace(env.services, sip_guard=lambda: guard)
    return replace(env, services=services, app=create_app(services)), guard, clock


async def test_an_admin_sees_the_bans_in_force(env: Env) -> None:
    running, guard, clock = _banning_env(env)
    attacker = Source("UDP", "198.51.100.66", 5060, "192.0.2.1", 5060)
    for _ in range(3):
        guard.on_auth_failure(attacker)
    clock.advance(20)
    async with running.client(running.sign_in_directly("admin")) as client:
        response = await client.get(PATH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["guard_running"] is True
    [ban] = body["bans"]
    assert ban["address"] == "198.51.100.66"
    assert (ban["reason"], ban["offences"], ban["ban_number"]) == ("auth_failure", 3, 1)
    assert ban["seconds_left"] == 100.0
    assert datetime.fromisoformat(ban["until"]) == WALL.replace(minute=1, second=40)
    assert body["counters"]["auth_failures"] == 3 and body["counters"]["bans"] == 1


@pytest.mark.parametrize("role", ["operator", "supervisor", "auditor"])
async def test_other_roles_are_refused_and_the_refusal_audited(env: Env, role: str) -> None:
    running, _guard, _clock = _banning_env(env)
    async with running.client(running.sign_in_directly(role)) as client:
        response = await client.get(PATH)
    assert (response.status_code, response.json()["error_id"]) == (403, "forbidden")
    denials = running.audit_details("permission.denied")
    assert any(detail.get("route") == PATH for detail in denials)


async def test_no_session_is_401(env: Env) -> None:
    async with env.client() as client:
        response = await client.get(PATH)
    assert response.status_code == 401


async def test_before_sip_runs_the_list_is_empty(env: Env) -> None:
    async with env.client(env.sign_in_directly("admin")) as client:
        response = await client.get(PATH)
    assert response.json() == {"guard_running": False, "bans": [], "counters": None}


def test_the_access_matrix_walks_the_route(env: Env) -> None:
    cases = [case for case in matrix.cases(env.app) if case.path_template == PATH]
    assert {case.caller for case in cases} == set(matrix.Caller)
    assert all(case.access.permission is not None for case in cases)
    assert {case.access.permission.value for case in cases} == {"settings.manage"}  # type: ignore[union-attr]
