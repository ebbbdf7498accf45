"""`/api/v1/monitoring` over the in-process monitoring rig (web/monitoring_support.py): starting
rings the supervisor's own registered phone and is audited with its reason, switching and
ending, another team's call reading exactly like a guessed id, and bad input refused with the
field named. The access matrix (test_access_matrix) covers every route for every role.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callwarden.telephony.feature_codes import MonitorMode
from monitoring_rig import PHONE
from web.monitoring_support import MonitoringWorld
from web.support import Env


def world(env: Env) -> MonitoringWorld:
    assert env.monitoring is not None
    return env.monitoring


def _body(call_id: str, mode: str = "listen", reason: str | None = "ticket QA-9") -> Any:
    return {"call_id": call_id, "mode": mode, "reason": reason}


async def test_starting_rings_the_supervisors_own_phone_and_is_audited(env: Env) -> None:
    call_id = world(env).call_ids["north"]
    async with env.client(env.sign_in_directly("supervisor")) as client:
        response = await client.post("/api/v1/monitoring", json=_body(call_id))
        assert response.status_code == 201, response.text
        started = response.json()
        assert (started["call_id"], started["mode"], started["state"]) == (
            call_id,
            "listen",
            "ringing",
        )
        assert started["operator_id"] == env.user("colleague").id
        listed = await client.get("/api/v1/monitoring")
    ids = {item["id"] for item in listed.json()["items"]}
    assert started["id"] in ids and world(env).session_ids["north"] in ids
    assert world(env).session_ids["south"] not in ids  # another team's session stays hidden
    rig = world(env).rig
    await _until(lambda: bool(rig.services.wire.requests("INVITE")))
    invite = rig.services.wire.requests("INVITE")[-1]
    assert str(invite.uri) == f"sip:supervisor@{PHONE.host}:{PHONE.port}"
    entries = [a for a in env.audit_actions() if a[0] == "monitoring.listen"]
    assert entries == [("monitoring.listen", "success", call_id)]


async def _until(predicate: Any) -> None:
    for _ in range(100):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def test_a_reason_is_required(env: Env) -> None:
    call_id = world(env).call_ids["north"]
    async with env.client(env.sign_in_directly("supervisor")) as client:
        for reason in (None, "  "):
            response = await client.post("/api/v1/monitoring", json=_body(call_id, reason=reason))
            assert response.status_code == 422
            assert response.json()["error_id"] == "audit_reason_required"
    assert world(env).rig.services.wire.sent == []


async def test_another_teams_call_reads_as_a_guessed_id(env: Env) -> None:
    south = world(env).call_ids["south"]
    async with env.client(env.sign_in_directly("supervisor")) as client:
        hidden = await client.post("/api/v1/monitoring", json=_body(south, "whisper"))
        guessed = await client.post(
            "/api/v1/monitoring", json=_body("guessed@198.51.100.7", "whisper")
        )
    assert hidden.status_code == guessed.status_code == 404
    assert hidden.json()["error_id"] == guessed.json()["error_id"] == "not_found"
    assert hidden.json()["message"].replace(south, "X") == guessed.json()["message"].replace(
        "guessed@198.51.100.7", "X"
    )
    denied = env.audit_details("permission.denied")
    assert [(d["permission"], d["decision"], d["via"]) for d in denied] == [
        ("monitor.whisper", "deny_not_found", "api"),
        ("monitor.whisper", "deny_not_found", "api"),
    ]


async def test_switching_is_the_sessions_own_supervisors_and_ending_any_team_supervisors(
    env: Env,
) -> None:
    session_id = world(env).session_ids["north"]
    path = f"/api/v1/monitoring/{session_id}"
    async with env.client(env.sign_in_directly("supervisor")) as client:
        switched = await client.patch(path, json={"mode": "barge"})
    assert switched.status_code == 200, switched.text
    assert switched.json()["mode"] == "barge"
    assert world(env).service.sessions[session_id].mode is MonitorMode.BARGE
    assert ("monitoring.barge", "success", "north-monitored@198.51.100.7") in env.audit_actions()
    async with env.client(env.sign_in_directly("deputy")) as client:
        refused = await client.patch(path, json={"mode": "listen"})
        assert refused.status_code == 409
        assert refused.json()["error_id"] == "monitoring_not_yours"
        ended = await client.delete(path)
    assert ended.status_code == 200, ended.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"call_id": "x", "mode": "spy", "reason": "r"}, "mode"),
        ({"call_id": "", "mode": "listen", "reason": "r"}, "call_id"),
        ({"call_id": "x" * 256, "mode": "listen", "reason": "r"}, "call_id"),
        ({"call_id": "x", "mode": "listen", "reason": "r" * 501}, "reason"),
        ({"call_id": "x", "mode": "listen", "reason": "r", "supervisor_id": 1}, "supervisor_id"),
        ({"call_id": 7, "mode": "listen", "reason": "r"}, "call_id"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    env: Env, body: dict[str, Any], field: str
) -> None:
    async with env.client(env.sign_in_directly("supervisor")) as client:
        response = await client.post("/api/v1/monitoring", json=body)
    assert response.status_code == 422
    assert field in response.text
    assert world(env).rig.services.wire.sent == []
    assert len(world(env).service.sessions) == 2  # the two sessions of the fixture, no more


async def test_a_malformed_session_id_is_a_422_and_an_unknown_one_not_found(env: Env) -> None:
    async with env.client(env.sign_in_directly("supervisor")) as client:
        for session_id in ("no-such-session", "x" * 40, "0"):
            response = await client.delete(f"/api/v1/monitoring/{session_id}")
            assert response.status_code == 422, response.text
            assert response.json()["details"]["field"] == "monitoring_id"
        unknown = await client.delete("/api/v1/monitoring/AAAAAAAAAAAAAAAA")
    assert unknown.status_code == 404
    assert unknown.json()["error_id"] == "not_found"
    assert len(world(env).service.sessions) == 2


async def test_call_ids_as_phones_make_them_are_accepted(env: Env) -> None:
    """pjsua's Call-IDs may start with '-' and hold dots; RFC 3261 words are all accepted."""
    async with env.client(env.sign_in_directly("supervisor")) as client:
        for call_id in ("-8tcnE-AKCnm.Q12DqDadnHKm.KA6sVo", "a1b2..c3@[2001:db8::1]", "x/y{z}"):
            response = await client.post("/api/v1/monitoring", json=_body(call_id))
            assert response.status_code == 404, (call_id, response.text)
