"""Live events to WebSocket subscribers: publish on a node's bus, receive in a browser's place.

A real node (`callwarden.app.Node`: database, directory, in-process bus, uvicorn on its HTTP
port, SIP, media and ACD too) runs in this process. ``--subscribers`` live connections are
opened to its ``/api/v1/live`` over loopback TCP by a second process (the ``websockets``
client; it offers permessage-deflate as browsers do, and the node declines it), each with its
own signed-in session of a supervisor of one of ``--teams`` teams. The node then publishes
``--events`` agent-state events at a steady ``--rate`` per second, round-robin over the teams,
from its own event loop as the ACD does; each event reaches the sockets of its team
(``--teams 1``: every socket gets every event, the worst case). The client stamps each message
on arrival; latency is arrival minus the event's `at`, taken with the wall clock just before
`publish` (one machine, one clock). "Node fan-out" is the node's own share: from `publish` until
the last socket task it woke has written the frame (a socket whose send has to wait for a full
buffer is not waited for).

Reported: publish-to-receive latency p50/p90/p99/max over every delivered message, messages
that did not arrive or were reported dropped, node fan-out p50/p99, and the node's CPU per
delivered message.
Target (issue 4): under 50 ms at p99 with 500 subscribers.

Usage: .venv/bin/python benchmarks/live.py [--subscribers 500] [--teams 20] [--events 6000]
                                           [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port, process_cpu_s

ORIGIN = "https://bench.callwarden.test"
REALM = "bench.callwarden.test"
COOKIE = "__Host-callwarden_session"


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- the client process -------------------------------------------------------------------------


async def _client(spec: dict[str, Any]) -> None:
    """Open every socket, say `ready`, record arrivals until told `stop`, print the figures."""
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    dropped = 0
    errors: list[str] = []

    async def read(token: str, opened: asyncio.Event) -> None:
        nonlocal dropped
        try:
            async with connect(
                spec["url"],
                origin=spec["origin"],
                additional_headers={"Cookie": f"{COOKIE}={token}"},
                max_queue=None,
                open_timeout=60,
                ping_interval=None,
            ) as socket:
                welcome = json.loads(await socket.recv())
                assert welcome["type"] == "welcome", welcome
                opened.set()
                async for frame in socket:
                    arrived = time.time()
                    message = json.loads(frame)
                    if message["type"] == "event":
                        at = datetime.fromisoformat(message["at"]).timestamp()
                        latencies.append(arrived - at)
                    elif message["type"] == "dropped":
                        dropped += message["count"]
        except Exception as error:  # a benchmark reports what broke rather than stopping
            errors.append(f"{type(error).__name__}: {error}")
            opened.set()

    tasks = []
    for batch_start in range(0, len(spec["tokens"]), 50):  # handshakes 50 at a time
        batch = spec["tokens"][batch_start : batch_start + 50]
        opened = [asyncio.Event() for _ in batch]
        tasks += [
            asyncio.create_task(read(token, event))
            for token, event in zip(batch, opened, strict=True)
        ]
        await asyncio.gather(*(event.wait() for event in opened))
    print(json.dumps({"ready": len(tasks), "errors": errors[:3]}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(
        json.dumps({"latencies": latencies, "dropped": dropped, "errors": errors[:3]}), flush=True
    )


# -- the node -----------------------------------------------------------------------------------


def _after_fan_out(loop: asyncio.AbstractEventLoop, callback: Any, depth: int = 2) -> None:
    """Call `callback` once the loop has run what a publish sets off: the live dispatcher's
    step (scheduled by the publish), then each socket task it woke (scheduled by the
    dispatcher), each writing its frame. Callbacks run in the order they were scheduled."""
    if depth == 0:
        callback()
    else:
        loop.call_soon(_after_fan_out, loop, callback, depth - 1)


def _organisation(teams: int) -> dict[str, Any]:
    return {
        "teams": [{"name": f"team-{n}"} for n in range(teams)],
        "users": [
            {
                "username": f"boss-{n}",
                "role": "supervisor",
                "team": f"team-{n}",
                "supervises": [f"team-{n}"],
            }
            for n in range(teams)
        ]
        + [
            {"username": f"agent-{n}", "role": "operator", "team": f"team-{n}"}
            for n in range(teams)
        ],
    }


async def _run(options: argparse.Namespace) -> None:
    from callwarden.acd.agent import AgentState
    from callwarden.acd.events import AgentStateChanged
    from callwarden.app import Node, _settle_heap
    from callwarden.config import Settings
    from callwarden.provisioning import Provisioner
    from callwarden.security.clock import SystemClock
    from callwarden.security.sessions import AuthLevel, SessionRevocations, SessionService
    from callwarden.store.database import Database
    from callwarden.store.directory import UserDirectory
    from callwarden.store.migrations import upgrade

    with tempfile.TemporaryDirectory(prefix="cw-live-") as directory:
        rtp_low = free_port("127.0.0.1") // 2 * 2
        settings = Settings(
            data_dir=Path(directory),
            sip_port=free_port("127.0.0.1"),
            http_port=free_port("127.0.0.1", socket.SOCK_STREAM),
            rtp_port_low=min(rtp_low, 65000),
            rtp_port_high=min(rtp_low, 65000) + 20,
            allowed_origins=(ORIGIN,),
            log_level="WARNING",
            # Plain WebSockets on loopback: the figures measure the fan-out, not TLS (and stay
            # comparable with the earlier ones in docs/benchmarks.md).
            http_plaintext=True,
        )
        url = settings.effective_database_url
        upgrade(url)
        with Database(url) as database:
            Provisioner(database.sessions, REALM).apply_document(
                _organisation(options.teams), "bench"
            )
            sessions = SessionService(database.sessions, SystemClock(), SessionRevocations())
            directory_now = UserDirectory(database.sessions).reload()
            bosses = [directory_now.user_by_username(f"boss-{n}") for n in range(options.teams)]
            agents = [directory_now.user_by_username(f"agent-{n}") for n in range(options.teams)]
            tokens = [
                sessions.create(
                    bosses[index % options.teams].id,  # type: ignore[union-attr]
                    auth_level=AuthLevel.MFA,
                    mfa_required=True,
                    client_address="127.0.0.1",
                    user_agent="benchmarks/live.py",
                ).token
                for index in range(options.subscribers)
            ]
        node = Node(settings)
        await node.start()
        _settle_heap()  # as `callwarden run` does once its node is up
        assert node.bus is not None
        bus = node.bus
        # Stamped as this node's own ACD stamps them, so its engine does not mirror them as
        # another node's agents.
        engine = getattr(node, "acd", None)
        node_id = str(getattr(engine, "node_id", ""))
        spec = {
            "url": f"ws://127.0.0.1:{settings.http_port}/api/v1/live",
            "origin": ORIGIN,
            "tokens": tokens,
        }
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--client",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            limit=1 << 28,  # the figures come back as one JSON line
        )
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write((json.dumps(spec) + "\n").encode())
        await client.stdin.drain()
        started = time.perf_counter()
        ready = json.loads(await client.stdout.readline())
        print(
            f"{ready['ready']} sockets open in {time.perf_counter() - started:.1f} s"
            + (f"; errors: {ready['errors']}" if ready["errors"] else "")
        )
        await asyncio.sleep(0.5)
        interval = 1.0 / options.rate
        loop = asyncio.get_running_loop()
        fan_outs: list[float] = []
        cpu_before = process_cpu_s(os.getpid())
        start = time.perf_counter()
        for index in range(options.events):
            await asyncio.sleep(max(0.0, start + index * interval - time.perf_counter()))
            agent = agents[index % options.teams]
            assert agent is not None
            published = time.perf_counter()
            bus.publish(
                AgentStateChanged(
                    at=datetime.now(UTC),
                    team_id=agent.team_id,
                    user_id=agent.id,
                    state=AgentState.AVAILABLE,
                    previous=AgentState.WRAP_UP,
                    calls_taken=index,
                    node_id=node_id,
                )
            )
            _after_fan_out(
                loop, lambda since=published: fan_outs.append(time.perf_counter() - since)
            )
        publishing = time.perf_counter() - start
        await asyncio.sleep(1.0)
        cpu = process_cpu_s(os.getpid()) - cpu_before
        client.stdin.write(b"stop\n")
        await client.stdin.drain()
        result = json.loads(await client.stdout.readline())
        await client.wait()
        await node.close()
    expected = sum(
        len(range(team, options.subscribers, options.teams))
        * len(range(team, options.events, options.teams))
        for team in range(options.teams)
    )
    latencies = sorted(result["latencies"])
    print(
        f"{options.subscribers} subscribers over {options.teams} team(s), {options.events} events "
        f"at {options.rate:g}/s ({publishing:.1f} s)"
    )
    print(
        f"  delivered {len(latencies)} of {expected} messages "
        f"({len(latencies) / publishing:,.0f}/s), dropped {result['dropped']}"
        + (f", errors: {result['errors']}" if result["errors"] else "")
    )
    if latencies:
        ms = [value * 1000 for value in latencies]
        p99 = percentile(ms, 0.99)
        print(
            f"  publish to receive: p50 {percentile(ms, 0.5):.1f} ms, p90 {percentile(ms, 0.9):.1f}"
            f" ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"
            f"  (target p99 < 50 ms: {'met' if p99 < 50 else 'MISSED'})"
        )
        fan_ms = sorted(value * 1000 for value in fan_outs)
        print(
            f"  node fan-out (publish to the last socket write): p50 {percentile(fan_ms, 0.5):.1f}"
            f" ms, p99 {percentile(fan_ms, 0.99):.1f} ms"
        )
        print(
            f"  node CPU: {cpu:.2f} s over {publishing + 1:.1f} s, "
            f"{cpu / len(latencies) * 1e6:.0f} µs per delivered message"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.client:
        uvloop.run(_client(json.loads(sys.stdin.readline())))
        return
    uvloop.run(_run(options))


if __name__ == "__main__":
    main()
