"""The per-source guard in front of the SIP application: rate limits, scanner refusal and
automatic temporary bans (fail2ban, built in).

It sits between the transport and the transaction layer. The transport asks it about every
received message before parsing (`admits`): a banned address is dropped unread, and every
other message takes a token from its address's bucket (`requests_per_second`, `burst`); a
message beyond the bucket is dropped and counts as an offence. Parsed requests whose
`User-Agent` names a known scanner are dropped (no answer: a scanner learns nothing, not even
that a SIP server listens) and count `scanner_offences` at once. Unparseable messages
(`on_malformed`) and failed digest authentications (`on_auth_failure`, from the SIP auth guard)
count one each. When an address collects `ban_threshold` offences within `offence_window`
seconds it is banned for `ban_seconds`, doubled for each further ban up to `max_ban_seconds`.

IPv6 sources are counted and banned by their /64 (one subscriber's allocation). Trusted
sources are never limited nor banned: the configured networks (CIDRs, e.g. the office LAN or
the carrier's range) and whatever `is_trusted_host` says (the node passes the enabled trunks'
hosts from the directory). The guard judges addresses, never accounts: an
attacker failing on alice's account bans the attacker's address; alice on her own address is
untouched (the per-account throttle of the auth guard is keyed by address and user as well).

Bans and their ends are published on the bus (`SourceBanned`, `SourceUnbanned`: admins see
them, stamped with this node's `node_id`) and logged in one line with the address (for an
external fail2ban or SIEM as well). Every node applies the bans the others publish
(`adopt_ban`, fed by `shared_bans.SharedBans`): an address banned on one node is dropped by all
until the ban ends where it was made; an adopted ban is not published again.
Tables are bounded: the counting table evicts its least recently seen address; bans beyond
`max_bans` evict the one ending soonest.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from callwarden.bus.event import Event
from callwarden.sip.addressing import Source
from callwarden.sip.clock import Clock, TimerHandle
from callwarden.sip.message import SipMessage, SipRequest
from callwarden.sip.transport import TransportUser
from callwarden.telephony.security_events import SourceBanned, SourceUnbanned

logger = logging.getLogger(__name__)

SCANNER_USER_AGENTS: tuple[str, ...] = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "vaxsipuseragent",
    "sundayddr",
    "iwar",
    "sivus",
    "pplsip",
    "smap",
    "siparmyknife",
    "sipptk",
    "voiper",
)
"""Lower-case substrings of the User-Agent of SIP scanners seen in the wild (SIPVicious's
svmap/svwar/svcrack send `friendly-scanner`; the others from honeypot and fail2ban lists).
Real phones never send them."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Offence:
    RATE = "rate"
    SCANNER = "scanner"
    MALFORMED = "malformed"
    AUTH_FAILURE = "auth_failure"


@dataclass(frozen=True, slots=True)
class SourceGuardSettings:
    requests_per_second: float = 20.0
    burst: int = 100
    ban_threshold: int = 20
    offence_window: float = 60.0
    ban_seconds: float = 600.0
    max_ban_seconds: float = 86_400.0
    scanner_offences: int = 10
    trusted_networks: tuple[str, ...] = ()
    scanner_user_agents: tuple[str, ...] = SCANNER_USER_AGENTS
    max_sources: int = 100_000
    max_bans: int = 100_000

    def __post_init__(self) -> None:
        if self.requests_per_second <= 0 or self.burst < 1 or self.ban_threshold < 1:
            raise ValueError("requests_per_second, burst and ban_threshold must be positive")
        if self.ban_seconds <= 0 or self.max_ban_seconds < self.ban_seconds:
            raise ValueError("ban_seconds must be positive and at most max_ban_seconds")
        parse_networks(self.trusted_networks)  # raises ValueError naming a bad one


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`: each a network (a bare address is /32)."""
    networks: list[Network] = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError as error:
            raise ValueError(f"{text!r} is not a network (CIDR) or address") from error
    return tuple(networks)


def source_key(host: str) -> str:
    """What the guard counts and bans: an IPv4 address, or the /64 of an IPv6 one (one
    subscriber's allocation: an attacker holding a /64 has 2^64 addresses to rotate through)."""
    if ":" not in host:
        return host
    try:
        return str(ipaddress.ip_network(f"{host.strip('[]')}/64", strict=False))
    except ValueError:
        return host


@dataclass(slots=True)
class _Counters:
    """Per address: the token bucket and the offences of the current window."""

    tokens: float
    refilled_at: float
    offences: int = 0
    window_start: float = 0.0
    user_agent: str = ""


@dataclass(slots=True)
class _Ban:
    until: float
    number: int
    reason: str
    offences: int
    timer: TimerHandle | None = None
    origin: str = ""
    """The node that made the ban when another did (adopted from the bus); "" for our own."""


@dataclass(frozen=True, slots=True)
class BanView:
    """A ban as admins see it (`until` on the wall clock)."""

    address: str
    reason: str
    offences: int
    ban_number: int
    until: datetime
    seconds_left: float


@dataclass(slots=True)
class GuardStats:
    admitted: int = 0
    dropped_banned: int = 0
    dropped_rate: int = 0
    dropped_scanner: int = 0
    malformed: int = 0
    auth_failures: int = 0
    bans: int = 0
    unbans: int = 0
    adopted_bans: int = 0


class SourceGuard:
    """The transport's `SourceFilter` and the transaction layer's `TransportUser` wrapper."""

    def __init__(
        self,
        clock: Clock,
        *,
        settings: SourceGuardSettings | None = None,
        publish: Callable[[Event], None],
        wall_clock: Callable[[], datetime],
        is_trusted_host: Callable[[str], bool] = lambda host: False,
        node_id: str = "local",
    ) -> None:
        self._clock = clock
        self.node_id = node_id
        self.settings = settings or SourceGuardSettings()
        self._publish = publish
        self._wall_clock = wall_clock
        self._is_trusted_host = is_trusted_host
        self._networks = parse_networks(self.settings.trusted_networks)
        self._trusted_cache: dict[str, bool] = {}
        self._counters: OrderedDict[str, _Counters] = OrderedDict()
        self._bans: dict[str, _Ban] = {}
        self._ban_numbers: OrderedDict[str, int] = OrderedDict()
        self._inner: TransportUser | None = None
        self.stats = GuardStats()

    def bind(self, inner: TransportUser) -> None:
        """The layer messages go to once admitted (the transaction layer)."""
        self._inner = inner

    # -- SourceFilter -----------------------------------------------------------------------

    def admits(self, source: Source) -> bool:
        host = source_key(source.remote_host)
        ban = self._bans.get(host)
        if ban is not None:
            if ban.until > self._clock.now():
                self.stats.dropped_banned += 1
                return False
            self._lift(host, "expired")
        if self.is_trusted(source.remote_host):
            self.stats.admitted += 1
            return True
        counters = self._counters_for(host)
        now = self._clock.now()
        settings = self.settings
        counters.tokens = min(
            float(settings.burst),
            counters.tokens + (now - counters.refilled_at) * settings.requests_per_second,
        )
        counters.refilled_at = now
        if counters.tokens < 1.0:
            self.stats.dropped_rate += 1
            self._offend(host, Offence.RATE, 1)
            return False
        counters.tokens -= 1.0
        self.stats.admitted += 1
        return True

    def on_malformed(self, source: Source) -> None:
        if not self.is_trusted(source.remote_host):
            self.stats.malformed += 1
            self._offend(source_key(source.remote_host), Offence.MALFORMED, 1)

    def may_send_to(self, host: str) -> bool:
        return not self._bans or not self.is_banned(host)

    # -- TransportUser ----------------------------------------------------------------------

    def on_message(self, message: SipMessage, source: Source) -> None:
        inner = self._inner
        if inner is None:
            raise RuntimeError("SourceGuard used before bind()")
        if isinstance(message, SipRequest) and not self.is_trusted(source.remote_host):
            user_agent = message.headers.get("User-Agent") or ""
            if user_agent and self._is_scanner(user_agent):
                self.stats.dropped_scanner += 1
                key = source_key(source.remote_host)
                self._counters_for(key).user_agent = user_agent[:128]
                self._offend(key, Offence.SCANNER, self.settings.scanner_offences)
                return
        inner.on_message(message, source)

    # -- from the SIP auth guard -----------------------------------------------------------

    def on_auth_failure(self, source: Source) -> None:
        """A digest authentication from `source` failed (wrong password, unknown user...)."""
        if not self.is_trusted(source.remote_host):
            self.stats.auth_failures += 1
            self._offend(source_key(source.remote_host), Offence.AUTH_FAILURE, 1)

    # -- queries ----------------------------------------------------------------------------

    def is_trusted(self, host: str) -> bool:
        cached = self._trusted_cache.get(host)
        if cached is None:
            cached = self._in_trusted_network(host)
            if len(self._trusted_cache) >= 4096:
                self._trusted_cache.clear()
            self._trusted_cache[host] = cached
        return cached or self._is_trusted_host(host)

    def is_banned(self, host: str) -> bool:
        """Whether `host` (or, for IPv6, its /64) is banned now."""
        ban = self._bans.get(source_key(host))
        return ban is not None and ban.until > self._clock.now()

    def bans(self) -> list[BanView]:
        """The bans in force, longest-running last."""
        now = self._clock.now()
        wall = self._wall_clock()
        views = [
            BanView(
                address=host,
                reason=ban.reason,
                offences=ban.offences,
                ban_number=ban.number,
                until=wall + timedelta(seconds=ban.until - now),
                seconds_left=round(ban.until - now, 3),
            )
            for host, ban in self._bans.items()
            if ban.until > now
        ]
        return sorted(views, key=lambda view: view.seconds_left)

    def adopt_ban(
        self,
        address: str,
        seconds: float,
        *,
        reason: str,
        offences: int,
        ban_number: int,
        origin: str,
    ) -> bool:
        """Apply a ban node `origin` made of `address` (a key as `source_key` makes them) for
        the `seconds` it has left there. False when it changes nothing: the address is trusted
        here, the ban is over, or it is banned here at least as long already."""
        trusted_host = address.split("/", 1)[0]  # an IPv6 /64 by its first address
        if seconds <= 0 or not address or self.is_trusted(trusted_host):
            return False
        settings = self.settings
        seconds = min(seconds, settings.max_ban_seconds)
        now = self._clock.now()
        current = self._bans.get(address)
        if current is not None:
            if current.until >= now + seconds:
                return False
            if current.timer is not None:
                current.timer.cancel()
        elif len(self._bans) >= settings.max_bans:
            soonest = min(self._bans, key=lambda key: self._bans[key].until)
            self._lift(soonest, "evicted")
        number = max(self._ban_numbers.pop(address, 0), ban_number)
        self._ban_numbers[address] = number  # a later ban here starts from the shared count
        if len(self._ban_numbers) > settings.max_sources:
            self._ban_numbers.popitem(last=False)
        ban = _Ban(now + seconds, number, reason, offences, origin=origin)
        ban.timer = self._clock.call_later(seconds, self._expire, address)
        self._bans[address] = ban
        self._counters.pop(address, None)
        self.stats.adopted_bans += 1
        logger.warning(
            "SIP source %s banned for %.0f s: banned on node %s (%s, ban %d)",
            address,
            seconds,
            origin,
            reason,
            number,
        )
        return True

    def end_adopted_ban(self, address: str, origin: str) -> bool:
        """Node `origin`'s ban of `address` ended there: lift it here if it is the one we
        adopted from `origin` (a ban of our own, or a longer one from elsewhere, stays)."""
        ban = self._bans.get(address)
        if ban is None or not ban.origin or ban.origin != origin:
            return False
        self._lift(address, f"ended on node {origin}")
        return True

    def close(self) -> None:
        """Cancel the unban timers (the bans die with the node)."""
        for ban in self._bans.values():
            if ban.timer is not None:
                ban.timer.cancel()
                ban.timer = None

    # -- internals --------------------------------------------------------------------------

    def _in_trusted_network(self, host: str) -> bool:
        if not self._networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def _is_scanner(self, user_agent: str) -> bool:
        lowered = user_agent.lower()
        return any(pattern in lowered for pattern in self.settings.scanner_user_agents)

    def _counters_for(self, host: str) -> _Counters:
        counters = self._counters.get(host)
        if counters is None:
            now = self._clock.now()
            counters = self._counters[host] = _Counters(float(self.settings.burst), now)
            if len(self._counters) > self.settings.max_sources:
                self._counters.popitem(last=False)
        else:
            self._counters.move_to_end(host)
        return counters

    def _offend(self, host: str, offence: str, weight: int) -> None:
        if host in self._bans:
            return
        settings = self.settings
        now = self._clock.now()
        counters = self._counters_for(host)
        if counters.offences == 0 or now - counters.window_start > settings.offence_window:
            counters.offences = 0
            counters.window_start = now
        counters.offences += weight
        if counters.offences >= settings.ban_threshold:
            self._ban(host, offence, counters)

    def _ban(self, host: str, reason: str, counters: _Counters) -> None:
        settings = self.settings
        number = self._ban_numbers.pop(host, 0) + 1
        self._ban_numbers[host] = number
        if len(self._ban_numbers) > settings.max_sources:
            self._ban_numbers.popitem(last=False)
        seconds = min(settings.ban_seconds * 2 ** (number - 1), settings.max_ban_seconds)
        now = self._clock.now()
        ban = _Ban(now + seconds, number, reason, counters.offences)
        if len(self._bans) >= settings.max_bans:
            soonest = min(self._bans, key=lambda key: self._bans[key].until)
            self._lift(soonest, "evicted")
        ban.timer = self._clock.call_later(seconds, self._expire, host)
        self._bans[host] = ban
        self._counters.pop(host, None)
        self.stats.bans += 1
        logger.warning(
            "SIP source %s banned for %.0f s: %d offences (%s), ban %d%s",
            host,
            seconds,
            ban.offences,
            reason,
            number,
            f", user agent {counters.user_agent!r}" if counters.user_agent else "",
        )
        self._publish(
            SourceBanned(
                at=self._wall_clock(),
                address=host,
                reason=reason,
                offences=ban.offences,
                seconds=seconds,
                until=self._wall_clock() + timedelta(seconds=seconds),
                ban_number=number,
                user_agent=counters.user_agent,
                node=self.node_id,
            )
        )

    def _expire(self, host: str) -> None:
        ban = self._bans.get(host)
        if ban is not None:
            ban.timer = None
            if ban.until <= self._clock.now():
                self._lift(host, "expired")

    def _lift(self, host: str, reason: str) -> None:
        ban = self._bans.pop(host, None)
        if ban is None:
            return
        if ban.timer is not None:
            ban.timer.cancel()
        self.stats.unbans += 1
        logger.info("SIP source %s no longer banned (%s)", host, reason)
        if not ban.origin:  # another node's ban is that node's to announce
            self._publish(
                SourceUnbanned(
                    at=self._wall_clock(), address=host, reason=reason, node=self.node_id
                )
            )
