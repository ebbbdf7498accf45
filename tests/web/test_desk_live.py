"""`/api/v1/desk/live`: the operator desktop's feed carries the ACD events about the caller's
own agent and calls, and nothing about anyone else; it needs `agent_state.change_own` and an
allowed origin, like every live connection."""

from __future__ import annotations

from callwarden.acd.agent import AgentState
from callwarden.acd.events import AgentStateChanged, CallAnswered
from callwarden.domain.ids import CallId, QueueId, RecordingId
from callwarden.recording.capture_events import RecordingPaused
from callwarden.telephony.monitoring_events import MonitoringStarted
from web.support import T0, Env, WebSocketSession, websocket_headers

PATH = "/api/v1/desk/live"


def state_of(env: Env, username: str, state: AgentState) -> AgentStateChanged:
    user = env.user(username)
    return AgentStateChanged(
        at=T0, team_id=user.team_id, user_id=user.id, state=state, previous=AgentState.OFFLINE
    )


async def test_the_desk_feed_carries_own_events_only(env: Env) -> None:
    session = env.sign_in_directly("operator")
    socket = WebSocketSession(env.app, PATH, websocket_headers(session))
    assert await socket.connect()
    assert await socket.receive_json() == {"type": "welcome", "user_id": env.user("operator").id}
    colleague = env.user("colleague")
    env.services.bus.publish(state_of(env, "colleague", AgentState.BREAK))
    env.services.bus.publish(
        CallAnswered(
            at=T0,
            team_id=colleague.team_id,
            user_id=colleague.id,
            call_id=CallId("call-of-colleague"),
            queue_id=QueueId(1),
            waited_seconds=3.0,
        )
    )
    env.services.bus.publish(state_of(env, "operator", AgentState.AVAILABLE))
    own = env.user("operator")
    env.services.bus.publish(
        CallAnswered(
            at=T0,
            team_id=own.team_id,
            user_id=own.id,
            call_id=CallId("call-of-operator"),
            queue_id=QueueId(1),
            waited_seconds=4.5,
        )
    )
    first = await socket.receive_json()
    second = await socket.receive_json()
    assert (first["kind"], first["fields"]["user_id"], first["fields"]["state"]) == (
        "acd.agent_state_changed",
        own.id,
        "available",
    )
    assert (second["kind"], second["fields"]["call_id"]) == (
        "acd.call_answered",
        "call-of-operator",
    )
    await socket.disconnect()


async def test_the_desk_feed_is_refused_without_the_permission_or_the_origin(env: Env) -> None:
    admin = WebSocketSession(env.app, PATH, websocket_headers(env.sign_in_directly("admin")))
    assert not await admin.connect()
    assert admin.close_reason == "forbidden"
    foreign = WebSocketSession(
        env.app, PATH, websocket_headers(env.sign_in_directly("operator"), "https://evil.test")
    )
    assert not await foreign.connect()
    assert foreign.close_reason == "origin_refused"
    anonymous = WebSocketSession(env.app, PATH, websocket_headers(None))
    assert not await anonymous.connect()
    assert anonymous.close_reason == "unauthenticated"


async def test_the_desk_feed_closes_when_the_session_ends(env: Env) -> None:
    session = env.sign_in_directly("operator")
    socket = WebSocketSession(env.app, PATH, websocket_headers(session))
    assert await socket.connect()
    await socket.receive_json()
    async with env.client(session) as client:
        assert (await client.post("/api/v1/sessions/logout")).status_code == 204
    await socket.wait_closed()
    assert (socket.close_code, socket.close_reason) == (4401, "logout")


def monitoring_started(env: Env, notified: bool, monitoring_id: str) -> MonitoringStarted:
    operator = env.user("operator")
    return MonitoringStarted(
        at=T0,
        team_id=operator.team_id,
        user_id=operator.id,
        monitoring_id=monitoring_id,
        call_id=CallId("call-of-operator"),
        supervisor_id=env.user("supervisor").id,
        mode="listen",
        via="api",
        operator_notified=notified,
    )


async def test_the_operator_is_told_of_monitoring_only_when_the_policy_says_so(env: Env) -> None:
    socket = WebSocketSession(env.app, PATH, websocket_headers(env.sign_in_directly("operator")))
    assert await socket.connect()
    await socket.receive_json()
    env.services.bus.publish(monitoring_started(env, False, "quiet"))
    env.services.bus.publish(monitoring_started(env, True, "told"))
    message = await socket.receive_json()
    assert (message["kind"], message["fields"]["monitoring_id"]) == ("monitoring.started", "told")
    await socket.disconnect()


async def test_the_desk_feed_carries_the_recording_of_own_calls_only(env: Env) -> None:
    socket = WebSocketSession(env.app, PATH, websocket_headers(env.sign_in_directly("operator")))
    assert await socket.connect()
    await socket.receive_json()
    for username in ("colleague", "operator"):
        user = env.user(username)
        env.services.bus.publish(
            RecordingPaused(
                at=T0,
                team_id=user.team_id,
                user_id=user.id,
                recording_id=RecordingId(f"rec-{username}"),
                call_id=CallId(f"call-{username}"),
                by="operator",
            )
        )
    message = await socket.receive_json()
    assert (message["kind"], message["fields"]["recording_id"]) == (
        "recording.paused",
        "rec-operator",
    )
    await socket.disconnect()
