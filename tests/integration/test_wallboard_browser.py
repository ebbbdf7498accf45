"""The supervisor console in Debian's Chromium against a real node, with a real call: a customer
(pjsua2) calls the queue, the operator's phone answers, and the call appears on the wallboard
within a second; the supervisor starts listening from the page (the node rings the supervisor's
own phone, which answers), switches to whisper, and the page shows each mode. No console error
and no CSP violation on the way.

The browser part is like tests/browser (Playwright never downloads a browser); it lives here
because the pjsua2 library is one per process (this directory's `sip_endpoint`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import node as node_module
import pyotp
import pytest
from node import LOOPBACK, Node, start_node
from phones import Phone, PhoneBook
from playwright.sync_api import ConsoleMessage, Locator, Page, expect, sync_playwright

from tls_pin import chromium_pin_arguments

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""
SIP_PASSWORD = "wallboard-sip-secret"
WEB_PASSWORD = "wallboard-web-password-1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
WAIT_MS = 15_000


def _user(name: str, role: str, team: str, extension: str) -> str:
    return (
        f"  - {{username: {name}, role: {role}, team: {team}, extension: '{extension}',"
        f" sip_password: {SIP_PASSWORD}, password: {WEB_PASSWORD}}}\n"
    )


PROVISIONING = (
    "teams: [{name: north}, {name: street}]\nusers:\n"
    + _user("cust", "operator", "street", "1001")
    + _user("op", "operator", "north", "2001")
    + _user("sup", "supervisor", "north", "3001")
    + """queues:
  - {name: line, number: "5001", team: north, members: [op], wrap_up_seconds: 8}
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
    """A node whose HTTP port is known before it starts, so that its page's origin is an
    allowed origin of its live WebSocket."""
    sip_port, http_port = node_module.free_port(), node_module.free_port()
    ports = iter((sip_port, http_port))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(node_module, "free_port", lambda: next(ports))
        started = start_node(
            tmp_path_factory.mktemp("wallboard-node"),
            PROVISIONING,
            rtp_ports=(37000, 37499),
            extra_env={
                "CALLWARDEN_ALLOWED_ORIGINS": f"https://{LOOPBACK}:{http_port}",
                "CALLWARDEN_ACD_AUTO_SIGN_IN": "true",
                "CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000",
            },
        )
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _phone(phones: PhoneBook, node: Node, name: str, tone: Path) -> Phone:
    phone = phones.create(name, password=SIP_PASSWORD, registrar=node.registrar)
    assert phone.register() == 200
    phone.play(tone)
    return phone


def _shows(row: Locator, mode: str) -> bool:
    """Whether the call's row shows the supervisor's session joined in `mode`."""
    text = row.locator('[data-field="session"]').inner_text()
    return row.get_attribute("data-mode") == mode and "参加中" in text


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


def test_a_real_call_on_the_wallboard_listen_then_whisper(
    chromium: Path, node: Node, phones: PhoneBook, tones: dict[int, Path]
) -> None:
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    base = node.base_url
    with sync_playwright() as playwright:
        # HTTPS with the node's own self-signed certificate, trusted by its pinned key only
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS + chromium_pin_arguments(node.certificate),
        )
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="ja-JP")
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        _sign_in_supervisor(page, base)

        operator = _phone(phones, node, "op", tones[880])
        customer = _phone(phones, node, "cust", tones[440])
        supervisor = _phone(phones, node, "sup", tones[1300])
        phones.wait_until(
            lambda: page.evaluate(
                "[...document.querySelectorAll('#agents tr')]"
                ".some((row) => row.dataset.state === 'available')"
            ),
            15.0,
            "the operator available on the wallboard",
        )
        call = customer.dial("5001")
        call.wait_confirmed()
        operator.wait_incoming().wait_confirmed()
        answered = time.monotonic()
        row_of_call = "document.querySelector('#calls tbody tr[data-call-id]') !== null"
        phones.wait_until(lambda: page.evaluate(row_of_call), 5.0, "the call on the wallboard")
        assert time.monotonic() - answered < 1.0
        row = page.locator("#calls tbody tr").first
        expect(row.locator('[data-field="queue"]')).to_have_text("line")

        row.get_by_label("方法").select_option("listen")
        row.get_by_label("理由").fill("品質確認 QA-21")
        with page.expect_response("**/api/v1/monitoring") as started:
            row.get_by_role("button", name="モニタリング開始").click()
        assert started.value.status == 201, started.value.text()
        listening = supervisor.wait_incoming(timeout=15.0)  # margins for a loaded machine
        listening.wait_confirmed()
        phones.wait_until(lambda: _shows(row, "listen"), 15.0, "listening shown as joined")
        row.get_by_label("切り替え先").select_option("whisper")
        row.get_by_role("button", name="切り替え").click()
        phones.wait_until(lambda: _shows(row, "whisper"), 15.0, "whisper shown as joined")
        expect(row.locator('[data-field="session"]')).to_contain_text("ささやき")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "wallboard-real-call.png"))
        row.get_by_role("button", name="モニタリング終了").click()
        listening.wait_disconnected()
        call.hangup()
        phones.wait_until(
            lambda: page.evaluate("document.querySelector('#calls tbody tr') === null"),
            10.0,
            "the call gone from the wallboard",
        )
        context.close()
        browser.close()
    assert problems == []
