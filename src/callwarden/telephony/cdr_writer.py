"""Writes call detail records off the event loop, in batches.

The call path only appends to a bounded buffer; a worker thread writes what has gathered in one
transaction every `interval` seconds (PERFORMANCE-NOTES: file and database writes never on the
event loop). `close()` flushes what is left. If the buffer is full (the database is down for a
long time) the oldest pending records are kept and the newest refused with an error line, so
memory stays bounded and nothing is silently lost.

A batch refused for an integrity error is written record by record, so one record the database
refuses cannot hold back the others forever (the store already clears links to users, queues,
trunks and teams deleted while the call ran; a refusal left is a record no retry can fix).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from callwarden.domain.cdr import NewCdr
from callwarden.store.cdrs import CdrRepository

logger = logging.getLogger(__name__)


class CdrWriter:
    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        interval: float = 0.5,
        max_pending: int = 100_000,
    ) -> None:
        self._session_factory = session_factory
        self._interval = interval
        self._max_pending = max_pending
        self._pending: list[NewCdr] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failed_batches = 0
        self.refused = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cdr-writer", daemon=True)
        self._thread.start()

    def submit(self, cdr: NewCdr) -> None:
        """Queue one record (cheap: called from the event loop)."""
        with self._lock:
            if len(self._pending) >= self._max_pending:
                logger.error("CDR buffer full: record of call %s refused", cdr.call_id)
                return
            self._pending.append(cdr)

    def flush_now(self) -> None:
        """Write everything pending, in the calling thread (used by close and tests)."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self._write(batch)
        except IntegrityError:
            self._write_one_by_one(batch)
        except SQLAlchemyError:
            logger.exception("writing %d CDRs failed; they will be retried", len(batch))
            self._retry_later(batch)

    def _write(self, batch: Sequence[NewCdr]) -> None:
        with self._session_factory() as session, session.begin():
            CdrRepository(session).write_many(batch)
        self.written += len(batch)

    def _retry_later(self, batch: list[NewCdr]) -> None:
        self.failed_batches += 1
        with self._lock:
            self._pending[:0] = batch

    def _write_one_by_one(self, batch: list[NewCdr]) -> None:
        """After an integrity error: each record on its own, so only the refused one is lost
        (logged whole: retrying a record the database refuses can never succeed)."""
        for position, cdr in enumerate(batch):
            try:
                self._write([cdr])
            except IntegrityError:
                logger.exception(
                    "CDR of call %s refused by the database, dropped: %r", cdr.call_id, cdr
                )
                self.refused += 1
            except SQLAlchemyError:
                remaining = batch[position:]
                logger.exception("writing %d CDRs failed; they will be retried", len(remaining))
                self._retry_later(remaining)
                return

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self.flush_now()

    async def close(self) -> None:
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join)
        self.flush_now()
