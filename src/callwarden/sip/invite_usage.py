"""The INVITE usage's transaction-less duties (RFC 3261 13.2.2.4, 13.3.1.4).

Since RFC 6026 neither INVITE transaction retransmits a 2xx or its ACK: the UA cores do.
:class:`InviteServerUsage` is the UAS side: it sends the 2xx, retransmits it (T1 doubling up to
T2) until the ACK arrives and, after 64*T1 without one, ends the dialog with a BYE.
:class:`InviteClientUsage` is the UAC side: it sends an INVITE, turns responses with a To tag
into dialogs (one per fork), and acknowledges every 2xx - including retransmissions - with the
same ACK, reporting only new information to its owner.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from callwarden.sip.addressing import Destination
from callwarden.sip.client_transaction import InviteClientTransaction
from callwarden.sip.clock import TimerHandle
from callwarden.sip.dialog import Dialog, DialogState, DialogTable
from callwarden.sip.errors import SipError
from callwarden.sip.headers import NameAddress
from callwarden.sip.message import SipRequest, SipResponse
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.sip.transaction import TransactionLayer

__all__ = ["InviteClientUsage", "InviteServerUsage"]

logger = logging.getLogger(__name__)

DialogResponseCallback = Callable[[SipResponse, Dialog | None], None]


class InviteServerUsage:
    """Answer an INVITE with a 2xx and keep sending it until the ACK (RFC 3261 13.3.1.4).

    ``on_ack_timeout(dialog)`` is called after 64*T1 without ACK, once the BYE that ends the
    dialog has been sent and the dialog marked terminated.
    """

    __slots__ = (
        "_cseq",
        "_deadline",
        "_interval",
        "_layer",
        "_timer",
        "acknowledged",
        "dialog",
        "on_ack_timeout",
        "server_tx",
        "timed_out",
    )

    def __init__(
        self,
        layer: TransactionLayer,
        server_tx: InviteServerTransaction,
        dialog: Dialog,
        *,
        on_ack_timeout: Callable[[Dialog], None] | None = None,
    ) -> None:
        self._layer = layer
        self.server_tx = server_tx
        self.dialog = dialog
        self.on_ack_timeout = on_ack_timeout
        self.acknowledged = False
        self.timed_out = False
        self._timer: TimerHandle | None = None
        self._interval = layer.timers.t1
        self._deadline = 0.0
        self._cseq = server_tx.request.cseq.number

    @property
    def cseq(self) -> int:
        return self._cseq

    def answer(self, response: SipResponse) -> None:
        """Send ``response`` (a 2xx) and start its retransmission timer."""
        if not 200 <= response.status < 300:
            raise ValueError(f"the INVITE usage retransmits 2xx only, not {response.status}")
        self.server_tx.respond(response)
        if self.dialog.state is DialogState.EARLY:
            self.dialog.transition(DialogState.CONFIRMED)
        clock = self._layer.clock
        self._deadline = clock.now() + self._layer.timers.timeout
        self._timer = clock.call_later(self._interval, self._on_timer)

    def receive_ack(self, ack: SipRequest) -> bool:
        """True (and retransmission stops) when ``ack`` acknowledges this 2xx (same CSeq)."""
        if ack.cseq.number != self.cseq:
            return False
        if not self.acknowledged:
            self.acknowledged = True
            self._stop()
        return True

    def stop(self) -> None:
        """Stop retransmitting (e.g. the call ended while waiting for the ACK)."""
        self._stop()

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self.acknowledged:
            return
        clock = self._layer.clock
        now = clock.now()
        if now >= self._deadline:
            self._give_up()
            return
        self.server_tx.retransmit_final()
        self._interval = min(2 * self._interval, self._layer.timers.t2)
        self._timer = clock.call_later(min(self._interval, self._deadline - now), self._on_timer)

    def _give_up(self) -> None:
        """No ACK within 64*T1: end the dialog with a BYE (RFC 3261 13.3.1.4)."""
        self.timed_out = True
        dialog = self.dialog
        logger.info("no ACK for the 2xx within 64*T1: sending BYE (call %s)", dialog.call_id)
        if dialog.state is not DialogState.TERMINATED:
            try:
                bye = dialog.create_request("BYE")
                destination = dialog.next_hop(self.server_tx.source.transport)
                self._layer.send_request(bye, destination, _ignore_response)
            except SipError as error:
                logger.warning("cannot send BYE (call %s): %s", dialog.call_id, error)
            dialog.terminate()
        if self.on_ack_timeout is not None:
            self.on_ack_timeout(dialog)


def _ignore_response(response: SipResponse) -> None:
    logger.debug("BYE answered %s (call %s)", response.status, response.call_id)


class InviteClientUsage:
    """Send an INVITE (initial or re-INVITE) and do the UAC core's part (RFC 3261 13.2.2).

    ``on_response(response, dialog)`` gets each provisional response (with its early dialog
    when it carries a To tag), the first 2xx of each dialog (forks create several), and the
    final non-2xx. Retransmitted 2xx are acknowledged again with the same ACK and not
    reported. For a re-INVITE pass the existing ``dialog``. New dialogs are added to
    ``dialogs`` when given.
    """

    def __init__(
        self,
        layer: TransactionLayer,
        invite: SipRequest,
        destination: Destination,
        on_response: DialogResponseCallback,
        *,
        dialog: Dialog | None = None,
        dialogs: DialogTable | None = None,
        local_contact: NameAddress | None = None,
        flow: Destination | None = None,
    ) -> None:
        if invite.method != "INVITE":
            raise ValueError("InviteClientUsage sends INVITE requests")
        self._layer = layer
        self.invite = invite
        self.destination = destination
        self.on_response = on_response
        self.dialog = dialog
        self._table = dialogs
        self._local_contact = local_contact
        self._flow = flow
        self.dialogs: dict[str, Dialog] = {}
        if dialog is not None:
            self.dialogs[dialog.remote_tag] = dialog
        self._acks: dict[str, SipRequest] = {}
        self.transaction: InviteClientTransaction | None = None

    def start(self) -> InviteClientTransaction:
        tx = self._layer.send_request(self.invite, self.destination, self._on_response)
        assert isinstance(tx, InviteClientTransaction)
        self.transaction = tx
        return tx

    def cancel(self) -> None:
        """CANCEL the INVITE (sent once a provisional response arrived, RFC 3261 9.1)."""
        if self.transaction is not None:
            self.transaction.cancel()

    def _dialog_for(self, response: SipResponse) -> Dialog | None:
        tag = response.to.tag
        if tag is None:
            return None
        if self.dialog is not None:
            return self.dialog if tag == self.dialog.remote_tag else None
        dialog = self.dialogs.get(tag)
        if dialog is None:
            dialog = Dialog.as_uac(
                self.invite,
                response,
                local_contact=self._local_contact,
                secure_transport=self.destination.transport == "TLS",
                flow=self._flow,
            )
            self.dialogs[tag] = dialog
            if self._table is not None:
                self._table.add(dialog)
        return dialog

    def _on_response(self, response: SipResponse) -> None:
        status = response.status
        if status < 200:
            dialog = None
            if status > 100:
                try:
                    dialog = self._dialog_for(response)
                    if dialog is not None:
                        dialog.on_response(response)
                except SipError as error:  # e.g. a malformed Contact: no early dialog then
                    logger.warning("provisional response without a usable dialog (call %s): %s",
                                   response.call_id, error)  # fmt: skip
                    dialog = None
            self.on_response(response, dialog)
            return
        if status >= 300:
            for dialog in self.dialogs.values():
                if dialog.state is DialogState.EARLY:
                    dialog.terminate()
            self.on_response(response, self.dialog)
            return
        try:
            dialog = self._dialog_for(response)
            if dialog is None:
                logger.warning("2xx without To tag dropped (call %s)", response.call_id)
                return
            tag = dialog.remote_tag
            ack = self._acks.get(tag)
            first = ack is None
            if ack is None:
                dialog.on_response(response)
                ack = dialog.create_ack(self.invite)
                self._acks[tag] = ack
        except SipError as error:
            logger.warning("unusable 2xx (call %s): %s", response.call_id, error)
            return
        self._layer.send_stateless(ack, dialog.next_hop(self.destination.transport))
        ack.release_parsed()  # kept only to be sent again, until the transaction's Timer M
        if first:
            self.on_response(response, dialog)
