"""Ringing an operator for a queued call: one INVITE per registered phone of the agent (they
ring in parallel, the first to answer wins, RFC 3261 16.7 in spirit), on an RTP endpoint of
the call's bridge that joins the bridge only once the agent answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from callwarden.domain.ids import UserId
from callwarden.sip.dialog import Dialog
from callwarden.sip.headers import NameAddress
from callwarden.sip.invite_usage import InviteClientUsage
from callwarden.sip.message import SipRequest, SipResponse
from callwarden.sip.session_description import SessionDescription
from callwarden.sip.transaction import TransactionLayer
from callwarden.sip.tx_keys import new_call_id, new_tag
from callwarden.telephony.call import Leg
from callwarden.telephony.call_context import OutboundTarget
from callwarden.telephony.outbound import Attempt

logger = logging.getLogger(__name__)

SDP = "application/sdp"


@dataclass(eq=False)
class AgentOffer:
    """The offer of a queued call to one agent (or, `direct`, to a user as an overflow
    target: not the ACD's offer, so nothing is reported to it)."""

    agent_id: UserId
    leg: Leg
    sdp_offer: SessionDescription
    direct: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    withdrawn: bool = False
    answered: bool = False

    @property
    def pending(self) -> bool:
        return any(attempt.pending for attempt in self.attempts)

    def cancel_pending(self, keep: Attempt | None = None) -> None:
        for attempt in self.attempts:
            if attempt is not keep and attempt.pending:
                attempt.usage.cancel()


def agent_invite(
    target: OutboundTarget,
    body: bytes,
    *,
    contact: NameAddress,
    allow: str,
    user_agent: str,
    call_id_host: str,
) -> SipRequest:
    """A new INVITE toward one phone of the agent (a fresh dialog, RFC 3261 8.1.1)."""
    request = SipRequest("INVITE", target.request_uri)
    headers = request.headers
    headers.add("Max-Forwards", "70")
    headers.add("From", f"{target.from_address};tag={new_tag()}")
    headers.add("To", target.to_address)
    headers.add("Call-ID", new_call_id(call_id_host))
    headers.add("CSeq", "1 INVITE")
    headers.add("Contact", str(contact))
    headers.add("Allow", allow)
    headers.add("User-Agent", user_agent)
    headers.add("Content-Type", SDP)
    request.body = body
    return request


def start_attempt(
    layer: TransactionLayer,
    target: OutboundTarget,
    invite: SipRequest,
    contact: NameAddress,
    on_response: Callable[[Attempt, SipResponse, Dialog | None], None],
) -> Attempt:
    """Send `invite` to `target`; responses reach `on_response` with their attempt."""

    def relay(response: SipResponse, dialog: Dialog | None) -> None:
        on_response(attempt, response, dialog)

    usage = InviteClientUsage(
        layer, invite, target.destination, relay, local_contact=contact, flow=target.flow
    )
    attempt = Attempt(target, usage)
    usage.start()
    return attempt
