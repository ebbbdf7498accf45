"""What the SIP application needs of any call it runs as a task: the two-party B2BUA `Call`
and the queue call (`QueueCall`) both have this shape. `AnsweredHereTask` is the shared part of
the tasks callwarden answers itself (dialled agent and monitoring codes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from callwarden.domain.ids import CallId
from callwarden.sip.message import SipRequest, make_response
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.sip.tx_keys import new_tag

if TYPE_CHECKING:
    from callwarden.telephony.call import CallEvent, Leg


class DialogOwner(Protocol):
    """What owns a dialog registered with the application: it gets the dialog's requests and
    the ACKs of its 2xx (a call, or a monitoring supervisor's leg)."""

    def post(self, event: CallEvent) -> None:
        """Hand an event to the owner's task."""
        ...

    def on_ack(self, request: SipRequest) -> None:
        """The ACK for our 2xx."""
        ...


class CallTask(DialogOwner, Protocol):
    @property
    def call_id(self) -> CallId: ...

    @property
    def invite_tx(self) -> InviteServerTransaction: ...

    @property
    def inbound(self) -> Leg | None:
        """The caller's leg (for media timeouts)."""
        ...

    @property
    def outbound(self) -> Leg | None:
        """The other party's leg once there is one (for media timeouts)."""
        ...

    async def run(self) -> None: ...


class AnsweredHereTask:
    """The common part of a call task that callwarden answers itself, with no second leg (a
    dialled agent code, a dialled monitoring code): the INVITE it serves, the hook to call when
    it ends, and a final error response sent at most once."""

    def __init__(
        self, invite_tx: InviteServerTransaction, on_finished: Callable[[CallTask], None]
    ) -> None:
        self._invite_tx = invite_tx
        self._on_finished = on_finished

    @property
    def call_id(self) -> CallId:
        return CallId(self._invite_tx.request.call_id)

    @property
    def invite_tx(self) -> InviteServerTransaction:
        return self._invite_tx

    @property
    def outbound(self) -> Leg | None:
        return None

    def _respond_error(self, status: int, reason: str | None = None) -> None:
        """Answer the INVITE with a final error, unless a final response has gone already."""
        tx = self._invite_tx
        if tx.last_response is None or tx.last_response.status < 200:
            tx.respond(make_response(tx.request, status, reason, to_tag=new_tag()))
