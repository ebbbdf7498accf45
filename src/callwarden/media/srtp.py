"""SRTP and SRTCP (RFC 3711, RFC 7714) for one call leg: decrypt at the edge, encrypt per listener.

An :class:`SrtpEndpoint` is an :class:`~callwarden.media.endpoint.RtpEndpoint` whose wire is
SRTP once :meth:`SrtpEndpoint.set_srtp` gave it the leg's keys (signalling agreed them through
SDES; they arrive here as the plain :class:`SrtpKeys`, so ``media`` never sees SDP):

* a received packet from the accepted peer (the same address rules as plain RTP, checked first,
  without changing anything) is authenticated and decrypted by libsrtp (``pylibsrtp``); a packet
  that fails authentication is counted ``dropped_auth``, a replayed one ``dropped_replay``, and
  neither goes any further: it never latches a peer, reaches the bridge, a recording or a
  monitor. What passes is plain RTP and takes the plain endpoint's path unchanged, so bridges,
  the mixer, recording and monitoring work as for any leg;
* everything the bridge sends this leg (forwarded packets, mixed frames, tones) goes through
  the stream's transport, which here is an :class:`SrtpSender` that encrypts each packet with
  this leg's own key. RTCP both ways is SRTCP.

The C fast path relays plain RTP only. An SRTP endpoint's socket is an asyncio transport outside
the pump and its stream has no pump socket (``fd`` -1), so the pump never relays to or from it:
its packets take the Python path (the cost per packet is in docs/benchmarks.md). libsrtp keeps
its own replay window and rollover counter per SSRC.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pylibsrtp import Error as LibSrtpError
from pylibsrtp import Policy, Session

from callwarden.media.endpoint import Address, EndpointError, EndpointStats, RtpEndpoint
from callwarden.media.fastpath import PacketPump
from callwarden.media.stream import DatagramSender

logger = logging.getLogger(__name__)

__all__ = ["SUITES", "SrtpContext", "SrtpEndpoint", "SrtpKeys", "SrtpSender"]

#: Suite name (as SDES writes it) -> (libsrtp profile, master key + salt bytes).
SUITES: MappingProxyType[str, tuple[int, int]] = MappingProxyType(
    {
        "AES_CM_128_HMAC_SHA1_80": (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
        "AEAD_AES_128_GCM": (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 28),
    }
)


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """One leg's SRTP keys as plain values: the suite, the master key and salt we encrypt what
    we send with, and the one the peer encrypts what it sends with."""

    suite: str
    send_key: bytes = field(repr=False)
    receive_key: bytes = field(repr=False)


class SrtpContext:
    """The two libsrtp sessions of one leg: outbound (our key) and inbound (the peer's)."""

    __slots__ = ("_inbound", "_outbound", "keys")

    def __init__(self, keys: SrtpKeys) -> None:
        suite = SUITES.get(keys.suite)
        if suite is None:
            raise EndpointError(f"SRTP suite not supported: {keys.suite!r}")
        profile, length = suite
        if len(keys.send_key) != length or len(keys.receive_key) != length:
            raise EndpointError(f"{keys.suite} keys must be {length} bytes")
        self.keys = keys
        self._outbound = Session(
            Policy(keys.send_key, Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        )
        self._inbound = Session(
            Policy(keys.receive_key, Policy.SSRC_ANY_INBOUND, srtp_profile=profile)
        )

    def protect(self, packet: bytes) -> bytes:
        return bytes(self._outbound.protect(packet))

    def unprotect(self, packet: bytes) -> bytes:
        return bytes(self._inbound.unprotect(packet))

    def protect_rtcp(self, packet: bytes) -> bytes:
        return bytes(self._outbound.protect_rtcp(packet))

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        return bytes(self._inbound.unprotect_rtcp(packet))


def _is_replay(error: LibSrtpError) -> bool:
    return "replay" in str(error)


class SrtpSender:
    """The transport of an SRTP endpoint's outgoing stream: encrypts, then sends."""

    __slots__ = ("_endpoint", "_inner")

    def __init__(self, inner: DatagramSender, endpoint: SrtpEndpoint) -> None:
        self._inner = inner
        self._endpoint = endpoint

    def sendto(self, data: bytes, addr: tuple[str, int], /) -> None:
        context = self._endpoint.srtp
        if context is None:  # no keys (yet): plain RTP, as signalling agreed
            self._inner.sendto(data, addr)
            return
        try:
            packet = context.protect(data)
        except LibSrtpError as error:  # a malformed packet of ours: never sent in the clear
            logger.warning("endpoint %s: SRTP protect failed: %s", self._endpoint.id, error)
            return
        self._endpoint.packets_protected += 1
        self._inner.sendto(packet, addr)


class SrtpEndpoint(RtpEndpoint):
    """An RTP endpoint that speaks SRTP on the wire once it has keys (see the module doc)."""

    # Not slotted: these defaults live on the class until a packet or set_remote sets them
    # (the plain endpoint's per-packet fields stay in its slots and the C core).
    srtp: SrtpContext | None = None
    dropped_auth = 0
    dropped_replay = 0
    #: RTP packets sent encrypted (every packet sent while there are keys).
    packets_protected = 0

    async def open(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        pump: PacketPump | None = None,
    ) -> None:
        """Bind as a plain endpoint, but never through the C pump (it relays plain RTP only)."""
        await super().open(loop, host, port, None)
        transport = self.stream.transport
        assert transport is not None
        self.stream.transport = SrtpSender(transport, self)

    def context_for(self, keys: SrtpKeys | None) -> SrtpContext | None:
        """The context to use for ``keys`` (assign it to ``srtp``); raises EndpointError for
        keys libsrtp cannot take. The same keys again (a re-INVITE) keep the current context
        and its replay windows; new keys start a new one (RFC 4568 7.1.4)."""
        if keys is None:
            return None
        if self.srtp is not None and self.srtp.keys == keys:
            return self.srtp
        return SrtpContext(keys)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        context = self.srtp
        if context is None:
            super().datagram_received(data, addr)
            return
        if addr != self._peer_key and not self._may_latch(addr):
            self.dropped_foreign += 1
            return
        if not self.enabled:
            self.dropped_early += 1
            return
        try:
            plain = context.unprotect(data)
        except LibSrtpError as error:
            if _is_replay(error):
                self.dropped_replay += 1
            else:
                self.dropped_auth += 1
            return
        super().datagram_received(plain, addr)

    def rtcp_received(self, data: bytes, addr: Address) -> None:
        context = self.srtp
        peer = self._peer
        if context is None or not self.enabled or peer is None or addr[0] != peer[0]:
            super().rtcp_received(data, addr)  # plain, or dropped by the plain rules
            return
        try:
            plain = context.unprotect_rtcp(data)
        except LibSrtpError as error:
            if _is_replay(error):
                self.dropped_replay += 1
            else:
                self.dropped_auth += 1
            self.rtcp_dropped += 1
            return
        super().rtcp_received(plain, addr)

    def _send_rtcp(
        self, transport: asyncio.DatagramTransport, packet: bytes, address: Address
    ) -> None:
        context = self.srtp
        if context is None:
            transport.sendto(packet, address)
            return
        try:
            transport.sendto(context.protect_rtcp(packet), address)
        except LibSrtpError as error:
            logger.warning("endpoint %s: SRTCP protect failed: %s", self.id, error)

    def close(self) -> None:
        """Close, logging what went through SRTP (the audit trail that nothing went plain)."""
        if self.srtp is not None:
            logger.info(
                "endpoint %s: SRTP %s closed: %d packets received and authenticated, %d sent, "
                "%d of them encrypted; %d failed authentication, %d replayed",
                self.id,
                self.srtp.keys.suite,
                self.packets_in,
                self.stream.packets,
                self.packets_protected,
                self.dropped_auth,
                self.dropped_replay,
            )
        super().close()

    def stats(self) -> EndpointStats:
        return dataclasses.replace(
            super().stats(),
            srtp=self.srtp is not None,
            dropped_auth=self.dropped_auth,
            dropped_replay=self.dropped_replay,
        )
