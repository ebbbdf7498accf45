"""Reports from a recorded event history: periods in the center's time zone, call figures per
period with the live formulas, agent time (occupancy, break time by reason), dispositions."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callwarden.acd.agent import AgentState
from callwarden.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallHandled,
    CallQueued,
)
from callwarden.acd.statistics import (
    AgentTime,
    Dimension,
    Interval,
    compute_report,
    compute_statistics,
    interval_bounds,
)
from callwarden.bus import Event
from callwarden.domain.ids import CallId, QueueId, UserId

from .conftest import TEAM_A, make_queue

TOKYO = ZoneInfo("Asia/Tokyo")
A = UserId(101)
Q1 = QueueId(1)
QUEUES = (make_queue(1, [A], service_level_seconds=20),)


def local(hour: int, minute: int, second: int = 0, day: int = 30) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=TOKYO)


def state(moment: datetime, new: AgentState, reason: str | None = None) -> AgentStateChanged:
    queues = () if new is AgentState.OFFLINE else (Q1,)
    return AgentStateChanged(
        at=moment,
        team_id=TEAM_A,
        user_id=A,
        state=new,
        previous=AgentState.AVAILABLE,
        reason=reason,
        queue_ids=queues,
    )


def answered_call(
    name: str, queued: datetime, waited: float, talk: float, wrap: float
) -> list[Event]:
    answer = queued + timedelta(seconds=waited)
    end = answer + timedelta(seconds=talk)
    done = end + timedelta(seconds=wrap)
    common = {"team_id": TEAM_A, "call_id": CallId(name), "queue_id": Q1}
    return [
        CallQueued(at=queued, priority=0, position=1, **common),  # type: ignore[arg-type]
        state(answer, AgentState.ON_CALL),
        CallAnswered(at=answer, user_id=A, waited_seconds=waited, **common),  # type: ignore[arg-type]
        state(end, AgentState.WRAP_UP),
        CallEnded(at=end, user_id=A, talk_seconds=talk, **common),  # type: ignore[arg-type]
        state(done, AgentState.AVAILABLE),
        CallHandled(at=done, user_id=A, talk_seconds=talk, wrap_up_seconds=wrap, **common),  # type: ignore[arg-type]
    ]


def scenario() -> list[Event]:
    """09:00 A signs in; c1 answered after 10 s (talk 120, wrap 30); c2 abandoned after 40 s;
    lunch 09:20-09:50; c3 answered after 30 s at 09:55:30 (talk 180, wrap 120, handled 10:00:30);
    A signs out at 10:10."""
    common = {"team_id": TEAM_A, "call_id": CallId("c2"), "queue_id": Q1}
    events: list[Event] = [state(local(9, 0), AgentState.AVAILABLE)]
    events += answered_call("c1", local(9, 5), 10, 120, 30)
    events += [
        CallQueued(at=local(9, 10), priority=0, position=1, **common),  # type: ignore[arg-type]
        CallAbandoned(at=local(9, 10, 40), waited_seconds=40, **common),  # type: ignore[arg-type]
        state(local(9, 20), AgentState.BREAK, "lunch"),
        state(local(9, 50), AgentState.AVAILABLE),
    ]
    events += answered_call("c3", local(9, 55), 30, 180, 120)
    events.append(state(local(10, 10), AgentState.OFFLINE))
    return events


def report(  # type: ignore[no-untyped-def]
    dimension: Dimension,
    interval: Interval = Interval.HOUR,
    events: list[Event] | None = None,
    **kwargs: object,
):
    options: dict[str, object] = {
        "since": local(9, 0),
        "until": local(11, 0),
        "now": local(12, 0),
        "zone": TOKYO,
        **kwargs,
    }
    return compute_report(
        scenario() if events is None else events,
        QUEUES,
        dimension=dimension,
        interval=interval,
        **options,  # type: ignore[arg-type]
    )


def test_hourly_queue_figures_are_the_hand_computed_ones() -> None:
    result = report(Dimension.QUEUE)
    assert [(row.key, row.start, row.end) for row in result.rows] == [
        (Q1, local(9, 0), local(10, 0)),
        (Q1, local(10, 0), local(11, 0)),
    ]
    nine, ten = (row.figures for row in result.rows)
    assert (nine.offered, nine.answered, nine.abandoned) == (3, 2, 1)
    assert nine.service_level == pytest.approx(1 / 3)
    assert nine.average_speed_of_answer == pytest.approx(20.0)
    assert (nine.handled, nine.average_handle_time) == (1, pytest.approx(150.0))
    assert (ten.offered, ten.handled, ten.average_handle_time) == (0, 1, pytest.approx(300.0))
    nine_time, ten_time = (row.agent_time for row in result.rows)
    assert nine_time.signed_in_seconds == pytest.approx(3600)
    assert dict(nine_time.break_seconds) == {"lunch": pytest.approx(1800)}
    assert nine_time.handling_seconds == pytest.approx(150 + 270)
    assert nine_time.occupancy == pytest.approx(420 / 1800)
    assert ten_time.signed_in_seconds == pytest.approx(600)
    assert ten_time.occupancy == pytest.approx(30 / 600)


def test_totals_equal_the_live_figures_of_the_same_events() -> None:
    result = report(Dimension.QUEUE)
    (total,) = result.totals
    live = compute_statistics(scenario(), QUEUES, day_start=local(9, 0), now=local(11, 0))
    assert total.figures.offered == live.queues[Q1].offered == 3
    assert total.figures.service_level == live.queues[Q1].service_level
    assert total.figures.average_handle_time == live.queues[Q1].average_handle_time == 225
    assert total.agent_time.occupancy == pytest.approx(450 / 2400)


def test_team_and_operator_dimensions() -> None:
    (team,) = report(Dimension.TEAM, Interval.DAY).rows
    assert (team.key, team.figures.offered, team.figures.abandoned) == (TEAM_A, 3, 1)
    assert (team.start, team.end) == (local(9, 0), local(11, 0))
    (operator,) = report(Dimension.OPERATOR, Interval.DAY).rows
    assert operator.key == A
    assert (operator.figures.offered, operator.figures.answered) == (2, 2)
    assert operator.figures.service_level == pytest.approx(1 / 2)
    assert operator.agent_time.break_seconds == {"lunch": pytest.approx(1800)}


def test_a_break_begun_before_the_period_counts_from_its_start() -> None:
    events = [event for event in scenario() if event.at >= local(9, 30)]
    earlier = [e for e in scenario() if isinstance(e, AgentStateChanged) and e.at < local(9, 30)]
    result = report(
        Dimension.OPERATOR, events=[earlier[-1], *events], since=local(9, 30), until=local(10, 0)
    )
    (row,) = result.rows
    assert row.agent_time.break_seconds == {"lunch": pytest.approx(1200)}
    assert row.agent_time.signed_in_seconds == pytest.approx(1800)


def test_time_in_state_stops_at_now() -> None:
    so_far = [event for event in scenario() if event.at < local(9, 10)]
    result = report(
        Dimension.OPERATOR,
        Interval.DAY,
        so_far,
        since=local(0, 0),
        until=local(23, 0),
        now=local(9, 10),
    )
    (row,) = result.rows
    assert row.agent_time.signed_in_seconds == pytest.approx(600)
    assert row.agent_time.handling_seconds == pytest.approx(150)


def test_keys_limit_the_rows_and_dispositions_are_counted_per_key() -> None:
    codes = {CallId("c1"): "sale", CallId("c3"): "sale", CallId("c2"): "ignored"}
    result = report(Dimension.QUEUE, dispositions=codes)
    assert result.dispositions == {Q1: {"sale": 2}}
    by_operator = report(Dimension.OPERATOR, dispositions=codes)
    assert by_operator.dispositions == {A: {"sale": 2}}
    hidden = report(Dimension.QUEUE, keys=[99], dispositions=codes)
    assert (hidden.rows, hidden.totals, dict(hidden.dispositions)) == ((), (), {})


def test_quarter_hour_bounds_are_cut_to_the_period() -> None:
    bounds = interval_bounds(local(9, 7), local(9, 40), Interval.QUARTER_HOUR, TOKYO)
    assert bounds == [
        (local(9, 7), local(9, 15)),
        (local(9, 15), local(9, 30)),
        (local(9, 30), local(9, 40)),
    ]


def test_days_and_weeks_start_at_local_midnight_and_monday() -> None:
    days = interval_bounds(local(22, 0, day=29), local(2, 0), Interval.DAY, TOKYO)
    assert days == [(local(22, 0, day=29), local(0, 0)), (local(0, 0), local(2, 0))]
    assert days[1][0].astimezone(ZoneInfo("UTC")).hour == 15  # midnight in Tokyo
    december_3 = datetime(2026, 12, 3, tzinfo=TOKYO)
    weeks = interval_bounds(local(10, 0, day=25), december_3, Interval.WEEK, TOKYO)
    monday = local(0, 0)  # 30 Nov 2026 is a Monday
    assert weeks == [(local(10, 0, day=25), monday), (monday, december_3)]


def test_an_empty_or_reversed_period_is_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        report(Dimension.QUEUE, since=local(11, 0), until=local(11, 0))


def test_occupancy_is_none_without_ready_time() -> None:
    assert AgentTime().occupancy is None
    assert AgentTime(100, 0, {"lunch": 100}).occupancy is None
