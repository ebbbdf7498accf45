"""Dialogs (RFC 3261 12): state, in-dialog request construction, matching and CSeq ordering.

A :class:`Dialog` is created by the UAS from the request and its 1xx/2xx (12.1.1) or by the UAC
from the response (12.1.2); it builds requests within the dialog (12.2.1.1) including the ACK
for a 2xx (13.2.2.4), refreshes its remote target (12.2.1.2, 12.2.2) and checks the remote
CSeq order (12.2.2). A :class:`DialogTable` finds the dialog of an incoming request and answers
481 / 500 through :class:`~callwarden.sip.errors.SipError`.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field, replace

from callwarden.sip.addressing import Destination, TransportName, uri_destination
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.headers import NameAddress
from callwarden.sip.message import Headers, SipRequest, SipResponse
from callwarden.sip.tx_base import check_transition
from callwarden.sip.uri import SipUri, Uri

__all__ = [
    "DIALOG_TRANSITIONS",
    "TARGET_REFRESH_METHODS",
    "Dialog",
    "DialogId",
    "DialogState",
    "DialogTable",
]

logger = logging.getLogger(__name__)

DialogId = tuple[str, str, str]
"""(Call-ID, local tag, remote tag) - RFC 3261 12."""

TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
"""Methods whose requests carry a Contact that refreshes the remote target (RFC 3261 12.2)."""

_MAX_CSEQ = 2**32 - 1


class DialogState(enum.Enum):
    """RFC 3261 12: a dialog is early (after a 1xx with a To tag) or confirmed (after a 2xx)."""

    EARLY = "Early"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


DIALOG_TRANSITIONS = {
    DialogState.EARLY: frozenset({DialogState.CONFIRMED, DialogState.TERMINATED}),
    DialogState.CONFIRMED: frozenset({DialogState.TERMINATED}),
    DialogState.TERMINATED: frozenset[DialogState](),
}


def _without_tag(party: NameAddress) -> NameAddress:
    params = tuple(param for param in party.params if param[0].lower() != "tag")
    return NameAddress(party.display_name, party.uri, params)


def _route_set(message: SipRequest | SipResponse) -> tuple[NameAddress, ...]:
    return tuple(NameAddress.parse(value) for value in message.headers.get_all("Record-Route"))


def _first_contact_uri(message: SipRequest | SipResponse) -> Uri | None:
    contacts = message.contacts
    return contacts[0].uri if contacts else None


def _is_loose(route: NameAddress) -> bool:
    return isinstance(route.uri, SipUri) and route.uri.has_param("lr")


@dataclass(slots=True, eq=False)
class Dialog:
    """The state of one dialog (RFC 3261 12): identifiers, sequence numbers, routing.

    ``local_party`` / ``remote_party`` are the From/To name-addresses without tags (their URIs
    are the RFC's local and remote URI). ``local_contact`` goes into target refresh requests.
    ``flow``, when set, is where requests of this dialog are sent regardless of the route set
    and remote target - e.g. the address a phone behind NAT really sends from (RFC 3581 spirit;
    RFC 5626 flows).
    """

    call_id: str
    local_tag: str
    remote_tag: str
    local_party: NameAddress
    remote_party: NameAddress
    local_cseq: int
    remote_cseq: int | None
    remote_target: Uri
    route_set: tuple[NameAddress, ...]
    secure: bool
    is_uas: bool
    local_contact: NameAddress | None = None
    flow: Destination | None = None
    state: DialogState = DialogState.EARLY
    invite_cseq: int | None = field(default=None)
    _fixed_headers: list[tuple[str, str, str]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    # -- creation ------------------------------------------------------------------------------

    @classmethod
    def as_uas(
        cls,
        request: SipRequest,
        response: SipResponse,
        *,
        local_contact: NameAddress | None = None,
        secure_transport: bool = False,
        flow: Destination | None = None,
    ) -> Dialog:
        """The dialog a UAS creates by sending ``response`` (1xx/2xx with a To tag, 12.1.1).

        Route set: the request's Record-Route, in order. Remote target: its Contact. Remote
        CSeq: its CSeq; the local one starts empty (0, so the first request gets 1).
        """
        local_tag = response.to.tag
        remote_tag = request.from_.tag
        if local_tag is None or remote_tag is None:
            raise SipError("a dialog needs a From tag and a To tag", 400)
        target = _first_contact_uri(request)
        if target is None:
            raise SipError("missing Contact in a dialog-creating request", 400)
        dialog = cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_party=_without_tag(request.to),
            remote_party=_without_tag(request.from_),
            local_cseq=0,
            remote_cseq=request.cseq.number,
            remote_target=target,
            route_set=_route_set(request),
            secure=secure_transport
            and isinstance(request.uri, SipUri)
            and request.uri.scheme == "sips",
            is_uas=True,
            local_contact=local_contact,
            flow=flow,
            invite_cseq=request.cseq.number if request.method == "INVITE" else None,
        )
        if 200 <= response.status < 300:
            dialog.transition(DialogState.CONFIRMED)
        return dialog

    @classmethod
    def as_uac(
        cls,
        request: SipRequest,
        response: SipResponse,
        *,
        local_contact: NameAddress | None = None,
        secure_transport: bool = False,
        flow: Destination | None = None,
    ) -> Dialog:
        """The dialog a UAC creates on receiving ``response`` (1xx/2xx with a To tag, 12.1.2).

        Route set: the response's Record-Route, reversed. Remote target: its Contact (the
        Request-URI when a broken peer sent none). Local CSeq: the request's; remote empty.
        """
        remote_tag = response.to.tag
        local_tag = request.from_.tag
        if local_tag is None or remote_tag is None:
            raise SipError("a dialog needs a From tag and a To tag", 400)
        target = _first_contact_uri(response) or request.uri
        dialog = cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_party=_without_tag(request.from_),
            remote_party=_without_tag(request.to),
            local_cseq=request.cseq.number,
            remote_cseq=None,
            remote_target=target,
            route_set=tuple(reversed(_route_set(response))),
            secure=secure_transport
            and isinstance(request.uri, SipUri)
            and request.uri.scheme == "sips",
            is_uas=False,
            local_contact=local_contact,
            flow=flow,
            invite_cseq=request.cseq.number if request.method == "INVITE" else None,
        )
        if 200 <= response.status < 300:
            dialog.transition(DialogState.CONFIRMED)
        return dialog

    # -- state ---------------------------------------------------------------------------------

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    @property
    def local_uri(self) -> Uri:
        return self.local_party.uri

    @property
    def remote_uri(self) -> Uri:
        return self.remote_party.uri

    def transition(self, new: DialogState) -> None:
        """Move to ``new``; raises IllegalTransitionError for a move RFC 3261 12 lacks."""
        self.state = check_transition(DIALOG_TRANSITIONS, self.state, new)

    def terminate(self) -> None:
        """End the dialog (BYE sent or received, failure); idempotent."""
        if self.state is not DialogState.TERMINATED:
            self.transition(DialogState.TERMINATED)

    def on_response(self, response: SipResponse) -> None:
        """Apply a response to a request this side sent in the dialog (UAC role).

        A 2xx to the dialog-creating INVITE confirms an early dialog and recomputes the route
        set from it (13.2.2.4); a 1xx/2xx to a target refresh request updates the remote
        target from its Contact (12.2.1.2).
        """
        status = response.status
        if status >= 300 or status < 101:
            return
        method = response.cseq.method
        if (
            self.state is DialogState.EARLY
            and 200 <= status < 300
            and method == "INVITE"
            and not self.is_uas
        ):
            self.transition(DialogState.CONFIRMED)
            self.route_set = tuple(reversed(_route_set(response)))
        if method in TARGET_REFRESH_METHODS and (status >= 200 or self.state is DialogState.EARLY):
            self.refresh_target(response)

    def refresh_target(self, message: SipRequest | SipResponse) -> None:
        """Take the remote target from ``message``'s Contact, when it has one (12.2)."""
        target = _first_contact_uri(message)
        if target is not None:
            self.remote_target = target

    def check_request(self, request: SipRequest) -> None:
        """Apply the remote CSeq rule of RFC 3261 12.2.2 to an incoming in-dialog request.

        Lower CSeq than the last one -> SipError 500; otherwise it becomes the remote CSeq.
        ACK and CANCEL reuse their INVITE's number and are not ordered.
        """
        if request.method in ("ACK", "CANCEL"):
            return
        number = request.cseq.number
        if self.remote_cseq is not None and number < self.remote_cseq:
            raise SipError(
                f"CSeq {number} lower than {self.remote_cseq} in dialog {self.call_id}",
                500,
                headers=(("Retry-After", "1"),),
            )
        self.remote_cseq = number

    # -- requests within the dialog ------------------------------------------------------------

    def _routing(self) -> tuple[Uri, list[str]]:
        """Request-URI and Route values (RFC 3261 12.2.1.1, loose and strict routing)."""
        routes = self.route_set
        if not routes or _is_loose(routes[0]):
            return self.remote_target, [str(route) for route in routes]
        first = routes[0].uri
        if isinstance(first, SipUri):  # no method parameter nor headers in a Request-URI
            first = replace(first.without_params("method"), headers=())
        values = [str(route) for route in routes[1:]]
        values.append(f"<{self.remote_target}>")
        return first, values

    def _headers(self, method: str, cseq: int) -> tuple[Uri, Headers]:
        uri, routes = self._routing()
        entries = [("route", "Route", route) for route in routes]
        entries.append(("max-forwards", "Max-Forwards", "70"))
        entries += self._identity_headers()
        entries.append(("cseq", "CSeq", f"{cseq} {method}"))
        if method in TARGET_REFRESH_METHODS and self.local_contact is not None:
            entries.append(("contact", "Contact", str(self.local_contact)))
        return uri, Headers.from_entries(entries)

    def _identity_headers(self) -> list[tuple[str, str, str]]:
        """From, To and Call-ID: the same in every request of the dialog, so written once
        (the tags are tokens, checked when the dialog was made)."""
        fixed = self._fixed_headers
        if fixed is None:
            fixed = self._fixed_headers = [
                ("from", "From", str(self.local_party.with_tag(self.local_tag))),
                ("to", "To", str(self.remote_party.with_tag(self.remote_tag))),
                ("call-id", "Call-ID", self.call_id),
            ]
        return fixed

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> SipRequest:
        """A new request within the dialog (RFC 3261 12.2.1.1): BYE, re-INVITE, INFO...

        Increments the local CSeq. No Via: the transaction layer adds one with a new branch.
        """
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} is not built by create_request (see create_ack, cancel)")
        if self.state is DialogState.TERMINATED:
            raise SipError(f"dialog {self.call_id} is terminated", 481)
        if self.local_cseq >= _MAX_CSEQ:
            raise SipError("local CSeq exhausted", 500)
        self.local_cseq += 1
        uri, headers = self._headers(method, self.local_cseq)
        for name, value in extra_headers:
            headers.add(name, value)
        if body:
            headers.add("Content-Type", content_type or "application/sdp")
        if method == "INVITE":
            self.invite_cseq = self.local_cseq
        return SipRequest(method, uri, headers, body)

    def create_ack(
        self,
        invite: SipRequest,
        *,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipRequest:
        """The ACK for a 2xx to ``invite`` (RFC 3261 13.2.2.4).

        Built like any in-dialog request except its CSeq: the INVITE's number with method ACK;
        the INVITE's credentials are copied. It has no Via: it is sent outside any transaction
        (``TransactionLayer.send_stateless``), which gives it a new branch.
        """
        uri, headers = self._headers("ACK", invite.cseq.number)
        for name in ("Authorization", "Proxy-Authorization"):
            for value in invite.headers.get_all(name):
                headers.add(name, value)
        if body:
            headers.add("Content-Type", content_type or "application/sdp")
        return SipRequest("ACK", uri, headers, body)

    def next_hop(self, default_transport: TransportName = "UDP") -> Destination:
        """Where in-dialog requests go: the flow if set, else the first route or the remote
        target resolved statically (RFC 3263 4, numeric or resolvable host)."""
        if self.flow is not None:
            return self.flow
        uri = self.route_set[0].uri if self.route_set else self.remote_target
        if not isinstance(uri, SipUri):
            raise SipError(f"cannot route to {uri}", 416)
        return uri_destination(uri, default_transport=default_transport)


class DialogTable:
    """Dialogs by (Call-ID, local tag, remote tag) (RFC 3261 12.2.2)."""

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def __contains__(self, dialog: object) -> bool:
        return isinstance(dialog, Dialog) and self._dialogs.get(dialog.id) is dialog

    def add(self, dialog: Dialog) -> None:
        if dialog.id in self._dialogs:
            raise ValueError(f"dialog {dialog.id} already exists")
        self._dialogs[dialog.id] = dialog

    def remove(self, dialog: Dialog) -> None:
        if self._dialogs.get(dialog.id) is dialog:
            del self._dialogs[dialog.id]

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def find_for_request(self, request: SipRequest) -> Dialog | None:
        """The dialog an incoming request belongs to: To tag local, From tag remote."""
        local_tag = request.to.tag
        remote_tag = request.from_.tag
        if local_tag is None or remote_tag is None:
            return None
        return self._dialogs.get((request.call_id, local_tag, remote_tag))

    def find_for_response(self, response: SipResponse) -> Dialog | None:
        """The dialog a response to our request belongs to: From tag local, To tag remote."""
        local_tag = response.from_.tag
        remote_tag = response.to.tag
        if local_tag is None or remote_tag is None:
            return None
        return self._dialogs.get((response.call_id, local_tag, remote_tag))

    def match_request(self, request: SipRequest) -> Dialog:
        """The dialog of an in-dialog request (with a To tag), CSeq-checked (12.2.2).

        Raises SipError 481 when no live dialog matches, 500 when the CSeq is out of order.
        """
        try:
            dialog = self.find_for_request(request)
        except SipParseError:
            dialog = None
        if dialog is None or dialog.state is DialogState.TERMINATED:
            raise SipError(f"no dialog for {request.method} (call {request.call_id})", 481)
        dialog.check_request(request)
        return dialog
