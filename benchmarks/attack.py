"""Legitimate calls through callwarden while it is attacked from other loopback addresses.

SIPp places a steady load of short calls through the node exactly as benchmarks/sip_cps.py
does (UAC on 127.0.0.2 as trunk "loadgen", UAS on 127.0.0.3 as the registered phone of user
"loadsink"). A few seconds in, attackers start, each from its own address and each for
--attack-seconds:

- 127.0.0.4 floods garbage datagrams (TLS ClientHello-like bytes, truncated requests);
- 127.0.0.5 brute-forces REGISTER for "loadsink" with the `friendly-scanner` user agent
  (SIPVicious's svcrack);
- 127.0.0.6 brute-forces REGISTER for "loadsink" with a phone-like user agent (answering
  each challenge with a wrong password, as a careful attacker would);
- 127.0.0.7, 127.0.0.8, ... flood INVITEs to the user's extension.

Attackers keep sending after they are banned (UDP floods do not stop for a block). The node
runs with its default limits (sip_* settings); 127.0.0.3 is a trusted network here because
the single SIPp UAS stands for every phone at once (a real phone at 50 calls/s would be
rate-limited, which is the point of the limit).

Reported: whether every legitimate call completed (SIPp's counters at both ends), the time
from each attacker's first packet to the node's ban of its address (seen in the node's log),
what each attacker got back before and after, and the node's resident memory before and after.

    .venv/bin/python benchmarks/attack.py                     # 40 calls/s for 20 s
    .venv/bin/python benchmarks/attack.py --rate 80 --duration 30 --invite-flooders 3
"""

from __future__ import annotations

import abc
import argparse
import json
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from _common import free_port
from callwarden.sip.digest import answer_challenge
from sip_cps import (
    CALLWARDEN_HOST,
    UAC_HOST,
    UAS_HOST,
    Addresses,
    Callwarden,
    CallwardenUnavailableError,
    Routing,
    machine_description,
    run_step,
)

REPO = Path(__file__).resolve().parent.parent
GARBAGE_HOST = "127.0.0.4"
SCANNER_HOST = "127.0.0.5"
GUESSER_HOST = "127.0.0.6"
FIRST_FLOODER = 7
_BANNED = re.compile(r"^(\S+ \S+) WARNING \S+: SIP source (\S+) banned for", re.M)


@dataclass
class AttackerReport:
    address: str
    kind: str
    sent: int = 0
    answers_before_ban: int = 0
    answers_after_ban: int = 0
    started_at: float = 0.0
    banned_at: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def seconds_to_ban(self) -> float | None:
        return None if self.banned_at is None else round(self.banned_at - self.started_at, 3)


class Attacker(threading.Thread, abc.ABC):
    """One attacking address; `run_attack` sends until `stop` is set."""

    def __init__(self, report: AttackerReport, node: tuple[str, int], stop: threading.Event):
        super().__init__(name=f"attacker {report.address}", daemon=True)
        self.report = report
        self.node = node
        self.stop_event = stop
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((report.address, 0))
        self.port = int(self.sock.getsockname()[1])
        self.sock.setblocking(False)

    def run(self) -> None:
        self.report.started_at = time.monotonic()
        try:
            self.run_attack()
        finally:
            self.drain()
            self.sock.close()

    @abc.abstractmethod
    def run_attack(self) -> None:
        """Send this attacker's packets until `self.stop_event` is set."""

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.node)
            self.report.sent += 1
        except BlockingIOError:
            time.sleep(0.001)

    def drain(self) -> list[bytes]:
        """What the node sent back since the last call, counted before or after the ban."""
        received = []
        while True:
            try:
                received.append(self.sock.recv(65535))
            except (BlockingIOError, OSError):
                break
        if self.report.banned_at is None:
            self.report.answers_before_ban += len(received)
        else:
            self.report.answers_after_ban += len(received)
        return received

    def request(self, method: str, uri: str, *extra: str, user: str = "loadsink") -> bytes:
        branch = secrets.token_hex(8)
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.report.address}:{self.port};branch=z9hG4bK{branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{self.node[0]}>;tag={branch[:8]}",
            f"To: <sip:{user}@{self.node[0]}>",
            f"Call-ID: {branch}@{self.report.address}",
            f"CSeq: 1 {method}",
            f"Contact: <sip:{user}@{self.report.address}:{self.port}>",
            *extra,
            "Content-Length: 0",
            "",
            "",
        ]
        return "\r\n".join(lines).encode()


class GarbageFlooder(Attacker):
    PACKETS = (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),
        b"INVITE sip:2000@x SIP/2.0\r\nVia: broken\r\n\r\n",
        b"\x00" * 200,
        b"SIP/2.0 200 OK\r\n\r\n",
    )

    def run_attack(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            self.send(self.PACKETS[n % len(self.PACKETS)])
            n += 1
            if n % 50 == 0:
                self.drain()
                time.sleep(0.01)  # ~5,000 packets/s: a flood, not a CPU hog on a shared box


class RegisterGuesser(Attacker):
    """REGISTER, read the challenge, answer it with a wrong password; again and again."""

    def __init__(self, report: AttackerReport, node: tuple[str, int], stop: threading.Event,
                 user_agent: str) -> None:  # fmt: skip
        super().__init__(report, node, stop)
        self.user_agent = user_agent

    def run_attack(self) -> None:
        uri = f"sip:{self.node[0]}:{self.node[1]}"
        agent = f"User-Agent: {self.user_agent}"
        guess = 0
        while not self.stop_event.is_set():
            self.send(self.request("REGISTER", uri, agent))
            challenge = self.wait_for(b"WWW-Authenticate", 0.2)
            if challenge is None:
                continue  # banned (or dropped): guess blind, as svcrack does
            guess += 1
            answer = answer_challenge(
                challenge, "REGISTER", uri, "loadsink", f"guess-{guess}", cnonce="0badc0de"
            )
            self.send(self.request("REGISTER", uri, agent, f"Authorization: {answer}"))
            time.sleep(0.005)

    def wait_for(self, name: bytes, timeout_s: float) -> str | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.stop_event.is_set():
            for message in self.drain():
                for line in message.split(b"\r\n"):
                    if line.startswith(name + b":"):
                        return line.split(b":", 1)[1].strip().decode()
            time.sleep(0.002)
        return None


class InviteFlooder(Attacker):
    def run_attack(self) -> None:
        uri = f"sip:2000@{self.node[0]}:{self.node[1]}"
        n = 0
        while not self.stop_event.is_set():
            self.send(self.request("INVITE", uri, "User-Agent: Z 5.4", user=f"u{n}"))
            n += 1
            if n % 20 == 0:
                self.drain()
                time.sleep(0.01)  # ~2,000 INVITEs/s


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def watch_bans(log_path: Path, reports: dict[str, AttackerReport], stop: threading.Event) -> None:
    """Note when the node's log first says an attacker's address was banned."""
    seen = 0
    while not stop.is_set():
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        for match in _BANNED.finditer(text, seen):
            report = reports.get(match.group(2))
            if report is not None and report.banned_at is None:
                report.banned_at = time.monotonic()
            seen = match.end()
        time.sleep(0.02)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=40, help="legitimate calls per second")
    parser.add_argument("--duration", type=int, default=20, help="seconds of legitimate load")
    parser.add_argument("--hold-ms", type=int, default=500, help="how long each call lasts")
    parser.add_argument("--attack-delay", type=float, default=3.0)
    parser.add_argument("--attack-seconds", type=float, default=10.0)
    parser.add_argument("--invite-flooders", type=int, default=2)
    parser.add_argument(
        "--no-attack", action="store_true", help="the same load without attackers (baseline)"
    )
    parser.add_argument("--callwarden", type=Path, default=REPO / ".venv" / "bin" / "callwarden")
    parser.add_argument("--rtp-ports", default="40000-40999")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def _attackers(node: tuple[str, int], stop: threading.Event, flooders: int) -> list[Attacker]:
    attackers: list[Attacker] = [
        GarbageFlooder(AttackerReport(GARBAGE_HOST, "garbage flood"), node, stop),
        RegisterGuesser(
            AttackerReport(SCANNER_HOST, "REGISTER brute force, friendly-scanner"),
            node,
            stop,
            "friendly-scanner",
        ),
        RegisterGuesser(
            AttackerReport(GUESSER_HOST, "REGISTER brute force, phone user agent"),
            node,
            stop,
            "Yealink SIP-T46S 66.86.0.15",
        ),
    ]
    for n in range(flooders):
        host = f"127.0.0.{FIRST_FLOODER + n}"
        attackers.append(InviteFlooder(AttackerReport(host, "INVITE flood"), node, stop))
    return attackers


def run(options: argparse.Namespace, workdir: Path) -> dict[str, object]:
    addresses = Addresses(
        free_port(UAC_HOST), free_port(UAS_HOST), free_port(UAC_HOST), free_port(UAS_HOST)
    )
    routing = Routing()
    env = {"CALLWARDEN_SIP_TRUSTED_NETWORKS": f"{CALLWARDEN_HOST}/32,{UAS_HOST}/32"}
    callwarden = Callwarden(options.callwarden, workdir, options.rtp_ports, env)
    try:
        callwarden.provision(routing.provisioning(addresses))
        callwarden.start()
        registration = routing.registration(addresses, callwarden.sip_port)
        if registration is not None and (status := registration.run()) != 200:
            raise CallwardenUnavailableError(f"registering the SIPp UAS answered {status}")
        assert callwarden.process is not None
        pid = callwarden.process.pid
        rss_before = rss_kib(pid)
        node = (CALLWARDEN_HOST, callwarden.sip_port)
        stop_attack, stop_watch = threading.Event(), threading.Event()
        flooders = options.invite_flooders
        attackers = [] if options.no_attack else _attackers(node, stop_attack, flooders)
        reports = {attacker.report.address: attacker.report for attacker in attackers}
        watcher = threading.Thread(
            target=watch_bans, args=(callwarden.log_path, reports, stop_watch), daemon=True
        )
        watcher.start()

        def attack() -> None:
            time.sleep(options.attack_delay)
            for attacker in attackers:
                attacker.start()
            time.sleep(options.attack_seconds)
            stop_attack.set()

        attack_thread = threading.Thread(target=attack, daemon=True)
        attack_thread.start()
        step_options = argparse.Namespace(duration=options.duration, hold_ms=options.hold_ms)
        step = run_step(
            "under attack", options.rate, node, addresses, routing, step_options, workdir,
            callwarden,
        )  # fmt: skip
        attack_thread.join()
        for attacker in attackers:
            attacker.join(5)
        time.sleep(0.5)
        stop_watch.set()
        watcher.join(2)
        rss_after = rss_kib(pid)
        return {
            "legitimate": asdict(step),
            "attackers": [
                {**asdict(report), "seconds_to_ban": report.seconds_to_ban}
                for report in reports.values()
            ],
            "rss_kib_before": rss_before,
            "rss_kib_after": rss_after,
            "node_alive": callwarden.process.poll() is None,
        }
    finally:
        callwarden.stop()


def _print(result: dict[str, object], options: argparse.Namespace) -> None:
    legit = result["legitimate"]
    assert isinstance(legit, dict)
    verdict = "all completed" if legit["ok"] else f"NOT all completed: {legit['reason']}"
    print(f"legitimate calls: {legit['calls']} at {options.rate}/s: {verdict}")
    print(f"  call setup {legit['setup_ms']:.2f} ms, retransmissions {legit['retransmissions']}")
    attackers = result["attackers"]
    assert isinstance(attackers, list)
    for report in attackers:
        ban = report["seconds_to_ban"]
        ban_text = "not banned" if ban is None else f"banned after {ban:.3f} s"
        print(
            f"  {report['address']:<10} {report['kind']:<40} sent {report['sent']:>6}  "
            f"{ban_text:<22} answers before/after ban {report['answers_before_ban']}/"
            f"{report['answers_after_ban']}"
        )
    before, after = result["rss_kib_before"], result["rss_kib_after"]
    assert isinstance(before, int) and isinstance(after, int)
    print(f"node RSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after "
          f"({(after - before) / 1024:+.1f} MiB); node alive: {result['node_alive']}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    options = _parse_args(argv)
    if shutil.which("sipp") is None:
        print("sipp is not installed (Debian package sip-tester; make system-deps)")
        return 2
    machine = machine_description()
    print(f"machine: {machine}")
    print(f"started {datetime.now().isoformat(timespec='seconds')}")
    workdir = Path(tempfile.mkdtemp(prefix="attack-"))
    try:
        result = run(options, workdir)
    except CallwardenUnavailableError as error:
        print(f"callwarden could not run: {error}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["machine"] = machine
    result["machine_after"] = machine_description()
    _print(result, options)
    print(f"machine after: {result['machine_after']}")
    if options.json is not None:
        options.json.write_text(json.dumps(result, indent=2))
    legit = result["legitimate"]
    assert isinstance(legit, dict)
    attackers = result["attackers"]
    assert isinstance(attackers, list)
    # (vacuously true without attackers)
    all_banned = all(report["seconds_to_ban"] is not None for report in attackers)
    return 0 if legit["ok"] and all_banned and result["node_alive"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
