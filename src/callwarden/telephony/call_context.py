"""What a call needs to know and to use, handed to it by the B2BUA.

`CallerInfo` describes the inbound leg (who called, from where), `OutboundTarget` the outbound
leg (where the dial plan sent the call), and `CallServices` is the narrow interface through
which a call reaches the SIP stack, the media engine and the CDR writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from callwarden.domain.cdr import CallDirection, NewCdr, RouteKind
from callwarden.domain.ids import TeamId, TrunkId, UserId
from callwarden.media.control import MediaControl
from callwarden.sip.addressing import Destination, TransportName
from callwarden.sip.dialog import Dialog
from callwarden.sip.message import SipRequest
from callwarden.sip.transaction import TransactionLayer
from callwarden.sip.uri import SipUri

if TYPE_CHECKING:
    from callwarden.telephony.call import Call, Leg


@dataclass(frozen=True, slots=True)
class CallerInfo:
    """The inbound leg: who is calling, from where, and what they dialled."""

    direction: CallDirection
    label: str
    dialled: str
    flow: Destination | None
    """Where requests to the caller go when they must bypass its Contact (NAT, TCP)."""
    latch_host: str | None
    """Accept the caller's RTP only from this host (its signalling address), or None to
    accept only the address its SDP names."""
    user_id: UserId | None = None
    trunk_id: TrunkId | None = None
    team_id: TeamId | None = None
    sdes: bool = False
    """The INVITE came over TLS, so an SRTP offer's SDES keys may be accepted."""
    require_srtp: bool = False
    """The media policy requires SRTP on this leg (never answered with plain RTP)."""


@dataclass(frozen=True, slots=True)
class OutboundTarget:
    """The outbound leg: where the call is sent and how it presents itself there."""

    request_uri: SipUri
    destination: Destination
    from_address: str
    to_address: str
    label: str
    route_kind: RouteKind
    flow: Destination | None
    latch_host: str | None
    user_id: UserId | None = None
    trunk_id: TrunkId | None = None
    trunk_credentials: tuple[str, str] | None = None
    trunk_realm: str | None = None
    """The only realm whose challenge `trunk_credentials` answer (None: the one asked for)."""
    srtp: bool = False
    """Offer SRTP with SDES keys (reached over TLS; the media policy requires it)."""


class CallServices(Protocol):
    """The B2BUA's side of a call."""

    media: MediaControl
    sdp_address: str
    ring_timeout: float
    allow: str
    user_agent: str

    @property
    def layer(self) -> TransactionLayer: ...

    def now(self) -> datetime:
        """Wall-clock time for call records (injected, so tests can fix it)."""
        ...

    def contact_uri(self, transport: TransportName) -> SipUri: ...

    def send_bye(self, request: SipRequest, destination: Destination) -> None: ...

    def register_dialog(self, dialog: Dialog, call: Call, leg: Leg) -> None: ...

    def unregister_dialog(self, dialog: Dialog) -> None: ...

    def write_cdr(self, cdr: NewCdr) -> None: ...
