"""The in-process bus: fan-out, filters, bounded queues that drop the oldest, closing."""

from __future__ import annotations

import asyncio

import pytest

from callwarden.bus import (
    Event,
    InProcessBus,
    Subscription,
    SubscriptionClosed,
    of_kinds,
    visible_to,
)
from callwarden.domain.ids import CallId, TeamId, UserId
from callwarden.domain.permissions import DEFAULT_ROLE_GRANTS
from callwarden.domain.policy import Principal

from .events import T0, Colour, Everything, Ping


def ping(number: int, *, team: int | None = None, user: int | None = None) -> Ping:
    return Ping(
        at=T0,
        number=number,
        team_id=None if team is None else TeamId(team),
        user_id=None if user is None else UserId(user),
    )


async def test_every_subscriber_gets_every_event_in_order() -> None:
    bus = InProcessBus()
    first, second = bus.subscribe(), bus.subscribe()
    for number in range(3):
        bus.publish(ping(number))
    for subscription in (first, second):
        assert [(await subscription.get()).number for _ in range(3)] == [0, 1, 2]  # type: ignore[attr-defined]
    assert (bus.published, bus.subscriber_count) == (3, 2)


async def test_a_subscriber_sees_only_what_was_published_after_it_subscribed() -> None:
    bus = InProcessBus()
    bus.publish(ping(1))
    late = bus.subscribe()
    bus.publish(ping(2))
    assert late.get_nowait() == ping(2)
    assert late.get_nowait() is None


async def test_a_slow_subscriber_drops_its_oldest_events_and_counts_them() -> None:
    bus = InProcessBus()
    slow = bus.subscribe(max_pending=3)
    fast = bus.subscribe(max_pending=100)
    for number in range(10):
        bus.publish(ping(number))  # never blocks, whatever the subscribers do
    assert (slow.pending, slow.dropped) == (3, 7)
    assert [slow.get_nowait().number for _ in range(3)] == [7, 8, 9]  # type: ignore[union-attr]
    assert (fast.pending, fast.dropped) == (10, 0)
    with pytest.raises(ValueError, match="at least 1"):
        bus.subscribe(max_pending=0)


async def test_a_waiting_reader_wakes_on_publish() -> None:
    bus = InProcessBus()
    subscription = bus.subscribe()
    reader = asyncio.create_task(subscription.get())
    await asyncio.sleep(0)
    assert not reader.done()
    bus.publish(ping(5))
    assert await asyncio.wait_for(reader, 1) == ping(5)


async def test_closing_lets_readers_drain_then_ends_iteration() -> None:
    bus = InProcessBus()
    subscription = bus.subscribe()
    bus.publish(ping(1))
    bus.publish(ping(2))
    subscription.close()
    bus.publish(ping(3))  # not delivered any more
    assert [event async for event in subscription] == [ping(1), ping(2)]
    with pytest.raises(SubscriptionClosed):
        await subscription.get()
    assert bus.subscriber_count == 0


async def test_closing_the_bus_wakes_a_waiting_reader() -> None:
    bus = InProcessBus()
    subscription = bus.subscribe()
    collected = asyncio.create_task(_collect(subscription))
    await asyncio.sleep(0)
    bus.publish(ping(1))
    await bus.close()
    assert await asyncio.wait_for(collected, 1) == [ping(1)]


async def _collect(subscription: Subscription) -> list[Event]:
    return [event async for event in subscription]


async def test_a_context_manager_closes_the_subscription() -> None:
    bus = InProcessBus()
    with bus.subscribe() as subscription:
        assert not subscription.closed
    assert subscription.closed and bus.subscriber_count == 0


async def test_filters_choose_per_subscriber_and_a_broken_filter_harms_nobody() -> None:
    bus = InProcessBus()
    odd = bus.subscribe(lambda event: event.number % 2 == 1)  # type: ignore[attr-defined]
    broken = bus.subscribe(lambda event: 1 / 0 > 0)
    pings = bus.subscribe(of_kinds(Ping))
    for number in range(4):
        bus.publish(ping(number))
    assert [odd.get_nowait(), odd.get_nowait(), odd.get_nowait()] == [ping(1), ping(3), None]
    assert broken.pending == 0
    assert pings.pending == 4


def principal(
    role: str, *, user: int, team: int | None, supervises: tuple[int, ...] = ()
) -> Principal:
    return Principal(
        user_id=UserId(user),
        team_id=None if team is None else TeamId(team),
        supervised_team_ids=frozenset(TeamId(t) for t in supervises),
        grants=DEFAULT_ROLE_GRANTS[role],
    )


async def test_visible_to_applies_the_policy_to_each_event() -> None:
    bus = InProcessBus()
    supervisor = bus.subscribe(
        visible_to(principal("supervisor", user=50, team=1, supervises=(1,)))
    )
    admin = bus.subscribe(visible_to(principal("admin", user=60, team=None)))
    operator = bus.subscribe(visible_to(principal("operator", user=7, team=1)))
    auditor = bus.subscribe(visible_to(principal("auditor", user=80, team=None)))
    bus.publish(ping(1, team=1, user=7))  # live.view, team 1
    bus.publish(ping(2, team=2, user=9))  # live.view, team 2
    bus.publish(
        Everything(
            at=T0,
            call_id=CallId("x"),
            count=1,
            ratio=0.5,
            flag=True,
            colour=Colour.RED,
            when=T0,
            team_id=TeamId(2),
        )
    )  # reports.view, team 2
    assert _drain(supervisor) == [ping(1, team=1, user=7)]
    assert len(_drain(admin)) == 3
    assert _drain(operator) == []  # operators hold no live.view
    assert [type(e).__name__ for e in _drain(auditor)] == ["Everything"]


def _drain(subscription: Subscription) -> list[Event]:
    events = []
    while (event := subscription.get_nowait()) is not None:
        events.append(event)
    return events


def test_visible_to_agrees_with_authorize_for_every_role_and_event() -> None:
    from callwarden.domain.policy import authorize

    principals = [
        principal(role, user=user, team=team, supervises=supervises)
        for role in DEFAULT_ROLE_GRANTS
        for user, team, supervises in ((7, 1, ()), (50, 1, (1,)), (51, 2, (1, 3)), (60, None, ()))
    ]
    events: list[Event] = [
        ping(n, team=team, user=user)
        for n, (team, user) in enumerate(
            [(1, 7), (2, 9), (None, None), (3, None), (None, 7), (1, None)]
        )
    ]
    events.append(
        Everything(
            at=T0,
            call_id=CallId("x"),
            count=1,
            ratio=0.5,
            flag=True,
            colour=Colour.RED,
            when=T0,
            team_id=TeamId(1),
        )
    )
    for who in principals:
        admits = visible_to(who)
        for event in events:
            expected = authorize(who, event.permission, event.resource()).allowed
            assert admits(event) is expected, (who, event)
