"""What every transaction shares: timer settings, states, errors and the transport port.

States are the RFC's (RFC 3261 17.1.1, 17.1.2, 17.2.1, 17.2.2 as amended by RFC 6026, which adds
the Accepted state to both INVITE machines). Each machine has one transition table; a transition
outside it raises :class:`IllegalTransitionError`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from callwarden.sip.addressing import Destination, TransportName
from callwarden.sip.clock import Clock
from callwarden.sip.headers import Via

__all__ = [
    "INVITE_CLIENT_TRANSITIONS",
    "INVITE_SERVER_TRANSITIONS",
    "NON_INVITE_CLIENT_TRANSITIONS",
    "NON_INVITE_SERVER_TRANSITIONS",
    "IllegalTransitionError",
    "InviteClientState",
    "InviteServerState",
    "MessageSender",
    "NonInviteClientState",
    "NonInviteServerState",
    "SendErrorCallback",
    "TimerSettings",
    "TransactionContext",
    "TransactionError",
    "TransactionFailure",
    "check_transition",
]

SendErrorCallback = Callable[[Exception], None]


class TransactionError(Exception):
    """A transaction was used against its protocol (e.g. a response after the final one)."""


class IllegalTransitionError(TransactionError):
    """A state machine was asked for a transition its RFC does not have."""


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """RFC 3261 timer values (17.1.1.1, table 4) and the automatic 100 Trying delay.

    ``trying_delay`` is how long an INVITE server transaction waits for the TU's first
    provisional response before sending 100 Trying itself (RFC 3261 17.2.1: "200 ms");
    0 sends it at once, None never.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying_delay: float | None = 0.2
    timer_d: float = 32.0

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise ValueError("timers need 0 < T1 <= T2")
        if self.t4 <= 0 or self.timer_d < 0:
            raise ValueError("T4 must be positive and Timer D not negative")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J, L and M (RFC 3261 17, RFC 6026 8.11)."""
        return 64 * self.t1


class TransactionFailure(enum.Enum):
    """Why a transaction ended without a real final response (RFC 3261 17.1.4, 17.2.1)."""

    TIMEOUT = "timeout"
    TRANSPORT_ERROR = "transport error"
    NO_ACK = "no ACK"


class MessageSender(Protocol):
    """What the transaction layer needs from the transport layer."""

    def send_bytes(
        self, data: bytes, destination: Destination, on_error: SendErrorCallback | None = None
    ) -> None:
        """Send one serialized message; report a failure later through ``on_error``."""
        ...

    def make_via(self, branch: str, transport: TransportName = "UDP") -> Via:
        """The Via this element puts on requests it sends over ``transport``."""
        ...


class InviteClientState(enum.Enum):
    """RFC 3261 17.1.1.2, figure 5 as replaced by RFC 6026 7.2."""

    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class NonInviteClientState(enum.Enum):
    """RFC 3261 17.1.2.2, figure 6."""

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class InviteServerState(enum.Enum):
    """RFC 3261 17.2.1, figure 7 as replaced by RFC 6026 7.1."""

    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class NonInviteServerState(enum.Enum):
    """RFC 3261 17.2.2, figure 8."""

    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


_IC = InviteClientState
INVITE_CLIENT_TRANSITIONS: Mapping[InviteClientState, frozenset[InviteClientState]] = {
    _IC.CALLING: frozenset({_IC.PROCEEDING, _IC.COMPLETED, _IC.ACCEPTED, _IC.TERMINATED}),
    _IC.PROCEEDING: frozenset({_IC.COMPLETED, _IC.ACCEPTED, _IC.TERMINATED}),
    _IC.COMPLETED: frozenset({_IC.TERMINATED}),
    _IC.ACCEPTED: frozenset({_IC.TERMINATED}),
    _IC.TERMINATED: frozenset(),
}

_NC = NonInviteClientState
NON_INVITE_CLIENT_TRANSITIONS: Mapping[NonInviteClientState, frozenset[NonInviteClientState]] = {
    _NC.TRYING: frozenset({_NC.PROCEEDING, _NC.COMPLETED, _NC.TERMINATED}),
    _NC.PROCEEDING: frozenset({_NC.COMPLETED, _NC.TERMINATED}),
    _NC.COMPLETED: frozenset({_NC.TERMINATED}),
    _NC.TERMINATED: frozenset(),
}

_IS = InviteServerState
INVITE_SERVER_TRANSITIONS: Mapping[InviteServerState, frozenset[InviteServerState]] = {
    _IS.PROCEEDING: frozenset({_IS.COMPLETED, _IS.ACCEPTED, _IS.TERMINATED}),
    _IS.COMPLETED: frozenset({_IS.CONFIRMED, _IS.TERMINATED}),
    _IS.CONFIRMED: frozenset({_IS.TERMINATED}),
    _IS.ACCEPTED: frozenset({_IS.TERMINATED}),
    _IS.TERMINATED: frozenset(),
}

_NS = NonInviteServerState
NON_INVITE_SERVER_TRANSITIONS: Mapping[NonInviteServerState, frozenset[NonInviteServerState]] = {
    _NS.TRYING: frozenset({_NS.PROCEEDING, _NS.COMPLETED, _NS.TERMINATED}),
    _NS.PROCEEDING: frozenset({_NS.COMPLETED, _NS.TERMINATED}),
    _NS.COMPLETED: frozenset({_NS.TERMINATED}),
    _NS.TERMINATED: frozenset(),
}

_S = TypeVar("_S", bound=enum.Enum)


def check_transition(table: Mapping[_S, frozenset[_S]], current: _S, new: _S) -> _S:
    """Return ``new`` when ``current -> new`` is in ``table``, else raise IllegalTransitionError."""
    if new not in table[current]:
        raise IllegalTransitionError(f"{type(current).__name__}: {current.name} -> {new.name}")
    return new


@dataclass(slots=True)
class TransactionContext:
    """Shared by all transactions of one layer: how to send, what time it is, the timers."""

    sender: MessageSender
    clock: Clock
    timers: TimerSettings
