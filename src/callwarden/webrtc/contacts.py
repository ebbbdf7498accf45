"""The browser phones' SIP side: one user agent inside the node, on loopback.

Each connected browser phone is one more registered contact of its user, `sip:<key>@<host>:
<port>`, where `key` is a random name for that phone. The node reaches it like any phone: an
INVITE with the call's SDP offer (its media endpoint) arrives here and is handed to the phone
the Request-URI names (480 when there is none); the phone rings the browser, then answers (200
with the relay's port), or refuses. CANCEL and BYE end the call; BYE goes back when the browser
hangs up (RFC 3261 15.1). It speaks to the node only over SIP and RTP, like a phone.
"""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Callable
from typing import Protocol

from callwarden.sip.addressing import Source
from callwarden.sip.clock import Clock
from callwarden.sip.dialog import Dialog
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.headers import NameAddress
from callwarden.sip.invite_usage import InviteClientUsage, InviteServerUsage
from callwarden.sip.message import SipRequest, SipResponse, make_response
from callwarden.sip.sdp import (
    DEFAULT_CODECS,
    NegotiatedMedia,
    build_offer,
    negotiate_answer,
    parse_answer,
)
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.sip.session_description import SessionDescription
from callwarden.sip.transaction import TransactionLayer
from callwarden.sip.transport import SipTransport
from callwarden.sip.tx_keys import new_tag
from callwarden.sip.ua_core import UserAgentCore
from callwarden.sip.uri import SipUri

__all__ = ["BrowserCall", "BrowserContacts", "CallHolder", "CallPhase"]

logger = logging.getLogger(__name__)

USER_AGENT = "callwarden-browser-phone"
SDP = "application/sdp"


class CallPhase(enum.Enum):
    RINGING = "ringing"
    TALKING = "talking"
    ENDED = "ended"


class CallHolder(Protocol):
    """The browser phone a call rings at."""

    def offer(self, call: BrowserCall) -> bool:
        """A call rings: True when it is taken (ringing in the browser)."""
        ...

    def call_ended(self, call: BrowserCall, reason: str) -> None:
        """The other side ended the call (CANCEL, BYE, no ACK)."""
        ...


class BrowserCall:
    """One INVITE to a browser phone (the UAS side, RFC 3261 13.3)."""

    def __init__(self, contacts: BrowserContacts, server_tx: InviteServerTransaction) -> None:
        self._contacts = contacts
        self.server_tx = server_tx
        self.request = server_tx.request
        self.call_id = self.request.call_id
        self.local_tag = new_tag()
        self.phase = CallPhase.RINGING
        self.dialog: Dialog | None = None
        self._usage: InviteServerUsage | None = None
        self._answer: tuple[SessionDescription, NegotiatedMedia] | None = None
        self._session_id = secrets.randbelow(2**31)
        self._session_version = 1
        self._local = ("", 0)
        self._reoffer: InviteClientUsage | None = None
        self.holder: CallHolder | None = None

    def prepare(self, host: str, port: int) -> NegotiatedMedia:
        """Negotiate the answer for the relay at `host`:`port` (SipError: 488)."""
        try:
            offer = SessionDescription.parse(self.request.body)
        except SipParseError as error:
            raise SipError(f"unusable offer: {error}", 488) from error
        self._local = (host, port)
        self._answer = negotiate_answer(
            offer,
            DEFAULT_CODECS,
            local_address=host,
            local_port=port,
            session_id=self._session_id,
            session_version=self._session_version,
        )
        return self._answer[1]

    def reoffer(self, *, hold: bool, on_done: Callable[[NegotiatedMedia | None], None]) -> None:
        """Put the call on hold (`sendonly`) or take it off (`sendrecv`) with a re-INVITE
        (RFC 3264 8.4); `on_done` gets what was agreed, or None when the node refused."""
        if self.phase is not CallPhase.TALKING or self.dialog is None:
            raise SipError("no call to hold", 481)
        if self._reoffer is not None:
            raise SipError("a re-INVITE is in progress", 491)
        self._session_version += 1
        offer = build_offer(
            local_address=self._local[0],
            local_port=self._local[1],
            session_id=self._session_id,
            session_version=self._session_version,
            direction="sendonly" if hold else "sendrecv",
        )
        invite = self.dialog.create_request("INVITE", body=bytes(offer))
        invite.headers.add("Contact", str(self._contacts.contact(None)))

        def answered(response: SipResponse, dialog: Dialog | None) -> None:
            if response.status < 200:
                return
            self._reoffer = None
            negotiated = None
            if response.status < 300:
                try:
                    negotiated = parse_answer(offer, SessionDescription.parse(response.body))
                except SipError as error:
                    logger.warning("re-INVITE answer unusable (call %s): %s", self.call_id, error)
            on_done(negotiated)

        self._reoffer = InviteClientUsage(
            self._contacts.layer, invite, self.dialog.next_hop(), answered, dialog=self.dialog
        )
        self._reoffer.start()

    def _response(self, status: int) -> SipResponse:
        response = make_response(self.request, status, to_tag=self.local_tag)
        if status < 300:
            response.headers.add("Contact", str(self._contacts.contact(None)))
        return response

    def ring(self) -> None:
        self.server_tx.respond(self._response(180))

    def answer(self) -> NegotiatedMedia:
        """200 OK with the SDP answer, repeated until the ACK (RFC 3261 13.3.1.4)."""
        if self.phase is not CallPhase.RINGING or self._answer is None:
            raise SipError("not ringing", 481)
        description, negotiated = self._answer
        response = self._response(200)
        response.headers.add("Content-Type", SDP)
        response.body = bytes(description)
        dialog = Dialog.as_uas(
            self.request,
            response,
            local_contact=self._contacts.contact(None),
            flow=self.server_tx.source.reply_destination(),
        )
        self._usage = InviteServerUsage(
            self._contacts.layer, self.server_tx, dialog, on_ack_timeout=self._no_ack
        )
        self._usage.answer(response)
        self.dialog = dialog
        self._contacts.register_dialog(dialog, self)
        self.phase = CallPhase.TALKING
        return negotiated

    def reject(self, status: int) -> None:
        if self.phase is CallPhase.RINGING:
            self.server_tx.respond(self._response(status))
            self._finish()

    def hang_up(self) -> None:
        """End the call from the browser's side: BYE when talking, 486 while ringing."""
        if self.phase is CallPhase.RINGING:
            self.reject(486)
        elif self.phase is CallPhase.TALKING and self.dialog is not None:
            try:
                bye = self.dialog.create_request("BYE")
                self._contacts.layer.send_request(bye, self.dialog.next_hop(), _bye_answered)
            except SipError as error:
                logger.warning("cannot send BYE (call %s): %s", self.call_id, error)
            self._finish()

    def _finish(self) -> None:
        if self.phase is CallPhase.ENDED:
            return
        self.phase = CallPhase.ENDED
        if self._usage is not None:
            self._usage.stop()
        if self.dialog is not None:
            self.dialog.terminate()
            self._contacts.unregister_dialog(self.dialog)
        self._contacts.forget(self)

    def remote_ended(self, reason: str) -> None:
        if self.phase is CallPhase.ENDED:
            return
        self._finish()
        if self.holder is not None:
            self.holder.call_ended(self, reason)

    def on_ack(self, request: SipRequest) -> None:
        if self._usage is not None:
            self._usage.receive_ack(request)

    def _no_ack(self, dialog: Dialog) -> None:
        self.remote_ended("no_ack")


def _bye_answered(response: SipResponse) -> None:
    logger.debug("BYE answered %s (call %s)", response.status, response.call_id)


class BrowserContacts(UserAgentCore[BrowserCall]):
    """The user agent of every browser phone of the node (a transaction user)."""

    def __init__(self, clock: Clock, *, host: str) -> None:
        super().__init__()
        self.host = host
        self.transport = SipTransport(clock, host=host, port=0, enable_tcp=False)
        self.layer = TransactionLayer(self.transport, clock, self)
        self._phones: dict[str, CallHolder] = {}
        self._ringing: dict[int, BrowserCall] = {}

    async def start(self) -> None:
        await self.transport.start(self.layer)

    async def close(self) -> None:
        for call in list(self._ringing.values()) + list(self._dialog_calls.values()):
            call.hang_up()
        await self.transport.close()

    def contact(self, key: str | None) -> NameAddress:
        return NameAddress(None, self.transport.contact_uri("UDP", key))

    def new_key(self) -> str:
        return f"browser-{secrets.token_hex(12)}"

    def add(self, key: str, phone: CallHolder) -> None:
        self._phones[key] = phone

    def remove(self, key: str) -> None:
        self._phones.pop(key, None)

    def register_dialog(self, dialog: Dialog, call: BrowserCall) -> None:
        super().register_dialog(dialog, call)
        self._ringing.pop(id(call.server_tx), None)

    def forget(self, call: BrowserCall) -> None:
        self._ringing.pop(id(call.server_tx), None)

    # -- TransactionUser (INVITE, BYE and ACK; the rest is UserAgentCore's) ----------------------

    def _on_invite(self, server_tx: InviteServerTransaction) -> None:
        request = server_tx.request
        uri = request.uri
        phone = self._phones.get(uri.user or "") if isinstance(uri, SipUri) else None
        if phone is None:
            server_tx.respond(make_response(request, 480, to_tag=new_tag()))
            return
        call = BrowserCall(self, server_tx)
        self._ringing[id(server_tx)] = call
        if not phone.offer(call):
            self._ringing.pop(id(server_tx), None)
            if server_tx.last_response is None or server_tx.last_response.status < 200:
                server_tx.respond(make_response(request, 486, to_tag=call.local_tag))
            return
        call.holder = phone

    def _on_bye(self, call: BrowserCall, request: SipRequest) -> None:
        call.remote_ended("remote_hung_up")

    def on_ack(self, request: SipRequest, source: Source) -> None:
        call = self.call_of(request)
        if call is not None:
            call.on_ack(request)

    def on_cancel(self, server_tx: InviteServerTransaction) -> None:
        call = self._ringing.pop(id(server_tx), None)
        if call is not None and call.phase is CallPhase.RINGING:
            server_tx.respond(make_response(server_tx.request, 487, to_tag=call.local_tag))
            call.remote_ended("cancelled")
        elif server_tx.last_response is None or server_tx.last_response.status < 200:
            server_tx.respond(make_response(server_tx.request, 487, to_tag=new_tag()))
