"""A browser leg is a participant like any other: recording, card-data pauses and a supervisor's
takeover work the same for it, end to end (Debian's Chromium with a fake microphone, pjsua2
phones, a real node whose queue records every call):

- the operator answers a queue call in the desk's browser phone (880 Hz microphone) from a
  customer (pjsua2, 440 Hz); the operator pauses the recording from the browser's keypad
  (``*1``, RFC 4733 events from the browser leg) and resumes it (``*2``); the sealed recording,
  opened with its unwrapped data key, has the customer's tone on the customer track and the
  browser's on the operator track and nothing of the other, and the paused stretch holds no
  audio at all;
- a supervisor on the wallboard takes the call over from the browser (1300 Hz microphone):
  the operator's SIP phone is hung up and the customer hears the supervisor's browser.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio import read_wav, tone_snr_db, write_tone_wav
from browser_phone import (
    BROWSER_HZ,
    CSP_LISTENER,
    CUSTOMER_HZ,
    PROVISIONING,
    SUPERVISOR_HZ,
    WAIT_MS,
    chromium,
    launch_chromium,
    make_desk_phone_ready,
    monitor_in_the_browser,
    phone_state,
    sip_phone,
    start_phone_node,
)
from node import Node
from phones import PhoneBook
from playwright.sync_api import Page, expect, sync_playwright
from test_recording import _open, _rows
from test_webrtc_phone import _sign_in_supervisor

__all__ = ["chromium"]

logger = logging.getLogger(__name__)

RATE = 8000
SETTLE_S = 0.3
RECORDED = PROVISIONING.replace("wrap_up_seconds: 5}", "wrap_up_seconds: 5, recording: all}")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    assert RECORDED != PROVISIONING, "the queue's recording policy was not set"
    started = start_phone_node(
        tmp_path_factory.mktemp("webrtc-recorded"),
        rtp_ports=(39000, 39499),
        provisioning=RECORDED,
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _press(page: Page, digits: str) -> None:
    for digit in digits:
        page.locator(f"#phone-keypad button[data-digit='{digit}']").click()


def test_a_browser_call_is_recorded_on_its_tracks_and_paused_from_the_keypad(
    chromium: Path, node: Node, phones: PhoneBook, tmp_path: Path
) -> None:
    microphone = write_tone_wav(tmp_path / "browser-880.wav", BROWSER_HZ, 90.0, 0.25, 48000)
    tone = write_tone_wav(tmp_path / "440.wav", CUSTOMER_HZ, 90.0, 0.25)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium, node, microphone)
        context = browser.new_context(locale="ja-JP")
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        make_desk_phone_ready(page, node.base_url)
        expect(page.locator("#phone")).to_have_attribute("data-phone", "ready", timeout=WAIT_MS)
        customer = sip_phone(phones, node, "cust", tone)
        call = customer.dial("5001")
        phones.wait_until(lambda: phone_state(page) == "ringing", 20.0, "the browser ringing")
        page.get_by_role("button", name="応答").click()
        phones.wait_until(lambda: phone_state(page) == "talking", 20.0, "the browser talking")
        call.wait_confirmed()
        phones.run_for(2.0)
        _press(page, "*1")  # pause (card data), from the browser leg
        phones.run_for(2.0)
        _press(page, "*2")  # resume
        phones.run_for(1.5)
        call.hangup()
        call.wait_disconnected()
        phones.wait_until(lambda: phone_state(page) == "ready", 10.0, "the browser free again")
        context.close()
        browser.close()
    phones.wait_until(
        lambda: bool(_rows(node)) and _rows(node)[-1][1] != "recording", 10.0, "the closed row"
    )
    opened = _open(node, _rows(node)[-1])
    reader = opened.reader
    assert opened.status == "complete" and reader.complete, opened.failure
    [pause] = reader.pauses
    assert pause.end is not None and 1.2 < (pause.end - pause.start) / RATE < 3.0
    customer_track, operator_track = reader.pcm("customer"), reader.pcm("operator")
    talk = slice(round(SETTLE_S * RATE), pause.start)
    assert tone_snr_db(customer_track[talk], RATE, CUSTOMER_HZ, [BROWSER_HZ]) > 30.0
    assert tone_snr_db(operator_track[talk], RATE, BROWSER_HZ, [CUSTOMER_HZ]) > 30.0
    assert tone_snr_db(customer_track[talk], RATE, BROWSER_HZ, [CUSTOMER_HZ]) < 10.0
    assert tone_snr_db(operator_track[talk], RATE, CUSTOMER_HZ, [BROWSER_HZ]) < 10.0
    assert not customer_track[pause.start : pause.end].any()
    assert not operator_track[pause.start : pause.end].any()
    after = slice(pause.end + round(SETTLE_S * RATE), None)
    assert tone_snr_db(operator_track[after], RATE, BROWSER_HZ, [CUSTOMER_HZ]) > 30.0


def test_a_supervisor_takes_a_call_over_from_the_browser(
    chromium: Path, node: Node, phones: PhoneBook, tmp_path: Path
) -> None:
    microphone = write_tone_wav(tmp_path / "sup-1300.wav", SUPERVISOR_HZ, 90.0, 0.25, 48000)
    tones = {hz: write_tone_wav(tmp_path / f"{hz}.wav", hz, 90.0, 0.25) for hz in (440, 880)}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium, node, microphone)
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP")
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        _sign_in_supervisor(page, node.base_url)
        page.get_by_role("button", name="ブラウザー電話を接続").click()
        expect(page.locator("#phone")).to_have_attribute("data-phone", "ready", timeout=WAIT_MS)
        call, operator_call, _ = monitor_in_the_browser(
            page, phones, node, tones, "takeover", "苦情対応 QA-9"
        )
        phones.wait_until(lambda: phone_state(page) == "talking", 20.0, "the supervisor talking")
        operator_call.wait_disconnected()  # the operator's leg is released
        phones.run_for(1.0)
        call.record(phones.wav("customer-taken-over"))
        phones.run_for(2.0)
        heard = read_wav(call.stop_recording())
        supervisor = tone_snr_db(heard.samples, heard.rate, SUPERVISOR_HZ, exclude_hz=(880,))
        logger.info("after the takeover the customer hears the supervisor at %.1f dB", supervisor)
        assert supervisor > 30.0, f"the customer hears the supervisor at {supervisor:.1f} dB"
        assert tone_snr_db(heard.samples, heard.rate, 880, exclude_hz=(SUPERVISOR_HZ,)) < 10.0
        call.hangup()
        call.wait_disconnected()
        phones.wait_until(lambda: phone_state(page) == "ready", 10.0, "the supervisor's phone free")
        context.close()
        browser.close()
