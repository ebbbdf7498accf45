"""One call through the B2BUA: an inbound leg (we are its UAS), outbound INVITEs to every target
(a user's phones ring in parallel; the first to answer becomes the outbound leg), and the media
bridge joining the two legs (DESIGN.md idea 1): the caller is the bridge's `customer`, the
callee its `operator` (swapped when the call's recording says the caller is the operator: an
operator's outbound call), and they hear each other under the `normal` matrix.

The call runs as one task consuming events (responses to the outbound INVITEs, requests on
either dialog, CANCEL, media timeouts) from its own queue, so its state has a single writer.
Each leg's signalling is independent: a re-INVITE (hold/unhold) is answered on the leg that
sent it and changes only that leg's media; a BYE on one leg ends the other. An outbound answer
that comes too late (after CANCEL, a timeout or another phone's answer) is acknowledged and
hung up at once (RFC 3261 9.1, 13.2.2.4), even after the call task has ended.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from callwarden.domain.cdr import CdrLeg, Disposition, HangupSide, LegRole, NewCdr
from callwarden.domain.ids import CallId, UserId
from callwarden.media.control import LocalMedia, MediaError
from callwarden.media.srtp import SrtpKeys
from callwarden.sip.addressing import TransportName
from callwarden.sip.dialog import Dialog
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.headers import NameAddress
from callwarden.sip.invite_usage import InviteClientUsage, InviteServerUsage
from callwarden.sip.message import SipRequest, SipResponse, make_response
from callwarden.sip.sdes import SAVP
from callwarden.sip.sdp import (
    DEFAULT_CODECS,
    NegotiatedMedia,
    SdesKeys,
    build_offer,
    negotiate_answer,
    offer_crypto,
    parse_answer,
)
from callwarden.sip.server_transaction import InviteServerTransaction, ServerTransaction
from callwarden.sip.session_description import SessionDescription
from callwarden.sip.tx_keys import new_call_id, new_tag
from callwarden.telephony.call_context import CallerInfo, CallServices, OutboundTarget
from callwarden.telephony.outbound import (
    Attempt,
    authenticated_retry,
    best_failure,
    relayed_failure,
)

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
    started_at: datetime
    session_id: int = field(default_factory=lambda: secrets.randbelow(2**31))
    session_version: int = 1
    dialog: Dialog | None = None
    answer: bytes = b""
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    sip_status: int | None = None
    srtp: bool = False
    """Its endpoint speaks SRTP when signalling agreed keys (created so only over TLS)."""
    require_srtp: bool = False
    """The media policy forbids plain RTP on this leg, re-INVITEs included."""
    sdes: SdesKeys | None = None
    """The SRTP keys agreed last (a re-INVITE keeps our key)."""

    @property
    def endpoint_id(self) -> str:
        return self.media.endpoint_id


# ---- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    attempt: Attempt
    response: SipResponse
    dialog: Dialog | None


@dataclass(frozen=True, slots=True)
class InboundCancel:
    pass


@dataclass(frozen=True, slots=True)
class InDialogRequest:
    leg: Leg
    request: SipRequest
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call from outside its dialogs (media timeout, lost ACK, shutdown)."""

    cause: str


@dataclass(frozen=True, slots=True)
class ReleaseOperator:
    """A supervisor took the call over: hang up the operator's leg (the one on the media
    endpoint `operator_endpoint`: the callee's, or the caller's on an operator's own outbound
    call), keep the customer's."""

    cause: str
    operator_endpoint: str | None


CallEvent = OutboundResponse | InboundCancel | InDialogRequest | Hangup | ReleaseOperator


def monitor_cdr_legs(legs: list[tuple[Leg, UserId]], ended: datetime) -> tuple[CdrLeg, ...]:
    """The CDR legs of the supervisors who monitored a call (role `monitor`)."""
    return tuple(
        CdrLeg(
            role=LegRole.MONITOR,
            sip_call_id=leg.dialog.call_id if leg.dialog else "",
            uri=leg.uri[:500],
            started_at=leg.started_at,
            answered_at=leg.answered_at,
            ended_at=max(leg.ended_at or ended, leg.answered_at or leg.started_at),
            sip_status=leg.sip_status,
            user_id=user_id,
        )
        for leg, user_id in legs
    )


class _CallEnded(Exception):  # noqa: N818 - control flow inside the call task
    pass


async def _all(*commands: Awaitable[None]) -> None:
    """Run media commands together (an engine carries out one caller's commands in the order
    they were given) and raise the first failure once every one has finished."""
    for result in await asyncio.gather(*commands, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result


def srtp_keys(negotiated: NegotiatedMedia) -> SrtpKeys | None:
    """The SDES keys signalling agreed, as the media engine takes them."""
    keys = negotiated.srtp
    if keys is None:
        return None
    return SrtpKeys(keys.suite.value, send_key=keys.local_key, receive_key=keys.remote_key)


def offers_srtp(offer: SessionDescription) -> bool:
    """Whether an offer has an RTP/SAVP audio stream (its leg needs an SRTP endpoint)."""
    return any(media.media == "audio" and media.proto == SAVP for media in offer.media)


def _remote_direction(negotiated: NegotiatedMedia) -> str:
    """What the remote side does, as the media engine wants it (ours mirrored)."""
    return {"sendonly": "recvonly", "recvonly": "sendonly"}.get(
        negotiated.direction, negotiated.direction
    )


@dataclass(frozen=True, slots=True)
class _LateAnswers:
    """Hangs up answers nobody wants any more: after CANCEL, a timeout, another phone's answer
    or the end of the call (the INVITE usage has already ACKed them, RFC 3261 13.2.2.4).

    It outlives its call as the callback of the call's outbound INVITE usages, which linger
    for Timer M; holding only what a BYE needs lets reference counting free the call itself.
    """

    services: CallServices
    call_id: CallId

    def __call__(self, response: SipResponse, dialog: Dialog | None) -> None:
        if 200 <= response.status < 300 and dialog is not None:
            self.hang_up(dialog)

    def hang_up(self, dialog: Dialog) -> None:
        logger.info("call %s: hanging up a late answer from %s", self.call_id, dialog.remote_uri)
        try:
            bye = dialog.create_request("BYE")
        except SipError:
            return
        dialog.terminate()
        self.services.send_bye(bye, dialog.next_hop())


class CallRecording(Protocol):
    """Recording of direct calls by policy (`callwarden.telephony.direct_recording`)."""

    def bridge_roles(self, call: Call) -> tuple[str, str]:
        """The bridge roles of the (caller, callee) legs: the operator's side is `operator`."""
        ...

    async def answered(self, call: Call) -> None: ...

    async def ended(self, call: Call) -> None: ...


class Call:
    """A B2BUA call, created by the application for an authenticated, routed INVITE."""

    def __init__(
        self,
        services: CallServices,
        invite_tx: InviteServerTransaction,
        caller: CallerInfo,
        targets: list[OutboundTarget],
        *,
        on_finished: Callable[[Call], None],
        recording: CallRecording | None = None,
    ) -> None:
        if not targets:
            raise ValueError("a call needs at least one target")
        self.services = services
        self.invite_tx = invite_tx
        self.invite = invite_tx.request
        self.caller = caller
        self.targets = targets
        self.call_id = CallId(self.invite.call_id)
        self._late_answers = _LateAnswers(services, self.call_id)
        self.state = CallState.SETUP
        self._on_finished = on_finished
        self._events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self.inbound_tag = new_tag()
        self.inbound: Leg | None = None
        self.outbound: Leg | None = None
        self.bridge_id: str | None = None
        self.attempts: list[Attempt] = []
        self.winner: Attempt | None = None
        self._offer: SessionDescription | None = None
        self._srtp_offer: SessionDescription | None = None
        self._inbound_usage: InviteServerUsage | None = None
        self._ringing_sent = False
        self._cancelled = False
        self.started_at = services.now()
        self.answered_at: datetime | None = None
        self.final_status: int | None = None
        self.hangup_side: HangupSide | None = None
        self.hangup_cause: str | None = None
        #: Supervisors' legs (added by monitoring), for the CDR.
        self.monitor_legs: list[tuple[Leg, UserId]] = []
        self._recording = recording

    @property
    def target(self) -> OutboundTarget:
        """The target that answered, else the first one (they share user and route)."""
        return self.winner.target if self.winner is not None else self.targets[0]

    def post(self, event: CallEvent) -> None:
        """Hand an event to the call task (called on the event loop)."""
        self._events.put_nowait(event)

    def on_ack(self, request: SipRequest) -> None:
        """The caller's ACK for our 2xx (RFC 3261 13.3.1.4): stop retransmitting it."""
        if self._inbound_usage is not None:
            self._inbound_usage.receive_ack(request)

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
            self._fail_inbound(500)
            self._hang_up(HangupSide.SYSTEM, "internal error")
        finally:
            self.state = CallState.ENDED
            for attempt in self.attempts:
                if attempt.pending:
                    attempt.usage.cancel()
            if self._inbound_usage is not None:
                self._inbound_usage.stop()
            await self._tell_recording(answered=False)
            await self._release_media()
            self._write_cdr()
            self._on_finished(self)
            logger.info(
                "call %s ended: %s -> %s, %s (%s)",
                self.call_id,
                self.caller.label,
                self.target.label,
                self._disposition().value,
                self.hangup_cause or self.final_status,
            )
            self._let_go()

    def _let_go(self) -> None:
        """Break the reference cycles between this ended call and the SIP objects that call
        back into it, so reference counting frees it now rather than a full garbage collection
        much later: the outbound INVITE usages (alive until Timer M) keep only the late-answer
        hang-up, the inbound usage (stopped) forgets its ACK timeout."""
        for attempt in self.attempts:
            attempt.usage.on_response = self._late_answers
        if self._inbound_usage is not None:
            self._inbound_usage.on_ack_timeout = None

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
        inbound_srtp = self.caller.sdes and offers_srtp(offer)
        outbound_srtp = any(target.srtp for target in self.targets)
        inbound_media, outbound_media = await self._create_endpoints(inbound_srtp, outbound_srtp)
        now = services.now()
        self.inbound = Leg(
            LegRole.CALLER,
            inbound_media,
            self.caller.latch_host,
            str(invite.from_.uri),
            now,
            srtp=inbound_srtp,
            require_srtp=self.caller.require_srtp,
        )
        self.outbound = Leg(
            LegRole.CALLEE,
            outbound_media,
            self.targets[0].latch_host,
            str(self.targets[0].request_uri),
            now,
            srtp=outbound_srtp,
            require_srtp=outbound_srtp,
        )
        try:
            answer, negotiated = negotiate_answer(
                offer,
                DEFAULT_CODECS,
                local_address=services.sdp_address,
                local_port=inbound_media.rtp_port,
                session_id=self.inbound.session_id,
                session_version=self.inbound.session_version,
                accept_sdes=inbound_srtp,
                require_srtp=self.caller.require_srtp,
            )
        except SipError as error:
            logger.info("call %s: %s", self.call_id, error)
            raise self._end(error.status, error.reason) from None
        self.inbound.answer = bytes(answer)
        # The caller's codec first, so both legs can share it and the bridge forwards
        # payloads unchanged (the fast path).
        codecs = sorted(DEFAULT_CODECS, key=lambda codec: codec.encoding != negotiated.encoding)
        for crypto in ([], offer_crypto()) if outbound_srtp else ([],):
            built = build_offer(
                local_address=services.sdp_address,
                local_port=outbound_media.rtp_port,
                session_id=self.outbound.session_id,
                session_version=self.outbound.session_version,
                codecs=codecs,
                crypto=crypto,
            )
            if crypto:
                self._srtp_offer = built
            else:
                self._offer = built
        for target in self.targets:
            self._start_attempt(
                target, self._outbound_invite(target, bytes(self._offer_to(target)))
            )
        self._transition(CallState.RINGING)
        # While the callee's phone rings: the caller's media address, and both legs into the
        # bridge (a new bridge hears in the normal mode: customer <-> operator). Commands to
        # one engine run in the order given, so they go out together and are awaited once -
        # with media worker processes each round trip would otherwise add its latency to
        # the call's setup.
        assert self.bridge_id is not None
        caller_role, callee_role = (
            ("customer", "operator")
            if self._recording is None
            else self._recording.bridge_roles(self)
        )
        await _all(
            self._apply_remote(self.inbound, negotiated),
            media.add_to_bridge(self.bridge_id, inbound_media.endpoint_id, caller_role),
            media.add_to_bridge(self.bridge_id, outbound_media.endpoint_id, callee_role),
        )

    def _offer_to(self, target: OutboundTarget) -> SessionDescription:
        """Our offer to `target`: with SRTP keys when it is to get them (over TLS only)."""
        offer = self._srtp_offer if target.srtp else self._offer
        assert offer is not None
        return offer

    async def _create_endpoints(
        self, inbound_srtp: bool, outbound_srtp: bool
    ) -> tuple[LocalMedia, LocalMedia]:
        """The bridge, then an endpoint in it for each leg (503 to the caller when not)."""
        media = self.services.media
        try:
            # The bridge first: a media worker process owns a bridge with its endpoints.
            self.bridge_id = await media.create_bridge()
            created = await asyncio.gather(
                media.create_endpoint(bridge_id=self.bridge_id, srtp=inbound_srtp),
                media.create_endpoint(bridge_id=self.bridge_id, srtp=outbound_srtp),
                return_exceptions=True,
            )
        except (MediaError, OSError) as error:
            logger.error("call %s: no media bridge: %s", self.call_id, error)
            raise self._end(503) from None
        inbound, outbound = created
        if isinstance(inbound, LocalMedia) and isinstance(outbound, LocalMedia):
            return inbound, outbound
        for result in created:
            if isinstance(result, LocalMedia):
                await media.close_endpoint(result.endpoint_id)
            elif not isinstance(result, MediaError | OSError):
                raise result
            else:
                logger.error("call %s: no media endpoint: %s", self.call_id, result)
        raise self._end(503)

    async def _apply_remote(self, leg: Leg, negotiated: NegotiatedMedia) -> None:
        leg.sdes = negotiated.srtp
        await self.services.media.set_remote(
            leg.endpoint_id,
            host=negotiated.remote_address,
            port=negotiated.remote_port,
            payload_type=negotiated.payload_type,
            encoding=negotiated.encoding,
            dtmf_payload_type=negotiated.dtmf_payload_type,
            direction=_remote_direction(negotiated),
            srtp=srtp_keys(negotiated),
        )

    def _local_contact(self, transport: TransportName) -> NameAddress:
        return NameAddress(None, self.services.contact_uri(transport), ())

    def _outbound_invite(self, target: OutboundTarget, body: bytes) -> SipRequest:
        services = self.services
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
        request.body = body
        return request

    def _start_attempt(
        self, target: OutboundTarget, invite: SipRequest, attempt: Attempt | None = None
    ) -> None:
        def on_response(response: SipResponse, dialog: Dialog | None) -> None:
            self._on_attempt_response(current, response, dialog)

        usage = InviteClientUsage(
            self.services.layer,
            invite,
            target.destination,
            on_response,
            local_contact=self._local_contact(target.destination.transport),
            flow=target.flow,
        )
        if attempt is None:
            current = Attempt(target, usage)
            self.attempts.append(current)
        else:
            current = attempt
            current.usage = usage
        usage.start()

    def _on_attempt_response(
        self, attempt: Attempt, response: SipResponse, dialog: Dialog | None
    ) -> None:
        """From the SIP stack, at once: late answers are hung up here, the rest queued."""
        if response.status >= 200:
            attempt.final_status = response.status
        if 200 <= response.status < 300 and dialog is not None and not self._may_answer(attempt):
            self._hang_up_late_answer(dialog)
            return
        if self.state is not CallState.ENDED:
            self.post(OutboundResponse(attempt, response, dialog))

    def _may_answer(self, attempt: Attempt) -> bool:
        if self.state is CallState.ENDED or self._cancelled:
            return False
        return self.winner is None or self.winner is attempt

    def _hang_up_late_answer(self, dialog: Dialog) -> None:
        """An answer nobody wants any more (already ACKed by the usage): BYE it."""
        self._late_answers.hang_up(dialog)

    # ---- ringing -----------------------------------------------------------------------------

    async def _ringing(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.services.ring_timeout
        while self.state is CallState.RINGING:
            event = await self._next_event(max(0.0, deadline - loop.time()))
            if event is None:
                self.hangup_side = HangupSide.SYSTEM
                self.hangup_cause = "no answer"
                raise self._end(480, "No Answer")
            if isinstance(event, OutboundResponse):
                await self._on_outbound_response(event)
            elif isinstance(event, InboundCancel):
                self._cancelled = True
                self.hangup_side = HangupSide.CALLER
                self.hangup_cause = "cancelled"
                raise self._end(487)
            elif isinstance(event, InDialogRequest):
                event.transaction.respond(make_response(event.request, 491, "Request Pending"))
            else:
                self.hangup_side = HangupSide.SYSTEM
                self.hangup_cause = event.cause
                raise self._end(503)

    async def _on_outbound_response(self, event: OutboundResponse) -> None:
        attempt, response = event.attempt, event.response
        status = response.status
        if status < 200:
            if status != 100 and not self._ringing_sent:
                self._ringing_sent = True
                ringing = make_response(self.invite, 180, to_tag=self.inbound_tag)
                contact = self._local_contact(self.invite_tx.source.transport)
                ringing.headers.add("Contact", str(contact))
                self.invite_tx.respond(ringing)
            return
        if status < 300:
            assert event.dialog is not None
            if self.winner is None:
                await self._on_answered(attempt, event.dialog, response)
            else:
                self._hang_up_late_answer(event.dialog)
            return
        credentials = attempt.target.trunk_credentials
        if (
            status in (401, 407)
            and credentials is not None
            and not attempt.retried_with_credentials
        ):
            attempt.retried_with_credentials = True
            retry = authenticated_retry(
                attempt.invite, response, credentials, realm=attempt.target.trunk_realm
            )
            if retry is not None:
                attempt.final_status = None
                self._start_attempt(attempt.target, retry, attempt)
                return
        if any(other.pending for other in self.attempts):
            return
        statuses = [other.final_status for other in self.attempts if other.final_status]
        final = best_failure(statuses)
        assert self.outbound is not None
        self.outbound.sip_status = final
        self.hangup_side = HangupSide.CALLEE
        self.hangup_cause = f"{final} {response.reason}"[:200]
        relayed = relayed_failure(final)
        raise self._end(relayed, response.reason if relayed == final == status else None)

    async def _on_answered(self, attempt: Attempt, dialog: Dialog, response: SipResponse) -> None:
        outbound, inbound, offer = self.outbound, self.inbound, self._offer_to(attempt.target)
        assert outbound is not None and inbound is not None
        services = self.services
        self.winner = attempt
        attempt.dialog = dialog
        outbound.dialog = dialog
        outbound.uri = str(attempt.target.request_uri)
        outbound.latch_host = attempt.target.latch_host
        outbound.sip_status = response.status
        services.register_dialog(dialog, self, outbound)
        for other in self.attempts:
            if other is not attempt and other.pending:
                other.usage.cancel()
        try:
            negotiated = parse_answer(offer, SessionDescription.parse(response.body))
        except SipError as error:
            logger.info("call %s: callee's SDP answer unusable: %s", self.call_id, error)
            self._send_bye(outbound)
            self.hangup_side = HangupSide.CALLEE
            self.hangup_cause = "callee SDP unusable"
            raise self._end(488) from None
        media = services.media
        await _all(
            self._apply_remote(outbound, negotiated),
            *(
                media.enable(
                    leg.endpoint_id, latch=leg.latch_host is not None, latch_host=leg.latch_host
                )
                for leg in (inbound, outbound)
            ),
        )
        now = services.now()
        outbound.answered_at = inbound.answered_at = self.answered_at = now
        contact = self._local_contact(self.invite_tx.source.transport)
        ok = make_response(self.invite, 200, to_tag=self.inbound_tag)
        ok.headers.add("Contact", str(contact))
        ok.headers.add("Allow", services.allow)
        ok.headers.add("Content-Type", SDP)
        ok.body = inbound.answer
        inbound.dialog = Dialog.as_uas(
            self.invite, ok, local_contact=contact, flow=self.caller.flow
        )
        inbound.sip_status = 200
        services.register_dialog(inbound.dialog, self, inbound)
        self.final_status = 200
        self._inbound_usage = InviteServerUsage(
            services.layer,
            self.invite_tx,
            inbound.dialog,
            on_ack_timeout=lambda _dialog: self.post(Hangup("no ACK from the caller")),
        )
        self._inbound_usage.answer(ok)
        self._transition(CallState.ANSWERED)
        await self._tell_recording(answered=True)

    async def _tell_recording(self, *, answered: bool) -> None:
        """Tell the recording the call was answered or ended; its failure never ends a call."""
        recording = self._recording
        if recording is None or self.answered_at is None:
            return
        try:
            await (recording.answered(self) if answered else recording.ended(self))
        except Exception:
            logger.exception("call %s: recording failed", self.call_id)

    # ---- talking -----------------------------------------------------------------------------

    async def _talking(self) -> None:
        while self.state is CallState.ANSWERED:
            event = await self._next_event(None)
            if isinstance(event, InDialogRequest):
                await self._on_in_dialog_request(event)
            elif isinstance(event, OutboundResponse):
                if event.dialog is not None and event.attempt is not self.winner:
                    self._hang_up_late_answer(event.dialog)
            elif isinstance(event, Hangup):
                self._hang_up(HangupSide.SYSTEM, event.cause)
            elif isinstance(event, ReleaseOperator):
                self._release_operator(event)

    def _release_operator(self, event: ReleaseOperator) -> None:
        """BYE the operator's leg, whichever side of the call it is; the customer's stays."""
        for leg in (self.inbound, self.outbound):
            if leg is not None and leg.endpoint_id == event.operator_endpoint:
                logger.info(
                    "call %s: operator released (%s), %s leg",
                    self.call_id,
                    event.cause,
                    leg.role.value,
                )
                self._send_bye(leg)

    async def _on_in_dialog_request(self, event: InDialogRequest) -> None:
        leg, request, tx = event.leg, event.request, event.transaction
        method = request.method
        if method == "BYE":
            tx.respond(make_response(request, 200))
            leg.ended_at = self.services.now()
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
                answer, negotiated = negotiate_answer(
                    SessionDescription.parse(request.body),
                    DEFAULT_CODECS,
                    local_address=self.services.sdp_address,
                    local_port=leg.media.rtp_port,
                    session_id=leg.session_id,
                    session_version=leg.session_version + 1,
                    accept_sdes=leg.srtp,
                    require_srtp=leg.require_srtp,
                    current=leg.sdes,
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
        leg.ended_at = self.services.now()
        try:
            bye = dialog.create_request("BYE")
        except SipError:  # already terminated (e.g. the ACK timeout sent its own BYE)
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
        closing = [media.close_endpoint(leg.endpoint_id) for leg in legs]
        if self.bridge_id is not None:
            closing.insert(0, media.close_bridge(self.bridge_id))
        try:
            await _all(*closing)
        except MediaError:
            logger.exception("call %s: releasing media", self.call_id)

    def _write_cdr(self) -> None:
        ended = self.services.now()
        target = self.target
        legs = tuple(
            CdrLeg(
                role=leg.role,
                sip_call_id=leg.dialog.call_id if leg.dialog else self.call_id,
                uri=leg.uri[:500],
                started_at=leg.started_at,
                answered_at=leg.answered_at,
                ended_at=max(leg.ended_at or ended, leg.answered_at or leg.started_at),
                sip_status=leg.sip_status,
                user_id=self.caller.user_id if leg.role is LegRole.CALLER else target.user_id,
                trunk_id=self.caller.trunk_id if leg.role is LegRole.CALLER else target.trunk_id,
            )
            for leg in (self.inbound, self.outbound)
            if leg is not None
        ) + monitor_cdr_legs(self.monitor_legs, ended)
        self.services.write_cdr(
            NewCdr(
                call_id=self.call_id,
                direction=self.caller.direction,
                caller=self.caller.label,
                callee=target.label,
                dialled_number=self.caller.dialled,
                started_at=self.started_at,
                answered_at=self.answered_at,
                ended_at=max(ended, self.answered_at or self.started_at),
                disposition=self._disposition(),
                route_kind=target.route_kind,
                hangup_cause=self.hangup_cause,
                sip_status=self.final_status,
                hangup_side=self.hangup_side,
                caller_user_id=self.caller.user_id,
                callee_user_id=target.user_id,
                trunk_id=target.trunk_id or self.caller.trunk_id,
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
