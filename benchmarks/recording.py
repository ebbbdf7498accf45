"""Recorded calls through the media engine: what recording costs on top of relaying a call.

The harness of ``benchmarks/media.py`` (its C RTP generator: 50 packets/s each way per call,
loss, delay and jitter from kernel receive times) drives N two-party G.711 calls through one
``MediaEngine`` on uvloop (what one media worker process runs), measured twice per N, in turns:

* plain: the calls relayed (the C fast path), nothing recorded;
* tap-only: the tracks tapped into a sink that drops them as the recorder takes them (what
  the media side of recording costs: buffering every party's packets and gathering each tick's
  µ-law frames, in C for these calls, a batch taken every 1.2 s);
* recorded: the same, every call recorded by the real capture (``callwarden.recording.capture``:
  the bridge taps each party's track, the capture's writer process, as in the node, or its
  writer thread with ``--writer thread``, seals it with the sealed writer, AES-256-GCM chunks
  made durable by a group commit every 0.25 s) into files in a temporary directory on the disk
  of the data directory's file system (``--directory``).

CPU is the engine process's (all its threads) and its writer process's over the counted
window (the writer process starts with the first recording: its start-up, about 0.3-1.5 s of
CPU once per media worker, falls in the warm-up, except with ``--capture-only``). Printed per
N: both lines as media.py prints them, the CPU recording adds (percent of the plain run, and
ms of CPU per recorded call-minute), and the sealed bytes per minute per track. A recorded run
passes with media.py's bounds (loss < 0.1 %, p99 delay and jitter
< 10 ms) and no recording failed.

``--alternate`` measures what recording adds on a noisy machine: one engine relays N calls from
one generator run, and windows of ``--window`` seconds with nothing recorded, with the calls
tapped only (as tap-only above) and with every call recorded alternate (P T R P T R ... P,
``--pairs`` recorded windows); each tapped and recorded window is compared with the mean of the
plain windows on either side. Starting every recording (files
created, header fsync'd) and settling take ``--settle`` seconds before a recorded window and
stopping them (trailers, fsync) comes after it: their CPU beyond the plain rate is printed
apart, per recording ("opening and closing"), as it is paid once per call, not per minute.

``--tick-only`` measures the media loop's side alone, in memory and steady on a busy machine: N
two-party bridges ticked by the mixer, plain, tap-only and recorded by the capture with a writer
that drops the batches; the loop thread's CPU per call-minute of each (the pushes into the
jitter buffers, the pump's work, not counted).

``--supervisor MODE`` (listen, whisper, barge) and ``--hold-music`` change every call's
topology, in every mode: a third leg (a supervisor, one more generator stream per call) in that
monitoring mode, whose track is recorded too, and/or a tone player that the customer hears
instead of the operator (the customer is then mixed). Mixed listeners get mixed audio, which the
generator cannot time: with a supervisor or hold music only the CPU figures mean something
(``--alternate``, ``--tick-only``), not the loss and delay bounds.

``--python-tap`` with ``--tick-only`` adds a run recorded through the per-tick Python tap; with
``--alternate`` it adds to each pair a window recorded through the per-tick
Python tap (the capture's sinks without ``on_taps``: what bridges with a player or a mixed
supervisor took before they were tapped in C), compared with the same plain windows; the window
goes after the tapped-in-C one in odd pairs and before it in even ones.

``--capture-only`` measures the capture alone, without RTP: N recordings fed 160-sample frames
of both tracks as the media loop feeds them, as fast as the machine goes, for ``--seconds`` of
audio each; it prints the CPU of the loop side (sorting frames into batches) and of the writer
thread (encode, seal, write, fsync) per recorded call-minute. It needs no generator and is
steadier than the RTP runs on a busy machine.

Usage: .venv/bin/python benchmarks/recording.py [--calls 50,100,200] [--duration 8]
                                                [--repeat 1] [--directory /var/tmp]
       .venv/bin/python benchmarks/recording.py --alternate [--calls 100] [--pairs 6]
                                                [--window 6] [--settle 2]
       .venv/bin/python benchmarks/recording.py --capture-only [--calls 100] [--seconds 30]
       .venv/bin/python benchmarks/recording.py --tick-only [--calls 100] [--ticks 3000]
       any of them but --capture-only with [--supervisor listen|whisper|barge] [--hold-music]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import uvloop

from callwarden.media.bridge import Bridge, Member
from callwarden.media.control import BridgeId, EngineStats, MediaConfig
from callwarden.media.engine import MediaEngine
from callwarden.media.fastpath import Tap
from callwarden.media.g711 import Encoding, PcmArray
from callwarden.media.matrix import Mode
from callwarden.media.mixer import Mixer
from callwarden.media.player import ToneSource
from callwarden.media.recording_sink import RecordingContext, RecordingSink, RecordingSummary
from callwarden.media.stream import OutgoingStream
from callwarden.recording.capture import BATCH_SAMPLES, CaptureProvider, CaptureSink, SealSpec
from callwarden.recording.container import encode_pcm
from callwarden.recording.keyring import new_data_key
from media import (
    ENGINE_PORTS,
    GENERATOR_BASE_PORT,
    NullTracks,
    Result,
    build_generator,
    path_share,
    run_generator,
    to_result,
)

TRACKS = 2
HOLD_TONE = (392.0, 494.0)


@dataclass(frozen=True)
class Topology:
    """Every call's bridge: the two parties, a supervisor in ``supervisor`` mode (None: none),
    and hold music that the customer hears instead of the operator."""

    supervisor: str | None = None
    hold_music: bool = False

    @property
    def roles(self) -> tuple[str, ...]:
        """The RTP legs of a call (each a generator stream and a recorded track)."""
        return ("customer", "operator") + (("supervisor",) if self.supervisor else ())

    def __str__(self) -> str:
        parts = ["two-party"] if self.supervisor is None else [f"supervisor {self.supervisor}"]
        return " + ".join(parts + (["hold music"] if self.hold_music else []))


TWO_PARTY = Topology()


class NullCodeTracks(NullTracks):
    """A track sink that drops frames as the recorder takes them (participants tapped in C,
    a batch taken every 1.2 s; else µ-law, one call per bridge and tick): what the media side
    of recording costs without the capture."""

    def on_codes(self, frames: list[tuple[str, bytes | None]], timestamp: int) -> None:
        self.frames += len(frames)

    def on_taps(self, taps: Sequence[Tap]) -> None:
        for tap in taps:
            tap.capacity = BATCH_SAMPLES
            tap.owner = self.take
            tap.recording = tap.buffer is not None  # players are not recorded

    def take(self, tap: Tap) -> None:
        taken = tap.take()
        if taken is not None:
            self.frames += len(taken[1]) // 160


@dataclass
class Recorded:
    result: Result
    bytes_written: int
    seconds_recorded: float
    failed: int
    stop_seconds: float


async def setup(
    engine: MediaEngine, calls: int, topology: Topology = TWO_PARTY
) -> tuple[list[int], list[BridgeId]]:
    """``calls`` bridges of the topology for the generator's streams (one per leg); their ports
    and bridge ids."""
    ports, bridges = [], []
    roles = topology.roles
    for call in range(calls):
        bridge = await engine.create_bridge()
        bridges.append(bridge)
        endpoints = []
        for leg, role in enumerate(roles):
            local = await engine.create_endpoint(bridge_id=bridge)
            await engine.set_remote(
                local.endpoint_id,
                host="127.0.0.1",
                port=GENERATOR_BASE_PORT + len(roles) * call + leg,
                payload_type=0,
                encoding="PCMU",
            )
            await engine.add_to_bridge(bridge, local.endpoint_id, role)
            await engine.enable(local.endpoint_id)
            ports.append(local.rtp_port)
            endpoints.append(local.endpoint_id)
        if topology.supervisor is not None:
            await engine.set_mode(bridge, topology.supervisor)
        if topology.hold_music:
            player = await engine.add_tone(bridge, HOLD_TONE, level_dbfs=-18.0)
            await engine.set_hearing(bridge, endpoints[0], frozenset({player}))
    return ports, bridges


async def measure(
    binary: Path,
    calls: int,
    duration: float,
    warmup: float,
    directory: Path | None,
    tap_only: bool = False,
    topology: Topology = TWO_PARTY,
    writer: str = "process",
) -> Recorded:
    """One run; ``directory`` None: nothing recorded (``tap_only``: tracks tapped into a sink
    that drops them, the media side of recording without the capture)."""
    config = MediaConfig(ports=ENGINE_PORTS, rtp_timeout=None)
    provider = make_provider(writer) if directory is not None else None
    async with MediaEngine(config, recording_sinks=provider) as engine:
        bridges: list[str] = []
        first: list[EngineStats] = []

        async def destinations() -> list[int]:
            ports, made = await setup(engine, calls, topology)
            bridges.extend(made)
            if tap_only:
                for bridge in made:
                    engine.set_track_sink(bridge, NullCodeTracks())
            if directory is not None:
                for index, bridge in enumerate(made):
                    spec = SealSpec(
                        f"bench{index}", str(directory / f"{index}.cwr"), new_data_key()
                    )
                    await engine.start_recording(bridge, spec.to_plain())
            gc.freeze()
            return ports

        async def window() -> str:
            stats = await engine.engine_stats()
            share = path_share(first[0] if first else None, stats)
            first.append(stats)
            return f"tick-max={stats.tick_work_max_ms:.1f}ms late-ticks={stats.late_ticks}" + share

        report, cpu, note = await run_generator(
            binary,
            len(topology.roles) * calls,
            duration,
            warmup,
            destinations,
            engine_cpu,
            window,
        )
        summaries: list[Mapping[str, object]] = []
        started = time.monotonic()
        if directory is not None:
            for bridge in bridges:
                summaries.append(await engine.stop_recording(bridge))
        stop_seconds = time.monotonic() - started
    written = sum(f.stat().st_size for f in directory.iterdir()) if directory else 0  # noqa: ASYNC240
    samples = sum(int(str(s["samples"])) for s in summaries)
    failed = sum(1 for s in summaries if s["failed"])
    return Recorded(
        to_result(calls, report, cpu, note), written, samples / 8000, failed, stop_seconds
    )


async def capture_only(calls: int, seconds: int, directory: Path, writer: str) -> None:
    """The capture fed synthetic frames (see the module docstring)."""
    provider = make_provider(writer)
    clock = [0]
    sinks = []
    for index in range(calls):
        spec = SealSpec(f"c{index}", str(directory / f"c{index}.cwr"), new_data_key())
        context = RecordingContext(
            f"b{index}", spec.to_plain(), str, lambda: clock[0], lambda kind, detail: None
        )
        sinks.append(provider.open(context))
    pcm = (np.sin(np.arange(160) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
    frame = encode_pcm(pcm)  # the mixer taps the µ-law payloads as received
    started, loop_started = engine_cpu(), time.thread_time()
    for tick in range(seconds * 50):
        frames = [("customer", frame), ("operator", frame)]
        for sink in sinks:
            sink.on_codes(frames, clock[0])
        clock[0] += 160
        if tick % 10 == 0:
            # Faster than real time: wait while the writer thread is behind (the media loop
            # never gets ahead of the clock), so the queue bound measures nothing here.
            while provider.pending > calls:  # noqa: ASYNC110 - polling another thread
                await asyncio.sleep(0.001)
    loop_cpu = time.thread_time() - loop_started
    summaries = [await sink.stop() for sink in sinks]
    total = engine_cpu() - started
    await provider.close()
    minutes = calls * seconds / 60
    written = sum(f.stat().st_size for f in directory.iterdir())  # noqa: ASYNC240
    print(
        f"capture-only N={calls} x {seconds} s: loop {1000 * loop_cpu / minutes:.1f} ms +"
        f" writer thread {1000 * (total - loop_cpu) / minutes:.1f} ms of CPU per recorded"
        f" call-minute; {written / (minutes * TRACKS) / 1000:.1f} kB per minute per track;"
        f" {sum(1 for s in summaries if s['failed'])} failed",
        flush=True,
    )


async def alternate(binary: Path, calls: int, arguments: argparse.Namespace) -> None:
    """One engine, one generator run: windows with nothing recorded, with every call tapped
    into a sink that drops its batches, and with every call recorded, in turns (P T R P T R
    ... P), each compared with the plain windows on either side (see the module docstring)."""
    window, settle, pairs = arguments.window, arguments.settle, arguments.pairs
    # Generous: on a busy machine stopping hundreds of recordings takes tens of seconds; the
    # generator is stopped at the end.
    duration = arguments.warmup + pairs * (3 * window + settle + 60.0) + window + 30.0
    interval = arguments.switch_interval
    provider = (
        make_provider(arguments.writer)
        if interval is None
        else CaptureProvider(switch_interval=interval / 1000)
    )
    config = MediaConfig(ports=ENGINE_PORTS, rtp_timeout=None)
    directory = Path(tempfile.mkdtemp(dir=arguments.directory))
    plain: list[float] = []
    recorded: list[float] = []
    tapped: list[float] = []  # the bridges tapped into a sink that drops the batches
    writer_share: list[float] = []  # the writer thread's CPU in each window
    loop_share: list[float] = []  # the event loop's thread's
    transitions: list[float] = []  # CPU of starting + stopping every recording, beyond plain
    failed = 0
    choice = TapChoice(provider)
    python_tapped: list[float] = []  # recorded through the per-tick Python tap (--python-tap)
    if arguments.python_tap:
        duration += pairs * (window + settle + 60.0)
    async with MediaEngine(config, recording_sinks=choice) as engine:
        process = await asyncio.create_subprocess_exec(
            str(binary),
            str(len(arguments.topology.roles) * calls),
            str(GENERATOR_BASE_PORT),
            str(duration),
            str(arguments.warmup),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdin is not None and process.stdout is not None
        if (await process.stdout.readline()).strip() != b"ready":
            raise RuntimeError("the generator did not start")
        ports, bridges = await setup(engine, calls, arguments.topology)
        gc.freeze()
        process.stdin.write((" ".join(map(str, ports)) + "\n").encode())
        await process.stdin.drain()
        await asyncio.sleep(arguments.warmup + 0.5)

        async def cpu_over(seconds: float) -> float:
            cpu, wall = engine_cpu(), time.monotonic()
            loop, writer = time.thread_time(), writer_cpu()
            await asyncio.sleep(seconds)
            elapsed = time.monotonic() - wall
            loop_share.append(100 * (time.thread_time() - loop) / elapsed)
            writer_share.append(100 * (writer_cpu() - writer) / elapsed)
            return 100 * (engine_cpu() - cpu) / elapsed

        async def python_tap_window(pair: int) -> None:
            """Every call recorded through the per-tick Python tap for a window (its CPU only)."""
            nonlocal failed
            choice.python_tap = True
            for index, bridge in enumerate(bridges):
                path = str(directory / f"{pair}-{index}-python.cwr")
                spec = SealSpec(f"p{pair}py{index}", path, new_data_key())
                await engine.start_recording(bridge, spec.to_plain())
            choice.python_tap = False
            await asyncio.sleep(settle)
            cpu, wall = engine_cpu(), time.monotonic()
            await asyncio.sleep(window)
            python_tapped.append(100 * (engine_cpu() - cpu) / (time.monotonic() - wall))
            summaries = [await engine.stop_recording(bridge) for bridge in bridges]
            failed += sum(1 for summary in summaries if summary["failed"])
            await asyncio.sleep(1.0)

        plain.append(await cpu_over(window))
        for pair in range(pairs):
            for bridge in bridges:
                engine.set_track_sink(bridge, NullCodeTracks())
            await asyncio.sleep(0.5)
            tapped.append(await cpu_over(window))
            for bridge in bridges:
                engine.set_track_sink(bridge, None)
            if arguments.python_tap and pair % 2:
                await python_tap_window(pair)
            cpu, wall = engine_cpu(), time.monotonic()
            for index, bridge in enumerate(bridges):
                spec = SealSpec(
                    f"p{pair}c{index}", str(directory / f"{pair}-{index}.cwr"), new_data_key()
                )
                await engine.start_recording(bridge, spec.to_plain())
            await asyncio.sleep(settle)
            started_cpu, started_wall = engine_cpu() - cpu, time.monotonic() - wall
            recorded.append(await cpu_over(window))
            cpu, wall = engine_cpu(), time.monotonic()
            summaries = [await engine.stop_recording(bridge) for bridge in bridges]
            stop_cpu, stop_wall = engine_cpu() - cpu, time.monotonic() - wall
            failed += sum(1 for summary in summaries if summary["failed"])
            await asyncio.sleep(1.0)
            if arguments.python_tap and not pair % 2:
                await python_tap_window(pair)
            plain.append(await cpu_over(window))
            base = (plain[-1] + plain[-2]) / 2
            extra = started_cpu + stop_cpu - base / 100 * (started_wall + stop_wall)
            transitions.append(1000 * extra / calls)
            added = recorded[-1] - base
            stats = await engine.engine_stats()
            print(
                f"  pair {pair + 1}: plain {plain[-2]:.1f} % / {plain[-1]:.1f} %, tap only"
                f" {tapped[-1]:.1f} % ({tapped[-1] - base:+.1f} points), recorded"
                f" {recorded[-1]:.1f} %: recording adds {added:+.1f} points"
                f" ({100 * added / base:+.0f} %), {added / 100 * 60_000 / calls:.1f} ms per"
                f" recorded call-minute (loop thread"
                f" {loop_share[-2] - (loop_share[-1] + loop_share[-4]) / 2:+.1f} points, writer"
                f" thread {writer_share[-2] / 100 * 60_000 / calls:.1f} ms); opening and"
                f" closing {transitions[-1]:.1f} ms per"
                f" recording; tick-max {stats.tick_work_max_ms:.1f} ms;"
                f" load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if arguments.python_tap:
                python = python_tapped[-1] - base
                print(
                    f"          recorded through the Python tap {python_tapped[-1]:.1f} %:"
                    f" {python:+.1f} points ({100 * python / base:+.0f} %),"
                    f" {python / 100 * 60_000 / calls:.1f} ms per recorded call-minute",
                    flush=True,
                )
        process.stdin.close()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        await process.wait()
        if len(plain) < pairs + 1 or process.returncode not in (0, -signal.SIGTERM):
            print(f"  the generator stopped early (exit {process.returncode})", flush=True)
    shutil.rmtree(directory)
    ratios = sorted(
        100 * (r - (plain[i] + plain[i + 1]) / 2) / ((plain[i] + plain[i + 1]) / 2)
        for i, r in enumerate(recorded)
    )
    per_minute = sorted(
        (r - (plain[i] + plain[i + 1]) / 2) / 100 * 60_000 / calls for i, r in enumerate(recorded)
    )
    print(
        f"  N={calls} ({arguments.topology}), {pairs} pairs of {window:.0f} s windows:"
        " recording adds"
        f" {', '.join(f'{a:+.0f}' for a in ratios)} % of the plain windows;"
        f" median {ratios[len(ratios) // 2]:+.0f} %,"
        f" {per_minute[len(per_minute) // 2]:.1f} ms per recorded call-minute;"
        f" opening and closing a recording {sorted(transitions)[len(transitions) // 2]:.1f} ms"
        f" (median); {failed} recordings failed",
        flush=True,
    )
    if python_tapped:
        python_ratios = sorted(
            100 * (r - (plain[i] + plain[i + 1]) / 2) / ((plain[i] + plain[i + 1]) / 2)
            for i, r in enumerate(python_tapped)
        )
        print(
            f"  through the Python tap instead: recording adds"
            f" {', '.join(f'{a:+.0f}' for a in python_ratios)} %;"
            f" median {python_ratios[len(python_ratios) // 2]:+.0f} %",
            flush=True,
        )


class TapChoice:
    """The engine's recording sink provider for ``--python-tap``: the capture's sinks, or while
    ``python_tap`` is set, the same sinks without ``on_taps`` (the per-tick Python tap)."""

    def __init__(self, provider: CaptureProvider) -> None:
        self.provider = provider
        self.python_tap = False

    def open(self, context: RecordingContext) -> RecordingSink:
        sink = self.provider.open(context)
        return PythonTapSink(sink) if self.python_tap else sink

    async def close(self) -> None:
        await self.provider.close()


class PythonTapSink:
    """A capture sink without ``on_taps``: the bridge hands it every tick's frames in Python."""

    def __init__(self, sink: CaptureSink) -> None:
        self.sink = sink

    def on_codes(self, frames: list[tuple[str, bytes | None]], timestamp: int) -> None:
        self.sink.on_codes(frames, timestamp)

    def on_frame(self, participant_id: str, pcm: PcmArray, timestamp: int) -> None:
        self.sink.on_frame(participant_id, pcm, timestamp)

    def pause(self) -> int:
        return self.sink.pause()

    def resume(self) -> int:
        return self.sink.resume()

    async def stop(self) -> RecordingSummary:
        return await self.sink.stop()


class DroppingWriter:
    """A sealed writer's stand-in for ``--tick-only``: takes the batches, writes nothing."""

    unsynced = False

    def write(self, track: str, pcm: object, timestamp: int) -> None:
        pass

    def write_codes(self, runs: object, *, sync: bool) -> None:
        pass

    def pause(self, timestamp: int) -> None:
        pass

    def resume(self, timestamp: int) -> None:
        pass

    def close(self, end: int) -> Mapping[str, object]:
        return {}

    def abort(self) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def sync(self) -> None:
        pass

    def mark_synced(self) -> None:
        pass


class _Discard:
    def sendto(self, data: bytes, addr: tuple[str, int], /) -> None:
        pass


async def tick_only(
    calls: int, ticks: int, topology: Topology = TWO_PARTY, python_tap: bool = False
) -> float:
    """The media loop's side alone, in memory: ``calls`` bridges of the topology (PCMU legs whose
    payloads are pushed into their jitter buffers as the pump does), ticked ``ticks`` times by
    the mixer, each run plain, tapped into a sink that drops the frames, and recorded by the
    capture with a writer that drops the batches; prints the loop thread's CPU per call-minute
    (the pushes not counted) and returns what the capture adds over plain."""
    figures: dict[str, float] = {}
    spans: dict[str, str] = {}  # one tick's wall time: median/p99/max in ms
    kinds = ("plain", "tap-only", "capture") + (("capture-python-tap",) if python_tap else ())
    for kind in kinds:
        mixer = Mixer()
        bridges = []
        for index in range(calls):
            bridge = Bridge(f"b{index}", jitter_depth=1)
            mixer.add(bridge)
            for leg, role in enumerate(topology.roles):
                stream = OutgoingStream(0x7000 + leg, 100, 9000, encoding=Encoding.PCMU)
                stream.payload_type = 0
                stream.transport = _Discard()
                stream.address = ("192.0.2.20", 41000 + leg)
                bridge.add(role[0], role, stream=stream)
            if topology.supervisor is not None:
                bridge.apply(Mode(topology.supervisor))
            if topology.hold_music:
                bridge.add("m", "player", frame_source=ToneSource(HOLD_TONE, level_dbfs=-18.0))
                bridge.set_hearing("c", ["m"])
            bridges.append(bridge)
        provider = CaptureProvider(lambda spec: DroppingWriter())
        for bridge in bridges:
            if kind == "tap-only":
                bridge.set_track_sink(NullCodeTracks())
            elif kind.startswith("capture"):
                spec = SealSpec(bridge.id, os.devnull, new_data_key()).to_plain()
                members = bridge.members

                def role_of(participant_id: str, members: Mapping[str, Member] = members) -> str:
                    return members[participant_id].role

                def clock(bridge: Bridge = bridge) -> int:
                    return bridge.sample_clock

                context = RecordingContext(
                    bridge.id, spec, role_of, clock, lambda kind, detail: None
                )
                sink = provider.open(context)
                bridge.set_track_sink(sink if kind == "capture" else PythonTapSink(sink))
        payload = bytes(160)
        spent = 0.0
        durations: list[float] = []
        for tick in range(ticks):
            for bridge in bridges:  # what the pump does for each packet (not counted)
                for member in bridge.members.values():
                    member.last_active = tick * 0.02
                    if member.buffer is not None:
                        member.buffer.push(tick, payload)
            started, wall = time.thread_time(), time.perf_counter()
            mixer.tick(tick * 0.02)
            spent += time.thread_time() - started
            durations.append(time.perf_counter() - wall)
            if tick % 5 == 0:
                await asyncio.sleep(0)  # the capture's hand-over timer
        if kind.startswith("capture"):
            await provider.close()
        figures[kind] = 1000 * spent / (calls * ticks * 0.02 / 60)
        durations.sort()
        spans[kind] = (
            f"{1000 * durations[len(durations) // 2]:.2f}"
            f"/{1000 * durations[int(len(durations) * 0.99)]:.2f}/{1000 * durations[-1]:.2f}"
        )
    print(
        f"tick-only N={calls} ({topology}) x {ticks} ticks: loop thread per call-minute: plain"
        f" {figures['plain']:.2f} ms, tap-only {figures['tap-only']:.2f} ms, capture"
        f" {figures['capture']:.2f} ms: recording adds"
        f" {figures['capture'] - figures['plain']:.2f} ms on the loop; one tick of all"
        f" bridges (median/p99/max): plain {spans['plain']} ms, capture {spans['capture']} ms",
        flush=True,
    )
    if python_tap:
        print(
            f"  through the per-tick Python tap instead: capture"
            f" {figures['capture-python-tap']:.2f} ms, recording adds"
            f" {figures['capture-python-tap'] - figures['plain']:.2f} ms on the loop; one tick"
            f" {spans['capture-python-tap']} ms",
            flush=True,
        )
    return figures["capture"] - figures["plain"]


def make_provider(writer: str) -> CaptureProvider:
    return CaptureProvider(process=writer == "process")


def writer_process_cpu() -> float:
    """CPU seconds of this process's recording writer processes so far (those still running)."""
    total = 0
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if b"callwarden.recording.capture_process" in command:
                total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def engine_cpu() -> float:
    """CPU seconds of the engine's process (all its threads) and of its writer processes."""
    return time.process_time() + writer_process_cpu()


def writer_cpu() -> float:
    """CPU seconds of the capture's writer process, or thread, so far (0 before it started)."""
    if spent := writer_process_cpu():
        return spent
    for thread in threading.enumerate():
        if thread.name == "callwarden-recording-writer" and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


def machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return f"{os.cpu_count()} cores, {model}, load {load}"


async def one_round(binary: Path, calls: int, arguments: argparse.Namespace) -> float:
    """Plain, tap-only and recorded runs of ``calls`` calls in turn; returns what recording adds
    in percent of the plain run's CPU."""
    topology: Topology = arguments.topology
    duration, warmup = arguments.duration, arguments.warmup
    plain = await measure(binary, calls, duration, warmup, None, topology=topology)
    print(plain.result.line("plain"), flush=True)
    tapped = await measure(binary, calls, duration, warmup, None, True, topology)
    print(tapped.result.line("tap-only"), flush=True)
    with tempfile.TemporaryDirectory(dir=arguments.directory) as files:
        recorded = await measure(
            binary, calls, duration, warmup, Path(files), topology=topology, writer=arguments.writer
        )
    print(recorded.result.line("recorded"), flush=True)
    added = recorded.result.cpu_percent - plain.result.cpu_percent
    per_call_minute_ms = added / 100 * 60 * 1000 / calls
    minutes = recorded.seconds_recorded / 60
    tracks = len(topology.roles)
    per_track = recorded.bytes_written / (minutes * tracks) if minutes else 0.0
    verdict = "ok" if recorded.result.passed and not recorded.failed else "FAIL"
    tap_added = tapped.result.cpu_percent - plain.result.cpu_percent
    print(
        f"  N={calls}: the tap alone adds {tap_added:+.1f} points,"
        f" recording adds {added:+.1f} points of CPU"
        f" ({100 * added / plain.result.cpu_percent:+.0f} % of the plain run),"
        f" {per_call_minute_ms:.0f} ms CPU per recorded call-minute;"
        f" {per_track / 1000:.1f} kB per minute per track;"
        f" {recorded.failed} failed; stopping all took {recorded.stop_seconds:.2f} s;"
        f" {verdict}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return 100 * added / plain.result.cpu_percent


async def main(arguments: argparse.Namespace) -> None:
    print(f"machine: {machine()}; every call: {arguments.topology}", flush=True)
    counts = [int(n) for n in arguments.calls.split(",")]
    if arguments.tick_only:
        for calls in counts:
            for _ in range(arguments.repeat):
                await tick_only(calls, arguments.ticks, arguments.topology, arguments.python_tap)
        return
    if arguments.capture_only:
        for calls in counts:
            with tempfile.TemporaryDirectory(dir=arguments.directory) as files:
                await capture_only(calls, arguments.seconds, Path(files), arguments.writer)
        print(f"machine after: {machine()}")
        return
    with tempfile.TemporaryDirectory() as build:
        binary = build_generator(Path(build))
        if arguments.alternate:
            for calls in counts:
                await alternate(binary, calls, arguments)
            print(f"machine after: {machine()}")
            return
        for calls in counts:
            added = [await one_round(binary, calls, arguments) for _ in range(arguments.repeat)]
            if len(added) > 1:
                added.sort()
                median = added[len(added) // 2]
                print(
                    f"  N={calls}, {len(added)} rounds: recording adds"
                    f" {', '.join(f'{a:+.0f}' for a in added)} % of the plain run;"
                    f" median {median:+.0f} %",
                    flush=True,
                )
    print(f"machine after: {machine()}")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="50,100,200")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds per N (the machine is noisy: a median)"
    )
    parser.add_argument("--capture-only", action="store_true", help="the capture alone, no RTP")
    parser.add_argument(
        "--tick-only", action="store_true", help="the media loop's side alone, in memory"
    )
    parser.add_argument("--ticks", type=int, default=3000, help="--tick-only: ticks per run")
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="plain and recorded windows in turns in one engine and one generator run",
    )
    parser.add_argument("--pairs", type=int, default=6, help="--alternate: recorded windows")
    parser.add_argument(
        "--writer",
        choices=("process", "thread"),
        default="process",
        help="the recording writer: a process of its own (the node's) or a thread",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="--alternate: the GIL switch interval in ms while recording (default: the capture's)",
    )
    parser.add_argument("--window", type=float, default=6.0, help="--alternate: seconds")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="--alternate: seconds after starting"
    )
    parser.add_argument("--seconds", type=int, default=30, help="audio per capture-only run")
    parser.add_argument(
        "--supervisor",
        choices=[Mode.LISTEN.value, Mode.WHISPER.value, Mode.BARGE.value],
        default=None,
        help="a third leg per call, a supervisor in this mode (mixed), recorded as a track",
    )
    parser.add_argument(
        "--python-tap",
        action="store_true",
        help="--alternate, --tick-only: also record through the per-tick Python tap",
    )
    parser.add_argument(
        "--hold-music",
        action="store_true",
        help="a tone player per call that the customer hears (the customer is mixed)",
    )
    parser.add_argument(
        "--directory", default=None, help="where the sealed files go (default: the temp dir)"
    )
    arguments = parser.parse_args()
    arguments.topology = Topology(arguments.supervisor, arguments.hold_music)
    return arguments


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    uvloop.run(main(parse_arguments()))
