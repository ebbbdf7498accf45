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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

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

__all__ = ["CenterFigures", "Figures", "StatisticsAccumulator", "compute_statistics"]


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


@dataclass(frozen=True)
class CenterFigures:
    queues: Mapping[QueueId, Figures]
    teams: Mapping[TeamId, Figures]


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

    def _tallies(self, queue_id: QueueId) -> tuple[_Tally, _Tally] | None:
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
        return CenterFigures(MappingProxyType(queues), MappingProxyType(teams))


def compute_statistics(
    events: Iterable[Event], queues: Iterable[Queue], *, day_start: datetime, now: datetime
) -> CenterFigures:
    """The figures at `now` after `events` (in order), counting outcomes since `day_start`."""
    accumulator = StatisticsAccumulator(queues, day_start=day_start)
    for event in events:
        accumulator.apply(event)
    return accumulator.figures(now)
