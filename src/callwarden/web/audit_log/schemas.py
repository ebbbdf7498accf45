"""Request and response models of the audit log routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from callwarden.security.audit import MAX_PAGE_SIZE, AuditEntry, AuditHead, VerifyResult
from callwarden.security.audit_chain import format_timestamp
from callwarden.web.schemas import RequestModel, ResponseModel

AuditSortField = Literal["sequence", "recorded_at", "action", "actor_name", "outcome"]
ACTION_PREFIX_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.?$"
HASH_PATTERN = r"^[0-9a-f]{64}$"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
ObjectText = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]


class AuditEntryView(ResponseModel):
    sequence: int
    recorded_at: datetime
    actor_kind: str
    actor_user_id: int | None
    actor_name: str
    action: str
    object_kind: str | None
    object_id: str | None
    outcome: str
    source_address: str | None
    reason: str | None
    details: dict[str, Any]
    previous_hash: str
    entry_hash: str

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryView:
        return cls(
            sequence=entry.sequence,
            recorded_at=entry.recorded_at,
            actor_kind=entry.actor.kind.value,
            actor_user_id=entry.actor.user_id,
            actor_name=entry.actor.name,
            action=entry.action,
            object_kind=entry.object_kind,
            object_id=entry.object_id,
            outcome=entry.outcome.value,
            source_address=entry.source_address,
            reason=entry.reason,
            details=dict(entry.details),
            previous_hash=entry.previous_hash,
            entry_hash=entry.entry_hash,
        )


class AuditListQuery(BaseModel):
    """Filters, sort (from the audit module's allow-list) and page; every filter is exact
    (compared as a bound value), the action filter a dotted prefix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    actor_user_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    actor_name: ObjectText | None = None
    action_prefix: Annotated[str, Field(max_length=64, pattern=ACTION_PREFIX_PATTERN)] | None = None
    object_kind: Annotated[str, Field(max_length=64, pattern=r"^[a-z][a-z0-9_]*$")] | None = None
    object_id: ObjectText | None = None
    outcome: Literal["success", "denied", "failed"] | None = None
    sort: AuditSortField = "sequence"
    order: Literal["asc", "desc"] = "desc"
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 100
    offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0


AuditListParameters = Annotated[AuditListQuery, Query()]


class AuditExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    after_sequence: Annotated[int, Field(ge=0, le=2**62)] = 0


AuditExportParameters = Annotated[AuditExportQuery, Query()]


class HeadModel(RequestModel):
    """An exported head, as `callwarden audit export-head` and `GET /audit/head` give it."""

    hash: Annotated[str, Field(pattern=HASH_PATTERN)]
    sequence: Annotated[int, Field(ge=1, le=2**62)]
    timestamp: Annotated[str, Field(pattern=TIMESTAMP_PATTERN)]


class HeadView(ResponseModel):
    hash: str
    sequence: int
    timestamp: str

    @classmethod
    def of(cls, head: AuditHead) -> HeadView:
        return cls(
            hash=head.entry_hash,
            sequence=head.sequence,
            timestamp=format_timestamp(head.recorded_at),
        )


class VerifyRequest(RequestModel):
    """`head`: a head exported earlier, to catch entries removed from the end as well."""

    head: HeadModel | None = None


class ChainBreakView(ResponseModel):
    sequence: int
    problem: str
    message: str


class VerifyView(ResponseModel):
    intact: bool
    verified: int
    head: HeadView | None
    broken: ChainBreakView | None
    summary: str

    @classmethod
    def of(cls, result: VerifyResult) -> VerifyView:
        broken = result.broken
        return cls(
            intact=result.intact,
            verified=result.verified,
            head=None if result.head is None else HeadView.of(result.head),
            broken=None
            if broken is None
            else ChainBreakView(
                sequence=broken.sequence, problem=broken.problem.value, message=broken.message
            ),
            summary=result.summary(),
        )
