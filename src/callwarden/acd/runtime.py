"""The engine's mutable records of queues, calls and wrap-ups (private to `AcdEngine`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from callwarden.acd.clock import TimerHandle
from callwarden.acd.queue import CallQueue, HandleTimeAverage, WaitingCall
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import Queue, QueueMember


class CallPhase(enum.Enum):
    WAITING = "waiting"
    """In the queue, ringing nobody."""
    RINGING = "ringing"
    """In the queue, offered to one agent (several for ring-all)."""
    CONNECTED = "connected"
    """Answered; out of the queue."""


@dataclass(slots=True)
class CallRecord:
    """A call in the ACD. `ringing` maps each agent the call rings to when that offer times
    out; every agent of it was rung at once (a call is offered again only when it rings
    nobody), so one `ring_timer` times them all out."""

    waiting: WaitingCall
    phase: CallPhase = CallPhase.WAITING
    ringing: dict[UserId, float] = field(default_factory=dict)
    ring_timer: TimerHandle | None = None
    tried: dict[UserId, int] = field(default_factory=dict)
    agent_id: UserId | None = None
    answered_at: float | None = None
    overflow_timer: TimerHandle | None = None
    overflow_pending: bool = False

    @property
    def call_id(self) -> CallId:
        return self.waiting.call_id

    @property
    def queue_id(self) -> QueueId:
        return self.waiting.queue_id

    def stop_ringing(self, agent_id: UserId) -> None:
        """The offer to `agent_id` is over; the ring timer goes with the last offer."""
        del self.ringing[agent_id]
        if not self.ringing and self.ring_timer is not None:
            self.ring_timer.cancel()
            self.ring_timer = None

    def cancel_timers(self) -> None:
        if self.ring_timer is not None:
            self.ring_timer.cancel()
            self.ring_timer = None
        if self.overflow_timer is not None:
            self.overflow_timer.cancel()
            self.overflow_timer = None


class QueueRecord:
    __slots__ = ("calls", "handle_time", "members", "positions", "queue", "round_robin_after")

    def __init__(self, queue: Queue, initial_handle_seconds: float) -> None:
        self.queue = queue
        self.calls = CallQueue(queue)
        self.members: tuple[QueueMember, ...] = queue.members
        self.positions: dict[UserId, int] = {}
        self.round_robin_after: int | None = None
        self.handle_time = HandleTimeAverage(initial_handle_seconds)
        self.update(queue)

    def update(self, queue: Queue) -> None:
        """The queue as the directory now has it (members, strategy, timers); the waiting
        calls, the handle-time average and the round-robin place stay."""
        last = self.member_at(self.round_robin_after)
        self.queue = queue
        self.calls.queue = queue
        self.members = queue.members
        self.positions = {member.user_id: index for index, member in enumerate(queue.members)}
        self.round_robin_after = self.positions.get(last) if last is not None else None

    def member_at(self, position: int | None) -> UserId | None:
        if position is None or not 0 <= position < len(self.members):
            return None
        return self.members[position].user_id


@dataclass(slots=True)
class WrapUpRecord:
    """The call an agent is wrapping up (kept until the agent leaves WRAP_UP)."""

    call_id: CallId
    queue_id: QueueId
    talk_seconds: float
    started: float
    timer: TimerHandle | None = None
