"""The recordings and audit pages in Debian's Chromium: a real sealed recording (written by the
sealed writer, catalogued by the repository: `web.recording_support`) is found by search and
plays to its end once a reason is given; the audit page then shows that play; an operator has
neither page; both pages in both languages, with screenshots at 1366x768 in Japanese.

Every test fails on a console error, an uncaught exception or a CSP violation (`problems`).
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from browser.conftest import NewPage, Problems
from browser.site import Site
from browser.test_languages import check_both_languages
from browser.test_pages import enrol_mfa, sign_in_operator, sign_in_with_password
from callwarden.security.audit import AuditActor, AuditEvent, AuditOutcome

WAIT_MS = 10_000
CALLER = "+81 3 5555 0101"
REASON = "品質確認 チケット 4711"


def sign_in_auditor(new_page: NewPage, site: Site) -> Page:
    page = new_page()
    sign_in_with_password(page, site, "auditor")
    enrol_mfa(page, site)
    expect(page).to_have_url(site.url("/recordings"), timeout=WAIT_MS)  # the auditor's start
    page.wait_for_load_state("load")
    return page


def test_a_recording_is_found_plays_to_its_end_and_is_audited(
    site: Site, new_page: NewPage, screenshots: Path
) -> None:
    world = site.env.recordings
    assert world is not None
    operator = site.env.user("colleague")
    started = site.env.clock.now() - timedelta(minutes=30)
    made = world.make(operator, started, seconds=1.5, caller=CALLER)
    supervisor = site.env.user("supervisor")
    listened = {
        "monitoring_id": "m-1",
        "supervisor_id": supervisor.id,
        "via": "web",
        "started_at": (started + timedelta(seconds=0.5)).isoformat(),
        "ended_at": (started + timedelta(seconds=1.0)).isoformat(),
        "end_cause": "stopped",
        "modes": [{"mode": "listen", "from": (started + timedelta(seconds=0.5)).isoformat()}],
    }
    world.seal_manifest(made, (listened,))
    page = sign_in_auditor(new_page, site)

    page.get_by_label("発信者番号").fill(CALLER)
    page.get_by_role("button", name="検索", exact=True).click()
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    expect(rows.first).to_have_attribute("data-recording-id", made.id)
    expect(rows.first).to_contain_text("colleague")
    expect(rows.first).to_contain_text("0:01")
    rows.first.get_by_role("button", name="開く").click()
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#detail-heading")).to_be_focused()

    # No reason, no play: the page asks for one and nothing is streamed.
    page.get_by_role("button", name="再生", exact=True).click()
    expect(page.locator("#reason-error")).to_be_visible()
    expect(page.get_by_label("再生・ダウンロードの理由")).to_be_focused()
    assert page.locator("#audio").get_attribute("src") is None

    page.get_by_label("再生する音声").select_option("stereo")
    page.get_by_label("再生・ダウンロードの理由").fill(REASON)
    page.get_by_role("button", name="再生", exact=True).click()
    expect(page.locator("#reason-error")).to_be_hidden()
    expect(page.locator("#waveform path.wave-line")).to_have_count(1, timeout=WAIT_MS)
    audio = page.locator("#audio")
    expect(audio).to_have_attribute("data-ended", "true", timeout=WAIT_MS)  # its "ended" event
    assert audio.evaluate("(element) => element.ended") is True
    assert abs(audio.evaluate("(element) => element.duration") - 1.5) < 0.05

    # The integrity check: the manifest's signature and digests; its monitoring is marked.
    page.get_by_role("button", name="改ざんがないか検証").click()
    expect(page.locator("#verify-status")).to_have_attribute("data-state", "verified")
    expect(page.locator("#verify-checks li")).to_have_count(7)
    expect(page.locator("#verify-digest")).to_have_text(world.file_sha256(made))
    monitor = page.locator("#waveform rect.wave-monitor")
    expect(monitor).to_have_count(1)
    expect(monitor.locator("title")).to_have_text("モニタリング：supervisor")
    x = float(monitor.get_attribute("x") or "nan")
    assert abs(x - 1000 / 3) < 1  # 0.5 s of 1.5 s
    page.screenshot(path=str(screenshots / "recording-played.png"))

    # A tag and a note, kept by the API.
    page.get_by_label("追加するタグ").fill("quality")
    page.get_by_role("button", name="タグを追加").click()
    expect(page.locator("#tag-list")).to_contain_text("quality")
    page.get_by_label("新しいメモ").fill("挨拶が丁寧")
    page.get_by_role("button", name="メモを追加").click()
    expect(page.locator("#note-list")).to_contain_text("挨拶が丁寧")

    # Who listened: the audit page shows this play, with its reason.
    page.get_by_role("link", name="この通話を聞いた人（監査ログ）").click()
    expect(page).to_have_url(site.url(f"/audit?listened={made.id}&call={made.call_id}"))
    played = page.locator('#entries tbody tr[data-action="recording.play"]')
    expect(played).to_have_count(1, timeout=WAIT_MS)
    expect(played).to_contain_text(REASON)
    expect(played).to_contain_text("auditor")
    verified = page.locator('#entries tbody tr[data-action="recording.verify"]')
    expect(verified).to_have_count(0)  # "who listened" shows plays and monitoring only
    expect(page.locator("#chain-status")).to_have_attribute("data-state", "intact")

    # The trail filtered by action prefix shows it too.
    page.goto(site.url("/audit"))
    page.get_by_label("操作（前方一致）").fill("recording.play")
    page.get_by_role("button", name="絞り込む").click()
    expect(page.locator('#entries tbody tr[data-action="recording.play"]')).to_have_count(
        1, timeout=WAIT_MS
    )


def test_an_operator_has_no_recordings_page(
    site: Site, new_page: NewPage, problems: Problems
) -> None:
    page = sign_in_operator(new_page, site)
    assert page.locator('a[href="/recordings"]').count() == 0
    assert page.locator('a[href="/audit"]').count() == 0
    for path in ("/recordings", "/audit"):
        response = page.goto(site.url(path))
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("heading", name="ページを表示できません")).to_be_visible()
        assert page.locator("#search").count() == 0
    expected = "console error: Failed to load resource: the server responded with a status of 403"
    problems.found[:] = [found for found in problems.found if not found.startswith(expected)]
    assert page.request.get(site.url("/api/v1/recordings")).status == 403


def test_the_recordings_and_audit_pages_in_both_languages(
    site: Site, new_page: NewPage, screenshots: Path
) -> None:
    page = sign_in_auditor(new_page, site)
    page.get_by_role("button", name="検索", exact=True).click()
    expect(page.locator("#results tbody tr")).to_have_count(2, timeout=WAIT_MS)
    page.locator("#results tbody tr").first.get_by_role("button", name="開く").click()
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#d-status")).to_have_text("完了")
    check_both_languages(page, "recordings", screenshots)

    # Sign-in entries: a set that reading the trail does not grow (each read is audited).
    page.goto(site.url("/audit?action_prefix=auth."))
    expect(page.get_by_label("操作（前方一致）")).to_have_value("auth.")
    expect(page.locator("#chain-status")).to_have_attribute("data-state", "intact", timeout=WAIT_MS)
    signed_in = page.locator('#entries tbody tr[data-action="auth.login.succeeded"]')
    expect(signed_in.first).to_contain_text("auditor", timeout=WAIT_MS)
    check_both_languages(page, "audit", screenshots)


def test_search_by_tag_and_download_from_the_keyboard(
    site: Site, new_page: NewPage, tmp_path: Path
) -> None:
    """`keeper` (a role that may download its team's recordings) works the page from the
    keyboard: filters, opens, gives a reason and downloads a watermarked WAV."""
    world = site.env.recordings
    assert world is not None
    made = world.make(site.env.user("operator"), site.env.clock.now(), seconds=1.0)
    page = new_page()
    sign_in_with_password(page, site, "keeper", "/recordings")
    enrol_mfa(page, site)
    expect(page).to_have_url(site.url("/recordings"), timeout=WAIT_MS)
    page.wait_for_load_state("load")

    # Tag it through the page, then find it by that tag alone.
    page.get_by_role("button", name="検索", exact=True).click()
    row = page.locator(f'#results tbody tr[data-recording-id="{made.id}"]')
    row.get_by_role("button", name="開く").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#detail-heading")).to_be_focused()
    page.get_by_label("追加するタグ").fill("escalation")
    page.keyboard.press("Enter")
    expect(page.locator("#tag-list")).to_contain_text("escalation")
    tags = page.get_by_role("textbox", name="タグ", exact=True)
    tags.fill("escalation")
    tags.press("Enter")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    expect(rows.first).to_have_attribute("data-recording-id", made.id)
    expect(page).to_have_url(site.url("/recordings?tag=escalation&open=" + made.id))

    # Times are the center's (Asia/Tokyo): from 17:45 there is only this one (09:00 UTC);
    # the others started at 08:00 UTC (17:00 in Tokyo).
    tags.fill("")
    page.get_by_label("開始日時（から）").fill("2026-12-01T17:45")
    page.get_by_role("button", name="検索", exact=True).click()
    expect(page).to_have_url(re.compile(r"since=2026-12-01T08%3A45%3A00\.000Z"))
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    expect(rows.first).to_have_attribute("data-recording-id", made.id)
    page.get_by_label("開始日時（から）").fill("2026-12-01T16:45")
    page.get_by_role("button", name="検索", exact=True).click()
    expect(rows).to_have_count(3, timeout=WAIT_MS)

    # A download asks for the reason too, then saves a WAV watermarked with who and why.
    page.get_by_role("button", name="ダウンロード").click()
    expect(page.locator("#reason-error")).to_be_visible()
    page.get_by_label("再生・ダウンロードの理由").fill("legal request 88")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="ダウンロード").click()
    saved = tmp_path / "download.wav"
    download_info.value.save_as(saved)
    data = saved.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert b"downloaded by keeper" in data and b"legal request 88" in data


def record_monitoring(site: Site, call_id: str, operator: str, supervisor: str) -> None:
    """A monitoring session's audit entry, as the telephony writes it (this site has none)."""
    watcher = site.env.user(supervisor)
    event = AuditEvent(
        action="monitoring.listen",
        actor=AuditActor.user(watcher.id, watcher.username),
        outcome=AuditOutcome.SUCCESS,
        object_kind="call",
        object_id=call_id,
        reason="coaching",
        details={"operator_id": int(site.env.user(operator).id), "event": "started"},
    )
    asyncio.run_coroutine_threadsafe(site.env.services.audit.record(event), site.loop).result(10)


def test_the_audit_shortcuts_and_paging(site: Site, new_page: NewPage) -> None:
    record_monitoring(site, "call-watched-1", "colleague", "supervisor")
    record_monitoring(site, "call-other-2", "operator", "deputy")
    page = sign_in_auditor(new_page, site)
    for _ in range(55):  # each read of the trail is itself audited: `audit.read` entries
        assert page.request.get(site.url("/api/v1/audit/entries?limit=1")).ok

    site.env.clock.advance(seconds=1)  # time goes on: the page's own reads come later
    page.goto(site.url("/audit?action_prefix=audit.read"))
    rows = page.locator("#entries tbody tr")
    expect(rows).to_have_count(50, timeout=WAIT_MS)
    first_page = [int(text) for text in rows.locator("th").all_inner_texts()]
    site.env.clock.advance(seconds=1)
    expect(page.get_by_role("button", name="前のページ")).to_be_disabled()
    page.get_by_role("button", name="次のページ").click()
    expect(page.locator("#entries-status")).to_contain_text("51〜")
    second_page = [int(text) for text in rows.locator("th").all_inner_texts()]
    # The second page goes on where the first ended, though reading added newer entries.
    assert second_page and max(second_page) < min(first_page)
    assert second_page == sorted(second_page, reverse=True)
    expect(page.get_by_role("button", name="次のページ")).to_be_disabled()  # 55 + the reads
    page.get_by_role("button", name="前のページ").click()
    expect(page.locator("#entries-status")).to_contain_text("1〜50")
    assert int(rows.first.locator("th").inner_text()) > max(first_page)  # the newest now

    # Who listened to this call: the monitoring of the call id given.
    page.get_by_label("対象の識別子").fill("call-watched-1")
    page.get_by_role("button", name="この通話を聞いた人").click()
    listened = page.locator('#entries tbody tr[data-action="monitoring.listen"]')
    expect(listened).to_have_count(1, timeout=WAIT_MS)
    expect(listened).to_contain_text("supervisor")
    expect(rows).to_have_count(1)

    # Who monitored this operator: the entries whose details name them.
    page.get_by_label("実行者").select_option(label="operator")
    page.get_by_role("button", name="このオペレーターをモニタリングした人").click()
    expect(listened).to_have_count(1, timeout=WAIT_MS)
    expect(listened).to_contain_text("deputy")
    expect(listened).to_contain_text("call-other-2")
