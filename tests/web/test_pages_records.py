"""The recordings and audit pages over HTTP (no browser): who may open them and sees their
links, what their filters offer (only what the caller may see), which actions their
permissions show, and the same strict page rules as every page. The browser tests
(tests/browser/test_records.py) search, play and audit in Chromium."""

from __future__ import annotations

import re

from callwarden.web.pages.render import TEMPLATE_DIR
from web.support import Env
from web.test_pages import get

STATIC_JS = TEMPLATE_DIR.parent / "static" / "js"


def options(page: str, select_id: str) -> list[str]:
    block = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    assert block is not None, select_id
    return re.findall(r'<option value="\d+" translate="no">([^<]+)</option>', block.group(1))


async def test_an_operator_has_no_recordings_or_audit_page(env: Env) -> None:
    desk = (await get(env, "operator", "/desk")).text
    assert 'href="/recordings"' not in desk and 'href="/audit"' not in desk
    for path in ("/recordings", "/audit"):
        refused = await get(env, "operator", path)
        assert refused.status_code == 403, path
        assert refused.headers["x-callwarden-error"] == "forbidden"
        assert 'id="search"' not in refused.text and 'id="entries"' not in refused.text


async def test_a_supervisor_searches_the_supervised_team_only(env: Env) -> None:
    response = await get(env, "supervisor", "/recordings")
    assert response.status_code == 200
    page = response.text
    assert 'href="/recordings"' in page and 'href="/audit"' not in page
    assert set(options(page, "f-team")) == {"north", "north-east"}
    people = options(page, "f-operator")
    assert "operator" in people and "colleague" in people and "stranger" not in people
    assert 'id="f-number"' in page  # numbers.view for the team
    assert 'id="download"' not in page  # no recordings.download
    assert 'id="who-listened"' not in page  # no audit.view
    assert (await get(env, "supervisor", "/audit")).status_code == 403


async def test_an_auditor_has_both_pages_and_no_export(env: Env) -> None:
    recordings = (await get(env, "auditor", "/recordings")).text
    assert 'href="/recordings"' in recordings and 'href="/audit"' in recordings
    assert "stranger" in options(recordings, "f-operator")  # recordings.play for all
    assert 'id="who-listened"' in recordings
    assert 'id="verify"' in recordings  # POST /api/v1/recordings/{id}/verify
    audit = await get(env, "auditor", "/audit")
    assert audit.status_code == 200
    assert 'id="verify-chain"' in audit.text and 'id="entries"' in audit.text
    assert 'id="export"' not in audit.text  # audit.export is held by no built-in role


async def test_export_and_download_show_for_those_who_hold_them(env: Env) -> None:
    exporter = await get(env, "exporter", "/audit")
    assert exporter.status_code == 200
    assert 'id="export" class="button secondary" href="/api/v1/audit/export"' in exporter.text
    assert (await get(env, "exporter", "/recordings")).status_code == 403
    keeper = (await get(env, "keeper", "/recordings")).text
    assert 'id="download"' in keeper
    assert 'href="/audit"' not in keeper


async def test_an_admin_without_audit_view_is_refused_the_audit_page(env: Env) -> None:
    assert (await get(env, "admin", "/audit")).status_code == 403
    assert (await get(env, "admin", "/recordings")).status_code == 403


async def test_the_new_pages_have_no_inline_code_and_their_modules_exist(env: Env) -> None:
    for username, path, module in (
        ("auditor", "/recordings", "recordings"),
        ("auditor", "/audit", "audit"),
    ):
        response = await get(env, username, path)
        body = response.text
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        for tag in re.findall(r"<script[^>]*>", body):
            assert 'type="module" src="/static/' in tag or 'type="application/json"' in tag
        assert "<style" not in body
        assert not re.search(r"\s(style|on[a-z]+)=", body)
        assert f'src="/static/js/{module}.js"' in body
        served = await get(env, username, f"/static/js/{module}.js")
        assert served.status_code == 200
        imports = re.findall(r'from "\./([a-z_]+\.js)"', served.text)
        assert imports and all((STATIC_JS / name).is_file() for name in imports)


async def test_every_label_has_its_control(env: Env) -> None:
    for path in ("/recordings", "/audit"):
        page = (await get(env, "auditor", path)).text
        controls = set(re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page))
        labelled = set(re.findall(r'<label for="([^"]+)"', page))
        assert controls and controls <= labelled, (path, controls - labelled)
        assert re.findall(r"<table[^>]*>\s*<caption>", page)


async def test_the_pages_are_in_the_chosen_language(env: Env) -> None:
    session = env.sign_in_directly("auditor")
    async with env.client(session) as client:
        client.cookies.set("callwarden_lang", "en")
        english = (await client.get("/recordings")).text
        audit = (await client.get("/audit")).text
    assert "Find and play recordings" in english and "Reason for playing" in english
    assert "Tamper check (hash chain)" in audit
    japanese = (await get(env, "auditor", "/recordings")).text
    assert "録音の検索と再生" in japanese
