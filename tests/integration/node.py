"""A real callwarden node in a subprocess, for integration tests.

`start_node(directory, provisioning_yaml)` provisions a data directory, starts `callwarden
serve` on free loopback ports and waits until it answers OPTIONS; `Node.stop()` sends SIGTERM
and checks the node shut down cleanly. The node's log is kept for the failure message.

The node serves its web application over HTTPS with the certificate it made on first start;
`Node.tls_context()` verifies against that certificate (host name included), as a client
that pinned it would.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tls_pin import client_context

LOOPBACK = "127.0.0.1"
CALLWARDEN = Path(sys.executable).parent / "callwarden"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A port free for both UDP and TCP on loopback (SIP listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def options_probe(port: int, timeout: float = 0.5) -> str | None:
    """Send one OPTIONS over UDP; the response's status line, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.bind((LOOPBACK, 0))
        local = sock.getsockname()[1]
        branch = "z9hG4bK" + secrets.token_hex(8)
        request = (
            f"OPTIONS sip:{LOOPBACK}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{local};branch={branch};rport\r\n"
            f"From: <sip:probe@{LOOPBACK}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{LOOPBACK}:{port}>\r\n"
            f"Call-ID: {secrets.token_hex(8)}@{LOOPBACK}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), (LOOPBACK, port))
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return None
        return data.split(b"\r\n", 1)[0].decode()


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    sip_port: int
    http_port: int
    rtp_ports: tuple[int, int]

    @property
    def registrar(self) -> str:
        return f"{LOOPBACK}:{self.sip_port}"

    @property
    def base_url(self) -> str:
        return f"https://{LOOPBACK}:{self.http_port}"

    @property
    def certificate(self) -> Path:
        """The self-signed certificate the node made in its data directory."""
        return self.data_dir / "tls" / "node-certificate.pem"

    def tls_context(self) -> ssl.SSLContext:
        return client_context(self.certificate)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, wait, and return the exit code (killing it if it does not stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def run_cli(*arguments: str, log_path: Path) -> None:
    with log_path.open("ab") as log:
        subprocess.run(
            [str(CALLWARDEN), *arguments], check=True, stdout=log, stderr=subprocess.STDOUT
        )


def start_node(
    directory: Path,
    provisioning: str,
    *,
    rtp_ports: tuple[int, int] = (33000, 33999),
    extra_env: dict[str, str] | None = None,
) -> Node:
    data_dir = directory / "data"
    log_path = directory / "callwarden.log"
    config = directory / "provision.yaml"
    config.write_text(provisioning)
    run_cli("provision", str(config), "--data-dir", str(data_dir), log_path=log_path)
    sip_port, http_port = free_port(), free_port()
    env = {**os.environ, **(extra_env or {})}
    log = log_path.open("ab")
    process = subprocess.Popen(
        [
            str(CALLWARDEN),
            "serve",
            "--data-dir",
            str(data_dir),
            "--bind",
            LOOPBACK,
            "--sip-port",
            str(sip_port),
            "--http-port",
            str(http_port),
            "--rtp-ports",
            f"{rtp_ports[0]}-{rtp_ports[1]}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    log.close()
    node = Node(process, data_dir, log_path, sip_port, http_port, rtp_ports)
    # A node is up in about 6 s on a quiet machine (most of it imports); a loaded CI machine
    # has been seen to need more than 30 s.
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"callwarden exited with {process.returncode}:\n{node.log()}")
        if options_probe(sip_port) is not None:
            return node
        time.sleep(0.1)
    node.stop()
    raise RuntimeError(
        f"callwarden did not answer OPTIONS within {START_TIMEOUT_S:.0f} s:\n{node.log()}"
    )
