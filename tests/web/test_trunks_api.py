"""Trunks over the API: only `trunks.manage` (the admin) reads and changes them, the password is
write-only (never shown, never audited), bad input is a 422 naming the field with nothing
changed, every change is audited, and the dial plan sees it at once (the directory)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from web.admin_support import admin_client, create_as_admin, refused_as_invalid
from web.dbstate import configuration
from web.support import Env

ROUTE = "/api/v1/trunks"
SECRET = "carrier-secret-7781"


def _new_trunk(**changes: Any) -> dict[str, Any]:
    return {
        "name": "carrier",
        "host": "sip.carrier.example",
        "transport": "tls",
        "port": 5061,
        "inbound_numbers": [{"number": "+81312345678", "destination": "1001"}],
        "outbound_patterns": ["0X.", "+81."],
        "auth_username": "cc-account",
        "password": SECRET,
        "register": True,
        **changes,
    }


async def _create(env: Env, **changes: Any) -> dict[str, Any]:
    return await create_as_admin(env, ROUTE, _new_trunk(**changes))


async def test_the_admin_adds_changes_and_removes_a_trunk(env: Env) -> None:
    created = await _create(env)
    assert created == {
        "id": created["id"],
        "name": "carrier",
        "host": "sip.carrier.example",
        "port": 5061,
        "transport": "tls",
        "inbound_numbers": [{"number": "+81312345678", "destination": "1001"}],
        "outbound_patterns": ["0X.", "+81."],
        "auth_username": "cc-account",
        "has_password": True,
        "register": True,
        "enabled": True,
    }
    trunk = env.snapshot.trunk_by_name("carrier")
    assert trunk is not None and trunk.routes_outbound("0312345678")
    async with admin_client(env) as client:
        changed = await client.patch(
            f"{ROUTE}/{created['id']}",
            json={"outbound_patterns": ["0[1-9]X."], "password": "another-secret-22"},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["outbound_patterns"] == ["0[1-9]X."]
        assert changed.json()["auth_username"] == "cc-account"  # kept
        listed = await client.get(ROUTE)
        assert [item["name"] for item in listed.json()["items"]] == ["carrier"]
        disabled = await client.patch(f"{ROUTE}/{created['id']}", json={"enabled": False})
        assert disabled.json()["enabled"] is False
        trunk = env.snapshot.trunk_by_name("carrier")
        assert trunk is not None and not trunk.routes_outbound("0312345678")
        assert (await client.delete(f"{ROUTE}/{created['id']}")).status_code == 204
        gone = await client.get(f"{ROUTE}/{created['id']}")
        assert gone.status_code == 404
    assert env.snapshot.trunk_by_name("carrier") is None
    audit = json.dumps(
        [env.audit_details(f"trunk.{action}") for action in ("create", "update", "delete")]
    )
    assert SECRET not in audit and "another-secret-22" not in audit
    updates = env.audit_details("trunk.update")
    assert updates[0]["credentials_changed"] is True
    assert updates[0]["after"] == {"outbound_patterns": ["0[1-9]X."]}
    assert updates[1]["after"] == {"enabled": False} and not updates[1]["credentials_changed"]
    assert env.audit_details("trunk.delete")[0]["before"]["name"] == "carrier"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"host": "bad host;rm -rf"}, "host"),
        ({"port": 0}, "port"),
        ({"port": "5060"}, "port"),
        ({"transport": "sctp"}, "transport"),
        ({"outbound_patterns": ["0A."]}, "outbound_patterns[0]"),
        ({"inbound_numbers": [{"number": "abc"}]}, "inbound_numbers[0].number"),
        ({"inbound_numbers": [{"number": "+8131"}, {"number": "+8131"}]}, "inbound_numbers"),
        ({"host": None}, "body"),
        ({"name": "renamed"}, "name"),
        ({"password_hash": "x"}, "password_hash"),
        ({}, "body"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_nothing_changes(
    env: Env, body: dict[str, Any], field: str
) -> None:
    trunk_id = (await _create(env))["id"]
    await refused_as_invalid(env, "PATCH", f"{ROUTE}/{trunk_id}", body, field)


async def test_registering_needs_credentials_and_names_are_unique(env: Env) -> None:
    trunk_id = (await _create(env))["id"]
    before = configuration(env.database)
    async with admin_client(env) as client:
        cleared = await client.patch(f"{ROUTE}/{trunk_id}", json={"password": None})
        assert cleared.status_code == 422  # it registers: it needs its password
        taken = await client.post(ROUTE, json=_new_trunk(inbound_numbers=[]))
        assert taken.status_code == 409 and taken.json()["error_id"] == "trunk_name_taken"
        number = await client.post(ROUTE, json=_new_trunk(name="second"))
        assert number.status_code in (409, 422)  # +81312345678 is the first trunk's
    assert configuration(env.database) == before


@pytest.mark.parametrize("username", ["operator", "supervisor", "auditor", "keeper"])
async def test_only_trunks_manage_reads_or_changes_trunks(env: Env, username: str) -> None:
    trunk_id = (await _create(env))["id"]
    before = configuration(env.database)
    async with env.client(env.sign_in_directly(username)) as client:
        assert (await client.get(ROUTE)).status_code == 403
        assert (await client.post(ROUTE, json=_new_trunk(name="mine"))).status_code == 403
        assert (await client.get(f"{ROUTE}/{trunk_id}")).status_code == 403
        patched = await client.patch(f"{ROUTE}/{trunk_id}", json={"enabled": False})
        assert patched.status_code == 403
        assert (await client.delete(f"{ROUTE}/{trunk_id}")).status_code == 403
    assert configuration(env.database) == before
