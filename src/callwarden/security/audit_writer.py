"""Appends to the audit log from async code without blocking the event loop.

A bounded queue and one thread: `append` puts the event on the queue and awaits the entry;
the thread takes what has gathered (up to `max_batch` events), chains it in one transaction
and hands each caller its entry. One thread per process writes, and the chain lock (see
`audit_store`) orders it with the writers of other processes.

An act must not go ahead unrecorded, so every failure reaches the caller as `AuditUnavailable`:
the queue is full, the writer is closed, or the database refused the batch (each event of a
refused batch fails; none is retried behind the caller's back).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from callwarden.security.audit import AuditLog
from callwarden.security.audit_model import AuditEntry, AuditEvent, AuditUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Pending:
    event: AuditEvent
    result: Future[AuditEntry]


class AuditWriter:
    """`start()`, then `append()`/`submit()` from any thread or task, then `close()`."""

    def __init__(self, log: AuditLog, *, max_pending: int = 10_000, max_batch: int = 200) -> None:
        self._log = log
        self._max_batch = max_batch
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=max_pending)
        self._closed = False
        self._closing = threading.Lock()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def submit(self, event: AuditEvent) -> Future[AuditEntry]:
        """Queue `event` (never blocks); the future gets its entry or `AuditUnavailable`."""
        pending = _Pending(event, Future())
        with self._closing:
            if self._closed:
                raise AuditUnavailable("the audit writer is closed")
            try:
                self._queue.put_nowait(pending)
            except queue.Full:
                logger.error("audit queue full: %s by %r refused", event.action, event.actor.name)
                raise AuditUnavailable("the audit log is not keeping up; try again") from None
        return pending.result

    async def append(self, event: AuditEvent) -> AuditEntry:
        """Record `event` and return its entry once committed."""
        return await asyncio.wrap_future(self.submit(event))

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        try:
            entries = self._log.append_many([pending.event for pending in batch])
        except Exception as error:  # every failure must reach the callers, whatever it is
            logger.exception("writing %d audit entries failed", len(batch))
            self.failed += len(batch)
            for pending in batch:
                pending.result.set_exception(
                    AuditUnavailable(f"the audit log could not be written: {type(error).__name__}")
                )
            return
        self.written += len(entries)
        for pending, entry in zip(batch, entries, strict=True):
            pending.result.set_result(entry)

    async def close(self) -> None:
        """Write what is queued, then stop the thread; later appends are refused."""
        with self._closing:
            self._closed = True
        thread = self._thread
        if thread is None:
            self._fail_queued()
            return
        await asyncio.to_thread(self._queue.put, None)
        await asyncio.to_thread(thread.join)
        self._fail_queued()

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.result.set_exception(AuditUnavailable("the audit writer is closed"))
