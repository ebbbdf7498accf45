"""Bans shared across nodes: a node's SourceGuard applies the bans other nodes publish, for the
time they have left there, lifts them when their node ends them, and never publishes them
again; two nodes on one Redis bus (127.0.0.1:6379) ban an attacker together."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from bus.redis_support import connected_client, random_prefix
from callwarden.bus.codec import EventCodec
from callwarden.bus.event import Event
from callwarden.bus.redis_bus import RedisBus
from callwarden.sip.addressing import Source
from callwarden.sip.clock import FakeClock, LoopClock
from callwarden.telephony.security_events import (
    SIP_SECURITY_EVENT_TYPES,
    SourceBanned,
    SourceUnbanned,
)
from callwarden.telephony.shared_bans import SharedBans
from callwarden.telephony.source_guard import SourceGuard, SourceGuardSettings

WALL = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
SETTINGS = SourceGuardSettings(
    ban_threshold=5,
    ban_seconds=100.0,
    max_ban_seconds=1000.0,
    trusted_networks=("10.1.0.0/16",),
)
ATTACKER = Source("UDP", "198.51.100.66", 5062, "192.0.2.1", 5060)
PHONE = Source("UDP", "203.0.113.5", 5062, "192.0.2.1", 5060)


class Node:
    """One node's guard on a fake clock, its published events kept."""

    def __init__(
        self, name: str, clock: FakeClock, settings: SourceGuardSettings = SETTINGS
    ) -> None:
        self.published: list[Event] = []
        self.clock = clock
        self.guard = SourceGuard(
            clock,
            settings=settings,
            publish=self.published.append,
            wall_clock=lambda: WALL + timedelta(seconds=clock.now()),
            node_id=name,
        )
        self.shared = SharedBans(
            _NoBus(), self.guard, lambda: WALL + timedelta(seconds=clock.now())
        )

    def ban(self, source: Source) -> SourceBanned:
        for _ in range(SETTINGS.ban_threshold):
            self.guard.on_malformed(source)
        banned = self.published[-1]
        assert isinstance(banned, SourceBanned)
        return banned


class _NoBus:
    """Unit tests hand events to `SharedBans.apply` themselves."""

    def subscribe(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("not subscribed in unit tests")


def ban_from(
    node: str,
    address: str = "198.51.100.66",
    left: timedelta = timedelta(seconds=10),
    *,
    reason: str = "rate",
    ban_number: int = 1,
) -> SourceBanned:
    """The event another node publishes when it bans `address` for `left` from WALL."""
    return SourceBanned(
        at=WALL,
        address=address,
        reason=reason,
        offences=5,
        seconds=max(left.total_seconds(), 0.0),
        until=WALL + left,
        ban_number=ban_number,
        node=node,
    )


def test_a_ban_made_on_another_node_applies_here_until_it_ends_there() -> None:
    clock = FakeClock()
    a, b = Node("node-a", clock), Node("node-b", clock)
    banned = a.ban(ATTACKER)
    assert banned.node == "node-a"
    clock.advance(30)  # heard late: only the 70 s left there apply here
    assert b.shared.apply(banned)
    assert not b.guard.admits(ATTACKER) and b.guard.admits(PHONE)
    assert not b.guard.may_send_to(ATTACKER.remote_host)
    [view] = b.guard.bans()
    assert (view.address, view.seconds_left, view.ban_number) == ("198.51.100.66", 70.0, 1)
    assert b.published == [] and b.guard.stats.adopted_bans == 1  # never announced again
    clock.advance(69.9)
    assert not b.guard.admits(ATTACKER)
    clock.advance(0.1)
    assert b.guard.admits(ATTACKER)  # expiry honoured without any event
    assert b.published == []
    assert isinstance(a.published[-1], SourceUnbanned) and a.published[-1].node == "node-a"
    assert not b.shared.apply(a.published[-1])  # already over here


def test_a_ban_lifted_early_on_its_node_is_lifted_here() -> None:
    clock = FakeClock()
    a, b = Node("node-a", clock), Node("node-b", clock)
    assert b.shared.apply(a.ban(ATTACKER))
    lifted = SourceUnbanned(at=WALL, address="198.51.100.66", reason="lifted", node="node-a")
    assert not b.shared.apply(
        SourceUnbanned(at=WALL, address="198.51.100.66", reason="lifted", node="node-c")
    )  # not the node whose ban it is
    assert not b.guard.admits(ATTACKER)
    assert b.shared.apply(lifted)
    assert b.guard.admits(ATTACKER)
    assert b.published == []


def test_own_events_trusted_addresses_and_longer_local_bans_are_left_alone() -> None:
    clock = FakeClock()
    b = Node("node-b", clock)
    own = b.ban(ATTACKER)
    assert not b.shared.apply(own)  # the bus echoes a node's events to its own subscribers
    assert b.guard.stats.adopted_bans == 0
    assert not b.shared.apply(ban_from("node-a"))  # b's own 100 s ban stands
    assert b.guard.bans()[0].seconds_left == 100.0
    # and a's ending of its shorter ban does not end b's own
    assert not b.shared.apply(SourceUnbanned(at=WALL, address="198.51.100.66", node="node-a"))
    assert b.guard.is_banned("198.51.100.66")
    office = Source("UDP", "10.1.2.3", 5062, "192.0.2.1", 5060)  # trusted on b, not on c
    c = Node("node-c", clock, SourceGuardSettings(ban_threshold=5, ban_seconds=100.0))
    assert not b.shared.apply(c.ban(office))
    assert b.guard.admits(office) and b.guard.stats.adopted_bans == 0


def test_an_adopted_ban_is_capped_and_counts_toward_the_next_ban_here() -> None:
    clock = FakeClock()
    b = Node("node-b", clock)
    huge = ban_from("node-a", "3fff:0:1:2::/64", timedelta(days=1), reason="scanner", ban_number=3)
    assert b.shared.apply(huge)
    assert b.guard.bans()[0].seconds_left == SETTINGS.max_ban_seconds
    assert not b.guard.admits(Source("UDP", "3fff:0:1:2::9", 5062, "192.0.2.1", 5060))
    clock.advance(SETTINGS.max_ban_seconds)
    assert b.guard.admits(Source("UDP", "3fff:0:1:2::9", 5062, "192.0.2.1", 5060))
    b.ban(Source("UDP", "3fff:0:1:2::9", 5062, "192.0.2.1", 5060))
    banned = b.published[-1]
    assert isinstance(banned, SourceBanned) and banned.ban_number == 4  # after a's third


def test_in_the_past_or_empty_bans_change_nothing() -> None:
    clock = FakeClock()
    b = Node("node-b", clock)
    assert not b.shared.apply(ban_from("node-a", left=timedelta(seconds=-1)))
    assert not b.shared.apply(ban_from(""))  # from older code: whose ban it is is unknown
    assert b.guard.bans() == []


# --------------------------------------------------------------------------- on Redis


@pytest.mark.redis
async def test_two_nodes_on_one_redis_bus_ban_together_and_let_go_together() -> None:
    prefix = random_prefix()
    loop = asyncio.get_running_loop()
    codec = EventCodec(SIP_SECURITY_EVENT_TYPES)
    settings = SourceGuardSettings(ban_threshold=5, ban_seconds=1.5, max_ban_seconds=10.0)
    async with connected_client(prefix) as redis_a, connected_client(prefix) as redis_b:
        buses = [
            RedisBus(redis, codec, node_id=name, channel=f"{prefix}events")
            for redis, name in ((redis_a, "node-a"), (redis_b, "node-b"))
        ]
        guards: list[SourceGuard] = []
        shared: list[SharedBans] = []
        for bus in buses:
            await bus.start()
            guard = SourceGuard(
                LoopClock(loop),
                settings=settings,
                publish=bus.publish,
                wall_clock=lambda: datetime.now(UTC),
                node_id=bus.node_id,
            )
            guards.append(guard)
            shared.append(SharedBans(bus, guard, lambda: datetime.now(UTC)))
            shared[-1].start()
        a, b = guards
        watch_b = buses[1].subscribe()
        try:
            started = time.monotonic()
            for _ in range(settings.ban_threshold):
                a.on_malformed(ATTACKER)
            assert a.is_banned(ATTACKER.remote_host)
            while not b.is_banned(ATTACKER.remote_host):
                assert time.monotonic() - started < 2.0, "node-b never heard of the ban"
                await asyncio.sleep(0.01)
            heard = time.monotonic() - started
            assert not b.admits(ATTACKER) and b.admits(PHONE)
            assert (b.stats.bans, b.stats.adopted_bans) == (0, 1)
            while a.is_banned(ATTACKER.remote_host) or b.is_banned(ATTACKER.remote_host):
                assert time.monotonic() - started < 5.0, "the ban did not end on both nodes"
                await asyncio.sleep(0.01)
            ended = time.monotonic() - started
            assert 1.4 < ended < 2.5, ended
            assert b.admits(ATTACKER)
            # b lets go at the end of the time it adopted, which may come a moment before a's
            # end-of-ban event crosses Redis: wait for that event rather than read at once.
            seen = []
            async with asyncio.timeout(2.0):
                while len(seen) < 2:
                    arrived = await watch_b.get()
                    seen.append((type(arrived).__name__, getattr(arrived, "node", "")))
            await asyncio.sleep(0.2)  # and nothing more comes from b itself
            while (event := watch_b.get_nowait()) is not None:
                seen.append((type(event).__name__, getattr(event, "node", "")))
            # b heard a's ban and its end, and announced nothing of its own
            assert seen == [("SourceBanned", "node-a"), ("SourceUnbanned", "node-a")], (
                seen,
                heard,
            )
        finally:
            watch_b.close()
            for sharing in shared:
                await sharing.close()
            for guard in guards:
                guard.close()
            for bus in buses:
                await bus.close()
