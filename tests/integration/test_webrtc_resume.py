"""A call in progress survives a short loss of the browser phone's connection, end to end
(docs/webrtc.md, "A call survives a short network change"): Debian's Chromium with a fake
microphone (880 Hz) at the desk answers a pjsua2 customer's (440 Hz) queue call, against a real
node over HTTPS whose grace period is 8 s.

- The page's network path breaks: `window.callwardenPhone.interrupt()` drops its signalling
  WebSocket and closes its RTCPeerConnection at once, as a network change does. (Playwright's
  offline emulation is no stand-in: it leaves an open WebSocket and a peer connection's UDP
  alone.) The customer's call stays up; the page shows that it is reconnecting with the call
  kept, its timer running; it connects again with the call's rejoin token and a new peer
  connection, and by FFT the customer hears the browser's tone again and the browser's
  analyser the customer's.
- A drop the page cannot come back from in time (its rejoining sockets are refused, through
  Playwright's WebSocket routing): the grace period runs out, the node hangs the customer's
  call up (logged as `connection_lost`), and the page, once the call is gone, opens a new
  phone and is ready for calls again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from audio import read_wav, tone_snr_db, write_tone_wav
from browser_phone import (
    BROWSER_HZ,
    CSP_LISTENER,
    CUSTOMER_HZ,
    WAIT_MS,
    PeerConnections,
    chromium,
    launch_chromium,
    make_desk_phone_ready,
    phone_state,
    received_db,
    sip_phone,
    start_phone_node,
)
from node import Node
from phones import PhoneBook, PhoneCall
from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect, sync_playwright

__all__ = ["chromium"]

logger = logging.getLogger(__name__)

GRACE_SECONDS = 8.0
REJOINING_JA = "接続が切れました。再接続しています。通話はそのまま保たれています…"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_phone_node(
        tmp_path_factory.mktemp("resume-node"),
        rtp_ports=(31200, 31499),
        extra_env={"CALLWARDEN_WEBRTC_REJOIN_GRACE_SECONDS": str(GRACE_SECONDS)},
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


class Desk:
    """The operator's desk page with its browser phone ready, and what went wrong on it."""

    def __init__(
        self,
        context: BrowserContext,
        base: str,
        rejoins: Callable[[WebSocketRoute], None] | None = None,
    ) -> None:
        """`rejoins`, when given, takes every socket by which the page tries to take a call
        back (Playwright's WebSocket routing, set before the page loads)."""
        self.problems: list[str] = []
        context.add_init_script(CSP_LISTENER)
        context.add_init_script(PeerConnections.INIT_SCRIPT)
        self.page = context.new_page()
        if rejoins is not None:
            self.page.route_web_socket(lambda url: "/api/v1/phone?rejoin=1" in url, rejoins)
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        make_desk_phone_ready(self.page, base)
        expect(self.page.locator("#phone")).to_have_attribute(
            "data-phone", "ready", timeout=WAIT_MS
        )
        self.peers = PeerConnections(self.page)


def _answered(desk: Desk, node: Node, phones: PhoneBook, tone: Path) -> PhoneCall:
    page = desk.page
    customer = sip_phone(phones, node, "cust", tone)
    call = customer.dial("5001")
    phones.wait_until(lambda: phone_state(page) == "ringing", 20.0, "the browser ringing")
    page.get_by_role("button", name="応答").click()
    phones.wait_until(lambda: phone_state(page) == "talking", 20.0, "the browser talking")
    call.wait_confirmed()
    return call


def _both_ways(page: Page, call: PhoneCall, phones: PhoneBook, when: str) -> None:
    """The customer hears the browser's tone and the browser the customer's, over 2 s."""
    call.record(phones.wav(f"customer-hears-{when}"))
    phones.run_for(2.0)
    heard = read_wav(call.stop_recording())
    snr = tone_snr_db(heard.samples, heard.rate, BROWSER_HZ, exclude_hz=(CUSTOMER_HZ,))
    received = received_db(page, CUSTOMER_HZ)
    logger.info(
        "%s: the customer hears %d Hz at %.1f dB SNR, the browser %d Hz at %.1f dB",
        when,
        BROWSER_HZ,
        snr,
        CUSTOMER_HZ,
        received,
    )
    assert snr > 30.0, f"{when}: the customer hears the browser at {snr:.1f} dB"
    assert received > 20.0, f"{when}: the browser hears the customer at {received:.1f} dB"


def _seconds(clock: str) -> int:
    """`m:ss` or `h:mm:ss` (the phone's call timer) in seconds."""
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return total


def test_a_call_survives_a_dropped_connection_and_its_audio_comes_back(
    chromium: Path, node: Node, phones: PhoneBook, tmp_path: Path
) -> None:
    microphone = write_tone_wav(tmp_path / "browser-880.wav", BROWSER_HZ, 90.0, 0.25, 48000)
    customer_tone = write_tone_wav(tmp_path / "customer-440.wav", CUSTOMER_HZ, 90.0, 0.25)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium, node, microphone)
        context = browser.new_context(locale="ja-JP")
        desk = Desk(context, node.base_url)
        page = desk.page
        call = _answered(desk, node, phones, customer_tone)
        phones.run_for(1.0)
        _both_ways(page, call, phones, "before the drop")
        assert desk.peers.count() == 1
        # The call has run for 3 s; the timer shows whole seconds and is redrawn once a second.
        before = page.locator("#phone-time").inner_text()
        assert _seconds(before) >= 1, f"the call timer shows {before!r} before the drop"

        dropped = time.monotonic()
        page.evaluate("window.callwardenPhone.interrupt()")
        phones.wait_until(lambda: phone_state(page) == "rejoining", 5.0, "the page rejoining")
        expect(page.locator("#phone-status")).to_have_text(REJOINING_JA)
        timer = page.locator("#phone-time").inner_text()
        assert _seconds(timer) >= _seconds(before), (
            f"the call timer went from {before!r} to {timer!r} while rejoining"
        )
        phones.wait_until(lambda: phone_state(page) == "talking", 20.0, "the call taken back")
        back = time.monotonic() - dropped
        logger.info("the page took its call back %.2f s after the drop", back)
        assert call.is_active, "the customer's call ended with the page's connection"
        assert desk.peers.count() == 2  # a new peer connection carries the call
        assert _seconds(page.locator("#phone-time").inner_text()) >= _seconds(timer)

        phones.run_for(1.0)
        _both_ways(page, call, phones, "after taking the call back")
        assert call.is_active
        page.get_by_role("button", name="切断").click()
        call.wait_disconnected(timeout=10.0)
        phones.wait_until(lambda: phone_state(page) == "ready", 10.0, "the browser free again")
        context.close()
        browser.close()
    assert desk.problems == []


def test_a_drop_whose_grace_period_runs_out_ends_the_customers_call(
    chromium: Path, node: Node, phones: PhoneBook, tmp_path: Path
) -> None:
    microphone = write_tone_wav(tmp_path / "browser-880.wav", BROWSER_HZ, 90.0, 0.25, 48000)
    customer_tone = write_tone_wav(tmp_path / "customer-440.wav", CUSTOMER_HZ, 90.0, 0.25)
    refused: list[str] = []

    def refuse(socket: WebSocketRoute) -> None:
        refused.append(socket.url)
        socket.close(code=1011, reason="network still down")

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium, node, microphone)
        context = browser.new_context(locale="ja-JP")
        desk = Desk(context, node.base_url, rejoins=refuse)
        page = desk.page
        call = _answered(desk, node, phones, customer_tone)
        phones.run_for(1.0)

        dropped = time.monotonic()
        page.evaluate("window.callwardenPhone.interrupt()")
        phones.wait_until(lambda: phone_state(page) == "rejoining", 5.0, "the page rejoining")
        phones.wait_until(  # asking the page each time lets Playwright run the routing
            lambda: phone_state(page) is not None and not call.is_active,
            GRACE_SECONDS + 10.0,
            "the customer's call ended",
        )
        ended = time.monotonic() - dropped
        logger.info(
            "the customer's call ended %.2f s after the drop (grace %.0f s, %d rejoins refused)",
            ended,
            GRACE_SECONDS,
            len(refused),
        )
        assert GRACE_SECONDS - 1.0 <= ended <= GRACE_SECONDS + 5.0, ended
        assert refused, "the page never tried to take its call back"
        phones.wait_until(lambda: phone_state(page) == "ready", 30.0, "a new phone, ready")
        assert page.locator("#phone-time").inner_text() == ""
        assert "the connection was lost for 8 s" in node.log()
        context.close()
        browser.close()
    assert desk.problems == []
