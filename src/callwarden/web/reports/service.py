"""Reports: the ACD's figures per queue, team or operator and period, from the stored history.

The figures are `callwarden.acd.statistics.compute_report`'s over the events the node's ACD
published (`acd_events`, read back by `callwarden.acd.history.load_history`), so they are the
live wallboard's formulas applied to the same events. Dispositions come from
`call_dispositions` (migration 0008), counted per disposition code for the calls answered in
the report's time.

Who sees what (`reports.view`): at scope all, everything; at scope team, the queues of the
caller's teams (own and supervised, nested ones included), those teams, and their people; at
scope own, the caller's own row as an operator. Anything else is left out, never an error: a
supervisor's report of another team is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from callwarden.acd.events import CallAnswered
from callwarden.acd.history import load_history
from callwarden.acd.statistics import (
    Dimension,
    Interval,
    Report,
    compute_report,
    interval_bounds,
)
from callwarden.bus.event import Event
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ListScope, Principal, Resource, ResourceKind, list_scope
from callwarden.store.schema import CallDispositionRow

__all__ = [
    "MAX_PERIODS",
    "MAX_SPAN",
    "NamedReport",
    "ReportRequest",
    "ReportService",
    "ReportTooLarge",
]

MAX_SPAN = timedelta(days=366)
"""The longest time one report covers."""
MAX_PERIODS = 3000
"""The most periods one report has (a week of quarter hours is 672)."""
_IN_CHUNK = 500


class ReportTooLarge(ValidationFailed):
    default_error_id = "report_too_large"


@dataclass(frozen=True)
class ReportRequest:
    dimension: Dimension
    interval: Interval
    since: datetime
    until: datetime


@dataclass(frozen=True)
class NamedReport:
    report: Report
    names: Mapping[int, str]
    time_zone: str


def local_moment(value: datetime, zone: ZoneInfo) -> datetime:
    """`value` as given when it has an offset, else read as the center's local time."""
    return value if value.utcoffset() is not None else value.replace(tzinfo=zone)


def check_request(request: ReportRequest, zone: ZoneInfo) -> None:
    """422 for a reversed, empty, too long or too finely divided period."""
    if not request.since < request.until:
        raise ValidationFailed(
            "'from' must be before 'to'", error_id="report_period_invalid", details={"field": "to"}
        )
    if request.until - request.since > MAX_SPAN:
        raise ReportTooLarge(
            f"a report covers at most {MAX_SPAN.days} days", details={"field": "to"}
        )
    periods = len(interval_bounds(request.since, request.until, request.interval, zone))
    if periods > MAX_PERIODS:
        raise ReportTooLarge(
            f"{periods} periods of {request.interval.value}: at most {MAX_PERIODS};"
            " choose a longer interval or a shorter time",
            details={"field": "interval", "periods": periods},
        )


def today(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


def _allowed_keys(
    scope: ListScope, dimension: Dimension, snapshot: DirectorySnapshot
) -> frozenset[int] | None:
    if scope.everything:
        return None
    resources: list[tuple[int, Resource]]
    if dimension is Dimension.QUEUE:
        resources = [
            (queue.id, Resource.of(ResourceKind.REPORT, team=queue.team_id))
            for queue in snapshot.queues
        ]
    elif dimension is Dimension.TEAM:
        resources = [
            (team.id, Resource.of(ResourceKind.REPORT, team=team.id)) for team in snapshot.teams
        ]
    else:
        resources = [
            (user.id, Resource.of(ResourceKind.REPORT, owner=user.id, team=user.team_id))
            for user in snapshot.users
        ]
    return frozenset(key for key, resource in resources if scope.admits(resource))


def _names(dimension: Dimension, snapshot: DirectorySnapshot) -> dict[int, str]:
    if dimension is Dimension.QUEUE:
        return {queue.id: queue.display_name for queue in snapshot.queues}
    if dimension is Dimension.TEAM:
        return {team.id: team.display_name for team in snapshot.teams}
    return {user.id: user.display_name for user in snapshot.users}


def _disposition_codes(session: Session, events: Iterable[Event]) -> dict[CallId, str]:
    call_ids = sorted({event.call_id for event in events if isinstance(event, CallAnswered)})
    codes: dict[CallId, str] = {}
    for start in range(0, len(call_ids), _IN_CHUNK):
        chunk = call_ids[start : start + _IN_CHUNK]
        rows = session.execute(
            select(CallDispositionRow.call_id, CallDispositionRow.code).where(
                CallDispositionRow.call_id.in_(chunk)
            )
        )
        codes.update({CallId(call_id): code for call_id, code in rows})
    return codes


class ReportService:
    """Synchronous (database reads and the computation): the routes run it in a thread."""

    def __init__(
        self,
        database: Callable[[], Session],
        directory: Callable[[], DirectorySnapshot],
        now: Callable[[], datetime],
        time_zone: str,
    ) -> None:
        self._database = database
        self._directory = directory
        self._now = now
        self.zone = ZoneInfo(time_zone)
        self.time_zone = time_zone

    def default_period(self) -> tuple[datetime, datetime]:
        """Today in the center's time zone."""
        return today(self._now(), self.zone)

    def build(self, principal: Principal, request: ReportRequest) -> NamedReport:
        check_request(request, self.zone)
        snapshot = self._directory()
        keys = _allowed_keys(
            list_scope(principal, Permission.REPORTS_VIEW), request.dimension, snapshot
        )
        with self._database() as session:
            events = load_history(session, request.since, request.until)
            codes = _disposition_codes(session, events)
        report = compute_report(
            events,
            snapshot.queues,
            dimension=request.dimension,
            interval=request.interval,
            since=request.since,
            until=request.until,
            now=self._now(),
            zone=self.zone,
            keys=keys,
            dispositions=codes,
        )
        return NamedReport(report, _names(request.dimension, snapshot), self.time_zone)
