"""The events monitoring publishes on the bus: a session started, switched mode, ended.

Each needs `monitor.listen` on the call to be received (the least of the monitoring
permissions): the supervisors who could monitor the call themselves see who else does. The
event belongs to the operator's team and to the operator (`user_id`). When the team's
transparency policy says operators are told, the operator alone also gets `OperatorMonitored`
(only the call and whether it is monitored). No event carries a customer's number.
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
    "OperatorMonitored",
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


@dataclass(frozen=True, kw_only=True)
class OperatorMonitored(Event):
    """Told to the operator (`user_id`) of a team whose policy says so: a supervisor started
    (`monitored`) or stopped (not `monitored`) monitoring their call. Needs
    `agent_state.change_own` on it, i.e. only the operator themself receives it; it does not
    name the supervisor or the mode."""

    kind = "monitoring.operator_notice"
    permission = Permission.AGENT_STATE_OWN
    resource_kind = ResourceKind.AGENT

    call_id: CallId
    monitored: bool


MONITORING_EVENT_TYPES: tuple[type[Event], ...] = (
    MonitoringStarted,
    MonitoringSwitched,
    MonitoringEnded,
    OperatorMonitored,
)
