"""Concurrent two-party G.711 calls through the media engine, against rtpengine as the reference.

A generator of our own (benchmarks/rtpgen.c, compiled here with the system C compiler, one
process, one tight epoll loop) sends 50 packets/s each way per call, each stream at its own phase
of the 20 ms period, with the send time in the payload. It takes the kernel receive time of what
the relay forwards and reports loss, one-way delay and the RFC 3550 transit difference (added
jitter) per packet. For each N the relay is

* callwarden: ``MediaEngine`` on uvloop in this process (2N endpoints, N bridges, every call a
  bridge with the normal hearing matrix, i.e. the fast path, relayed by the C pump of
  ``callwarden.media.fastpath``; "in-C" is the share of packets it relayed without Python), or
  with ``--workers K`` K engine processes sharing the calls (each bridge wholly in one worker);
* callwarden-py (``--python-path``): the same engine without its C fast path (pure Python);
* rtpengine: the Debian daemon in userspace mode, calls set up through its ng control protocol.

It prints, per N (each N for every relay before the next N, so they share the machine's state),
loss, p50/p99 delay and jitter and the relay's CPU (percent of one core), then the largest N
with loss < 0.1 % and p99 delay and jitter < 10 ms for each relay and their ratio.

Usage: .venv/bin/python benchmarks/media.py [--calls 100,200,...] [--duration 8] [--workers 1]
                                            [--retries 1] [--no-rtpengine] [--bare] [--tap]
                                            [--python-path]

"gen-cpu" is the generator's own CPU: on a 2-core machine it needs about as much as the relay,
so the machine, not the relay, sets the ceiling near 500 calls.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import uvloop

from callwarden.media.control import EngineStats, MediaConfig, MediaControl
from callwarden.media.engine import MediaEngine
from callwarden.media.workers import MediaWorkerPool

HERE = Path(__file__).resolve().parent
GENERATOR_BASE_PORT = 12000
ENGINE_PORTS = "16000-19999"
RTPENGINE_PORTS = (8000, 11999)
NG_ADDRESS = ("127.0.0.1", 2223)
LOSS_LIMIT = 0.001
P99_LIMIT_US = 10_000.0


@dataclass
class Result:
    calls: int
    sent: int
    received: int
    latency: dict[str, float]
    jitter: dict[str, float]
    send_lag_p99: float
    cpu_percent: float
    note: str = ""

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0

    @property
    def passed(self) -> bool:
        return (
            self.loss < LOSS_LIMIT
            and self.latency["p99"] < P99_LIMIT_US
            and self.jitter["p99"] < P99_LIMIT_US
        )

    @property
    def microseconds_per_packet(self) -> float:
        """CPU per relayed packet: each call relays 2 streams x 50 packets/s."""
        return self.cpu_percent * 1e4 / (100 * self.calls)

    def line(self, name: str) -> str:
        return (
            f"{name:11} N={self.calls:5d}  loss={self.loss * 100:7.3f}%  "
            f"delay p50={self.latency['p50'] / 1000:6.2f} "
            f"p99={self.latency['p99'] / 1000:7.2f} ms  "
            f"jitter p99={self.jitter['p99'] / 1000:7.2f} ms  "
            f"cpu={self.cpu_percent:5.1f}%  gen-lag p99={self.send_lag_p99 / 1000:5.2f} ms  "
            f"{'ok' if self.passed else 'FAIL'} {self.note}"
        )


def build_generator(directory: Path) -> Path:
    binary = directory / "rtpgen"
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("a C compiler (cc) is needed to build the RTP generator")
    subprocess.run([compiler, "-O2", "-o", str(binary), str(HERE / "rtpgen.c")], check=True)
    return binary


async def run_generator(
    binary: Path,
    streams: int,
    duration: float,
    warmup: float,
    destinations: Callable[[], Awaitable[list[int]]],
    measure_cpu: Callable[[], float],
    window: Callable[[], Awaitable[str]] | None = None,
) -> tuple[dict[str, Any], float, str]:
    """Start the generator, hand it destinations, measure relay CPU over the counted window.

    ``window`` is awaited at the start and the end of the counted window; what it returns at
    the end is a note for the result line.
    """
    process = await asyncio.create_subprocess_exec(
        str(binary),
        str(streams),
        str(GENERATOR_BASE_PORT),
        str(duration),
        str(warmup),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    ready = await process.stdout.readline()
    if ready.strip() != b"ready":
        raise RuntimeError(f"generator failed to start: {ready!r}")
    ports = await destinations()
    process.stdin.write((" ".join(map(str, ports)) + "\n").encode())
    await process.stdin.drain()
    await asyncio.sleep(warmup + 0.02)
    if window is not None:
        await window()
    cpu_before, wall_before = measure_cpu(), time.monotonic()
    generator_before = process_cpu_seconds(process.pid)
    await asyncio.sleep(duration - warmup)
    cpu_after, wall_after = measure_cpu(), time.monotonic()
    generator_after = process_cpu_seconds(process.pid)
    note = await window() if window is not None else ""
    generator_percent = 100.0 * (generator_after - generator_before) / (wall_after - wall_before)
    note = f"gen-cpu={generator_percent:.0f}% {note}"
    output = await process.stdout.readline()
    await process.wait()
    cpu_percent = 100.0 * (cpu_after - cpu_before) / (wall_after - wall_before)
    return json.loads(output), cpu_percent, note


def to_result(calls: int, report: dict[str, Any], cpu_percent: float, note: str = "") -> Result:
    return Result(
        calls=calls,
        sent=report["counted_sent"],
        received=report["counted_received"],
        latency=report["latency_us"],
        jitter=report["jitter_us"],
        send_lag_p99=report["send_lag_us"]["p99"],
        cpu_percent=cpu_percent,
        note=note,
    )


# --- callwarden ---------------------------------------------------------------------------------


class NullTracks:
    """A track sink that drops frames: measures the cost of per-participant tracks (--tap)."""

    def __init__(self) -> None:
        self.frames = 0

    def on_frame(self, participant_id: str, pcm: npt.NDArray[np.int16], timestamp: int) -> None:
        self.frames += 1


async def setup_calls(engine: MediaControl, first_stream: int, calls: int, tap: bool) -> list[int]:
    """Create ``calls`` two-party bridges for generator streams from ``first_stream``."""
    ports = []
    for call in range(calls):
        bridge = await engine.create_bridge()
        for leg, role in enumerate(("customer", "operator")):
            local = await engine.create_endpoint(bridge_id=bridge)
            stream = first_stream + 2 * call + leg
            await engine.set_remote(
                local.endpoint_id,
                host="127.0.0.1",
                port=GENERATOR_BASE_PORT + stream,
                payload_type=0,
                encoding="PCMU",
                dtmf_payload_type=101,
            )
            await engine.add_to_bridge(bridge, local.endpoint_id, role)
            await engine.enable(local.endpoint_id)
            ports.append(local.rtp_port)
        if tap and isinstance(engine, MediaEngine):
            engine.set_track_sink(bridge, NullTracks())
    return ports


def path_share(before: EngineStats | None, after: EngineStats) -> str:
    """The share of packets of the window that the C pump relayed (of all it read)."""
    if before is None:
        return ""
    in_c = after.packets_fast_path - before.packets_fast_path
    total = in_c + after.packets_to_python - before.packets_to_python
    return f" in-C={100 * in_c / total:.1f}%" if total else ""


async def measure_callwarden(
    binary: Path,
    calls: int,
    duration: float,
    warmup: float,
    workers: int,
    tap: bool,
    fast_path: bool = True,
) -> Result:
    config = MediaConfig(ports=ENGINE_PORTS, rtp_timeout=None, fast_path=fast_path)
    if workers == 1:
        async with MediaEngine(config) as engine:
            first: list[EngineStats] = []

            async def destinations() -> list[int]:
                ports = await setup_calls(engine, 0, calls, tap)
                gc.freeze()  # what a media process does after set-up: no full GC of old objects
                return ports

            async def window() -> str:
                stats = await engine.engine_stats()
                share = path_share(first[0] if first else None, stats)
                first.append(stats)
                return (
                    f"tick-max={stats.tick_work_max_ms:.1f}ms late-ticks={stats.late_ticks}" + share
                )

            report, cpu, note = await run_generator(
                binary, 2 * calls, duration, warmup, destinations, time.process_time, window
            )
        return to_result(calls, report, cpu, note)
    if tap:
        raise SystemExit("--tap needs the in-process engine (--workers 1)")
    # Several engine processes, each owning whole calls and its own slice of the port range.
    async with MediaWorkerPool(config, workers) as pool:
        pids = pool.worker_pids()
        seen: list[EngineStats] = []

        async def pool_destinations() -> list[int]:
            return await setup_calls(pool, 0, calls, tap=False)

        async def pool_window() -> str:
            stats = await pool.engine_stats()
            share = path_share(seen[0] if seen else None, stats)
            seen.append(stats)
            return f"late-ticks={stats.late_ticks}" + share

        report, cpu, note = await run_generator(
            binary,
            2 * calls,
            duration,
            warmup,
            pool_destinations,
            lambda: sum(process_cpu_seconds(pid) for pid in pids),
            pool_window,
        )
    return to_result(calls, report, cpu, note)


# --- the floor: a bare uvloop relay --------------------------------------------------------------


class _BareLeg(asyncio.DatagramProtocol):
    """Forwards every datagram to the other leg's phone: no checks, no header rewrite."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.other: _BareLeg | None = None
        self.phone: tuple[str, int] = ("127.0.0.1", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.sendto(data, other.phone)


async def measure_bare(binary: Path, calls: int, duration: float, warmup: float) -> Result:
    """What the same load costs through the thinnest possible uvloop relay (the floor)."""
    loop = asyncio.get_running_loop()
    legs: list[_BareLeg] = []
    low = int(ENGINE_PORTS.split("-")[0])
    for index in range(2 * calls):
        _, leg = await loop.create_datagram_endpoint(
            _BareLeg, local_addr=("127.0.0.1", low + 2 * index)
        )
        leg.phone = ("127.0.0.1", GENERATOR_BASE_PORT + index)
        legs.append(leg)
    for index in range(0, 2 * calls, 2):
        legs[index].other, legs[index + 1].other = legs[index + 1], legs[index]

    async def destinations() -> list[int]:
        return [low + 2 * index for index in range(2 * calls)]

    try:
        report, cpu, note = await run_generator(
            binary, 2 * calls, duration, warmup, destinations, time.process_time
        )
    finally:
        for leg in legs:
            if leg.transport is not None:
                leg.transport.close()
        await asyncio.sleep(0.1)
    return to_result(calls, report, cpu, note)


# --- rtpengine ------------------------------------------------------------------------------------


def bencode(value: Any) -> bytes:
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(item) for item in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value)}")


def bdecode(data: bytes, index: int = 0) -> tuple[Any, int]:
    kind = data[index : index + 1]
    if kind == b"i":
        end = data.index(b"e", index)
        return int(data[index + 1 : end]), end + 1
    if kind in (b"l", b"d"):
        index += 1
        items = []
        while data[index : index + 1] != b"e":
            item, index = bdecode(data, index)
            items.append(item)
        if kind == b"l":
            return items, index + 1
        return {items[i].decode(): items[i + 1] for i in range(0, len(items), 2)}, index + 1
    colon = data.index(b":", index)
    length = int(data[index:colon])
    return data[colon + 1 : colon + 1 + length], colon + 1 + length


class NgClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.pending: dict[bytes, asyncio.Future[dict[str, Any]]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.counter = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        cookie, _, body = data.partition(b" ")
        future = self.pending.pop(cookie, None)
        if future is not None and not future.done():
            future.set_result(bdecode(body)[0])

    async def command(
        self, message: dict[str, Any], expect: bytes = b"ok", within: float = 5.0
    ) -> dict[str, Any]:
        assert self.transport is not None
        self.counter += 1
        cookie = b"c%d" % self.counter
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[cookie] = future
        self.transport.sendto(cookie + b" " + bencode(message), NG_ADDRESS)
        try:
            reply = await asyncio.wait_for(future, within)
        finally:
            self.pending.pop(cookie, None)
        if reply.get("result") != expect:
            raise RuntimeError(f"rtpengine: {reply}")
        return reply


def sdp(port: int) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )


def sdp_port(body: bytes) -> int:
    for line in body.decode().splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise RuntimeError("no m=audio line in rtpengine's SDP")


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure_rtpengine(
    binary: Path, calls: int, duration: float, warmup: float, threads: int
) -> Result:
    rtpengine = await asyncio.create_subprocess_exec(
        "rtpengine",
        "--interface=127.0.0.1",
        f"--listen-ng={NG_ADDRESS[0]}:{NG_ADDRESS[1]}",
        "--foreground",
        "--table=-1",
        "--no-fallback",
        f"--port-min={RTPENGINE_PORTS[0]}",
        f"--port-max={RTPENGINE_PORTS[1]}",
        f"--num-threads={threads}",
        "--log-stderr",
        "--log-level=3",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    loop = asyncio.get_running_loop()
    _, ng = await loop.create_datagram_endpoint(NgClient, local_addr=("127.0.0.1", 0))
    try:
        for _ in range(50):  # wait until rtpengine answers its control port
            try:
                await ng.command({"command": "ping"}, expect=b"pong", within=0.2)
                break
            except TimeoutError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError("rtpengine did not start")

        async def destinations() -> list[int]:
            ports = []
            for call in range(calls):
                a, b = GENERATOR_BASE_PORT + 2 * call, GENERATOR_BASE_PORT + 2 * call + 1
                common = {"call-id": f"bench-{call}", "from-tag": f"a{call}"}
                offer = await ng.command(
                    {"command": "offer", "sdp": sdp(a), "replace": ["origin"], **common}
                )
                answer = await ng.command(
                    {"command": "answer", "sdp": sdp(b), "to-tag": f"b{call}", **common}
                )
                ports += [sdp_port(answer["sdp"]), sdp_port(offer["sdp"])]
            return ports

        report, cpu, note = await run_generator(
            binary,
            2 * calls,
            duration,
            warmup,
            destinations,
            lambda: process_cpu_seconds(rtpengine.pid),
        )
        return to_result(calls, report, cpu, note)
    finally:
        if ng.transport is not None:
            ng.transport.close()
        rtpengine.terminate()
        await rtpengine.wait()


# --- main -------------------------------------------------------------------------------------


async def main(arguments: argparse.Namespace) -> None:
    counts = [int(n) for n in arguments.calls.split(",")]
    with tempfile.TemporaryDirectory() as directory:
        binary = build_generator(Path(directory))
        relays: list[tuple[str, Callable[[int], Awaitable[Result]]]] = [
            (
                f"callwarden{'x' + str(arguments.workers) if arguments.workers > 1 else ''}",
                lambda n: measure_callwarden(
                    binary,
                    n,
                    arguments.duration,
                    arguments.warmup,
                    arguments.workers,
                    arguments.tap,
                ),
            )
        ]
        if arguments.python_path:
            relays.append(
                (
                    "callwarden-py",
                    lambda n: measure_callwarden(
                        binary,
                        n,
                        arguments.duration,
                        arguments.warmup,
                        arguments.workers,
                        arguments.tap,
                        fast_path=False,
                    ),
                )
            )
        if arguments.bare:
            relays.append(
                (
                    "bare-uvloop",
                    lambda n: measure_bare(binary, n, arguments.duration, arguments.warmup),
                )
            )
        if not arguments.no_rtpengine and shutil.which("rtpengine"):
            relays.append(
                (
                    "rtpengine",
                    lambda n: measure_rtpengine(
                        binary, n, arguments.duration, arguments.warmup, arguments.rtpengine_threads
                    ),
                )
            )
        # Each N is measured for every relay still within the bounds before the next N, so
        # the relays compared see the same minutes of a shared, drifting machine.
        best: dict[str, Result | None] = {name: None for name, _ in relays}
        alive = dict(relays)
        for calls in counts:
            for name, measure in list(alive.items()):
                for _ in range(1 + arguments.retries):  # a shared machine has hiccups
                    result = await measure(calls)
                    print(result.line(name), flush=True)
                    if result.passed:
                        break
                if result.passed:
                    best[name] = result
                else:
                    del alive[name]
            if not alive:
                break
        print()
        for name, found in best.items():
            if found is None:
                print(f"{name}: no tested N within the bounds")
            else:
                print(
                    f"{name}: largest N = {found.calls} calls ({2 * found.calls} streams)"
                    f" at {found.cpu_percent:.1f}% of one core"
                    f" ({found.microseconds_per_packet:.1f} µs of CPU per relayed packet)"
                )
        ours, reference = best.get(relays[0][0]), best.get("rtpengine")
        if ours is not None and reference is not None:
            print(f"ratio callwarden/rtpengine (largest N): {ours.calls / reference.calls:.2f}")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="100,200,300,400,500,600,700,800,1000")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--retries", type=int, default=1, help="re-runs of a failed N")
    parser.add_argument("--tap", action="store_true", help="record every track (null sink)")
    parser.add_argument("--no-rtpengine", action="store_true")
    parser.add_argument("--bare", action="store_true", help="also measure a bare uvloop relay")
    parser.add_argument(
        "--python-path",
        action="store_true",
        help="also measure callwarden without its C fast path (the pure-Python engine)",
    )
    parser.add_argument("--rtpengine-threads", type=int, default=1)
    return parser.parse_args()


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    uvloop.run(main(parse_arguments()))
