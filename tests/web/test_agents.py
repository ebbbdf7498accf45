"""The agent routes over a running ACD engine: an operator's own state (available, break with a
configured reason, sign-out), a supervisor's forced break and sign-out limited to their team,
the live list filtered by `live.view`, and every change audited with before and after."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from callwarden.bus.in_process import InProcessBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import QueueId, TeamId
from callwarden.domain.models import Queue, QueueMember
from callwarden.store.schema import AuditLogRow
from callwarden.web.app import create_app
from web.support import Env, build_acd

NORTH_QUEUE, SOUTH_QUEUE = QueueId(71), QueueId(72)


def _team(env: Env, name: str) -> TeamId:
    return next(team.id for team in env.snapshot.teams if team.name == name)


@pytest.fixture
async def agents(env: Env) -> AsyncIterator[Env]:
    """`env` whose ACD serves a north queue (operator, colleague) and a south one (stranger)."""
    snapshot = env.snapshot
    members = {
        NORTH_QUEUE: ("north", ("operator", "colleague")),
        SOUTH_QUEUE: ("south", ("stranger",)),
    }
    queues = [
        Queue(
            id=queue_id,
            name=f"q{queue_id}",
            display_name=f"Queue {queue_id}",
            number=f"7{queue_id}",
            team_id=_team(env, team),
            members=tuple(QueueMember(env.user(name).id) for name in names),
        )
        for queue_id, (team, names) in members.items()
    ]
    with_queues = DirectorySnapshot(
        teams=snapshot.teams, roles=snapshot.roles, users=snapshot.users, queues=queues
    )
    engine = build_acd(with_queues, InProcessBus())
    await engine.start()
    env.app = create_app(dataclasses.replace(env.services, acd=lambda: engine))
    env.acd = engine
    yield env


async def _post(env: Env, who: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with env.client(env.sign_in_directly(who)) as client:
        response = await client.post(path, json=body)
    return response.status_code, response.json()


async def _get(env: Env, who: str, path: str) -> tuple[int, Any]:
    async with env.client(env.sign_in_directly(who)) as client:
        response = await client.get(path)
    return response.status_code, response.json()


async def test_an_operator_signs_in_takes_a_break_and_signs_out(agents: Env) -> None:
    env = agents
    me = env.user("operator")
    status, body = await _get(env, "operator", "/api/v1/agents/me")
    assert (status, body["state"], body["queue_ids"]) == (200, "offline", [])

    status, body = await _post(env, "operator", "/api/v1/agents/me/state", {"state": "available"})
    assert (status, body["state"], body["queue_ids"]) == (200, "available", [NORTH_QUEUE])
    status, body = await _post(
        env, "operator", "/api/v1/agents/me/state", {"state": "break", "reason": "lunch"}
    )
    assert (status, body["state"], body["break_reason"]) == (200, "break", "lunch")
    status, body = await _post(env, "operator", "/api/v1/agents/me/state", {"state": "available"})
    assert (status, body["state"]) == (200, "available")
    status, body = await _post(env, "operator", "/api/v1/agents/me/state", {"state": "offline"})
    assert (status, body["state"]) == (200, "offline")
    assert env.acd.agent(me.id).state.value == "offline"

    changes = env.audit_details("agent.state.change")
    assert [(c["before"]["state"], c["after"]["state"]) for c in changes] == [
        ("offline", "available"),
        ("available", "break"),
        ("break", "available"),
        ("available", "offline"),
    ]
    assert changes[1]["after"]["break_reason"] == "lunch"
    assert all(c["source"] == "web" for c in changes)
    assert next(a for a in env.audit_actions() if a[0] == "agent.state.change") == (
        "agent.state.change",
        "success",
        str(me.id),
    )


async def test_asking_for_the_current_state_again_changes_and_records_nothing(
    agents: Env,
) -> None:
    for _ in range(2):
        status, _body = await _post(
            agents, "operator", "/api/v1/agents/me/state", {"state": "available"}
        )
        assert status == 200
    assert len(agents.audit_details("agent.state.change")) == 1


@pytest.mark.parametrize(
    ("body", "status", "error_id"),
    [
        ({"state": "break", "reason": "nap"}, 422, "agent_unknown_break_reason"),
        ({"state": "break"}, 422, "validation_failed"),
        ({"state": "available", "reason": "lunch"}, 422, "validation_failed"),
        ({"state": "on_call"}, 422, "validation_failed"),
    ],
)
async def test_bad_state_changes_are_refused_with_their_reason(
    agents: Env, body: dict[str, Any], status: int, error_id: str
) -> None:
    await _post(agents, "operator", "/api/v1/agents/me/state", {"state": "available"})
    got, answer = await _post(agents, "operator", "/api/v1/agents/me/state", body)
    assert (got, answer["error_id"]) == (status, error_id)


async def test_a_break_needs_the_operator_signed_in(agents: Env) -> None:
    status, body = await _post(
        agents, "operator", "/api/v1/agents/me/state", {"state": "break", "reason": "lunch"}
    )
    assert (status, body["error_id"]) == (409, "agent_illegal_transition")
    assert agents.audit_details("agent.state.change") == []


async def test_a_supervisor_forces_a_break_and_a_sign_out_in_their_team_only(
    agents: Env,
) -> None:
    env = agents
    colleague, stranger = env.user("colleague"), env.user("stranger")
    for name in ("colleague", "stranger"):
        await _post(env, name, "/api/v1/agents/me/state", {"state": "available"})

    path = f"/api/v1/agents/{colleague.id}/state"
    status, body = await _post(env, "supervisor", path, {"state": "break", "reason": "meeting"})
    assert (status, body["state"], body["break_reason"]) == (200, "break", "meeting")
    status, body = await _post(env, "supervisor", path, {"state": "offline"})
    assert (status, body["state"]) == (200, "offline")
    with env.database.sessions() as session:
        row = session.scalars(
            select(AuditLogRow)
            .where(AuditLogRow.action == "agent.state.change")
            .order_by(AuditLogRow.sequence.desc())
        ).first()
        assert row is not None
        assert (row.actor_name, row.object_kind, row.object_id, row.source_address) == (
            "supervisor",
            "agent",
            str(colleague.id),
            "127.0.0.1",
        )
    forced = env.audit_details("agent.state.change")[-2:]
    assert [(c["before"]["state"], c["after"]["state"]) for c in forced] == [
        ("available", "break"),
        ("break", "offline"),
    ]

    other = f"/api/v1/agents/{stranger.id}/state"
    status, body = await _post(env, "supervisor", other, {"state": "offline"})
    assert (status, body["error_id"]) == (404, "not_found")
    assert env.acd.agent(stranger.id).state.value == "available"
    # An operator cannot force a colleague (their colleague's agent is not theirs to see),
    # an admin sees every agent but may not change one.
    status, body = await _post(env, "operator", path, {"state": "offline"})
    assert (status, body["error_id"]) == (404, "not_found")
    status, body = await _post(env, "admin", path, {"state": "offline"})
    assert (status, body["error_id"]) == (403, "forbidden")
    # A supervisor cannot make someone available (only a break or a sign-out is forced).
    status, body = await _post(env, "supervisor", path, {"state": "available"})
    assert (status, body["error_id"]) == (422, "validation_failed")


async def test_the_live_list_shows_the_teams_one_watches(agents: Env) -> None:
    env = agents
    await _post(env, "colleague", "/api/v1/agents/me/state", {"state": "available"})
    status, body = await _get(env, "supervisor", "/api/v1/agents")
    assert status == 200
    assert [(a["username"], a["state"]) for a in body["items"]] == [
        ("operator", "offline"),
        ("colleague", "available"),
    ]
    status, body = await _get(env, "admin", "/api/v1/agents")
    assert sorted(a["username"] for a in body["items"]) == ["colleague", "operator", "stranger"]
    status, body = await _get(env, "admin", f"/api/v1/agents?team={_team(env, 'south')}")
    assert [a["username"] for a in body["items"]] == ["stranger"]

    status, body = await _get(env, "supervisor", f"/api/v1/agents?team={_team(env, 'south')}")
    assert (status, body["error_id"]) == (404, "not_found")
    status, body = await _get(env, "operator", "/api/v1/agents")
    assert (status, body["error_id"]) == (403, "forbidden")
