"""The requests every simple user agent server answers the same way (RFC 3261 8.2, 12.2.2).

`UserAgentCore` is a transaction user for a phone-like agent: a new INVITE goes to its
`_on_invite`; BYE, OPTIONS and re-INVITE inside a dialog are answered here (200, 200 with
Allow, 488: the session stays as it is) and a BYE is reported to the dialog's call; BYE
outside a dialog gets 481 (15.1.2), other methods 405 with Allow. A `SipError` raised while
handling a request becomes its error response. Calls are whatever the agent keeps per dialog.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from callwarden.sip.dialog import Dialog, DialogId, DialogTable
from callwarden.sip.errors import SipError
from callwarden.sip.message import SipRequest, make_error_response
from callwarden.sip.server_transaction import InviteServerTransaction, ServerTransaction
from callwarden.sip.tx_keys import new_tag

__all__ = ["ALLOW", "UserAgentCore"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"

CallT = TypeVar("CallT")


class UserAgentCore(Generic[CallT]):
    def __init__(self) -> None:
        self._dialogs = DialogTable()
        self._dialog_calls: dict[DialogId, CallT] = {}

    def register_dialog(self, dialog: Dialog, call: CallT) -> None:
        self._dialogs.add(dialog)
        self._dialog_calls[dialog.id] = call

    def unregister_dialog(self, dialog: Dialog) -> None:
        self._dialogs.remove(dialog)
        self._dialog_calls.pop(dialog.id, None)

    def call_of(self, request: SipRequest) -> CallT | None:
        """The call of the dialog `request` belongs to (an ACK's), if any."""
        dialog = self._dialogs.find_for_request(request)
        return None if dialog is None else self._dialog_calls.get(dialog.id)

    def _on_invite(self, server_tx: InviteServerTransaction) -> None:
        raise NotImplementedError

    def _on_bye(self, call: CallT, request: SipRequest) -> None:
        raise NotImplementedError

    def on_request(self, request: SipRequest, server_tx: ServerTransaction) -> None:
        try:
            if request.to.tag is not None:
                self._in_dialog(request, server_tx)
            elif request.method == "INVITE":
                assert isinstance(server_tx, InviteServerTransaction)
                self._on_invite(server_tx)
            elif request.method == "OPTIONS":
                server_tx.respond_with(200, to_tag=new_tag(), headers=(("Allow", ALLOW),))
            elif request.method == "BYE":
                server_tx.respond_with(481, to_tag=new_tag())
            else:
                server_tx.respond_with(405, to_tag=new_tag(), headers=(("Allow", ALLOW),))
        except SipError as error:
            if not server_tx.is_terminated and server_tx.last_response is None:
                server_tx.respond(make_error_response(request, error, to_tag=new_tag()))

    def _in_dialog(self, request: SipRequest, server_tx: ServerTransaction) -> None:
        dialog = self._dialogs.match_request(request)  # 481 / 500 as SipError
        call = self._dialog_calls.get(dialog.id)
        if request.method == "BYE":
            server_tx.respond_with(200)
            if call is not None:
                self._on_bye(call, request)
        elif request.method == "OPTIONS":
            server_tx.respond_with(200, headers=(("Allow", ALLOW),))
        elif request.method == "INVITE":
            server_tx.respond_with(488)  # a re-INVITE: the session stays as it is (14.2)
        else:
            server_tx.respond_with(405, headers=(("Allow", ALLOW),))
