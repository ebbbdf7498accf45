"""What a queue call is made of besides its task: its states, the events its task consumes,
and what it needs of the ACD (`Distributor`) and of the node (`QueueCallServices`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from callwarden.acd.queue import OverflowAction
from callwarden.domain.cdr import NewCdr
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.media.control import MediaControl
from callwarden.sip.addressing import Destination, TransportName
from callwarden.sip.dialog import Dialog
from callwarden.sip.message import SipRequest
from callwarden.sip.transaction import TransactionLayer
from callwarden.sip.uri import SipUri
from callwarden.telephony.call import CallEvent, Leg
from callwarden.telephony.call_context import CallerInfo, OutboundTarget
from callwarden.telephony.call_task import CallTask

if TYPE_CHECKING:
    from callwarden.telephony.queue_call import QueueCall

__all__ = [
    "Distributor",
    "OfferAgent",
    "Overflow",
    "QueueCallOver",
    "QueueCallServices",
    "QueueCallState",
    "QueueEvent",
    "TimerDue",
    "WithdrawAgent",
    "check_transition",
]


class QueueCallState(enum.Enum):
    SETUP = "setup"
    WAITING = "waiting"
    CONNECTED = "connected"
    ENDED = "ended"


_TRANSITIONS: dict[QueueCallState, frozenset[QueueCallState]] = {
    QueueCallState.SETUP: frozenset({QueueCallState.WAITING, QueueCallState.ENDED}),
    QueueCallState.WAITING: frozenset({QueueCallState.CONNECTED, QueueCallState.ENDED}),
    QueueCallState.CONNECTED: frozenset({QueueCallState.ENDED}),
    QueueCallState.ENDED: frozenset(),
}


def check_transition(call_id: CallId, old: QueueCallState, new: QueueCallState) -> None:
    """Raise RuntimeError unless a queue call may go from `old` to `new`."""
    if new not in _TRANSITIONS[old]:
        raise RuntimeError(f"queue call {call_id}: {old.name} -> {new.name}")


@dataclass(frozen=True, slots=True)
class OfferAgent:
    """Ring `agent_id` (from the ACD, or `direct` for an overflow to a user)."""

    agent_id: UserId
    direct: bool = False


@dataclass(frozen=True, slots=True)
class WithdrawAgent:
    agent_id: UserId


@dataclass(frozen=True, slots=True)
class Overflow:
    queue_id: QueueId
    action: OverflowAction


@dataclass(frozen=True, slots=True)
class TimerDue:
    """A one-shot timer of the call fired (`name` says which; `serial` tells stale ones)."""

    name: str
    serial: int


QueueEvent = CallEvent | OfferAgent | WithdrawAgent | Overflow | TimerDue


class Distributor(Protocol):
    """The ACD as a queue call sees it (implemented by `QueueCalls`)."""

    async def call_arrived(self, call: QueueCall) -> int: ...

    async def offer_answered(self, call_id: CallId, agent_id: UserId) -> None: ...

    async def offer_failed(self, call_id: CallId, agent_id: UserId) -> None: ...

    async def call_ended(self, call_id: CallId) -> None: ...

    def agent_targets(self, agent_id: UserId, caller: CallerInfo) -> list[OutboundTarget]:
        """Where to ring the agent: each registered phone (none: the offer fails)."""
        ...

    def position(self, call_id: CallId) -> tuple[int, float] | None:
        """The call's position in its queue and its expected wait in seconds (None when it
        is no longer waiting in the ACD)."""
        ...


class QueueCallServices(Protocol):
    media: MediaControl
    sdp_address: str
    ring_timeout: float
    allow: str
    user_agent: str

    @property
    def layer(self) -> TransactionLayer: ...

    def now(self) -> datetime: ...

    def contact_uri(self, transport: TransportName) -> SipUri: ...

    def send_bye(self, request: SipRequest, destination: Destination) -> None: ...

    def register_dialog(self, dialog: Dialog, call: CallTask, leg: Leg) -> None: ...

    def unregister_dialog(self, dialog: Dialog) -> None: ...

    def write_cdr(self, cdr: NewCdr) -> None: ...


class QueueCallOver(Exception):  # noqa: N818 - control flow inside the call task
    """Ends the call task at once (the caller has been answered with a final response)."""
