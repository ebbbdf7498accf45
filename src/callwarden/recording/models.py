"""The recordings' metadata as values: what the catalogue stores, searches, holds and purges.

A `Recording` is the row of one sealed recording file: who and what it belongs to (call, queue,
team, operator), its state (`RecordingStatus`), where the sealed file is (`storage_key`,
relative to the storage backend) and the wrapped data key that opens it. The audio itself and
its format belong to the sealed container (`callwarden.recording.container`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime

from callwarden.domain.cdr import CallDirection
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId, QueueId, RecordingId, TeamId, UserId
from callwarden.domain.policy import Resource, ResourceKind

TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9 _.:#/-]{0,63}$")
MAX_TAG_LENGTH = 64
MAX_NOTE_LENGTH = 2000
MAX_REASON_LENGTH = 1000
STORAGE_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*$")


class RecordingStatus(enum.Enum):
    """RECORDING while the call goes on; COMPLETE when closed normally; INCOMPLETE when closed
    by crash recovery or after a storage error (playable up to the last flushed chunk); FAILED
    when nothing usable was stored; PURGED once its data key is destroyed."""

    RECORDING = "recording"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    PURGED = "purged"

    @property
    def playable(self) -> bool:
        return self in (RecordingStatus.COMPLETE, RecordingStatus.INCOMPLETE)


class HoldTargetKind(enum.Enum):
    """What a legal hold is on: one recording, every recording of a call, a user, a queue."""

    RECORDING = "recording"
    CALL = "call"
    USER = "user"
    QUEUE = "queue"


class RetentionScope(enum.Enum):
    DEFAULT = "default"
    TEAM = "team"
    QUEUE = "queue"


class TombstoneKind(enum.Enum):
    RETENTION = "retention"
    """Purged by the scheduled purge: its retention ran out."""
    MANUAL = "manual"
    """Deleted by a person holding recordings.delete, with a reason."""


def require_storage_key(storage_key: str) -> str:
    """A relative path of plain segments: no `..`, no absolute path, no backslash, no NUL."""
    if (
        not STORAGE_KEY_PATTERN.fullmatch(storage_key)
        or len(storage_key) > 255
        or any(part in {".", ".."} for part in storage_key.split("/"))
    ):
        raise ValidationFailed(
            f"invalid storage key {storage_key!r}", details={"field": "storage_key"}
        )
    return storage_key


def require_reason(reason: str, field_name: str = "reason") -> str:
    """A non-empty reason of at most 1,000 characters, stripped."""
    text = reason.strip()
    if not text:
        raise ValidationFailed(f"{field_name} is required", details={"field": field_name})
    if len(text) > MAX_REASON_LENGTH:
        raise ValidationFailed(
            f"{field_name} is longer than {MAX_REASON_LENGTH} characters",
            details={"field": field_name},
        )
    return text


def normalise_tag(tag: str) -> str:
    """Tags are lower case, 1-64 characters of letters, digits, space and `_.:#/-`."""
    text = tag.strip().lower()
    if not TAG_PATTERN.fullmatch(text):
        raise ValidationFailed(
            f"invalid tag {tag!r}: 1-64 letters, digits, spaces or _.:#/-",
            details={"field": "tag"},
        )
    return text


@dataclass(frozen=True, kw_only=True)
class NewRecording:
    """What the recorder knows when a recording starts (`RecordingRepository.create`)."""

    recording_id: RecordingId
    call_id: CallId
    direction: CallDirection
    started_at: datetime
    storage_key: str
    kek_id: str
    wrapped_key: bytes
    queue_id: QueueId | None = None
    team_id: TeamId | None = None
    operator_id: UserId | None = None
    caller_number: str | None = None
    monitored: bool = False
    node_id: str | None = None

    def __post_init__(self) -> None:
        require_storage_key(self.storage_key)
        if self.started_at.utcoffset() is None:
            raise ValidationFailed("started_at must be timezone-aware")
        if not self.wrapped_key:
            raise ValidationFailed("wrapped_key is empty", details={"field": "wrapped_key"})


@dataclass(frozen=True)
class PauseInterval:
    """A stretch with no audio; `ended_at` None while the pause lasts."""

    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class Recording:
    """One recording as stored. `caller_number` is the number in clear (opened from its seal):
    show it to a principal only through `domain.policy.shown_number`."""

    id: RecordingId
    call_id: CallId
    queue_id: QueueId | None
    team_id: TeamId | None
    operator_id: UserId | None
    direction: CallDirection
    caller_number: str | None
    started_at: datetime
    ended_at: datetime | None
    duration_ms: int | None
    status: RecordingStatus
    storage_key: str
    kek_id: str | None
    wrapped_key: bytes | None = field(repr=False)
    has_pauses: bool
    monitored: bool
    manifest_digest: str | None
    size_bytes: int | None
    failure_reason: str | None
    pauses: tuple[PauseInterval, ...] = ()
    tags: tuple[str, ...] = ()
    node_id: str | None = None

    @property
    def resource(self) -> Resource:
        """The recording for the policy: owned by its operator, belonging to its team."""
        return Resource.of(ResourceKind.RECORDING, owner=self.operator_id, team=self.team_id)

    @property
    def key_destroyed(self) -> bool:
        return self.wrapped_key is None


@dataclass(frozen=True, kw_only=True)
class Note:
    id: int
    recording_id: RecordingId
    author_id: UserId | None
    created_at: datetime
    text: str


@dataclass(frozen=True, kw_only=True)
class LegalHold:
    """A hold on a recording, a call, a user or a queue; active until released."""

    id: int
    target_kind: HoldTargetKind
    target_id: str
    reason: str
    placed_by: UserId | None
    placed_at: datetime
    released_at: datetime | None = None
    released_by: UserId | None = None
    release_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def applies_to(self, recording: Recording) -> bool:
        """Whether this hold (active or not) names `recording`, its call, operator or queue."""
        match self.target_kind:
            case HoldTargetKind.RECORDING:
                return self.target_id == recording.id
            case HoldTargetKind.CALL:
                return self.target_id == recording.call_id
            case HoldTargetKind.USER:
                return self.target_id == str(recording.operator_id)
            case HoldTargetKind.QUEUE:
                return self.target_id == str(recording.queue_id)


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    """Keep recordings `days` days: by default, or those of a team, or of a queue."""

    scope: RetentionScope
    days: int
    team_id: TeamId | None = None
    queue_id: QueueId | None = None

    def __post_init__(self) -> None:
        if self.days <= 0:
            raise ValidationFailed("retention days must be positive", details={"field": "days"})
        wants_team = self.scope is RetentionScope.TEAM
        wants_queue = self.scope is RetentionScope.QUEUE
        if (self.team_id is not None) != wants_team or (self.queue_id is not None) != wants_queue:
            raise ValidationFailed(
                f"a {self.scope.value} retention policy names "
                + {"default": "no team or queue", "team": "a team", "queue": "a queue"}[
                    self.scope.value
                ],
                details={"field": "scope"},
            )

    @property
    def rule(self) -> str:
        """A stable text naming the rule, for tombstones and audit: `queue:3:90d`."""
        if self.scope is RetentionScope.TEAM:
            return f"team:{self.team_id}:{self.days}d"
        if self.scope is RetentionScope.QUEUE:
            return f"queue:{self.queue_id}:{self.days}d"
        return f"default:{self.days}d"


@dataclass(frozen=True, kw_only=True)
class Tombstone:
    """What is left of a purged recording: which rule or person deleted it, and when."""

    recording_id: RecordingId
    call_id: CallId
    kind: TombstoneKind
    rule: str
    retention_days: int | None
    reason: str | None
    actor_user_id: UserId | None
    actor_name: str
    purged_at: datetime
    storage_key: str | None
    file_deleted_at: datetime | None
    audited_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.file_deleted_at is not None and self.audited_at is not None
