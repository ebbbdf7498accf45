"""Request and response models of the recording routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import QueueId, TeamId, UserId
from callwarden.recording.models import LegalHold, Note, RetentionPolicy
from callwarden.recording.playback import (
    DownloadFormat,
    PlaybackGrant,
    PlaybackMode,
    Rendition,
    Waveform,
)
from callwarden.recording.purge import PurgeProgress
from callwarden.recording.purge_runs import PurgeStatus
from callwarden.recording.search import MAX_PAGE_SIZE, RecordingQuery
from callwarden.recording.service import RecordingView
from callwarden.web.schemas import ObjectId, RequestModel, ResponseModel

Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=r"\S")]
"""Why: free text or a ticket id; required, never blank."""
Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9 _.:#/-]{0,63}$")]
"""A tag: lower-case letters, digits, space and `_.:#/-`, 1-64 characters."""
ModeName = Literal["mix", "stereo", "track"]
TrackName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
DbId = Annotated[int, Field(ge=1, le=2**31 - 1)]
_WORD = r"A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}"
HOLD_TARGET_PATTERN = rf"^[A-Za-z0-9][{_WORD}]*(@[{_WORD}]+)?$"
"""A recording id, a user or queue id, or a SIP Call-ID (RFC 3261 25.1: `word ["@" word]`),
starting with a letter or digit."""


class RecordingSearch(BaseModel):
    """Filters of `GET /api/v1/recordings` (all optional; see docs/api.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: datetime | None = None
    until: datetime | None = None
    queue_id: DbId | None = None
    team_id: DbId | None = None
    operator_id: DbId | None = None
    caller_number: Annotated[str, Field(pattern=r"^\+?[0-9*# ().\-/]{1,40}$")] | None = None
    direction: Literal["inbound", "outbound", "internal"] | None = None
    min_duration_ms: Annotated[int, Field(ge=0, le=2**40)] | None = None
    max_duration_ms: Annotated[int, Field(ge=0, le=2**40)] | None = None
    tag: list[Tag] = Field(default_factory=list, max_length=10)
    has_pauses: bool | None = None
    monitored: bool | None = None
    incomplete: bool | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    cursor: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,200}$")] | None = None

    def query(self) -> RecordingQuery:
        return RecordingQuery(
            since=self.since,
            until=self.until,
            queue_id=None if self.queue_id is None else QueueId(self.queue_id),
            team_id=None if self.team_id is None else TeamId(self.team_id),
            operator_id=None if self.operator_id is None else UserId(self.operator_id),
            caller_number=self.caller_number,
            direction=None if self.direction is None else CallDirection(self.direction),
            min_duration_ms=self.min_duration_ms,
            max_duration_ms=self.max_duration_ms,
            tags=tuple(self.tag),
            has_pauses=self.has_pauses,
            monitored=self.monitored,
            incomplete=self.incomplete,
            limit=self.limit,
            cursor=self.cursor,
        )


RecordingSearchParameters = Annotated[RecordingSearch, Query()]


class PauseView(ResponseModel):
    started_at: datetime
    ended_at: datetime | None


class RecordingOut(ResponseModel):
    """A recording's metadata; `caller_number` masked unless the caller may see numbers."""

    id: str
    call_id: str
    queue_id: int | None
    team_id: int | None
    operator_id: int | None
    direction: str
    caller_number: str | None
    started_at: datetime
    ended_at: datetime | None
    duration_ms: int | None
    status: str
    has_pauses: bool
    monitored: bool
    pauses: list[PauseView]
    tags: list[str]
    size_bytes: int | None
    manifest_digest: str | None
    legal_holds: list[int]

    @classmethod
    def of(cls, view: RecordingView) -> RecordingOut:
        r = view.recording
        return cls(
            id=r.id,
            call_id=r.call_id,
            queue_id=r.queue_id,
            team_id=r.team_id,
            operator_id=r.operator_id,
            direction=r.direction.value,
            caller_number=view.caller_number,
            started_at=r.started_at,
            ended_at=r.ended_at,
            duration_ms=r.duration_ms,
            status=r.status.value,
            has_pauses=r.has_pauses,
            monitored=r.monitored,
            pauses=[PauseView(started_at=p.started_at, ended_at=p.ended_at) for p in r.pauses],
            tags=list(r.tags),
            size_bytes=r.size_bytes,
            manifest_digest=r.manifest_digest,
            legal_holds=list(view.holds),
        )


class RecordingPage(ResponseModel):
    items: list[RecordingOut]
    next_cursor: str | None


class ListenRequest(RequestModel):
    """`mode`: `mix` (every track, mono), `stereo` (customer left, operator right) or `track`
    (one track, named by `track`)."""

    reason: Reason
    mode: ModeName = "mix"
    track: TrackName | None = None

    @model_validator(mode="after")
    def _track_with_mode(self) -> ListenRequest:
        if (self.mode == "track") != (self.track is not None):
            raise ValueError("track is given exactly when mode is 'track'")
        return self

    def rendition(self) -> Rendition:
        return Rendition(PlaybackMode(self.mode), self.track)


class DownloadRequest(ListenRequest):
    """A download: the rendition of `ListenRequest`, as `wav` (16-bit PCM, watermark in a
    LIST/INFO chunk) or `flac` (watermark in Vorbis comments)."""

    format: Literal["wav", "flac"] = "wav"

    def download_format(self) -> DownloadFormat:
        return DownloadFormat(self.format)


class PlaybackOut(ResponseModel):
    """Where to stream from, until when; the links work for this session only."""

    recording_id: str
    mode: str
    track: str | None
    stream_url: str
    waveform_url: str
    expires_at: datetime

    @classmethod
    def of(cls, grant: PlaybackGrant, prefix: str) -> PlaybackOut:
        return cls(
            recording_id=grant.recording_id,
            mode=grant.rendition.mode.value,
            track=grant.rendition.track,
            stream_url=f"{prefix}/{grant.token}",
            waveform_url=f"{prefix}/{grant.token}/waveform",
            expires_at=grant.expires_at,
        )


class WaveformOut(ResponseModel):
    bucket_ms: float
    minimum: list[int]
    maximum: list[int]

    @classmethod
    def of(cls, shape: Waveform) -> WaveformOut:
        return cls(
            bucket_ms=shape.bucket_frames / 8,
            minimum=list(shape.minimum),
            maximum=list(shape.maximum),
        )


class WaveformQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    buckets: Annotated[int, Field(ge=1, le=2000)] = 500


WaveformParameters = Annotated[WaveformQuery, Query()]


class TagBody(RequestModel):
    """`present`: put the tag on (default) or take it off; either way it is idempotent."""

    tag: Tag
    present: bool = True


class NoteBody(RequestModel):
    text: Annotated[str, Field(min_length=1, max_length=2000)]


class NoteOut(ResponseModel):
    id: int
    author_id: int | None
    created_at: datetime
    text: str

    @classmethod
    def of(cls, note: Note) -> NoteOut:
        return cls(id=note.id, author_id=note.author_id, created_at=note.created_at, text=note.text)


class NoteList(ResponseModel):
    items: list[NoteOut]


class ReasonBody(RequestModel):
    reason: Reason


class HoldRequest(RequestModel):
    """A hold on a recording (its id), a call (its call id), a user or a queue (numeric id)."""

    target_kind: Literal["recording", "call", "user", "queue"]
    target_id: Annotated[str, Field(max_length=255, pattern=HOLD_TARGET_PATTERN)]
    reason: Reason


class ReleaseRequest(RequestModel):
    hold_id: ObjectId
    reason: Reason


class HoldOut(ResponseModel):
    id: int
    target_kind: str
    target_id: str
    reason: str
    placed_by: int | None
    placed_at: datetime
    released_at: datetime | None
    released_by: int | None
    release_reason: str | None

    @classmethod
    def of(cls, hold: LegalHold) -> HoldOut:
        return cls(
            id=hold.id,
            target_kind=hold.target_kind.value,
            target_id=hold.target_id,
            reason=hold.reason,
            placed_by=hold.placed_by,
            placed_at=hold.placed_at,
            released_at=hold.released_at,
            released_by=hold.released_by,
            release_reason=hold.release_reason,
        )


class HoldList(ResponseModel):
    items: list[HoldOut]


class HoldListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    active: bool = True


HoldListParameters = Annotated[HoldListQuery, Query()]


class DeletedOut(ResponseModel):
    recording_id: str
    purged_at: datetime
    rule: str


class PolicyBody(RequestModel):
    """Set a policy's days, or remove it with `days: null`."""

    scope: Literal["default", "team", "queue"]
    team_id: ObjectId | None = None
    queue_id: ObjectId | None = None
    days: Annotated[int, Field(strict=True, ge=1, le=36_500)] | None


class PolicyOut(ResponseModel):
    scope: str
    team_id: int | None
    queue_id: int | None
    days: int
    rule: str

    @classmethod
    def of(cls, policy: RetentionPolicy) -> PolicyOut:
        return cls(
            scope=policy.scope.value,
            team_id=policy.team_id,
            queue_id=policy.queue_id,
            days=policy.days,
            rule=policy.rule,
        )


class PolicyList(ResponseModel):
    items: list[PolicyOut]


class PurgeStatusOut(ResponseModel):
    """The node's current purge (`running`) or its last one; counts so far."""

    running: bool
    started_at: datetime | None
    finished_at: datetime | None
    done: bool
    examined: int
    purged: int
    held: int
    resumed: int
    failed: int

    @classmethod
    def of(cls, status: PurgeStatus) -> PurgeStatusOut:
        progress = status.progress or PurgeProgress()
        return cls(
            running=status.running,
            started_at=status.started_at,
            finished_at=status.finished_at,
            done=status.progress is not None and progress.done,
            examined=progress.examined,
            purged=progress.purged,
            held=progress.held,
            resumed=progress.resumed,
            failed=progress.failed,
        )
