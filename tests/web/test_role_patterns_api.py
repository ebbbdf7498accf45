"""A role's outbound allow-list over the API (`roles.manage`): replaced whole, built-in roles
included, bad patterns refused with the field named and nothing changed, audited with before
and after, and in the live directory at once (the dial plan reads `Role.allows_dialling`)."""

from __future__ import annotations

from typing import Any

import pytest

from web.admin_support import admin_client, role_id
from web.dbstate import configuration
from web.support import Env


def _path(env: Env, role: str) -> str:
    return f"/api/v1/roles/{role_id(env, role)}/outbound-patterns"


async def test_the_admin_sets_the_operators_outbound_allow_list(env: Env) -> None:
    operator = env.snapshot.role_by_name("operator")
    assert operator is not None and not operator.allows_dialling("0312345678")
    async with admin_client(env) as client:
        changed = await client.put(
            _path(env, "operator"), json={"outbound_patterns": ["0[1-9]X.", "+81."]}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["outbound_patterns"] == ["0[1-9]X.", "+81."]
        read = await client.get(f"/api/v1/roles/{role_id(env, 'operator')}")
        assert read.json()["outbound_patterns"] == ["0[1-9]X.", "+81."]
    role = env.snapshot.role_by_name("operator")
    assert role is not None
    assert role.allows_dialling("0312345678") and role.allows_dialling("+815012345678")
    assert not role.allows_dialling("0012345678") and not role.allows_dialling("110")
    assert role.grants == operator.grants  # only the allow-list changed
    [entry] = env.audit_details("role.update")
    assert entry == {
        "before": {"outbound_patterns": []},
        "after": {"outbound_patterns": ["0[1-9]X.", "+81."]},
    }
    async with admin_client(env) as client:
        cleared = await client.put(_path(env, "operator"), json={"outbound_patterns": []})
        assert cleared.json()["outbound_patterns"] == []
    cleared_role = env.snapshot.role_by_name("operator")
    assert cleared_role is not None and not cleared_role.allows_dialling("0312345678")


@pytest.mark.parametrize(
    "body",
    [
        {"outbound_patterns": ["0X.", "0A."]},
        {"outbound_patterns": ["X.X"]},
        {"outbound_patterns": ["0" * 65]},
        {"outbound_patterns": "0X."},
        {"outbound_patterns": [1]},
        {"outbound_patterns": ["0X."] * 101},
        {},
        {"outbound_patterns": ["0X."], "grants": []},
    ],
)
async def test_bad_patterns_are_422s_and_nothing_changes(env: Env, body: dict[str, Any]) -> None:
    before = configuration(env.database)
    async with admin_client(env) as client:
        response = await client.put(_path(env, "quality"), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error_id"] == "validation_failed"
    assert configuration(env.database) == before
    assert env.audit_details("role.update") == []


@pytest.mark.parametrize("username", ["operator", "supervisor", "auditor", "keeper"])
async def test_only_roles_manage_changes_an_allow_list(env: Env, username: str) -> None:
    before = configuration(env.database)
    async with env.client(env.sign_in_directly(username)) as client:
        own_role = "records" if username == "keeper" else username
        response = await client.put(_path(env, own_role), json={"outbound_patterns": ["X."]})
        assert response.status_code == 403
        assert response.json()["error_id"] == "forbidden"
    assert configuration(env.database) == before
