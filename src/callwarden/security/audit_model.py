"""What the audit log records: who did what, to which object, from where, with what outcome.

`AuditEvent` is what a caller hands to the log; building one validates it and encodes its text
(see `audit_text`), so a bad event fails where it is made, before anything is queued. The log
turns an event into an `AuditEntry` by giving it a sequence number, a time and its place in
the hash chain (see `audit_chain`).

Action names are stable, dotted and lower case (`auth.login.failed`, `recording.play`); the
known ones are listed in `AuditAction`, and a new feature may add its own as long as it has the
same shape. Acts that expose customer audio (`REASON_REQUIRED`) need a reason: `require_reason`
is what a service calls before it performs such an act; an event recording one that succeeded
without a reason is refused. A denied or failed attempt is logged with or without a reason, so
a missing reason can never hide an attempt.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from callwarden.domain.errors import DomainError, JsonValue, ValidationFailed
from callwarden.domain.ids import UserId
from callwarden.security.audit_text import encode_details, encode_optional, encode_text

ACTION_PATTERN = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")

ACTION_LENGTH = 64
ACTOR_NAME_LENGTH = 255
OBJECT_KIND_LENGTH = 64
OBJECT_ID_LENGTH = 255
SOURCE_ADDRESS_LENGTH = 255
REASON_LENGTH = 1000
MAX_REASON_INPUT = 500


class Clock(Protocol):
    """Wall-clock time for entries: an aware datetime (tests inject a fixed one)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class AuditUnavailable(DomainError):  # noqa: N818 (the names are the API)
    """An entry could not be written (database down, writer full or closed): the act it was
    to record must not go ahead."""

    default_error_id = "audit_unavailable"


class ActorKind(enum.Enum):
    USER = "user"
    SYSTEM = "system"
    SIP = "sip"
    ANONYMOUS = "anonymous"


class AuditOutcome(enum.Enum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


class AuditAction(enum.StrEnum):
    """The action names in use (features add theirs here as they land)."""

    LOGIN_SUCCEEDED = "auth.login.succeeded"
    LOGIN_FAILED = "auth.login.failed"
    LOGOUT = "auth.logout"
    SESSION_ENDED = "auth.session.ended"
    MFA_ENROLLED = "auth.mfa.enrolled"
    MFA_DISABLED = "auth.mfa.disabled"
    MFA_RECOVERY_USED = "auth.mfa.recovery_used"
    PASSWORD_CHANGED = "auth.password.changed"  # noqa: S105 (an action name)
    PERMISSION_DENIED = "permission.denied"
    USER_CREATE = "user.create"
    USER_UPDATE = "user.update"
    USER_DELETE = "user.delete"
    ROLE_CREATE = "role.create"
    ROLE_UPDATE = "role.update"
    ROLE_DELETE = "role.delete"
    TEAM_CREATE = "team.create"
    TEAM_UPDATE = "team.update"
    TEAM_DELETE = "team.delete"
    QUEUE_CREATE = "queue.create"
    QUEUE_UPDATE = "queue.update"
    QUEUE_DELETE = "queue.delete"
    SIGN_IN_NETWORK_CREATE = "sign_in_network.create"
    SIGN_IN_NETWORK_DELETE = "sign_in_network.delete"
    TRUNK_CREATE = "trunk.create"
    TRUNK_UPDATE = "trunk.update"
    TRUNK_DELETE = "trunk.delete"
    SETTINGS_UPDATE = "settings.update"
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    AUDIT_VERIFY = "audit.verify"
    MONITOR_LISTEN = "monitoring.listen"
    MONITOR_WHISPER = "monitoring.whisper"
    MONITOR_BARGE = "monitoring.barge"
    MONITOR_TAKEOVER = "monitoring.takeover"
    RECORDING_PLAY = "recording.play"
    RECORDING_DOWNLOAD = "recording.download"
    RECORDING_EXPORT = "recording.export"
    RECORDING_DELETE = "recording.delete"
    RECORDING_HOLD = "recording.hold"
    RECORDING_RELEASE = "recording.release"
    RECORDING_PAUSE = "recording.pause"
    RECORDING_RESUME = "recording.resume"
    AGENT_STATE_CHANGE = "agent.state.change"


REASON_REQUIRED: frozenset[str] = frozenset(
    {
        AuditAction.RECORDING_PLAY,
        AuditAction.RECORDING_DOWNLOAD,
        AuditAction.RECORDING_EXPORT,
        AuditAction.MONITOR_LISTEN,
        AuditAction.MONITOR_WHISPER,
        AuditAction.MONITOR_BARGE,
        AuditAction.MONITOR_TAKEOVER,
    }
)
"""Acts that expose customer audio: each needs a reason (free text or a ticket id)."""


def validate_action(action: str) -> str:
    if len(action) > ACTION_LENGTH or ACTION_PATTERN.fullmatch(action) is None:
        raise ValidationFailed(
            f"audit action {action[:ACTION_LENGTH]!r} is not a dotted lower-case name",
            error_id="audit_action_invalid",
            details={"field": "action"},
        )
    return action


def normalise_reason(reason: str | None) -> str | None:
    """A reason stripped of surrounding blanks (None if blank); at most 500 characters."""
    stripped = reason.strip() if reason is not None else ""
    if len(stripped) > MAX_REASON_INPUT:
        raise ValidationFailed(
            f"the reason is longer than {MAX_REASON_INPUT} characters",
            error_id="audit_reason_too_long",
            details={"field": "reason"},
        )
    return stripped or None


def require_reason(action: str, reason: str | None) -> str | None:
    """The reason to store for `action`: required (not blank) for the actions in
    `REASON_REQUIRED`, optional for the others; see `normalise_reason`."""
    normalised = normalise_reason(reason)
    if normalised is None and action in REASON_REQUIRED:
        raise ValidationFailed(
            f"{action} exposes customer audio: a reason (free text or ticket id) is required",
            error_id="audit_reason_required",
            details={"field": "reason"},
        )
    return normalised


@dataclass(frozen=True, kw_only=True)
class AuditActor:
    """Who acted: a user (id and username), the system, a SIP peer, or nobody signed in."""

    kind: ActorKind
    name: str
    user_id: UserId | None = None

    def __post_init__(self) -> None:
        if (self.kind is ActorKind.USER) != (self.user_id is not None):
            raise ValueError("a user id is given exactly for a user actor")

    @classmethod
    def user(cls, user_id: UserId, username: str) -> AuditActor:
        return cls(kind=ActorKind.USER, name=username, user_id=user_id)

    @classmethod
    def system(cls) -> AuditActor:
        return cls(kind=ActorKind.SYSTEM, name="system")

    @classmethod
    def sip(cls, address: str) -> AuditActor:
        """A SIP peer, by its address (`sip:192.0.2.7:5060`)."""
        return cls(kind=ActorKind.SIP, name=f"sip:{address}")

    @classmethod
    def anonymous(cls) -> AuditActor:
        """Nobody signed in (e.g. a failed sign-in; the name tried goes into the object)."""
        return cls(kind=ActorKind.ANONYMOUS, name="anonymous")


def _empty_details() -> Mapping[str, JsonValue]:
    return {}


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    """One thing to record, as the caller knows it (raw text). Building it validates it: the
    action's shape, the reason rule and the details (JSON, bounded). The text is encoded when
    the entry is made (`encoded()`), so `dataclasses.replace` on an event is safe."""

    action: str
    actor: AuditActor
    outcome: AuditOutcome
    object_kind: str | None = None
    object_id: str | int | None = None
    source_address: str | None = None
    reason: str | None = None
    details: Mapping[str, JsonValue] = field(default_factory=_empty_details)

    def __post_init__(self) -> None:
        validate_action(self.action)
        reason = (
            require_reason(self.action, self.reason)
            if self.outcome is AuditOutcome.SUCCESS
            else normalise_reason(self.reason)
        )
        object.__setattr__(self, "action", str(self.action))
        object.__setattr__(self, "reason", reason)
        encode_details(self.details)

    def encoded(self) -> EncodedEvent:
        """The event's fields as they are stored (see `audit_text`)."""
        return EncodedEvent(
            action=self.action,
            actor_kind=self.actor.kind,
            actor_user_id=self.actor.user_id,
            actor_name=encode_text(self.actor.name, ACTOR_NAME_LENGTH),
            object_kind=encode_optional(self.object_kind, OBJECT_KIND_LENGTH),
            object_id=encode_optional(
                None if self.object_id is None else str(self.object_id), OBJECT_ID_LENGTH
            ),
            outcome=self.outcome,
            source_address=encode_optional(self.source_address, SOURCE_ADDRESS_LENGTH),
            reason=encode_optional(self.reason, REASON_LENGTH),
            details=encode_details(self.details),
        )


@dataclass(frozen=True, kw_only=True)
class EncodedEvent:
    """An event's fields with their text encoded: what goes into the chain."""

    action: str
    actor_kind: ActorKind
    actor_user_id: UserId | None
    actor_name: str
    object_kind: str | None
    object_id: str | None
    outcome: AuditOutcome
    source_address: str | None
    reason: str | None
    details: Mapping[str, JsonValue]


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One entry as stored: an event with its sequence number, time and chain hashes."""

    sequence: int
    recorded_at: datetime
    actor: AuditActor
    action: str
    object_kind: str | None
    object_id: str | None
    outcome: AuditOutcome
    source_address: str | None
    reason: str | None
    details: Mapping[str, JsonValue]
    previous_hash: str
    entry_hash: str
    format_version: int
