"""What the browser phone's end-to-end tests share (test_webrtc_phone.py,
test_webrtc_codecs_turn.py, test_webrtc_resume.py): the organisation of a customer, an operator
and a supervisor with a queue, a node started for the browser (its HTTPS origin allowed),
Debian's Chromium with a fake microphone playing a tone, the operator's desk signed in with its
browser phone connecting, SIP phones (pjsua2) playing tones, the browser's received spectrum
through the phone module's analyser, and the page's peer connections with their statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import node as node_module
import pytest
from monitoring_api import ApiClient
from node import LOOPBACK, Node, start_node
from phones import Phone, PhoneBook, PhoneCall
from playwright.sync_api import Browser, Locator, Page, Playwright, expect
from test_wallboard_browser import CHROMIUM_ARGS, CSP_LISTENER, chromium

from tls_pin import chromium_pin_arguments

__all__ = [
    "BROWSER_HZ",
    "CSP_LISTENER",
    "CUSTOMER_HZ",
    "MEDIA_ARGS",
    "PROVISIONING",
    "SIP_PASSWORD",
    "SUPERVISOR_HZ",
    "WAIT_MS",
    "WEB_PASSWORD",
    "PeerConnections",
    "chromium",
    "launch_chromium",
    "make_desk_phone_ready",
    "monitor_in_the_browser",
    "phone_state",
    "received_db",
    "sip_phone",
    "start_phone_node",
]

SIP_PASSWORD = "webrtc-sip-secret"
WEB_PASSWORD = "webrtc-web-password-1"
WAIT_MS = 20_000
BROWSER_HZ = 880
CUSTOMER_HZ = 440
SUPERVISOR_HZ = 1300
MEDIA_ARGS = [
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
PEOPLE = (
    ("cust", "operator", "street", "1001"),
    ("op", "operator", "north", "2001"),
    ("sup", "supervisor", "north", "3001"),
)
PROVISIONING = (
    "teams: [{name: north}, {name: street}]\nusers:\n"
    + "".join(
        f"  - {{username: {name}, role: {role}, team: {team}, extension: '{extension}',"
        f" sip_password: {SIP_PASSWORD}, password: {WEB_PASSWORD}}}\n"
        for name, role, team, extension in PEOPLE
    )
    + 'queues:\n  - {name: line, number: "5001", team: north, members: [op], wrap_up_seconds: 5}\n'
)


def start_phone_node(
    directory: Path,
    *,
    rtp_ports: tuple[int, int],
    extra_env: dict[str, str] | None = None,
    provisioning: str = PROVISIONING,
) -> Node:
    """A node of `provisioning` whose HTTPS origin is allowed for the browser's WebSockets."""
    sip_port, http_port = node_module.free_port(), node_module.free_port()
    ports = iter((sip_port, http_port))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(node_module, "free_port", lambda: next(ports))
        return start_node(
            directory,
            provisioning,
            rtp_ports=rtp_ports,
            extra_env={
                "CALLWARDEN_ALLOWED_ORIGINS": f"https://{LOOPBACK}:{http_port}",
                "CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000",
                **(extra_env or {}),
            },
        )


def launch_chromium(
    playwright: Playwright, chromium: Path, node: Node, microphone: Path
) -> Browser:
    """Debian's Chromium trusting the node's certificate, its microphone playing `microphone`."""
    return playwright.chromium.launch(
        executable_path=str(chromium),
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            *chromium_pin_arguments(node.certificate),
            *MEDIA_ARGS,
            f"--use-file-for-fake-audio-capture={microphone}",
        ],
    )


def make_desk_phone_ready(page: Page, base: str) -> None:
    """`op` signs in at the desk (in Japanese), becomes available and connects the browser
    phone (the caller waits for the state it expects: `ready`, `relay_failed`...)."""
    page.goto(f"{base}/sign-in")
    page.get_by_label("ユーザー名").fill("op")
    page.get_by_label("パスワード").fill(WEB_PASSWORD)
    page.get_by_role("button", name="サインイン", exact=True).click()
    expect(page).to_have_url(f"{base}/desk", timeout=WAIT_MS)
    expect(page.locator("body")).to_have_attribute("data-live", "connected", timeout=WAIT_MS)
    page.get_by_role("button", name="受付可能にする").click()
    page.get_by_role("button", name="ブラウザー電話を接続").click()


def sip_phone(
    phones: PhoneBook, node: Node, name: str, tone: Path, answer_code: int | None = 200
) -> Phone:
    """`name`'s SIP phone registered to the node, playing `tone`."""
    phone = phones.create(
        name, password=SIP_PASSWORD, registrar=node.registrar, answer_code=answer_code
    )
    assert phone.register() == 200
    phone.play(tone)
    return phone


def monitor_in_the_browser(
    page: Page, phones: PhoneBook, node: Node, tones: dict[int, Path], mode: str, reason: str
) -> tuple[PhoneCall, PhoneCall, Locator]:
    """`op`'s SIP phone (880 Hz) takes `cust`'s queue call (440 Hz); the supervisor's wallboard
    (`page`, its browser phone ready) starts monitoring the call in `mode` and answers its
    browser phone. Returns the customer's call, the operator's call and the call's row."""
    operator = sip_phone(phones, node, "op", tones[880])
    customer = sip_phone(phones, node, "cust", tones[440])
    api = ApiClient(node, "op", WEB_PASSWORD).sign_in()
    try:
        assert api.request("POST", "/api/v1/agents/me/state", {"state": "available"}).is_success
    finally:
        api.close()
    call = customer.dial("5001")
    call.wait_confirmed()
    operator_call = operator.wait_incoming()
    operator_call.wait_confirmed()
    phones.wait_until(
        lambda: page.evaluate("document.querySelector('#calls tbody tr[data-call-id]') !== null"),
        10.0,
        "the call on the wallboard",
    )
    row = page.locator("#calls tbody tr").first
    row.get_by_label("方法").select_option(mode)
    row.get_by_label("理由").fill(reason)
    with page.expect_response("**/api/v1/monitoring") as started:
        row.get_by_role("button", name="モニタリング開始").click()
    assert started.value.status == 201, started.value.text()
    phones.wait_until(
        lambda: phone_state(page) == "ringing", 20.0, "the supervisor's browser ringing"
    )
    page.get_by_role("button", name="応答").click()
    return call, operator_call, row


def phone_state(page: Page) -> str | None:
    return page.locator("#phone").get_attribute("data-phone")


def received_db(page: Page, freq_hz: float) -> float:
    """The browser's received level at `freq_hz` over the spectrum's median (dB), from the
    phone module's analyser."""
    spectrum = page.evaluate("window.callwardenPhone.spectrum()")
    assert spectrum is not None, "the phone has no analyser"
    decibels, bin_hz = spectrum["decibels"], spectrum["binHz"]
    centre = round(freq_hz / bin_hz)
    band = sorted(d for i, d in enumerate(decibels) if i * bin_hz < 3800)
    return float(max(decibels[centre - 2 : centre + 3]) - band[len(band) // 2])


class PeerConnections:
    """The page's RTCPeerConnections, newest last (kept by `INIT_SCRIPT`, added to the browser
    context before the page loads), and what their statistics say."""

    INIT_SCRIPT = """
(() => {
  const Original = window.RTCPeerConnection;
  const made = [];
  window.__peerConnections = made;
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      made.push(this);
    }
  };
})();
"""

    def __init__(self, page: Page) -> None:
        self.page = page

    def count(self) -> int:
        return int(self.page.evaluate("window.__peerConnections.length"))

    def configuration(self) -> dict[str, Any]:
        """The newest peer connection's `getConfiguration()` (iceServers, iceTransportPolicy)."""
        configuration: dict[str, Any] = self.page.evaluate(
            "(() => { const { iceServers, iceTransportPolicy, bundlePolicy } ="
            " window.__peerConnections.at(-1).getConfiguration();"
            " return { iceServers, iceTransportPolicy, bundlePolicy }; })()"
        )
        return configuration

    def selected_pair(self) -> dict[str, Any]:
        """The newest peer connection's selected candidate pair (`state`, `local` and `remote`
        candidate statistics) and its audio: `inboundCodec`, `outboundCodec`,
        `packetsReceived`, `packetsSent`."""
        pair: dict[str, Any] = self.page.evaluate(
            """async () => {
  const stats = await window.__peerConnections.at(-1).getStats();
  const all = new Map();
  stats.forEach((report) => all.set(report.id, report));
  const reports = [...all.values()];
  const transport = reports.find((r) => r.type === "transport");
  const pair = all.get(transport?.selectedCandidatePairId)
    ?? reports.find((r) => r.type === "candidate-pair" && r.nominated && r.state === "succeeded");
  const inbound = reports.find((r) => r.type === "inbound-rtp" && r.kind === "audio");
  const outbound = reports.find((r) => r.type === "outbound-rtp" && r.kind === "audio");
  const codec = (rtp) => (rtp ? all.get(rtp.codecId)?.mimeType ?? null : null);
  return {
    state: pair?.state ?? null,
    local: all.get(pair?.localCandidateId) ?? null,
    remote: all.get(pair?.remoteCandidateId) ?? null,
    inboundCodec: codec(inbound),
    outboundCodec: codec(outbound),
    packetsReceived: inbound?.packetsReceived ?? 0,
    packetsSent: outbound?.packetsSent ?? 0,
  };
}"""
        )
        return pair
