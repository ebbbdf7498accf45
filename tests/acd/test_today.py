"""`acd.today`: the center's day and the engine's calls taken kept to it (seeded from the
history at start, zero at each local midnight), on an injected wall clock and sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from callwarden.acd.events import CallAnswered, CallHandled
from callwarden.acd.today import DailyCounts, calls_taken, local_midnight, next_midnight
from callwarden.bus.event import Event
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId

from .conftest import EngineFactory, make_queue

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 11, 30, 13, 30, tzinfo=UTC)
"""22:30 in Tokyo."""
DAY_START = datetime(2026, 11, 30, 0, 0, tzinfo=TOKYO)
Q1 = QueueId(1)


def _answered(call: str, user: int, at: datetime, queue: QueueId = Q1) -> CallAnswered:
    return CallAnswered(
        at=at,
        team_id=TeamId(1),
        user_id=UserId(user),
        call_id=CallId(call),
        queue_id=queue,
        waited_seconds=4,
    )


def test_the_day_starts_at_local_midnight() -> None:
    assert local_midnight(NOW, TOKYO) == DAY_START
    assert next_midnight(NOW, TOKYO) == DAY_START + timedelta(days=1)
    # 23:30 UTC on the 30th is already the 1st in Tokyo.
    assert local_midnight(NOW + timedelta(hours=10), TOKYO) == datetime(2026, 12, 1, tzinfo=TOKYO)
    # A day of 23 hours: the next midnight is where the zone says, not 24 h on.
    berlin = ZoneInfo("Europe/Berlin")
    spring = datetime(2026, 3, 29, 12, 0, tzinfo=berlin)
    assert next_midnight(spring, berlin) - local_midnight(spring, berlin).astimezone(
        UTC
    ) == timedelta(hours=23)


def test_calls_taken_counts_each_operators_answers_since_the_day_start() -> None:
    events = [
        _answered("yesterday", 101, DAY_START - timedelta(seconds=1)),
        _answered("a", 101, DAY_START + timedelta(hours=1)),
        _answered("b", 101, DAY_START + timedelta(hours=2)),
        _answered("c", 102, DAY_START + timedelta(hours=3)),
        CallHandled(
            at=DAY_START + timedelta(hours=3, minutes=5),
            team_id=TeamId(1),
            user_id=UserId(102),
            call_id=CallId("c"),
            queue_id=Q1,
            talk_seconds=60,
            wrap_up_seconds=10,
        ),
    ]
    queue = make_queue(1, [101, 102])
    assert calls_taken(events, [queue], day_start=DAY_START, now=NOW) == {
        UserId(101): 2,
        UserId(102): 1,
    }


class _Wall:
    """The wall clock; `sleep` moves it and then waits for the test's next step."""

    def __init__(self, now: datetime) -> None:
        self.current = now
        self.slept: list[float] = []
        self.step = asyncio.Event()

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await self.step.wait()
        self.step.clear()
        self.current += timedelta(seconds=seconds)


async def test_daily_counts_seed_the_engine_and_start_again_at_midnight(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(make_queue(1, [101, 102]))
    stored = [
        _answered("yesterday", 101, DAY_START - timedelta(minutes=5)),
        _answered("a", 101, DAY_START + timedelta(hours=1)),
        _answered("b", 101, DAY_START + timedelta(hours=2)),
        _answered("c", 102, DAY_START + timedelta(hours=3)),
    ]
    asked: list[tuple[datetime, datetime]] = []

    def history(since: datetime, until: datetime) -> Sequence[Event]:
        asked.append((since, until))
        return stored

    wall = _Wall(NOW)
    counts = DailyCounts(
        engine,
        history,
        lambda: [make_queue(1, [101, 102])],
        "Asia/Tokyo",
        wall.now,
        sleep=wall.sleep,
    )
    await counts.start()
    try:
        assert asked == [(DAY_START, NOW + timedelta(days=1))]
        assert engine.agent(UserId(101)).calls_taken == 2
        assert engine.agent(UserId(102)).calls_taken == 1
        # A call answered now counts on top of the stored ones.
        await engine.sign_in(UserId(101), [Q1])
        await engine.call_arrived(CallId("live"), Q1, caller="+81300000009")
        await engine.offer_answered(CallId("live"), UserId(101))
        assert engine.agent(UserId(101)).calls_taken == 3
        for _ in range(5):
            await asyncio.sleep(0)
        assert wall.slept == [90 * 60]  # 22:30 to midnight in Tokyo
        assert counts.resets == 0
        wall.step.set()
        for _ in range(20):
            await asyncio.sleep(0)
        assert counts.resets == 1
        assert engine.agent(UserId(101)).calls_taken == 0
        assert engine.agent(UserId(102)).calls_taken == 0
        for _ in range(5):
            await asyncio.sleep(0)
        assert wall.slept[-1] == 24 * 3600  # then the next midnight
    finally:
        await counts.close()
