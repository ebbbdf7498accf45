"""A real S3-compatible server for the object-store tests: moto's standalone server
(`python -m moto.server`, from the `moto[server]` package on PyPI), as a separate process on a
free local port, spoken to over HTTP with SigV4 by boto3 exactly as a node speaks to MinIO or
AWS. Without it the tests skip, except under CI=true, where they fail."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY = "callwarden-test"
SECRET_KEY = "callwarden-test-secret-key"  # moto accepts any; boto3 signs with it
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"S3 test server: {reason} (CI=true: the object-store tests must run)")
    pytest.skip(f"S3 test server: {reason}")


@contextlib.contextmanager
def running_s3_server(log_dir: Path) -> Iterator[S3Server]:
    """Start moto's server, wait until it answers, stop it at the end."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (log_dir / "moto-server.log").open("wb")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    except OSError as error:
        log.close()
        _unavailable(f"cannot start python -m moto.server: {error}")
        raise
    try:
        deadline = time.monotonic() + 30.0
        while True:
            if process.poll() is not None:
                _unavailable(
                    f"moto.server exited with {process.returncode}: "
                    + (log_dir / "moto-server.log").read_text(errors="replace")[-2000:]
                )
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1.0):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    _unavailable("moto.server did not answer within 30 s")
                time.sleep(0.1)
        yield S3Server(endpoint, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def credentials_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard credential chain, as a deployment sets it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
