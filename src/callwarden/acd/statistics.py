"""Live figures per queue and per team, computed from the ACD's events alone.

`compute_statistics(events, queues, day_start=..., now=...)` is a pure function of a recorded
event sequence; `StatisticsAccumulator` is the same computation fed one event at a time (the
live dashboard keeps one and asks it for figures). The formulas (docs/acd.md repeats them):

- **calls waiting**: calls queued (`CallQueued`) and not yet answered, abandoned or
  overflowed, ringing ones included; **longest wait**: `now` minus the earliest of their
  queueing times.
- **agents by state**: the latest `AgentStateChanged` of each agent; per queue, the agents
  signed in to it; per team, the agents of the team (offline ones included).
- **offered** (today) = answered + abandoned + overflowed: calls whose time in the queue ended
  at or after `day_start`. A call still waiting is not offered yet.
- **service level** = answered within the queue's `service_level_seconds` ÷ offered
  (abandoned and overflowed calls count against it); None when nothing was offered.
- **abandon rate** = abandoned ÷ offered.
- **ASA** (average speed of answer) = sum of `waited_seconds` of answered calls ÷ answered.
- **AHT** (average handle time) = sum of (talk + wrap-up) ÷ calls handled, over the calls whose
  wrap-up ended today (`CallHandled`); a call still in talk or wrap-up is not counted yet.

A team's call figures add up the calls of the team's queues (each call judged by its own
queue's service-level threshold).
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from callwarden.acd.agent import AgentState
from callwarden.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallHandled,
    CallOverflowed,
    CallQueued,
)
from callwarden.bus.event import Event
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId
from callwarden.domain.models import Queue

__all__ = [
    "AgentTime",
    "CenterFigures",
    "Dimension",
    "Figures",
    "Interval",
    "Report",
    "ReportRow",
    "StatisticsAccumulator",
    "compute_report",
    "compute_statistics",
    "interval_bounds",
]


def _no_agents() -> Mapping[AgentState, int]:
    return MappingProxyType(dict.fromkeys(AgentState, 0))


@dataclass(frozen=True)
class Figures:
    """The live figures of one queue or one team (counts are for today)."""

    calls_waiting: int = 0
    longest_wait_seconds: float = 0.0
    agents_by_state: Mapping[AgentState, int] = field(default_factory=_no_agents)
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0
    answered_within_service_level: int = 0
    handled: int = 0
    service_level: float | None = None
    abandon_rate: float | None = None
    average_speed_of_answer: float | None = None
    average_handle_time: float | None = None


def _no_operators() -> Mapping[UserId, Figures]:
    return MappingProxyType({})


@dataclass(frozen=True)
class CenterFigures:
    queues: Mapping[QueueId, Figures]
    teams: Mapping[TeamId, Figures]
    operators: Mapping[UserId, Figures] = field(default_factory=_no_operators)
    """Per operator, the calls they answered and handled (an abandon or overflow belongs to no
    operator, so their `offered` is their `answered`)."""


class _Tally:
    __slots__ = (
        "abandoned",
        "answered",
        "handle_seconds",
        "handled",
        "overflowed",
        "wait_seconds",
        "waiting",
        "within",
    )

    def __init__(self) -> None:
        self.waiting: dict[CallId, datetime] = {}
        self.answered = 0
        self.abandoned = 0
        self.overflowed = 0
        self.within = 0
        self.wait_seconds = 0.0
        self.handled = 0
        self.handle_seconds = 0.0

    def figures(self, now: datetime, agents: Mapping[AgentState, int]) -> Figures:
        offered = self.answered + self.abandoned + self.overflowed
        longest = (now - min(self.waiting.values())).total_seconds() if self.waiting else 0.0
        return Figures(
            calls_waiting=len(self.waiting),
            longest_wait_seconds=max(0.0, longest),
            agents_by_state=agents,
            offered=offered,
            answered=self.answered,
            abandoned=self.abandoned,
            overflowed=self.overflowed,
            answered_within_service_level=self.within,
            handled=self.handled,
            service_level=self.within / offered if offered else None,
            abandon_rate=self.abandoned / offered if offered else None,
            average_speed_of_answer=self.wait_seconds / self.answered if self.answered else None,
            average_handle_time=self.handle_seconds / self.handled if self.handled else None,
        )


@dataclass(frozen=True, slots=True)
class _AgentView:
    state: AgentState
    team_id: TeamId | None
    queue_ids: tuple[QueueId, ...]


class StatisticsAccumulator:
    """Figures for `queues`, fed events with `apply`; outcomes before `day_start` are not
    counted (a call still waiting from yesterday is)."""

    def __init__(self, queues: Iterable[Queue], *, day_start: datetime) -> None:
        self._queues: Mapping[QueueId, Queue] = MappingProxyType({q.id: q for q in queues})
        self._day_start = day_start
        self._by_queue: dict[QueueId, _Tally] = {queue_id: _Tally() for queue_id in self._queues}
        self._by_team: dict[TeamId, _Tally] = {q.team_id: _Tally() for q in self._queues.values()}
        self._agents: dict[UserId, _AgentView] = {}
        self._by_operator: dict[UserId, _Tally] = {}

    def _tallies(self, queue_id: QueueId) -> tuple[_Tally, ...] | None:
        queue = self._queues.get(queue_id)
        if queue is None:
            return None
        return self._by_queue[queue_id], self._by_team[queue.team_id]

    def apply(self, event: Event) -> None:
        if isinstance(event, AgentStateChanged):
            if event.user_id is not None:
                self._agents[event.user_id] = _AgentView(
                    event.state, event.team_id, event.queue_ids
                )
            return
        if not isinstance(
            event, CallQueued | CallAnswered | CallAbandoned | CallOverflowed | CallHandled
        ):
            return
        tallies = self._tallies(event.queue_id)
        if tallies is None:
            return
        if isinstance(event, CallAnswered | CallHandled) and event.user_id is not None:
            operator = self._by_operator.setdefault(event.user_id, _Tally())
            tallies = (*tallies, operator)
        today = event.at >= self._day_start
        for tally in tallies:
            if isinstance(event, CallQueued):
                tally.waiting[event.call_id] = event.at
                continue
            if isinstance(event, CallHandled):
                if today:
                    tally.handled += 1
                    tally.handle_seconds += event.talk_seconds + event.wrap_up_seconds
                continue
            tally.waiting.pop(event.call_id, None)
            if not today:
                continue
            if isinstance(event, CallAnswered):
                tally.answered += 1
                tally.wait_seconds += event.waited_seconds
                if event.waited_seconds <= self._queues[event.queue_id].service_level_seconds:
                    tally.within += 1
            elif isinstance(event, CallAbandoned):
                tally.abandoned += 1
            else:
                tally.overflowed += 1

    def figures(self, now: datetime) -> CenterFigures:
        by_queue = {queue_id: dict.fromkeys(AgentState, 0) for queue_id in self._queues}
        by_team = {team_id: dict.fromkeys(AgentState, 0) for team_id in self._by_team}
        for agent in self._agents.values():
            for queue_id in agent.queue_ids:
                counts = by_queue.get(queue_id)
                if counts is not None:
                    counts[agent.state] += 1
            if agent.team_id is not None:
                by_team.setdefault(agent.team_id, dict.fromkeys(AgentState, 0))
                by_team[agent.team_id][agent.state] += 1
        queues = {
            queue_id: tally.figures(now, MappingProxyType(by_queue[queue_id]))
            for queue_id, tally in self._by_queue.items()
        }
        teams = {
            team_id: self._by_team.get(team_id, _Tally()).figures(now, MappingProxyType(counts))
            for team_id, counts in by_team.items()
        }
        none = MappingProxyType(dict.fromkeys(AgentState, 0))
        operators = {
            user_id: tally.figures(now, none) for user_id, tally in self._by_operator.items()
        }
        return CenterFigures(
            MappingProxyType(queues), MappingProxyType(teams), MappingProxyType(operators)
        )


def compute_statistics(
    events: Iterable[Event], queues: Iterable[Queue], *, day_start: datetime, now: datetime
) -> CenterFigures:
    """The figures at `now` after `events` (in order), counting outcomes since `day_start`."""
    accumulator = StatisticsAccumulator(queues, day_start=day_start)
    for event in events:
        accumulator.apply(event)
    return accumulator.figures(now)


# Reports: the same figures per period, from a stored history of events.


class Interval(enum.Enum):
    """A report's period length, in the center's time zone."""

    QUARTER_HOUR = "15m"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


class Dimension(enum.Enum):
    QUEUE = "queue"
    TEAM = "team"
    OPERATOR = "operator"


_HANDLING = frozenset({AgentState.ON_CALL, AgentState.WRAP_UP})


@dataclass(frozen=True)
class AgentTime:
    """Seconds agents spent signed in (any state but offline), handling calls (on a call or in
    wrap-up), on break (per reason) within a period.

    occupancy = handling ÷ (signed in − break): the share of the time agents were ready for
    calls that they spent on calls; None when that is 0.
    """

    signed_in_seconds: float = 0.0
    handling_seconds: float = 0.0
    break_seconds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def occupancy(self) -> float | None:
        ready = self.signed_in_seconds - sum(self.break_seconds.values())
        return self.handling_seconds / ready if ready > 0 else None


@dataclass(frozen=True)
class ReportRow:
    """One key (a queue, team or operator id) over one period [`start`, `end`)."""

    key: int
    start: datetime
    end: datetime
    figures: Figures
    agent_time: AgentTime


@dataclass(frozen=True)
class Report:
    dimension: Dimension
    interval: Interval
    since: datetime
    until: datetime
    rows: tuple[ReportRow, ...]
    """Per period (in order) and key (ascending), only keys with anything to show."""
    totals: tuple[ReportRow, ...]
    """Per key, over the whole of [`since`, `until`)."""
    dispositions: Mapping[int, Mapping[str, int]]
    """Per key, calls answered in the report's time by disposition code."""


def _floor(moment: datetime, interval: Interval, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    if interval is Interval.QUARTER_HOUR:
        return local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    if interval is Interval.HOUR:
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    if interval is Interval.WEEK:
        day -= timedelta(days=day.weekday())
    return datetime.combine(day, time(0), tzinfo=zone)


def _next(start: datetime, interval: Interval, zone: ZoneInfo) -> datetime:
    if interval is Interval.QUARTER_HOUR:
        return (start.astimezone(ZoneInfo("UTC")) + timedelta(minutes=15)).astimezone(zone)
    if interval is Interval.HOUR:
        return (start.astimezone(ZoneInfo("UTC")) + timedelta(hours=1)).astimezone(zone)
    days = 7 if interval is Interval.WEEK else 1
    return datetime.combine(start.date() + timedelta(days=days), time(0), tzinfo=zone)


def interval_bounds(
    since: datetime, until: datetime, interval: Interval, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """The periods covering [`since`, `until`): each starts on the interval's boundary in
    `zone` (a quarter hour, an hour, local midnight, local Monday midnight); the first and last
    are cut to `since` and `until`."""
    bounds: list[tuple[datetime, datetime]] = []
    start = _floor(since, interval, zone)
    while start < until:
        end = _next(start, interval, zone)
        bounds.append((max(start, since), min(end, until)))
        start = end
    return bounds


@dataclass(frozen=True, slots=True)
class _Segment:
    user_id: UserId
    team_id: TeamId | None
    queue_ids: tuple[QueueId, ...]
    state: AgentState
    reason: str | None
    start: datetime
    end: datetime


def _segments(events: Iterable[Event], end: datetime) -> list[_Segment]:
    """Each agent's states as time segments, from their state changes (in order)."""
    segments: list[_Segment] = []
    current: dict[UserId, AgentStateChanged] = {}
    for event in events:
        if not isinstance(event, AgentStateChanged) or event.user_id is None:
            continue
        last = current.get(event.user_id)
        if last is not None and event.at > last.at:
            segments.append(_segment(last, last.at, event.at))
        current[event.user_id] = event
    segments.extend(_segment(last, last.at, end) for last in current.values() if last.at < end)
    return segments


def _segment(event: AgentStateChanged, start: datetime, end: datetime) -> _Segment:
    assert event.user_id is not None
    return _Segment(
        event.user_id, event.team_id, event.queue_ids, event.state, event.reason, start, end
    )


class _TimeTally:
    __slots__ = ("breaks", "handling", "signed_in")

    def __init__(self) -> None:
        self.signed_in = 0.0
        self.handling = 0.0
        self.breaks: dict[str, float] = {}

    def add(self, segment: _Segment, seconds: float) -> None:
        self.signed_in += seconds
        if segment.state in _HANDLING:
            self.handling += seconds
        elif segment.state is AgentState.BREAK:
            reason = segment.reason or ""
            self.breaks[reason] = self.breaks.get(reason, 0.0) + seconds

    def frozen(self) -> AgentTime:
        return AgentTime(self.signed_in, self.handling, MappingProxyType(dict(self.breaks)))


def _segment_keys(segment: _Segment, dimension: Dimension) -> tuple[int, ...]:
    if dimension is Dimension.OPERATOR:
        return (segment.user_id,)
    if dimension is Dimension.TEAM:
        return () if segment.team_id is None else (segment.team_id,)
    return segment.queue_ids


def _agent_times(
    segments: list[_Segment], start: datetime, end: datetime, dimension: Dimension
) -> dict[int, AgentTime]:
    tallies: dict[int, _TimeTally] = {}
    for segment in segments:
        if segment.state is AgentState.OFFLINE:
            continue
        seconds = (min(segment.end, end) - max(segment.start, start)).total_seconds()
        if seconds <= 0:
            continue
        for key in _segment_keys(segment, dimension):
            tallies.setdefault(key, _TimeTally()).add(segment, seconds)
    return {key: tally.frozen() for key, tally in tallies.items()}


def _figures_of(figures: CenterFigures, dimension: Dimension) -> Mapping[int, Figures]:
    chosen: Mapping[QueueId, Figures] | Mapping[TeamId, Figures] | Mapping[UserId, Figures]
    if dimension is Dimension.QUEUE:
        chosen = figures.queues
    elif dimension is Dimension.TEAM:
        chosen = figures.teams
    else:
        chosen = figures.operators
    return {int(key): value for key, value in chosen.items()}


def _period_figures(
    events: Sequence[Event],
    moments: Sequence[datetime],
    queues: tuple[Queue, ...],
    start: datetime,
    end: datetime,
) -> CenterFigures:
    """The figures of the calls whose outcome fell in [`start`, `end`): the live formulas with
    the period's start as the day's start and the period's events only (`moments` are the
    events' times, in order)."""
    accumulator = StatisticsAccumulator(queues, day_start=start)
    for event in events[bisect_left(moments, start) : bisect_left(moments, end)]:
        if not isinstance(event, AgentStateChanged):
            accumulator.apply(event)
    return accumulator.figures(end)


def _rows(
    events: Sequence[Event],
    segments: list[_Segment],
    queues: tuple[Queue, ...],
    bounds: Iterable[tuple[datetime, datetime]],
    dimension: Dimension,
    keys: frozenset[int] | None,
) -> tuple[ReportRow, ...]:
    rows: list[ReportRow] = []
    ordered = sorted(events, key=lambda event: event.at)
    moments = [event.at for event in ordered]
    for start, end in bounds:
        figures = _figures_of(_period_figures(ordered, moments, queues, start, end), dimension)
        times = _agent_times(segments, start, end, dimension)
        for key in sorted(set(times) | {k for k, f in figures.items() if _shows(f)}):
            if keys is not None and key not in keys:
                continue
            rows.append(
                ReportRow(key, start, end, figures.get(key, Figures()), times.get(key, AgentTime()))
            )
    return tuple(rows)


def _shows(figures: Figures) -> bool:
    return figures.offered > 0 or figures.handled > 0


def _dispositions(
    events: Iterable[Event],
    queues: Mapping[QueueId, Queue],
    codes: Mapping[CallId, str],
    dimension: Dimension,
    keys: frozenset[int] | None,
) -> Mapping[int, Mapping[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    for event in events:
        if not isinstance(event, CallAnswered) or event.call_id not in codes:
            continue
        queue = queues.get(event.queue_id)
        if dimension is Dimension.QUEUE:
            key: int | None = event.queue_id if queue is not None else None
        elif dimension is Dimension.TEAM:
            key = queue.team_id if queue is not None else None
        else:
            key = event.user_id
        if key is None or (keys is not None and key not in keys):
            continue
        per_code = counts.setdefault(key, {})
        code = codes[event.call_id]
        per_code[code] = per_code.get(code, 0) + 1
    return MappingProxyType({key: MappingProxyType(value) for key, value in counts.items()})


def compute_report(
    events: Iterable[Event],
    queues: Iterable[Queue],
    *,
    dimension: Dimension,
    interval: Interval,
    since: datetime,
    until: datetime,
    now: datetime,
    zone: ZoneInfo,
    keys: Iterable[int] | None = None,
    dispositions: Mapping[CallId, str] | None = None,
) -> Report:
    """The figures per `dimension` and period of [`since`, `until`) from `events` (in order;
    each agent's last state change before `since` may come first).

    Call figures are `StatisticsAccumulator`'s, over the calls whose outcome (answer, abandon,
    overflow; the end of wrap-up for AHT) fell in the period. Agent time runs from each state
    change to the next, up to `now`. `keys` limits the rows to those ids (a supervisor's
    teams' queues, teams or operators); `dispositions` maps Call-IDs to their disposition code
    for the breakdown of the calls answered in the report's time.
    """
    if not since < until:
        raise ValueError("since must be before until")
    events = list(events)
    queue_list = tuple(queues)
    allowed = None if keys is None else frozenset(keys)
    segments = _segments(events, min(until, now))
    bounds = interval_bounds(since, until, interval, zone)
    in_time = [event for event in events if since <= event.at < until]
    return Report(
        dimension=dimension,
        interval=interval,
        since=since,
        until=until,
        rows=_rows(in_time, segments, queue_list, bounds, dimension, allowed),
        totals=_rows(in_time, segments, queue_list, [(since, until)], dimension, allowed),
        dispositions=_dispositions(
            in_time, {q.id: q for q in queue_list}, dispositions or {}, dimension, allowed
        ),
    )
