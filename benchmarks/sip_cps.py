"""Highest SIP call rate with zero failed calls: through callwarden, and SIPp alone as reference.

A SIPp UAC (benchmarks/sipp/uac.xml) places short calls (INVITE, 200, ACK, pause, BYE, 200;
SDP offered, no RTP sent) to a SIPp UAS (benchmarks/sipp/uas.xml). The reference run sends
them straight to the UAS; the target run sends them to callwarden, which must bridge each one
to the UAS as a second leg. Rates are stepped up (each for --duration seconds) until a step
fails; a step passes when every call succeeded at both ends and SIPp kept the asked rate.

    .venv/bin/python benchmarks/sip_cps.py                    # both runs
    .venv/bin/python benchmarks/sip_cps.py --no-callwarden    # reference only
    .venv/bin/python benchmarks/sip_cps.py --rates 100,200,300 --duration 5

The UAC sends from 127.0.0.2 and the UAS answers on 127.0.0.3 (both loopback on Linux), so
callwarden can tell the load generator (a trunk, not challenged) from the answering side by
address alone. How calls are routed through callwarden is decided in `Routing` below.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from _common import (
    Registration,
    SippProcess,
    format_rates,
    free_port,
    options_ping,
    process_cpu_s,
    process_tree_cpu_s,
    sipp_scenario,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RATES = [
    50,
    100,
    150,
    200,
    250,
    300,
    350,
    400,
    600,
    800,
    1000,
    1500,
    2000,
    3000,
    4000,
    6000,
    8000,
    10000,
    12000,
    15000,
]
UAC_HOST = "127.0.0.2"
UAS_HOST = "127.0.0.3"
CALLWARDEN_HOST = "127.0.0.1"
RECV_TIMEOUT_MS = 10_000
MIN_RATE_KEPT = 0.95


@dataclass(frozen=True)
class Addresses:
    uac_port: int
    uas_port: int
    uac_media_port: int
    uas_media_port: int


# -- the one place that says how a call gets through callwarden --------------------------------


@dataclass(frozen=True)
class Routing:
    """How callwarden is provisioned so a call from the UAC reaches the UAS.

    - "user" (default): the UAC is trunk "loadgen", whose inbound number `number` is the
      extension of user `username`; the SIPp UAS is that user's registered phone (this script
      registers its address before SIPp binds it). Matches the dial plan's rule that a trunk
      reaches only its own inbound numbers and never another trunk.
    - "trunk": transit, for a dial plan that allows it: "loadgen" delivers `number`, which
      matches the outbound pattern of trunk "answering" at the SIPp UAS.
    """

    mode: str = "user"
    number: str = "2000"
    username: str = "loadsink"
    sip_password: str = "load-sink-sip-secret"  # a throwaway benchmark account

    def provisioning(self, addresses: Addresses) -> dict[str, object]:
        loadgen = {
            "name": "loadgen",
            "host": UAC_HOST,
            "port": addresses.uac_port,
            "inbound_numbers": [self.number],
            "outbound_patterns": [],
        }
        if self.mode == "trunk":
            answering = {
                "name": "answering",
                "host": UAS_HOST,
                "port": addresses.uas_port,
                "inbound_numbers": [],
                "outbound_patterns": [self.number],
            }
            return {"teams": [], "users": [], "queues": [], "trunks": [loadgen, answering]}
        user = {
            "username": self.username,
            "role": "operator",
            "team": "load",
            "extension": self.number,
            "sip_password": self.sip_password,
            "password": self.sip_password + "-web",
        }
        return {"teams": [{"name": "load"}], "users": [user], "queues": [], "trunks": [loadgen]}

    def registration(self, addresses: Addresses, sip_port: int) -> Registration | None:
        if self.mode == "trunk":
            return None
        return Registration(
            self.username,
            self.sip_password,
            (CALLWARDEN_HOST, sip_port),
            UAS_HOST,
            addresses.uas_port,
        )


# -- callwarden as a subprocess ----------------------------------------------------------------


class CallwardenUnavailableError(RuntimeError):
    """callwarden could not be provisioned or started; the message says why."""


class Callwarden:
    def __init__(
        self, executable: Path, workdir: Path, rtp_ports: str, env: dict[str, str]
    ) -> None:
        self.executable = executable
        self.env = {**os.environ, **env}
        self.data_dir = workdir / "callwarden-data"
        self.log_path = workdir / "callwarden.log"
        self.sip_port = free_port(CALLWARDEN_HOST)
        self.http_port = free_port(CALLWARDEN_HOST, socket.SOCK_STREAM)
        self.rtp_ports = rtp_ports
        self.process: subprocess.Popen[bytes] | None = None

    def _run(self, *args: str) -> None:
        try:
            done = subprocess.run(
                [str(self.executable), *args],
                capture_output=True,
                timeout=60,
                check=False,
                env=self.env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CallwardenUnavailableError(f"{self.executable} {args[0]}: {exc}") from exc
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            reason = tail[-1] if tail else f"exit status {done.returncode}"
            raise CallwardenUnavailableError(f"`callwarden {args[0]}` failed: {reason}")

    def provision(self, config: dict[str, object]) -> Path:
        self._run("serve", "--help")
        path = self.data_dir.parent / "provision.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._run("provision", str(path), "--data-dir", str(self.data_dir))
        return path

    def start(self, ready_timeout_s: float = 20.0) -> None:
        command = [str(self.executable), "serve", "--data-dir", str(self.data_dir)]
        command += ["--bind", CALLWARDEN_HOST, "--sip-port", str(self.sip_port)]
        command += ["--http-port", str(self.http_port), "--rtp-ports", self.rtp_ports]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + ready_timeout_s
        while not options_ping(CALLWARDEN_HOST, self.sip_port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise CallwardenUnavailableError(
                    "`callwarden serve` did not answer OPTIONS: " + " | ".join(tail)
                )
            time.sleep(0.2)

    def cpu_s(self) -> tuple[float, float]:
        """CPU seconds so far: the whole process tree (media workers included), the node's
        main process alone (SIP, call control and, without workers, media)."""
        if self.process is None:
            return 0.0, 0.0
        return process_tree_cpu_s(self.process.pid), process_cpu_s(self.process.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- one rate step ---------------------------------------------------------------------------


@dataclass
class Step:
    run: str
    rate: int
    calls: int
    ok: bool
    reason: str
    achieved_rate: float
    setup_ms: float
    retransmissions: int
    uac_cpu_s: float
    uas_cpu_s: float
    callwarden_cpu_s: float | None
    elapsed_s: float
    callwarden_main_cpu_s: float | None = None

    def line(self) -> str:
        verdict = "ok  " if self.ok else "FAIL"
        text = (
            f"{self.run:<10} {self.rate:>6}/s  {verdict} {self.calls:>7} calls  "
            f"kept {self.achieved_rate:>7.1f}/s  setup {self.setup_ms:6.2f} ms  "
            f"retrans {self.retransmissions:<5} SIPp CPU uac {self.uac_cpu_s:5.1f} s "
            f"uas {self.uas_cpu_s:5.1f} s"
        )
        if self.callwarden_cpu_s is not None:
            text += f"  callwarden {self.cpu_text()}"
        return text + ("" if self.ok else f"\n           -> {self.reason}")

    def cpu_text(self) -> str:
        """callwarden's CPU during the step: share of one core and CPU time per call."""
        if self.callwarden_cpu_s is None or self.elapsed_s <= 0:
            return "n/a"
        share = 100.0 * self.callwarden_cpu_s / self.elapsed_s
        per_call_us = 1e6 * self.callwarden_cpu_s / max(self.calls, 1)
        text = f"{share:5.1f} % of a core, {per_call_us:6.0f} us of CPU per call"
        main = self.callwarden_main_cpu_s
        if main is not None and main < self.callwarden_cpu_s - 1e-9:
            text += f" (main process {1e6 * main / max(self.calls, 1):.0f} us)"
        return text


def _failures(stats_values: dict[str, str]) -> str:
    counters = [
        f"{name[:-3]}={value}"
        for name, value in stats_values.items()
        if name.startswith("Failed") and name.endswith("(C)") and value not in ("", "0")
    ]
    return ", ".join(counters)


def run_step(
    run: str,
    rate: int,
    target: tuple[str, int],
    addresses: Addresses,
    routing: Routing,
    options: argparse.Namespace,
    workdir: Path,
    callwarden: Callwarden | None,
    attempt: int = 0,
) -> Step:
    calls = rate * options.duration
    hold_s = options.hold_ms / 1000.0
    limit = max(200, int(rate * (hold_s + 1.0) * 1.25))
    timeout = f"{options.duration * 3 + 30}s"
    step_dir = workdir / run / f"{rate}-{attempt}"
    uas = SippProcess(
        "uas",
        [
            *("-sf", sipp_scenario("uas"), "-i", UAS_HOST, "-p", str(addresses.uas_port)),
            *("-mp", str(addresses.uas_media_port), "-m", str(calls)),
            *("-recv_timeout", str(RECV_TIMEOUT_MS), "-timeout", timeout),
        ],
        step_dir / "uas",
    )
    uac = SippProcess(
        "uac",
        [
            *(f"{target[0]}:{target[1]}", "-sf", sipp_scenario("uac"), "-i", UAC_HOST),
            *("-p", str(addresses.uac_port), "-mp", str(addresses.uac_media_port)),
            *("-s", routing.number, "-r", str(rate), "-m", str(calls), "-l", str(limit)),
            *("-d", str(options.hold_ms), "-recv_timeout", str(RECV_TIMEOUT_MS)),
            *("-timeout", timeout),
        ],
        step_dir / "uac",
    )
    cpu_before = callwarden.cpu_s() if callwarden is not None else (0.0, 0.0)
    uas.start()
    time.sleep(0.3)
    uac.start()
    uac.wait(options.duration * 3 + 40)
    uas.wait(hold_s + RECV_TIMEOUT_MS / 1000.0 + 5.0)
    cpu_used = main_cpu_used = None
    if callwarden is not None:
        cpu_after = callwarden.cpu_s()
        cpu_used = cpu_after[0] - cpu_before[0]
        main_cpu_used = cpu_after[1] - cpu_before[1]
    uac_stats, uas_stats = uac.stats(), uas.stats()
    if uac_stats is None or uas_stats is None:
        missing = "UAC" if uac_stats is None else "UAS"
        why = " | ".join((uac if uac_stats is None else uas).errors())
        return Step(run, rate, calls, False, f"no {missing} statistics: {why}", 0, 0, 0,
                    uac.cpu_s, uas.cpu_s, cpu_used, 0.0)  # fmt: skip
    elapsed = uac_stats.elapsed_s
    creating_s = max(elapsed - uac_stats.seconds("CallLength"), 1e-3)
    achieved = min(calls, uac_stats.count("OutgoingCall")) / creating_s
    reasons = []
    if uac_stats.failed or uac_stats.successful != calls:
        reasons.append(
            f"caller: {uac_stats.successful}/{calls} succeeded, {uac_stats.failed} failed "
            f"({_failures(uac_stats.values)})"
        )
    if uas_stats.failed or uas_stats.successful != calls:
        reasons.append(
            f"answerer: {uas_stats.successful}/{calls} completed, {uas_stats.failed} failed "
            f"({_failures(uas_stats.values)})"
        )
    if achieved < MIN_RATE_KEPT * rate:
        reasons.append(f"SIPp kept only {achieved:.0f} calls/s")
    if callwarden is not None and callwarden.process and callwarden.process.poll() is not None:
        reasons.append(f"callwarden exited with status {callwarden.process.returncode}")
    if reasons and (errors := uac.errors() + uas.errors()):
        reasons.append("first errors: " + " | ".join(errors))
    return Step(
        run=run,
        rate=rate,
        calls=calls,
        ok=not reasons,
        reason="; ".join(reasons),
        achieved_rate=achieved,
        setup_ms=1000.0 * uac_stats.seconds("ResponseTime1"),
        retransmissions=uac_stats.count("Retransmissions") + uas_stats.count("Retransmissions"),
        uac_cpu_s=uac.cpu_s,
        uas_cpu_s=uas.cpu_s,
        callwarden_cpu_s=cpu_used,
        elapsed_s=elapsed,
        callwarden_main_cpu_s=main_cpu_used,
    )


def find_max_rate(
    run: str,
    target: tuple[str, int],
    addresses: Addresses,
    routing: Routing,
    options: argparse.Namespace,
    workdir: Path,
    callwarden: Callwarden | None = None,
) -> tuple[int, list[Step]]:
    """Step through the rates until one fails (after --retries); the best is the last that
    passed."""
    best = 0
    steps: list[Step] = []
    for rate in options.rates:
        for attempt in range(1 + options.retries):
            step = run_step(
                run, rate, target, addresses, routing, options, workdir, callwarden, attempt
            )
            steps.append(step)
            print(step.line(), flush=True)
            if step.ok:
                break
            time.sleep(2.0)
        if not step.ok:
            break
        best = rate
        time.sleep(1.0)
    return best, steps


# -- main ---------------------------------------------------------------------------------------


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates",
        type=lambda text: [int(rate) for rate in text.split(",")],
        default=DEFAULT_RATES,
        help=f"calls per second to step through (default {format_rates(DEFAULT_RATES)})",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per step")
    parser.add_argument("--hold-ms", type=int, default=500, help="pause between ACK and BYE")
    parser.add_argument(
        "--retries", type=int, default=1, help="repeat a failed step this often (noisy hosts)"
    )
    parser.add_argument("--no-callwarden", action="store_true", help="reference run only")
    parser.add_argument("--no-reference", action="store_true", help="callwarden run only")
    parser.add_argument("--callwarden", type=Path, default=REPO / ".venv" / "bin" / "callwarden")
    parser.add_argument(
        "--route",
        choices=["user", "trunk"],
        default="user",
        help="user: trunk inbound number -> user registered at the UAS (default); "
        "trunk: trunk -> trunk transit (see Routing in this file)",
    )
    parser.add_argument("--rtp-ports", default="20000-29999", help="callwarden's --rtp-ports")
    parser.add_argument(
        "--env",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="environment for callwarden (repeatable), e.g. CALLWARDEN_LOG_LEVEL=WARNING",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args(argv)


def _callwarden_run(
    options: argparse.Namespace, addresses: Addresses, routing: Routing, workdir: Path
) -> tuple[int | None, list[Step], str]:
    # The one SIPp UAS answers for every phone at once, hundreds of messages a second from one
    # address: trusted, or the source guard would rate-limit and ban it (docs/security.md).
    env = {"CALLWARDEN_SIP_TRUSTED_NETWORKS": f"{CALLWARDEN_HOST}/32,{UAS_HOST}/32"}
    env.update(options.env)
    callwarden = Callwarden(options.callwarden, workdir, options.rtp_ports, env)
    try:
        callwarden.provision(routing.provisioning(addresses))
        callwarden.start()
        registration = routing.registration(addresses, callwarden.sip_port)
        if registration is not None and (status := registration.run()) != 200:
            raise CallwardenUnavailableError(f"registering the SIPp UAS answered {status}")
        target = (CALLWARDEN_HOST, callwarden.sip_port)
        best, steps = find_max_rate(
            "callwarden", target, addresses, routing, options, workdir, callwarden
        )
        return best, steps, ""
    except (CallwardenUnavailableError, OSError) as exc:
        return None, [], str(exc)
    finally:
        callwarden.stop()


def machine_description() -> str:
    """Cores, CPU model and load average: what a rate measured here depends on."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, load average {load}"


def main(argv: list[str] | None = None) -> int:
    options = _parse_args(argv)
    if shutil.which("sipp") is None:
        print("sipp is not installed (Debian package sip-tester): nothing to measure")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="sip_cps-"))
    addresses = Addresses(
        free_port(UAC_HOST), free_port(UAS_HOST), free_port(UAC_HOST), free_port(UAS_HOST)
    )
    routing = Routing(mode=options.route)
    machine = machine_description()
    print(f"machine: {machine}")
    print(f"steps of {options.duration} s, calls held {options.hold_ms} ms, work dir {workdir}")
    reference: int | None = None
    reference_steps: list[Step] = []
    if not options.no_reference:
        reference, reference_steps = find_max_rate(
            "reference", (UAS_HOST, addresses.uas_port), addresses, routing, options, workdir
        )
    through: int | None = None
    steps: list[Step] = []
    why_not = "skipped (--no-callwarden)"
    if not options.no_callwarden:
        through, steps, why_not = _callwarden_run(options, addresses, routing, workdir)

    print()
    if reference is None:
        print("reference  (SIPp UAC -> SIPp UAS):              not measured (--no-reference)")
    else:
        print(f"reference  (SIPp UAC -> SIPp UAS):              {reference:>6} calls/s, 0 failed")
    if through is None:
        print(f"callwarden (SIPp UAC -> callwarden -> SIPp UAS): not measured: {why_not}")
    else:
        ratio = f"{100.0 * through / reference:.1f} % of the reference" if reference else "n/a"
        print(f"callwarden (SIPp UAC -> callwarden -> SIPp UAS): {through:>6} calls/s, {ratio}")
        if passed := [step for step in steps if step.ok]:
            print(f"callwarden CPU at {through} calls/s: {passed[-1].cpu_text()}")
    if options.json is not None:
        result = {
            "reference_cps": reference,
            "callwarden_cps": through,
            "callwarden_note": why_not,
            "machine": machine,
            "machine_after": machine_description(),
            "duration_s": options.duration,
            "hold_ms": options.hold_ms,
            "steps": [asdict(step) for step in reference_steps + steps],
        }
        options.json.write_text(json.dumps(result, indent=2))
    print(f"machine after: {machine_description()}")
    if options.keep:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
