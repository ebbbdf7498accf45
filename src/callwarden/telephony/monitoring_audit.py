"""The audit entries of monitoring: a session started (with its reason), switched mode, ended
(with its cause and every mode it was in, with times). Refusals are `permission.denied`
entries written by the service where it refuses.
"""

from __future__ import annotations

from callwarden.domain.errors import JsonValue
from callwarden.security.audit_model import AuditActor, AuditEvent, AuditOutcome
from callwarden.telephony.feature_codes import MonitorMode
from callwarden.telephony.monitor_session import MonitorSession
from callwarden.telephony.monitoring_policy import ACTION_ENDED, ACTION_OF, Asker

__all__ = ["ended_event", "started_event", "switched_event"]


def details(session: MonitorSession, extra: dict[str, JsonValue]) -> dict[str, JsonValue]:
    return {
        "monitoring_id": session.id,
        "mode": session.mode.value,
        "operator_id": int(session.call.operator_id),
        "via": session.via,
        "operator_notified": session.operator_notified,
        **extra,
    }


def _supervisor(session: MonitorSession) -> AuditActor:
    return AuditActor.user(session.supervisor.id, session.supervisor.username)


def started_event(session: MonitorSession, action: str) -> AuditEvent:
    return AuditEvent(
        action=action,
        actor=_supervisor(session),
        outcome=AuditOutcome.SUCCESS,
        object_kind="call",
        object_id=session.call.call_id,
        source_address=session.source_address,
        reason=session.reason,
        details=details(session, {"event": "started"}),
    )


def switched_event(asker: Asker, session: MonitorSession, previous: MonitorMode) -> AuditEvent:
    return AuditEvent(
        action=ACTION_OF[session.mode],
        actor=asker.actor,
        outcome=AuditOutcome.SUCCESS,
        object_kind="call",
        object_id=session.call.call_id,
        source_address=asker.source_address,
        reason=session.reason,
        details=details(session, {"event": "switched", "previous": previous.value}),
    )


def ended_event(session: MonitorSession) -> AuditEvent:
    modes: list[JsonValue] = [[at.isoformat(), mode.value] for at, mode in session.changes]
    return AuditEvent(
        action=ACTION_ENDED,
        actor=_supervisor(session),
        outcome=AuditOutcome.SUCCESS,
        object_kind="call",
        object_id=session.call.call_id,
        source_address=session.source_address,
        details=details(session, {"cause": session.end_cause or "ended", "modes": modes}),
    )
