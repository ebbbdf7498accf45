"""The operator desktop's current call driven by the site's real ACD engine (sign-in, a call
offered and answered, its end): the caller line, the pause/resume recording button following
the recording's state and showing the API's refusal, and the wrap-up form that stores the
disposition code and note through the API. In Japanese, with no console error or CSP violation
(the `problems` fixture fails the test on any)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Page, expect

from browser.conftest import NewPage, Problems
from browser.site import Site
from browser.test_pages import sign_in_operator
from callwarden.domain.ids import CallId, RecordingId
from callwarden.recording.capture_events import (
    RecordingPaused,
    RecordingResumed,
    RecordingStarted,
)
from callwarden.web.dispositions.store import DispositionStore

WITHIN_MS = 1_000
_T = TypeVar("_T")


def _run(site: Site, coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Runs `coroutine` on the application's loop (where its ACD engine runs)."""
    return asyncio.run_coroutine_threadsafe(coroutine, site.loop).result(10)


def _wait_for_feed(page: Page) -> None:
    """The desk's live feed is open (subscribed before it is accepted): events published from
    now on reach the page."""
    expect(page.locator("body")).to_have_attribute("data-live", "connected", timeout=10_000)


def _forget_refusal(page: Page, problems: Problems, status: int) -> None:
    """Drops Chromium's console line for the refusal the test asked for (status `status`),
    waiting for it: the browser may log it after the page has handled the answer."""
    expected = (
        f"console error: Failed to load resource: the server responded with a status of {status}"
    )
    for _ in range(50):
        if any(found.startswith(expected) for found in problems.found):
            break
        page.wait_for_timeout(40)
    problems.found[:] = [found for found in problems.found if not found.startswith(expected)]


def test_the_recording_button_and_the_wrap_up_form(
    site: Site, new_page: NewPage, problems: Problems, screenshots: Path
) -> None:
    desk = sign_in_operator(new_page, site)
    _wait_for_feed(desk)
    engine = site.env.acd
    operator = site.env.user("operator")
    queue = next(queue for queue in site.env.snapshot.queues if queue.name == "north-line")
    call_id = CallId("desk-call-0001@198.51.100.7")
    _run(site, engine.sign_in(operator.id, [queue.id]))
    expect(desk.locator("#state")).to_have_attribute("data-state", "available", timeout=WITHIN_MS)
    _run(site, engine.call_arrived(call_id, queue.id, caller="+81312345678"))
    _run(site, engine.settled())
    _run(site, engine.offer_answered(call_id, operator.id))
    expect(desk.locator("#call-phase")).to_have_text("通話中", timeout=WITHIN_MS)
    # The operator holds no numbers.view: the ACD's number, masked; never the whole number.
    expect(desk.locator("#call-caller")).to_have_text("+*******5678", timeout=WITHIN_MS)
    assert "312345678" not in desk.content()
    expect(desk.locator("#recording-actions")).to_be_hidden()
    expect(desk.locator("#wrap-up")).to_be_hidden()

    recording: dict[str, Any] = {
        "at": datetime.now(UTC),
        "team_id": queue.team_id,
        "user_id": operator.id,
        "call_id": call_id,
        "recording_id": RecordingId("rec-desk-1"),
    }
    site.publish(RecordingStarted(**recording))
    toggle = desk.locator("#recording-toggle")
    expect(toggle).to_have_text("録音を一時停止", timeout=WITHIN_MS)
    # This node's recorder does not run, so the API knows no recorded call of that id: the
    # page says so and keeps showing the state the events confirmed.
    with desk.expect_response(lambda response: response.url.endswith("/recording")) as answer:
        toggle.click()
    assert answer.value.status == 404
    expect(desk.locator("#notice")).to_have_text("対象が見つかりません。")
    expect(desk.locator("#recording")).to_have_text("録音中")
    expect(toggle).to_be_enabled()
    expect(toggle).to_have_text("録音を一時停止")
    _forget_refusal(desk, problems, 404)
    site.publish(RecordingPaused(**recording, by="operator"))
    expect(toggle).to_have_text("録音を再開", timeout=WITHIN_MS)
    expect(toggle).to_have_attribute("data-wanted", "recording")
    expect(desk.locator("#recording")).to_have_text("録音を一時停止中")
    desk.screenshot(path=str(screenshots / "desk-recording-paused.png"))
    site.publish(RecordingResumed(**recording, by="operator"))
    expect(toggle).to_have_text("録音を一時停止", timeout=WITHIN_MS)

    _run(site, engine.call_ended(call_id))
    expect(desk.locator("#call-phase")).to_have_text("後処理中", timeout=WITHIN_MS)
    expect(desk.locator("#recording-actions")).to_be_hidden()
    # A desk reloaded during wrap-up starts from the call (GET /api/v1/desk/call).
    desk.reload()
    _wait_for_feed(desk)
    expect(desk.locator("#call-phase")).to_have_text("後処理中", timeout=WITHIN_MS)
    expect(desk.locator("#call-queue")).to_have_text("north-line")
    expect(desk.locator("#call-time")).to_have_text("—")
    form = desk.locator("#wrap-up")
    expect(form).to_be_visible()
    form.get_by_label("処理結果コード").select_option(label="折り返し")
    form.get_by_label("メモ").fill("15時に折り返し希望")
    with desk.expect_response(lambda response: response.url.endswith("/disposition")) as answer:
        form.get_by_role("button", name="後処理を保存").click()
    assert answer.value.status == 200
    expect(desk.locator("#notice")).to_have_text("後処理を保存しました。")
    stored = DispositionStore(site.env.database.sessions).of_call(call_id)
    assert stored is not None
    assert (stored.code, stored.note, stored.user_id) == (
        "callback",
        "15時に折り返し希望",
        operator.id,
    )
    desk.screenshot(path=str(screenshots / "desk-wrap-up.png"))
    _run(site, engine.make_available(operator.id))
    expect(desk.locator("#no-call")).to_be_visible(timeout=WITHIN_MS)
    expect(form).to_be_hidden()


def test_the_pause_button_shows_the_confirmed_state(
    site: Site, new_page: NewPage, problems: Problems, screenshots: Path
) -> None:
    """Over the site's real recorder and media engine (web.live_recording_support): the
    operator's call is recorded, the button pauses it, the page shows "paused" once the API
    answered (after the media confirmed), and resumes it."""
    world = site.env.live_recording
    assert world is not None
    _run(site, world.start(site.env.snapshot))
    desk = sign_in_operator(new_page, site)
    _wait_for_feed(desk)
    engine = site.env.acd
    operator = site.env.user("operator")
    queue = next(queue for queue in site.env.snapshot.queues if queue.name == "north-line")
    call_id = CallId(world.call_ids["north"])
    _run(site, engine.sign_in(operator.id, [queue.id]))
    _run(site, engine.call_arrived(call_id, queue.id, caller="+4930123456"))
    _run(site, engine.settled())
    _run(site, engine.offer_answered(call_id, operator.id))
    expect(desk.locator("#call-phase")).to_have_text("通話中", timeout=WITHIN_MS)
    expect(desk.locator("#call-caller")).to_have_text("+******3456", timeout=WITHIN_MS)
    _run(site, world.start_recording("north", site.env.snapshot))
    toggle = desk.locator("#recording-toggle")
    expect(desk.locator("#recording")).to_have_text("録音中", timeout=WITHIN_MS)
    expect(toggle).to_have_text("録音を一時停止")
    with desk.expect_response(lambda response: response.url.endswith("/recording")) as answer:
        toggle.click()
    assert answer.value.status == 200
    assert answer.value.json()["state"] == "paused"
    expect(desk.locator("#recording")).to_have_text("録音を一時停止中")
    expect(toggle).to_have_text("録音を再開")
    expect(desk.locator("#notice")).to_have_text("録音の一時停止が確認されました。")
    desk.screenshot(path=str(screenshots / "desk-pause-confirmed.png"))
    with desk.expect_response(lambda response: response.url.endswith("/recording")) as answer:
        toggle.click()
    assert answer.value.status == 200
    expect(desk.locator("#recording")).to_have_text("録音中")
    expect(toggle).to_have_text("録音を一時停止")
    expect(desk.locator("#notice")).to_have_text("録音を再開しました。")
    recorded = world.control.recorded_call(call_id)
    assert recorded is not None and recorded.active is not None
    assert not recorded.active.paused and len(recorded.active.pauses) == 1

    # The media process stops confirming pauses (stuck): the API stops the recording (fail
    # closed) and answers 409 pause_not_confirmed; the page says the recording stopped.
    async def never_confirms(bridge_id: str) -> int:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    world.engine.pause_recording = never_confirms  # type: ignore[method-assign]
    with desk.expect_response(lambda response: response.url.endswith("/recording")) as answer:
        toggle.click()
    assert answer.value.status == 409
    assert answer.value.json()["error_id"] == "pause_not_confirmed"
    expect(desk.locator("#notice")).to_have_text(
        "一時停止を確認できなかったため、録音を停止しました。"
    )
    expect(desk.locator("#recording")).to_have_text("録音が停止しました(障害)")
    expect(desk.locator("#recording-actions")).to_be_hidden()
    desk.screenshot(path=str(screenshots / "desk-pause-not-confirmed.png"))
    _forget_refusal(desk, problems, 409)
