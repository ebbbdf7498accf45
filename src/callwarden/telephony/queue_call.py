"""A call to a queue: answered at once, held with hold audio, offered to operators by the ACD.

The caller's INVITE is answered with 200 (our SDP) as soon as it arrives; the caller is the
`customer` of a media bridge and hears only the hold player (a tone melody with a cadence)
while the ACD (`Distributor`, the engine behind `QueueCalls`) looks for an operator. For each
offer the engine makes, every registered phone of that operator is INVITEd on a new RTP
endpoint of the bridge; the first phone to answer joins the bridge as `operator`, the hold
player leaves and the bridge goes to the `normal` matrix (DESIGN.md idea 1), and the engine is
told (`offer_answered`). An offer whose phones all refuse is reported as failed
(`offer_failed`: the engine counts the no-answer); the engine's own ring timeout withdraws an
offer (CANCEL, RFC 3261 9.1).

Overflow after the queue's maximum wait: to another queue (the engine re-queues the call, the
caller keeps hearing the hold audio), to a user (their phones ring as for an offer, outside
the ACD), or a message then hang-up (a short "all busy" tone pattern, then BYE; the
voicemail-style action does the same until recording exists).

A caller hanging up while waiting is an abandon (`call_ended` on a waiting call); either
party hanging up after the answer ends both legs and starts the operator's wrap-up. Like
`Call`, the queue call runs as one task consuming its own event queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callwarden.acd.errors import EngineNotRunning, OfferNotPending, UnknownCall
from callwarden.acd.queue import OverflowAction, OverflowKind
from callwarden.domain.cdr import CdrLeg, Disposition, HangupSide, LegRole, NewCdr, RouteKind
from callwarden.domain.errors import DomainError
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import Queue
from callwarden.media.control import MediaControl, MediaError
from callwarden.sip.addressing import Destination, TransportName
from callwarden.sip.dialog import Dialog
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.headers import NameAddress
from callwarden.sip.invite_usage import InviteServerUsage
from callwarden.sip.message import SipRequest, SipResponse, make_response
from callwarden.sip.sdp import DEFAULT_CODECS, build_offer, negotiate_answer, parse_answer
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.sip.session_description import SessionDescription
from callwarden.sip.transaction import TransactionLayer
from callwarden.sip.tx_keys import new_tag
from callwarden.sip.uri import SipUri
from callwarden.telephony.agent_offer import SDP, AgentOffer, agent_invite, start_attempt
from callwarden.telephony.call import (
    CallEvent,
    Hangup,
    InboundCancel,
    InDialogRequest,
    Leg,
    OutboundResponse,
    ReleaseOperator,
    monitor_cdr_legs,
)
from callwarden.telephony.call_context import CallerInfo, OutboundTarget
from callwarden.telephony.call_task import CallTask
from callwarden.telephony.outbound import Attempt
from callwarden.telephony.remote_media import apply_remote, reinvite_answer

logger = logging.getLogger(__name__)

HOLD_TONE_HZ = (392.0, 494.0)
"""The hold melody's chord (G4 + B4), played 0.8 s on, 0.4 s off."""
HOLD_CADENCE = (0.8, 0.4)
HOLD_LEVEL_DBFS = -16.0
BUSY_TONE_HZ = (480.0, 620.0)
"""The "all operators busy" message before an overflow hang-up (the busy tone's pair)."""
BUSY_CADENCE = (0.25, 0.25)
MESSAGE_SECONDS = 2.0


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


QueueEvent = CallEvent | OfferAgent | WithdrawAgent | Overflow


class Distributor(Protocol):
    """The ACD as a queue call sees it (implemented by `QueueCalls`)."""

    async def call_arrived(self, call: QueueCall) -> int: ...

    async def offer_answered(self, call_id: CallId, agent_id: UserId) -> None: ...

    async def offer_failed(self, call_id: CallId, agent_id: UserId) -> None: ...

    async def call_ended(self, call_id: CallId) -> None: ...

    def agent_targets(self, agent_id: UserId, caller: CallerInfo) -> list[OutboundTarget]:
        """Where to ring the agent: each registered phone (none: the offer fails)."""
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


class _Ended(Exception):  # noqa: N818 - control flow inside the call task
    pass


class QueueCall:
    """A caller waiting in (or served from) `queue`; created by `QueueCalls.start_call`."""

    def __init__(
        self,
        services: QueueCallServices,
        distributor: Distributor,
        invite_tx: InviteServerTransaction,
        caller: CallerInfo,
        queue: Queue,
        *,
        priority: int = 0,
        on_finished: Callable[[QueueCall], None],
    ) -> None:
        self.services = services
        self.distributor = distributor
        self._invite_tx = invite_tx
        self.invite = invite_tx.request
        self.caller = caller
        self.queue = queue
        self.priority = priority
        self._call_id = CallId(self.invite.call_id)
        self._on_finished = on_finished
        self.state = QueueCallState.SETUP
        self._events: asyncio.Queue[QueueEvent] = asyncio.Queue()
        self._inbound: Leg | None = None
        self.agent_leg: Leg | None = None
        self.agent_id: UserId | None = None
        self.agent_label: str | None = None
        self.bridge_id: str | None = None
        self._player_id: str | None = None
        self._offers: dict[UserId, AgentOffer] = {}
        self._by_attempt: dict[Attempt, AgentOffer] = {}
        self._inbound_usage: InviteServerUsage | None = None
        self._in_acd = False
        self._message_timer: asyncio.TimerHandle | None = None
        self.started_at = services.now()
        self.answered_at: datetime | None = None
        self.final_status: int | None = None
        self.hangup_side: HangupSide | None = None
        self.hangup_cause: str | None = None
        self.overflowed: OverflowKind | None = None
        #: Supervisors' legs (added by monitoring), for the CDR.
        self.monitor_legs: list[tuple[Leg, UserId]] = []

    # ---- CallTask ------------------------------------------------------------------------

    @property
    def call_id(self) -> CallId:
        return self._call_id

    @property
    def invite_tx(self) -> InviteServerTransaction:
        return self._invite_tx

    @property
    def inbound(self) -> Leg | None:
        return self._inbound

    @property
    def outbound(self) -> Leg | None:
        return self.agent_leg

    def post(self, event: QueueEvent) -> None:
        self._events.put_nowait(event)

    def on_ack(self, request: SipRequest) -> None:
        if self._inbound_usage is not None:
            self._inbound_usage.receive_ack(request)

    def _transition(self, new: QueueCallState) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"queue call {self.call_id}: {self.state.name} -> {new.name}")
        self.state = new

    # ---- the task ------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._answer_caller()
            self._transition(QueueCallState.WAITING)
            await self._enter_queue()
            while self.state is not QueueCallState.ENDED:
                await self._handle(await self._events.get())
        except _Ended:
            pass
        except Exception:
            logger.exception("queue call %s failed", self.call_id)
            self._fail_inbound(500)
            self._hang_up(HangupSide.SYSTEM, "internal error")
        finally:
            await self._finish()

    async def _finish(self) -> None:
        self.state = QueueCallState.ENDED
        if self._message_timer is not None:
            self._message_timer.cancel()
        for offer in list(self._offers.values()):
            self._drop_offer(offer)
        if self._inbound_usage is not None:
            self._inbound_usage.stop()
            self._inbound_usage.on_ack_timeout = None
        if self._in_acd:
            self._in_acd = False
            await self._report(self.distributor.call_ended(self.call_id))
        await self._release_media()
        self._write_cdr()
        self._on_finished(self)
        logger.info(
            "queue call %s in %s ended: %s (%s)",
            self.call_id,
            self.queue.name,
            self._disposition().value,
            self.hangup_cause or self.final_status,
        )

    async def _report(self, report: object) -> bool:
        """Await a report to the ACD; False when the ACD no longer knows the offer or call."""
        assert asyncio.iscoroutine(report)
        try:
            await report
        except (OfferNotPending, UnknownCall, EngineNotRunning) as error:
            logger.info("queue call %s: ACD says %s", self.call_id, error)
            return False
        return True

    def _fail_inbound(self, status: int, reason: str | None = None) -> None:
        if self.final_status is not None:
            return
        self.final_status = status
        self.invite_tx.respond(make_response(self.invite, status, reason, to_tag=new_tag()))

    def _contact(self, transport: TransportName) -> NameAddress:
        return NameAddress(None, self.services.contact_uri(transport), ())

    # ---- answering the caller --------------------------------------------------------------

    async def _answer_caller(self) -> None:
        services, invite = self.services, self.invite
        if invite.content_type != SDP or not invite.body:
            self._fail_inbound(488, "Offer Required")
            raise _Ended
        try:
            offer = SessionDescription.parse(invite.body)
        except SipParseError as error:
            logger.info("queue call %s: bad SDP offer: %s", self.call_id, error)
            self._fail_inbound(400, "Bad SDP")
            raise _Ended from None
        media = services.media
        try:
            self.bridge_id = await media.create_bridge()
            local = await media.create_endpoint(bridge_id=self.bridge_id)
        except (MediaError, OSError) as error:
            logger.error("queue call %s: no media endpoint: %s", self.call_id, error)
            self._fail_inbound(503)
            raise _Ended from None
        leg = Leg(LegRole.CALLER, local, self.caller.latch_host, str(invite.from_.uri), self.now)
        self._inbound = leg
        try:
            answer, negotiated = negotiate_answer(
                offer,
                DEFAULT_CODECS,
                local_address=services.sdp_address,
                local_port=local.rtp_port,
                session_id=leg.session_id,
                session_version=leg.session_version,
            )
        except SipError as error:
            self._fail_inbound(error.status, error.reason)
            raise _Ended from None
        leg.answer = bytes(answer)
        await apply_remote(media, leg, negotiated)
        await media.add_to_bridge(self.bridge_id, local.endpoint_id, "customer")
        await self._play_hold()
        await media.enable(
            local.endpoint_id, latch=leg.latch_host is not None, latch_host=leg.latch_host
        )
        contact = self._contact(self.invite_tx.source.transport)
        ok = make_response(invite, 200, to_tag=new_tag())
        ok.headers.add("Contact", str(contact))
        ok.headers.add("Allow", services.allow)
        ok.headers.add("Content-Type", SDP)
        ok.body = leg.answer
        leg.dialog = Dialog.as_uas(invite, ok, local_contact=contact, flow=self.caller.flow)
        leg.sip_status = 200
        leg.answered_at = self.now
        services.register_dialog(leg.dialog, self, leg)
        self.final_status = 200
        self._inbound_usage = InviteServerUsage(
            services.layer,
            self.invite_tx,
            leg.dialog,
            on_ack_timeout=lambda _dialog: self.post(Hangup("no ACK from the caller")),
        )
        self._inbound_usage.answer(ok)

    @property
    def now(self) -> datetime:
        return self.services.now()

    async def _play(self, frequencies: tuple[float, ...], cadence: tuple[float, float]) -> None:
        """Replace what the caller hears with a tone player."""
        media, bridge, leg = self.services.media, self.bridge_id, self._inbound
        assert bridge is not None and leg is not None
        if self._player_id is not None:
            await media.remove_from_bridge(bridge, self._player_id)
        self._player_id = await media.add_tone(
            bridge, frequencies, level_dbfs=HOLD_LEVEL_DBFS, cadence=cadence
        )
        await media.set_hearing(bridge, leg.endpoint_id, frozenset({self._player_id}))

    async def _play_hold(self) -> None:
        await self._play(HOLD_TONE_HZ, HOLD_CADENCE)

    async def _enter_queue(self) -> None:
        self._in_acd = True
        try:
            position = await self.distributor.call_arrived(self)
        except DomainError as error:
            self._in_acd = False
            logger.warning("queue call %s: the ACD refused it: %s", self.call_id, error)
            self._hang_up(HangupSide.SYSTEM, "queue unavailable")
            raise _Ended from None
        logger.info("queue call %s: waiting in %s at %d", self.call_id, self.queue.name, position)

    # ---- events --------------------------------------------------------------------------

    async def _handle(self, event: QueueEvent) -> None:
        if isinstance(event, InDialogRequest):
            await self._on_in_dialog(event)
        elif isinstance(event, OutboundResponse):
            await self._on_response(event.attempt, event.response, event.dialog)
        elif isinstance(event, OfferAgent):
            await self._offer(event.agent_id, direct=event.direct)
        elif isinstance(event, WithdrawAgent):
            offer = self._offers.get(event.agent_id)
            if offer is not None and not offer.answered:
                self._drop_offer(offer)
                if offer.direct:
                    await self._message_then_hang_up("overflow user did not answer")
        elif isinstance(event, Overflow):
            await self._overflow(event.action)
        elif isinstance(event, Hangup):
            self._hang_up(HangupSide.SYSTEM, event.cause)
        elif isinstance(event, InboundCancel):
            pass  # already answered: the CANCEL changes nothing (RFC 3261 9.2)
        elif isinstance(event, ReleaseOperator):
            await self._release_operator(event.cause)

    async def _release_operator(self, cause: str) -> None:
        """A supervisor took over: BYE the operator's leg; the ACD ends the operator's part
        of the call (wrap-up) while the caller stays connected to the supervisor."""
        leg = self.agent_leg
        if self.state is not QueueCallState.CONNECTED or leg is None or leg.ended_at is not None:
            return
        leg.ended_at = self.now
        if leg.dialog is not None:
            self._bye_dialog(leg.dialog)
        if self._in_acd:
            self._in_acd = False
            await self._report(self.distributor.call_ended(self.call_id))
        logger.info("queue call %s: operator %s released (%s)", self.call_id, self.agent_id, cause)

    async def _on_in_dialog(self, event: InDialogRequest) -> None:
        leg, request, tx = event.leg, event.request, event.transaction
        if request.method == "BYE":
            tx.respond(make_response(request, 200))
            leg.ended_at = self.now
            if leg.dialog is not None:
                leg.dialog.terminate()
            caller = leg is self._inbound
            if caller and self.state is QueueCallState.WAITING and self.overflowed is None:
                self._hang_up(HangupSide.CALLER, "abandoned")
            else:
                self._hang_up(HangupSide.CALLER if caller else HangupSide.CALLEE, "normal clearing")
        elif request.method == "INVITE":
            await reinvite_answer(self.services.media, self.services.sdp_address, leg, request, tx)
        elif request.method in ("OPTIONS", "INFO", "UPDATE") and not request.body:
            tx.respond(make_response(request, 200))
        else:
            response = make_response(request, 405)
            response.headers.add("Allow", self.services.allow)
            tx.respond(response)

    # ---- offers ----------------------------------------------------------------------------

    async def _offer(self, agent_id: UserId, *, direct: bool) -> None:
        if self.state is not QueueCallState.WAITING or agent_id in self._offers:
            return
        targets = self.distributor.agent_targets(agent_id, self.caller)
        if not targets:
            logger.info("queue call %s: agent %s has no registered phone", self.call_id, agent_id)
            await self._offer_failed(agent_id, direct=direct)
            return
        media, services = self.services.media, self.services
        assert self.bridge_id is not None and self._inbound is not None
        local = await media.create_endpoint(bridge_id=self.bridge_id)
        leg = Leg(
            LegRole.CALLEE, local, targets[0].latch_host, str(targets[0].request_uri), self.now
        )
        sdp_offer = build_offer(
            local_address=services.sdp_address,
            local_port=local.rtp_port,
            session_id=leg.session_id,
            session_version=leg.session_version,
            codecs=DEFAULT_CODECS,
        )
        offer = AgentOffer(agent_id, leg, sdp_offer, direct=direct)
        self._offers[agent_id] = offer
        body = bytes(sdp_offer)
        for target in targets:
            contact = self._contact(target.destination.transport)
            invite = agent_invite(
                target,
                body,
                contact=contact,
                allow=services.allow,
                user_agent=services.user_agent,
                call_id_host=services.sdp_address,
            )
            attempt = start_attempt(services.layer, target, invite, contact, self._on_sip_response)
            offer.attempts.append(attempt)
            self._by_attempt[attempt] = offer
        if direct:
            loop = asyncio.get_running_loop()
            self._message_timer = loop.call_later(
                services.ring_timeout, self.post, WithdrawAgent(agent_id)
            )

    def _on_sip_response(
        self, attempt: Attempt, response: SipResponse, dialog: Dialog | None
    ) -> None:
        """From the SIP stack: record finals; answers nobody wants are hung up at once."""
        if response.status >= 200:
            attempt.final_status = response.status
        offer = self._by_attempt.get(attempt)
        wanted = offer is not None and not offer.withdrawn and self.state is QueueCallState.WAITING
        if 200 <= response.status < 300 and dialog is not None and not wanted:
            self._bye_dialog(dialog)
            return
        if self.state is not QueueCallState.ENDED:
            self.post(OutboundResponse(attempt, response, dialog))

    def _bye_dialog(self, dialog: Dialog) -> None:
        try:
            bye = dialog.create_request("BYE")
        except SipError:
            return
        dialog.terminate()
        self.services.send_bye(bye, dialog.next_hop())

    async def _on_response(
        self, attempt: Attempt, response: SipResponse, dialog: Dialog | None
    ) -> None:
        offer = self._by_attempt.get(attempt)
        status = response.status
        if offer is None or offer.withdrawn or status < 200:
            return
        if status < 300:
            assert dialog is not None
            if offer.answered or self.state is not QueueCallState.WAITING:
                self._bye_dialog(dialog)
                return
            await self._answered(offer, attempt, dialog, response)
            return
        if offer.pending or offer.answered:
            return
        logger.info("queue call %s: agent %s refused (%d)", self.call_id, offer.agent_id, status)
        self._drop_offer(offer)
        await self._offer_failed(offer.agent_id, direct=offer.direct)

    async def _offer_failed(self, agent_id: UserId, *, direct: bool) -> None:
        if direct:
            await self._message_then_hang_up("overflow user unavailable")
        else:
            await self._report(self.distributor.offer_failed(self.call_id, agent_id))

    def _drop_offer(self, offer: AgentOffer) -> None:
        """Stop ringing (CANCEL what is pending) and forget the offer; its endpoint goes in
        the background."""
        offer.withdrawn = True
        offer.cancel_pending()
        self._offers.pop(offer.agent_id, None)
        for attempt in offer.attempts:
            self._by_attempt.pop(attempt, None)
        if offer.leg is not self.agent_leg:
            endpoint = offer.leg.endpoint_id
            asyncio.get_running_loop().create_task(self._close_endpoint(endpoint))

    async def _close_endpoint(self, endpoint_id: str) -> None:
        with contextlib.suppress(MediaError):  # already gone with the bridge
            await self.services.media.close_endpoint(endpoint_id)

    async def _answered(
        self, offer: AgentOffer, attempt: Attempt, dialog: Dialog, response: SipResponse
    ) -> None:
        leg = offer.leg
        offer.answered = True
        offer.cancel_pending(keep=attempt)
        leg.dialog = dialog
        leg.uri = str(attempt.target.request_uri)
        leg.latch_host = attempt.target.latch_host
        leg.sip_status = response.status
        try:
            negotiated = parse_answer(offer.sdp_offer, SessionDescription.parse(response.body))
        except SipError as error:
            logger.info("queue call %s: agent SDP unusable: %s", self.call_id, error)
            self._bye_dialog(dialog)
            self._drop_offer(offer)
            await self._offer_failed(offer.agent_id, direct=offer.direct)
            return
        if not offer.direct and not await self._report(
            self.distributor.offer_answered(self.call_id, offer.agent_id)
        ):
            self._bye_dialog(dialog)
            self._drop_offer(offer)
            return
        self._offers.pop(offer.agent_id, None)
        self.agent_leg, self.agent_id = leg, offer.agent_id
        self.agent_label = attempt.target.label
        self.services.register_dialog(dialog, self, leg)
        self._transition(QueueCallState.CONNECTED)
        media, bridge = self.services.media, self.bridge_id
        assert bridge is not None
        await apply_remote(media, leg, negotiated)
        await media.enable(
            leg.endpoint_id, latch=leg.latch_host is not None, latch_host=leg.latch_host
        )
        await media.add_to_bridge(bridge, leg.endpoint_id, "operator")
        if self._player_id is not None:
            await media.remove_from_bridge(bridge, self._player_id)
            self._player_id = None
        await media.set_mode(bridge, "normal")
        leg.answered_at = self.answered_at = self.now
        logger.info("queue call %s: answered by agent %s", self.call_id, offer.agent_id)

    # ---- overflow --------------------------------------------------------------------------

    async def _overflow(self, action: OverflowAction) -> None:
        self.overflowed = action.kind
        if action.kind is OverflowKind.QUEUE:
            logger.info("queue call %s: overflows to queue %s", self.call_id, action.queue_id)
            return
        self._in_acd = False  # out of the ACD: nothing more to report
        if action.kind is OverflowKind.USER and action.user_id is not None:
            await self._offer(action.user_id, direct=True)
            return
        await self._message_then_hang_up(f"overflow: {action.kind.value}")

    async def _message_then_hang_up(self, cause: str) -> None:
        if self.state is not QueueCallState.WAITING:
            return
        self.hangup_cause = cause
        await self._play(BUSY_TONE_HZ, BUSY_CADENCE)
        loop = asyncio.get_running_loop()
        if self._message_timer is not None:
            self._message_timer.cancel()
        self._message_timer = loop.call_later(MESSAGE_SECONDS, self.post, Hangup(cause))

    # ---- hanging up ------------------------------------------------------------------------

    def _hang_up(self, side: HangupSide, cause: str) -> None:
        if self.hangup_side is None:
            self.hangup_side = side
        if self.hangup_cause is None:
            self.hangup_cause = cause
        for leg in (self._inbound, self.agent_leg):
            if leg is not None and leg.dialog is not None and leg.ended_at is None:
                leg.ended_at = self.now
                self._bye_dialog(leg.dialog)
        if self.state is not QueueCallState.ENDED:
            self._transition(QueueCallState.ENDED)

    async def _release_media(self) -> None:
        media = self.services.media
        legs = [leg for leg in (self._inbound, self.agent_leg) if leg is not None]
        for leg in legs:
            if leg.dialog is not None:
                self.services.unregister_dialog(leg.dialog)
        try:
            if self.bridge_id is not None:
                await media.close_bridge(self.bridge_id)
            for leg in legs:
                await media.close_endpoint(leg.endpoint_id)
        except MediaError:
            logger.exception("queue call %s: releasing media", self.call_id)

    def _disposition(self) -> Disposition:
        if self.answered_at is not None:
            return Disposition.ANSWERED
        if self.hangup_side is HangupSide.CALLER:
            return Disposition.CANCELLED
        if self.overflowed is not None:
            return Disposition.NO_ANSWER
        return Disposition.FAILED

    def _write_cdr(self) -> None:
        ended = self.now
        legs = tuple(
            CdrLeg(
                role=leg.role,
                sip_call_id=leg.dialog.call_id if leg.dialog else self.call_id,
                uri=leg.uri[:500],
                started_at=leg.started_at,
                answered_at=leg.answered_at,
                ended_at=max(leg.ended_at or ended, leg.answered_at or leg.started_at),
                sip_status=leg.sip_status,
                user_id=self.caller.user_id if leg.role is LegRole.CALLER else self.agent_id,
                trunk_id=self.caller.trunk_id if leg.role is LegRole.CALLER else None,
            )
            for leg in (self._inbound, self.agent_leg)
            if leg is not None
        ) + monitor_cdr_legs(self.monitor_legs, ended)
        self.services.write_cdr(
            NewCdr(
                call_id=self.call_id,
                direction=self.caller.direction,
                caller=self.caller.label,
                callee=self.agent_label or self.queue.number,
                dialled_number=self.caller.dialled,
                started_at=self.started_at,
                answered_at=self.answered_at,
                ended_at=max(ended, self.answered_at or self.started_at),
                disposition=self._disposition(),
                route_kind=RouteKind.QUEUE,
                hangup_cause=(self.hangup_cause or "")[:200] or None,
                sip_status=self.final_status,
                hangup_side=self.hangup_side,
                caller_user_id=self.caller.user_id,
                callee_user_id=self.agent_id,
                queue_id=self.queue.id,
                trunk_id=self.caller.trunk_id,
                team_id=self.queue.team_id,
                legs=legs,
            )
        )
