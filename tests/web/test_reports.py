"""`/api/v1/reports` and `.csv`: figures of a known day played through the real ACD engine and
recorded into the database, equal to `acd.statistics.compute_report` over the same stored
events and to the hand-computed values; per role (admin and auditor everything, a supervisor
their own teams only, an operator 403, no session 401); bad input 422."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callwarden.acd.history import load_history
from callwarden.acd.statistics import Dimension, Interval, compute_report
from callwarden.web.reports.routes import _cell
from web.report_support import END, HAND_COMPUTED, START, play_day, provision_with_queues
from web.support import Env

PATH = "/api/v1/reports"
DAY = {"from": START.isoformat(), "to": END.isoformat()}


@pytest.fixture
async def day(env: Env) -> Env:
    provision_with_queues(env.database)
    env.services.directory.reload()
    await play_day(env.services.directory.snapshot, env.database.sessions)
    env.clock.current = START + timedelta(hours=3)  # the report's "now": after the day
    return env


async def _get(
    env: Env, username: str | None, params: dict[str, str], path: str = PATH
) -> tuple[int, Any, str]:
    session = None if username is None else env.sign_in_directly(username)
    async with env.client(session) as client:
        response = await client.get(path, params=params)
    content_type = response.headers.get("content-type", "")
    body = response.json() if content_type.startswith("application/json") else response.text
    return response.status_code, body, content_type


def _by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


async def test_the_admin_sees_every_queue_with_the_hand_computed_figures(day: Env) -> None:
    status, body, _ = await _get(day, "admin", {**DAY, "dimension": "queue", "interval": "hour"})
    assert status == 200, body
    assert (body["dimension"], body["interval"], body["time_zone"]) == (
        "queue",
        "hour",
        "Asia/Tokyo",
    )
    totals = _by_name(body["totals"])
    assert set(totals) == {"north-line", "south-line"}
    for name, expected in HAND_COMPUTED.items():
        for figure, value in expected.items():
            assert totals[name][figure] == pytest.approx(value), (name, figure)
    dispositions = {(item["name"], item["code"]): item["count"] for item in body["dispositions"]}
    assert dispositions == {("north-line", "resolved"): 1, ("south-line", "callback"): 1}


@pytest.mark.parametrize("dimension", list(Dimension))
@pytest.mark.parametrize("interval", [Interval.QUARTER_HOUR, Interval.DAY])
async def test_the_api_gives_what_acd_statistics_computes_from_the_stored_events(
    day: Env, dimension: Dimension, interval: Interval
) -> None:
    params = {**DAY, "dimension": dimension.value, "interval": interval.value}
    status, body, _ = await _get(day, "admin", params)
    assert status == 200, body
    with day.database.sessions() as session:
        events = load_history(session, START, END)
    expected = compute_report(
        events,
        day.services.directory.snapshot.queues,
        dimension=dimension,
        interval=interval,
        since=START,
        until=END,
        now=day.clock.current,
        zone=ZoneInfo("Asia/Tokyo"),
        dispositions={},
    )
    got = [
        (row["key"], datetime.fromisoformat(row["start"]), row["offered"], row["answered"])
        for row in body["rows"]
    ]
    assert got == [
        (row.key, row.start, row.figures.offered, row.figures.answered) for row in expected.rows
    ]
    for row, computed in zip(body["totals"], expected.totals, strict=True):
        assert row["service_level"] == computed.figures.service_level
        assert row["average_handle_time"] == computed.figures.average_handle_time
        assert row["occupancy"] == pytest.approx(computed.agent_time.occupancy)
        assert row["break_seconds"] == pytest.approx(dict(computed.agent_time.break_seconds))


async def test_quarter_hours_split_the_day_in_the_centers_zone(day: Env) -> None:
    status, body, _ = await _get(day, "admin", {**DAY, "interval": "15m"})
    assert status == 200
    north = [row for row in body["rows"] if row["name"] == "north-line"]
    # 09:00-09:15 holds n1 and n2; 09:15-09:30 only agent time; s1 is south's at 09:20.
    assert [(datetime.fromisoformat(row["start"]), row["offered"]) for row in north][:2] == [
        (START, 2),
        (START + timedelta(minutes=15), 0),
    ]


async def test_a_supervisor_sees_their_own_teams_only(day: Env) -> None:
    status, body, _ = await _get(day, "supervisor", {**DAY, "dimension": "queue"})
    assert status == 200
    assert {row["name"] for row in body["totals"]} == {"north-line"}
    assert {item["code"] for item in body["dispositions"]} == {"resolved"}
    status, body, _ = await _get(day, "supervisor", {**DAY, "dimension": "operator"})
    names = {row["name"] for row in body["rows"] + body["totals"]}
    operator = day.user("operator")
    assert names == {operator.display_name}
    stranger = day.user("stranger")
    assert stranger.id not in {row["key"] for row in body["rows"] + body["totals"]}
    status, body, _ = await _get(day, "supervisor", {**DAY, "dimension": "team"})
    north = next(team for team in day.snapshot.teams if team.name == "north")
    assert {row["key"] for row in body["totals"]} == {north.id}


async def test_the_auditor_sees_everything(day: Env) -> None:
    status, body, _ = await _get(day, "auditor", {**DAY, "dimension": "team"})
    assert status == 200
    assert len(body["totals"]) == 2


@pytest.mark.parametrize(
    ("username", "path", "status"),
    [
        ("operator", PATH, 403),
        ("operator", f"{PATH}.csv", 403),
        ("colleague", PATH, 403),
        (None, PATH, 401),
        (None, f"{PATH}.csv", 401),
    ],
)
async def test_who_is_refused(day: Env, username: str | None, path: str, status: int) -> None:
    got, body, _ = await _get(day, username, DAY, path)
    assert got == status, body


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"interval": "2h"}, "interval"),
        ({"dimension": "trunk"}, "dimension"),
        ({"from": "yesterday", "to": END.isoformat()}, "from"),
        ({"from": START.isoformat()}, "to"),
        ({"from": END.isoformat(), "to": START.isoformat()}, "to"),
        ({"from": START.isoformat(), "to": (START + timedelta(days=400)).isoformat()}, "to"),
        (
            {
                "interval": "15m",
                "from": START.isoformat(),
                "to": (START + timedelta(days=60)).isoformat(),
            },
            "interval",
        ),
        ({"queue": "1"}, "queue"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    day: Env, params: dict[str, str], field: str
) -> None:
    status, body, _ = await _get(day, "admin", params)
    assert status == 422, body
    assert field in str(body), body


async def test_no_period_is_today_in_the_centers_zone(day: Env) -> None:
    status, body, _ = await _get(day, "admin", {})
    assert status == 200
    assert (body["from"], body["to"]) == ("2026-11-30T00:00:00+09:00", "2026-12-01T00:00:00+09:00")
    assert {row["name"] for row in body["totals"]} == {"north-line", "south-line"}


async def test_times_without_an_offset_are_the_centers(day: Env) -> None:
    status, body, _ = await _get(
        day, "admin", {"from": "2026-11-30T09:00", "to": "2026-11-30T10:00"}
    )
    assert status == 200
    assert (datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])) == (
        START,
        END,
    )
    assert _by_name(body["totals"])["north-line"]["offered"] == 2


async def test_the_csv_has_the_same_figures(day: Env) -> None:
    status, text, content_type = await _get(day, "supervisor", DAY, f"{PATH}.csv")
    assert status == 200
    assert content_type.startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(text)))
    totals = [line for line in lines if line["period"] == "total"]
    assert [line["name"] for line in totals] == ["north-line"]
    (north,) = totals
    assert (north["offered"], north["answered"], north["abandoned"]) == ("2", "1", "1")
    assert (north["service_level"], north["average_handle_time"]) == ("0.5", "150")
    assert north["break_seconds:lunch"] == "600"
    assert north["disposition:resolved"] == "1"


def test_csv_cells_never_start_a_formula() -> None:
    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert _cell("-1+1") == "'-1+1"
    assert (_cell(None), _cell(0.5), _cell(150.0), _cell("north")) == ("", "0.5", "150", "north")
