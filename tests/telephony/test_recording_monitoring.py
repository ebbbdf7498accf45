"""The monitoring log of recorded calls: one entry per session with its modes, only the calls
being watched, only the sessions that overlapped a recording."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callwarden.bus.in_process import InProcessBus
from callwarden.domain.ids import CallId, UserId
from callwarden.telephony.monitoring_events import (
    MonitoringEnded,
    MonitoringStarted,
    MonitoringSwitched,
)
from callwarden.telephony.recording_monitoring import MonitoringLog

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _common(monitoring_id: str, call_id: str, supervisor: int) -> dict[str, object]:
    return {
        "monitoring_id": monitoring_id,
        "call_id": CallId(call_id),
        "supervisor_id": UserId(supervisor),
        "via": "phone",
    }


def test_sessions_of_watched_calls_overlapping_the_recording() -> None:
    bus = InProcessBus()
    log = MonitoringLog(bus, lambda call_id: call_id != "unwatched")
    early = _common("early-session-01", "call", 3)
    late = _common("late-session-0002", "call", 4)
    bus.publish(MonitoringStarted(at=_at(0), mode="listen", **early))  # type: ignore[arg-type]
    bus.publish(MonitoringEnded(at=_at(5), mode="listen", cause="done", **early))  # type: ignore[arg-type]
    bus.publish(MonitoringStarted(at=_at(20), mode="listen", **late))  # type: ignore[arg-type]
    bus.publish(
        MonitoringSwitched(at=_at(30), mode="barge", previous="listen", **late)  # type: ignore[arg-type]
    )
    bus.publish(
        MonitoringStarted(at=_at(20), mode="listen", **_common("x" * 16, "unwatched", 5))  # type: ignore[arg-type]
    )
    # A recording from 10 s to 60 s: the early session ended before it, the late one is on.
    assert log.entries(CallId("call"), _at(10), _at(60)) == [
        {
            "monitoring_id": "late-session-0002",
            "supervisor_id": 4,
            "via": "phone",
            "started_at": _at(20).isoformat(),
            "ended_at": None,
            "end_cause": None,
            "modes": [
                {"mode": "listen", "from": _at(20).isoformat()},
                {"mode": "barge", "from": _at(30).isoformat()},
            ],
        }
    ]
    assert [e["monitoring_id"] for e in log.entries(CallId("call"), _at(0), _at(60))] == [
        "early-session-01",
        "late-session-0002",
    ]
    assert log.entries(CallId("unwatched"), _at(0), _at(60)) == []
    log.forget(CallId("call"))
    assert log.entries(CallId("call"), _at(0), _at(60)) == []
    log.close()
