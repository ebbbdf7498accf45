"""The events monitoring publishes on the bus: a session started, switched mode, ended.

Each needs `monitor.listen` on the call to be received (the least of the monitoring
permissions): the supervisors who could monitor the call themselves see who else does. The
event belongs to the call's first team (the operator's) and to the operator (`user_id`), so the
operator sees them too when the team's transparency policy says operators are told
(`operator_notified`; a web page shows it, issue 7). No event carries a customer's number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from callwarden.bus.event import Event
from callwarden.domain.ids import CallId, UserId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind

__all__ = [
    "MONITORING_EVENT_TYPES",
    "MonitoringEnded",
    "MonitoringEvent",
    "MonitoringStarted",
    "MonitoringSwitched",
]


@dataclass(frozen=True, kw_only=True)
class MonitoringEvent(Event):
    permission: ClassVar[Permission] = Permission.MONITOR_LISTEN
    resource_kind: ClassVar[ResourceKind] = ResourceKind.CALL

    monitoring_id: str
    call_id: CallId
    supervisor_id: UserId
    mode: str
    via: str
    """How it was asked for: `api` or `phone`."""
    operator_notified: bool = False


@dataclass(frozen=True, kw_only=True)
class MonitoringStarted(MonitoringEvent):
    """The supervisor's phone joined the call's bridge in `mode`."""

    kind = "monitoring.started"


@dataclass(frozen=True, kw_only=True)
class MonitoringSwitched(MonitoringEvent):
    kind = "monitoring.switched"

    previous: str


@dataclass(frozen=True, kw_only=True)
class MonitoringEnded(MonitoringEvent):
    kind = "monitoring.ended"

    cause: str


MONITORING_EVENT_TYPES: tuple[type[Event], ...] = (
    MonitoringStarted,
    MonitoringSwitched,
    MonitoringEnded,
)
