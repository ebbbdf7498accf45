"""The configuration model (teams, roles, users, trunks, queues) as immutable values.

These are what the rest of the system reads; the store maps them to and from tables. Secrets
(password hashes, SIP HA1s, trunk passwords) are kept out of `repr` so they never reach a log line.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from callwarden.domain.ids import QueueId, RoleId, TeamId, TrunkId, UserId
from callwarden.domain.patterns import DialPattern, matches_any
from callwarden.domain.permissions import Grant

DEFAULT_ROLE_NAMES: tuple[str, ...] = ("operator", "supervisor", "admin", "auditor")
"""The roles every installation has; they cannot be removed."""


class Transport(enum.Enum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class QueueStrategy(enum.Enum):
    """How a queue picks the operator to offer a call to (the ACD issue implements them)."""

    LONGEST_IDLE = "longest_idle"
    ROUND_ROBIN = "round_robin"
    FEWEST_CALLS = "fewest_calls"
    RING_ALL = "ring_all"
    SKILLS = "skills"


class RecordingPolicy(enum.Enum):
    """Which of a queue's calls are recorded."""

    ALL = "all"
    NONE = "none"
    ON_DEMAND = "on_demand"


class MonitoringTransparency(enum.Enum):
    """Whether a team's operators are told they are monitored: not at all, on their screen, or
    on their screen and with a short tone only they hear. The customer is never told."""

    SILENT = "silent"
    SCREEN = "screen"
    SCREEN_AND_TONE = "screen_and_tone"


class QueueOverflow(enum.Enum):
    """Where a queue sends a call that waited its maximum (the ACD carries it out)."""

    QUEUE = "queue"
    USER = "user"
    VOICEMAIL = "voicemail"
    HANGUP = "hangup"


class HoldMusic(enum.Enum):
    """What a queue's waiting callers hear between announcements."""

    TONES = "tones"
    MELODY = "melody"


class SipDigestAlgorithm(enum.Enum):
    """The digest algorithms whose HA1 is stored (RFC 7616 section 3.2, RFC 8760)."""

    MD5 = "MD5"
    SHA256 = "SHA-256"


@dataclass(frozen=True)
class Team:
    id: TeamId
    name: str
    display_name: str
    parent_id: TeamId | None = None
    recording: RecordingPolicy | None = None
    """How its members' direct calls (not queue calls) are recorded; None: as the parent."""
    monitoring_transparency: MonitoringTransparency | None = None
    """Whether its operators are told they are monitored; None: as the node's
    `monitor_notify_teams` setting says (revision 0010)."""


@dataclass(frozen=True)
class Role:
    """A named set of grants (see `callwarden.domain.permissions`) and a dial-out allow-list.

    The built-in roles' grants are `DEFAULT_ROLE_GRANTS`; custom roles get theirs from the
    provisioning file.
    """

    id: RoleId
    name: str
    description: str = ""
    outbound_patterns: tuple[DialPattern, ...] = ()
    builtin: bool = False
    grants: frozenset[Grant] = frozenset()

    def allows_dialling(self, number: str) -> bool:
        """Whether this role's outbound allow-list admits `number` (empty list: nothing)."""
        return matches_any(self.outbound_patterns, number)


@dataclass(frozen=True)
class SipCredentials:
    """HA1 = H(username ":" realm ":" password) per algorithm; never the password itself."""

    realm: str
    ha1_md5: str = field(repr=False)
    ha1_sha256: str = field(repr=False)

    def ha1(self, algorithm: SipDigestAlgorithm) -> str:
        if algorithm is SipDigestAlgorithm.MD5:
            return self.ha1_md5
        return self.ha1_sha256


@dataclass(frozen=True)
class User:
    id: UserId
    username: str
    display_name: str
    role_id: RoleId
    team_id: TeamId | None = None
    extension: str | None = None
    enabled: bool = True
    password_hash: str | None = field(default=None, repr=False)
    sip: SipCredentials | None = None
    supervised_team_ids: frozenset[TeamId] = frozenset()
    recording: RecordingPolicy | None = None
    """How their direct calls (not queue calls) are recorded; None: as their team."""

    @property
    def can_sign_in_to_web(self) -> bool:
        return self.enabled and self.password_hash is not None

    def sip_credentials_for(self, realm: str) -> SipCredentials | None:
        """The SIP credentials if the user is enabled and they were computed for `realm`."""
        if not self.enabled or self.sip is None or self.sip.realm != realm:
            return None
        return self.sip


@dataclass(frozen=True)
class InboundNumber:
    """A number a trunk delivers to us; `destination` (an extension or queue number) or None
    to route the number as dialled."""

    number: str
    destination: str | None = None


@dataclass(frozen=True)
class Trunk:
    """A SIP carrier. `password` is stored in plain text for now (to be sealed by the key ring)."""

    id: TrunkId
    name: str
    host: str
    port: int = 5060
    transport: Transport = Transport.UDP
    inbound_numbers: tuple[InboundNumber, ...] = ()
    outbound_patterns: tuple[DialPattern, ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    register: bool = False
    enabled: bool = True

    def routes_outbound(self, number: str) -> bool:
        return self.enabled and matches_any(self.outbound_patterns, number)


@dataclass(frozen=True)
class QueueMember:
    user_id: UserId
    penalty: int = 0
    skill_level: int = 1


@dataclass(frozen=True)
class Queue:
    id: QueueId
    name: str
    display_name: str
    number: str
    team_id: TeamId
    strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE
    members: tuple[QueueMember, ...] = ()
    wrap_up_seconds: int = 10
    ring_timeout_seconds: int = 15
    max_no_answer: int = 3
    max_wait_seconds: int | None = None
    service_level_seconds: int = 20
    service_level_percent: int = 80
    required_skill_level: int = 0
    recording: RecordingPolicy = RecordingPolicy.ALL
    overflow: QueueOverflow = QueueOverflow.HANGUP
    overflow_queue_id: QueueId | None = None
    """The target of `QueueOverflow.QUEUE`."""
    overflow_user_id: UserId | None = None
    """The target of `QueueOverflow.USER`."""
    announce_seconds: int | None = 30
    """Seconds between position / expected-wait announcements (None: no announcements)."""
    music_on_hold: HoldMusic = HoldMusic.TONES

    @property
    def member_ids(self) -> frozenset[UserId]:
        return frozenset(member.user_id for member in self.members)
