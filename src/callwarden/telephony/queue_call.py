"""A call to a queue: answered at once, held with hold audio, offered to operators by the ACD.

The caller's INVITE is answered with 200 (our SDP) as soon as it arrives (`queue_answer`); the
caller is the `customer` of a media bridge and hears only the hold music (`queue_hold`), with
a position / expected-wait announcement every `Queue.announce_seconds` (`telephony.prompts`),
while the ACD (`Distributor`, the engine behind `QueueCalls`) looks for an operator. For each
offer the engine makes, every registered phone of that operator is INVITEd on a new RTP
endpoint of the bridge (`agent_offer`); the first phone to answer joins the bridge as
`operator`, the players leave and the bridge goes to the `normal` matrix (DESIGN.md idea 1),
and the engine is told (`offer_answered`). An offer whose phones all refuse is reported as
failed (`offer_failed`: the engine counts the no-answer); the engine's own ring timeout
withdraws an offer (CANCEL, RFC 3261 9.1).

Overflow after the queue's maximum wait: to another queue (the engine re-queues the call, the
caller keeps hearing the hold audio), to a user (their phones ring as for an offer, outside
the ACD, for the node's ring timeout), voicemail (a cue, then the caller's message is recorded:
`queue_voicemail`), or a message then hang-up (a short "all busy" tone pattern, then BYE).
Offers and the answer live in `queue_offers`.

A caller hanging up while waiting is an abandon (`call_ended` on a waiting call); either
party hanging up after the answer ends both legs and starts the operator's wrap-up. Like
`Call`, the queue call runs as one task consuming its own event queue; its timers (the
announcements, the closing message, a direct overflow's ring time) run on the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from callwarden.acd.clock import Clock
from callwarden.acd.errors import EngineNotRunning, OfferNotPending, UnknownCall
from callwarden.acd.queue import OverflowAction, OverflowKind
from callwarden.domain.cdr import HangupSide
from callwarden.domain.errors import DomainError
from callwarden.domain.ids import CallId, UserId
from callwarden.domain.models import Queue
from callwarden.media.control import MediaError
from callwarden.sip.addressing import TransportName
from callwarden.sip.headers import NameAddress
from callwarden.sip.invite_usage import InviteServerUsage
from callwarden.sip.message import SipRequest, make_response
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.sip.tx_keys import new_tag
from callwarden.telephony.agent_offer import AgentOffer
from callwarden.telephony.call import (
    Hangup,
    InboundCancel,
    InDialogRequest,
    Leg,
    OutboundResponse,
    ReleaseOperator,
)
from callwarden.telephony.call_context import CallerInfo
from callwarden.telephony.outbound import Attempt
from callwarden.telephony.prompts import Prompts
from callwarden.telephony.queue_answer import answer_caller
from callwarden.telephony.queue_cdr import disposition, queue_cdr
from callwarden.telephony.queue_events import (
    Distributor,
    OfferAgent,
    Overflow,
    QueueCallOver,
    QueueCallServices,
    QueueCallState,
    QueueEvent,
    TimerDue,
    WithdrawAgent,
    check_transition,
)
from callwarden.telephony.queue_hold import BUSY_CADENCE, BUSY_TONE_HZ, CallerAudio
from callwarden.telephony.queue_offers import bye_dialog, drop_offer, on_response, ring_agent
from callwarden.telephony.queue_timers import ANNOUNCE, PROMPT, Announcer, CallTimers
from callwarden.telephony.queue_voicemail import (
    CUE_HZ,
    CUE_SECONDS,
    CUE_TIMER,
    LIMIT_TIMER,
    MAX_MESSAGE_SECONDS,
    start_message,
)
from callwarden.telephony.remote_media import reinvite_answer

__all__ = ["MESSAGE_SECONDS", "QueueCall", "QueueCallServices", "QueueCallState"]

if TYPE_CHECKING:
    from callwarden.telephony.recording_control import RecordingControl

logger = logging.getLogger(__name__)

MESSAGE_SECONDS = 2.0
"""How long the closing message plays before the hang-up."""


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
        clock: Clock,
        prompts: Prompts | None = None,
        priority: int = 0,
        on_finished: Callable[[QueueCall], None],
        recordings: RecordingControl | None = None,
    ) -> None:
        self.services = services
        self._recordings = recordings
        self.distributor = distributor
        self._invite_tx = invite_tx
        self.invite = invite_tx.request
        self.caller = caller
        self.queue = queue
        self.priority = priority
        self._clock = clock
        self._prompts = prompts
        self._call_id = CallId(self.invite.call_id)
        self._on_finished = on_finished
        self.state = QueueCallState.SETUP
        self._events: asyncio.Queue[QueueEvent] = asyncio.Queue()
        self._inbound: Leg | None = None
        self.agent_leg: Leg | None = None
        self.agent_id: UserId | None = None
        self.agent_label: str | None = None
        self.bridge_id: str | None = None
        self.audio: CallerAudio | None = None
        self._offers: dict[UserId, AgentOffer] = {}
        self._by_attempt: dict[Attempt, AgentOffer] = {}
        self._inbound_usage: InviteServerUsage | None = None
        self._in_acd = False
        self.timers = CallTimers(clock, self.post)
        self.announcer = Announcer(self.timers, prompts, queue.announce_seconds, where=self._where)
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
        check_transition(self.call_id, self.state, new)
        self.state = new

    @property
    def now(self) -> datetime:
        return self.services.now()

    # ---- the task ------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            answered = await answer_caller(
                self.services,
                self,
                self._invite_tx,
                self.caller,
                fail=self._fail_inbound,
                start_audio=self._start_audio,
            )
            self._inbound, self.bridge_id = answered.leg, answered.bridge_id
            self._inbound_usage = answered.usage
            self.final_status = 200
            self._transition(QueueCallState.WAITING)
            await self._enter_queue()
            self.announcer.schedule()
            while self.state is not QueueCallState.ENDED:
                await self._handle(await self._events.get())
        except QueueCallOver:
            pass
        except Exception:
            logger.exception("queue call %s failed", self.call_id)
            self._fail_inbound(500)
            self._hang_up(HangupSide.SYSTEM, "internal error")
        finally:
            await self._finish()

    async def _start_audio(self, bridge_id: str, leg: Leg) -> None:
        self.bridge_id = bridge_id
        self.audio = CallerAudio(
            self.services.media,
            bridge_id,
            leg.endpoint_id,
            music=self.queue.music_on_hold,
            prompts=self._prompts,
        )
        await self.audio.hold()

    async def _finish(self) -> None:
        self.state = QueueCallState.ENDED
        self.timers.cancel_all()
        for offer in list(self._offers.values()):
            drop_offer(self, offer)
        if self._inbound_usage is not None:
            self._inbound_usage.stop()
            self._inbound_usage.on_ack_timeout = None
        if self._recordings is not None:  # first: the recording ends with the conversation
            try:
                await self._recordings.call_ended(self.call_id)
            except Exception:  # the call's own teardown goes on
                logger.exception("queue call %s: stopping its recording", self.call_id)
        if self._in_acd:
            self._in_acd = False
            await self._report(self.distributor.call_ended(self.call_id))
        await self._release_media()
        self.services.write_cdr(queue_cdr(self, self.now))
        self._on_finished(self)
        logger.info(
            "queue call %s in %s ended: %s (%s)",
            self.call_id,
            self.queue.name,
            disposition(self).value,
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

    async def _enter_queue(self) -> None:
        self._in_acd = True
        try:
            position = await self.distributor.call_arrived(self)
        except DomainError as error:
            self._in_acd = False
            logger.warning("queue call %s: the ACD refused it: %s", self.call_id, error)
            self._hang_up(HangupSide.SYSTEM, "queue unavailable")
            raise QueueCallOver from None
        logger.info("queue call %s: waiting in %s at %d", self.call_id, self.queue.name, position)

    # ---- timers (on the injected clock; each fires as an event of the task) ------------------

    def _where(self) -> tuple[int, float] | None:
        """Position and expected wait while an announcement makes sense (else None)."""
        waiting = self.state is QueueCallState.WAITING and self.hangup_cause is None
        in_queue = self._in_acd or self.overflowed is OverflowKind.QUEUE
        if not waiting or not in_queue or self.audio is None:
            return None
        return self.distributor.position(self.call_id)

    async def _on_timer(self, event: TimerDue) -> None:
        if not self.timers.take(event):
            return
        if event.name == "message":
            self._hang_up(HangupSide.SYSTEM, self.hangup_cause or "message played")
        elif event.name == CUE_TIMER:
            await self._voicemail_record()
        elif event.name == LIMIT_TIMER:
            self._hang_up(HangupSide.SYSTEM, "overflow: voicemail")
        elif event.name == "direct-ring":
            for offer in list(self._offers.values()):
                if offer.direct and not offer.answered:
                    drop_offer(self, offer)
                    await self._message_then_hang_up("overflow user did not answer")
        elif event.name in (ANNOUNCE, PROMPT) and self.audio is not None:
            await self.announcer.on_timer(event.name, self.audio)

    # ---- events --------------------------------------------------------------------------

    async def _handle(self, event: QueueEvent) -> None:
        if isinstance(event, InDialogRequest):
            await self._on_in_dialog(event)
        elif isinstance(event, OutboundResponse):
            await on_response(self, event.attempt, event.response, event.dialog)
        elif isinstance(event, OfferAgent):
            await ring_agent(self, event.agent_id, direct=event.direct)
        elif isinstance(event, WithdrawAgent):
            offer = self._offers.get(event.agent_id)
            if offer is not None and not offer.answered:
                drop_offer(self, offer)
        elif isinstance(event, Overflow):
            await self._overflow(event.action)
        elif isinstance(event, TimerDue):
            await self._on_timer(event)
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
            bye_dialog(self, leg.dialog)
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
            in_a_queue = self.overflowed in (None, OverflowKind.QUEUE)
            if caller and self.state is QueueCallState.WAITING and in_a_queue:
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

    # ---- overflow --------------------------------------------------------------------------

    async def _overflow(self, action: OverflowAction) -> None:
        self.overflowed = action.kind
        if action.kind is OverflowKind.QUEUE:
            logger.info("queue call %s: overflows to queue %s", self.call_id, action.queue_id)
            return
        self._in_acd = False  # out of the ACD: nothing more to report
        if action.kind is OverflowKind.USER and action.user_id is not None:
            await ring_agent(self, action.user_id, direct=True)
            return
        if action.kind is OverflowKind.VOICEMAIL and self._recordings is not None:
            await self._voicemail_cue()
            return
        await self._message_then_hang_up(f"overflow: {action.kind.value}")

    async def _voicemail_cue(self) -> None:
        """The tone before the message (`queue_voicemail`); the recording starts after it."""
        if self.state is not QueueCallState.WAITING or self.audio is None:
            return
        self.hangup_cause = "overflow: voicemail"
        self.announcer.stop()
        await self.audio.message(CUE_HZ, None)
        self.timers.set(CUE_TIMER, CUE_SECONDS)

    async def _voicemail_record(self) -> None:
        if self.state is not QueueCallState.WAITING or self.audio is None:
            return
        await self.audio.stop()
        assert self._recordings is not None
        await start_message(self._recordings, self)
        self.timers.set(LIMIT_TIMER, MAX_MESSAGE_SECONDS)
        logger.info("queue call %s: recording the caller's message", self.call_id)

    async def _message_then_hang_up(self, cause: str) -> None:
        if self.state is not QueueCallState.WAITING or self.audio is None:
            return
        self.hangup_cause = cause
        self.announcer.stop()
        await self.audio.message(BUSY_TONE_HZ, BUSY_CADENCE)
        self.timers.set("message", MESSAGE_SECONDS)

    # ---- hanging up ------------------------------------------------------------------------

    def _hang_up(self, side: HangupSide, cause: str) -> None:
        if self.hangup_side is None:
            self.hangup_side = side
        if self.hangup_cause is None:
            self.hangup_cause = cause
        for leg in (self._inbound, self.agent_leg):
            if leg is not None and leg.dialog is not None and leg.ended_at is None:
                leg.ended_at = self.now
                bye_dialog(self, leg.dialog)
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
