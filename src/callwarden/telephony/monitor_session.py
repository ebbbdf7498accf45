"""One supervisor's leg in a monitored call: its SIP dialog, its RTP endpoint in the call's
bridge (as the participant of role `supervisor`), and its life from joining to leaving.

Two ways in: started from the API, callwarden INVITEs every registered phone of the supervisor
(they ring in parallel, the first to answer wins; never an outside number); dialled from a
phone as a feature code, callwarden answers the supervisor's own INVITE. Either way the leg
joins the bridge hearing nothing and heard by nobody, and the session's host (the monitoring
service) applies the hearing matrix that the session's mode asks for.

The session runs as one task consuming its own event queue, like a call: requests on its
dialog (BYE, re-INVITE), responses to its INVITEs, `Hangup` (the call ended, the service or
the supervisor's `*` ended it). Leaving removes the supervisor from the bridge and never touches
the customer's or the operator's legs; the host then re-applies the matrix for who remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from callwarden.domain.cdr import LegRole
from callwarden.domain.ids import CallId
from callwarden.domain.models import User
from callwarden.media.control import MediaControl, MediaError
from callwarden.sip.addressing import Destination, TransportName
from callwarden.sip.dialog import Dialog
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.headers import NameAddress
from callwarden.sip.invite_usage import InviteServerUsage
from callwarden.sip.message import SipRequest, SipResponse, make_response
from callwarden.sip.sdp import (
    DEFAULT_CODECS,
    build_offer,
    negotiate_answer,
    offer_crypto,
    parse_answer,
)
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.sip.session_description import SessionDescription
from callwarden.sip.transaction import TransactionLayer
from callwarden.sip.tx_keys import new_tag
from callwarden.sip.uri import SipUri
from callwarden.telephony.agent_offer import SDP, agent_invite, start_attempt
from callwarden.telephony.call import (
    CallEvent,
    Hangup,
    InboundCancel,
    InDialogRequest,
    Leg,
    OutboundResponse,
    ReleaseOperator,
    offers_srtp,
)
from callwarden.telephony.call_context import OutboundTarget
from callwarden.telephony.call_task import DialogOwner
from callwarden.telephony.feature_codes import MonitorMode
from callwarden.telephony.monitored_call import CallView
from callwarden.telephony.outbound import Attempt
from callwarden.telephony.remote_media import apply_remote, reinvite_answer

logger = logging.getLogger(__name__)

__all__ = ["MonitorServices", "MonitorSession", "SessionHost", "new_monitoring_id"]


def new_monitoring_id() -> str:
    """An unguessable session id (it appears in URLs)."""
    return secrets.token_urlsafe(12)


class MonitorServices(Protocol):
    """What a session uses of the SIP application (`SipApplication` provides it)."""

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

    def register_dialog(self, dialog: Dialog, call: DialogOwner, leg: Leg) -> None: ...

    def unregister_dialog(self, dialog: Dialog) -> None: ...


class SessionHost(Protocol):
    """The monitoring service, as a session sees it."""

    async def session_joined(self, session: MonitorSession) -> None:
        """The supervisor's leg is in the bridge: apply the matrix, audit, publish."""
        ...

    async def session_ended(self, session: MonitorSession) -> None:
        """The supervisor's leg has left the bridge: re-apply the matrix, audit, publish."""
        ...


class _Ended(Exception):  # noqa: N818 - control flow inside the session task
    pass


@dataclass(eq=False)
class MonitorSession:
    """A supervisor on a call; `run()` is its task (started by the monitoring service)."""

    services: MonitorServices
    host: SessionHost
    call: CallView
    supervisor: User
    mode: MonitorMode
    reason: str
    via: str
    source_address: str | None
    targets: list[OutboundTarget] = field(default_factory=list)
    phone_invite: InviteServerTransaction | None = None
    """The supervisor's INVITE when the session was dialled as a feature code."""
    on_finished: Callable[[MonitorSession], None] | None = None
    id: str = field(default_factory=new_monitoring_id)
    leg: Leg | None = None
    joined_at: datetime | None = None
    ended_at: datetime | None = None
    end_cause: str | None = None
    operator_notified: bool = False
    changes: list[tuple[datetime, MonitorMode]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._attempts: list[Attempt] = []
        self._winner: Attempt | None = None
        self._usage: InviteServerUsage | None = None
        self.started_at = self.services.now()

    # ---- CallTask (a session dialled as a feature code runs as one of the node's calls) -----

    @property
    def call_id(self) -> CallId:
        if self.phone_invite is not None:
            return CallId(self.phone_invite.request.call_id)
        return CallId(f"monitoring-{self.id}")

    @property
    def invite_tx(self) -> InviteServerTransaction:
        if self.phone_invite is None:
            raise RuntimeError(f"monitoring {self.id} was not dialled from a phone")
        return self.phone_invite

    @property
    def inbound(self) -> Leg | None:
        return self.leg

    @property
    def outbound(self) -> Leg | None:
        return None

    @property
    def endpoint_id(self) -> str | None:
        return None if self.leg is None else self.leg.endpoint_id

    @property
    def joined(self) -> bool:
        return self.joined_at is not None and self.ended_at is None

    def post(self, event: CallEvent) -> None:
        self._events.put_nowait(event)

    def on_ack(self, request: SipRequest) -> None:
        if self._usage is not None:
            self._usage.receive_ack(request)

    # ---- the task ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            if self.phone_invite is not None:
                await self._answer_supervisor(self.phone_invite)
            else:
                await self._dial_supervisor()
            await self._join()
            while True:
                await self._handle(await self._events.get())
        except _Ended:
            pass
        except Exception:
            logger.exception("monitoring %s on call %s failed", self.id, self.call.call_id)
            self._bye()
            self.end_cause = self.end_cause or "internal error"
        finally:
            await self._leave()

    def _end(self, cause: str) -> _Ended:
        if self.end_cause is None:
            self.end_cause = cause
        return _Ended()

    def refuse(self, status: int, reason: str | None = None) -> None:
        """Answer a dialled session's INVITE with a final error (not allowed, no such call)."""
        tx = self.phone_invite
        if tx is None:
            return
        last = tx.last_response
        if last is None or last.status < 200:
            tx.respond(make_response(tx.request, status, reason, to_tag=new_tag()))

    async def _join(self) -> None:
        assert self.leg is not None
        media = self.services.media
        await media.add_to_bridge(self.call.bridge_id, self.leg.endpoint_id, "supervisor")
        self.joined_at = self.services.now()
        self.changes.append((self.joined_at, self.mode))
        self.call.monitor_legs.append((self.leg, self.supervisor.id))
        await self.host.session_joined(self)
        logger.info(
            "monitoring %s: %s joined call %s in %s",
            self.id,
            self.supervisor.username,
            self.call.call_id,
            self.mode.value,
        )

    async def _handle(self, event: CallEvent) -> None:
        if isinstance(event, InDialogRequest):
            await self._on_in_dialog(event)
        elif isinstance(event, Hangup):
            self._bye()
            raise self._end(event.cause)
        elif isinstance(event, OutboundResponse):
            if event.dialog is not None and 200 <= event.response.status < 300:
                self._bye_dialog(event.dialog)  # a second phone answered too late
        elif isinstance(event, InboundCancel | ReleaseOperator):
            pass  # answered already (RFC 3261 9.2); a session has no operator leg

    async def _on_in_dialog(self, event: InDialogRequest) -> None:
        request, tx = event.request, event.transaction
        if request.method == "BYE":
            tx.respond(make_response(request, 200))
            if self.leg is not None:
                self.leg.ended_at = self.services.now()
                if self.leg.dialog is not None:
                    self.leg.dialog.terminate()
            raise self._end("supervisor hung up")
        if request.method == "INVITE":
            await reinvite_answer(
                self.services.media, self.services.sdp_address, event.leg, request, tx
            )
        elif request.method in ("OPTIONS", "INFO", "UPDATE") and not request.body:
            tx.respond(make_response(request, 200))
        else:
            response = make_response(request, 405)
            response.headers.add("Allow", self.services.allow)
            tx.respond(response)

    # ---- dialled from a phone: answer the supervisor's INVITE ---------------------------------

    async def _answer_supervisor(self, tx: InviteServerTransaction) -> None:
        services, invite = self.services, tx.request
        if invite.content_type != SDP or not invite.body:
            self.refuse(488, "Offer Required")
            raise self._end("no SDP offer")
        try:
            offer = SessionDescription.parse(invite.body)
        except SipParseError:
            self.refuse(400, "Bad SDP")
            raise self._end("bad SDP offer") from None
        source = tx.source
        srtp = source.transport == "TLS" and offers_srtp(offer)  # offered SRTP: never plain
        local = await services.media.create_endpoint(bridge_id=self.call.bridge_id, srtp=srtp)
        leg = Leg(
            LegRole.MONITOR,
            local,
            source.remote_host,
            str(invite.from_.uri),
            self.started_at,
            srtp=srtp,
            require_srtp=srtp,
        )
        self.leg = leg
        try:
            answer, negotiated = negotiate_answer(
                offer,
                DEFAULT_CODECS,
                local_address=services.sdp_address,
                local_port=local.rtp_port,
                session_id=leg.session_id,
                session_version=leg.session_version,
                accept_sdes=srtp,
                require_srtp=srtp,
            )
        except SipError as error:
            self.refuse(error.status, error.reason)
            raise self._end("no common codec") from None
        leg.answer = bytes(answer)
        await apply_remote(services.media, leg, negotiated)
        await services.media.enable(local.endpoint_id, latch=True, latch_host=source.remote_host)
        contact = NameAddress(None, services.contact_uri(source.transport), ())
        ok = make_response(invite, 200, to_tag=new_tag())
        ok.headers.add("Contact", str(contact))
        ok.headers.add("Allow", services.allow)
        ok.headers.add("Content-Type", SDP)
        ok.body = leg.answer
        leg.dialog = Dialog.as_uas(invite, ok, local_contact=contact)
        leg.sip_status = 200
        leg.answered_at = services.now()
        services.register_dialog(leg.dialog, self, leg)
        self._usage = InviteServerUsage(
            services.layer,
            tx,
            leg.dialog,
            on_ack_timeout=lambda _dialog: self.post(Hangup("no ACK from the supervisor")),
        )
        self._usage.answer(ok)

    # ---- started from the API: ring the supervisor's own phones -------------------------------

    async def _dial_supervisor(self) -> None:
        services = self.services
        if not self.targets:
            raise self._end("the supervisor has no registered phone")
        srtp = any(target.srtp for target in self.targets)  # a supervisor who must encrypt
        local = await services.media.create_endpoint(bridge_id=self.call.bridge_id, srtp=srtp)
        first = self.targets[0]
        leg = Leg(
            LegRole.MONITOR,
            local,
            first.latch_host,
            str(first.request_uri),
            self.started_at,
            srtp=srtp,
            require_srtp=srtp,
        )
        self.leg = leg
        offer = build_offer(
            local_address=services.sdp_address,
            local_port=local.rtp_port,
            session_id=leg.session_id,
            session_version=leg.session_version,
            codecs=DEFAULT_CODECS,
            crypto=offer_crypto() if srtp else (),
        )
        body = bytes(offer)
        for target in self.targets:
            contact = NameAddress(None, services.contact_uri(target.destination.transport), ())
            invite = agent_invite(
                target,
                body,
                contact=contact,
                allow=services.allow,
                user_agent=services.user_agent,
                call_id_host=services.sdp_address,
            )
            self._attempts.append(
                start_attempt(services.layer, target, invite, contact, self._on_response)
            )
        answered = await self._await_answer()
        await self._connect(answered, offer)

    def _on_response(self, attempt: Attempt, response: SipResponse, dialog: Dialog | None) -> None:
        if response.status >= 200:
            attempt.final_status = response.status
        wanted = self._winner is None and self.ended_at is None
        if 200 <= response.status < 300 and dialog is not None and not wanted:
            self._bye_dialog(dialog)
            return
        self.post(OutboundResponse(attempt, response, dialog))

    async def _await_answer(self) -> OutboundResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.services.ring_timeout
        try:
            while True:
                async with asyncio.timeout_at(deadline):
                    event = await self._events.get()
                if isinstance(event, Hangup):
                    raise self._end(event.cause)
                if not isinstance(event, OutboundResponse) or event.response.status < 200:
                    continue
                if event.response.status < 300 and event.dialog is not None:
                    self._winner = event.attempt
                    return event
                if not any(attempt.pending for attempt in self._attempts):
                    raise self._end("the supervisor's phone did not answer")
        except TimeoutError:
            raise self._end("the supervisor's phone did not answer") from None
        finally:
            for attempt in self._attempts:
                if attempt is not self._winner and attempt.pending:
                    attempt.usage.cancel()

    async def _connect(self, answered: OutboundResponse, offer: SessionDescription) -> None:
        leg, dialog = self.leg, answered.dialog
        assert leg is not None and dialog is not None
        services = self.services
        target = answered.attempt.target
        leg.dialog = dialog
        leg.uri = str(target.request_uri)
        leg.latch_host = target.latch_host
        leg.sip_status = answered.response.status
        services.register_dialog(dialog, self, leg)
        try:
            negotiated = parse_answer(offer, SessionDescription.parse(answered.response.body))
        except SipError:
            self._bye()
            raise self._end("the supervisor's phone answered unusable SDP") from None
        await apply_remote(services.media, leg, negotiated)
        await services.media.enable(
            leg.endpoint_id, latch=leg.latch_host is not None, latch_host=leg.latch_host
        )
        leg.answered_at = services.now()

    # ---- leaving ------------------------------------------------------------------------------

    def _bye_dialog(self, dialog: Dialog) -> None:
        try:
            bye = dialog.create_request("BYE")
        except SipError:
            return
        dialog.terminate()
        self.services.send_bye(bye, dialog.next_hop())

    def _bye(self) -> None:
        leg = self.leg
        if leg is not None and leg.dialog is not None and leg.ended_at is None:
            leg.ended_at = self.services.now()
            self._bye_dialog(leg.dialog)

    async def _leave(self) -> None:
        services = self.services
        self.ended_at = services.now()
        for attempt in self._attempts:
            if attempt.pending:
                attempt.usage.cancel()
        if self._usage is not None:
            self._usage.stop()
            self._usage.on_ack_timeout = None
        leg = self.leg
        if leg is not None:
            leg.ended_at = leg.ended_at or self.ended_at
            if leg.dialog is not None:
                services.unregister_dialog(leg.dialog)
            with contextlib.suppress(MediaError):  # gone already with the call's bridge
                await services.media.close_endpoint(leg.endpoint_id)
        try:
            await self.host.session_ended(self)
        finally:
            if self.on_finished is not None:
                self.on_finished(self)
            logger.info(
                "monitoring %s on call %s ended: %s", self.id, self.call.call_id, self.end_cause
            )
