"""Events of the SIP edge's defences, published on the bus for admins: a source banned or let
go again, password guessing on one account from many addresses, and toll-fraud alerts (a
burst of outbound calls, a first call to a new country).

They are about the installation, not about a team's calls, so they need an admin-level
permission: `settings.manage` on the (global) settings resource, which only the built-in
`admin` role holds (at ALL scope). A supervisor or operator never receives them, whatever
team the caller belongs to; `user_id` and `team_id` stay None for that reason (an event with a
team would be a team resource, and TEAM-scope holders of the permission do not exist, but the
rule is simpler when they cannot arise).

`SIP_SECURITY_EVENT_TYPES` is what a node registers with its `EventCodec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from callwarden.bus.event import Event
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind

__all__ = [
    "SIP_SECURITY_EVENT_TYPES",
    "AccountGuessingAlert",
    "CallBurstAlert",
    "CallRefused",
    "NewDestinationAlert",
    "SipSecurityEvent",
    "SourceBanned",
    "SourceUnbanned",
]


@dataclass(frozen=True, kw_only=True)
class SipSecurityEvent(Event):
    """Base of the SIP edge's events: admins only (`settings.manage`, global)."""

    permission: ClassVar[Permission] = Permission.SETTINGS_MANAGE
    resource_kind: ClassVar[ResourceKind] = ResourceKind.SETTINGS


@dataclass(frozen=True, kw_only=True)
class SourceBanned(SipSecurityEvent):
    """Every SIP message from `address` is dropped unread for `seconds` (until `until`).

    `reason` is the offence that crossed the threshold (`rate`, `scanner`, `malformed`,
    `auth_failure`); `offences` how many were counted in the window; `ban_number` how many
    times this address has been banned since the node started (each ban lasts longer)."""

    kind: ClassVar[str] = "sip.source_banned"

    address: str
    reason: str
    offences: int
    seconds: float
    until: datetime
    ban_number: int
    user_agent: str = ""
    node: str = ""
    """The node that banned it; the other nodes on the bus apply the ban too (until `until`)."""


@dataclass(frozen=True, kw_only=True)
class SourceUnbanned(SipSecurityEvent):
    """The ban of `address` ran out (`reason="expired"`) or an admin lifted it."""

    kind: ClassVar[str] = "sip.source_unbanned"

    address: str
    reason: str = "expired"
    node: str = ""
    """The node whose ban ended; the nodes that applied it lift it too."""


@dataclass(frozen=True, kw_only=True)
class CallBurstAlert(SipSecurityEvent):
    """`calls` outbound calls were started by `party` (a user or a trunk, `party_kind`) within
    `window` seconds: more than its configured burst threshold."""

    kind: ClassVar[str] = "sip.toll_call_burst"

    party_kind: str
    party: str
    calls: int
    window: float


@dataclass(frozen=True, kw_only=True)
class NewDestinationAlert(SipSecurityEvent):
    """The first outbound call since the node started to country code `country_code` (`+44`),
    placed by user `party` to `number` (the number as dialled)."""

    kind: ClassVar[str] = "sip.toll_new_destination"

    party: str
    country_code: str
    number: str


@dataclass(frozen=True, kw_only=True)
class AccountGuessingAlert(SipSecurityEvent):
    """`failures` failed attempts on the SIP account `username` (which may not exist) within
    `window` seconds, from addresses that never authenticated as it: the account is blocked for
    such addresses for a while (its own phones go on working)."""

    kind: ClassVar[str] = "sip.account_guessing"

    username: str
    failures: int
    window: float


@dataclass(frozen=True, kw_only=True)
class CallRefused(SipSecurityEvent):
    """A call attempt refused for toll-fraud reasons: a destination outside the caller's
    allow-list (403 from the dial plan), too many calls, or the outbound call rate. `party` is
    `user:<id>` or `trunk:<id>` (or the caller's label), `number` what was dialled."""

    kind: ClassVar[str] = "sip.call_refused"

    party: str
    number: str
    status: int
    reason: str


SIP_SECURITY_EVENT_TYPES: tuple[type[Event], ...] = (
    SourceBanned,
    SourceUnbanned,
    CallBurstAlert,
    NewDestinationAlert,
    AccountGuessingAlert,
    CallRefused,
)
