"""Several media worker processes behind the same :class:`MediaControl` interface.

Packet I/O costs about as much CPU in the kernel as in Python, so one process tops out near one
core. :class:`MediaWorkerPool` runs K :class:`MediaEngine` processes (uvloop, one per core),
each with its own slice of the RTP port range, and routes every command to the worker that owns
the named endpoint or bridge. A bridge lives wholly in one worker: create the bridge first and
its endpoints with ``create_endpoint(bridge_id=...)``. Ids carry their worker (``"w1.e7"``).

Commands and replies are pickled tuples of plain values on a socket pair (both ends are ours);
events (DTMF, RTP timeouts) come back on the same socket and go to :meth:`subscribe` callbacks.
Recordings run inside the worker owning the bridge: each worker builds the recording sink
provider named by ``MediaConfig.recording_sinks`` and ``start_recording``'s spec crosses the
socket pair (local, ours) to it; recording events come back like the other events.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import multiprocessing
import pickle
import socket
import struct
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

import uvloop

from callwarden.media.control import (
    BridgeId,
    EngineStats,
    LocalMedia,
    MediaConfig,
    MediaError,
    MediaEvent,
)
from callwarden.media.endpoint import EndpointStats
from callwarden.media.engine import MediaEngine
from callwarden.media.ports import PortRange, PortsExhaustedError
from callwarden.media.srtp import SrtpKeys

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
_COMMANDS = frozenset(
    {
        "create_endpoint",
        "set_remote",
        "enable",
        "set_rtp_timeout",
        "close_endpoint",
        "stats",
        "engine_stats",
        "create_bridge",
        "add_to_bridge",
        "add_tone",
        "add_wav",
        "remove_from_bridge",
        "set_hearing",
        "set_matrix",
        "set_mode",
        "hearing",
        "close_bridge",
        "start_recording",
        "pause_recording",
        "resume_recording",
        "stop_recording",
    }
)
_START_SECONDS = 30.0


async def _read_message(reader: asyncio.StreamReader) -> Any:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return pickle.loads(await reader.readexactly(length))  # noqa: S301 - our own worker


def _write_message(writer: asyncio.StreamWriter, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_LENGTH.pack(len(data)) + data)


def split_ports(ports: str, workers: int) -> list[str]:
    """Cut ``"LOW-HIGH"`` into ``workers`` disjoint ranges of whole even/odd pairs."""
    pairs = PortRange.parse(ports).pairs()
    per_worker = len(pairs) // workers
    if per_worker < 1:
        raise MediaError(f"port range {ports} is too small for {workers} workers")
    return [
        f"{pairs[i * per_worker]}-{pairs[(i + 1) * per_worker - 1] + 1}" for i in range(workers)
    ]


def worker_main(sock: socket.socket, config: MediaConfig, id_prefix: str) -> None:
    """Entry point of one worker process."""
    if config.log_level is not None:  # as the node's (cli), to the stderr both share
        logging.basicConfig(
            level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    uvloop.run(_serve(sock, config, id_prefix))


async def _serve(sock: socket.socket, config: MediaConfig, id_prefix: str) -> None:
    reader, writer = await asyncio.open_connection(sock=sock)
    async with MediaEngine(config, id_prefix=id_prefix) as engine:
        engine.subscribe(lambda event: _write_message(writer, ("event", event)))
        _write_message(writer, ("ready",))
        while True:
            try:
                request_id, method, args, kwargs = await _read_message(reader)
            except asyncio.IncompleteReadError:
                break  # the parent is gone
            if method == "close":
                break
            try:
                if method not in _COMMANDS:
                    raise MediaError(f"unknown media command {method!r}")
                value = await getattr(engine, method)(*args, **kwargs)
                _write_message(writer, ("reply", request_id, True, value))
            except (MediaError, PortsExhaustedError) as error:
                _write_message(writer, ("reply", request_id, False, error))
            except Exception as error:
                logger.exception("media worker %s: %s failed", id_prefix, method)
                failure = MediaError(f"{method} failed in media worker: {error}")
                _write_message(writer, ("reply", request_id, False, failure))
            await writer.drain()
    writer.close()


@dataclasses.dataclass
class _Worker:
    index: int
    process: BaseProcess
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Future[Any]]
    bridges: int = 0
    endpoints: int = 0
    reader_task: asyncio.Task[None] | None = None


class MediaWorkerPool:
    """K media engine processes; a :class:`MediaControl`. ``async with`` starts and closes it."""

    def __init__(self, config: MediaConfig, workers: int) -> None:
        if workers < 1:
            raise MediaError("a worker pool needs at least one worker")
        self.config = config
        self._count = workers
        self._workers: list[_Worker] = []
        self._subscribers: list[Callable[[MediaEvent], None]] = []
        self._requests = itertools.count(1)

    async def __aenter__(self) -> MediaWorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Spawn the workers and wait until each has bound its engine."""
        context = multiprocessing.get_context("spawn")
        for index, ports in enumerate(split_ports(self.config.ports, self._count)):
            parent, child = socket.socketpair()
            process = context.Process(
                target=worker_main,
                args=(child, dataclasses.replace(self.config, ports=ports), f"w{index}."),
                name=f"callwarden-media-{index}",
                daemon=True,
            )
            process.start()
            child.close()
            reader, writer = await asyncio.open_connection(sock=parent)
            worker = _Worker(index, process, reader, writer, {})
            async with asyncio.timeout(_START_SECONDS):
                ready = await _read_message(reader)
            if ready != ("ready",):
                raise MediaError(f"media worker {index} did not start: {ready!r}")
            worker.reader_task = asyncio.create_task(self._read_replies(worker))
            self._workers.append(worker)
        logger.info("media worker pool started: %d workers", len(self._workers))

    async def _read_replies(self, worker: _Worker) -> None:
        while True:
            try:
                message = await _read_message(worker.reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            if message[0] == "event":
                for callback in list(self._subscribers):
                    try:
                        callback(message[1])
                    except Exception:  # not the event: it may carry a DTMF digit
                        logger.exception(
                            "media event subscriber failed on a %s", type(message[1]).__name__
                        )
            elif message[0] == "reply":
                future = worker.pending.pop(message[1], None)
                if future is not None and not future.done():
                    if message[2]:
                        future.set_result(message[3])
                    else:
                        future.set_exception(message[3])
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(MediaError(f"media worker {worker.index} is gone"))
        worker.pending.clear()

    async def _call(self, worker: _Worker, method: str, *args: Any, **kwargs: Any) -> Any:
        request_id = next(self._requests)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = future
        _write_message(worker.writer, (request_id, method, args, kwargs))
        await worker.writer.drain()
        return await future

    def _owner(self, object_id: str) -> _Worker:
        prefix, dot, _ = object_id.partition(".")
        if dot and prefix[:1] == "w" and prefix[1:].isdigit():
            index = int(prefix[1:])
            if index < len(self._workers):
                return self._workers[index]
        raise MediaError(f"no endpoint or bridge {object_id!r}")

    # --- MediaControl -------------------------------------------------------------------------

    async def create_endpoint(
        self, *, bridge_id: str | None = None, srtp: bool = False
    ) -> LocalMedia:
        if bridge_id is not None:
            worker = self._owner(bridge_id)
        else:
            worker = min(self._workers, key=lambda w: w.endpoints)
        local: LocalMedia = await self._call(
            worker, "create_endpoint", bridge_id=bridge_id, srtp=srtp
        )
        worker.endpoints += 1
        return local

    async def set_remote(
        self,
        endpoint_id: str,
        *,
        host: str,
        port: int,
        payload_type: int,
        encoding: str,
        dtmf_payload_type: int | None = None,
        rtcp_port: int | None = None,
        direction: str = "sendrecv",
        srtp: SrtpKeys | None = None,
    ) -> None:
        await self._call(
            self._owner(endpoint_id),
            "set_remote",
            endpoint_id,
            host=host,
            port=port,
            payload_type=payload_type,
            encoding=encoding,
            dtmf_payload_type=dtmf_payload_type,
            rtcp_port=rtcp_port,
            direction=direction,
            srtp=srtp,
        )

    async def enable(
        self, endpoint_id: str, *, latch: bool = False, latch_host: str | None = None
    ) -> None:
        await self._call(
            self._owner(endpoint_id), "enable", endpoint_id, latch=latch, latch_host=latch_host
        )

    async def set_rtp_timeout(self, endpoint_id: str, seconds: float | None) -> None:
        await self._call(self._owner(endpoint_id), "set_rtp_timeout", endpoint_id, seconds)

    async def close_endpoint(self, endpoint_id: str) -> None:
        worker = self._owner(endpoint_id)
        await self._call(worker, "close_endpoint", endpoint_id)
        worker.endpoints -= 1

    async def stats(self, endpoint_id: str) -> EndpointStats:
        stats: EndpointStats = await self._call(self._owner(endpoint_id), "stats", endpoint_id)
        return stats

    async def engine_stats(self) -> EngineStats:
        each: list[EngineStats] = await asyncio.gather(
            *(self._call(worker, "engine_stats") for worker in self._workers)
        )
        return EngineStats(
            endpoints=sum(s.endpoints for s in each),
            bridges=sum(s.bridges for s in each),
            ports_free=sum(s.ports_free for s in each),
            ticks=min(s.ticks for s in each),
            late_ticks=sum(s.late_ticks for s in each),
            tick_work_max_ms=max(s.tick_work_max_ms for s in each),
            packets_fast_path=sum(s.packets_fast_path for s in each),
            packets_to_python=sum(s.packets_to_python for s in each),
        )

    async def create_bridge(self) -> BridgeId:
        worker = min(self._workers, key=lambda w: w.bridges)
        bridge_id: BridgeId = await self._call(worker, "create_bridge")
        worker.bridges += 1
        return bridge_id

    async def add_to_bridge(self, bridge_id: str, endpoint_id: str, role: str) -> None:
        worker = self._owner(bridge_id)
        if self._owner(endpoint_id) is not worker:
            raise MediaError(
                f"endpoint {endpoint_id} and bridge {bridge_id} live in different media workers:"
                " create the endpoint with bridge_id"
            )
        await self._call(worker, "add_to_bridge", bridge_id, endpoint_id, role)

    async def add_tone(
        self,
        bridge_id: str,
        frequencies: Sequence[float],
        *,
        level_dbfs: float = -12.0,
        cadence: tuple[float, float] | None = None,
        role: str = "player",
    ) -> str:
        participant_id: str = await self._call(
            self._owner(bridge_id),
            "add_tone",
            bridge_id,
            list(frequencies),
            level_dbfs=level_dbfs,
            cadence=cadence,
            role=role,
        )
        return participant_id

    async def add_wav(
        self, bridge_id: str, path: str, *, loop: bool = True, role: str = "player"
    ) -> str:
        participant_id: str = await self._call(
            self._owner(bridge_id), "add_wav", bridge_id, path, loop=loop, role=role
        )
        return participant_id

    async def remove_from_bridge(self, bridge_id: str, participant_id: str) -> None:
        await self._call(self._owner(bridge_id), "remove_from_bridge", bridge_id, participant_id)

    async def set_hearing(self, bridge_id: str, listener_id: str, sources: frozenset[str]) -> None:
        await self._call(
            self._owner(bridge_id), "set_hearing", bridge_id, listener_id, frozenset(sources)
        )

    async def set_matrix(self, bridge_id: str, matrix: Mapping[str, frozenset[str]]) -> None:
        plain = {listener: frozenset(sources) for listener, sources in matrix.items()}
        await self._call(self._owner(bridge_id), "set_matrix", bridge_id, plain)

    async def set_mode(self, bridge_id: str, mode: str) -> None:
        await self._call(self._owner(bridge_id), "set_mode", bridge_id, mode)

    async def hearing(self, bridge_id: str) -> dict[str, frozenset[str]]:
        matrix: dict[str, frozenset[str]] = await self._call(
            self._owner(bridge_id), "hearing", bridge_id
        )
        return matrix

    async def close_bridge(self, bridge_id: str) -> None:
        worker = self._owner(bridge_id)
        await self._call(worker, "close_bridge", bridge_id)
        worker.bridges -= 1

    async def start_recording(self, bridge_id: str, spec: Mapping[str, object]) -> None:
        await self._call(self._owner(bridge_id), "start_recording", bridge_id, dict(spec))

    async def pause_recording(self, bridge_id: str) -> int:
        timestamp: int = await self._call(self._owner(bridge_id), "pause_recording", bridge_id)
        return timestamp

    async def resume_recording(self, bridge_id: str) -> int:
        timestamp: int = await self._call(self._owner(bridge_id), "resume_recording", bridge_id)
        return timestamp

    async def stop_recording(self, bridge_id: str) -> Mapping[str, object]:
        summary: Mapping[str, object] = await self._call(
            self._owner(bridge_id), "stop_recording", bridge_id
        )
        return summary

    def worker_pids(self) -> list[int]:
        """Process ids of the workers (for monitoring their CPU)."""
        return [worker.process.pid for worker in self._workers if worker.process.pid is not None]

    def subscribe(self, callback: Callable[[MediaEvent], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    async def close(self) -> None:
        """Ask every worker to close its engine (RTCP BYE, sockets), then reap the processes."""
        workers, self._workers = self._workers, []
        for worker in workers:
            with contextlib.suppress(ConnectionError):
                _write_message(worker.writer, (0, "close", (), {}))
                await worker.writer.drain()
        for worker in workers:
            if worker.reader_task is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await worker.reader_task
                if not worker.reader_task.done():
                    worker.reader_task.cancel()
                    await asyncio.gather(worker.reader_task, return_exceptions=True)
            worker.writer.close()
            with contextlib.suppress(ConnectionError):
                await worker.writer.wait_closed()
            await asyncio.to_thread(worker.process.join, 5)
            if worker.process.is_alive():
                logger.warning("media worker %d did not stop; terminating it", worker.index)
                worker.process.terminate()
