"""What the ACD is configured with beyond the queues themselves, and what it asks its owner.

`Queue` (in `domain`) carries strategy, members, wrap-up, ring timeout, no-answer limit,
maximum wait, service level and overflow action, and the directory the break reasons, all
provisioned (docs/provisioning.md). What lives here: the wrap-up extension limit, claim
lifetimes, the break reasons used when none are provisioned, and per-queue overflow
overrides (tests and embedders).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from callwarden.acd.agent import DEFAULT_BREAK_REASONS
from callwarden.acd.queue import OverflowAction, queue_overflow
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import Queue

__all__ = ["AcdCallHandler", "AcdSettings"]


def _no_overflows() -> Mapping[QueueId, OverflowAction]:
    return MappingProxyType({})


@dataclass(frozen=True)
class AcdSettings:
    break_reasons: tuple[str, ...] = DEFAULT_BREAK_REASONS
    """Reasons an operator may give for a break when the directory provisions none (`missed`
    is added by the system)."""
    wrap_up_extension_limit_seconds: float = 120.0
    """How much wrap-up time an operator may add to one call in total."""
    claim_ttl_seconds: float = 30.0
    """Lifetime of an agent claim; the engine refreshes its claims every third of it."""
    initial_handle_seconds: float = 180.0
    """Average handle time assumed for a queue before its first call (for wait estimates)."""
    overflow: Mapping[QueueId, OverflowAction] = field(default_factory=_no_overflows)
    """Overrides of a queue's provisioned overflow action (`Queue.overflow`)."""

    def __post_init__(self) -> None:
        if self.wrap_up_extension_limit_seconds < 0:
            raise ValidationFailed("the wrap-up extension limit cannot be negative")
        if not self.claim_ttl_seconds > 0:
            raise ValidationFailed("claim_ttl_seconds must be positive")
        if not self.initial_handle_seconds >= 0:
            raise ValidationFailed("initial_handle_seconds cannot be negative")

    def overflow_for(self, queue: Queue) -> OverflowAction:
        found = self.overflow.get(queue.id)
        return found if found is not None else queue_overflow(queue)


class AcdCallHandler(Protocol):
    """The engine's owner (the telephony layer): it rings phones and moves calls.

    The engine calls these synchronously from its own task; they must not block. The owner
    reports back through `AcdEngine.offer_answered`, `offer_failed` and `call_ended`.
    """

    def offer_call(self, call_id: CallId, agent_id: UserId, queue_id: QueueId) -> None:
        """Ring `agent_id`'s phone with the waiting call `call_id`."""
        ...

    def withdraw_offer(self, call_id: CallId, agent_id: UserId) -> None:
        """Stop ringing `agent_id` for `call_id` (rang out, caller gone, or answered elsewhere)."""
        ...

    def overflow_call(self, call_id: CallId, queue_id: QueueId, action: OverflowAction) -> None:
        """`call_id` waited `queue_id`'s maximum: carry out `action`. For
        `OverflowKind.QUEUE` the engine queues the call in the target queue right after this
        (nothing to do but, perhaps, change the announcements)."""
        ...
