"""Calls on the pages, from the events a node's ACD and monitoring publish (put on the served
application's bus by the test): the wallboard's queue tiles and operator rows, and the
operator's current call and the 'being monitored' notice on the desk."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from playwright.sync_api import expect

from browser.conftest import NewPage
from browser.site import Site
from browser.test_pages import sign_in_operator, sign_in_supervisor
from callwarden.acd.events import CallAbandoned, CallAnswered, CallEnded, CallHandled, CallQueued
from callwarden.domain.ids import CallId
from callwarden.telephony.monitoring_events import MonitoringEnded, MonitoringStarted

WITHIN_MS = 1_000


def test_calls_and_monitoring_appear_on_the_wallboard_and_the_desk(
    site: Site, new_page: NewPage
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
        CallAnswered(**common, user_id=operator.id, call_id=CallId("call-1"), waited_seconds=5.0)
    )
    expect(tile.locator('[data-field="waiting"]')).to_have_text("1", timeout=WITHIN_MS)
    assert time.monotonic() - published < 1.0
    expect(tile.locator('[data-field="service_level"]')).to_have_text("100%")
    row = supervisor.locator(f'#agents tr[data-user-id="{operator.id}"]')
    expect(row.locator('[data-field="queue"]')).to_have_text("north-line")
    expect(desk.locator("#call-phase")).to_have_text("通話中", timeout=WITHIN_MS)
    expect(desk.locator("#call-queue")).to_have_text("north-line")

    site.publish(CallAbandoned(**common, call_id=CallId("call-2"), waited_seconds=40.0))
    expect(tile.locator('[data-field="abandoned"]')).to_have_text("1", timeout=WITHIN_MS)
    expect(tile.locator('[data-field="service_level"]')).to_have_text("50%")
    expect(tile.locator('[data-field="waiting"]')).to_have_text("0")

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
