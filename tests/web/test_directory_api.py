"""Users, roles and teams over the API: mass assignment refused, the granting rule, the
password policy, listing with filters and an allow-listed sort, and every change audited with
before and after."""

from __future__ import annotations

from typing import Any

import httpx

from web.admin_support import admin_client, post_user, role_id, team_id
from web.dbstate import configuration
from web.support import Env, sign_in


async def test_an_operator_cannot_make_themselves_admin(env: Env) -> None:
    before = configuration(env.database)
    me = env.user("operator")
    async with env.client(env.sign_in_directly("operator")) as client:
        for body in (
            {"role_id": role_id(env, "admin")},
            {"role": "admin"},
            {"display_name": "Me"},
        ):
            response = await client.patch(f"/api/v1/users/{me.id}", json=body)
            assert response.status_code == 403, body
            assert response.json()["error_id"] == "forbidden"
        role = await client.put(
            f"/api/v1/users/{me.id}/role", json={"role_id": role_id(env, "admin")}
        )
        assert role.status_code == 403
    assert configuration(env.database) == before
    assert env.user("operator").role_id == role_id(env, "operator")
    assert len(env.audit_details("permission.denied")) == 4


async def test_a_patch_cannot_reach_fields_it_does_not_own(env: Env) -> None:
    before = configuration(env.database)
    me = env.user("admin")
    async with admin_client(env) as client:
        for field, value in (
            ("role", "auditor"),
            ("role_id", role_id(env, "auditor")),
            ("enabled", False),
            ("username", "root"),
            ("id", 1),
            ("password_hash", "$argon2id$v=19$m=65536,t=3,p=4$..."),
        ):
            response = await client.patch(
                f"/api/v1/users/{me.id}", json={"display_name": "Still Me", field: value}
            )
            assert response.status_code == 422, field
            body = response.json()
            assert body["error_id"] == "validation_failed"
            assert body["details"]["field"] == field
            assert body["details"]["problems"] == [
                {"location": "body", "field": field, "problem": "this field cannot be set here"}
            ]
    assert configuration(env.database) == before


async def test_nobody_gives_a_role_whose_grants_they_do_not_hold(env: Env) -> None:
    before = configuration(env.database)
    colleague = env.user("colleague").id
    async with admin_client(env) as client:
        to_auditor = await client.put(
            f"/api/v1/users/{colleague}/role", json={"role_id": role_id(env, "auditor")}
        )
        assert to_auditor.status_code == 403
        assert to_auditor.json()["error_id"] == "grant_not_held"
        assert to_auditor.json()["details"] == {
            "field": "role_id",
            "grants": ["audit.view:all", "recordings.play:all"],
        }
        puppet = await post_user(
            client, env, "puppet", "supervisor", password="glacier-pepper-violin-5521"
        )
        assert puppet.status_code == 403 and puppet.json()["error_id"] == "grant_not_held"
        exporter_role = await client.post(
            "/api/v1/roles", json={"name": "leaker", "grants": ["recordings.download:all"]}
        )
        assert exporter_role.status_code == 403
        assert exporter_role.json()["details"]["grants"] == ["recordings.download:all"]
        wider = await client.put(
            f"/api/v1/roles/{role_id(env, 'quality')}/grants",
            json={"grants": ["reports.view:all", "audit.view:team"]},
        )
        assert wider.status_code == 403
        assert wider.json()["details"]["grants"] == ["audit.view:team"]
        take_over = await client.patch(
            f"/api/v1/users/{env.user('auditor').id}", json={"password": "hijack-lantern-0071"}
        )
        assert take_over.status_code == 403 and take_over.json()["error_id"] == "grant_not_held"
        builtin = await client.put(
            f"/api/v1/roles/{role_id(env, 'admin')}/grants", json={"grants": []}
        )
        assert builtin.status_code == 409 and builtin.json()["error_id"] == "builtin_role_fixed"
    assert configuration(env.database) == before
    decisions = [d["decision"] for d in env.audit_details("permission.denied")]
    assert decisions == ["grant_not_held"] * 5


async def test_the_admin_creates_an_operator_and_sets_their_password(env: Env) -> None:
    """Own-scope grants are exempt from the granting rule for `users.manage:all` (docs/api.md):
    the admin gives the operator role, which holds only own-scope grants it lacks."""
    first, second = "lantern-orchard-pebble-3390", "velvet-harbour-quartz-4417"
    async with admin_client(env) as client:
        created = await post_user(
            client,
            env,
            "newdesk",
            "operator",
            team_id=team_id(env, "south"),
            extension="2005",
            password=first,
            sip_password="desk-phone-secret-1",
        )
        assert created.status_code == 201, created.text
        new_id = created.json()["id"]
        assert created.json()["role"] == "operator"
        changed = await client.patch(f"/api/v1/users/{new_id}", json={"password": second})
        assert changed.status_code == 200, changed.text
        back = await client.put(
            f"/api/v1/users/{env.user('colleague').id}/role",
            json={"role_id": role_id(env, "operator")},
        )
        assert back.status_code == 200
    async with env.client() as client:
        assert (await sign_in(client, "newdesk", first)).status_code == 401
    async with env.client() as client:
        assert (await sign_in(client, "newdesk", second)).status_code == 200
    assert env.user("newdesk").role_id == role_id(env, "operator")
    created_entries = env.audit_details("user.create")
    assert created_entries and created_entries[-1]["after"]["username"] == "newdesk"


async def test_a_supervisor_still_cannot_give_grants_it_lacks(env: Env) -> None:
    before = configuration(env.database)
    async with env.client(env.sign_in_directly("supervisor")) as client:
        for role in ("supervisor", "auditor", "admin", "operator"):
            response = await post_user(
                client, env, f"by-supervisor-{role}", role, password="glacier-pepper-violin-5521"
            )
            assert response.status_code == 403, role
        promote = await client.put(
            f"/api/v1/users/{env.user('operator').id}/role",
            json={"role_id": role_id(env, "supervisor")},
        )
        assert promote.status_code == 403
    async with admin_client(env) as client:
        # The exemption is for own-scope grants only: team and all scopes must be held.
        puppet = await post_user(
            client, env, "puppet", "supervisor", password="glacier-pepper-violin-5521"
        )
        assert puppet.status_code == 403
        assert "monitor.listen:team" in puppet.json()["details"]["grants"]
        assert "calls.take:own" not in puppet.json()["details"]["grants"]
    assert configuration(env.database) == before


async def test_what_an_admin_may_do_is_done_and_audited(env: Env) -> None:
    async with admin_client(env) as client:
        created = await post_user(
            client,
            env,
            "newadmin",
            "admin",
            display_name="Robert'); DROP TABLE users;--",
            team_id=team_id(env, "south"),
            extension="2002",
            password="harbour-mosaic-thistle-8812",
            sip_password="phone-secret-1",
        )
        assert created.status_code == 201, created.text
        user = created.json()
        assert user["display_name"] == "Robert'); DROP TABLE users;--"
        assert (user["has_web_password"], user["has_sip_credentials"]) == (True, True)
        assert "password" not in created.text.replace("has_web_password", "")
        renamed = await client.patch(
            f"/api/v1/users/{user['id']}", json={"display_name": "Bobby", "extension": None}
        )
        assert renamed.status_code == 200
        assert (renamed.json()["display_name"], renamed.json()["extension"]) == ("Bobby", None)
        role = await client.post(
            "/api/v1/roles", json={"name": "reporting", "grants": ["reports.view:team"]}
        )
        assert role.status_code == 201 and role.json()["grants"] == ["reports.view:team"]
        grants = await client.put(
            f"/api/v1/roles/{role.json()['id']}/grants",
            json={"grants": ["reports.view:all", "live.view:team"]},
        )
        assert grants.json()["grants"] == ["live.view:team", "reports.view:all"]
        team = await client.post(
            "/api/v1/teams", json={"name": "west", "parent_id": team_id(env, "south")}
        )
        assert team.status_code == 201 and team.json()["parent_id"] == team_id(env, "south")
        moved = await client.patch(f"/api/v1/teams/{team.json()['id']}", json={"parent_id": None})
        assert moved.json()["parent_id"] is None
        cycle = await client.patch(
            f"/api/v1/teams/{team_id(env, 'north')}",
            json={"parent_id": team_id(env, "north-east")},
        )
        assert cycle.status_code == 422 and cycle.json()["details"]["field"] == "parent"
        taken = await post_user(client, env, "newadmin", "admin")
        assert taken.status_code == 409 and taken.json()["error_id"] == "username_taken"
        clash = await client.post(
            "/api/v1/users",
            json={"username": "other", "role_id": role_id(env, "admin"), "extension": "1001"},
        )
        assert clash.status_code == 422 and clash.json()["details"]["field"] == "extension"
    async with env.client() as client:
        assert (await sign_in(client, "newadmin", "harbour-mosaic-thistle-8812")).status_code == 200
    actions = [action for action, _, _ in env.audit_actions()]
    for action in (
        "user.create",
        "user.update",
        "role.create",
        "role.update",
        "team.create",
        "team.update",
    ):
        assert action in actions
    update = env.audit_details("user.update")[0]
    assert update["before"] == {
        "display_name": "Robert'); DROP TABLE users;--",
        "extension": "2002",
    }
    assert update["after"] == {"display_name": "Bobby", "extension": None}
    assert env.audit_details("role.update")[0]["added"] == ["live.view:team", "reports.view:all"]


async def test_passwords_set_through_the_api_follow_the_policy(env: Env) -> None:
    before = configuration(env.database)
    admin_role = role_id(env, "admin")
    async with admin_client(env) as client:

        async def create(password: str, username: str = "carol") -> httpx.Response:
            return await client.post(
                "/api/v1/users",
                json={"username": username, "role_id": admin_role, "password": password},
            )

        short = await create("elevenchars")
        assert short.status_code == 422 and short.json()["details"]["field"] == "password"
        for password, reason in (
            ("password1234", "common"),
            ("P@ssw0rd2024!", "common"),
            ("aaaaaaaaaaaaaaaa", "repetitive"),
            ("carolcarol12", "context"),
        ):
            refused = await create(password)
            assert refused.status_code == 422, password
            assert refused.json()["error_id"] == "password_rejected"
            assert refused.json()["details"]["reason"] == reason
            assert refused.json()["details"]["field"] == "password"
            assert password not in refused.text
        too_long = await create("x" * 1025)
        assert too_long.status_code == 422
        assert configuration(env.database) == before
        passphrase = "the quiet Ünïcode harbour at dawn, " * 7  # 245 characters
        assert (await create(passphrase, "dora")).status_code == 201
    async with env.client() as client:
        assert (await sign_in(client, "dora", passphrase[:-1])).status_code == 401
        assert (await sign_in(client, "dora", passphrase.upper())).status_code == 401
        assert (await sign_in(client, "dora", passphrase)).status_code == 200


async def _list(client: httpx.AsyncClient, **query: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/users", params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_users_are_listed_with_filters_an_allowed_sort_and_pages(env: Env) -> None:
    async with admin_client(env) as client:
        everyone = await _list(client)
        assert everyone["total"] == len(env.snapshot.users)
        assert [u["username"] for u in everyone["items"]] == sorted(
            u.username for u in env.snapshot.users
        )
        north = await _list(client, team_id=team_id(env, "north"), sort="extension", order="desc")
        assert [u["username"] for u in north["items"]][:2] == ["colleague", "operator"]
        operators = await _list(client, role_id=role_id(env, "operator"))
        assert {u["username"] for u in operators["items"]} == {"operator", "colleague", "stranger"}
        page = await _list(client, sort="id", limit=2, offset=2)
        assert [u["id"] for u in page["items"]] == [3, 4] and page["total"] == everyone["total"]
        prefix = await _list(client, username_prefix="op")
        assert [u["username"] for u in prefix["items"]] == ["operator"]
        assert (await _list(client, enabled=False))["total"] == 0
        one = await client.get(f"/api/v1/users/{env.user('stranger').id}")
        assert one.json()["team_id"] == team_id(env, "south")
        missing = await client.get("/api/v1/users/999999")
        assert missing.status_code == 404
        assert missing.json() == {
            "error_id": "not_found",
            "message": "user 999999 not found",
            "details": {},
        }
        roles = (await client.get("/api/v1/roles", params={"builtin": True})).json()
        assert [r["name"] for r in roles["items"]] == ["admin", "auditor", "operator", "supervisor"]
        teams = (await client.get("/api/v1/teams", params={"sort": "name", "order": "desc"})).json()
        assert [t["name"] for t in teams["items"]] == ["south", "north-east", "north"]


async def test_hidden_objects_look_exactly_like_missing_ones(env: Env) -> None:
    async with env.client(env.sign_in_directly("supervisor")) as client:
        hidden = await client.get(f"/api/v1/users/{env.user('stranger').id}")
        missing = await client.get("/api/v1/users/999999")
        visible = await client.get(f"/api/v1/users/{env.user('colleague').id}")
    assert (hidden.status_code, missing.status_code, visible.status_code) == (404, 404, 403)
    assert hidden.json()["error_id"] == missing.json()["error_id"] == "not_found"
    assert hidden.json()["message"].replace(str(env.user("stranger").id), "N") == (
        missing.json()["message"].replace("999999", "N")
    )


async def test_changing_ones_own_password_keeps_the_session_it_came_from(env: Env) -> None:
    current = env.sign_in_directly("admin")
    elsewhere = env.sign_in_directly("admin")
    new_password = "meadow-copper-sailing-6402"
    async with env.client(current) as client:
        changed = await client.patch(
            f"/api/v1/users/{env.user('admin').id}", json={"password": new_password}
        )
        assert changed.status_code == 200
        assert (await client.get("/api/v1/teams")).status_code == 200
    async with env.client(elsewhere) as client:
        assert (await client.get("/api/v1/teams")).status_code == 401
    async with env.client() as client:
        assert (await sign_in(client, "admin", new_password)).status_code == 200


def _enrol(env: Env, username: str) -> None:
    mfa = env.services.mfa
    user = env.user(username)
    enrolment = mfa.begin_enrolment(user.id, username)
    assert mfa.confirm_enrolment(user.id, env.totp(enrolment.secret)) is not None
    assert mfa.status(user.id).enrolled


async def test_an_admin_resets_a_lost_second_factor_and_the_users_sessions_end(env: Env) -> None:
    async with admin_client(env) as client:
        # A role whose grants the admin holds (the granting rule: see the next test).
        created = await client.post(
            "/api/v1/users",
            json={"username": "analyst", "role_id": role_id(env, "quality")},
        )
        assert created.status_code == 201
    _enrol(env, "analyst")
    colleague = env.user("analyst")
    theirs = env.sign_in_directly("analyst")
    async with admin_client(env) as client:
        reset = await client.post(f"/api/v1/users/{colleague.id}/mfa/reset")
        assert reset.status_code == 200
        assert reset.json() == {"user_id": colleague.id, "had_mfa": True}
        again = await client.post(f"/api/v1/users/{colleague.id}/mfa/reset")
        assert again.json() == {"user_id": colleague.id, "had_mfa": False}
    status = env.services.mfa.status(colleague.id)
    assert not status.enrolled and status.recovery_codes_left == 0
    async with env.client(theirs) as client:
        assert (await client.get("/api/v1/teams")).status_code == 401
    resets = env.audit_details("auth.mfa.disabled")
    assert resets == [
        {"reset_by_admin": True, "had_mfa": True},
        {"reset_by_admin": True, "had_mfa": False},
    ]
    assert env.audit_details("auth.session.ended")[-1]["reason"] == "mfa_changed"


async def test_nobody_resets_the_second_factor_of_someone_holding_more_or_their_own(
    env: Env,
) -> None:
    _enrol(env, "auditor")
    auditor = env.user("auditor")
    admin = env.user("admin")
    async with admin_client(env) as client:
        # Whoever then knows the auditor's password could enrol their own factor and play
        # recordings the admin may not: the same granting rule as for setting a password.
        beyond = await client.post(f"/api/v1/users/{auditor.id}/mfa/reset")
        assert beyond.status_code == 403
        assert beyond.json()["error_id"] == "grant_not_held"
        own = await client.post(f"/api/v1/users/{admin.id}/mfa/reset")
        assert own.status_code == 409
        assert own.json()["error_id"] == "cannot_reset_own_mfa"
    async with env.client(env.sign_in_directly("operator")) as client:
        operator = await client.post(f"/api/v1/users/{env.user('colleague').id}/mfa/reset")
        assert operator.status_code == 404  # outside what an operator may see
    assert env.services.mfa.status(auditor.id).enrolled
    assert env.audit_details("auth.mfa.disabled") == []
    denied = env.audit_details("permission.denied")
    assert any(entry.get("decision") == "grant_not_held" for entry in denied)
