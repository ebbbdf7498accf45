"""One simulated phone call: an INVITE session (RFC 3261 13-15) with its RTP.

:class:`OutgoingCall` is a customer's call (UAC): INVITE with an SDP offer (RFC 3264 5),
ringing, answer, talk, BYE or CANCEL (RFC 3261 9.1). :class:`IncomingCall` is an operator's
(UAS): 180 Ringing, 200 OK with the SDP answer (RFC 3264 6) retransmitted until the ACK
(13.3.1.4), or a rejection. Either side may hang up with BYE (15.1.1) and hears the other's.
Whoever owns a call learns how it went through ``on_answered`` and ``on_ended``.
"""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callwarden.simulator.rtp_session import RtpSession
from callwarden.sip.dialog import Dialog
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.invite_usage import InviteClientUsage, InviteServerUsage
from callwarden.sip.message import Headers, SipRequest, SipResponse, make_response
from callwarden.sip.sdp import (
    PCMU,
    NegotiatedMedia,
    SessionDescription,
    build_offer,
    negotiate_answer,
    parse_answer,
)
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.sip.tx_base import check_transition
from callwarden.sip.tx_keys import new_call_id, new_tag
from callwarden.sip.uri import SipUri

if TYPE_CHECKING:
    from callwarden.simulator.user_agent import UserAgent

__all__ = ["CallState", "EndReason", "IncomingCall", "OutgoingCall", "SipCall"]

logger = logging.getLogger(__name__)

SDP = "application/sdp"


class CallState(enum.Enum):
    """An INVITE session as a phone sees it."""

    SETUP = "setup"
    RINGING = "ringing"
    TALKING = "talking"
    ENDED = "ended"


_TRANSITIONS = {
    CallState.SETUP: frozenset({CallState.RINGING, CallState.TALKING, CallState.ENDED}),
    CallState.RINGING: frozenset({CallState.TALKING, CallState.ENDED}),
    CallState.TALKING: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset[CallState](),
}


class EndReason(enum.Enum):
    HUNG_UP = "hung up"
    REMOTE_HUNG_UP = "the other side hung up"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CallEnd:
    reason: EndReason
    status: int | None = None
    detail: str = ""


class SipCall:
    """What both directions share: state, dialog, media, BYE both ways."""

    def __init__(self, agent: UserAgent, media: RtpSession, call_id: str) -> None:
        self.agent = agent
        self.media = media
        self.call_id = call_id
        self.state = CallState.SETUP
        self.dialog: Dialog | None = None
        self.end: CallEnd | None = None
        self.created_at = agent.clock.now()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.on_answered: Callable[[SipCall], None] | None = None
        self.on_ended: Callable[[SipCall], None] | None = None

    def _transition(self, new: CallState) -> None:
        self.state = check_transition(_TRANSITIONS, self.state, new)

    def _start_media(self, negotiated: NegotiatedMedia) -> None:
        now = self.agent.clock.now()
        self.media.start(
            negotiated.remote_address, negotiated.remote_port, negotiated.payload_type, now
        )
        self.agent.ticker.add(self.media)

    def _answered(self, dialog: Dialog, negotiated: NegotiatedMedia) -> None:
        self.dialog = dialog
        self.agent.register_dialog(dialog, self)
        self.answered_at = self.agent.clock.now()
        self._transition(CallState.TALKING)
        self._start_media(negotiated)
        if self.on_answered is not None:
            self.on_answered(self)

    def _finish(self, end: CallEnd) -> None:
        if self.state is CallState.ENDED:
            return
        self._transition(CallState.ENDED)
        self.end = end
        self.ended_at = self.agent.clock.now()
        self.agent.ticker.discard(self.media)
        self.media.close()
        if self.dialog is not None:
            self.dialog.terminate()
            self.agent.unregister_dialog(self.dialog)
        self.agent.forget(self)
        if self.on_ended is not None:
            self.on_ended(self)

    def hang_up(self) -> None:
        """End the call from this side: BYE when talking (RFC 3261 15.1.1)."""
        if self.state is CallState.TALKING and self.dialog is not None:
            self._send_bye(self.dialog)
            self._finish(CallEnd(EndReason.HUNG_UP))

    def _send_bye(self, dialog: Dialog) -> None:
        try:
            bye = dialog.create_request("BYE")
            self.agent.layer.send_request(bye, dialog.next_hop(), _log_bye_response)
        except SipError as error:
            logger.warning("cannot send BYE (call %s): %s", self.call_id, error)

    def on_bye(self, request: SipRequest) -> None:
        """The other side hung up (its BYE is answered 200 by the user agent)."""
        self._finish(CallEnd(EndReason.REMOTE_HUNG_UP))

    def fail(self, detail: str) -> None:
        """End the call for a local reason (no RTP port, shutting down)."""
        self._finish(CallEnd(EndReason.FAILED, None, detail))

    def stop(self) -> None:
        """End the call whatever its state (the phone is shutting down)."""
        self.hang_up()
        self.fail("the phone stopped")


def _log_bye_response(response: SipResponse) -> None:
    logger.debug("BYE answered %s (call %s)", response.status, response.call_id)


class OutgoingCall(SipCall):
    """A call this phone places: :meth:`start` (after the media port is open), then wait for
    ``on_answered``; :meth:`cancel` while it rings, :meth:`hang_up` once answered."""

    def __init__(self, agent: UserAgent, media: RtpSession, *, caller: str, number: str) -> None:
        super().__init__(agent, media, new_call_id(agent.host))
        self.caller = caller
        self.number = number
        self._usage: InviteClientUsage | None = None
        self._offer: SessionDescription | None = None
        self._cancelled = False

    def start(self) -> None:
        """Send the INVITE with our offer (the RTP port must be open)."""
        if self.state is not CallState.SETUP:
            return
        agent = self.agent
        self._offer = build_offer(
            local_address=agent.host,
            local_port=self.media.port,
            session_id=secrets.randbelow(2**31),
            session_version=1,
            codecs=(PCMU,),
        )
        node = agent.node
        uri = SipUri("sip", self.number, None, node.host, node.port, (), ())
        headers = Headers()
        headers.add("Max-Forwards", "70")
        headers.add("From", f"<sip:{self.caller}@{agent.host}>;tag={new_tag()}")
        headers.add("To", f"<sip:{self.number}@{node.host}>")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", str(agent.contact(self.caller)))
        headers.add("User-Agent", agent.user_agent)
        headers.add("Content-Type", SDP)
        invite = SipRequest("INVITE", uri, headers, bytes(self._offer))
        self._usage = InviteClientUsage(
            agent.layer,
            invite,
            node,
            self._on_response,
            local_contact=agent.contact(self.caller),
            flow=node,
        )
        self._usage.start()

    def cancel(self) -> None:
        """Give up before the answer (RFC 3261 9.1); a 2xx that crosses it is hung up."""
        if self.state not in (CallState.SETUP, CallState.RINGING):
            return
        self._cancelled = True
        if self._usage is None:  # the INVITE has not gone out yet
            self._finish(CallEnd(EndReason.CANCELLED))
        else:
            self._usage.cancel()

    def stop(self) -> None:
        self.cancel()
        super().stop()

    def _on_response(self, response: SipResponse, dialog: Dialog | None) -> None:
        status = response.status
        if self.state is CallState.ENDED:
            if 200 <= status < 300 and dialog is not None:
                self._send_bye(dialog)  # a second fork or a late answer: not wanted
            return
        if status < 200:
            if status in (180, 183) and self.state is CallState.SETUP:
                self._transition(CallState.RINGING)
            return
        if status >= 300:
            reason = EndReason.CANCELLED if self._cancelled else EndReason.REJECTED
            self._finish(CallEnd(reason, status, response.reason))
            return
        assert dialog is not None  # the usage reports a 2xx only with its dialog
        if self._cancelled:
            self._send_bye(dialog)
            self._finish(CallEnd(EndReason.CANCELLED, status, "answered after CANCEL"))
            return
        try:
            assert self._offer is not None
            negotiated = parse_answer(self._offer, SessionDescription.parse(response.body))
        except SipError as error:  # SipParseError and OfferAnswerError are SipErrors
            logger.warning("unusable answer (call %s): %s", self.call_id, error)
            self._send_bye(dialog)
            self._finish(CallEnd(EndReason.FAILED, status, str(error)))
            return
        self._answered(dialog, negotiated)


class IncomingCall(SipCall):
    """A call offered to this phone. :meth:`ring` (opens media, sends 180), then
    :meth:`answer` or :meth:`reject`; the caller may CANCEL meanwhile."""

    def __init__(
        self, agent: UserAgent, media: RtpSession, transaction: InviteServerTransaction
    ) -> None:
        super().__init__(agent, media, transaction.request.call_id)
        self.transaction = transaction
        self.request = transaction.request
        self.local_tag = new_tag()
        self._answer: tuple[SessionDescription, NegotiatedMedia] | None = None
        self._answer_when_ready = False
        self._usage: InviteServerUsage | None = None

    @property
    def caller(self) -> str:
        uri = self.request.from_.uri
        return (uri.user or "anonymous") if isinstance(uri, SipUri) else "anonymous"

    async def ring(self) -> None:
        """Open the RTP port, check the offer, send 180 Ringing (488 for an unusable offer)."""
        try:
            offer = SessionDescription.parse(self.request.body)
        except SipParseError as error:
            self.reject(488, f"unusable offer: {error}")
            return
        try:
            await self.media.open(self.agent.host)
        except OSError as error:
            logger.warning("no RTP port for call %s: %s", self.call_id, error)
            self.reject(503, str(error))
            return
        if self.state is not CallState.SETUP:  # cancelled while the port was opened
            self.media.close()
            return
        try:
            self._answer = negotiate_answer(
                offer,
                (PCMU,),
                local_address=self.agent.host,
                local_port=self.media.port,
                session_id=secrets.randbelow(2**31),
                session_version=1,
            )
        except SipError as error:
            self.reject(488, str(error))
            return
        self.transaction.respond(self._response(180))
        self._transition(CallState.RINGING)
        if self._answer_when_ready:
            self.answer()

    def _response(self, status: int, reason: str | None = None) -> SipResponse:
        response = make_response(self.request, status, reason, to_tag=self.local_tag)
        if status < 300:
            response.headers.add("Contact", str(self.agent.contact()))
        return response

    def answer(self) -> None:
        """200 OK with the SDP answer, repeated until the ACK (RFC 3261 13.3.1.4)."""
        if self.state is CallState.SETUP:
            self._answer_when_ready = True  # still opening the port: answer once ringing
            return
        if self.state is not CallState.RINGING or self._answer is None:
            return
        description, negotiated = self._answer
        response = self._response(200)
        response.headers.add("Content-Type", SDP)
        response.body = bytes(description)
        dialog = Dialog.as_uas(
            self.request,
            response,
            local_contact=self.agent.contact(),
            flow=self.transaction.source.reply_destination(),
        )
        self._usage = InviteServerUsage(
            self.agent.layer, self.transaction, dialog, on_ack_timeout=self._on_ack_timeout
        )
        self._usage.answer(response)
        self._answered(dialog, negotiated)

    def reject(self, status: int, detail: str = "") -> None:
        """Refuse the call (486 Busy Here, 480, 488...) before answering it."""
        if self.state in (CallState.SETUP, CallState.RINGING):
            self.transaction.respond(self._response(status))
            self._finish(CallEnd(EndReason.REJECTED, status, detail))

    def on_cancel(self) -> None:
        """The caller gave up: the CANCEL was answered by the transaction layer; the INVITE
        gets 487 (RFC 3261 9.2)."""
        if self.state in (CallState.SETUP, CallState.RINGING):
            self.transaction.respond(self._response(487))
            self._finish(CallEnd(EndReason.CANCELLED, 487))

    def on_ack(self, request: SipRequest) -> None:
        if self._usage is not None:
            self._usage.receive_ack(request)

    def stop(self) -> None:
        self.reject(480, "the phone stopped")
        super().stop()

    def _on_ack_timeout(self, dialog: Dialog) -> None:
        self._finish(CallEnd(EndReason.FAILED, None, "no ACK for the 200 OK"))

    def _finish(self, end: CallEnd) -> None:
        if self._usage is not None:
            self._usage.stop()
        super()._finish(end)
