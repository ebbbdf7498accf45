"""The live recording routes (`/api/v1/calls/{call_id}/recording` for the call's operator,
`/api/v1/supervision/calls/{call_id}/recording` for a supervisor of its team): what each role
gets, pause confirmed before the answer, a pause that cannot be confirmed fails closed, on-demand
start and stop with a reason, and the audit trail. Real media engine and recorder
(web/live_recording_support.py); the access matrix walks the same routes for every role.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import CallId, RecordingId
from callwarden.domain.models import RecordingPolicy
from callwarden.media.engine import MediaEngine
from callwarden.recording.models import Recording, RecordingStatus
from callwarden.recording.numbers import SealedNumbers
from callwarden.recording.repository import RecordingRepository
from callwarden.store.schema import AuditLogRow
from callwarden.web.app import create_app
from web.live_recording_support import LiveRecordingWorld, build_live_recording
from web.recording_support import SECRET
from web.support import Env

OWN = "/api/v1/calls/{}/recording"
SUPERVISED = "/api/v1/supervision/calls/{}/recording"


def _world(env: Env) -> LiveRecordingWorld:
    assert env.live_recording is not None
    return env.live_recording


def _row(env: Env, recording_id: str) -> Recording:
    with env.database.sessions() as session:
        return RecordingRepository(session, SealedNumbers(SECRET)).get(RecordingId(recording_id))


async def _put(
    env: Env, username: str | None, path: str, body: dict[str, object]
) -> tuple[int, dict[str, Any]]:
    session = None if username is None else env.sign_in_directly(username)
    async with env.client(session) as client:
        response = await client.put(path, json=body)
    return response.status_code, response.json()


async def _get(env: Env, username: str | None, path: str) -> tuple[int, dict[str, Any]]:
    session = None if username is None else env.sign_in_directly(username)
    async with env.client(session) as client:
        response = await client.get(path)
    return response.status_code, response.json()


def _reasons(env: Env, action: str) -> list[str | None]:
    with env.database.sessions() as session:
        return list(
            session.scalars(
                select(AuditLogRow.reason)
                .where(AuditLogRow.action == action)
                .order_by(AuditLogRow.sequence)
            )
        )


async def _audited(env: Env, action: str, count: int = 1) -> None:
    """Wait (on a busy machine, up to 10 s) for the audit writer to store `count` `action`s."""
    for _ in range(1000):
        if sum(1 for a, _, _ in env.audit_actions() if a == action) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{action} not audited")


async def test_the_operator_pauses_and_resumes_their_own_call_confirmed(env: Env) -> None:
    call_id = _world(env).call_ids["north"]
    status, body = await _get(env, "operator", OWN.format(call_id))
    assert (status, body["state"], body["policy"]) == (200, "not_recording", "on_demand")
    status, body = await _put(env, "operator", OWN.format(call_id), {"state": "recording"})
    assert (status, body["state"]) == (200, "recording")
    recording_id = body["recording_id"]
    assert isinstance(recording_id, str)
    status, body = await _put(env, "operator", OWN.format(call_id), {"state": "paused"})
    assert status == 200, body
    assert body["state"] == "paused" and body["recording_id"] == recording_id
    [pause] = body["pauses"]
    assert pause["ended_at"] is None
    # The answer came after the media's confirmation: the catalogue already has the pause.
    assert len(_row(env, recording_id).pauses) == 1
    status, body = await _put(env, "operator", OWN.format(call_id), {"state": "recording"})
    assert status == 200 and body["state"] == "recording"
    [pause] = body["pauses"]
    assert pause["ended_at"] is not None
    status, body = await _get(env, "operator", OWN.format(call_id))
    assert status == 200 and body["state"] == "recording"
    await _audited(env, "recording.resume")
    actions = [(a, o) for a, o, _ in env.audit_actions() if a.startswith("recording.")]
    assert actions == [
        ("recording.start", "success"),
        ("recording.pause", "success"),
        ("recording.resume", "success"),
    ]
    assert [d["by"] for d in env.audit_details("recording.pause")] == ["api"]


@pytest.mark.parametrize(
    ("username", "path", "team", "status"),
    [
        ("operator", OWN, "south", 404),  # another team's call: not found
        ("colleague", OWN, "north", 404),  # a colleague's call: not theirs to see
        ("supervisor", OWN, "north", 403),  # the supervisor's door is the other one
        ("supervisor", SUPERVISED, "south", 404),  # another team's call
        ("operator", SUPERVISED, "north", 403),  # their own call, but they supervise nothing
        ("admin", SUPERVISED, "north", 403),  # of north, no monitoring: forbidden
        ("auditor", SUPERVISED, "north", 403),
        (None, OWN, "north", 401),
        (None, SUPERVISED, "south", 401),
    ],
)
async def test_who_may_not_touch_which_call(
    env: Env, username: str | None, path: str, team: str, status: int
) -> None:
    call_id = _world(env).call_ids[team]
    await _world(env).start_recording(team, env.snapshot)
    got, body = await _put(env, username, path.format(call_id), {"state": "paused"})
    assert got == status, body
    got, _ = await _get(env, username, path.format(call_id))
    assert got == status
    recorded = _world(env).control.recorded_call(CallId(call_id))
    assert recorded is not None and recorded.active is not None
    assert not recorded.active.paused  # nothing changed


async def test_an_unknown_call_reads_as_another_teams(env: Env) -> None:
    got, body = await _get(env, "supervisor", SUPERVISED.format("nobody@198.51.100.7"))
    assert (got, body["error_id"], body["message"]) == (404, "not_found", "call not found")
    got, body = await _get(env, "supervisor", SUPERVISED.format("south-live@198.51.100.7"))
    assert (got, body["error_id"], body["message"]) == (404, "not_found", "call not found")
    for malformed in ("bad call id", "12345678901", "a1", "call;id@host"):
        got, body = await _get(env, "supervisor", SUPERVISED.format(malformed))
        assert (got, body["details"].get("field")) == (422, "call_id"), malformed


async def test_a_supervisor_pauses_the_teams_call_with_a_reason(env: Env) -> None:
    call_id = _world(env).call_ids["north"]
    await _world(env).start_recording("north", env.snapshot)
    status, body = await _put(
        env, "supervisor", SUPERVISED.format(call_id), {"state": "paused", "reason": "card data"}
    )
    assert (status, body["state"]) == (200, "paused")
    await _audited(env, "recording.pause")
    assert env.audit_details("recording.pause") == [{"call_id": call_id, "by": "api"}]
    assert _reasons(env, "recording.pause") == ["card data"]


async def test_a_recording_the_policy_requires_cannot_be_stopped(env: Env) -> None:
    world, operator = _world(env), env.user("operator")
    bridge = await world.engine.create_bridge()
    await world.engine.add_tone(bridge, [440.0], role="customer")
    call_id = "required@198.51.100.7"
    await world.control.call_connected(
        call_id=CallId(call_id),
        bridge_id=bridge,
        policy=RecordingPolicy.ALL,
        direction=CallDirection.INBOUND,
        operator_id=operator.id,
        operator_endpoint=None,
        team_id=operator.team_id,
    )
    status, body = await _put(
        env, "supervisor", SUPERVISED.format(call_id), {"state": "stopped", "reason": "x"}
    )
    assert (status, body["error_id"]) == (409, "recording_required_by_policy")
    assert (await _get(env, "operator", OWN.format(call_id)))[1]["state"] == "recording"
    await world.control.call_ended(CallId(call_id))


async def test_on_demand_start_and_stop_with_a_reason(env: Env) -> None:
    world = _world(env)
    operator = env.user("operator")
    bridge = await world.engine.create_bridge()
    await world.engine.add_tone(bridge, [440.0], role="customer")
    await world.control.call_connected(
        call_id=CallId("demand@198.51.100.7"),
        bridge_id=bridge,
        policy=RecordingPolicy.ON_DEMAND,
        direction=CallDirection.OUTBOUND,
        operator_id=operator.id,
        operator_endpoint=None,
        team_id=operator.team_id,
    )
    path = OWN.format("demand@198.51.100.7")
    status, body = await _get(env, "operator", path)
    assert (status, body["state"], body["policy"]) == (200, "not_recording", "on_demand")
    status, body = await _put(env, "operator", path, {"state": "paused"})
    assert (status, body["error_id"]) == (409, "not_recording")
    status, body = await _put(env, "operator", path, {"state": "recording"})
    assert (status, body["state"]) == (200, "recording")
    recording_id = body["recording_id"]
    assert isinstance(recording_id, str)
    status, body = await _put(env, "operator", path, {"state": "stopped"})
    assert status == 422  # a reason is required to stop
    status, body = await _put(
        env, "operator", path, {"state": "stopped", "reason": "customer objected"}
    )
    assert (status, body["state"], body["recording_id"]) == (200, "not_recording", None)
    assert _row(env, recording_id).status is RecordingStatus.COMPLETE
    await _audited(env, "recording.stop")
    assert _reasons(env, "recording.stop") == ["customer objected"]
    await world.control.call_ended(CallId("demand@198.51.100.7"))


class NeverConfirms(MediaEngine):
    """A media process that never confirms a pause (stuck, or gone)."""

    async def pause_recording(self, bridge_id: str) -> int:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


@pytest.fixture
async def unconfirmed(env: Env) -> AsyncIterator[Env]:
    world = build_live_recording(
        env.database.sessions,
        lambda: env.snapshot,
        env.writer.submit,
        env.services.bus,
        env.clock.now,
        engine_type=NeverConfirms,
        pause_confirm_seconds=0.2,
    )
    await world.start(env.snapshot)
    services = dataclasses.replace(env.services, recording_control=lambda: world.control)
    env.app = create_app(services)
    previous, env.live_recording = env.live_recording, world
    yield env
    await world.close()
    env.live_recording = previous


async def test_a_pause_that_cannot_be_confirmed_stops_the_recording(unconfirmed: Env) -> None:
    env = unconfirmed
    call_id = _world(env).call_ids["north"]
    recording_id = await _world(env).start_recording("north", env.snapshot)
    status, body = await _put(env, "operator", OWN.format(call_id), {"state": "paused"})
    assert (status, body["error_id"]) == (409, "pause_not_confirmed")
    status, body = await _get(env, "operator", OWN.format(call_id))
    assert body["state"] == "not_recording"  # fail closed: nothing more is recorded
    row = _row(env, recording_id)
    assert row.status is RecordingStatus.INCOMPLETE and row.pauses == ()
    await _audited(env, "recording.pause")
    assert ("recording.pause", "failed", recording_id) in env.audit_actions()
