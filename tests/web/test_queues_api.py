"""Queues over the API: only `queues.manage` (the admin) reads and changes them, bad input is a
422 naming the field with nothing changed, every change is audited with before and after, and
the running ACD follows the change without a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callwarden.acd.agent import AgentState
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId
from web.admin_support import admin_client, create_as_admin, refused_as_invalid, team_id
from web.dbstate import configuration
from web.support import Env


def _new_queue(env: Env, **changes: Any) -> dict[str, Any]:
    return {
        "name": "sales",
        "number": "7300",
        "team_id": team_id(env, "north"),
        "members": [{"user_id": env.user("operator").id, "skill_level": 3}],
        **changes,
    }


async def _create(env: Env, **changes: Any) -> dict[str, Any]:
    return await create_as_admin(env, "/api/v1/queues", _new_queue(env, **changes))


async def test_the_admin_creates_reads_changes_and_deletes_a_queue(env: Env) -> None:
    created = await _create(env, overflow={"action": "user", "user_id": env.user("colleague").id})
    assert created["strategy"] == "longest_idle"
    assert created["members"] == [
        {"user_id": env.user("operator").id, "penalty": 0, "skill_level": 3}
    ]
    assert created["service_level_seconds"] == 20 and created["recording"] == "all"
    assert created["overflow"] == {
        "action": "user",
        "queue_id": None,
        "user_id": env.user("colleague").id,
    }
    queue_id = created["id"]
    assert env.snapshot.queue(QueueId(queue_id)) is not None
    async with admin_client(env) as client:
        listed = await client.get("/api/v1/queues", params={"team_id": team_id(env, "north")})
        assert [item["name"] for item in listed.json()["items"]] == ["sales"]
        changed = await client.patch(
            f"/api/v1/queues/{queue_id}",
            json={
                "strategy": "skills",
                "required_skill_level": 2,
                "service_level_seconds": 15,
                "service_level_percent": 90,
                "wrap_up_seconds": 45,
                "recording": "on_demand",
                "max_wait_seconds": 120,
                "overflow": {"action": "voicemail"},
            },
        )
        assert changed.status_code == 200, changed.text
        read = await client.get(f"/api/v1/queues/{queue_id}")
        assert read.json() == changed.json()
        assert read.json()["members"] == created["members"]  # not stated: unchanged
        queue = env.snapshot.queue(QueueId(queue_id))
        assert queue is not None
        assert (queue.strategy.value, queue.service_level_seconds) == ("skills", 15)
        assert (queue.wrap_up_seconds, queue.recording.value) == (45, "on_demand")
        deleted = await client.delete(f"/api/v1/queues/{queue_id}")
        assert deleted.status_code == 204
        gone = await client.get(f"/api/v1/queues/{queue_id}")
        assert gone.status_code == 404 and gone.json()["error_id"] == "not_found"
    assert env.snapshot.queue(QueueId(queue_id)) is None
    assert env.audit_details("queue.create")[0]["after"]["name"] == "sales"
    update = env.audit_details("queue.update")[0]
    assert update["before"]["strategy"] == "longest_idle"
    assert update["after"]["strategy"] == "skills"
    assert update["after"]["service_level_seconds"] == 15
    assert "members" not in update["after"]  # only what changed
    assert env.audit_details("queue.delete")[0]["before"]["number"] == "7300"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"strategy": "random"}, "strategy"),
        ({"service_level_seconds": 0}, "service_level_seconds"),
        ({"service_level_percent": 101}, "service_level_percent"),
        ({"wrap_up_seconds": "10"}, "wrap_up_seconds"),
        ({"wrap_up_seconds": 3601}, "wrap_up_seconds"),
        ({"recording": "sometimes"}, "recording"),
        ({"number": "12a"}, "number"),
        ({"strategy": None}, "body"),
        ({"members": [{"user_id": 999_999}]}, "members[0].user_id"),
        ({"members": [{"user_id": 1}, {"user_id": 1}]}, "members"),
        ({"members": [{"user_id": 1, "skill_level": 101}]}, "members[0].skill_level"),
        ({"overflow": {"action": "queue"}}, "overflow"),
        ({"overflow": {"action": "queue", "queue_id": 999_999}}, "overflow.queue_id"),
        ({"overflow": {"action": "hangup", "user_id": 1}}, "overflow"),
        ({"team_id": 999_999}, "team_id"),
        ({"name": "renamed"}, "name"),
        ({"id": 5}, "id"),
        ({}, "body"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_nothing_changes(
    env: Env, body: dict[str, Any], field: str
) -> None:
    queue_id = (await _create(env))["id"]
    audit_before = env.audit_actions()
    response = await refused_as_invalid(env, "PATCH", f"/api/v1/queues/{queue_id}", body, field)
    assert response.json()["error_id"] == "validation_failed"
    assert env.audit_actions() == audit_before


async def test_clashes_and_overflow_targets_are_409s(env: Env) -> None:
    first = await _create(env)
    second = await _create(
        env, name="support", number="7301", overflow={"action": "queue", "queue_id": first["id"]}
    )
    before = configuration(env.database)
    async with admin_client(env) as client:
        taken = await client.post("/api/v1/queues", json=_new_queue(env, number="7302"))
        assert taken.status_code == 409 and taken.json()["error_id"] == "queue_name_taken"
        extension = await client.post(
            "/api/v1/queues", json=_new_queue(env, name="third", number="1001")
        )
        assert extension.status_code == 422  # the operator's extension
        itself = await client.patch(
            f"/api/v1/queues/{first['id']}",
            json={"overflow": {"action": "queue", "queue_id": first["id"]}},
        )
        assert itself.status_code == 422
        target = await client.delete(f"/api/v1/queues/{first['id']}")
        assert target.status_code == 409
        assert target.json()["error_id"] == "queue_is_overflow_target"
        assert target.json()["details"]["queues"] == ["support"]
    assert configuration(env.database) == before
    assert second["overflow"]["queue_id"] == first["id"]


@pytest.mark.parametrize(
    ("username", "own_team", "other_team"),
    [
        # Supervisors and auditors see the north queue's team: 403; the operator sees no
        # queue at all, and the supervisor not south's: 404 (no existence oracle).
        ("supervisor", 403, 404),
        ("auditor", 403, 403),
        ("operator", 404, 404),
    ],
)
async def test_only_queues_manage_reads_or_changes_queues(
    env: Env, username: str, own_team: int, other_team: int
) -> None:
    north = (await _create(env))["id"]
    south = (await _create(env, name="south-q", number="7310", team_id=team_id(env, "south")))["id"]
    before = configuration(env.database)
    denials = len(env.audit_details("permission.denied"))
    async with env.client(env.sign_in_directly(username)) as client:
        assert (await client.get("/api/v1/queues")).status_code == 403
        created = await client.post("/api/v1/queues", json=_new_queue(env, name="mine"))
        assert created.status_code == 403
        for queue_id, expected in ((north, own_team), (south, other_team)):
            for method, body in (
                ("GET", None),
                ("PATCH", {"strategy": "ring_all"}),
                ("DELETE", None),
            ):
                response = await client.request(method, f"/api/v1/queues/{queue_id}", json=body)
                assert response.status_code == expected, (method, queue_id)
    assert configuration(env.database) == before
    assert len(env.audit_details("permission.denied")) == denials + 8


async def test_the_running_acd_follows_a_queue_change(env: Env) -> None:
    """As `callwarden.app` wires it: each directory reload is posted to the ACD's loop. A
    longest-idle queue rings one of its two members; changed to ring-all, both; with a
    required skill above theirs, neither."""
    loop, acd = asyncio.get_running_loop(), env.acd
    await acd.start()  # the environment closes it

    def follow(snapshot: DirectorySnapshot) -> None:
        loop.call_soon_threadsafe(acd.follow_directory, snapshot)

    env.services.directory.on_reload(follow)  # type: ignore[attr-defined]
    members = [env.user(name).id for name in ("operator", "colleague")]
    created = await _create(
        env, members=[{"user_id": user_id, "skill_level": 3} for user_id in members]
    )
    queue_id = QueueId(created["id"])

    async def ringing(call_id: str) -> int:
        await asyncio.sleep(0.05)  # the posted reload runs on the loop
        await acd.settled()
        for user_id in members:
            await acd.sign_in(user_id, [queue_id])
        await acd.call_arrived(CallId(call_id), queue_id, caller="+81312345678")
        await acd.settled()
        assert [call.call_id for call in acd.waiting_calls(queue_id)] == [call_id]
        states = [acd.agent(user_id).state for user_id in members]
        await acd.call_ended(CallId(call_id))
        for user_id in members:
            await acd.sign_out(user_id)
        await acd.settled()
        return states.count(AgentState.RINGING)

    assert await ringing("call-1") == 1
    async with admin_client(env) as client:
        changed = await client.patch(f"/api/v1/queues/{queue_id}", json={"strategy": "ring_all"})
        assert changed.status_code == 200
        assert await ringing("call-2") == 2
        skilled = await client.patch(f"/api/v1/queues/{queue_id}", json={"required_skill_level": 5})
        assert skilled.status_code == 200
        assert await ringing("call-3") == 0


async def test_the_auditor_finds_every_admin_console_change_in_the_audit_trail(env: Env) -> None:
    """Queue, trunk, sign-in network and team changes, as the audit trail's API shows them."""
    queue_id = (await _create(env))["id"]
    async with admin_client(env) as client:
        await client.patch(f"/api/v1/queues/{queue_id}", json={"strategy": "skills"})
        trunk = await client.post(
            "/api/v1/trunks", json={"name": "carrier", "host": "sip.x.example"}
        )
        assert trunk.status_code == 201
        quality = env.snapshot.role_by_name("quality")
        assert quality is not None
        network = await client.post(
            "/api/v1/sign-in-networks", json={"network": "10.8.0.0/16", "role_id": quality.id}
        )
        assert network.status_code == 201
        north = next(team.id for team in env.snapshot.teams if team.name == "north")
        team = await client.patch(
            f"/api/v1/teams/{north}", json={"monitoring_transparency": "screen"}
        )
        assert team.status_code == 200
    async with env.client(env.sign_in_directly("auditor")) as auditor:
        for prefix, action, object_id in (
            ("queue.", "queue.update", str(queue_id)),
            ("trunk.", "trunk.create", str(trunk.json()["id"])),
            ("sign_in_network.", "sign_in_network.create", str(network.json()["id"])),
            ("team.", "team.update", str(north)),
        ):
            response = await auditor.get("/api/v1/audit/entries", params={"action_prefix": prefix})
            assert response.status_code == 200
            entry = response.json()[0]  # newest first
            assert (entry["action"], entry["object_id"]) == (action, object_id), prefix
            assert entry["actor_name"] == "admin" and entry["outcome"] == "success"
        verified = await auditor.post("/api/v1/audit/verify", json={})
        assert verified.status_code == 200 and verified.json()["intact"] is True, verified.text
