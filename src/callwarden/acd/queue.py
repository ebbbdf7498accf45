"""The waiting calls of one queue, in memory: order, position, expected wait, overflow.

**Order.** Calls wait by descending `priority`, then by arrival (a sequence number the engine
hands out), so a priority caller overtakes every caller of lower priority but never one of
the same priority who came earlier. Positions are 1-based: position 1 is offered next.

**Expected wait** (announced to callers; `estimate_wait`): zero if at least `position`
agents are available right now; otherwise `position × average handle time ÷ agents`, where
agents are those signed in to the queue and not on break or offline (at least one), and the
average handle time is a moving average of the queue's recent calls (talk + wrap-up).

**Max wait and overflow.** A queue with `max_wait_seconds` overflows a call that has waited
that long; what happens then is data (`OverflowAction`): another queue, a user, a
voicemail-style message, or a hang-up after a message. The telephony layer carries it out.

**Service level.** A call answered after waiting at most `service_level_seconds` is answered
within the service level (`within_service_level`); docs/acd.md gives the percentage formula.
"""

from __future__ import annotations

import bisect
import enum
import math
from dataclasses import dataclass, field

from callwarden.acd.errors import UnknownCall
from callwarden.acd.routing import CallNeeds
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import Queue

__all__ = [
    "CallQueue",
    "HandleTimeAverage",
    "OverflowAction",
    "OverflowKind",
    "WaitingCall",
    "estimate_wait",
    "overflow_deadline",
    "queue_overflow",
    "within_service_level",
]


@dataclass(frozen=True, slots=True)
class WaitingCall:
    """A call waiting in a queue (also while it is being offered). Times are monotonic."""

    call_id: CallId
    queue_id: QueueId
    arrived_at: float
    sequence: int
    priority: int = 0
    required_skill: int = 0
    caller: str = field(default="", repr=False)
    """The caller's number: kept out of `repr` so that it never reaches a log line."""

    @property
    def needs(self) -> CallNeeds:
        return CallNeeds(priority=self.priority, required_skill=self.required_skill)

    @property
    def order_key(self) -> tuple[int, int]:
        return (-self.priority, self.sequence)

    def waited(self, now: float) -> float:
        return max(0.0, now - self.arrived_at)


class OverflowKind(enum.Enum):
    QUEUE = "queue"
    USER = "user"
    VOICEMAIL = "voicemail"
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class OverflowAction:
    """Where a call goes when it has waited the queue's maximum; `message` names the prompt
    played first (for voicemail and hang-up)."""

    kind: OverflowKind
    queue_id: QueueId | None = None
    user_id: UserId | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind is OverflowKind.QUEUE and self.queue_id is None:
            raise ValidationFailed(
                "overflow to a queue needs the queue", details={"field": "queue"}
            )
        if self.kind is OverflowKind.USER and self.user_id is None:
            raise ValidationFailed("overflow to a user needs the user", details={"field": "user"})

    @classmethod
    def to_queue(cls, queue_id: QueueId) -> OverflowAction:
        return cls(OverflowKind.QUEUE, queue_id=queue_id)

    @classmethod
    def to_user(cls, user_id: UserId) -> OverflowAction:
        return cls(OverflowKind.USER, user_id=user_id)

    @classmethod
    def to_voicemail(cls, message: str = "leave-a-message") -> OverflowAction:
        return cls(OverflowKind.VOICEMAIL, message=message)

    @classmethod
    def hang_up(cls, message: str = "all-operators-busy") -> OverflowAction:
        return cls(OverflowKind.HANGUP, message=message)


def queue_overflow(queue: Queue) -> OverflowAction:
    """The provisioned overflow action of `queue` (a target that no longer exists: hang up)."""
    kind = OverflowKind(queue.overflow.value)
    if kind is OverflowKind.QUEUE and queue.overflow_queue_id is not None:
        return OverflowAction.to_queue(queue.overflow_queue_id)
    if kind is OverflowKind.USER and queue.overflow_user_id is not None:
        return OverflowAction.to_user(queue.overflow_user_id)
    if kind is OverflowKind.VOICEMAIL:
        return OverflowAction.to_voicemail()
    return OverflowAction.hang_up()


def overflow_deadline(queue: Queue, call: WaitingCall) -> float | None:
    """When `call` overflows (monotonic), or None if the queue has no maximum wait."""
    if queue.max_wait_seconds is None:
        return None
    return call.arrived_at + queue.max_wait_seconds


def within_service_level(queue: Queue, waited_seconds: float) -> bool:
    return waited_seconds <= queue.service_level_seconds


def estimate_wait(
    position: int, available_agents: int, serving_agents: int, average_handle_seconds: float
) -> float:
    """Expected seconds until the call at `position` is offered (see the module's rule)."""
    if position < 1:
        raise ValueError("positions start at 1")
    if available_agents >= position:
        return 0.0
    return position * average_handle_seconds / max(serving_agents, 1)


class HandleTimeAverage:
    """An exponential moving average of handle times (talk + wrap-up), in seconds."""

    __slots__ = ("samples", "seconds", "weight")

    def __init__(self, initial_seconds: float, *, weight: float = 0.2) -> None:
        if not 0 < weight <= 1:
            raise ValueError("weight must be in (0, 1]")
        self.seconds = initial_seconds
        self.weight = weight
        self.samples = 0

    def add(self, handle_seconds: float) -> None:
        if not math.isfinite(handle_seconds) or handle_seconds < 0:
            return
        if self.samples == 0:
            self.seconds = handle_seconds
        else:
            self.seconds += self.weight * (handle_seconds - self.seconds)
        self.samples += 1


class CallQueue:
    """The calls waiting in one queue, by priority then arrival."""

    __slots__ = ("_by_id", "_keys", "_ordered", "queue")

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._ordered: list[WaitingCall] = []
        self._keys: list[tuple[int, int]] = []
        self._by_id: dict[CallId, WaitingCall] = {}

    def __len__(self) -> int:
        return len(self._ordered)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._by_id

    @property
    def calls(self) -> tuple[WaitingCall, ...]:
        """Every waiting call, the next to be offered first."""
        return tuple(self._ordered)

    def get(self, call_id: CallId) -> WaitingCall | None:
        return self._by_id.get(call_id)

    def add(self, call: WaitingCall) -> int:
        """Queue `call`; its position."""
        if call.call_id in self._by_id:
            raise ValidationFailed(f"call {call.call_id} is already waiting")
        key = call.order_key
        index = bisect.bisect_right(self._keys, key)
        self._keys.insert(index, key)
        self._ordered.insert(index, call)
        self._by_id[call.call_id] = call
        return index + 1

    def remove(self, call_id: CallId) -> WaitingCall:
        call = self._by_id.pop(call_id, None)
        if call is None:
            raise UnknownCall(f"call {call_id} is not waiting in queue {self.queue.name}")
        index = bisect.bisect_left(self._keys, call.order_key)
        del self._keys[index]
        del self._ordered[index]
        return call

    def position(self, call_id: CallId) -> int:
        call = self._by_id.get(call_id)
        if call is None:
            raise UnknownCall(f"call {call_id} is not waiting in queue {self.queue.name}")
        return bisect.bisect_left(self._keys, call.order_key) + 1

    def longest_wait(self, now: float) -> float:
        """How long the longest-waiting call has waited (0 when none waits)."""
        if not self._ordered:
            return 0.0
        return max(call.waited(now) for call in self._ordered)
