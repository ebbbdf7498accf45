"""The browser phone with Opus, and through a real TURN server, end to end: Debian's Chromium
with a fake microphone (880 Hz) answers a pjsua2 customer's (440 Hz) queue call at the desk.

- A node that prefers Opus (`webrtc_codecs: opus,pcmu`, though Chromium offers PCMU too): the
  `connected` message and the browser's own statistics name Opus both ways; the customer's
  recording shows the browser's tone by FFT and the page's WebAudio analyser the customer's.
- A node whose pages may only relay through TURN (`webrtc_ice_transport_policy: relay`), with
  coturn's `turnserver` started here on loopback (`use-auth-secret`, the node's shared secret):
  the browser's selected candidate pair is local `relay`, the tones pass both ways through it,
  and turnserver's log shows the allocation of the credential's user. With a TURN server whose
  secret is not the node's, the page says so (`relay_failed`) instead of hanging.

Under CI=true a missing `turnserver` fails the test (`make test` installs Debian's coturn).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from audio import read_wav, tone_snr_db, write_tone_wav
from browser_phone import (
    BROWSER_HZ,
    CSP_LISTENER,
    CUSTOMER_HZ,
    SUPERVISOR_HZ,
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
from node import LOOPBACK, Node, free_port
from phones import PhoneBook
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    WebSocket,
    expect,
    sync_playwright,
)

__all__ = ["chromium"]

logger = logging.getLogger(__name__)

TURN_REALM = "callwarden.test"
TURN_RELAY_PORTS = (32800, 32999)
"""coturn's relayed transport addresses (loopback); no other test uses this range."""
STUN_BINDING_REQUEST = 0x0001
STUN_MAGIC_COOKIE = 0x2112A442
START_TIMEOUT_S = 15.0


# -- coturn ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def turnserver() -> Path:
    found = shutil.which("turnserver")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("turnserver is missing: `make test` installs Debian's coturn")
        pytest.skip("turnserver is missing (apt-get install coturn, or `make test`)")
    return Path(found)


@dataclass
class TurnServer:
    """One `turnserver` process on loopback, with its own configuration and log file."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _stun_answers(port: int) -> bool:
    """Whether a STUN binding request (RFC 5389 6) to loopback `port` gets a response."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.3)
        transaction = secrets.token_bytes(12)
        request = struct.pack("!HHI", STUN_BINDING_REQUEST, 0, STUN_MAGIC_COOKIE) + transaction
        probe.sendto(request, (LOOPBACK, port))
        try:
            response = probe.recv(2048)
        except (TimeoutError, ConnectionRefusedError):
            return False
        return response[8:20] == transaction


def start_turnserver(binary: Path, directory: Path, port: int, secret: str) -> TurnServer:
    """coturn with the TURN REST API credentials (`use-auth-secret`), as docs/webrtc.md says,
    listening on loopback UDP `port` only (no TLS), relaying on loopback."""
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "turnserver.log"
    config = directory / "turnserver.conf"
    config.write_text(
        "\n".join(
            [
                f"listening-ip={LOOPBACK}",
                f"listening-port={port}",
                f"relay-ip={LOOPBACK}",
                f"min-port={TURN_RELAY_PORTS[0]}",
                f"max-port={TURN_RELAY_PORTS[1]}",
                "use-auth-secret",
                f"static-auth-secret={secret}",
                f"realm={TURN_REALM}",
                "allow-loopback-peers",
                "no-tls",
                "no-dtls",
                "no-tcp-relay",
                "no-cli",
                "verbose",
                "simple-log",
                f"log-file={log_path}",
                f"pidfile={directory / 'turnserver.pid'}",
                f"userdb={directory / 'turndb'}",
                "",
            ]
        )
    )
    output = (directory / "turnserver.out").open("ab")
    process = subprocess.Popen(
        [str(binary), "-c", str(config)], stdout=output, stderr=subprocess.STDOUT
    )
    output.close()
    server = TurnServer(process, port, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = (directory / "turnserver.out").read_text(errors="replace")
            raise RuntimeError(
                f"turnserver exited with {process.returncode}:\n{out}\n{server.log()}"
            )
        if _stun_answers(port):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"turnserver did not answer STUN within {START_TIMEOUT_S:.0f} s")


@pytest.fixture(scope="module")
def turn_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def turn_secret() -> str:
    return secrets.token_urlsafe(32)


# -- nodes ----------------------------------------------------------------------------------------


def _stopped(node: Node) -> None:
    code = node.stop()
    assert code == 0, node.log()


@pytest.fixture(scope="module")
def opus_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_phone_node(
        tmp_path_factory.mktemp("opus-node"),
        rtp_ports=(32200, 32499),
        extra_env={"CALLWARDEN_WEBRTC_CODECS": "opus,pcmu"},
    )
    yield started
    _stopped(started)


@pytest.fixture(scope="module")
def relay_node(
    tmp_path_factory: pytest.TempPathFactory, turn_port: int, turn_secret: str
) -> Iterator[Node]:
    directory = tmp_path_factory.mktemp("relay-node")
    secret_file = directory / "turn.secret"
    secret_file.write_text(turn_secret + "\n")
    started = start_phone_node(
        directory,
        rtp_ports=(32500, 32799),
        extra_env={
            "CALLWARDEN_WEBRTC_TURN_URLS": f"turn:{LOOPBACK}:{turn_port}?transport=udp",
            "CALLWARDEN_WEBRTC_TURN_SECRET_FILE": str(secret_file),
            "CALLWARDEN_WEBRTC_ICE_TRANSPORT_POLICY": "relay",
        },
    )
    yield started
    _stopped(started)


# -- the page -------------------------------------------------------------------------------------


@dataclass
class DeskPage:
    browser: Browser
    context: BrowserContext
    page: Page
    messages: list[dict[str, Any]]
    """What the node sent the page on its phone socket, in order."""
    sent: list[dict[str, Any]]
    """What the page sent the node."""
    problems: list[str]

    def message(self, kind: str) -> dict[str, Any]:
        found = [m for m in self.messages if m.get("type") == kind]
        assert found, f"no {kind!r} message among {[m.get('type') for m in self.messages]}"
        return found[-1]

    def close(self) -> None:
        self.context.close()
        self.browser.close()


def _open_desk(playwright: Any, chromium: Path, node: Node, microphone: Path) -> DeskPage:
    browser = launch_chromium(playwright, chromium, node, microphone)
    context = browser.new_context(locale="ja-JP")
    context.add_init_script(CSP_LISTENER)
    context.add_init_script(PeerConnections.INIT_SCRIPT)
    page = context.new_page()
    desk = DeskPage(browser, context, page, [], [], [])

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            desk.problems.append(message.text)

    def on_socket(socket: WebSocket) -> None:
        if socket.url.endswith("/api/v1/phone"):
            socket.on("framereceived", lambda payload: desk.messages.append(json.loads(payload)))
            socket.on("framesent", lambda payload: desk.sent.append(json.loads(payload)))

    page.on("console", on_console)
    page.on("pageerror", lambda error: desk.problems.append(f"uncaught: {error}"))
    page.on("websocket", on_socket)
    make_desk_phone_ready(page, node.base_url)
    return desk


INBOUND_BYTES = """async () => {
  let bytes = 0;
  (await window.__peerConnections.at(-1).getStats()).forEach((report) => {
    if (report.type === "inbound-rtp" && report.kind === "audio") bytes = report.bytesReceived;
  });
  return bytes;
}"""


def _received_kbit_per_second(page: Page, phones: PhoneBook, seconds: float = 2.0) -> float:
    """The browser's received audio payload rate (inbound-rtp bytesReceived, RTP headers not
    counted), over `seconds`."""
    first, started = int(page.evaluate(INBOUND_BYTES)), time.monotonic()
    phones.run_for(seconds)
    last = int(page.evaluate(INBOUND_BYTES))
    return (last - first) * 8 / (time.monotonic() - started) / 1000


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Heard:
    customer_snr_db: float
    """The browser's tone in the customer's recording, over the floor."""
    browser_db: float
    """The customer's tone in the page's analyser, over the spectrum's median."""
    node_cpu_percent: float
    """The node's CPU (of one core) while the call was measured."""


def _answer_and_listen(
    desk: DeskPage, node: Node, phones: PhoneBook, tones: dict[int, Path]
) -> tuple[Heard, Callable[[], None]]:
    """The customer calls the queue, the browser answers; both directions are measured over
    3 s. Returns what was heard and a function that hangs up."""
    page = desk.page
    customer = sip_phone(phones, node, "cust", tones[CUSTOMER_HZ])
    call = customer.dial("5001")
    phones.wait_until(lambda: phone_state(page) == "ringing", 20.0, "the browser ringing")
    page.get_by_role("button", name="応答").click()
    phones.wait_until(lambda: phone_state(page) == "talking", 20.0, "the browser talking")
    call.wait_confirmed()
    phones.run_for(1.0)
    before, started = _cpu_seconds(node.process.pid), time.monotonic()
    call.record(phones.wav("customer-hears"))
    phones.run_for(3.0)
    cpu = (_cpu_seconds(node.process.pid) - before) / (time.monotonic() - started) * 100
    heard = read_wav(call.stop_recording())
    snr = tone_snr_db(heard.samples, heard.rate, BROWSER_HZ, exclude_hz=(CUSTOMER_HZ,))
    received = received_db(page, CUSTOMER_HZ)
    logger.info(
        "customer hears the browser's %d Hz at %.1f dB SNR; the browser hears %d Hz at %.1f dB;"
        " node CPU %.1f %% of a core",
        BROWSER_HZ,
        snr,
        CUSTOMER_HZ,
        received,
        cpu,
    )
    assert snr > 30.0, f"the customer hears the browser's {BROWSER_HZ} Hz at {snr:.1f} dB"
    assert received > 20.0, f"the browser hears {CUSTOMER_HZ} Hz at {received:.1f} dB"
    assert received_db(page, SUPERVISOR_HZ) < received - 20.0

    def hang_up() -> None:
        call.hangup()
        call.wait_disconnected()
        phones.wait_until(lambda: phone_state(page) == "ready", 10.0, "the browser free again")

    return Heard(snr, received, cpu), hang_up


# -- the tests ------------------------------------------------------------------------------------


def test_an_opus_browser_phone_carries_the_tones_both_ways(
    chromium: Path, opus_node: Node, phones: PhoneBook, tones: dict[int, Path], tmp_path: Path
) -> None:
    microphone = write_tone_wav(tmp_path / "browser-880.wav", BROWSER_HZ, 90.0, 0.25, 48000)
    with sync_playwright() as playwright:
        desk = _open_desk(playwright, chromium, opus_node, microphone)
        page = desk.page
        expect(page.locator("#phone")).to_have_attribute("data-phone", "ready", timeout=WAIT_MS)
        heard, hang_up = _answer_and_listen(desk, opus_node, phones, tones)
        assert desk.message("connected")["codec"] == "audio/opus"
        stats = PeerConnections(page).selected_pair()
        logger.info("Opus in the browser: %s", {k: v for k, v in stats.items() if k != "local"})
        assert stats["inboundCodec"] == "audio/opus", stats
        assert stats["outboundCodec"] == "audio/opus", stats
        assert stats["packetsReceived"] > 150, stats
        # The node's Opus is mono voice at 32 kbit/s (webrtc/opus.py), well under G.711's 64.
        rate = _received_kbit_per_second(page, phones)
        logger.info("the browser receives Opus at %.1f kbit/s", rate)
        assert 8.0 < rate < 48.0, f"Opus toward the browser at {rate:.1f} kbit/s"
        hang_up()
        desk.close()
    assert desk.problems == []
    logger.info("Opus: %s", heard)


def test_a_relay_only_browser_phone_talks_through_coturn(
    turnserver: Path,
    chromium: Path,
    relay_node: Node,
    turn_port: int,
    turn_secret: str,
    phones: PhoneBook,
    tones: dict[int, Path],
    tmp_path: Path,
) -> None:
    turn = start_turnserver(turnserver, tmp_path / "turn", turn_port, turn_secret)
    microphone = write_tone_wav(tmp_path / "browser-880.wav", BROWSER_HZ, 90.0, 0.25, 48000)
    try:
        with sync_playwright() as playwright:
            desk = _open_desk(playwright, chromium, relay_node, microphone)
            page = desk.page
            expect(page.locator("#phone")).to_have_attribute("data-phone", "ready", timeout=WAIT_MS)
            welcome = desk.message("welcome")
            assert welcome["ice_transport_policy"] == "relay"
            (server,) = welcome["ice_servers"]
            assert server["urls"] == [f"turn:{LOOPBACK}:{turn_port}?transport=udp"]
            assert turn_secret not in json.dumps(desk.messages)
            peers = PeerConnections(page)
            assert peers.configuration()["iceTransportPolicy"] == "relay"
            heard, hang_up = _answer_and_listen(desk, relay_node, phones, tones)
            pair = peers.selected_pair()
            logger.info("selected pair: %s -> %s", pair["local"], pair["remote"])
            assert pair["state"] == "succeeded", pair
            assert pair["local"]["candidateType"] == "relay", pair["local"]
            assert pair["local"]["relayProtocol"] == "udp", pair["local"]
            assert pair["local"]["url"].startswith(f"turn:{LOOPBACK}:{turn_port}"), pair["local"]
            hang_up()
            desk.close()
        assert desk.problems == []
        log = turn.log()
        allocated = [
            line
            for line in log.splitlines()
            if f"user <{server['username']}>" in line and "ALLOCATE processed, success" in line
        ]
        assert allocated, f"no allocation for {server['username']} in turnserver's log:\n{log}"
        logger.info("relay: %s; turnserver: %s", heard, allocated[0])
    finally:
        turn.stop()


def test_a_wrong_turn_secret_shows_that_the_relay_failed(
    turnserver: Path, chromium: Path, relay_node: Node, turn_port: int, tmp_path: Path
) -> None:
    """The TURN server shares another secret than the node's: it refuses the page's
    credentials, and the relay-only page says it cannot connect through the relay."""
    turn = start_turnserver(turnserver, tmp_path / "turn", turn_port, secrets.token_urlsafe(32))
    microphone = write_tone_wav(tmp_path / "browser-880.wav", BROWSER_HZ, 30.0, 0.25, 48000)
    try:
        with sync_playwright() as playwright:
            desk = _open_desk(playwright, chromium, relay_node, microphone)
            page = desk.page
            started = time.monotonic()
            expect(page.locator("#phone")).to_have_attribute(
                "data-phone", "relay_failed", timeout=WAIT_MS
            )
            logger.info("relay_failed shown %.1f s after connecting", time.monotonic() - started)
            expect(page.locator("#phone-status")).to_have_text(
                "TURN リレーを通して接続できません。管理者に連絡してください"
            )
            expect(page.get_by_role("button", name="応答")).to_be_hidden()
            assert "offer" not in [m.get("type") for m in desk.sent]  # nothing to offer
            (server,) = desk.message("welcome")["ice_servers"]
            desk.close()
        assert desk.problems == []
        log = turn.log()
        refused = [
            line for line in log.splitlines() if server["username"] in line and "401" in line
        ]
        assert refused, f"turnserver did not refuse {server['username']}:\n{log}"
        logger.info("turnserver: %s", refused[0])
    finally:
        turn.stop()
