"""Calls on the pages, from the events a node's ACD and monitoring publish (put on the served
application's bus by the test): the wallboard's queue tiles and operator rows, and the
operator's current call and the 'being monitored' notice on the desk."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Page, expect

from browser.conftest import NewPage, Problems
from browser.site import Site
from browser.test_pages import sign_in_operator, sign_in_supervisor
from callwarden.acd.events import CallAbandoned, CallAnswered, CallEnded, CallHandled, CallQueued
from callwarden.domain.ids import CallId, RecordingId
from callwarden.recording.capture_events import (
    RecordingFailed,
    RecordingPaused,
    RecordingResumed,
    RecordingStarted,
)
from callwarden.security.account_events import NewSignInLocation
from callwarden.telephony.monitoring_events import (
    MonitoringEnded,
    MonitoringStarted,
    MonitoringSwitched,
)

WITHIN_MS = 1_000


def check_monitoring_controls(
    site: Site, supervisor: Page, problems: Problems, screenshots: Path
) -> None:
    """The call's row asks for a reason, sends the request to the monitoring API (which this
    application, having no telephony, refuses with 409: the page says so in Japanese), and
    shows the mode of the supervisor's session as the monitoring events report it."""
    call = supervisor.locator('#calls tr[data-call-id="call-1"]')
    expect(call.locator('[data-field="name"]')).to_have_text("operator")
    expect(call.locator('[data-field="duration"]')).not_to_have_text("0:00", timeout=3_000)
    call.get_by_role("button", name="モニタリング開始").click()
    expect(supervisor.locator("#notice")).to_have_text("モニタリングの理由を入力してください。")
    call.get_by_label("方法").select_option("listen")
    call.get_by_label("理由").fill("品質確認 QA-7")
    with supervisor.expect_response("**/api/v1/monitoring") as answer:
        call.get_by_role("button", name="モニタリング開始").click()
    assert answer.value.status == 409
    expect(supervisor.locator("#notice")).to_have_text(
        "この拠点ではモニタリングが稼働していません。"
    )
    expected = "console error: Failed to load resource: the server responded with a status of 409"
    problems.found[:] = [found for found in problems.found if not found.startswith(expected)]
    session = {
        "at": datetime.now(UTC),
        "team_id": site.env.user("operator").team_id,
        "user_id": site.env.user("operator").id,
        "monitoring_id": "m-sup",
        "call_id": CallId("call-1"),
        "supervisor_id": site.env.user("supervisor").id,
        "via": "api",
    }
    site.publish(MonitoringStarted(**session, mode="listen"))
    expect(call).to_have_attribute("data-mode", "listen", timeout=WITHIN_MS)
    expect(call.locator('[data-field="session"]')).to_have_text("モニター(聞くだけ)(参加中)")
    expect(call.get_by_role("button", name="モニタリング開始")).to_be_hidden()
    site.publish(MonitoringSwitched(**session, mode="whisper", previous="listen"))
    expect(call).to_have_attribute("data-mode", "whisper", timeout=WITHIN_MS)
    expect(call.locator('[data-field="session"]')).to_contain_text("ささやき")
    supervisor.screenshot(path=str(screenshots / "wallboard-call.png"))
    site.publish(MonitoringEnded(**session, mode="whisper", cause="supervisor"))
    expect(call.get_by_role("button", name="モニタリング開始")).to_be_visible(timeout=WITHIN_MS)


def test_calls_and_monitoring_appear_on_the_wallboard_and_the_desk(
    site: Site, new_page: NewPage, problems: Problems, screenshots: Path
) -> None:
    supervisor = sign_in_supervisor(new_page, site)
    expect(supervisor.locator("#live-status")).to_have_attribute("data-connected", "true")
    desk = sign_in_operator(new_page, site)
    queue = next(queue for queue in site.env.snapshot.queues if queue.name == "north-line")
    operator = site.env.user("operator")
    now = datetime.now(UTC)
    tile = supervisor.locator(f'.tile[data-queue-id="{queue.id}"]')
    common = {"at": now, "team_id": queue.team_id, "queue_id": queue.id}

    for number in (1, 2):
        site.publish(CallQueued(**common, call_id=CallId(f"call-{number}")))
    expect(tile.locator('[data-field="waiting"]')).to_have_text("2", timeout=WITHIN_MS)

    published = time.monotonic()
    site.publish(
        CallAnswered(**common, user_id=operator.id, call_id=CallId("call-1"), waited_seconds=0.5)
    )
    expect(tile.locator('[data-field="waiting"]')).to_have_text("1", timeout=WITHIN_MS)
    assert time.monotonic() - published < 1.0
    expect(tile.locator('[data-field="service_level"]')).to_have_text("100%")
    row = supervisor.locator(f'#agents tr[data-user-id="{operator.id}"]')
    expect(row.locator('[data-field="queue"]')).to_have_text("north-line")
    expect(desk.locator("#call-phase")).to_have_text("通話中", timeout=WITHIN_MS)
    expect(desk.locator("#call-queue")).to_have_text("north-line")
    check_monitoring_controls(site, supervisor, problems, screenshots)

    # call-2 waits past the queue's service-level threshold (1 s): the tile and an alert say so.
    expect(tile).to_have_attribute("data-alert", "long_wait", timeout=3_000)
    alerts = supervisor.locator("#alerts li")
    expect(alerts.first).to_contain_text(
        "north-line で、サービスレベルの目標を超えて待っているお客様がいます。"
    )
    site.publish(CallAbandoned(**common, call_id=CallId("call-2"), waited_seconds=40.0))
    expect(tile.locator('[data-field="abandoned"]')).to_have_text("1", timeout=WITHIN_MS)
    expect(tile.locator('[data-field="service_level"]')).to_have_text("50%")
    expect(tile.locator('[data-field="waiting"]')).to_have_text("0")
    expect(tile).not_to_have_attribute("data-alert", "long_wait")

    monitoring = {
        "at": now,
        "team_id": operator.team_id,
        "user_id": operator.id,
        "monitoring_id": "m-1",
        "call_id": CallId("call-1"),
        "supervisor_id": site.env.user("supervisor").id,
        "mode": "listen",
        "via": "api",
    }
    recording = {
        "at": now,
        "team_id": queue.team_id,
        "user_id": operator.id,
        "call_id": CallId("call-1"),
        "recording_id": RecordingId("rec-1"),
    }
    site.publish(RecordingStarted(**recording))
    expect(desk.locator("#recording")).to_have_text("録音中", timeout=WITHIN_MS)
    site.publish(RecordingPaused(**recording, by="operator"))
    expect(desk.locator("#recording")).to_have_text("録音を一時停止中", timeout=WITHIN_MS)
    site.publish(RecordingResumed(**recording, by="operator"))
    expect(desk.locator("#recording")).to_have_text("録音中", timeout=WITHIN_MS)
    site.publish(RecordingFailed(**recording, reason="disk full"))
    expect(desk.locator("#recording")).to_have_text("録音が停止しました(障害)", timeout=WITHIN_MS)
    expect(alerts.first).to_have_text(re.compile("operator さんの通話の録音が停止しました。"))
    colleague = site.env.user("colleague")
    site.publish(
        NewSignInLocation(
            at=now,
            team_id=colleague.team_id,
            user_id=colleague.id,
            username="colleague",
            address="198.51.100.7",
            new_address=True,
        )
    )
    expect(alerts.first).to_contain_text(
        "colleague さんが新しい場所 (198.51.100.7) からサインインしました。", timeout=WITHIN_MS
    )
    site.publish(MonitoringStarted(**monitoring, operator_notified=False))
    site.publish(CallEnded(**common, user_id=operator.id, call_id=CallId("call-1"), talk_seconds=9))
    expect(desk.locator("#call-phase")).to_have_text("後処理中", timeout=WITHIN_MS)
    expect(desk.locator("#monitored")).to_be_hidden()  # the policy does not tell this team
    site.publish(
        MonitoringStarted(**{**monitoring, "monitoring_id": "m-2"}, operator_notified=True)
    )
    expect(desk.locator("#monitored")).to_be_visible(timeout=WITHIN_MS)
    expect(desk.locator("#monitored")).to_have_text(
        "スーパーバイザーがこの通話をモニタリングしています。"
    )
    site.publish(
        MonitoringEnded(
            **{**monitoring, "monitoring_id": "m-2"}, operator_notified=True, cause="supervisor"
        )
    )
    expect(desk.locator("#monitored")).to_be_hidden(timeout=WITHIN_MS)
    site.publish(
        CallHandled(
            **common,
            user_id=operator.id,
            call_id=CallId("call-1"),
            talk_seconds=9,
            wrap_up_seconds=10,
        )
    )
    expect(desk.locator("#no-call")).to_be_visible(timeout=WITHIN_MS)
