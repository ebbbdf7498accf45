"""The reports page in a real browser: a known day played through the real ACD engine and
recorded into the site's database (`web.report_support`) shows, in the page's tables and CSV,
the hand-computed figures and what `acd.statistics.compute_report` makes of the stored events;
a supervisor sees their team's queue only, an admin both; an operator has no link and gets 403.
A screenshot of the page with its figures, at 1366x768 in Japanese."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from browser.conftest import NewPage, Problems
from browser.site import Site
from browser.test_pages import enrol_mfa, sign_in_operator, sign_in_with_password
from callwarden.acd.history import load_history
from callwarden.acd.statistics import Dimension, Interval, compute_report
from web.report_support import END, START, play_day, provision_with_queues

WAIT_MS = 10_000
DAY = {"dimension": "queue", "interval": "hour", "from": START.isoformat(), "to": END.isoformat()}

# The day's figures as the page writes them in Japanese (web.report_support computes them).
NORTH = {
    "offered": "2",
    "answered": "1",
    "abandoned": "1",
    "service_level": "50%",
    "asa": "0:10",
    "aht": "2:30",
    "occupancy": "17%",
    "break_time": "10:00",
}
SOUTH = {
    "offered": "1",
    "answered": "1",
    "abandoned": "0",
    "service_level": "100%",
    "asa": "0:05",
    "aht": "1:30",
    "occupancy": "6%",
    "break_time": "0:00",
}


def _play(site: Site) -> None:
    """The day, through a real engine recording into the site's database (on a loop of its
    own, in a thread: Playwright's synchronous API holds this thread's)."""
    provision_with_queues(site.env.database)
    snapshot = site.env.services.directory.reload()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, play_day(snapshot, site.env.database.sessions)).result(60)


def _open_report(page: Page, site: Site) -> None:
    page.goto(site.url(f"/reports?{urlencode(DAY)}"))
    expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)


def _figures(page: Page, name: str) -> dict[str, str]:
    row = page.locator("#report-totals tbody tr").filter(
        has=page.get_by_role("rowheader", name=name)
    )
    expect(row).to_have_count(1)
    cells = row.locator("td[data-figure]")
    return {
        cells.nth(index).get_attribute("data-figure") or "": cells.nth(index).inner_text()
        for index in range(cells.count())
    }


def _sign_in(new_page: NewPage, site: Site, username: str) -> Page:
    page = new_page()
    sign_in_with_password(page, site, username)
    enrol_mfa(page, site)
    expect(page.locator("nav")).to_be_visible(timeout=WAIT_MS)
    return page


def test_a_known_day_shows_the_computed_figures(
    site: Site, new_page: NewPage, screenshots: Path
) -> None:
    _play(site)
    supervisor = _sign_in(new_page, site, "supervisor")
    expect(supervisor.get_by_role("link", name="レポート")).to_be_visible()
    _open_report(supervisor, site)
    assert _figures(supervisor, "north-line") == NORTH
    expect(supervisor.locator("#report-totals tbody tr")).to_have_count(1)  # no south-line
    breaks = supervisor.locator("#report-breaks tbody tr[data-reason='lunch']")
    expect(breaks.locator("td").first).to_have_text("昼食")
    expect(breaks.locator("td[data-figure='break_time']")).to_have_text("10:00")
    resolved = supervisor.locator("#report-dispositions tbody tr[data-code='resolved']")
    expect(resolved.locator("td").first).to_have_text("解決")
    expect(resolved.locator("td[data-figure='count']")).to_have_text("1")
    expect(supervisor.locator("#report-dispositions tbody tr[data-code='callback']")).to_have_count(
        0
    )
    expect(supervisor.locator("#report-chart svg rect.bar")).to_have_count(2)  # answered, abandoned
    supervisor.screenshot(path=str(screenshots / "reports-figures.png"), full_page=True)

    # The page's figures are the API's, which are acd.statistics' over the stored events.
    body = supervisor.request.get(site.url(f"/api/v1/reports?{urlencode(DAY)}")).json()
    with site.env.database.sessions() as session:
        events = load_history(session, START, END)
    computed = compute_report(
        events,
        site.env.services.directory.snapshot.queues,
        dimension=Dimension.QUEUE,
        interval=Interval.HOUR,
        since=START,
        until=END,
        now=site.env.clock.now(),
        zone=ZoneInfo("Asia/Tokyo"),
    )
    north = next(row for row in computed.totals if row.key == body["totals"][0]["key"])
    (total,) = body["totals"]
    assert (total["offered"], total["answered"], total["abandoned"]) == (
        north.figures.offered,
        north.figures.answered,
        north.figures.abandoned,
    )
    assert total["service_level"] == north.figures.service_level == 0.5
    assert total["average_handle_time"] == north.figures.average_handle_time == 150
    assert total["occupancy"] == north.agent_time.occupancy

    # The CSV link asks for the same report.
    href = supervisor.locator("#report-csv").get_attribute("href")
    assert href is not None and href.startswith("/api/v1/reports.csv?")
    answer = supervisor.request.get(site.url(href))
    assert answer.headers["content-type"].startswith("text/csv")
    lines = [
        line for line in csv.DictReader(io.StringIO(answer.text())) if line["period"] == "total"
    ]
    assert [(line["name"], line["offered"], line["service_level"]) for line in lines] == [
        ("north-line", "2", "0.5")
    ]

    admin = _sign_in(new_page, site, "admin")
    _open_report(admin, site)
    assert _figures(admin, "north-line") == NORTH
    assert _figures(admin, "south-line") == SOUTH
    # The filters form: the operator dimension, by day.
    admin.get_by_label("集計単位").select_option("operator")
    admin.get_by_label("間隔").select_option("day")
    admin.get_by_role("button", name="表示").click()
    expect(admin).to_have_url(re.compile(r"dimension=operator&interval=day"), timeout=WAIT_MS)
    expect(admin.locator("body")).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)
    expect(admin.locator("#report-totals tbody tr")).to_have_count(2)  # operator and stranger


def test_an_operator_has_no_reports(site: Site, new_page: NewPage, problems: Problems) -> None:
    operator = sign_in_operator(new_page, site)
    expect(operator.get_by_role("link", name="レポート")).to_have_count(0)
    answer = operator.goto(site.url("/reports"))
    assert answer is not None and answer.status == 403
    expect(operator.get_by_role("heading", name="ページを表示できません")).to_be_visible()
    # Chromium reports the refused page itself as a failed load: that one is expected.
    expected = "console error: Failed to load resource: the server responded with a status of 403"
    problems.found[:] = [found for found in problems.found if not found.startswith(expected)]
    assert operator.request.get(site.url("/api/v1/reports")).status == 403
