"""The admin console's pages over HTTP (no browser): only whoever holds the permission of the
page's API opens it and sees its link, the same strict page rules as every page, every control
labelled, both languages. The browser tests (tests/browser/test_admin.py) make the changes in
Chromium."""

from __future__ import annotations

import dataclasses
import re

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import RoleId, TeamId, UserId
from callwarden.domain.models import (
    QueueOverflow,
    QueueStrategy,
    Team,
    User,
)
from callwarden.domain.permissions import Permission
from callwarden.web.app import create_app
from callwarden.web.pages.admin import queue_context
from callwarden.web.pages.render import TEMPLATE_DIR
from web.support import Env
from web.test_pages import get

STATIC_JS = TEMPLATE_DIR.parent / "static" / "js"
ADMIN_PAGES = (
    ("/admin/users", "admin_users", 'id="users"'),
    ("/admin/roles", "admin_roles", 'id="roles"'),
    ("/admin/teams", "admin_teams", 'id="teams"'),
)
CONTROL = r'<(?:input|select|textarea) id="([^"]+)"'
TYPED_CONTROL = r'<(?:input|select|textarea) (?:type="[a-z]+" )?id="([^"]+)"'


async def refused_to(env: Env, path: str, *usernames: str) -> list[str]:
    """`path` answers 403 to each of `usernames`; the bodies of the refusals."""
    bodies = []
    for username in usernames:
        refused = await get(env, username, path)
        assert refused.status_code == 403, (username, path)
        bodies.append(refused.text)
    return bodies


async def opened_by(env: Env, username: str, path: str) -> str:
    """`path` as `username` opens it (200), its own link marked current."""
    response = await get(env, username, path)
    assert response.status_code == 200, path
    page = response.text
    assert f'<a href="{path}" aria-current="page">' in page
    return page


def labelled_controls(page: str, pattern: str = CONTROL, *unlabelled: str) -> set[str]:
    """The page's controls (ids), each with its `<label for>` (`unlabelled`: inside theirs)."""
    controls = set(re.findall(pattern, page))
    labelled = set(re.findall(r'<label for="([^"]+)"', page)) | set(unlabelled)
    assert controls <= labelled, controls - labelled
    return controls


async def test_operators_supervisors_and_auditors_have_no_admin_page(env: Env) -> None:
    for username in ("operator", "supervisor", "auditor"):
        page = (await get(env, username, "/account/sessions")).text
        assert 'href="/account/sessions"' in page and 'href="/admin/' not in page, username
    for username in ("operator", "supervisor", "auditor", "exporter", "keeper"):
        for path, _module, marker in ADMIN_PAGES:
            refused = await get(env, username, path)
            assert refused.status_code == 403, (username, path)
            assert refused.headers["x-callwarden-error"] == "forbidden"
            assert marker not in refused.text


async def test_without_a_session_an_admin_page_asks_for_sign_in(env: Env) -> None:
    response = await get(env, None, "/admin/users", accept="text/html")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Fadmin%2Fusers"


async def test_an_admin_opens_every_admin_page_and_sees_its_links(env: Env) -> None:
    for path, _module, marker in ADMIN_PAGES:
        response = await get(env, "admin", path)
        assert response.status_code == 200, path
        page = response.text
        assert marker in page
        for other, _, _ in ADMIN_PAGES:
            assert f'href="{other}"' in page
        assert f'<a href="{path}" aria-current="page">' in page


async def test_the_users_page_offers_every_role_and_team(env: Env) -> None:
    page = (await get(env, "admin", "/admin/users")).text
    for select_id in ("u-role", "c-role", "d-role"):
        block = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
        assert block is not None
        roles = re.findall(r'<option value="\d+" translate="no">([^<]+)</option>', block.group(1))
        assert set(roles) == {role.name for role in env.snapshot.roles}
    block = re.search(r'<select id="c-team"[^>]*>(.*?)</select>', page, re.S)
    assert block is not None
    assert {"north", "north-east", "south"} <= set(re.findall(r">([a-z-]+)</option>", block[1]))
    controls = ("reset-mfa", "toggle-enabled", "sip-form", "password-form", "role-form")
    for control in (*controls, "details-form"):
        assert f'id="{control}"' in page


async def test_the_roles_page_offers_each_permission_at_its_scopes(env: Env) -> None:
    page = (await get(env, "admin", "/admin/roles")).text
    rows = re.findall(r'<select id="p-\d+" name="grant" data-permission="([a-z_.]+)">', page)
    assert rows == [permission.value for permission in Permission]
    assert '<option value="users.manage:all">' in page  # a global permission: all only
    assert '<option value="users.manage:team">' not in page
    assert '<option value="recordings.play:team">' in page
    assert '<option value="agent_state.change_own:all">' not in page  # own only


async def test_a_custom_role_can_hold_the_admin_page_alone(env: Env) -> None:
    """A page follows its permission, not a role name: a custom role with `teams.manage` only
    opens the teams page and no other admin page."""
    admin = env.sign_in_directly("admin")
    async with env.client(admin) as client:
        role = await client.post(
            "/api/v1/roles", json={"name": "team_keeper", "grants": ["teams.manage:all"]}
        )
        assert role.status_code == 201, role.text
        user = await client.post(
            "/api/v1/users",
            json={"username": "planner", "role_id": role.json()["id"]},
        )
        assert user.status_code == 201, user.text
    assert (await get(env, "planner", "/admin/teams")).status_code == 200
    teams = (await get(env, "planner", "/admin/teams")).text
    assert 'href="/admin/teams"' in teams and 'href="/admin/users"' not in teams
    assert (await get(env, "planner", "/admin/users")).status_code == 403
    assert (await get(env, "planner", "/admin/roles")).status_code == 403


async def test_the_admin_pages_have_no_inline_code_and_their_modules_exist(env: Env) -> None:
    for path, module, _marker in ADMIN_PAGES:
        response = await get(env, "admin", path)
        body = response.text
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        for tag in re.findall(r"<script[^>]*>", body):
            assert 'type="module" src="/static/' in tag or 'type="application/json"' in tag
        assert "<style" not in body
        assert not re.search(r"\s(style|on[a-z]+)=", body)
        assert f'src="/static/js/{module}.js"' in body
        served = await get(env, "admin", f"/static/js/{module}.js")
        assert served.status_code == 200
        imports = re.findall(r'from "\./([a-z_]+\.js)"', served.text)
        assert "admin_common.js" in imports
        assert all((STATIC_JS / name).is_file() for name in imports)


async def test_every_control_is_labelled_and_every_table_captioned(env: Env) -> None:
    for path, _module, _marker in ADMIN_PAGES:
        page = (await get(env, "admin", path)).text
        controls = set(re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page))
        labelled = set(re.findall(r'<label (?:class="[^"]+" )?for="([^"]+)"', page))
        assert controls and controls <= labelled, (path, controls - labelled)
        tables = re.findall(r"<table[^>]*>", page)
        assert tables and len(re.findall(r"<table[^>]*>\s*<caption>", page)) == len(tables)


async def test_the_admin_pages_are_in_the_chosen_language(env: Env) -> None:
    session = env.sign_in_directly("admin")
    async with env.client(session) as client:
        client.cookies.set("callwarden_lang", "en")
        users = (await client.get("/admin/users")).text
        roles = (await client.get("/admin/roles")).text
        teams = (await client.get("/admin/teams")).text
    assert "Manage users" in users and "Reset two-factor authentication" in users
    assert "Roles and permissions" in roles and "Not held" in roles
    assert "Manage teams" in teams and "Parent team" in teams
    japanese = (await get(env, "admin", "/admin/users")).text
    assert "ユーザー管理" in japanese and "二要素認証をリセット" in japanese


async def test_the_retention_page_follows_retention_manage(env: Env) -> None:
    """No built-in role manages retention (admins neither); the `records` custom role does."""
    refusals = await refused_to(
        env, "/admin/retention", "operator", "supervisor", "auditor", "admin"
    )
    assert all('id="policies"' not in refused for refused in refusals)
    page = await opened_by(env, "keeper", "/admin/retention")
    assert 'id="policies"' in page
    assert 'href="/admin/users"' not in page
    assert 'src="/static/js/admin_retention.js"' in page
    assert not re.search(r"\s(style|on[a-z]+)=", page)
    assert labelled_controls(page) == {"r-scope", "r-team", "r-queue", "r-days"}
    assert re.search(r"<table[^>]*>\s*<caption>", page)
    served = await get(env, "keeper", "/static/js/admin_retention.js")
    assert served.status_code == 200
    assert 'id="purge-start"' in page and 'id="purge-figures"' in page


async def test_the_legal_holds_page_follows_recordings_legal_hold(env: Env) -> None:
    """No built-in role holds recordings (admins neither); the `records` custom role does."""
    refusals = await refused_to(env, "/admin/holds", "operator", "supervisor", "auditor", "admin")
    assert all('id="holds"' not in refused for refused in refusals)
    page = await opened_by(env, "keeper", "/admin/holds")
    assert '<script type="module" src="/static/js/admin_holds.js">' in page
    assert not re.search(r"\s(style|on[a-z]+)=", page)
    controls = labelled_controls(page, TYPED_CONTROL, "show-released")
    assert {"p-kind", "p-text", "p-user", "p-queue", "p-reason", "r-reason"} <= controls
    for kind in ("recording", "call", "user", "queue"):
        assert f'<option value="{kind}">' in page
    assert page.count('<option value="') >= 4 + len(env.snapshot.users)
    for username in ("operator", "admin"):  # the link follows the permission
        assert 'href="/admin/holds"' not in (await get(env, username, "/account/sessions")).text


async def test_the_queues_page_is_for_queues_manage_and_offers_every_choice(env: Env) -> None:
    await refused_to(env, "/admin/queues", "operator", "supervisor", "auditor", "keeper")
    page = await opened_by(env, "admin", "/admin/queues")
    assert '<script type="module" src="/static/js/admin_queues.js">' in page
    for strategy in QueueStrategy:
        assert f'<option value="{strategy.value}">' in page, strategy
    for action in QueueOverflow:
        assert f'<option value="{action.value}">' in page, action
    assert page.count('class="m-member"') == len(env.snapshot.users)
    assert re.search(r"<table[^>]*>\s*<caption>", page)


def test_the_queue_form_names_people_and_teams() -> None:
    north = Team(TeamId(1), "north", "North")
    alice = User(UserId(7), "alice", "Alice A.", RoleId(1), team_id=north.id)
    bob = User(UserId(8), "bob", "", RoleId(1), team_id=north.id)
    context = queue_context(DirectorySnapshot(teams=[north], users=[alice, bob]))
    assert context["users"] == [("7", "Alice A."), ("8", "bob")]
    assert context["teams"] == [("1", "North")]
    assert context["strategies"] == [strategy.value for strategy in QueueStrategy]
    assert context["recording_policies"] == ["all", "none", "on_demand"]
    assert context["overflow_actions"] == ["queue", "user", "voicemail", "hangup"]


async def test_the_network_page_follows_settings_manage(env: Env) -> None:
    await refused_to(env, "/admin/network", "operator", "supervisor", "auditor", "keeper")
    page = await opened_by(env, "admin", "/admin/network")
    assert '<script type="module" src="/static/js/admin_network.js">' in page
    assert not re.search(r"\s(style|on[a-z]+)=", page)
    controls = labelled_controls(page)
    assert controls == {"n-network", "n-kind", "n-role", "n-team", "n-description"}
    assert page.count('<option value="') == 2 + len(env.snapshot.roles) + len(env.snapshot.teams)


async def test_the_trunks_page_follows_trunks_manage(env: Env) -> None:
    await refused_to(env, "/admin/trunks", "operator", "supervisor", "auditor", "keeper")
    page = await opened_by(env, "admin", "/admin/trunks")
    assert '<script type="module" src="/static/js/admin_trunks.js">' in page
    assert not re.search(r"\s(style|on[a-z]+)=", page)
    controls = labelled_controls(page, TYPED_CONTROL, "f-register", "f-enabled")
    assert {"f-host", "f-port", "f-transport", "f-password", "f-inbound", "f-outbound"} <= controls
    for transport in ("udp", "tcp", "tls"):
        assert f'<option value="{transport}" translate="no">' in page


async def test_the_network_page_shows_the_configured_sip_trusted_networks(env: Env) -> None:
    assert "設定されていません。" in (await get(env, "admin", "/admin/network")).text
    settings = dataclasses.replace(
        env.services.settings, sip_trusted_networks=("10.20.0.0/16", "2001:db8::/32")
    )
    env.app = create_app(dataclasses.replace(env.services, settings=settings))
    page = (await get(env, "admin", "/admin/network")).text
    assert '<li translate="no">10.20.0.0/16</li>' in page
    assert '<li translate="no">2001:db8::/32</li>' in page
