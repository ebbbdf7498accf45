"""The recording writer as a process of its own, beside the media worker that records.

Sealing a batch (AES-256-GCM, SHA-256, the append and the group commit) costs about 0.1 ms of
CPU, most of it holding the GIL. On a writer *thread* that is GIL the media loop waits for, and
at 500 recorded calls the loop's packets were held up behind it (p99 delay 10-63 ms, against
3-8 ms with the calls tapped and nothing written; docs/benchmarks.md). Here the writer is a
child process (``python -m callwarden.recording.capture_process``) with its own interpreter, at
a lower scheduling priority (``WRITER_NICE``): the media loop never waits for it, and on a busy
machine the kernel runs the loop first.

The media process side (:class:`WriterProcess`, used by ``CaptureProvider(process=True)``):

* the loop hands groups of work over as the writer thread's queue would take them; a *sender*
  thread turns them into plain values and writes them to the child's pipe (pickled; blocking
  there never blocks the loop);
* a *reader* thread takes the child's replies (``closed`` with what the manifest needs,
  ``failed`` with the reason) and passes them to the loop;
* the child going away (killed, crashed) fails every recording it held, with an alert, and
  the next recording starts a new child.

The child (:func:`serve`) keeps one :class:`~callwarden.recording.capture_slot.WriterSlot` per
recording and commits as the writer thread does. The recordings' data keys cross only this
local pipe, as they cross the media worker's command pipe; nothing reaches the disk unsealed.
When its parent goes away (end of file on the pipe) it makes what it wrote durable and exits:
the recordings are left open, for recovery at the next start (marked incomplete).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Protocol, cast

from callwarden.recording.capture_io import open_sealed
from callwarden.recording.capture_slot import Run, WriterSlot, group_commit

if TYPE_CHECKING:
    from callwarden.recording.capture import CaptureSink

__all__ = ["WRITER_NICE", "WriterProcess", "serve"]

logger = logging.getLogger(__name__)

WRITER_NICE = 5
"""The writer process's niceness above the media worker's: on a saturated machine the media
loop (whose packets cannot wait) runs first; the writer (which can wait a second) still gets
about a quarter of a contended core, several times what 500 recorded calls need."""
GROUP_COMMIT_SECONDS = 0.25
"""Sealed batches are made durable together at most this long after the first (as on the
writer thread; the crash bound is 2 s)."""
START_TIMEOUT_SECONDS = 30.0

Work = tuple[int, str, object]
"""What crosses the pipe: ``(recording key, kind, plain payload)``; ``None`` ends the child."""


class WriterProcess:
    """The media process's handle on its writer process (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sinks: Mapping[int, CaptureSink],
        on_done: Callable[[int], None],
    ) -> None:
        self._loop = loop
        self._sinks = sinks
        self._on_done = on_done
        self._closing: dict[int, asyncio.Future[Mapping[str, object]]] = {}
        self._outbound: queue.SimpleQueue[list[Work] | None] = queue.SimpleQueue()
        work_read, work_write = os.pipe()
        results_read, results_write = os.pipe()
        self._process = subprocess.Popen(  # noqa: S603 (this interpreter, this module)
            [
                sys.executable,
                "-m",
                __name__,
                str(work_read),
                str(results_write),
                str(logger.getEffectiveLevel()),  # the child logs as the media worker does
            ],
            pass_fds=(work_read, results_write),
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
        os.close(work_read)
        os.close(results_write)
        self._work = Connection(work_write, readable=False)
        self._results = Connection(results_read, writable=False)
        self.alive = True
        self._sender = threading.Thread(
            target=self._send, name="callwarden-recording-sender", daemon=True
        )
        self._reader = threading.Thread(
            target=self._read, name="callwarden-recording-replies", daemon=True
        )
        self._sender.start()
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    # --- on the media loop ------------------------------------------------------------------

    def put(self, group: list[tuple[CaptureSink, str, object]]) -> None:
        """Hand a group of work over (never blocks); a close's future is answered later."""
        for sink, kind, payload in group:
            if kind == "close":
                _, done = cast("tuple[int, asyncio.Future[Mapping[str, object]]]", payload)
                if self.alive:
                    self._closing[sink.key] = done
                else:
                    _set_result(done, {})
        if self.alive:
            self._outbound.put([(sink.key, kind, payload) for sink, kind, payload in group])

    async def close(self) -> None:
        """Let the child finish what is queued, then wait for it."""
        self.alive = False  # its end is no failure now
        self._outbound.put(None)
        await asyncio.to_thread(self._sender.join)
        try:
            await asyncio.to_thread(self._process.wait, START_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            logger.error("recording writer process %s did not end; killed", self.pid)
            self._process.kill()
            await asyncio.to_thread(self._process.wait)
        await asyncio.to_thread(self._reader.join)

    def _closed(self, key: int, written: Mapping[str, object]) -> None:
        done = self._closing.pop(key, None)
        if done is not None:
            _set_result(done, written)

    def _failed(self, key: int, reason: str) -> None:
        sink = self._sinks.get(key)
        if sink is not None:
            sink.fail(reason)

    def _ended(self, code: int | None) -> None:
        """The child went away: every recording it held fails; closes get nothing back."""
        if not self.alive:
            return
        self.alive = False
        self._outbound.put(None)  # the sender thread ends too
        reason = f"the recording writer process ended (exit status {code})"
        for sink in list(self._sinks.values()):
            sink.fail(reason)
        for done in self._closing.values():
            _set_result(done, {})
        self._closing.clear()

    # --- on the sender and reader threads ---------------------------------------------------

    def _send(self) -> None:
        while True:
            group = self._outbound.get()
            try:
                if group is None:
                    self._work.send(None)
                    self._work.close()
                    return
                plain = [(key, kind, _plain(kind, payload)) for key, kind, payload in group]
                self._work.send(plain)
            except OSError as error:  # the child is gone; the reader reports it
                logger.error("recording writer process: cannot hand work over: %s", error)
                with contextlib.suppress(OSError):
                    self._work.close()
                return
            finally:
                if group is not None:
                    self._on_done(len(group))

    def _read(self) -> None:
        while True:
            try:
                kind, key, value = self._results.recv()
            except (EOFError, OSError):  # the child has ended (or is ending): reap it
                try:
                    code: int | None = self._process.wait(START_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    code = self._process.wait()
                self._results.close()
                self._call(self._ended, code)
                return
            if kind == "closed":
                self._call(self._closed, key, value)
            elif kind == "failed":
                self._call(self._failed, key, value)

    def _call(self, function: Callable[..., None], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed
            self._loop.call_soon_threadsafe(function, *args)


def _plain(kind: str, payload: object) -> object:
    """The payload as plain values (a close's future stays in the media process)."""
    if kind == "frames":
        return [(run.track, run.start, run.codes) for run in cast("list[_RunLike]", payload)]
    if kind == "close":
        return cast("tuple[int, object]", payload)[0]
    return payload  # open: the spec; pause, resume: a sample time


class _RunLike(Protocol):
    track: str
    start: int
    codes: bytearray


def _set_result(done: asyncio.Future[Mapping[str, object]], value: Mapping[str, object]) -> None:
    if not done.done():
        done.set_result(value)


# --- the child ------------------------------------------------------------------------------


def serve(work: Connection, results: Connection) -> None:
    """The writer process's loop: work in pipe order, group commits, replies."""
    slots: dict[int, WriterSlot] = {}
    dirty: dict[int, WriterSlot] = {}
    oldest = 0.0

    def report(key: int, reason: str) -> None:
        with contextlib.suppress(OSError):
            results.send(("failed", key, reason))

    while True:
        wait = None if not dirty else max(0.0, oldest + GROUP_COMMIT_SECONDS - time.monotonic())
        group: Sequence[Work] | None
        try:
            group = work.recv() if wait is None or work.poll(wait) else ()
        except (EOFError, OSError):  # the media worker went away: keep what is written
            group_commit(dirty.values())
            for slot in slots.values():
                slot.abort("the media worker went away")
            return
        if group is None:
            group_commit(dirty.values())
            return
        for key, kind, payload in group:
            if kind == "open":
                slot = WriterSlot(str(key), functools.partial(report, key))
                slot.open(open_sealed, cast("Mapping[str, object]", payload))
                slots[key] = slot
                continue
            slot_or_none = slots.get(key)
            if slot_or_none is None:
                continue
            if kind == "close":
                written = slot_or_none.close(cast(int, payload))
                del slots[key]
                dirty.pop(key, None)
                with contextlib.suppress(OSError):
                    results.send(("closed", key, dict(written)))
                continue
            if slot_or_none.run(kind, cast("Sequence[Run] | int", payload)) and not dirty:
                oldest = time.monotonic()
            if slot_or_none.unsynced:
                dirty[key] = slot_or_none
        if dirty and time.monotonic() - oldest >= GROUP_COMMIT_SECONDS:
            group_commit(dirty.values())
            dirty = {}


def main(argv: Sequence[str]) -> int:
    work_fd, results_fd, level = int(argv[0]), int(argv[1]), int(argv[2])
    # The media worker ends this process (end of file on the pipe); signals meant for the
    # node's process group must not cut a recording short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICE)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    serve(Connection(work_fd, writable=False), Connection(results_fd, readable=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
