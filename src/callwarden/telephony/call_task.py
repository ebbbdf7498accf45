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


class CallTask(Protocol):
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

    def post(self, event: CallEvent) -> None:
        """Hand an event to the call's task."""
        ...

    def on_ack(self, request: SipRequest) -> None:
        """The caller's ACK for our 2xx."""
        ...

    async def run(self) -> None: ...
