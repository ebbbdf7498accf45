"""`/api/v1/reports` and `/api/v1/reports.csv`: the ACD's figures per queue, team or operator
and period (`reports.view`: admins and auditors everything, supervisors their teams; operators
hold none and get 403). docs/api.md, "Reports".

Query: `dimension` (queue, team, operator), `interval` (15m, hour, day, week), `from` and `to`
(ISO 8601; without an offset, read in the center's time zone; both left out: today). Bad input
is a 422 naming the field; a period reversed, longer than a year or of more than
`MAX_PERIODS` periods too.
"""

# No `from __future__ import annotations`: the routes are made inside a function and their
# annotations name its local declarations, which FastAPI must see as objects.
import asyncio
import csv
import io
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from callwarden.acd.statistics import Dimension, Interval, ReportRow
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, require
from callwarden.web.reports.service import (
    NamedReport,
    ReportRequest,
    ReportService,
    local_moment,
)
from callwarden.web.schemas import ResponseModel
from callwarden.web.services import WebServices

__all__ = ["ReportView", "reports_router"]


class ReportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    dimension: Dimension = Dimension.QUEUE
    interval: Interval = Interval.HOUR
    since: Annotated[datetime | None, Field(alias="from")] = None
    until: Annotated[datetime | None, Field(alias="to")] = None


ReportParameters = Annotated[ReportQuery, Query()]


class RowView(ResponseModel):
    key: int
    name: str
    start: datetime
    end: datetime
    offered: int
    answered: int
    abandoned: int
    overflowed: int
    answered_within_service_level: int
    handled: int
    service_level: float | None
    abandon_rate: float | None
    average_speed_of_answer: float | None
    average_handle_time: float | None
    signed_in_seconds: float
    handling_seconds: float
    occupancy: float | None
    break_seconds: dict[str, float]

    @classmethod
    def of(cls, row: ReportRow, name: str) -> "RowView":
        figures, time = row.figures, row.agent_time
        return cls(
            key=row.key,
            name=name,
            start=row.start,
            end=row.end,
            offered=figures.offered,
            answered=figures.answered,
            abandoned=figures.abandoned,
            overflowed=figures.overflowed,
            answered_within_service_level=figures.answered_within_service_level,
            handled=figures.handled,
            service_level=figures.service_level,
            abandon_rate=figures.abandon_rate,
            average_speed_of_answer=figures.average_speed_of_answer,
            average_handle_time=figures.average_handle_time,
            signed_in_seconds=time.signed_in_seconds,
            handling_seconds=time.handling_seconds,
            occupancy=time.occupancy,
            break_seconds=dict(sorted(time.break_seconds.items())),
        )


class DispositionCountView(ResponseModel):
    key: int
    name: str
    code: str
    count: int


class ReportView(ResponseModel):
    dimension: Dimension
    interval: Interval
    since: Annotated[datetime, Field(serialization_alias="from")]
    until: Annotated[datetime, Field(serialization_alias="to")]
    time_zone: str
    rows: list[RowView]
    totals: list[RowView]
    dispositions: list[DispositionCountView]

    @classmethod
    def of(cls, named: NamedReport) -> "ReportView":
        report = named.report

        def name(key: int) -> str:
            return named.names.get(key, f"#{key}")

        zone = named.time_zone
        return cls(
            dimension=report.dimension,
            interval=report.interval,
            since=report.since,
            until=report.until,
            time_zone=zone,
            rows=[RowView.of(row, name(row.key)) for row in report.rows],
            totals=[RowView.of(row, name(row.key)) for row in report.totals],
            dispositions=[
                DispositionCountView(key=key, name=name(key), code=code, count=count)
                for key, counts in sorted(report.dispositions.items())
                for code, count in sorted(counts.items())
            ],
        )


CSV_FIGURES = (
    "offered",
    "answered",
    "abandoned",
    "overflowed",
    "answered_within_service_level",
    "handled",
    "service_level",
    "abandon_rate",
    "average_speed_of_answer",
    "average_handle_time",
    "signed_in_seconds",
    "handling_seconds",
    "occupancy",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A CSV cell; text a spreadsheet would read as a formula is quoted with `'`."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if not value.is_integer() else str(int(value))
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def report_csv(view: ReportView) -> str:
    """One line per period and key, then one per key over the whole time (`period` total);
    break time per reason and, on the total lines, answered calls per disposition code."""
    reasons = sorted({reason for row in view.totals for reason in row.break_seconds})
    codes = sorted({item.code for item in view.dispositions})
    counts = {(item.key, item.code): item.count for item in view.dispositions}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "period",
            "start",
            "end",
            view.dimension.value,
            "name",
            *CSV_FIGURES,
            *(f"break_seconds:{_cell(reason)}" for reason in reasons),
            *(f"disposition:{_cell(code)}" for code in codes),
        ]
    )
    for period, rows in (("interval", view.rows), ("total", view.totals)):
        for row in rows:
            writer.writerow(
                [
                    period,
                    row.start.isoformat(),
                    row.end.isoformat(),
                    row.key,
                    _cell(row.name),
                    *(_cell(getattr(row, figure)) for figure in CSV_FIGURES),
                    *(_cell(row.break_seconds.get(reason, 0.0)) for reason in reasons),
                    *(
                        _cell(counts.get((row.key, code), 0)) if period == "total" else ""
                        for code in codes
                    ),
                ]
            )
    return out.getvalue()


def reports_router(services: WebServices) -> APIRouter:
    reports = ReportService(
        services.database,
        lambda: services.directory.snapshot,
        services.clock.now,
        services.settings.time_zone,
    )
    router = APIRouter(prefix=API_PREFIX, tags=["reports"], route_class=GuardedRoute)
    views_reports = Annotated[
        Caller, require(Permission.REPORTS_VIEW, kind=ResourceKind.REPORT, own=True)
    ]

    async def build(caller: Caller, query: ReportQuery) -> ReportView:
        if (query.since is None) != (query.until is None):
            missing = "to" if query.until is None else "from"
            raise ValidationFailed(
                "give both 'from' and 'to', or neither (today)", details={"field": missing}
            )
        if query.since is None or query.until is None:
            since, until = reports.default_period()
        else:
            since = local_moment(query.since, reports.zone)
            until = local_moment(query.until, reports.zone)
        request = ReportRequest(query.dimension, query.interval, since, until)
        named = await asyncio.to_thread(reports.build, caller.principal, request)
        return ReportView.of(named)

    @router.get(
        "/reports",
        summary="Figures per queue, team or operator and period",
        response_model_by_alias=True,
    )
    async def report(caller: views_reports, query: ReportParameters) -> ReportView:
        return await build(caller, query)

    @router.get(
        "/reports.csv",
        summary="The same report as CSV",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def report_as_csv(caller: views_reports, query: ReportParameters) -> Response:
        view = await build(caller, query)
        name = f"report-{view.dimension.value}-{view.interval.value}.csv"
        return Response(
            report_csv(view),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return router
