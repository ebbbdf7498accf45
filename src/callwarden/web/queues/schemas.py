"""Request and response models of the queue routes.

The bounds are the provisioning file's (`callwarden.provisioning.document.QueueSpec`), so the
API and the file accept exactly the same queues; the choices are the domain enums' values.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callwarden.domain.models import Queue
from callwarden.provisioning.document import Digits, DisplayName, Name
from callwarden.web.schemas import (
    MAX_PAGE_SIZE,
    ObjectId,
    PatchModel,
    RequestModel,
    ResponseModel,
)

Strategy = Literal["longest_idle", "round_robin", "fewest_calls", "ring_all", "skills"]
Recording = Literal["all", "none", "on_demand"]
OverflowAction = Literal["queue", "user", "voicemail", "hangup"]
Music = Literal["tones", "melody"]

Level = Annotated[int, Field(strict=True, ge=0, le=100)]
WrapUp = Annotated[int, Field(strict=True, ge=0, le=3600)]
RingTimeout = Annotated[int, Field(strict=True, ge=5, le=300)]
MaxNoAnswer = Annotated[int, Field(strict=True, ge=1, le=100)]
MaxWait = Annotated[int, Field(strict=True, ge=10, le=86_400)]
ServiceLevelSeconds = Annotated[int, Field(strict=True, ge=1, le=3600)]
Percent = Annotated[int, Field(strict=True, ge=1, le=100)]
Announce = Annotated[int, Field(strict=True, ge=10, le=3600)]

MAX_MEMBERS = 500

# Fields a PATCH may not set to null (the others: `max_wait_seconds`, `announce_seconds`).
_NOT_NULL = (
    "display_name",
    "number",
    "team_id",
    "strategy",
    "members",
    "wrap_up_seconds",
    "ring_timeout_seconds",
    "max_no_answer",
    "service_level_seconds",
    "service_level_percent",
    "required_skill_level",
    "recording",
    "overflow",
    "music_on_hold",
)


class MemberBody(RequestModel):
    user_id: ObjectId
    penalty: Level = 0
    skill_level: Level = 1


class OverflowBody(RequestModel):
    """`queue` names `queue_id`, `user` names `user_id`; `voicemail` and `hangup` name nothing."""

    action: OverflowAction
    queue_id: ObjectId | None = None
    user_id: ObjectId | None = None

    @model_validator(mode="after")
    def _target_matches_action(self) -> OverflowBody:
        if (self.action == "queue") != (self.queue_id is not None):
            raise ValueError("queue_id names the target of action 'queue' (and only of it)")
        if (self.action == "user") != (self.user_id is not None):
            raise ValueError("user_id names the target of action 'user' (and only of it)")
        return self


def _unique_members(members: list[MemberBody] | None) -> list[MemberBody] | None:
    if members is not None:
        ids = [member.user_id for member in members]
        if len(set(ids)) != len(ids):
            raise ValueError("each user is a member once")
    return members


class QueueSettings(RequestModel):
    """What a queue is set to, beyond its name: all optional (a PATCH states what changes)."""

    display_name: DisplayName | None = None
    number: Digits | None = None
    team_id: ObjectId | None = None
    strategy: Strategy | None = None
    members: Annotated[list[MemberBody], Field(max_length=MAX_MEMBERS)] | None = None
    wrap_up_seconds: WrapUp | None = None
    ring_timeout_seconds: RingTimeout | None = None
    max_no_answer: MaxNoAnswer | None = None
    max_wait_seconds: MaxWait | None = None
    service_level_seconds: ServiceLevelSeconds | None = None
    service_level_percent: Percent | None = None
    required_skill_level: Level | None = None
    recording: Recording | None = None
    overflow: OverflowBody | None = None
    announce_seconds: Announce | None = None
    music_on_hold: Music | None = None

    _members_unique = field_validator("members")(_unique_members)


class NewQueue(QueueSettings):
    """A new queue: `name`, `number` and `team_id` are required; the rest has the file's
    defaults (docs/provisioning.md)."""

    name: Name

    @model_validator(mode="after")
    def _required(self) -> NewQueue:
        missing = [key for key in ("number", "team_id") if getattr(self, key) is None]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required")
        return self


class QueuePatch(QueueSettings, PatchModel):
    """Any of the settings; `max_wait_seconds` and `announce_seconds` may be null (none)."""

    not_null = _NOT_NULL


class MemberView(ResponseModel):
    user_id: int
    penalty: int
    skill_level: int


class OverflowView(ResponseModel):
    action: str
    queue_id: int | None
    user_id: int | None


class QueueView(ResponseModel):
    id: int
    name: str
    display_name: str
    number: str
    team_id: int
    strategy: str
    members: list[MemberView]
    wrap_up_seconds: int
    ring_timeout_seconds: int
    max_no_answer: int
    max_wait_seconds: int | None
    service_level_seconds: int
    service_level_percent: int
    required_skill_level: int
    recording: str
    overflow: OverflowView
    announce_seconds: int | None
    music_on_hold: str

    @classmethod
    def of(cls, queue: Queue) -> QueueView:
        return cls(
            id=queue.id,
            name=queue.name,
            display_name=queue.display_name,
            number=queue.number,
            team_id=queue.team_id,
            strategy=queue.strategy.value,
            members=[
                MemberView(
                    user_id=member.user_id,
                    penalty=member.penalty,
                    skill_level=member.skill_level,
                )
                for member in queue.members
            ],
            wrap_up_seconds=queue.wrap_up_seconds,
            ring_timeout_seconds=queue.ring_timeout_seconds,
            max_no_answer=queue.max_no_answer,
            max_wait_seconds=queue.max_wait_seconds,
            service_level_seconds=queue.service_level_seconds,
            service_level_percent=queue.service_level_percent,
            required_skill_level=queue.required_skill_level,
            recording=queue.recording.value,
            overflow=OverflowView(
                action=queue.overflow.value,
                queue_id=queue.overflow_queue_id,
                user_id=queue.overflow_user_id,
            ),
            announce_seconds=queue.announce_seconds,
            music_on_hold=queue.music_on_hold.value,
        )


class QueueListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    team_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    sort: Literal["name", "display_name", "number", "id"] = "name"
    order: Literal["asc", "desc"] = "asc"
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


QueueListParameters = Annotated[QueueListQuery, Query()]
