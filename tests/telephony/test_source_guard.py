"""The per-source SIP guard on a fake clock: the token bucket, bans after offences (over-rate
messages, scanners, garbage, failed authentications), ban lengths doubling, trusted networks
and hosts never touched, events on a real in-process bus, bounded tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from callwarden.bus.event import Event, visible_to
from callwarden.bus.in_process import InProcessBus
from callwarden.domain.ids import TeamId, UserId
from callwarden.domain.permissions import DEFAULT_ROLE_GRANTS
from callwarden.domain.policy import Principal
from callwarden.sip.addressing import Source
from callwarden.sip.clock import FakeClock
from callwarden.sip.message import SipMessage, SipRequest
from callwarden.telephony.security_events import SourceBanned, SourceUnbanned
from callwarden.telephony.source_guard import SourceGuard, SourceGuardSettings, parse_networks

RequestFactory = Callable[..., SipRequest]
WALL = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SETTINGS = SourceGuardSettings(
    requests_per_second=10.0,
    burst=20,
    ban_threshold=5,
    offence_window=60.0,
    ban_seconds=100.0,
    max_ban_seconds=300.0,
    scanner_offences=5,
    trusted_networks=("10.1.0.0/16", "2001:db8::/32"),
)


def source(host: str) -> Source:
    return Source("UDP", host, 5062, "192.0.2.1", 5060)


ATTACKER = source("198.51.100.66")
PHONE = source("203.0.113.5")


class Recorder:
    """The transaction layer stand-in: what reached it."""

    def __init__(self) -> None:
        self.messages: list[tuple[SipMessage, Source]] = []

    def on_message(self, message: SipMessage, source: Source) -> None:
        self.messages.append((message, source))


class Events:
    def __init__(self) -> None:
        self.published: list[Event] = []

    def publish(self, event: Event) -> None:
        self.published.append(event)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def inner() -> Recorder:
    return Recorder()


@pytest.fixture
def guard(clock: FakeClock, events: Events, inner: Recorder) -> SourceGuard:
    made = SourceGuard(
        clock,
        settings=SETTINGS,
        publish=events.publish,
        wall_clock=lambda: WALL,
        is_trusted_host=lambda host: host == "192.0.2.10",
    )
    made.bind(inner)
    return made


def deliver(guard: SourceGuard, request: SipRequest, origin: Source) -> bool:
    """What the transport does: ask, then hand the parsed message over."""
    if not guard.admits(origin):
        return False
    guard.on_message(request, origin)
    return True


def test_a_phone_within_its_rate_is_never_limited(
    guard: SourceGuard, clock: FakeClock, build_request: RequestFactory, inner: Recorder
) -> None:
    request = build_request("OPTIONS")
    for _ in range(300):  # 5 per second for a minute: half the rate
        assert deliver(guard, request, PHONE)
        clock.advance(0.2)
    assert len(inner.messages) == 300
    assert guard.stats.dropped_rate == 0 and not guard.is_banned(PHONE.remote_host)


def test_a_burst_is_allowed_then_the_rate_holds(guard: SourceGuard, clock: FakeClock) -> None:
    assert all(guard.admits(PHONE) for _ in range(SETTINGS.burst))
    assert not guard.admits(PHONE)  # the bucket is empty: dropped, one offence
    clock.advance(0.1)  # one token back (10 per second)
    assert guard.admits(PHONE)
    assert not guard.admits(PHONE)
    assert guard.stats.dropped_rate == 2


def test_a_flood_is_banned_and_the_ban_is_an_event(
    guard: SourceGuard, clock: FakeClock, events: Events
) -> None:
    admitted = sum(guard.admits(ATTACKER) for _ in range(1000))
    assert admitted == SETTINGS.burst
    assert guard.is_banned(ATTACKER.remote_host)
    # the offences that crossed the threshold, then every later message dropped unread
    assert guard.stats.dropped_rate == SETTINGS.ban_threshold
    assert guard.stats.dropped_banned == 1000 - SETTINGS.burst - SETTINGS.ban_threshold
    [banned] = events.published
    assert isinstance(banned, SourceBanned)
    assert (banned.address, banned.reason, banned.ban_number) == (ATTACKER.remote_host, "rate", 1)
    assert banned.seconds == SETTINGS.ban_seconds
    assert banned.until == WALL.replace(minute=1, second=40)
    assert banned.permission.value == "settings.manage"
    # another address is untouched
    assert guard.admits(PHONE)


def test_a_ban_ends_with_an_unban_event_and_the_next_one_lasts_twice_as_long(
    guard: SourceGuard, clock: FakeClock, events: Events
) -> None:
    for _ in range(SETTINGS.burst + SETTINGS.ban_threshold):
        guard.admits(ATTACKER)
    clock.advance(SETTINGS.ban_seconds - 1)
    assert not guard.admits(ATTACKER)
    clock.advance(1)  # the unban timer fires
    assert isinstance(events.published[-1], SourceUnbanned)
    assert events.published[-1].address == ATTACKER.remote_host
    assert not guard.is_banned(ATTACKER.remote_host)
    assert guard.admits(ATTACKER)
    for _ in range(SETTINGS.burst + SETTINGS.ban_threshold):
        guard.admits(ATTACKER)
    second = events.published[-1]
    assert isinstance(second, SourceBanned)
    assert (second.ban_number, second.seconds) == (2, 2 * SETTINGS.ban_seconds)
    clock.advance(2 * SETTINGS.ban_seconds)
    for _ in range(SETTINGS.burst + SETTINGS.ban_threshold):
        guard.admits(ATTACKER)
    third = events.published[-1]
    assert isinstance(third, SourceBanned)
    assert third.seconds == SETTINGS.max_ban_seconds  # capped (400 would be next)


@pytest.mark.parametrize(
    "user_agent", ["friendly-scanner", "sipvicious 0.3.4", "SIPCLI/v1.8", "VaxSIPUserAgent/3.1"]
)
def test_a_scanner_user_agent_is_dropped_and_banned(
    guard: SourceGuard,
    build_request: RequestFactory,
    inner: Recorder,
    events: Events,
    user_agent: str,
) -> None:
    request = build_request("REGISTER", extra=(f"User-Agent: {user_agent}",))
    assert guard.admits(ATTACKER)
    guard.on_message(request, ATTACKER)
    assert inner.messages == []  # never reaches the application, no answer
    assert guard.stats.dropped_scanner == 1
    assert guard.is_banned(ATTACKER.remote_host)  # scanner_offences == ban_threshold
    [banned] = events.published
    assert isinstance(banned, SourceBanned)
    assert (banned.reason, banned.user_agent) == ("scanner", user_agent)
    assert not guard.admits(ATTACKER)


def test_an_ordinary_phone_user_agent_passes(
    guard: SourceGuard, build_request: RequestFactory, inner: Recorder
) -> None:
    request = build_request("REGISTER", extra=("User-Agent: Yealink SIP-T46S 66.86.0.15",))
    assert deliver(guard, request, PHONE)
    assert len(inner.messages) == 1


def test_garbage_and_auth_failures_count_toward_a_ban(guard: SourceGuard, clock: FakeClock) -> None:
    for _ in range(3):
        guard.on_malformed(ATTACKER)
    guard.on_auth_failure(ATTACKER)
    assert not guard.is_banned(ATTACKER.remote_host)
    guard.on_auth_failure(ATTACKER)
    assert guard.is_banned(ATTACKER.remote_host)
    assert guard.stats.malformed == 3 and guard.stats.auth_failures == 2


def test_offences_outside_the_window_do_not_add_up(guard: SourceGuard, clock: FakeClock) -> None:
    for _ in range(SETTINGS.ban_threshold - 1):
        guard.on_auth_failure(ATTACKER)
    clock.advance(SETTINGS.offence_window + 1)
    for _ in range(SETTINGS.ban_threshold - 1):
        guard.on_auth_failure(ATTACKER)
    assert not guard.is_banned(ATTACKER.remote_host)


@pytest.mark.parametrize("host", ["10.1.2.3", "2001:db8::7", "192.0.2.10"])
def test_trusted_networks_and_hosts_are_never_limited_nor_banned(
    guard: SourceGuard, build_request: RequestFactory, inner: Recorder, host: str
) -> None:
    trusted = source(host)
    assert all(guard.admits(trusted) for _ in range(1000))
    for _ in range(100):
        guard.on_malformed(trusted)
        guard.on_auth_failure(trusted)
    scanner = build_request("OPTIONS", extra=("User-Agent: friendly-scanner",))
    guard.on_message(scanner, trusted)
    assert len(inner.messages) == 1
    assert not guard.is_banned(host) and guard.bans() == []


def test_an_attacker_on_another_address_never_bans_the_real_user(
    guard: SourceGuard, build_request: RequestFactory, inner: Recorder
) -> None:
    """The guard judges addresses: failures claiming alice from the attacker's address ban
    that address only."""
    for _ in range(SETTINGS.ban_threshold):
        guard.on_auth_failure(ATTACKER)
    assert guard.is_banned(ATTACKER.remote_host)
    assert deliver(guard, build_request("REGISTER", user="alice"), PHONE)
    assert inner.messages[-1][1] == PHONE


def test_bans_lists_what_is_in_force(guard: SourceGuard, clock: FakeClock) -> None:
    for host in ("198.51.100.1", "198.51.100.2"):
        for _ in range(SETTINGS.ban_threshold):
            guard.on_malformed(source(host))
        clock.advance(10)
    bans = guard.bans()
    assert [(ban.address, ban.reason, ban.seconds_left) for ban in bans] == [
        ("198.51.100.1", "malformed", 80.0),
        ("198.51.100.2", "malformed", 90.0),
    ]
    clock.advance(85)
    assert [ban.address for ban in guard.bans()] == ["198.51.100.2"]


def test_the_tables_are_bounded(clock: FakeClock, events: Events) -> None:
    settings = SourceGuardSettings(ban_threshold=2, max_sources=50, max_bans=10)
    guard = SourceGuard(clock, settings=settings, publish=events.publish, wall_clock=lambda: WALL)
    for n in range(1000):
        spoofed = source(f"198.18.{n // 250}.{n % 250}")
        guard.admits(spoofed)
        guard.on_malformed(spoofed)
    assert len(guard._counters) <= 50
    for n in range(30):
        host = source(f"198.19.0.{n}")
        guard.on_malformed(host)
        guard.on_malformed(host)
    assert len(guard.bans()) == 10
    guard.close()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="not a network"):
        SourceGuardSettings(trusted_networks=("10.0.0.0/33",))
    with pytest.raises(ValueError, match="positive"):
        SourceGuardSettings(burst=0)
    assert [str(n) for n in parse_networks(["192.0.2.7", "10.0.0.0/8"])] == [
        "192.0.2.7/32",
        "10.0.0.0/8",
    ]


def _principal(role: str, user: int) -> Principal:
    return Principal(UserId(user), TeamId(1), frozenset({TeamId(1)}), DEFAULT_ROLE_GRANTS[role])


def test_ban_events_reach_admins_only_on_a_real_bus(clock: FakeClock) -> None:
    bus = InProcessBus()
    watchers = {
        role: bus.subscribe(visible_to(_principal(role, n)))
        for n, role in enumerate(("admin", "supervisor", "operator", "auditor"), start=1)
    }
    guard = SourceGuard(clock, settings=SETTINGS, publish=bus.publish, wall_clock=lambda: WALL)
    for _ in range(SETTINGS.ban_threshold):
        guard.on_malformed(ATTACKER)
    clock.advance(SETTINGS.ban_seconds)
    admin = watchers.pop("admin")
    assert [type(admin.get_nowait()), type(admin.get_nowait())] == [SourceBanned, SourceUnbanned]
    assert all(watcher.pending == 0 for watcher in watchers.values())


def test_nothing_is_sent_to_a_banned_address(guard: SourceGuard, clock: FakeClock) -> None:
    assert guard.may_send_to(ATTACKER.remote_host)
    for _ in range(SETTINGS.ban_threshold):
        guard.on_malformed(ATTACKER)
    assert not guard.may_send_to(ATTACKER.remote_host)
    assert guard.may_send_to(PHONE.remote_host)
    clock.advance(SETTINGS.ban_seconds)
    assert guard.may_send_to(ATTACKER.remote_host)


def test_ipv6_sources_are_judged_by_their_64(guard: SourceGuard, events: Events) -> None:
    """An attacker holding a /64 cannot rotate through its addresses to escape a ban
    (3fff::/20 is documentation space outside the trusted 2001:db8::/32)."""
    for n in range(SETTINGS.ban_threshold):
        guard.on_malformed(source(f"3fff:0:1:2::{n + 1:x}"))
    assert guard.is_banned("3fff:0:1:2::ffff")
    assert not guard.admits(source("3fff:0:1:2:abcd::1"))
    assert not guard.may_send_to("3fff:0:1:2::99")
    assert guard.admits(source("3fff:0:1:3::1"))  # the next /64 is someone else
    [banned] = events.published
    assert isinstance(banned, SourceBanned) and banned.address == "3fff:0:1:2::/64"
