"""Sign-in networks over the API: only `settings.manage` (the admin) reads and changes them,
bad input is a 422 naming the field with nothing changed, a change that would shut the caller
out is refused, each change is audited, and a rule takes effect at the next sign-in."""

from __future__ import annotations

from typing import Any

import pytest

from web.admin_support import admin_client, refused_as_invalid, role_id, team_id
from web.dbstate import configuration
from web.support import Env, sign_in

ROUTE = "/api/v1/sign-in-networks"


async def test_the_admin_restricts_a_team_and_its_members_sign_in_from_there_only(
    env: Env,
) -> None:
    async with admin_client(env) as client:
        created = await client.post(
            ROUTE,
            json={
                "network": "10.8.0.0/16",
                "team_id": team_id(env, "south"),
                "description": "南拠点 VPN",
            },
        )
        assert created.status_code == 201, created.text
        rule = created.json()
        assert rule == {
            "id": rule["id"],
            "network": "10.8.0.0/16",
            "role_id": None,
            "team_id": team_id(env, "south"),
            "description": "南拠点 VPN",
        }
        assert (await client.get(ROUTE)).json()["items"] == [rule]
    async with env.client(address="192.0.2.10") as outside:
        refused = await sign_in(outside, "stranger", "lantern-quartz-meadow-1987")
        assert refused.status_code != 200
    async with env.client(address="10.8.3.4") as inside:
        assert (await sign_in(inside, "stranger", "lantern-quartz-meadow-1987")).status_code == 200
    async with admin_client(env) as client:
        removed = await client.delete(f"{ROUTE}/{rule['id']}")
        assert removed.status_code == 204
        again = await client.delete(f"{ROUTE}/{rule['id']}")
        assert again.status_code == 404 and again.json()["error_id"] == "not_found"
    async with env.client(address="192.0.2.10") as outside:
        assert (await sign_in(outside, "stranger", "lantern-quartz-meadow-1987")).status_code == 200
    [created_entry] = env.audit_details("sign_in_network.create")
    assert created_entry["rule"]["network"] == "10.8.0.0/16"
    [deleted_entry] = env.audit_details("sign_in_network.delete")
    assert deleted_entry["rule"]["id"] == rule["id"]


async def test_the_admin_cannot_shut_themselves_out(env: Env) -> None:
    before = configuration(env.database)
    async with admin_client(env) as client:  # from 127.0.0.1
        for body in (
            {"network": "10.0.0.0/8", "role_id": role_id(env, "admin")},
            {"network": "10.0.0.0/8", "team_id": team_id(env, "north")},
        ):
            response = await client.post(ROUTE, json=body)
            assert response.status_code == 409, body
            assert response.json()["error_id"] == "would_lock_you_out"
        allowed = await client.post(
            ROUTE, json={"network": "127.0.0.0/8", "role_id": role_id(env, "admin")}
        )
        assert allowed.status_code == 201
        last = await client.delete(f"{ROUTE}/{allowed.json()['id']}")
        assert last.status_code == 204  # no rule left for the role: anywhere again
    assert configuration(env.database) == before  # added and removed again
    assert len(env.audit_details("sign_in_network.create")) == 1
    assert len(env.audit_details("sign_in_network.delete")) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"network": "10.8.0.1/16", "role_id": 1}, "network"),
        ({"network": "not a network", "role_id": 1}, "network"),
        ({"network": "10.8.0.0/33", "role_id": 1}, "network"),
        ({"network": "10.8.0.0/16"}, "body"),
        ({"network": "10.8.0.0/16", "role_id": 1, "team_id": 1}, "body"),
        ({"network": "10.8.0.0/16", "role_id": 999_999}, "role_id"),
        ({"network": "10.8.0.0/16", "team_id": 999_999}, "team_id"),
        ({"network": "10.8.0.0/16", "role_id": "1"}, "role_id"),
        ({"network": "10.8.0.0/16", "role_id": 1, "description": "x" * 256}, "description"),
        ({"network": "10.8.0.0/16", "role_id": 1, "enabled": True}, "enabled"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_nothing_changes(
    env: Env, body: dict[str, Any], field: str
) -> None:
    response = await refused_as_invalid(env, "POST", ROUTE, body, field)
    assert "not a network" not in response.json()["message"].replace(
        "not a network in CIDR", ""
    )  # the value sent is not echoed


@pytest.mark.parametrize("username", ["operator", "supervisor", "auditor", "keeper"])
async def test_only_settings_manage_reads_or_changes_them(env: Env, username: str) -> None:
    async with admin_client(env) as client:
        rule = (
            await client.post(
                ROUTE, json={"network": "198.51.100.0/24", "role_id": role_id(env, "quality")}
            )
        ).json()
    before = configuration(env.database)
    async with env.client(env.sign_in_directly(username)) as client:
        assert (await client.get(ROUTE)).status_code == 403
        posted = await client.post(
            ROUTE, json={"network": "0.0.0.0/0", "role_id": role_id(env, "operator")}
        )
        assert posted.status_code == 403
        assert (await client.delete(f"{ROUTE}/{rule['id']}")).status_code == 403
    assert configuration(env.database) == before
