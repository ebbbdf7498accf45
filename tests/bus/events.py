"""Event types of the bus tests (the bus carries any frozen `Event` dataclass)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from callwarden.bus import Event
from callwarden.domain.ids import CallId, QueueId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True, kw_only=True)
class Ping(Event):
    kind = "test.ping"

    number: int = 0


@dataclass(frozen=True, kw_only=True)
class Everything(Event):
    """One field of each kind the codec carries."""

    kind = "test.everything"
    permission = Permission.REPORTS_VIEW
    resource_kind = ResourceKind.REPORT

    call_id: CallId
    count: int
    ratio: float
    flag: bool
    colour: Colour
    when: datetime
    maybe: QueueId | None = None
    queues: tuple[QueueId, ...] = ()
    tags: frozenset[str] = frozenset()
