"""Who monitored a recorded call, when, in which modes: the manifest's `monitoring_sessions`.

The monitoring service publishes `MonitoringStarted`, `MonitoringSwitched` and `MonitoringEnded`
on the bus (`callwarden.telephony.monitoring_events`). `MonitoringLog` keeps, for the calls
being recorded, one entry per session from those events; the recording control drains the
subscription without waiting (`absorb_pending`) whenever it needs the entries, so no task reads
it. A recording's manifest lists the sessions that overlapped it (`entries`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from callwarden.bus.event import Event, of_kinds
from callwarden.bus.protocol import EventBus
from callwarden.bus.subscription import Subscription
from callwarden.domain.ids import CallId, UserId
from callwarden.telephony.monitoring_events import (
    MonitoringEnded,
    MonitoringEvent,
    MonitoringStarted,
    MonitoringSwitched,
)

logger = logging.getLogger(__name__)

MAX_PENDING = 4096
"""Monitoring events waiting to be absorbed (drained at every call start and end)."""


@dataclass
class MonitoringEntry:
    """One supervisor's session on a call, as the manifest states it."""

    monitoring_id: str
    supervisor_id: UserId
    via: str
    started_at: datetime
    modes: list[tuple[datetime, str]] = field(default_factory=list)
    ended_at: datetime | None = None
    end_cause: str | None = None

    def overlaps(self, since: datetime, until: datetime) -> bool:
        return self.started_at <= until and (self.ended_at is None or self.ended_at >= since)

    def to_plain(self) -> dict[str, object]:
        return {
            "monitoring_id": self.monitoring_id,
            "supervisor_id": int(self.supervisor_id),
            "via": self.via,
            "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "end_cause": self.end_cause,
            "modes": [{"mode": mode, "from": at.isoformat()} for at, mode in self.modes],
        }


class MonitoringLog:
    """The monitoring sessions of the calls `watching(call_id)` admits."""

    def __init__(self, bus: EventBus, watching: Callable[[CallId], bool]) -> None:
        self._feed: Subscription = bus.subscribe(
            of_kinds(MonitoringStarted, MonitoringSwitched, MonitoringEnded),
            max_pending=MAX_PENDING,
        )
        self._watching = watching
        self._calls: dict[CallId, dict[str, MonitoringEntry]] = {}

    def absorb_pending(self) -> None:
        """Take in every event published so far (never waits)."""
        while (event := self._feed.get_nowait()) is not None:
            self.absorb(event)

    def absorb(self, event: Event) -> None:
        if not isinstance(event, MonitoringEvent) or not self._watching(event.call_id):
            return
        sessions = self._calls.setdefault(event.call_id, {})
        entry = sessions.get(event.monitoring_id)
        if entry is None:
            entry = MonitoringEntry(event.monitoring_id, event.supervisor_id, event.via, event.at)
            entry.modes.append((event.at, event.mode))
            sessions[event.monitoring_id] = entry
        if isinstance(event, MonitoringSwitched):
            entry.modes.append((event.at, event.mode))
        elif isinstance(event, MonitoringEnded):
            entry.ended_at = event.at
            entry.end_cause = event.cause

    def entries(
        self, call_id: CallId, since: datetime, until: datetime
    ) -> list[Mapping[str, object]]:
        """The sessions on `call_id` that overlapped [since, until], oldest first."""
        self.absorb_pending()
        sessions = self._calls.get(call_id, {}).values()
        chosen = sorted(
            (entry for entry in sessions if entry.overlaps(since, until)),
            key=lambda entry: entry.started_at,
        )
        return [entry.to_plain() for entry in chosen]

    def forget(self, call_id: CallId) -> None:
        self._calls.pop(call_id, None)

    def close(self) -> None:
        self._feed.close()
