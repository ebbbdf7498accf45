"""The admin console in Debian's Chromium: an admin creates a user, resets their MFA (after the
user set it up), disables them and the list shows it; the granting rule's refusal is shown
with the grants it names; a custom role's grants and a team are changed; an operator sees no
admin link and the URLs answer 403; the admin pages in both languages (screenshots in
build/screenshots/); a queue changed, created and deleted through its page and read back over the
API; a legal hold placed and released and a purge started by the `records` role.

Every test fails on a console error, an uncaught exception or a CSP violation (`problems`),
except the failed loads of the refusals the test asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from browser.conftest import NewPage, Problems
from browser.site import Site
from browser.test_languages import check_both_languages
from browser.test_pages import enrol_mfa, sign_in_operator, sign_in_with_password

WAIT_MS = 10_000
REFUSED_LOAD = "console error: Failed to load resource: the server responded with a status of"


def sign_in_admin(new_page: NewPage, site: Site) -> Page:
    page = new_page()
    sign_in_with_password(page, site, "admin")
    enrol_mfa(page, site)
    expect(page).to_have_url(site.url("/wallboard"), timeout=WAIT_MS)  # the admin's start
    return page


def open_admin_page(page: Page, site: Site, path: str) -> None:
    page.goto(site.url(path))
    expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)


def admin_on(new_page: NewPage, site: Site, path: str) -> Page:
    """A page of the admin, signed in, on the admin page `path` once it has loaded."""
    page = sign_in_admin(new_page, site)
    open_admin_page(page, site, path)
    return page


def row_of(page: Page, table: str, name: str) -> Locator:
    header = page.get_by_role("rowheader", name=name, exact=True)
    return page.locator(f"#{table} tbody tr", has=header)


def forget_refusals(problems: Problems, *statuses: int) -> None:
    """The failed loads Chromium reports for the refusals the test asked for, and no other."""
    expected = tuple(f"{REFUSED_LOAD} {status}" for status in statuses)
    refused = [found for found in problems.found if found.startswith(expected)]
    assert refused, statuses
    problems.found[:] = [found for found in problems.found if found not in refused]


def create_user(page: Page) -> None:
    page.locator("#c-username").fill("newbie")
    page.locator("#c-display").fill("新人 花子")
    page.locator("#c-role").select_option(label="quality")
    page.locator("#c-team").select_option(label="north")
    page.locator("#c-extension").fill("3001")
    page.locator("#c-password").fill("lantern-quartz-meadow-1987")
    page.locator("#c-sip").fill("sip-secret-harbour-77")
    page.get_by_role("button", name="作成", exact=True).click()
    expect(page.locator("#create-status")).to_have_text("newbie を作成しました。", timeout=WAIT_MS)


def test_an_admin_creates_resets_the_mfa_of_and_disables_a_user(
    site: Site, new_page: NewPage, problems: Problems
) -> None:
    page = sign_in_admin(new_page, site)
    expect(page.get_by_role("link", name="ユーザー管理")).to_be_visible()
    page.get_by_role("link", name="ユーザー管理").click()
    expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)
    expect(row_of(page, "users", "operator")).to_have_count(1)
    create_user(page)
    newbie = row_of(page, "users", "newbie")
    expect(newbie).to_contain_text("quality")
    expect(newbie).to_contain_text("3001")
    expect(newbie.locator(".user-status")).to_have_text("有効")

    # The new user signs in and sets up MFA, so the reset has something to remove.
    user_page = new_page()
    sign_in_with_password(user_page, site, "newbie")
    enrol_mfa(user_page, site)
    expect(user_page).to_have_url(site.url("/account/sessions"), timeout=WAIT_MS)

    newbie.get_by_role("button", name="管理").click()
    status = page.locator("#d-status")
    expect(page.locator("#d-display")).to_be_focused()
    page.locator("#d-team").select_option(label="south")
    page.locator("#d-extension").fill("3002")
    page.get_by_role("button", name="表示名・チーム・内線を保存").click()
    expect(status).to_have_text("newbie の表示名・チーム・内線を保存しました。", timeout=WAIT_MS)
    expect(newbie).to_contain_text("south")
    expect(newbie).to_contain_text("3002")
    page.get_by_role("button", name="二要素認証をリセット").click()
    expect(status).to_have_text(
        "newbie の二要素認証をリセットしました。次回のサインインで設定し直します。", timeout=WAIT_MS
    )
    user_page.reload()  # the reset ended the user's sessions
    expect(user_page).to_have_url(site.url("/sign-in?next=%2Faccount%2Fsessions"))

    page.locator("#d-sip").fill("another-sip-secret-42")
    page.get_by_role("button", name="電話の認証情報を再設定").click()
    expect(status).to_have_text("newbie の電話パスワードを設定しました。", timeout=WAIT_MS)

    page.get_by_role("button", name="無効にする").click()
    expect(status).to_contain_text("newbie を無効にしました。", timeout=WAIT_MS)
    expect(newbie.locator(".user-status")).to_have_text("無効")
    expect(page.get_by_role("button", name="有効にする")).to_be_visible()
    page.locator("#u-enabled").select_option(label="無効")
    page.get_by_role("button", name="絞り込む").click()
    expect(page.locator("#users tbody tr")).to_have_count(1, timeout=WAIT_MS)
    expect(newbie.locator(".user-status")).to_have_text("無効")

    # The disabled user cannot sign in any more.
    sign_in_with_password(user_page, site, "newbie")
    expect(user_page.locator("#notice")).to_be_visible(timeout=WAIT_MS)
    forget_refusals(problems, 401)


def test_a_refused_change_shows_the_grants_not_held(
    site: Site, new_page: NewPage, problems: Problems
) -> None:
    page = admin_on(new_page, site, "/admin/users")
    # From the keyboard: the row's button opens the user, focus moves into the form.
    row_of(page, "users", "colleague").get_by_role("button", name="管理").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#d-display")).to_be_focused()
    page.locator("#d-role").select_option(label="auditor")
    page.get_by_role("button", name="ロールを変更").focus()
    page.keyboard.press("Enter")
    status = page.locator("#d-status")
    expect(status).to_contain_text("拒否されました", timeout=WAIT_MS)
    expect(status).to_contain_text("recordings.play:all")
    expect(status).to_have_attribute("data-kind", "error")
    expect(page.locator("#notice")).to_contain_text("拒否されました")
    expect(row_of(page, "users", "colleague")).to_contain_text("operator")  # unchanged

    # A custom role: a grant the admin does not hold is refused, one it holds is saved.
    open_admin_page(page, site, "/admin/roles")
    quality = row_of(page, "roles", "quality")
    quality.get_by_role("button", name="編集").click()
    grants = page.locator("#grants")
    grants.locator('select[data-permission="audit.view"]').select_option("audit.view:all")
    page.get_by_role("button", name="権限を保存").click()
    expect(page.locator("#d-status")).to_contain_text("audit.view:all", timeout=WAIT_MS)
    expect(grants.locator('select[data-permission="audit.view"]')).to_have_value("")
    grants.locator('select[data-permission="numbers.view"]').select_option("numbers.view:team")
    page.get_by_role("button", name="権限を保存").click()
    expect(page.locator("#d-status")).to_have_text(
        "ロール quality の権限を保存しました。", timeout=WAIT_MS
    )
    expect(quality.locator("td").nth(2)).to_have_text("2")
    # A new custom role opens ready for its grants.
    page.locator("#c-name").fill("night_shift")
    page.locator("#c-description").fill("夜間の品質確認")
    page.get_by_role("button", name="作成", exact=True).click()
    expect(page.locator("#create-status")).to_contain_text("night_shift", timeout=WAIT_MS)
    expect(page.locator("#d-name")).to_have_text("night_shift")
    grants.locator('select[data-permission="reports.view"]').select_option("reports.view:team")
    page.get_by_role("button", name="権限を保存").click()
    expect(page.locator("#d-status")).to_have_text(
        "ロール night_shift の権限を保存しました。", timeout=WAIT_MS
    )
    expect(row_of(page, "roles", "night_shift").locator("td").nth(2)).to_have_text("1")
    row_of(page, "roles", "admin").get_by_role("button", name="表示").click()
    expect(page.locator("#d-builtin")).to_be_visible()
    expect(page.get_by_role("button", name="権限を保存")).to_be_hidden()
    forget_refusals(problems, 403)


def test_an_admin_creates_and_moves_a_team(
    site: Site, new_page: NewPage, problems: Problems
) -> None:
    page = admin_on(new_page, site, "/admin/teams")
    page.locator("#c-name").fill("west")
    page.locator("#c-display").fill("西チーム")
    page.get_by_role("button", name="作成", exact=True).click()
    expect(page.locator("#create-status")).to_have_text("チーム west を作成しました。")
    west = row_of(page, "teams", "west")
    expect(west).to_contain_text("最上位")
    west.get_by_role("button", name="変更").click()
    page.locator("#e-parent").select_option(label="north")
    page.locator("#e-display").fill("西")
    page.get_by_role("button", name="保存", exact=True).click()
    expect(page.locator("#d-status")).to_have_text("チーム west を保存しました。")
    expect(west.locator("td").nth(1)).to_have_text("north")
    expect(west.locator("td").nth(0)).to_have_text("西")
    # Moving north under west would make a cycle: refused, and shown.
    row_of(page, "teams", "north").get_by_role("button", name="変更").click()
    page.locator("#e-parent").select_option(label="西")
    page.get_by_role("button", name="保存", exact=True).click()
    expect(page.locator("#d-status")).to_have_attribute("data-kind", "error", timeout=WAIT_MS)
    expect(row_of(page, "teams", "north")).to_contain_text("最上位")
    forget_refusals(problems, 409, 422)


def _queue_named(page: Page, site: Site, name: str) -> dict[str, Any]:
    """The queue as the API reads it back, with the page's own session."""
    response = page.request.get(site.url("/api/v1/queues?limit=200"))
    assert response.ok, response.status
    items: list[dict[str, Any]] = response.json()["items"]
    return next(item for item in items if item["name"] == name)


def test_an_admin_changes_creates_and_deletes_a_queue(
    site: Site, new_page: NewPage, problems: Problems
) -> None:
    page = admin_on(new_page, site, "/admin/queues")
    north_line = row_of(page, "queues", "north-line")
    expect(north_line).to_contain_text("1 秒以内に 80%")
    north_line.get_by_role("button", name="変更").click()
    expect(page.locator("#f-strategy")).to_be_focused()
    page.locator("#f-strategy").select_option(label="全員を呼び出し")
    page.locator("#f-sl-seconds").fill("30")
    page.locator("#f-sl-percent").fill("90")
    colleague = page.locator("#members tbody tr", has=page.get_by_text("colleague", exact=True))
    colleague.locator(".m-skill").fill("4")
    page.locator("#f-submit").click()
    status = page.locator("#d-status")
    expect(status).to_have_text("キュー north-line を保存しました。", timeout=WAIT_MS)
    expect(north_line).to_contain_text("30 秒以内に 90%")
    expect(north_line).to_contain_text("全員を呼び出し")
    expect(north_line).to_contain_text("スキル 4")
    read = _queue_named(page, site, "north-line")
    assert (read["strategy"], read["service_level_seconds"]) == ("ring_all", 30)
    assert read["service_level_percent"] == 90
    colleague_id = site.env.user("colleague").id
    assert {"user_id": colleague_id, "penalty": 0, "skill_level": 4} in read["members"]
    queue = site.env.snapshot.queue_by_name("north-line")
    assert queue is not None and queue.strategy.value == "ring_all"

    # The operator's extension is taken: refused, shown, and nothing changes.
    page.locator("#f-number").fill("1001")
    page.locator("#f-sl-seconds").fill("45")
    page.locator("#f-submit").click()
    expect(status).to_have_attribute("data-kind", "error", timeout=WAIT_MS)
    assert _queue_named(page, site, "north-line") == read

    page.locator("#open-create").click()
    page.locator("#f-name").fill("night-line")
    page.locator("#f-number").fill("5100")
    page.locator("#f-team").select_option(label="south")
    page.locator("#f-overflow").select_option(label="別のキューへ")
    page.locator("#f-overflow-queue").select_option(label="north-line")
    page.locator("#f-submit").click()
    expect(status).to_have_text("キュー night-line を作成しました。", timeout=WAIT_MS)
    night = _queue_named(page, site, "night-line")
    assert night["overflow"] == {"action": "queue", "queue_id": read["id"], "user_id": None}
    expect(row_of(page, "queues", "night-line")).to_contain_text("別のキューへ: north-line")
    page.locator("#f-delete").click()
    expect(page.locator("#create-status")).to_have_text(
        "キュー night-line を削除しました。", timeout=WAIT_MS
    )
    expect(row_of(page, "queues", "night-line")).to_have_count(0)
    actions = [action for action, _, _ in site.env.audit_actions()]
    assert [a for a in actions if a.startswith("queue.")] == [
        "queue.update",
        "queue.create",
        "queue.delete",
    ]
    forget_refusals(problems, 422)


def test_an_operator_has_no_admin_page(site: Site, new_page: NewPage, problems: Problems) -> None:
    page = sign_in_operator(new_page, site)
    assert page.locator('a[href^="/admin/"]').count() == 0
    for path in ("/admin/users", "/admin/roles", "/admin/teams", "/admin/queues"):
        response = page.goto(site.url(path))
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("heading", name="ページを表示できません")).to_be_visible()
    forget_refusals(problems, 403)


def test_the_admin_pages_in_both_languages(
    site: Site, new_page: NewPage, screenshots: Path
) -> None:
    page = sign_in_admin(new_page, site)
    for path, name in (
        ("/admin/users", "admin-users"),
        ("/admin/roles", "admin-roles"),
        ("/admin/teams", "admin-teams"),
    ):
        open_admin_page(page, site, path)
        check_both_languages(page, name, screenshots)
    page.goto(site.url("/admin/queues"))  # read-only, rendered on the server
    north_line = row_of(page, "queues", "north-line")
    expect(north_line).to_contain_text("operator")
    expect(north_line).to_contain_text("1 秒以内に 80%")
    check_both_languages(page, "admin-queues", screenshots)


def test_retention_policies_are_set_and_removed(
    site: Site, new_page: NewPage, screenshots: Path
) -> None:
    page = new_page()
    sign_in_with_password(page, site, "keeper", "/admin/retention")
    enrol_mfa(page, site)
    expect(page).to_have_url(site.url("/admin/retention"), timeout=WAIT_MS)
    expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)
    expect(page.get_by_role("link", name="録音の保存期間")).to_be_visible()
    assert page.locator('a[href="/admin/users"]').count() == 0
    page.locator("#r-scope").select_option(label="既定")
    page.locator("#r-days").fill("365")
    page.get_by_role("button", name="設定", exact=True).click()
    expect(page.locator("#set-status")).to_have_text("保存期間を更新しました。", timeout=WAIT_MS)
    page.locator("#r-scope").select_option(label="チーム")
    page.locator("#r-team").select_option(label="north")
    page.locator("#r-days").fill("30")
    page.get_by_role("button", name="設定", exact=True).click()
    team_row = page.locator('#policies tbody tr[data-scope="team"]')
    expect(team_row).to_contain_text("north", timeout=WAIT_MS)
    expect(team_row).to_contain_text("30 日")
    expect(page.locator('#policies tbody tr[data-scope="default"]')).to_contain_text("365 日")
    open_admin_page(page, site, "/admin/retention")  # the page as loaded, without the outcome
    check_both_languages(page, "admin-retention", screenshots)
    team_row.get_by_role("button", name="削除").click()
    expect(team_row).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#policies tbody tr")).to_have_count(1)


def test_a_legal_hold_is_placed_and_released_and_a_purge_started(
    site: Site, new_page: NewPage, screenshots: Path
) -> None:
    page = new_page()
    sign_in_with_password(page, site, "keeper", "/admin/holds")
    enrol_mfa(page, site)
    expect(page).to_have_url(site.url("/admin/holds"), timeout=WAIT_MS)
    expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)
    expect(page.locator("#holds tbody")).to_contain_text("ホールドはありません。")
    check_both_languages(page, "admin-holds", screenshots)
    page.locator("#p-kind").select_option(label="キュー")
    page.locator("#p-queue").select_option(label="north-line")
    page.locator("#p-reason").fill("訴訟 2026-17")
    page.get_by_role("button", name="ホールドを設定").click()
    expect(page.locator("#place-status")).to_have_text(
        "north-line にホールドを設定しました。", timeout=WAIT_MS
    )
    held = row_of(page, "holds", "north-line")
    expect(held).to_contain_text("訴訟 2026-17")
    expect(held).to_contain_text("有効")
    response = page.request.get(site.url("/api/v1/legal-holds"))
    assert response.ok
    queue = site.env.snapshot.queue_by_name("north-line")
    assert queue is not None
    [hold] = response.json()["items"]
    assert (hold["target_kind"], hold["target_id"]) == ("queue", str(queue.id))
    assert hold["reason"] == "訴訟 2026-17"

    held.get_by_role("button", name="解除").click()
    expect(page.locator("#r-reason")).to_be_focused()
    page.locator("#r-reason").fill("訴訟終結")
    page.get_by_role("button", name="解除", exact=True).last.click()
    expect(page.locator("#list-status")).to_have_text(
        "north-line のホールドを解除しました。", timeout=WAIT_MS
    )
    expect(held).to_have_count(0)
    page.locator("#show-released").check()
    expect(row_of(page, "holds", "north-line")).to_contain_text("に解除", timeout=WAIT_MS)
    actions = [action for action, _, _ in site.env.audit_actions()]
    assert actions.count("recording.hold") == 1 and actions.count("recording.release") == 1

    open_admin_page(page, site, "/admin/retention")
    expect(page.locator("#purge-status")).not_to_be_empty(timeout=WAIT_MS)
    page.get_by_role("button", name="今すぐ削除を開始").click()
    status = page.locator("#purge-status")
    expect(status).to_contain_text("削除", timeout=WAIT_MS)
    for _ in range(50):  # the purge runs in the background: refresh until it is done
        page.get_by_role("button", name="状態を更新").click()
        page.wait_for_timeout(200)
        if "前回の削除は" in (status.text_content() or ""):
            break
    expect(status).to_contain_text("前回の削除は")
    expect(page.locator("#purge-examined")).to_have_text("0")
    assert "recording.purge_started" in [action for action, _, _ in site.env.audit_actions()]


def test_an_admin_adds_and_removes_a_sign_in_network(
    site: Site, new_page: NewPage, problems: Problems, screenshots: Path
) -> None:
    page = admin_on(new_page, site, "/admin/network")
    expect(page.locator("#networks tbody")).to_contain_text("どこからでもサインインできます")
    check_both_languages(page, "admin-network", screenshots)
    page.locator("#n-network").fill("10.8.0.0/16")
    page.locator("#n-kind").select_option(label="チーム")
    page.locator("#n-team").select_option(label="south")
    page.locator("#n-description").fill("南拠点 VPN")
    page.get_by_role("button", name="追加", exact=True).click()
    expect(page.locator("#add-status")).to_have_text(
        "範囲 10.8.0.0/16 を追加しました。", timeout=WAIT_MS
    )
    south = row_of(page, "networks", "10.8.0.0/16")
    expect(south).to_contain_text("チーム: south")
    # A range for the admin's own role that leaves the browser's address out: refused.
    page.locator("#n-network").fill("10.0.0.0/8")
    page.locator("#n-kind").select_option(label="ロール")
    page.locator("#n-role").select_option(label="admin")
    page.get_by_role("button", name="追加", exact=True).click()
    expect(page.locator("#add-status")).to_have_attribute("data-kind", "error", timeout=WAIT_MS)
    expect(page.locator("#networks tbody tr")).to_have_count(1)
    response = page.request.get(site.url("/api/v1/sign-in-networks"))
    assert [item["network"] for item in response.json()["items"]] == ["10.8.0.0/16"]
    south.get_by_role("button", name="削除").click()
    expect(page.locator("#list-status")).to_have_text(
        "範囲 10.8.0.0/16 を削除しました。", timeout=WAIT_MS
    )
    expect(south).to_have_count(0)
    actions = [action for action, _, _ in site.env.audit_actions()]
    assert actions.count("sign_in_network.create") == 1
    assert actions.count("sign_in_network.delete") == 1
    forget_refusals(problems, 409)


def test_an_admin_sets_a_roles_outbound_allow_list(
    site: Site, new_page: NewPage, problems: Problems
) -> None:
    page = admin_on(new_page, site, "/admin/roles")
    row_of(page, "roles", "operator").get_by_role("button", name="表示").click()
    patterns = page.locator("#o-patterns")
    expect(patterns).to_have_value("")
    patterns.fill("0X.\n+81.")
    page.get_by_role("button", name="発信許可リストを保存").click()
    status = page.locator("#o-status")
    expect(status).to_have_text("ロール operator の発信許可リストを保存しました。", timeout=WAIT_MS)
    role_id = site.env.snapshot.role_by_name("operator")
    assert role_id is not None
    response = page.request.get(site.url(f"/api/v1/roles/{role_id.id}"))
    assert response.json()["outbound_patterns"] == ["0X.", "+81."]
    role = site.env.snapshot.role_by_name("operator")
    assert role is not None and role.allows_dialling("0312345678")
    patterns.fill("0A.")
    page.get_by_role("button", name="発信許可リストを保存").click()
    expect(status).to_have_attribute("data-kind", "error", timeout=WAIT_MS)
    response = page.request.get(site.url(f"/api/v1/roles/{role_id.id}"))
    assert response.json()["outbound_patterns"] == ["0X.", "+81."]
    forget_refusals(problems, 422)


def test_an_admin_adds_changes_and_removes_a_trunk(
    site: Site, new_page: NewPage, problems: Problems, screenshots: Path
) -> None:
    page = admin_on(new_page, site, "/admin/trunks")
    expect(page.locator("#trunks tbody")).to_contain_text("トランクはありません。")
    check_both_languages(page, "admin-trunks", screenshots)
    page.locator("#open-create").click()
    page.locator("#f-name").fill("carrier")
    page.locator("#f-host").fill("sip.carrier.example")
    page.locator("#f-transport").select_option("tls")
    page.locator("#f-port").fill("5061")
    page.locator("#f-inbound").fill("+81312345678 1001")
    page.locator("#f-outbound").fill("0X.")
    page.locator("#f-submit").click()
    status = page.locator("#d-status")
    expect(status).to_have_text("トランク carrier を追加しました。", timeout=WAIT_MS)
    carrier = row_of(page, "trunks", "carrier")
    expect(carrier).to_contain_text("sip.carrier.example:5061 (TLS)")
    page.locator("#f-outbound").fill("0[1-9]X.\n+81.")
    page.locator("#f-password").fill("carrier-secret-7781")
    page.locator("#f-submit").click()
    expect(status).to_have_text("トランク carrier を保存しました。", timeout=WAIT_MS)
    expect(carrier).to_contain_text("0[1-9]X., +81.")
    [read] = page.request.get(site.url("/api/v1/trunks")).json()["items"]
    assert read["outbound_patterns"] == ["0[1-9]X.", "+81."] and read["has_password"] is True
    assert read["inbound_numbers"] == [{"number": "+81312345678", "destination": "1001"}]
    assert "carrier-secret-7781" not in page.content()
    page.locator("#f-outbound").fill("0A.")
    page.locator("#f-submit").click()
    expect(status).to_have_attribute("data-kind", "error", timeout=WAIT_MS)
    page.locator("#f-delete").click()
    expect(page.locator("#create-status")).to_have_text(
        "トランク carrier を削除しました。", timeout=WAIT_MS
    )
    expect(carrier).to_have_count(0)
    actions = [action for action, _, _ in site.env.audit_actions()]
    assert [a for a in actions if a.startswith("trunk.")] == [
        "trunk.create",
        "trunk.update",
        "trunk.delete",
    ]
    forget_refusals(problems, 422)


def test_an_admin_sets_the_teams_a_supervisor_supervises(
    site: Site, new_page: NewPage, problems: Problems
) -> None:
    page = admin_on(new_page, site, "/admin/users")
    row_of(page, "users", "deputy").get_by_role("button", name="管理").click()
    supervises = page.locator("#supervises-form")
    expect(supervises.get_by_label("north", exact=True)).to_be_checked()
    expect(supervises.get_by_label("south", exact=True)).not_to_be_checked()
    supervises.get_by_label("south", exact=True).check()
    page.get_by_role("button", name="監督するチームを保存").click()
    expect(page.locator("#d-status")).to_have_text(
        "deputy が監督するチームを保存しました。", timeout=WAIT_MS
    )
    deputy = site.env.user("deputy")
    read = page.request.get(site.url(f"/api/v1/users/{deputy.id}")).json()
    teams = {team.name: team.id for team in site.env.snapshot.teams}
    assert read["supervised_team_ids"] == sorted([teams["north"], teams["south"]])
    principal = site.env.snapshot.principal_for(deputy)
    assert teams["south"] in principal.supervised_team_ids
    [entry] = site.env.audit_details("user.update")
    assert entry["after"]["supervised_team_ids"] == read["supervised_team_ids"]


def test_an_admin_sets_a_teams_monitoring_transparency(
    site: Site, new_page: NewPage, problems: Problems
) -> None:
    page = admin_on(new_page, site, "/admin/teams")
    north = row_of(page, "teams", "north")
    expect(north).to_contain_text("ノードの設定に従う")
    north.get_by_role("button", name="変更").click()
    page.locator("#e-transparency").select_option(label="画面と通知音で通知")
    page.get_by_role("button", name="保存", exact=True).click()
    expect(page.locator("#d-status")).to_have_text("チーム north を保存しました。")
    expect(north).to_contain_text("画面と通知音で通知")
    team_id = next(team.id for team in site.env.snapshot.teams if team.name == "north")
    read = page.request.get(site.url(f"/api/v1/teams/{team_id}")).json()
    assert read["monitoring_transparency"] == "screen_and_tone"
    [entry] = site.env.audit_details("team.update")
    assert entry["after"] == {"monitoring_transparency": "screen_and_tone"}
