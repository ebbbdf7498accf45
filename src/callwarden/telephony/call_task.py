"""What the SIP application needs of any call it runs as a task: the two-party B2BUA `Call`
and the queue call (`QueueCall`) both have this shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from callwarden.domain.ids import CallId
from callwarden.sip.message import SipRequest
from callwarden.sip.server_transaction import InviteServerTransaction

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
