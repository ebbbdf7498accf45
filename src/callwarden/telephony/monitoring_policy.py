"""The pieces of monitoring that are about who and how, not about sessions: which permission
and audit action each mode needs, who asks, how a call is named in a refusal, where a
supervisor's audio may go (their own registered phones only) and the teams' transparency
policy. `callwarden.telephony.monitoring` uses them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from callwarden.domain.cdr import RouteKind
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import MonitoringTransparency, User
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Principal
from callwarden.media.matrix import Mode
from callwarden.security.audit_model import AuditAction, AuditActor, AuditEntry, AuditEvent
from callwarden.telephony.call_context import OutboundTarget
from callwarden.telephony.feature_codes import MonitorMode
from callwarden.telephony.monitored_call import CallView
from callwarden.telephony.registrar import Binding

__all__ = [
    "ACTION_ENDED",
    "ACTION_OF",
    "MATRIX_MODE",
    "PERMISSION_OF",
    "Asker",
    "AuditSink",
    "TeamTransparency",
    "Transparency",
    "phone_targets",
    "what",
]

PERMISSION_OF: dict[MonitorMode, Permission] = {
    MonitorMode.LISTEN: Permission.MONITOR_LISTEN,
    MonitorMode.WHISPER: Permission.MONITOR_WHISPER,
    MonitorMode.BARGE: Permission.MONITOR_BARGE,
    MonitorMode.TAKEOVER: Permission.MONITOR_TAKEOVER,
}
ACTION_OF: dict[MonitorMode, str] = {
    MonitorMode.LISTEN: AuditAction.MONITOR_LISTEN,
    MonitorMode.WHISPER: AuditAction.MONITOR_WHISPER,
    MonitorMode.BARGE: AuditAction.MONITOR_BARGE,
    MonitorMode.TAKEOVER: AuditAction.MONITOR_TAKEOVER,
}
MATRIX_MODE: dict[MonitorMode, Mode] = {
    MonitorMode.LISTEN: Mode.LISTEN,
    MonitorMode.WHISPER: Mode.WHISPER,
    MonitorMode.BARGE: Mode.BARGE,
    MonitorMode.TAKEOVER: Mode.TAKEOVER,
}
ACTION_ENDED = "monitoring.ended"


class AuditSink(Protocol):
    """Appends one audit event (`callwarden.security.audit_writer.AuditWriter`)."""

    async def append(self, event: AuditEvent) -> AuditEntry: ...


class Transparency(Protocol):
    """Whether a team's operators are told they are monitored (the team's policy): on their
    screen (`operator_notified`), and also with a short tone only they hear (`operator_tone`).
    The customer is never told."""

    def operator_notified(self, call: CallView) -> bool: ...

    def operator_tone(self, call: CallView) -> bool: ...


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asks for a monitoring act, and from where (`via`: `api` or `phone`)."""

    user: User
    principal: Principal
    source_address: str | None
    via: str

    @property
    def actor(self) -> AuditActor:
        return AuditActor.user(self.user.id, self.user.username)


class TeamTransparency:
    """The teams' policies: a team's own (`Team.monitoring_transparency`, set in the admin
    console or the provisioning file) when it has one; otherwise the `monitor_notify_teams`
    setting: `north` tells north's operators on screen, `south:tone` on screen and with a short
    tone; any other team is silent. Read from the current directory at each decision, so a
    change applies to the next monitoring session."""

    def __init__(self, entries: Iterable[str], directory: Callable[[], DirectorySnapshot]):
        self._notified: set[str] = set()
        self._tone: set[str] = set()
        for entry in entries:
            name, _, policy = entry.strip().partition(":")
            if policy not in ("", "tone"):
                raise ValueError(f"monitoring transparency {entry!r}: 'team' or 'team:tone'")
            self._notified.add(name)
            if policy == "tone":
                self._tone.add(name)
        self._directory = directory

    def _policy(self, call: CallView) -> MonitoringTransparency:
        snapshot = self._directory()
        operator = snapshot.user(call.operator_id)
        team = None
        if operator is not None and operator.team_id is not None:
            team = snapshot.team(operator.team_id)
        if team is None:
            return MonitoringTransparency.SILENT
        if team.monitoring_transparency is not None:
            return team.monitoring_transparency
        if team.name in self._tone:
            return MonitoringTransparency.SCREEN_AND_TONE
        if team.name in self._notified:
            return MonitoringTransparency.SCREEN
        return MonitoringTransparency.SILENT

    def operator_notified(self, call: CallView) -> bool:
        return self._policy(call) is not MonitoringTransparency.SILENT

    def operator_tone(self, call: CallView) -> bool:
        return self._policy(call) is MonitoringTransparency.SCREEN_AND_TONE


def phone_targets(
    bindings: Callable[[str], list[Binding]],
    here: str,
    *,
    encrypted: Callable[[User], bool] = lambda _user: False,
) -> Callable[[User], list[OutboundTarget]]:
    """Where a supervisor's monitoring audio goes: each of their own registered phones (the
    registrar's bindings of their username), never any other number. A supervisor who must
    encrypt (`encrypted`, the media policy) only on phones registered over TLS, offered SRTP."""

    def targets(user: User) -> list[OutboundTarget]:
        label = user.extension or user.username
        srtp = encrypted(user)
        return [
            OutboundTarget(
                request_uri=binding.contact,
                destination=binding.destination,
                from_address=f"<sip:monitoring@{here}>",
                to_address=f"<sip:{label}@{here}>",
                label=label,
                route_kind=RouteKind.EXTENSION,
                flow=binding.destination,
                latch_host=binding.destination.host,
                user_id=user.id,
                srtp=srtp,
            )
            for binding in bindings(user.username)
            if not srtp or binding.destination.transport == "TLS"
        ]

    return targets


def what(call_id: str) -> str:
    """How a call is named in refusals (the same words for a missing and a hidden one)."""
    return f"call {call_id[:64]}"
