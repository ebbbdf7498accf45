"""Live monitoring in the media engine: whisper latency, and the load of monitored calls.

**Latency.** One call (customer, operator, supervisor: three RTP endpoints in one bridge) in a
media worker process (the node's default on 2+ cores); the three phones are UDP sockets in this
process sending a 20 ms µ-law frame every 20 ms (silence: 0xFF). A timed tone burst (200 ms,
1 kHz) is sent from one phone and the operator's socket takes the arrival of the first frame
that carries it (RMS over -30 dBFS after µ-law decoding): the delay from the burst's first
packet leaving the sending phone to the operator hearing it. Measured for

* ``fast path``: the normal mode, the customer's burst to the operator (forwarded unchanged:
  the network path on loopback plus the engine's relay), and
* ``whisper``: the supervisor's burst to the operator (mixed with the customer each 20 ms tick,
  through the supervisor's jitter buffer),

so whisper's added delay is the difference. Target: < 60 ms beyond the network path.

**Load.** N two-party calls from the C generator of benchmarks/media.py (2N streams, measured as
there: loss, p99 delay and jitter within 0.1 % / 10 ms), and monitoring on ``--share`` (10 %) of
them: a supervisor endpoint joins each such bridge in listen mode (it hears both parties,
mixed every tick; the parties stay on the fast path, as the generator's timestamps need), its
phone a second generator process sending 50 packets/s and receiving the mix. The same N is
measured without monitoring first, so the two share the machine's state.

Usage: .venv/bin/python benchmarks/monitoring.py [--bursts 20] [--calls 500] [--share 0.1]
                                                  [--duration 8] [--skip-load] [--skip-latency]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import uvloop

from callwarden.media.control import MediaConfig, MediaControl
from callwarden.media.engine import MediaEngine
from callwarden.media.g711 import Encoding, decode, encode
from callwarden.media.matrix import Mode, monitored
from callwarden.media.workers import MediaWorkerPool
from media import (
    ENGINE_PORTS,
    GENERATOR_BASE_PORT,
    Result,
    build_generator,
    run_generator,
    to_result,
)

FRAME = 160
SILENCE = b"\xff" * FRAME
BURST_HZ = 1000.0
BURST_FRAMES = 10
DETECT_DBFS = -30.0
LATENCY_PORTS = "21000-21099"


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def burst_frames() -> list[bytes]:
    """BURST_FRAMES µ-law frames of a 1 kHz tone at -10 dBFS."""
    t = np.arange(FRAME * BURST_FRAMES) / 8000.0
    pcm = (np.sin(2 * np.pi * BURST_HZ * t) * 0.3 * 32767).astype(np.int16)
    return [encode(pcm[i * FRAME : (i + 1) * FRAME], Encoding.PCMU) for i in range(BURST_FRAMES)]


def loud(payload: bytes) -> bool:
    pcm = decode(payload, Encoding.PCMU).astype(np.float64) / 32768.0
    level = 10 * np.log10(max(2 * float(np.mean(pcm**2)), 1e-12))
    return bool(level > DETECT_DBFS)


class Phone(asyncio.DatagramProtocol):
    """Sends a frame every 20 ms to its endpoint; records when loud frames arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] | None = None
        self.sequence = 0
        self.pending: list[bytes] = []
        self.loud_arrivals: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 12 + FRAME and data[1] & 0x7F == 0 and loud(data[12 : 12 + FRAME]):
            self.loud_arrivals.append(time.monotonic())

    def send(self) -> float | None:
        """Send the next frame; the send time if it starts a burst."""
        if self.transport is None or self.remote is None:
            return None
        starting = bool(self.pending) and len(self.pending) == BURST_FRAMES
        payload = self.pending.pop(0) if self.pending else SILENCE
        self.sequence += 1
        header = bytes([0x80, 0]) + (self.sequence & 0xFFFF).to_bytes(2, "big")
        header += (self.sequence * FRAME & 0xFFFFFFFF).to_bytes(4, "big") + b"\x00\x00\x12\x34"
        sent = time.monotonic()
        self.transport.sendto(header + payload, self.remote)
        return sent if starting else None


@dataclass
class Latency:
    name: str
    samples: list[float]

    def line(self) -> str:
        ms = sorted(1000 * s for s in self.samples)
        p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        return (
            f"{self.name:10} bursts={len(ms):3d}  p50={statistics.median(ms):6.1f} ms  "
            f"p95={p95:6.1f} ms  max={ms[-1]:6.1f} ms"
        )


async def _phones(engine: MediaControl, bridge: str, roles: list[str]) -> dict[str, Phone]:
    loop = asyncio.get_running_loop()
    phones: dict[str, Phone] = {}
    for role in roles:
        _, phone = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", 0))
        assert phone.transport is not None
        port = phone.transport.get_extra_info("sockname")[1]
        local = await engine.create_endpoint(bridge_id=bridge)
        await engine.set_remote(
            local.endpoint_id, host="127.0.0.1", port=port, payload_type=0, encoding="PCMU"
        )
        await engine.add_to_bridge(bridge, local.endpoint_id, role)
        await engine.enable(local.endpoint_id)
        phone.remote = ("127.0.0.1", local.rtp_port)
        phones[local.endpoint_id] = phone
    return phones


async def _bursts(phones: list[Phone], source: Phone, listener: Phone, count: int) -> list[float]:
    """Send `count` bursts from `source`, 0.6 s apart, while every phone keeps sending."""
    frames = burst_frames()
    delays: list[float] = []
    start = time.monotonic()
    tick = 0
    burst_sent: float | None = None
    next_burst = start + 1.0
    while len(delays) < count:
        tick += 1
        await asyncio.sleep(max(0.0, start + tick * 0.020 - time.monotonic()))
        now = time.monotonic()
        if burst_sent is None and now >= next_burst:
            listener.loud_arrivals.clear()
            source.pending = list(frames)
        for phone in phones:
            sent = phone.send()
            if sent is not None and phone is source:
                burst_sent = sent
        if burst_sent is not None and listener.loud_arrivals:
            delays.append(listener.loud_arrivals[0] - burst_sent)
            burst_sent = None
            next_burst = now + 0.6
        elif burst_sent is not None and now - burst_sent > 1.0:
            raise RuntimeError("a burst never reached the operator")
    return delays


async def measure_latency(bursts: int) -> tuple[Latency, Latency]:
    config = MediaConfig(ports=LATENCY_PORTS, rtp_timeout=None)
    async with MediaWorkerPool(config, 1) as engine:
        bridge = await engine.create_bridge()
        by_endpoint = await _phones(engine, bridge, ["customer", "operator", "supervisor"])
        customer, operator, supervisor = by_endpoint.values()
        phones = [customer, operator, supervisor]
        fast = await _bursts(phones, customer, operator, bursts)
        roles = dict(zip(by_endpoint, ["customer", "operator", "supervisor"], strict=True))
        supervisor_id = next(e for e, r in roles.items() if r == "supervisor")
        await engine.set_matrix(bridge, monitored(roles, {supervisor_id: Mode.WHISPER}))
        whisper = await _bursts(phones, supervisor, operator, bursts)
        for phone in phones:
            if phone.transport is not None:
                phone.transport.close()
    return Latency("fast path", fast), Latency("whisper", whisper)


async def _supervisor_generator(binary: Path, count: int, base: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        str(binary),
        str(count),
        str(base),
        "1000",
        "0",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    if (await process.stdout.readline()).strip() != b"ready":
        raise RuntimeError("the supervisors' generator failed to start")
    return process


async def setup_monitored_calls(
    engine: MediaEngine,
    calls: int,
    supervisors: int,
    supervisor_base: int,
    supervisor_ports: list[int],
) -> list[int]:
    """`calls` two-party bridges for the generator's streams (as benchmarks/media.py sets them
    up), a supervisor listening in on every (calls / supervisors)-th one; the call ports."""
    ports = []
    step = max(1, calls // supervisors) if supervisors else 0
    joined = 0
    for call in range(calls):
        bridge = await engine.create_bridge()
        roles: dict[str, str] = {}
        for leg, role in enumerate(("customer", "operator")):
            stream = 2 * call + leg
            local = await _endpoint(engine, bridge, GENERATOR_BASE_PORT + stream, role)
            roles[local[0]] = role
            ports.append(local[1])
        if step and call % step == 0 and joined < supervisors:
            endpoint, port = await _endpoint(engine, bridge, supervisor_base + joined, "supervisor")
            supervisor_ports.append(port)
            roles[endpoint] = "supervisor"
            await engine.set_matrix(bridge, monitored(roles, {endpoint: Mode.LISTEN}))
            joined += 1
    return ports


async def _endpoint(engine: MediaEngine, bridge: str, port: int, role: str) -> tuple[str, int]:
    local = await engine.create_endpoint(bridge_id=bridge)
    await engine.set_remote(
        local.endpoint_id,
        host="127.0.0.1",
        port=port,
        payload_type=0,
        encoding="PCMU",
        dtmf_payload_type=101,
    )
    await engine.add_to_bridge(bridge, local.endpoint_id, role)
    await engine.enable(local.endpoint_id)
    return local.endpoint_id, local.rtp_port


async def setup_calls_and_supervisors(
    engine: MediaEngine,
    calls: int,
    count: int,
    base: int,
    supervisors: asyncio.subprocess.Process | None,
) -> list[int]:
    """The calls, then the supervisors' phones told where their endpoints are."""
    supervisor_ports: list[int] = []
    ports = await setup_monitored_calls(engine, calls, count, base, supervisor_ports)
    if supervisors is not None:
        assert supervisors.stdin is not None
        supervisors.stdin.write((" ".join(map(str, supervisor_ports)) + "\n").encode())
        await supervisors.stdin.drain()
    return ports


async def measure_load(
    binary: Path, calls: int, share: float, duration: float, warmup: float
) -> Result:
    config = MediaConfig(ports=ENGINE_PORTS, rtp_timeout=None)
    base = GENERATOR_BASE_PORT + 2 * calls + 100
    count = round(calls * share)
    supervisors = await _supervisor_generator(binary, count, base) if count else None
    async with MediaEngine(config) as engine:

        async def destinations() -> list[int]:
            ports = await setup_calls_and_supervisors(engine, calls, count, base, supervisors)
            return ports

        async def window() -> str:
            stats = await engine.engine_stats()
            return f"monitored={count} tick-max={stats.tick_work_max_ms:.1f}ms"

        report, cpu, note = await run_generator(
            binary, 2 * calls, duration, warmup, destinations, time.process_time, window
        )
    if supervisors is not None:
        supervisors.kill()
        await supervisors.wait()
    return to_result(calls, report, cpu, note)


async def main(arguments: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    if not arguments.skip_latency:
        for latency in await measure_latency(arguments.bursts):
            print(latency.line())
    if not arguments.skip_load:
        with tempfile.TemporaryDirectory() as directory:
            binary = build_generator(Path(directory))
            for share in (0.0, arguments.share):
                result = await measure_load(
                    binary, arguments.calls, share, arguments.duration, arguments.warmup
                )
                print(result.line(f"mon {share:.0%}"))
    print(f"machine after: {machine()}")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    uvloop.run(main(parse_arguments()))
