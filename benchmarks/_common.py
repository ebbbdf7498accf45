"""Shared pieces of the benchmarks: SIPp runs and their statistics, process CPU from /proc,
free ports, and a minimal digest REGISTER client (RFC 3261 section 10, RFC 7616)."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SIPP = shutil.which("sipp") or "sipp"
SIPP_DIR = Path(__file__).resolve().parent / "sipp"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- ports and CPU ----------------------------------------------------------------------------


def free_port(host: str, kind: int = socket.SOCK_DGRAM) -> int:
    """A port free on `host` right now (the usual small race applies)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; everything after its ")" is space-separated.
    return text[text.rindex(")") + 2 :].split()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` alone (all its threads, no child processes)."""
    fields = _proc_stat(pid)
    return 0.0 if fields is None else sum(int(value) for value in fields[11:13]) / CLOCK_TICKS


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live descendants (plus reaped children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _proc_stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        fields = _proc_stat(current)
        if fields is None:
            continue
        # fields[11:15] = utime, stime, cutime, cstime (stat fields 14-17)
        total += sum(int(value) for value in fields[11:15]) / CLOCK_TICKS
        pending.extend(children.get(current, []))
    return total


# -- SIPp ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SippStats:
    """The cumulative counters of a SIPp run, from the last line of its -trace_stat file."""

    values: dict[str, str]

    @classmethod
    def parse(cls, path: Path) -> SippStats:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        if len(lines) < 2:
            raise ValueError(f"{path}: no statistics row")
        return cls(dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False)))

    def count(self, name: str) -> int:
        return int(self.values.get(f"{name}(C)", "0") or 0)

    def seconds(self, name: str) -> float:
        """A SIPp duration "HH:MM:SS:micro" in seconds."""
        hours, minutes, secs, micros = (int(p) for p in self.values[f"{name}(C)"].split(":"))
        return hours * 3600 + minutes * 60 + secs + micros / 1e6

    def _epoch(self, name: str) -> float:
        return float(self.values[name].split("\t")[-1])

    @property
    def elapsed_s(self) -> float:
        return self._epoch("CurrentTime") - self._epoch("StartTime")

    @property
    def successful(self) -> int:
        return self.count("SuccessfulCall")

    @property
    def failed(self) -> int:
        return self.count("FailedCall")


@dataclass
class SippProcess:
    """One SIPp instance, in a directory of its own (statistics, error log, stderr)."""

    name: str
    args: list[str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    cpu_s: float = 0.0
    returncode: int | None = None

    @property
    def stats_path(self) -> Path:
        return self.workdir / "stats.csv"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            SIPP,
            *self.args,
            *("-nostdin", "-buff_size", "4194304", "-fd", "1"),
            *("-trace_stat", "-stf", str(self.stats_path), "-trace_err"),
        ]
        with (self.workdir / "stderr").open("wb") as stderr:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def wait(self, timeout_s: float) -> bool:
        """Wait for exit (collecting its CPU time); False if it had to be stopped."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self._reaped(status, usage)
                return True
            time.sleep(0.05)
        self.process.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(self.process.pid, 0)
        self._reaped(status, usage)
        return False

    def _reaped(self, status: int, usage: object) -> None:
        assert self.process is not None
        self.cpu_s = float(usage.ru_utime + usage.ru_stime)  # type: ignore[attr-defined]
        self.returncode = os.waitstatus_to_exitcode(status)
        self.process.returncode = self.returncode

    def stats(self) -> SippStats | None:
        try:
            return SippStats.parse(self.stats_path)
        except (OSError, ValueError):
            return None

    def errors(self, limit: int = 2, width: int = 160) -> list[str]:
        """The first events of SIPp's error log and stderr, to say why calls failed."""
        lines: list[str] = []
        for path in [*sorted(self.workdir.glob("*_errors.log")), self.workdir / "stderr"]:
            if path.exists():
                text = path.read_text(errors="replace")
                events = re.split(r"\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: ", text)
                lines += [" ".join(event.split())[:width] for event in events if event.strip()]
        noise = ("The following events", "Resolving remote host")
        return [line for line in lines if not line.startswith(noise)][:limit]


def sipp_scenario(name: str) -> str:
    return str(SIPP_DIR / f"{name}.xml")


# -- digest REGISTER ------------------------------------------------------------------------------

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_CHALLENGE = re.compile(r"^(?:WWW|Proxy)-Authenticate:\s*Digest\s+(.*)$", re.I | re.M)
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]+))')


@dataclass
class Registration:
    """Register `contact_host:contact_port` as `username` at `registrar`, sending from that
    very address so a registrar that keeps the source address (rport, RFC 3581) stores the same
    contact. Call it before the process that will answer on that port binds it."""

    username: str
    password: str
    registrar: tuple[str, int]
    contact_host: str
    contact_port: int
    expires_s: int = 3600
    call_id: str = field(default_factory=lambda: secrets.token_hex(8))

    def run(self, timeout_s: float = 5.0) -> int:
        """Send REGISTER, answer one digest challenge, return the final status code."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((self.contact_host, self.contact_port))
            sock.settimeout(timeout_s)
            response = self._exchange(sock, 1, None)
            status = _status(response)
            if status in (401, 407):
                response = self._exchange(sock, 2, self._authorization(response, status))
                status = _status(response)
            return status

    def _exchange(self, sock: socket.socket, cseq: int, authorization: str | None) -> str:
        host, port = self.registrar
        uri = f"sip:{host}:{port}"
        aor = f"sip:{self.username}@{host}"
        lines = [
            f"REGISTER {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.contact_host}:{self.contact_port};rport;"
            f"branch=z9hG4bK{secrets.token_hex(8)}",
            "Max-Forwards: 70",
            f"From: <{aor}>;tag={self.call_id[:8]}",
            f"To: <{aor}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} REGISTER",
            f"Contact: <sip:{self.username}@{self.contact_host}:{self.contact_port}>",
            f"Expires: {self.expires_s}",
            "User-Agent: callwarden-benchmark",
        ]
        if authorization is not None:
            lines.append(authorization)
        sock.sendto(("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode(), (host, port))
        while True:
            data = sock.recv(65535).decode(errors="replace")
            if _status(data) >= 200:
                return data

    def _authorization(self, response: str, status: int) -> str:
        host, port = self.registrar
        uri = f"sip:{host}:{port}"
        for challenge in _CHALLENGE.findall(response):
            params = {m[0].lower(): m[1] or m[2] for m in _PARAM.findall(challenge)}
            algorithm = params.get("algorithm", "MD5")
            if algorithm not in _HASHES:
                continue
            digest = _HASHES[algorithm]

            def h(text: str, digest: object = digest) -> str:
                return digest(text.encode()).hexdigest()  # type: ignore[operator,no-any-return]

            realm, nonce = params["realm"], params["nonce"]
            ha1 = h(f"{self.username}:{realm}:{self.password}")
            ha2 = h(f"REGISTER:{uri}")
            fields = [
                f'username="{self.username}"',
                f'realm="{realm}"',
                f'nonce="{nonce}"',
                f'uri="{uri}"',
                f"algorithm={algorithm}",
            ]
            if "auth" in params.get("qop", "").split(","):
                cnonce = secrets.token_hex(8)
                answer = h(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
                fields += ["qop=auth", "nc=00000001", f'cnonce="{cnonce}"']
            else:
                answer = h(f"{ha1}:{nonce}:{ha2}")
            if "opaque" in params:
                fields.append(f'opaque="{params["opaque"]}"')
            header = "Authorization" if status == 401 else "Proxy-Authorization"
            return f"{header}: Digest " + ", ".join([*fields, f'response="{answer}"'])
        raise ValueError(f"no digest challenge with a known algorithm in:\n{response}")


def _status(message: str) -> int:
    first = message.split("\r\n", 1)[0].split(" ")
    if len(first) < 2 or first[0] != "SIP/2.0" or not first[1].isdigit():
        return 0
    return int(first[1])


def options_ping(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether something answers a SIP OPTIONS over UDP at host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(timeout_s)
        local = sock.getsockname()
        message = "\r\n".join(
            [
                f"OPTIONS sip:{host}:{port} SIP/2.0",
                f"Via: SIP/2.0/UDP {local[0]}:{local[1]};rport;"
                f"branch=z9hG4bK{secrets.token_hex(8)}",
                "Max-Forwards: 70",
                f"From: <sip:probe@{local[0]}>;tag={secrets.token_hex(4)}",
                f"To: <sip:{host}:{port}>",
                f"Call-ID: {secrets.token_hex(8)}",
                "CSeq: 1 OPTIONS",
                "Content-Length: 0",
                "",
                "",
            ]
        )
        try:
            sock.sendto(message.encode(), (host, port))
            return _status(sock.recv(65535).decode(errors="replace")) > 0
        except OSError:
            return False


def format_rates(rates: Sequence[int]) -> str:
    return ",".join(str(rate) for rate in rates)
