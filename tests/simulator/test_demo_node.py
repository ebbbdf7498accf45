"""The simulator against a real callwarden node: simulated operators register with digest
authentication (a wrong password never does), customers call in through the demo-carrier
trunk, calls are answered, CDRs say so, and RTP flows both ways through the node's media
engine. Then `callwarden demo` as a newcomer runs it: calls within 20 seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from callwarden.simulator import (
    DEMO_OPERATORS,
    OperatorAccount,
    SecondsRange,
    Simulator,
    SimulatorSettings,
)
from callwarden.simulator.demo import demo_center, operator_accounts
from callwarden.simulator.operator import DeskState
from integration.node import CALLWARDEN, LOOPBACK, Node, free_port, start_node

CALLS_WITHIN_S = 20.0
_ANSWERED = re.compile(
    r"simulated call (\d+) -> (\d+): answered after [\d.]+ s, talked ([\d.]+) s, "
    r"(customer|operator) hung up; RTP sent (\d+), received (\d+)"
)
_NOT_CONNECTED = re.compile(r"simulated call \d+ -> (\d+): not connected \((\d{3}) ")
_GAVE_UP = re.compile(r"simulated call \d+ -> (\d+): customer gave up after [\d.]+ s in the queue")


def _answered_cdrs(data_dir: Path) -> list[tuple[str, str, str]]:
    """The answered calls' CDRs (none while the database is still being created)."""
    database = data_dir / "callwarden.db"
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database)) as db:
        try:
            rows = db.execute(
                "SELECT direction, caller, callee FROM cdrs WHERE disposition = 'answered'"
            ).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []
    return [(str(direction), str(caller), str(callee)) for direction, caller, callee in rows]


def _quick_wrap_up(text: str) -> str:
    """The demo center with 1 s of after-call work in its queues (10 s by default)."""
    document = yaml.safe_load(text)
    for queue in document["queues"]:
        queue["wrap_up_seconds"] = 1
    return yaml.safe_dump(document, sort_keys=False)


@pytest.fixture
def trunk_port_and_node(tmp_path: Path) -> Iterator[tuple[int, Node]]:
    trunk_port = free_port()
    node = start_node(
        tmp_path,
        _quick_wrap_up(demo_center(LOOPBACK, trunk_port)),
        rtp_ports=(38000, 38199),
        extra_env={"CALLWARDEN_ACD_AUTO_SIGN_IN": "true"},
    )
    yield trunk_port, node
    assert node.stop() == 0, node.log()


@pytest.mark.integration
async def test_simulated_calls_are_answered_with_media_both_ways(
    trunk_port_and_node: tuple[int, Node], caplog: pytest.LogCaptureFixture
) -> None:
    trunk_port, node = trunk_port_and_node
    caplog.set_level(logging.INFO, logger="callwarden.simulator")
    first, second, _ = operator_accounts(demo_center(LOOPBACK, trunk_port), DEMO_OPERATORS)
    wrong = OperatorAccount("sim-op3", "not-the-password")
    settings = SimulatorSettings(
        node_host=LOOPBACK,
        node_port=node.sip_port,
        operators=(first, second, wrong),
        trunk_port=trunk_port,
        # support queue (sim-op1, sim-op2), sales queue (nobody: sim-op3 cannot register),
        # sim-op2 directly, alice directly (no phone)
        numbers=("0312345000", "0312345000", "0312345100", "0312342002", "0312341001"),
        calls_per_minute=60,
        max_concurrent_calls=3,
        first_call_after=0.5,
        customer_patience=4.0,
        ring_seconds=SecondsRange(0.3, 0.8),
        talk_seconds=SecondsRange(1.5, 2.5),
        wrap_up_seconds=SecondsRange(0.2, 0.5),
    )
    simulator = Simulator(settings, rng=random.Random(2026))
    await simulator.start()
    try:
        deadline = time.monotonic() + CALLS_WITHIN_S
        # Polls another process's database: there is no event to wait for.
        while time.monotonic() < deadline and len(_answered_cdrs(node.data_dir)) < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.25)
        stats = simulator.stats
        registered = {op.account.username: op.registration.registered for op in simulator.operators}
        desks = {op.account.username: op.desk.state for op in simulator.operators}
    finally:
        await simulator.close()
    # Digest authentication: the right passwords register, a wrong one never does.
    assert registered == {"sim-op1": True, "sim-op2": True, "sim-op3": False}
    assert desks["sim-op3"] is DeskState.OFFLINE
    cdrs = _answered_cdrs(node.data_dir)
    assert len(cdrs) >= 3, node.log()
    assert all(direction == "inbound" for direction, _, _ in cdrs), cdrs
    assert stats.calls_answered >= 3 and stats.calls_placed >= stats.calls_answered
    assert stats.rtp.packets_sent > 0 and stats.rtp.packets_received > 0
    lines = [record.getMessage() for record in caplog.records]
    answered = [match for line in lines if (match := _ANSWERED.search(line))]
    assert len(answered) >= 3, lines
    assert {match[2] for match in answered} <= {"0312345000", "0312342002"}, lines
    assert any(match[2] == "0312345000" for match in answered), lines  # through the ACD
    for match in answered:
        talked, sent, received = float(match[3]), int(match[5]), int(match[6])
        # The customer's own 20 ms packets while talking, and the operator's relayed back.
        assert sent >= 0.8 * 50 * talked, match[0]
        assert received >= 0.8 * 50 * talked, match[0]
    for line in lines:
        refused = _NOT_CONNECTED.search(line)
        if refused is not None:  # alice has no phone; sim-op2 may be busy
            assert (refused[1], refused[2]) in {("0312341001", "480"), ("0312342002", "486")}
        gave_up = _GAVE_UP.search(line)
        if gave_up is not None:  # only ever on hold in a queue (the sales line has nobody)
            assert gave_up[1] in ("0312345000", "0312345100"), line


@pytest.mark.integration
def test_callwarden_demo_comes_alive_within_20_seconds(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log_path = tmp_path / "demo.log"
    ports = [str(free_port()) for _ in range(4)]
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(CALLWARDEN),
                "demo",
                "--data-dir",
                str(data_dir),
                "--bind",
                LOOPBACK,
                "--sip-port",
                ports[0],
                "--http-port",
                ports[1],
                "--simulator-port",
                ports[2],
                "--sip-tls-port",
                ports[3],
                "--rtp-ports",
                "38200-38399",
                "--talk-seconds",
                "2-3",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    try:
        answered_at = None
        while time.monotonic() - started < CALLS_WITHIN_S + 5 and process.poll() is None:
            if _answered_cdrs(data_dir):
                answered_at = time.monotonic() - started
                break
            time.sleep(0.25)
        text = log_path.read_text(errors="replace")
        assert answered_at is not None and answered_at < CALLS_WITHIN_S, text
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
    text = log_path.read_text(errors="replace")
    assert code == 0, text
    match = _ANSWERED.search(text)
    assert match is not None, text
    assert int(match[5]) > 0 and int(match[6]) > 0
    assert (data_dir / "demo-center.yaml").read_text().count(f"port: {ports[2]}") == 1
