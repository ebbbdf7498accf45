"""`GET /api/v1/desk/call`: one's own current call with the caller's number as the policy
shows it: masked to an operator (no `numbers.view`), whole to a supervisor taking calls of their
own team; nothing about anyone else's call; 401 without a session, 403 without a desk."""

from __future__ import annotations

from typing import Any

from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import CallId
from callwarden.domain.models import RecordingPolicy
from web.desk_support import NORTH_QUEUE, SOUTH_QUEUE, connect, serve_acd
from web.live_recording_support import LiveRecordingWorld
from web.support import Env

PATH = "/api/v1/desk/call"
NUMBER = "+4930123456"  # the number of the recorded calls of web.live_recording_support


def _world(env: Env) -> LiveRecordingWorld:
    assert env.live_recording is not None
    return env.live_recording


async def _get(env: Env, username: str | None) -> tuple[int, dict[str, Any]]:
    session = None if username is None else env.sign_in_directly(username)
    async with env.client(session) as client:
        response = await client.get(PATH)
    return response.status_code, response.json()


async def test_the_operator_sees_their_caller_masked(env: Env) -> None:
    engine = await serve_acd(env)
    call_id = _world(env).call_ids["north"]  # recorded: the recorder knows its number
    status, body = await _get(env, "operator")
    assert (status, body) == (
        200,
        {"call_id": None, "queue_id": None, "phase": None, "caller": None},
    )
    await connect(env, engine, "operator", call_id, NORTH_QUEUE, NUMBER)
    status, body = await _get(env, "operator")
    assert status == 200
    assert body == {
        "call_id": call_id,
        "queue_id": NORTH_QUEUE,
        "phase": "talking",
        "caller": "+******3456",
    }
    assert NUMBER not in str(body)
    # A colleague of the same team with no call of their own learns nothing of it.
    status, body = await _get(env, "colleague")
    assert (status, body["call_id"], body["caller"]) == (200, None, None)
    await engine.close()


async def test_a_supervisor_with_numbers_view_sees_the_whole_number(env: Env) -> None:
    engine = await serve_acd(env)
    world = _world(env)
    supervisor = env.user("supervisor")
    call_id = "supervisor-call-1@198.51.100.7"
    bridge = await world.engine.create_bridge()
    await world.control.call_connected(
        call_id=CallId(call_id),
        bridge_id=bridge,
        policy=RecordingPolicy.ON_DEMAND,
        direction=CallDirection.INBOUND,
        operator_id=supervisor.id,
        operator_endpoint=None,
        team_id=supervisor.team_id,
        caller_number="+81 3 1234 5678",
    )
    await connect(env, engine, "supervisor", call_id, NORTH_QUEUE, "+81 3 1234 5678")
    status, body = await _get(env, "supervisor")
    assert (status, body["call_id"], body["caller"]) == (200, call_id, "+81 3 1234 5678")
    await engine.close()


async def test_another_teams_operator_sees_only_their_own_call(env: Env) -> None:
    engine = await serve_acd(env)
    await connect(env, engine, "operator", _world(env).call_ids["north"], NORTH_QUEUE, NUMBER)
    south = _world(env).call_ids["south"]
    await connect(env, engine, "stranger", south, SOUTH_QUEUE, NUMBER)
    status, body = await _get(env, "stranger")
    assert (status, body["call_id"], body["caller"]) == (200, south, "+******3456")
    await engine.close()


async def test_an_unrecorded_queue_call_shows_the_acds_number_masked(env: Env) -> None:
    engine = await serve_acd(env)
    call_id = "queue-call-9@198.51.100.7"
    await connect(env, engine, "operator", call_id, NORTH_QUEUE, "+81312345678")
    status, body = await _get(env, "operator")
    assert (status, body["call_id"], body["caller"]) == (200, call_id, "+*******5678")
    # In wrap-up the ACD has let the call go and nothing recorded it: no number is known.
    await engine.call_ended(CallId(call_id))
    await engine.settled()
    status, body = await _get(env, "operator")
    assert (status, body["call_id"], body["phase"], body["caller"]) == (
        200,
        call_id,
        "wrap_up",
        None,
    )
    await engine.close()


async def test_without_a_desk_or_a_session(env: Env) -> None:
    status, body = await _get(env, "admin")
    assert (status, body["error_id"]) == (403, "forbidden")
    status, body = await _get(env, None)
    assert (status, body["error_id"]) == (401, "unauthenticated")
