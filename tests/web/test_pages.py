"""The page routes over HTTP (no browser): headers, who sees which page and link, the sign-in
redirect, static files, the QR code, escaping, and the catalogs. The browser tests
(tests/browser) drive the same pages in Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from callwarden.acd.agent import DEFAULT_BREAK_REASONS, MISSED_REASON, AgentState
from callwarden.web.pages.i18n import CATALOG_DIR, CatalogError, Catalogs, format_datetime
from callwarden.web.pages.render import TEMPLATE_DIR
from callwarden.web.pages.routing import safe_next
from web.support import T0, Env

HTML = {"accept": "text/html,application/xhtml+xml"}
STATIC_JS = Path(TEMPLATE_DIR).parent / "static" / "js"


async def get(env: Env, username: str | None, path: str, **headers: str) -> httpx.Response:
    session = None if username is None else env.sign_in_directly(username)
    async with env.client(session) as client:
        return await client.get(path, headers=headers)


async def test_a_page_carries_a_strict_content_security_policy(env: Env) -> None:
    response = await get(env, "operator", "/desk")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self' wss://cc.example.test"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    body = response.text
    # No inline script or style: scripts are modules from /static, the only inline <script>
    # blocks are JSON data, and no element has a style or an on* attribute.
    for tag in re.findall(r"<script[^>]*>", body):
        assert 'type="module" src="/static/' in tag or 'type="application/json"' in tag, tag
    assert "<style" not in body
    assert not re.search(r"\s(style|on[a-z]+)=", body)


async def test_without_a_session_a_browser_is_sent_to_sign_in_and_back(env: Env) -> None:
    response = await get(env, None, "/wallboard", **HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=%2Fwallboard"
    assert response.headers["x-callwarden-error"] == "unauthenticated"
    page = await get(env, None, "/sign-in?next=/wallboard")
    assert 'data-next="/wallboard"' in page.text
    assert 'data-step="password"' in page.text
    # Any other client gets the 401 itself (the sign-in page as its body).
    plain = await get(env, None, "/wallboard")
    assert plain.status_code == 401
    assert 'id="password-form"' in plain.text


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/desk", "/desk"),
        ("//evil.example/desk", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/desk\r\nSet-Cookie: x=1", "/"),
        (None, "/"),
    ],
)
def test_sign_in_returns_only_to_a_path_of_this_site(asked: str | None, kept: str) -> None:
    assert safe_next(asked) == kept


async def test_a_session_waiting_for_mfa_lands_on_its_mfa_step(env: Env) -> None:
    session = env.sign_in_directly("supervisor", mfa_complete=False)
    async with env.client(session) as client:
        page = await client.get("/sign-in")
        refused = await client.get("/wallboard", headers=HTML)
    assert 'data-step="enrol"' in page.text
    assert refused.status_code == 303
    assert refused.headers["x-callwarden-error"] == "mfa_required"


async def test_a_signed_in_browser_goes_to_its_start_page(env: Env) -> None:
    assert (await get(env, "operator", "/")).headers["location"] == "/desk"
    assert (await get(env, "supervisor", "/")).headers["location"] == "/wallboard"
    assert (await get(env, "admin", "/")).headers["location"] == "/wallboard"
    assert (await get(env, "auditor", "/")).headers["location"] == "/recordings"
    assert (await get(env, "operator", "/sign-in")).headers["location"] == "/"


async def test_the_navigation_shows_only_the_pages_the_caller_may_open(env: Env) -> None:
    operator = (await get(env, "operator", "/desk")).text
    assert 'href="/desk"' in operator and 'href="/account/sessions"' in operator
    assert 'href="/wallboard"' not in operator
    refused = await get(env, "operator", "/wallboard")
    assert refused.status_code == 403
    assert refused.headers["x-callwarden-error"] == "forbidden"
    assert 'id="agents"' not in refused.text
    auditor = await get(env, "auditor", "/account/sessions")
    assert 'href="/desk"' not in auditor.text and 'href="/wallboard"' not in auditor.text
    assert (await get(env, "auditor", "/desk")).status_code == 403


async def test_the_wallboard_lists_the_watched_team_only(env: Env) -> None:
    page = (await get(env, "supervisor", "/wallboard")).text
    names = re.findall(r'<th scope="row" translate="no" id="name-\d+">([^<]+)</th>', page)
    assert "operator" in names and "colleague" in names
    assert "stranger" not in names  # team south
    assert "admin" not in names and "auditor" not in names  # take no calls


async def test_user_data_is_escaped(env: Env) -> None:
    async with env.client(env.sign_in_directly("admin")) as client:
        response = await client.patch(
            f"/api/v1/users/{env.user('colleague').id}",
            json={"display_name": "<script>alert(1)</script>"},
        )
    assert response.status_code == 200, response.text
    page = (await get(env, "supervisor", "/wallboard")).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # In the JSON data block too: nothing there can close the block.
    block = re.search(r'<script type="application/json" id="board">(.*?)</script>', page, re.S)
    assert block is not None and "<" not in block.group(1)
    assert any(
        row["name"] == "<script>alert(1)</script>" for row in json.loads(block.group(1))["rows"]
    )


async def test_static_files_are_served_from_their_folder_only(env: Env) -> None:
    script = await get(env, None, "/static/js/common.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    for path in (
        "/static/js/missing.js",
        "/static/%2e%2e/pages/i18n.py",
        "/static/..%2fpages%2fi18n.py",
        "/static/../i18n/ja.json",
        "/static/js/common.js%00.css",
        "/static//etc/passwd",
    ):
        response = await get(env, None, path)
        assert response.status_code == 404, path


async def test_the_qr_code_is_drawn_for_a_totp_uri_only(env: Env) -> None:
    session = env.sign_in_directly("supervisor", mfa_complete=False)
    async with env.client(session) as client:
        drawn = await client.post("/sign-in/qr", json={"uri": "otpauth://totp/cw:x?secret=AB"})
        refused = await client.post("/sign-in/qr", json={"uri": "https://evil.example/"})
    assert drawn.status_code == 200
    assert drawn.headers["content-type"] == "image/svg+xml"
    assert drawn.text.startswith("<svg") and "<script" not in drawn.text
    assert refused.status_code == 422
    async with env.client() as anonymous:
        assert (
            await anonymous.post("/sign-in/qr", json={"uri": "otpauth://totp/x"})
        ).status_code == 401


async def test_the_language_cookie_chooses_english(env: Env) -> None:
    session = env.sign_in_directly("operator")
    async with env.client(session) as client:
        japanese = await client.get("/desk")
        client.cookies.set("callwarden_lang", "en", domain="callwarden.test")
        english = await client.get("/desk")
        client.cookies.set("callwarden_lang", "xx", domain="callwarden.test")
        unknown = await client.get("/desk")
    assert '<html lang="ja">' in japanese.text and "受付可能にする" in japanese.text
    assert '<html lang="en">' in english.text and "Become available" in english.text
    assert '<html lang="ja">' in unknown.text


def test_the_catalogs_hold_the_same_keys_and_placeholders(tmp_path: Path) -> None:
    catalogs = Catalogs.load()
    assert set(catalogs.get("ja").messages) == set(catalogs.get("en").messages)
    (tmp_path / "ja.json").write_text(json.dumps({"a": "{name} さん", "b": "x"}))
    (tmp_path / "en.json").write_text(json.dumps({"a": "Mr {who}", "b": "x"}))
    with pytest.raises(CatalogError, match="placeholders differ"):
        Catalogs.load(tmp_path)
    (tmp_path / "en.json").write_text(json.dumps({"a": "{name}"}))
    with pytest.raises(CatalogError, match="differ in keys"):
        Catalogs.load(tmp_path)


def test_every_key_the_templates_and_modules_use_is_in_the_catalog() -> None:
    messages = json.loads((CATALOG_DIR / "ja.json").read_text())
    used: set[str] = set()
    for template in Path(TEMPLATE_DIR).glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]*[a-z_])["']""", template.read_text()))
    for module in STATIC_JS.glob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]*[a-z_])["']""", module.read_text()))
    assert used, "no keys found: the pattern is wrong"
    assert sorted(used - set(messages)) == []
    # Keys made from a value: every agent state, every default break reason, each call phase.
    made = {f"state.{state.value}" for state in AgentState}
    made |= {f"break.{reason}" for reason in (*DEFAULT_BREAK_REASONS, MISSED_REASON)}
    made |= {f"desk.phase_{phase}" for phase in ("ringing", "talking", "wrap_up")}
    assert sorted(made - set(messages)) == []


def test_dates_are_written_per_language_in_the_center_time_zone() -> None:
    assert format_datetime(T0, "ja", "Asia/Tokyo") == "2026年12月1日 18:00"
    assert format_datetime(T0, "en", "Asia/Tokyo") == "1 Dec 2026, 18:00"
    assert format_datetime(T0, "en", "UTC") == "1 Dec 2026, 09:00"
