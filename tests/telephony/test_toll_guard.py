"""Toll-fraud guards on a fake clock, with routes from the real dial plan over the test
directory (conftest): concurrent-call limits per user and per trunk, the outbound call-rate
limits, burst and new-country alerts, and leases given back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from callwarden.bus.event import Event
from callwarden.domain.cdr import CallDirection
from callwarden.domain.directory import DirectorySnapshot
from callwarden.sip.clock import FakeClock
from callwarden.sip.errors import SipError
from callwarden.telephony.call_context import CallerInfo
from callwarden.telephony.dialplan import Route, ToTrunk, ToUser, route_from_user
from callwarden.telephony.security_events import CallBurstAlert, CallRefused, NewDestinationAlert
from callwarden.telephony.toll_guard import TollGuard, TollGuardSettings, country_code

WALL = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SETTINGS = TollGuardSettings(
    max_calls_per_user=3,
    max_calls_per_trunk=5,
    user_outbound_per_minute=4,
    trunk_outbound_per_minute=6,
    burst_alert_calls=3,
    window=60.0,
)


class Events:
    def __init__(self) -> None:
        self.published: list[Event] = []

    def publish(self, event: Event) -> None:
        self.published.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.published if isinstance(event, kind)]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def toll(clock: FakeClock, events: Events) -> TollGuard:
    return TollGuard(clock, settings=SETTINGS, publish=events.publish, wall_clock=lambda: WALL)


def caller_of(directory: DirectorySnapshot, username: str) -> CallerInfo:
    user = directory.user_by_username(username)
    assert user is not None
    return CallerInfo(
        direction=CallDirection.OUTBOUND,
        label=user.extension or username,
        dialled="",
        flow=None,
        latch_host=None,
        user_id=user.id,
        team_id=user.team_id,
    )


def route(directory: DirectorySnapshot, username: str, number: str) -> Route:
    user = directory.user_by_username(username)
    assert user is not None
    found = route_from_user(directory, user, number)
    assert isinstance(found, ToTrunk | ToUser), found
    return found


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("+442071234567", "+44"),
        ("00442071234567", "+44"),
        ("0114420712345", "+44"),
        ("+12125550100", "+1"),
        ("0079161234567", "+7"),
        ("00353123456", "+353"),
        ("+88216", "+882"),
        ("0201234567", None),  # national
        ("1002", None),
        ("+", None),
        ("00", None),
    ],
)
def test_country_code(number: str, code: str | None) -> None:
    assert country_code(number) == code


def test_a_users_concurrent_calls_are_bounded_and_released(
    toll: TollGuard, directory: DirectorySnapshot
) -> None:
    caller = caller_of(directory, "alice")
    internal = route(directory, "alice", "1002")
    leases = [toll.admit(caller, internal, f"c{n}") for n in range(SETTINGS.max_calls_per_user)]
    with pytest.raises(SipError) as refused:
        toll.admit(caller, internal, "one-too-many")
    assert (refused.value.status, refused.value.reason) == (403, "Too Many Calls")
    # bob is not affected
    toll.admit(caller_of(directory, "bob"), route(directory, "bob", "1001"), "bob-1")
    toll.release(leases[0])
    toll.admit(caller, internal, "after-one-ended")
    assert toll.active("user:1") == SETTINGS.max_calls_per_user


def test_a_trunks_concurrent_calls_are_bounded_in_and_out(
    toll: TollGuard, directory: DirectorySnapshot, clock: FakeClock
) -> None:
    trunk = directory.trunk_by_name("carrier")
    assert trunk is not None
    inbound = CallerInfo(
        direction=CallDirection.INBOUND,
        label="anonymous",
        dialled="1001",
        flow=None,
        latch_host=None,
        trunk_id=trunk.id,
    )
    to_alice = route(directory, "bob", "1001")
    for n in range(SETTINGS.max_calls_per_trunk - 1):
        toll.admit(inbound, to_alice, f"in-{n}")
    # bob's outbound call through the same trunk takes the last channel
    out = route(directory, "bob", "0201234567")
    lease = toll.admit(caller_of(directory, "bob"), out, "out-1")
    with pytest.raises(SipError) as refused:
        toll.admit(inbound, to_alice, "in-full")
    assert refused.value.status == 503
    assert ("Retry-After", "5") in refused.value.headers
    toll.release(lease)
    toll.admit(inbound, to_alice, "in-after")


def test_the_users_outbound_rate_is_limited_with_a_burst_alert(
    toll: TollGuard, directory: DirectorySnapshot, clock: FakeClock, events: Events
) -> None:
    caller = caller_of(directory, "bob")
    out = route(directory, "bob", "0201234567")
    for n in range(SETTINGS.user_outbound_per_minute):
        toll.release(toll.admit(caller, out, f"c{n}"))
        clock.advance(1)
    [alert] = events.of(CallBurstAlert)
    assert isinstance(alert, CallBurstAlert)
    assert (alert.party, alert.party_kind, alert.calls) == ("user:2", "user", 3)
    with pytest.raises(SipError) as refused:
        toll.admit(caller, out, "over-the-rate")
    assert (refused.value.status, refused.value.reason) == (403, "Call Rate Exceeded")
    assert toll.active("user:2") == 0  # a refused call holds nothing
    assert len(events.of(CallBurstAlert)) == 1  # one alert per window
    # internal calls do not count against the outbound rate
    toll.release(toll.admit(caller, route(directory, "bob", "1001"), "internal"))
    clock.advance(SETTINGS.window)
    toll.admit(caller, out, "a-minute-later")


def test_the_trunks_outbound_rate_is_limited_across_users(
    toll: TollGuard, directory: DirectorySnapshot, clock: FakeClock, events: Events
) -> None:
    number = "0201234567"
    placed = 0
    for username in ("alice", "bob"):
        for _ in range(3):
            toll.release(
                toll.admit(caller_of(directory, username), route(directory, username, number), "x")
            )
            placed += 1
    assert placed == SETTINGS.trunk_outbound_per_minute
    with pytest.raises(SipError) as refused:
        toll.admit(caller_of(directory, "erin"), route(directory, "erin", number), "over")
    assert refused.value.status == 503
    trunk_alerts = [e for e in events.of(CallBurstAlert) if e.party_kind == "trunk"]  # type: ignore[attr-defined]
    assert len(trunk_alerts) == 1


def test_the_first_call_to_a_new_country_raises_an_alert(
    toll: TollGuard, directory: DirectorySnapshot, clock: FakeClock, events: Events
) -> None:
    caller = caller_of(directory, "bob")  # supervisors may dial 00.
    for number in ("0201234567", "00442071234567", "00442079999999", "00353123456"):
        toll.release(toll.admit(caller, route(directory, "bob", number), number))
        clock.advance(30)
    alerts = events.of(NewDestinationAlert)
    assert [(a.country_code, a.party) for a in alerts] == [  # type: ignore[attr-defined]
        ("+44", "user:2"),
        ("+353", "user:2"),
    ]
    assert alerts[0].permission.value == "settings.manage"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TollGuardSettings(max_calls_per_user=0)


def test_every_refusal_is_reported_for_admins(
    toll: TollGuard, directory: DirectorySnapshot, clock: FakeClock, events: Events
) -> None:
    caller = caller_of(directory, "alice")
    internal = route(directory, "alice", "1002")
    for n in range(SETTINGS.max_calls_per_user):
        toll.admit(caller, internal, f"c{n}")
    with pytest.raises(SipError):
        toll.admit(caller, internal, "one-too-many")
    error = toll.refused(replace(caller, dialled="0900123456"), SipError("not allowed", 403))
    assert error.status == 403
    refusals = events.of(CallRefused)
    assert [(e.party, e.status, e.reason, e.number) for e in refusals] == [  # type: ignore[attr-defined]
        ("user:1", 403, "Too Many Calls", ""),
        ("user:1", 403, "Forbidden", "0900123456"),
    ]
