"""ICE servers for the pages: STUN URLs, and TURN with time-limited credentials.

A TURN server such as coturn configured with `use-auth-secret` and `static-auth-secret`
accepts the "TURN REST API" credentials (draft-uberti-behave-turn-rest-00): the username is
`<expiry unix time>:<user id>` and the password is base64(HMAC-SHA1(secret, username)). The
shared secret never leaves the node; each page gets credentials that expire (docs/webrtc.md).
With `transport_policy` "relay" the pages gather only TURN relay candidates
(RTCConfiguration.iceTransportPolicy): the node never learns an operator's home address, and
media flows through TURN or not at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TRANSPORT_POLICIES", "IceSettings", "turn_credentials"]

TRANSPORT_POLICIES = ("all", "relay")
"""RTCIceTransportPolicy (W3C webrtc-pc 4.2.4): every candidate, or TURN relays only."""


def turn_credentials(secret: bytes, user: str, now: float, ttl: int) -> tuple[str, str]:
    """(username, password) valid until `now + ttl` for a TURN server sharing `secret`."""
    username = f"{int(now) + ttl}:{user}"
    digest = hmac.new(secret, username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class IceSettings:
    """`stun_urls` (`stun:host:3478`), `turn_urls` (`turn:host:3478?transport=udp`,
    `turns:host:5349`) with the TURN server's `turn_secret`; credentials last `turn_ttl`;
    `transport_policy`: the pages' iceTransportPolicy, "all" or "relay" (TURN only)."""

    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: bytes = field(default=b"", repr=False)
    turn_ttl: int = 12 * 3600
    transport_policy: str = "all"

    def __post_init__(self) -> None:
        for url in self.stun_urls:
            if not url.startswith(("stun:", "stuns:")):
                raise ValueError(f"a STUN URL starts with stun: or stuns:, not {url[:40]!r}")
        for url in self.turn_urls:
            if not url.startswith(("turn:", "turns:")):
                raise ValueError(f"a TURN URL starts with turn: or turns:, not {url[:40]!r}")
        if self.turn_urls and len(self.turn_secret) < 16:
            raise ValueError("TURN needs its shared secret (at least 16 bytes)")
        if self.turn_ttl < 60:
            raise ValueError("turn_ttl must be at least 60 seconds")
        if self.transport_policy not in TRANSPORT_POLICIES:
            raise ValueError(
                f"the ICE transport policy is 'all' or 'relay', not {self.transport_policy[:20]!r}"
            )
        if self.transport_policy == "relay" and not self.turn_urls:
            raise ValueError("the ICE transport policy 'relay' needs TURN servers (turn URLs)")

    def for_page(self, user: str, now: float) -> list[dict[str, Any]]:
        """The `iceServers` of the page's RTCPeerConnection (RTCIceServer dictionaries)."""
        servers: list[dict[str, Any]] = []
        if self.stun_urls:
            servers.append({"urls": list(self.stun_urls)})
        if self.turn_urls:
            username, credential = turn_credentials(self.turn_secret, user, now, self.turn_ttl)
            servers.append(
                {"urls": list(self.turn_urls), "username": username, "credential": credential}
            )
        return servers
