"""Live monitoring in the web tests: the monitoring service over the in-process rig
(tests/monitoring_rig.py: real bridges and SIP transactions, no sockets), with the web tests'
own directory and audit writer, and calls in both teams of the organisation.

For each team (`north`, the callers' own; `south`, another) there is a call free to be
monitored (`call_ids`) and a call with a session already ringing the supervisor's phone
(`session_ids`; north's belongs to `supervisor`, south's to `stranger`). `supervisor` has a
registered phone, so starting a session from the API rings it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callwarden.domain.directory import DirectorySnapshot
from callwarden.telephony.monitoring import AuditSink, MonitoringService
from monitoring_rig import Rig, build_rig

TEAMS = {"north": "colleague", "south": "stranger"}
"""Each team's call and its operator."""


@dataclass
class MonitoringWorld:
    rig: Rig
    call_ids: dict[str, str]
    session_ids: dict[str, str]

    @property
    def service(self) -> MonitoringService:
        return self.rig.service


def build_monitoring(
    directory: Callable[[], DirectorySnapshot], audit: AuditSink
) -> MonitoringWorld:
    rig = build_rig(directory=directory, audit_sink=audit)
    snapshot = directory()
    call_ids: dict[str, str] = {}
    session_ids: dict[str, str] = {}
    for team, operator_name in TEAMS.items():
        operator = snapshot.user_by_username(operator_name)
        assert operator is not None
        call_ids[team] = rig.add_call(f"{team}-call@198.51.100.7", operator).call_id
        busy = rig.add_call(f"{team}-monitored@198.51.100.7", operator)
        owner = snapshot.user_by_username("supervisor" if team == "north" else "stranger")
        assert owner is not None
        session_ids[team] = rig.ringing_session(busy, owner).id
    rig.register_phone("supervisor")
    return MonitoringWorld(rig, call_ids, session_ids)
