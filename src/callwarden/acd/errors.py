"""Typed errors of the ACD, each with a stable `error_id`."""

from __future__ import annotations

from callwarden.domain.errors import InvalidState, NotFound, ValidationFailed


class IllegalTransition(InvalidState):
    """The agent's state does not allow this event (e.g. answering while on a break)."""

    default_error_id = "agent_illegal_transition"


class UnknownBreakReason(ValidationFailed):
    """A break reason outside the configured list."""

    default_error_id = "agent_unknown_break_reason"


class WrapUpLimitReached(InvalidState):
    """The operator asked for more wrap-up time than the limit leaves."""

    default_error_id = "agent_wrap_up_limit"


class UnknownAgent(NotFound):
    default_error_id = "acd_unknown_agent"


class UnknownQueue(NotFound):
    default_error_id = "acd_unknown_queue"


class UnknownCall(NotFound):
    default_error_id = "acd_unknown_call"


class NotAMember(InvalidState):
    """The agent is not a member of the queue they try to sign in to."""

    default_error_id = "acd_not_a_member"


class DuplicateCall(InvalidState):
    """A call id the engine already holds."""

    default_error_id = "acd_duplicate_call"


class OfferNotPending(InvalidState):
    """The owner reported on an offer the engine no longer has (already answered,
    withdrawn or timed out): the owner should hang that leg up."""

    default_error_id = "acd_offer_not_pending"


class AgentEngagedElsewhere(InvalidState):
    """Another node rings, or is connected to, this agent; `details["node"]` names it."""

    default_error_id = "acd_agent_engaged_elsewhere"


class EngineNotRunning(InvalidState):
    default_error_id = "acd_not_running"
