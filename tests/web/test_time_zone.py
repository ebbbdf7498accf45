"""The center's time zone (`time_zone`, default Asia/Tokyo): a node setting, checked at start,
handed to the web layer (`WebSettings.time_zone`), used by the pages' dates and the reports'
periods."""

from __future__ import annotations

from datetime import datetime

import pytest

from callwarden.config import ConfigError, load_settings
from callwarden.security.password_policy import PasswordPolicy
from callwarden.store.database import Database
from callwarden.web.services import WebSettings
from web.support import ORIGIN, FakeClock, build_env


def test_the_setting_defaults_to_tokyo_and_comes_from_the_environment() -> None:
    assert load_settings(environ={}).time_zone == "Asia/Tokyo"
    chosen = load_settings(environ={"CALLWARDEN_TIME_ZONE": "Europe/Berlin"})
    assert chosen.time_zone == "Europe/Berlin"


@pytest.mark.parametrize("zone", ["Tokyo", "Asia/Nowhere", "../etc/passwd", ""])
def test_an_unknown_zone_is_refused_at_start(zone: str) -> None:
    with pytest.raises(ConfigError, match="time_zone"):
        load_settings(overrides={"time_zone": zone}, environ={})
    with pytest.raises(ValueError):
        WebSettings(time_zone=zone)


async def test_pages_and_reports_use_the_configured_zone(
    database: Database, clock: FakeClock, password_policy: PasswordPolicy
) -> None:
    settings = WebSettings(allowed_origins=frozenset({ORIGIN}), time_zone="Europe/Berlin")
    env = build_env(database, clock, policy=password_policy, settings=settings)
    await env.start()
    try:
        async with env.client(env.sign_in_directly("admin")) as client:
            page = await client.get("/reports")
            report = await client.get("/api/v1/reports")
    finally:
        await env.close()
    assert page.status_code == 200
    assert '<meta name="time-zone" content="Europe/Berlin">' in page.text
    body = report.json()
    # The clock says 09:00 UTC on 1 December: 10:00 in Berlin, whose day began at 23:00 UTC.
    assert body["time_zone"] == "Europe/Berlin"
    assert datetime.fromisoformat(body["from"]) == datetime.fromisoformat("2026-12-01T00:00+01:00")
    assert datetime.fromisoformat(body["to"]) == datetime.fromisoformat("2026-12-02T00:00+01:00")
