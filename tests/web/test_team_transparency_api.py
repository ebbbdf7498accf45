"""A team's monitoring transparency over the teams API (`teams.manage`): set, read back, in the
live directory at once, cleared back to the node's setting with null; bad values refused with
nothing changed; audited with before and after."""

from __future__ import annotations

from callwarden.domain.models import MonitoringTransparency
from web.admin_support import admin_client, problem_fields, team_id
from web.dbstate import configuration
from web.support import Env


def _policy(env: Env, name: str) -> MonitoringTransparency | None:
    team = next(team for team in env.snapshot.teams if team.name == name)
    return team.monitoring_transparency


async def test_the_admin_sets_and_clears_a_teams_transparency(env: Env) -> None:
    north = team_id(env, "north")
    assert _policy(env, "north") is None
    async with admin_client(env) as client:
        changed = await client.patch(
            f"/api/v1/teams/{north}", json={"monitoring_transparency": "screen_and_tone"}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["monitoring_transparency"] == "screen_and_tone"
        assert _policy(env, "north") is MonitoringTransparency.SCREEN_AND_TONE
        created = await client.post(
            "/api/v1/teams", json={"name": "west", "monitoring_transparency": "silent"}
        )
        assert created.json()["monitoring_transparency"] == "silent"
        cleared = await client.patch(
            f"/api/v1/teams/{north}", json={"monitoring_transparency": None}
        )
        assert cleared.json()["monitoring_transparency"] is None
    assert _policy(env, "north") is None
    updates = env.audit_details("team.update")
    assert updates[0] == {
        "before": {"monitoring_transparency": None},
        "after": {"monitoring_transparency": "screen_and_tone"},
    }
    assert updates[1]["after"] == {"monitoring_transparency": None}


async def test_a_bad_value_or_caller_changes_nothing(env: Env) -> None:
    north = team_id(env, "north")
    before = configuration(env.database)
    async with admin_client(env) as client:
        for value in ("loud", 1, True, ["screen"]):
            response = await client.patch(
                f"/api/v1/teams/{north}", json={"monitoring_transparency": value}
            )
            assert response.status_code == 422, value
            assert "monitoring_transparency" in problem_fields(response)
    for username in ("supervisor", "operator", "auditor"):
        async with env.client(env.sign_in_directly(username)) as client:
            response = await client.patch(
                f"/api/v1/teams/{north}", json={"monitoring_transparency": "silent"}
            )
            assert response.status_code in (403, 404), username
    assert configuration(env.database) == before
