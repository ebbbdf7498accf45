"""The browser phone end to end, in Debian's Chromium with a fake microphone playing an 880 Hz
tone (`--use-file-for-fake-audio-capture`), against a real node over HTTPS (its pinned
certificate):

- the operator's desk connects its browser phone; the operator also has a SIP phone (pjsua2),
  so the customer's queue call (pjsua2, 440 Hz) rings both, the browser answers, and the SIP
  phone is cancelled (first to answer wins);
- the customer's recording shows the browser's 880 Hz by FFT, and the browser's received audio
  (the phone module's WebAudio analyser) shows the customer's 440 Hz; on hold (a re-INVITE,
  sendonly) the customer hears none of the browser, and after resuming hears it again;
- a supervisor's SIP phone (1300 Hz) listens (*91 + extension) then whispers (key 5): the
  browser hears the whisper, and the customer's audio keeps it at least 50 dB under the
  browser's tone, over the whole recording and every half second of it;
- the operator signs out: the node hangs the call up and closes the browser's media within a
  second, and the desk goes to the sign-in page.

It lives beside the other pjsua2 tests (one pjsua2 library per process: `sip_endpoint`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest
from audio import Samples, Wav, read_wav, tone_level_db, tone_snr_db, write_tone_wav
from browser_phone import (
    BROWSER_HZ,
    CSP_LISTENER,
    CUSTOMER_HZ,
    SUPERVISOR_HZ,
    WAIT_MS,
    WEB_PASSWORD,
    chromium,
    launch_chromium,
    make_desk_phone_ready,
    monitor_in_the_browser,
    phone_state,
    received_db,
    sip_phone,
    start_phone_node,
)
from monitoring_api import CSRF_HEADER, SESSION_COOKIE
from node import Node
from phones import PhoneBook
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright
from test_wallboard_browser import _shows

__all__ = ["chromium"]  # the module's fixture, shared with the wallboard's browser test

logger = logging.getLogger(__name__)

WHISPER_MARGIN_DB = 50.0
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_phone_node(tmp_path_factory.mktemp("webrtc-node"), rtp_ports=(37500, 37999))
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _whisper_never_reaches(wav: Wav, reference_hz: float = BROWSER_HZ) -> None:
    """The supervisor's tone stays 50 dB under the operator's (`reference_hz`) in the customer's
    audio, over the whole recording and over every half second of it."""
    samples = wav.samples[round(0.1 * wav.rate) :]

    def margin(part: Samples) -> float:
        supervisor = tone_level_db(part, wav.rate, SUPERVISOR_HZ)
        return supervisor - tone_level_db(part, wav.rate, reference_hz)

    logger.info("whisper %.1f dB under the operator's tone for the customer", -margin(samples))
    assert margin(samples) <= -WHISPER_MARGIN_DB, f"whisper at {margin(samples):.1f} dB"
    window = wav.rate // 2
    for start in range(0, len(samples) - window + 1, window // 2):
        part = margin(samples[start : start + window])
        assert part <= -WHISPER_MARGIN_DB, f"at {start / wav.rate:.2f} s: {part:.1f} dB"


def test_the_desk_answers_a_queue_call_in_the_browser(
    chromium: Path, node: Node, phones: PhoneBook, tmp_path: Path
) -> None:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    microphone = write_tone_wav(tmp_path / "browser-880.wav", BROWSER_HZ, 90.0, 0.25, 48000)
    tones = {hz: write_tone_wav(tmp_path / f"{hz}.wav", hz, 90.0, 0.25) for hz in (440, 1300)}
    base = node.base_url
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium, node, microphone)
        context = browser.new_context(locale="ja-JP")
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        make_desk_phone_ready(page, base)
        expect(page.locator("#phone")).to_have_attribute("data-phone", "ready", timeout=WAIT_MS)
        microphones = page.get_by_label("マイク")
        expect(microphones).to_be_visible()
        assert microphones.locator("option").count() >= 1  # the fake device, to choose from
        microphones.select_option(index=0)

        desk_phone = sip_phone(phones, node, "op", tones[1300], answer_code=None)  # rings on
        customer = sip_phone(phones, node, "cust", tones[440])
        call = customer.dial("5001")
        ringing_sip = desk_phone.wait_incoming(timeout=20.0)
        phones.wait_until(lambda: phone_state(page) == "ringing", 20.0, "the browser ringing")
        page.get_by_role("button", name="応答").click()
        phones.wait_until(lambda: phone_state(page) == "talking", 20.0, "the browser talking")
        call.wait_confirmed()
        ringing_sip.wait_disconnected()  # cancelled: the browser answered first

        phones.run_for(1.0)
        call.record(phones.wav("customer-hears"))
        phones.run_for(2.0)
        heard = read_wav(call.stop_recording())
        snr = tone_snr_db(heard.samples, heard.rate, BROWSER_HZ, exclude_hz=(CUSTOMER_HZ,))
        assert snr > 30.0, f"the customer hears the browser's {BROWSER_HZ} Hz at {snr:.1f} dB"
        received = received_db(page, CUSTOMER_HZ)
        logger.info(
            "customer hears %d Hz at %.1f dB SNR, browser %d Hz %.1f dB",
            BROWSER_HZ,
            snr,
            CUSTOMER_HZ,
            received,
        )
        assert received > 20.0, f"the browser hears {CUSTOMER_HZ} Hz at {received:.1f} dB"
        assert received_db(page, SUPERVISOR_HZ) < received - 20.0

        page.get_by_role("button", name="保留", exact=True).click()
        phones.wait_until(lambda: phone_state(page) == "held", 10.0, "the call on hold")
        phones.run_for(0.5)
        call.record(phones.wav("customer-on-hold"))
        phones.run_for(1.5)
        held = read_wav(call.stop_recording())
        talking = tone_level_db(heard.samples, heard.rate, BROWSER_HZ)
        down = talking - tone_level_db(held.samples, held.rate, BROWSER_HZ)
        logger.info("on hold the browser's tone is %.1f dB under its level in the call", down)
        assert down > 50.0, f"on hold the customer hears the browser only {down:.1f} dB less"
        page.get_by_role("button", name="保留解除").click()
        phones.wait_until(lambda: phone_state(page) == "talking", 10.0, "the call resumed")
        phones.run_for(0.5)
        call.record(phones.wav("customer-resumed"))
        phones.run_for(1.5)
        resumed = read_wav(call.stop_recording())
        back = tone_snr_db(resumed.samples, resumed.rate, BROWSER_HZ, exclude_hz=(CUSTOMER_HZ,))
        assert back > 30.0, f"resumed, the customer hears the browser at {back:.1f} dB"

        supervisor = sip_phone(phones, node, "sup", tones[1300])
        call.record(phones.wav("customer-during-monitoring"))
        monitor = supervisor.dial("*912001")
        monitor.wait_confirmed()
        phones.run_for(1.0)
        monitor.send_dtmf("5")
        phones.run_for(2.5)
        whispered = received_db(page, SUPERVISOR_HZ)
        logger.info("the browser hears the whisper at %.1f dB", whispered)
        assert whispered > 20.0, f"the browser hears the whisper at {whispered:.1f} dB"
        _whisper_never_reaches(read_wav(call.stop_recording()))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "desk-browser-phone.png"))

        # Signed out from outside the page (its own fetch would race the reload the desk's
        # live feed does when it closes with 4401).
        csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
        cookies = {c["name"]: c["value"] for c in context.cookies() if c["name"] == SESSION_COOKIE}
        with httpx.Client(base_url=base, verify=node.tls_context(), cookies=cookies) as client:
            signed_out = time.monotonic()
            status = client.post("/api/v1/sessions/logout", headers={CSRF_HEADER: csrf})
        assert status.status_code == 204, status.text
        call.wait_disconnected(timeout=5.0)
        ended = time.monotonic() - signed_out
        logger.info("call ended %.3f s after signing out", ended)
        assert ended < 1.0, f"the call ended {ended:.2f} s after signing out"
        monitor.wait_disconnected(timeout=5.0)
        # The desk's live feed closes with 4401 too, and the page goes to the sign-in page.
        expect(page).to_have_url(re.compile(r"/sign-in\?next="), timeout=WAIT_MS)
        context.close()
        browser.close()
    assert problems == []


def _sign_in_supervisor(page: Page, base: str) -> None:
    page.goto(f"{base}/sign-in")
    page.get_by_label("ユーザー名").fill("sup")
    page.get_by_label("パスワード").fill(WEB_PASSWORD)
    page.get_by_role("button", name="サインイン", exact=True).click()
    expect(page.locator("#mfa-secret")).not_to_be_empty(timeout=WAIT_MS)
    secret = page.locator("#mfa-secret").inner_text().strip()
    page.locator("#step-enrol").get_by_label("確認コード").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="設定を完了").click()
    page.get_by_role("button", name="保管しました。続ける").click()
    expect(page).to_have_url(f"{base}/wallboard", timeout=WAIT_MS)
    expect(page.locator("body")).to_have_attribute("data-live", "connected", timeout=WAIT_MS)


def test_the_supervisor_console_whispers_from_the_browser(
    chromium: Path, node: Node, phones: PhoneBook, tmp_path: Path
) -> None:
    """A supervisor's browser phone (1300 Hz microphone) on the wallboard: the page's whisper
    rings it, it answers there, the operator (a SIP phone, 880 Hz) hears the whisper and the
    customer (440 Hz) does not, by at least 50 dB."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    microphone = write_tone_wav(tmp_path / "sup-1300.wav", SUPERVISOR_HZ, 90.0, 0.25, 48000)
    tones = {hz: write_tone_wav(tmp_path / f"{hz}.wav", hz, 90.0, 0.25) for hz in (440, 880)}
    base = node.base_url
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium, node, microphone)
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP")
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        _sign_in_supervisor(page, base)
        page.get_by_role("button", name="ブラウザー電話を接続").click()
        expect(page.locator("#phone")).to_have_attribute("data-phone", "ready", timeout=WAIT_MS)

        call, operator_call, row = monitor_in_the_browser(
            page, phones, node, tones, "whisper", "新人指導 QA-8"
        )
        phones.wait_until(lambda: _shows(row, "whisper"), 20.0, "whisper shown as joined")
        phones.run_for(1.0)
        call.record(phones.wav("customer-whispered"))
        operator_call.record(phones.wav("operator-whispered"))
        phones.run_for(2.5)
        customer_heard = read_wav(call.stop_recording())
        operator_heard = read_wav(operator_call.stop_recording())
        whisper = tone_snr_db(
            operator_heard.samples, operator_heard.rate, SUPERVISOR_HZ, exclude_hz=(CUSTOMER_HZ,)
        )
        logger.info("the operator hears the supervisor's browser at %.1f dB", whisper)
        assert whisper > 30.0, f"the operator hears the whisper at {whisper:.1f} dB"
        _whisper_never_reaches(customer_heard, BROWSER_HZ)
        heard = received_db(page, CUSTOMER_HZ)
        assert heard > 20.0, f"the supervisor's browser hears the customer at {heard:.1f} dB"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "wallboard-browser-whisper.png"))
        row.get_by_role("button", name="モニタリング終了").click()
        phones.wait_until(lambda: phone_state(page) == "ready", 10.0, "the supervisor's phone free")
        call.hangup()
        operator_call.wait_disconnected()
        context.close()
        browser.close()
    assert problems == []
