"""The CDR writer process against a real, migrated SQLite database: records submitted on the
node's side are written by the child, close() waits for them, a dead child is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cdr_writer import cdr, leg, stored, stored_call_ids

from callwarden.domain.cdr import Disposition, LegRole
from callwarden.store.database import Database
from callwarden.store.migrations import upgrade
from callwarden.store.testing import temporary_sqlite_url
from callwarden.telephony.cdr_process import CdrWriterProcess

STARTED_LEGS = (leg(LegRole.CALLER), leg(LegRole.CALLEE))


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = temporary_sqlite_url(tmp_path)
    upgrade(url)
    yield url


async def _wait_for(condition: object, seconds: float = 20.0) -> None:
    assert callable(condition)
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"not within {seconds} s")


def _is_zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] == "Z"


async def test_records_are_written_by_the_child_and_close_waits_for_them(url: str) -> None:
    writer = CdrWriterProcess(url, interval=0.05)
    writer.start()
    with Database(url) as database:
        try:
            writer.submit(cdr("call-0", legs=STARTED_LEGS))
            await _wait_for(lambda: stored_call_ids(database) == ["call-0"])
            for number in range(1, 40):
                writer.submit(cdr(f"call-{number}"))
        finally:
            await writer.close()
        assert stored_call_ids(database) == [f"call-{number}" for number in range(40)]
        first = stored(database, "call-0")
        assert first.disposition is Disposition.NO_ANSWER
        assert [stored_leg.role for stored_leg in first.legs] == [LegRole.CALLER, LegRole.CALLEE]
    assert writer.sent == 40
    assert writer.restarts == 0


async def test_a_dead_child_is_replaced_and_nothing_submitted_later_is_lost(url: str) -> None:
    writer = CdrWriterProcess(url, interval=0.05)
    writer.start()
    try:
        first = writer.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await _wait_for(lambda: not Path(f"/proc/{first}").exists() or _is_zombie(first))
        for number in range(3):
            writer.submit(cdr(f"after-{number}"))
        await _wait_for(lambda: writer.restarts == 1)
    finally:
        await writer.close()
    with Database(url) as database:
        assert stored_call_ids(database) == ["after-0", "after-1", "after-2"]


async def test_the_buffer_refuses_beyond_max_pending(url: str) -> None:
    writer = CdrWriterProcess(url, interval=3600, max_pending=2)
    for number in range(3):
        writer.submit(cdr(f"call-{number}"))
    writer.start()
    await writer.close()
    with Database(url) as database:
        assert stored_call_ids(database) == ["call-0", "call-1"]
