"""The browser phone end to end, in Debian's Chromium with a fake microphone playing an 880 Hz
tone (`--use-file-for-fake-audio-capture`), against a real node: a customer (pjsua2, 440 Hz)
calls the queue, the operator's desk rings in the browser and answers there (WebRTC to the
node's aiortc, relayed into the call's bridge); the customer's recording shows the browser's
880 Hz by FFT and the browser's received audio (the phone module's WebAudio analyser) shows
the customer's 440 Hz. Then the operator signs out: the node closes the browser's media and
hangs up the call within a second.

It lives beside the other pjsua2 tests (one pjsua2 library per process: `sip_endpoint`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import node as node_module
import pytest
from audio import read_wav, tone_snr_db, write_tone_wav
from node import LOOPBACK, Node, start_node
from phones import PhoneBook
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
SIP_PASSWORD = "webrtc-sip-secret"
WEB_PASSWORD = "webrtc-web-password-1"
WAIT_MS = 20_000
BROWSER_HZ = 880
CUSTOMER_HZ = 440
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def _user(name: str, role: str, team: str, extension: str) -> str:
    return (
        f"  - {{username: {name}, role: {role}, team: {team}, extension: '{extension}',"
        f" sip_password: {SIP_PASSWORD}, password: {WEB_PASSWORD}}}\n"
    )


PROVISIONING = (
    "teams: [{name: north}, {name: street}]\nusers:\n"
    + _user("cust", "operator", "street", "1001")
    + _user("op", "operator", "north", "2001")
    + """queues:
  - {name: line, number: "5001", team: north, members: [op], wrap_up_seconds: 5}
"""
)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium, or `make test`)")
    return CHROMIUM


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    sip_port, http_port = node_module.free_port(), node_module.free_port()
    ports = iter((sip_port, http_port))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(node_module, "free_port", lambda: next(ports))
        started = start_node(
            tmp_path_factory.mktemp("webrtc-node"),
            PROVISIONING,
            rtp_ports=(37500, 37999),
            extra_env={
                "CALLWARDEN_ALLOWED_ORIGINS": f"http://{LOOPBACK}:{http_port}",
                "CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000",
                "CALLWARDEN_HTTP_PLAINTEXT": "true",  # loopback: a secure context for WebRTC
            },
        )
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _sign_in_operator(page: Page, base: str) -> None:
    page.goto(f"{base}/sign-in")
    page.get_by_label("ユーザー名").fill("op")
    page.get_by_label("パスワード").fill(WEB_PASSWORD)
    page.get_by_role("button", name="サインイン", exact=True).click()
    expect(page).to_have_url(f"{base}/desk", timeout=WAIT_MS)
    expect(page.locator("body")).to_have_attribute("data-live", "connected", timeout=WAIT_MS)


def _phone(page: Page) -> str | None:
    return page.locator("#phone").get_attribute("data-phone")


def _received_snr(page: Page, freq_hz: float, exclude_hz: float) -> float:
    """The browser's received tone over the spectrum's median (dB), from the analyser."""
    spectrum = page.evaluate("window.callwardenPhone.spectrum()")
    assert spectrum is not None, "the phone has no analyser"
    decibels = spectrum["decibels"]
    bin_hz = spectrum["binHz"]

    def peak(freq: float) -> float:
        centre = round(freq / bin_hz)
        return max(decibels[centre - 2 : centre + 3])

    floor = sorted(d for i, d in enumerate(decibels) if i * bin_hz < 3800)
    median = floor[len(floor) // 2]
    assert peak(freq_hz) > peak(exclude_hz), (peak(freq_hz), peak(exclude_hz))
    return peak(freq_hz) - median


def test_the_desk_answers_a_queue_call_in_the_browser(
    chromium: Path, node: Node, phones: PhoneBook, tmp_path: Path
) -> None:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    microphone = write_tone_wav(tmp_path / "browser-880.wav", BROWSER_HZ, 90.0, 0.25, 48000)
    customer_tone = write_tone_wav(tmp_path / "customer-440.wav", CUSTOMER_HZ, 90.0, 0.25)
    base = f"http://{LOOPBACK}:{node.http_port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--autoplay-policy=no-user-gesture-required",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone}",
            ],
        )
        context = browser.new_context(locale="ja-JP")
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        _sign_in_operator(page, base)
        page.get_by_role("button", name="受付可能にする").click()
        page.get_by_role("button", name="ブラウザー電話を接続").click()
        expect(page.locator("#phone")).to_have_attribute("data-phone", "ready", timeout=WAIT_MS)

        customer = phones.create("cust", password=SIP_PASSWORD, registrar=node.registrar)
        assert customer.register() == 200
        customer.play(customer_tone)
        call = customer.dial("5001")
        phones.wait_until(lambda: _phone(page) == "ringing", 20.0, "the browser ringing")
        page.get_by_role("button", name="応答").click()
        phones.wait_until(lambda: _phone(page) == "talking", 20.0, "the browser talking")
        call.wait_confirmed()
        phones.run_for(1.0)
        call.record(phones.wav("customer-hears"))
        phones.run_for(2.0)
        heard = read_wav(call.stop_recording())
        snr = tone_snr_db(heard.samples, heard.rate, BROWSER_HZ, exclude_hz=(CUSTOMER_HZ,))
        assert snr > 30.0, f"the customer hears the browser's {BROWSER_HZ} Hz at {snr:.1f} dB"
        received = _received_snr(page, CUSTOMER_HZ, BROWSER_HZ)
        assert received > 20.0, f"the browser hears {CUSTOMER_HZ} Hz at {received:.1f} dB"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "desk-browser-phone.png"))

        signed_out = time.monotonic()
        status = page.evaluate(
            """async () => {
                const token = document.querySelector('meta[name="csrf-token"]').content;
                const response = await fetch("/api/v1/sessions/logout", {
                    method: "POST", headers: {"X-CSRF-Token": token}});
                return response.status;
            }"""
        )
        assert status == 204
        call.wait_disconnected(timeout=5.0)
        ended = time.monotonic() - signed_out
        assert ended < 1.0, f"the call ended {ended:.2f} s after signing out"
        # The desk's live feed closes with 4401 too, and the page goes to the sign-in page.
        expect(page).to_have_url(re.compile(r"/sign-in\?next="), timeout=WAIT_MS)
        context.close()
        browser.close()
    assert problems == []
