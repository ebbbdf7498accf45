"""One call through the B2BUA: an inbound leg (we are its UAS), an outbound leg (its UAC), and
the media bridge joining them (DESIGN.md idea 1). The caller is the bridge's `customer`, the
callee its `operator`; they hear each other under the `normal` matrix.

The call runs as one task consuming events (responses on the outbound leg, requests on either
dialog, CANCEL, media timeouts) from its own queue, so its state has a single writer. Each
leg's signalling is independent: a re-INVITE (hold/unhold) is answered on the leg that sent it
and changes only that leg's media; a BYE on one leg ends the other.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from callwarden.domain.cdr import CdrLeg, Disposition, HangupSide, LegRole, NewCdr
from callwarden.domain.ids import CallId
from callwarden.media.control import LocalMedia, MediaError
from callwarden.sip.addressing import TransportName
from callwarden.sip.client_transaction import InviteClientTransaction
from callwarden.sip.dialog import Dialog
from callwarden.sip.digest import DigestError, answer_challenge, select_challenge
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.headers import NameAddress
from callwarden.sip.message import SipRequest, SipResponse, make_response
from callwarden.sip.sdp import (
    DEFAULT_CODECS,
    NegotiatedMedia,
    build_offer,
    negotiate_answer,
    parse_answer,
)
from callwarden.sip.server_transaction import InviteServerTransaction, ServerTransaction
from callwarden.sip.session_description import SessionDescription
from callwarden.sip.tx_keys import new_call_id, new_tag
from callwarden.telephony.call_context import CallerInfo, CallServices, OutboundTarget

logger = logging.getLogger(__name__)

SDP = "application/sdp"


class CallState(enum.Enum):
    SETUP = "setup"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


_TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.SETUP: frozenset({CallState.RINGING, CallState.ENDED}),
    CallState.RINGING: frozenset({CallState.ANSWERED, CallState.ENDED}),
    CallState.ANSWERED: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


class IllegalCallTransition(RuntimeError):  # noqa: N818 - named after what it is
    pass


@dataclass(eq=False)
class Leg:
    """One SIP dialog of the call and its RTP endpoint."""

    role: LegRole
    media: LocalMedia
    latch_host: str | None
    uri: str
    session_id: int = field(default_factory=lambda: secrets.randbelow(2**31))
    session_version: int = 1
    dialog: Dialog | None = None
    answer: bytes = b""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    sip_status: int | None = None

    @property
    def endpoint_id(self) -> str:
        return self.media.endpoint_id


# ---- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    response: SipResponse


@dataclass(frozen=True, slots=True)
class InboundCancel:
    pass


@dataclass(frozen=True, slots=True)
class InDialogRequest:
    leg: Leg
    request: SipRequest
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class DialogAck:
    leg: Leg


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call from outside the SIP dialogs (media timeout, lost ACK, shutdown)."""

    cause: str


CallEvent = OutboundResponse | InboundCancel | InDialogRequest | DialogAck | Hangup


class _CallEnded(Exception):  # noqa: N818 - control flow inside the call task
    pass


def _remote_direction(negotiated: NegotiatedMedia) -> str:
    """What the remote side does, as the media engine wants it (ours mirrored)."""
    return {"sendonly": "recvonly", "recvonly": "sendonly"}.get(
        negotiated.direction, negotiated.direction
    )


def relayed_failure(status: int) -> int:
    """The status the caller gets for the callee's final failure (RFC 3261 16.7 in spirit):
    hop-specific answers (authentication, extensions, redirects) are not passed on."""
    if status in (401, 407, 420, 421, 423, 494):
        return 503
    if 300 <= status < 400 or status == 408:
        return 480
    if status == 503:
        return 500
    return status


class Call:
    """A B2BUA call, created by the application for an authenticated, routed INVITE."""

    def __init__(
        self,
        services: CallServices,
        invite_tx: InviteServerTransaction,
        caller: CallerInfo,
        target: OutboundTarget,
        *,
        on_finished: Callable[[Call], None],
    ) -> None:
        self.services = services
        self.invite_tx = invite_tx
        self.invite = invite_tx.request
        self.caller = caller
        self.target = target
        self.call_id = CallId(self.invite.call_id)
        self.state = CallState.SETUP
        self._on_finished = on_finished
        self._events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self.inbound_tag = new_tag()
        self.inbound: Leg | None = None
        self.outbound: Leg | None = None
        self.bridge_id: str | None = None
        self._outbound_invite: SipRequest | None = None
        self._outbound_offer: SessionDescription | None = None
        self._outbound_tx: InviteClientTransaction | None = None
        self._authenticated_once = False
        self._ringing_sent = False
        self._cancelled = False
        self._ack_received = False
        self._retransmit_timer: asyncio.TimerHandle | None = None
        self.started_at = datetime.now(UTC)
        self.answered_at: datetime | None = None
        self.final_status: int | None = None
        self.hangup_side: HangupSide | None = None
        self.hangup_cause: str | None = None

    def post(self, event: CallEvent) -> None:
        """Hand an event to the call task (called on the event loop)."""
        self._events.put_nowait(event)

    def _transition(self, new: CallState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise IllegalCallTransition(f"call {self.call_id}: {self.state.name} -> {new.name}")
        self.state = new

    # ---- the call task ---------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._setup()
            await self._ringing()
            await self._talking()
        except _CallEnded:
            pass
        except Exception:
            logger.exception("call %s failed", self.call_id)
            self.hangup_cause = self.hangup_cause or "internal error"
            self._fail_inbound(500)
            self._cancel_outbound()
            self._hang_up(HangupSide.SYSTEM, "internal error")
        finally:
            self.state = CallState.ENDED
            self._stop_retransmitting()
            await self._release_media()
            self._write_cdr()
            self._on_finished(self)

    async def _next_event(self, wait: float | None) -> CallEvent | None:
        try:
            async with asyncio.timeout(wait):
                return await self._events.get()
        except TimeoutError:
            return None

    def _fail_inbound(self, status: int, reason: str | None = None) -> None:
        """A final non-2xx to the caller, if the INVITE is still unanswered."""
        if self.final_status is not None:
            return
        self.final_status = status
        self.invite_tx.respond(make_response(self.invite, status, reason, to_tag=self.inbound_tag))

    def _end(self, status: int, reason: str | None = None) -> _CallEnded:
        self._fail_inbound(status, reason)
        return _CallEnded()

    # ---- setup -------------------------------------------------------------------------------

    async def _setup(self) -> None:
        services = self.services
        invite = self.invite
        if invite.content_type != SDP or not invite.body:
            raise self._end(488, "Offer Required")
        try:
            offer = SessionDescription.parse(invite.body)
        except SipParseError as error:
            logger.info("call %s: bad SDP offer: %s", self.call_id, error)
            raise self._end(400, "Bad SDP") from None
        media = services.media
        try:
            # The bridge first: a media worker process owns a bridge with its endpoints.
            self.bridge_id = await media.create_bridge()
            inbound_media = await media.create_endpoint(bridge_id=self.bridge_id)
            outbound_media = await media.create_endpoint(bridge_id=self.bridge_id)
        except (MediaError, OSError) as error:
            logger.error("call %s: no media endpoint: %s", self.call_id, error)
            raise self._end(503) from None
        self.inbound = Leg(
            LegRole.CALLER, inbound_media, self.caller.latch_host, str(invite.from_.uri)
        )
        self.outbound = Leg(
            LegRole.CALLEE, outbound_media, self.target.latch_host, str(self.target.request_uri)
        )
        try:
            answer, negotiated = negotiate_answer(
                offer,
                DEFAULT_CODECS,
                local_address=services.sdp_address,
                local_port=inbound_media.rtp_port,
                session_id=self.inbound.session_id,
                session_version=self.inbound.session_version,
            )
        except SipError as error:
            logger.info("call %s: %s", self.call_id, error)
            raise self._end(error.status, error.reason) from None
        self.inbound.answer = bytes(answer)
        await self._apply_remote(self.inbound, negotiated)
        await media.add_to_bridge(self.bridge_id, inbound_media.endpoint_id, "customer")
        await media.add_to_bridge(self.bridge_id, outbound_media.endpoint_id, "operator")
        await media.set_mode(self.bridge_id, "normal")
        self._send_outbound_invite(negotiated.encoding)
        self._transition(CallState.RINGING)

    async def _apply_remote(self, leg: Leg, negotiated: NegotiatedMedia) -> None:
        await self.services.media.set_remote(
            leg.endpoint_id,
            host=negotiated.remote_address,
            port=negotiated.remote_port,
            payload_type=negotiated.payload_type,
            encoding=negotiated.encoding,
            dtmf_payload_type=negotiated.dtmf_payload_type,
            direction=_remote_direction(negotiated),
        )

    def _local_contact(self, transport: TransportName) -> NameAddress:
        return NameAddress(None, self.services.contact_uri(transport), ())

    def _send_outbound_invite(self, preferred_encoding: str) -> None:
        """Offer the caller's codec first, so both legs can share it and the bridge forwards
        payloads unchanged (the fast path)."""
        assert self.outbound is not None
        services = self.services
        target = self.target
        codecs = sorted(DEFAULT_CODECS, key=lambda codec: codec.encoding != preferred_encoding)
        offer = build_offer(
            local_address=services.sdp_address,
            local_port=self.outbound.media.rtp_port,
            session_id=self.outbound.session_id,
            session_version=self.outbound.session_version,
            codecs=codecs,
        )
        request = SipRequest("INVITE", target.request_uri)
        headers = request.headers
        headers.add("Max-Forwards", str(max(0, (self.invite.max_forwards or 70) - 1)))
        headers.add("From", f"{target.from_address};tag={new_tag()}")
        headers.add("To", target.to_address)
        headers.add("Call-ID", new_call_id(services.sdp_address))
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", str(self._local_contact(target.destination.transport)))
        headers.add("Allow", services.allow)
        headers.add("User-Agent", services.user_agent)
        headers.add("Content-Type", SDP)
        request.body = bytes(offer)
        self._outbound_offer = offer
        self._outbound_invite = request
        self._outbound_tx = services.start_invite(self, request, target.destination)

    # ---- ringing -----------------------------------------------------------------------------

    async def _ringing(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.services.ring_timeout
        while self.state is CallState.RINGING:
            event = await self._next_event(max(0.0, deadline - loop.time()))
            if event is None:
                logger.info("call %s: no answer in time", self.call_id)
                self.hangup_side = HangupSide.SYSTEM
                self.hangup_cause = "no answer"
                self._cancel_outbound()
                raise self._end(480, "No Answer")
            if isinstance(event, OutboundResponse):
                await self._on_outbound_response(event.response)
            elif isinstance(event, InboundCancel):
                self._cancelled = True
                self.hangup_side = HangupSide.CALLER
                self.hangup_cause = "cancelled"
                self._cancel_outbound()
                raise self._end(487)
            elif isinstance(event, InDialogRequest):
                event.transaction.respond(make_response(event.request, 491, "Request Pending"))
            elif isinstance(event, Hangup):
                self.hangup_side = HangupSide.SYSTEM
                self.hangup_cause = event.cause
                self._cancel_outbound()
                raise self._end(503)

    def _cancel_outbound(self) -> None:
        if self._outbound_tx is not None:
            self._outbound_tx.cancel()

    async def _on_outbound_response(self, response: SipResponse) -> None:
        status = response.status
        if status < 200:
            if status != 100 and not self._ringing_sent:
                self._ringing_sent = True
                ringing = make_response(self.invite, 180, to_tag=self.inbound_tag)
                ringing.headers.add(
                    "Contact", str(self._local_contact(self.invite_tx.source.transport))
                )
                self.invite_tx.respond(ringing)
            return
        if status < 300:
            await self._on_outbound_answered(response)
            return
        if status in (401, 407) and self._retry_with_credentials(response):
            return
        assert self.outbound is not None
        self.outbound.sip_status = status
        self.hangup_side = HangupSide.CALLEE
        self.hangup_cause = f"{status} {response.reason}"[:200]
        relayed = relayed_failure(status)
        raise self._end(relayed, response.reason if relayed == status else None)

    def _retry_with_credentials(self, response: SipResponse) -> bool:
        """Answer a configured trunk's challenge, once per call; phones' challenges never
        (SIP digest leak: we only authenticate to peers we have credentials for)."""
        credentials = self.target.trunk_credentials
        invite = self._outbound_invite
        if credentials is None or self._authenticated_once or invite is None:
            return False
        self._authenticated_once = True
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        challenge = select_challenge(response.headers.get_all(header))
        if challenge is None:
            return False
        username, password = credentials
        try:
            authorization = answer_challenge(
                challenge,
                "INVITE",
                str(invite.uri),
                username,
                password,
                cnonce=secrets.token_hex(8),
            )
        except (DigestError, SipParseError, ValueError) as error:
            logger.warning("call %s: cannot answer the trunk's challenge: %s", self.call_id, error)
            return False
        retry = SipRequest("INVITE", invite.uri, invite.headers.copy(), invite.body)
        retry.headers.remove("Via")
        retry.headers.set("CSeq", f"{invite.cseq.number + 1} INVITE")
        retry.headers.set(
            "Authorization" if response.status == 401 else "Proxy-Authorization", authorization
        )
        self._outbound_invite = retry
        self._outbound_tx = self.services.start_invite(self, retry, self.target.destination)
        return True

    async def _on_outbound_answered(self, response: SipResponse) -> None:
        outbound, inbound = self.outbound, self.inbound
        invite, offer = self._outbound_invite, self._outbound_offer
        assert outbound is not None and inbound is not None
        assert invite is not None and offer is not None
        services = self.services
        dialog = Dialog.as_uac(
            invite,
            response,
            local_contact=self._local_contact(self.target.destination.transport),
            flow=self.target.flow,
        )
        outbound.dialog = dialog
        services.send_ack(dialog.create_ack(invite), dialog.next_hop())
        services.register_dialog(dialog, self, outbound)
        outbound.sip_status = response.status
        if self._cancelled:
            self._send_bye(outbound)
            return
        try:
            negotiated = parse_answer(offer, SessionDescription.parse(response.body))
        except SipError as error:
            logger.info("call %s: callee's SDP answer unusable: %s", self.call_id, error)
            self._send_bye(outbound)
            self.hangup_side = HangupSide.CALLEE
            self.hangup_cause = "callee SDP unusable"
            raise self._end(488) from None
        await self._apply_remote(outbound, negotiated)
        now = datetime.now(UTC)
        outbound.answered_at = inbound.answered_at = self.answered_at = now
        media = services.media
        for leg in (inbound, outbound):
            await media.enable(
                leg.endpoint_id, latch=leg.latch_host is not None, latch_host=leg.latch_host
            )
        ok = make_response(self.invite, 200, to_tag=self.inbound_tag)
        ok.headers.add("Contact", str(self._local_contact(self.invite_tx.source.transport)))
        ok.headers.add("Allow", services.allow)
        ok.headers.add("Content-Type", SDP)
        ok.body = inbound.answer
        inbound.dialog = Dialog.as_uas(
            self.invite,
            ok,
            local_contact=self._local_contact(self.invite_tx.source.transport),
            flow=self.caller.flow,
        )
        services.register_dialog(inbound.dialog, self, inbound)
        self.final_status = 200
        inbound.sip_status = 200
        self.invite_tx.respond(ok)
        self._start_retransmitting()
        self._transition(CallState.ANSWERED)
        logger.info("call %s answered", self.call_id)

    # ---- 2xx retransmission until the ACK (RFC 3261 13.3.1.4) ----------------------------

    def _start_retransmitting(self) -> None:
        if self.invite_tx.reliable:
            return
        loop = asyncio.get_running_loop()
        self._retransmit_deadline = loop.time() + 64 * self.services.t1
        self._retransmit_interval = self.services.t1
        self._retransmit_timer = loop.call_later(self._retransmit_interval, self._retransmit)

    def _retransmit(self) -> None:
        self._retransmit_timer = None
        if self._ack_received or self.state is not CallState.ANSWERED:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._retransmit_deadline:
            logger.warning("call %s: no ACK for the 200 OK, ending the call", self.call_id)
            self.post(Hangup("no ACK"))
            return
        self.invite_tx.retransmit_final()
        self._retransmit_interval = min(self._retransmit_interval * 2, self.services.t2)
        self._retransmit_timer = loop.call_later(self._retransmit_interval, self._retransmit)

    def _stop_retransmitting(self) -> None:
        if self._retransmit_timer is not None:
            self._retransmit_timer.cancel()
            self._retransmit_timer = None

    # ---- talking -----------------------------------------------------------------------------

    async def _talking(self) -> None:
        while self.state is CallState.ANSWERED:
            event = await self._next_event(None)
            if isinstance(event, InDialogRequest):
                await self._on_in_dialog_request(event)
            elif isinstance(event, DialogAck):
                if event.leg is self.inbound:
                    self._ack_received = True
                    self._stop_retransmitting()
            elif isinstance(event, OutboundResponse):
                self._on_late_outbound_response(event.response)
            elif isinstance(event, Hangup):
                self._hang_up(HangupSide.SYSTEM, event.cause)

    def _on_late_outbound_response(self, response: SipResponse) -> None:
        """A retransmitted 2xx from the callee (our ACK was lost): acknowledge it again."""
        outbound, invite = self.outbound, self._outbound_invite
        if outbound is None or outbound.dialog is None or invite is None:
            return
        if 200 <= response.status < 300 and response.to.tag == outbound.dialog.remote_tag:
            self.services.send_ack(outbound.dialog.create_ack(invite), outbound.dialog.next_hop())

    async def _on_in_dialog_request(self, event: InDialogRequest) -> None:
        leg, request, tx = event.leg, event.request, event.transaction
        method = request.method
        if method == "BYE":
            tx.respond(make_response(request, 200))
            leg.ended_at = datetime.now(UTC)
            if leg.dialog is not None:
                leg.dialog.terminate()
            side = HangupSide.CALLER if leg is self.inbound else HangupSide.CALLEE
            self._hang_up(side, "normal clearing")
        elif method == "INVITE":
            await self._on_reinvite(leg, request, tx)
        elif method in ("OPTIONS", "INFO", "UPDATE") and not request.body:
            tx.respond(make_response(request, 200))
        else:
            response = make_response(request, 405)
            response.headers.add("Allow", self.services.allow)
            tx.respond(response)

    async def _on_reinvite(self, leg: Leg, request: SipRequest, tx: ServerTransaction) -> None:
        """Hold, unhold or a new media address on one leg (RFC 3264 8), answered there."""
        dialog = leg.dialog
        assert dialog is not None
        dialog.refresh_target(request)
        if request.body:
            try:
                offer = SessionDescription.parse(request.body)
                answer, negotiated = negotiate_answer(
                    offer,
                    DEFAULT_CODECS,
                    local_address=self.services.sdp_address,
                    local_port=leg.media.rtp_port,
                    session_id=leg.session_id,
                    session_version=leg.session_version + 1,
                )
            except SipError as error:
                tx.respond(make_response(request, error.status, error.reason))
                return
            leg.session_version += 1
            leg.answer = bytes(answer)
            await self._apply_remote(leg, negotiated)
            logger.info(
                "call %s: %s leg %s",
                self.call_id,
                leg.role.value,
                "on hold" if negotiated.is_hold else "active",
            )
        ok = make_response(request, 200)
        ok.headers.add("Contact", str(dialog.local_contact))
        ok.headers.add("Content-Type", SDP)
        ok.body = leg.answer
        tx.respond(ok)

    def _send_bye(self, leg: Leg) -> None:
        dialog = leg.dialog
        if dialog is None or leg.ended_at is not None:
            return
        leg.ended_at = datetime.now(UTC)
        try:
            bye = dialog.create_request("BYE")
        except SipError:
            return
        dialog.terminate()
        self.services.send_bye(bye, dialog.next_hop())

    def _hang_up(self, side: HangupSide, cause: str) -> None:
        if self.hangup_side is None:
            self.hangup_side = side
        if self.hangup_cause is None:
            self.hangup_cause = cause
        for leg in (self.inbound, self.outbound):
            if leg is not None:
                self._send_bye(leg)
        if self.state is not CallState.ENDED:
            self._transition(CallState.ENDED)

    # ---- teardown ----------------------------------------------------------------------------

    async def _release_media(self) -> None:
        media = self.services.media
        legs = [leg for leg in (self.inbound, self.outbound) if leg is not None]
        for leg in legs:
            if leg.dialog is not None:
                self.services.unregister_dialog(leg.dialog)
        try:
            if self.bridge_id is not None:
                await media.close_bridge(self.bridge_id)
            for leg in legs:
                await media.close_endpoint(leg.endpoint_id)
        except MediaError:
            logger.exception("call %s: releasing media", self.call_id)

    def _write_cdr(self) -> None:
        ended = datetime.now(UTC)
        legs = tuple(
            CdrLeg(
                role=leg.role,
                sip_call_id=leg.dialog.call_id if leg.dialog else self.invite.call_id,
                uri=leg.uri[:500],
                started_at=leg.started_at,
                answered_at=leg.answered_at,
                ended_at=max(leg.ended_at or ended, leg.answered_at or leg.started_at),
                sip_status=leg.sip_status,
                user_id=self.caller.user_id if leg.role is LegRole.CALLER else self.target.user_id,
                trunk_id=self.caller.trunk_id
                if leg.role is LegRole.CALLER
                else self.target.trunk_id,
            )
            for leg in (self.inbound, self.outbound)
            if leg is not None
        )
        self.services.write_cdr(
            NewCdr(
                call_id=self.call_id,
                direction=self.caller.direction,
                caller=self.caller.label,
                callee=self.target.label,
                dialled_number=self.caller.dialled,
                started_at=self.started_at,
                answered_at=self.answered_at,
                ended_at=max(ended, self.answered_at or self.started_at),
                disposition=self._disposition(),
                route_kind=self.target.route_kind,
                hangup_cause=self.hangup_cause,
                sip_status=self.final_status,
                hangup_side=self.hangup_side,
                caller_user_id=self.caller.user_id,
                callee_user_id=self.target.user_id,
                trunk_id=self.target.trunk_id or self.caller.trunk_id,
                team_id=self.caller.team_id,
                legs=legs,
            )
        )

    def _disposition(self) -> Disposition:
        if self.answered_at is not None:
            return Disposition.ANSWERED
        if self._cancelled:
            return Disposition.CANCELLED
        status = self.final_status or 500
        if status in (486, 600):
            return Disposition.BUSY
        if status in (408, 480, 487):
            return Disposition.NO_ANSWER
        return Disposition.FAILED
