"""Shared bans when a node restarts with its stable id (the id kept in its data directory, the
same on the bus as on its recordings), two nodes on one Redis bus (127.0.0.1:6379).

Node a bans an attacker and node b adopts the ban; a stops without ending it (a crash: its
bans die with it) and starts again on the same data directory, so with the same id. Then:

- an event of a's earlier run that reaches the bus late (a's ban) is a's own: the restarted a
  drops it (it neither adopts its own ban nor counts it as another node's), and b, which holds
  that ban already, does not adopt it a second time;
- the restarted a still adopts b's bans, and its own new ban of the attacker is adopted by b
  and lifted on b when it ends on a (the end names a, the origin b recorded for the ban).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bus.redis_support import connected_client, random_prefix
from callwarden.bus.codec import EventCodec
from callwarden.bus.redis_bus import RedisBus
from callwarden.recording.recovery import node_identity
from callwarden.sip.addressing import Source
from callwarden.sip.clock import LoopClock
from callwarden.telephony.security_events import (
    SIP_SECURITY_EVENT_TYPES,
    SourceBanned,
    SourceUnbanned,
)
from callwarden.telephony.shared_bans import SharedBans
from callwarden.telephony.source_guard import SourceGuard, SourceGuardSettings

pytestmark = pytest.mark.redis

SETTINGS = SourceGuardSettings(ban_threshold=5, ban_seconds=3.0, max_ban_seconds=10.0)
"""Bans long enough that a stops before its first one ends, even on a loaded machine."""
ATTACKER = Source("UDP", "198.51.100.66", 5062, "192.0.2.1", 5060)
SCANNER = Source("UDP", "198.51.100.77", 5062, "192.0.2.1", 5060)
CODEC = EventCodec(SIP_SECURITY_EVENT_TYPES)


@dataclass
class RunningNode:
    bus: RedisBus
    guard: SourceGuard
    shared: SharedBans


@asynccontextmanager
async def running(redis: Redis, channel: str, data_dir: Path) -> AsyncIterator[RunningNode]:
    """A node's bus, guard and shared bans, as the node wires them, with its stable id."""
    bus = RedisBus(redis, CODEC, node_id=node_identity(data_dir), channel=channel)
    await bus.start()
    guard = SourceGuard(
        LoopClock(asyncio.get_running_loop()),
        settings=SETTINGS,
        publish=bus.publish,
        wall_clock=lambda: datetime.now(UTC),
        node_id=bus.node_id,
    )
    shared = SharedBans(bus, guard, lambda: datetime.now(UTC))
    shared.start()
    try:
        yield RunningNode(bus, guard, shared)
    finally:  # a stop with bans in force: they end with the node, unannounced
        await shared.close()
        guard.close()
        await bus.close()


async def until(condition: object, what: str, seconds: float = 8.0) -> None:
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < seconds, what
        await asyncio.sleep(0.01)


def ban(node: RunningNode, source: Source) -> None:
    for _ in range(SETTINGS.ban_threshold):
        node.guard.on_malformed(source)
    assert node.guard.is_banned(source.remote_host)


async def test_a_restarted_node_ignores_its_own_earlier_ban_and_shares_bans_as_before(
    tmp_path: Path,
) -> None:
    prefix = random_prefix()
    channel = f"{prefix}events"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        connected_client(prefix) as redis_a,
        connected_client(prefix) as redis_b,
        connected_client(prefix) as late_sender,
        running(redis_b, channel, tmp_path / "b") as b,
    ):
        watch_b = b.bus.subscribe()
        try:
            async with running(redis_a, channel, tmp_path / "a") as a:
                a_id = a.bus.node_id
                ban(a, ATTACKER)
                await until(lambda: b.guard.is_banned(ATTACKER.remote_host), "b never adopted")
                earlier_ban = await watch_b.get()
                assert isinstance(earlier_ban, SourceBanned) and earlier_ban.node == a_id
            # a has stopped (its ban unannounced); b holds it until its time is up.
            assert b.guard.is_banned(ATTACKER.remote_host)
            async with running(redis_a, channel, tmp_path / "a") as restarted:
                assert restarted.bus.node_id == a_id
                # a's earlier event arrives late: the restarted a drops it as its own.
                heard_by_b = b.bus.received
                await late_sender.publish(channel, CODEC.encode(earlier_ban, node_id=a_id))
                await until(lambda: restarted.bus.echoes_ignored == 1, "not seen as a's own")
                assert not restarted.guard.is_banned(ATTACKER.remote_host)
                assert restarted.guard.stats.adopted_bans == 0
                await until(lambda: b.bus.received > heard_by_b, "b never heard the late event")
                assert b.guard.stats.adopted_bans == 1  # not adopted a second time

                # b's bans still reach the restarted a.
                ban(b, SCANNER)
                await until(
                    lambda: restarted.guard.is_banned(SCANNER.remote_host), "a missed b's ban"
                )
                assert restarted.guard.stats.adopted_bans == 1

                # a's new ban is adopted by b, and lifted there when it ends on a.
                await until(
                    lambda: not b.guard.is_banned(ATTACKER.remote_host), "a's first ban stuck"
                )
                ban(restarted, ATTACKER)
                await until(lambda: b.guard.is_banned(ATTACKER.remote_host), "b missed a's ban")
                assert b.guard.stats.adopted_bans == 2
                await until(
                    lambda: (
                        not restarted.guard.is_banned(ATTACKER.remote_host)
                        and not b.guard.is_banned(ATTACKER.remote_host)
                    ),
                    "the ban did not end on both nodes",
                    seconds=12.0,
                )
                async with asyncio.timeout(8.0):  # the end b heard names a, its origin
                    while True:
                        heard = await watch_b.get()
                        if isinstance(heard, SourceUnbanned) and heard.node == a_id:
                            break
        finally:
            watch_b.close()
