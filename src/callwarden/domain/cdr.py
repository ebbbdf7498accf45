"""Call detail records: one per call, with one entry per SIP leg of the call.

A CDR is written once, when the call has ended. Timestamps are timezone-aware; the talk
duration runs from answer to end. Dialled digits entered during the call (DTMF) never belong
here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId, CdrId, QueueId, TeamId, TrunkId, UserId


class CallDirection(enum.Enum):
    INBOUND = "inbound"
    """From a trunk to us."""
    OUTBOUND = "outbound"
    """From one of our users out through a trunk."""
    INTERNAL = "internal"
    """Between our own users (or a user and a queue)."""


class RouteKind(enum.Enum):
    """What the dial plan routed the call to."""

    EXTENSION = "extension"
    QUEUE = "queue"
    TRUNK = "trunk"


class Disposition(enum.Enum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CANCELLED = "cancelled"
    FAILED = "failed"


class HangupSide(enum.Enum):
    CALLER = "caller"
    CALLEE = "callee"
    SYSTEM = "system"


class LegRole(enum.Enum):
    CALLER = "caller"
    CALLEE = "callee"
    MONITOR = "monitor"


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValidationFailed(f"{name} must be timezone-aware", details={"field": name})


@dataclass(frozen=True, kw_only=True)
class CdrLeg:
    """One SIP dialog of a call (the B2BUA has at least two per answered call)."""

    role: LegRole
    sip_call_id: str
    uri: str
    started_at: datetime
    ended_at: datetime
    answered_at: datetime | None = None
    user_id: UserId | None = None
    trunk_id: TrunkId | None = None
    sip_status: int | None = None
    hangup_cause: str | None = None

    def __post_init__(self) -> None:
        _require_aware("leg started_at", self.started_at)
        _require_aware("leg answered_at", self.answered_at)
        _require_aware("leg ended_at", self.ended_at)
        if self.ended_at < self.started_at:
            raise ValidationFailed("leg ended_at is before started_at")


@dataclass(frozen=True, kw_only=True)
class NewCdr:
    """A call detail record not yet stored."""

    call_id: CallId
    direction: CallDirection
    caller: str
    callee: str
    dialled_number: str
    started_at: datetime
    ended_at: datetime
    disposition: Disposition
    answered_at: datetime | None = None
    route_kind: RouteKind | None = None
    hangup_cause: str | None = None
    sip_status: int | None = None
    hangup_side: HangupSide | None = None
    caller_user_id: UserId | None = None
    callee_user_id: UserId | None = None
    queue_id: QueueId | None = None
    trunk_id: TrunkId | None = None
    team_id: TeamId | None = None
    legs: tuple[CdrLeg, ...] = ()

    def __post_init__(self) -> None:
        _require_aware("started_at", self.started_at)
        _require_aware("answered_at", self.answered_at)
        _require_aware("ended_at", self.ended_at)
        if self.ended_at < self.started_at:
            raise ValidationFailed("ended_at is before started_at", details={"field": "ended_at"})
        if self.answered_at is not None and not (
            self.started_at <= self.answered_at <= self.ended_at
        ):
            raise ValidationFailed(
                "answered_at is outside started_at..ended_at", details={"field": "answered_at"}
            )
        if (self.answered_at is not None) != (self.disposition is Disposition.ANSWERED):
            raise ValidationFailed(
                "answered_at is set exactly when the disposition is 'answered'",
                details={"field": "disposition"},
            )

    @property
    def duration(self) -> timedelta:
        """Talk time: from answer to end; zero for a call never answered."""
        if self.answered_at is None:
            return timedelta(0)
        return self.ended_at - self.answered_at

    @property
    def total_duration(self) -> timedelta:
        """From the first INVITE to the end, ringing and queueing included."""
        return self.ended_at - self.started_at

    @property
    def wait_duration(self) -> timedelta | None:
        """From the first INVITE to the answer (speed of answer), None if never answered."""
        if self.answered_at is None:
            return None
        return self.answered_at - self.started_at


@dataclass(frozen=True, kw_only=True)
class Cdr(NewCdr):
    """A stored call detail record. `wrap_up_code` is the disposition code the call's operator
    gave it at wrap-up (`call_dispositions`, set after the record is written), None while none
    is set; not to be confused with `disposition`, how the call ended."""

    id: CdrId
    wrap_up_code: str | None = None
