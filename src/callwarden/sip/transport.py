"""SIP transports over asyncio (uvloop in production): UDP, TCP and optional TLS (RFC 3261 18).

One :class:`SipTransport` listens with UDP and TCP on one address and port (and TLS on
``tls_port`` when given an ``ssl.SSLContext``). Received requests get ``received`` and
``rport`` filled in (RFC 3261 18.2.1, RFC 3581 4) and go up to a :class:`TransportUser`;
responses go out per RFC 3261 18.2.2 / RFC 3581 (see
:func:`~callwarden.sip.addressing.response_destination`). Unparseable requests are answered
statelessly when possible (RFC 4475) and everything else broken is dropped and counted;
nothing raises out of the asyncio callbacks. TCP/TLS connections are managed by
:class:`~callwarden.sip.connections.ConnectionPool`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Coroutine
from typing import Any, Protocol

from callwarden.sip.addressing import (
    Destination,
    Source,
    TransportName,
    same_host,
)
from callwarden.sip.clock import Clock
from callwarden.sip.connections import ConnectionPool
from callwarden.sip.errors import SipParseError
from callwarden.sip.headers import Via
from callwarden.sip.message import SipMessage, SipRequest, parse_message
from callwarden.sip.salvage import salvage_error_response
from callwarden.sip.source_filter import SourceFilter
from callwarden.sip.transport_config import TransportConfig, TransportError, TransportStats
from callwarden.sip.tx_base import SendErrorCallback
from callwarden.sip.uri import SipUri

__all__ = [
    "SipTransport",
    "TransportConfig",
    "TransportError",
    "TransportStats",
    "TransportUser",
    "stamp_via",
]

logger = logging.getLogger(__name__)

_BIND_ATTEMPTS = 8


class TransportUser(Protocol):
    """The layer above the transport (normally the transaction layer)."""

    def on_message(self, message: SipMessage, source: Source) -> None: ...


def stamp_via(request: SipRequest, source: Source) -> SipRequest:
    """Add ``received`` and fill an empty ``rport`` in the top Via (RFC 3261 18.2.1, RFC 3581 4).

    The request's headers are changed in place (their parse cache is dropped); it is returned.
    """
    via = request.top_via
    changes: dict[str, str | None] = {}
    if not same_host(via.host, source.remote_host):
        changes["received"] = source.remote_host
    if via.has_rport and via.param("rport") is None:
        changes["rport"] = str(source.remote_port)
    if not changes:
        return request
    headers = request.headers
    headers.remove_first("Via")
    headers.prepend("Via", str(via.with_params(**changes)))
    return request


def _is_ip_literal(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return True
    return False


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._owner._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("UDP error: %s", exc)


class SipTransport:
    """UDP + TCP (+ TLS) listeners on one address, implementing the transaction layer's sender.

    ``advertised_host`` is what goes into Via and Contact (defaults to ``host``). Start with
    :meth:`start` (which binds and sets :attr:`port` when 0 was asked) and end with
    :meth:`close`. ``send_bytes`` never raises for network reasons and never calls ``on_error``
    before returning: failures arrive later, from the event loop.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        host: str = "0.0.0.0",  # noqa: S104 - a server listens where it is told
        port: int = 5060,
        advertised_host: str | None = None,
        config: TransportConfig | None = None,
        enable_udp: bool = True,
        enable_tcp: bool = True,
        tls_context: ssl.SSLContext | None = None,
        tls_port: int | None = None,
        tls_client_context: ssl.SSLContext | None = None,
        source_filter: SourceFilter | None = None,
    ) -> None:
        self._clock = clock
        self._filter = source_filter
        self.host = host
        self.port = port
        self.advertised_host = advertised_host or host
        self.config = config or TransportConfig()
        self._enable_udp = enable_udp
        self._enable_tcp = enable_tcp
        self._tls_context = tls_context
        self.tls_port = tls_port if tls_port is not None else (port + 1 if port else 0)
        self.stats = TransportStats()
        self._user: TransportUser | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._connections = ConnectionPool(
            clock,
            self.config,
            self.stats,
            self,
            tls_client_context,
            admit=None if source_filter is None else source_filter.admits,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._resolved: dict[str, str] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, user: TransportUser) -> None:
        """Bind the listeners; messages go to ``user`` from now on."""
        self._user = user
        self._loop = asyncio.get_running_loop()
        self._connections.start(self._loop)
        for attempt in range(_BIND_ATTEMPTS):
            try:
                await self._bind_plain()
                break
            except OSError as error:
                await self._close_listeners()
                if error.errno != errno.EADDRINUSE or self.port != 0 or attempt == 7:
                    raise
        if self._tls_context is not None:
            server = await self._loop.create_server(
                lambda: self._connections.inbound("TLS"),
                self.host,
                self.tls_port,
                ssl=self._tls_context,
                reuse_address=True,
            )
            self._servers.append(server)
            self.tls_port = server.sockets[0].getsockname()[1]
        logger.info(
            "SIP transport listening on %s port %s (UDP %s, TCP %s, TLS port %s)",
            self.host,
            self.port,
            self._enable_udp,
            self._enable_tcp,
            self.tls_port if self._tls_context else None,
        )

    async def _bind_plain(self) -> None:
        assert self._loop is not None
        port = self.port
        if self._enable_udp:
            udp, _ = await self._loop.create_datagram_endpoint(
                lambda: _DatagramProtocol(self), local_addr=(self.host, port)
            )
            self._udp = udp
            sock = udp.get_extra_info("socket")
            port = sock.getsockname()[1]
            size = self.config.udp_buffer_bytes
            if size:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        if self._enable_tcp:
            server = await self._loop.create_server(
                lambda: self._connections.inbound("TCP"),
                self.host,
                port,
                reuse_address=True,
            )
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
        self.port = port

    async def _close_listeners(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
            await server.wait_closed()

    async def close(self) -> None:
        """Stop listening, close every connection, cancel background tasks."""
        await self._connections.close()
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_listeners()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- local identity ------------------------------------------------------------------------

    def local_port(self, transport: TransportName) -> int:
        return self.tls_port if transport == "TLS" else self.port

    def make_via(self, branch: str, transport: TransportName = "UDP") -> Via:
        """Our Via for a request sent over ``transport``, with ``rport`` (RFC 3581 3)."""
        return Via(
            transport,
            self.advertised_host,
            self.local_port(transport),
            (("branch", branch), ("rport", None)),
        )

    def contact_uri(self, transport: TransportName = "UDP", user: str | None = None) -> SipUri:
        """A URI reaching this transport (for Contact and Record-Route)."""
        params: tuple[tuple[str, str | None], ...] = ()
        if transport == "TCP":
            params = (("transport", "tcp"),)
        return SipUri(
            scheme="sips" if transport == "TLS" else "sip",
            user=user,
            password=None,
            host=self.advertised_host,
            port=self.local_port(transport),
            params=params,
            headers=(),
        )

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- sending -------------------------------------------------------------------------------

    def send(
        self,
        message: SipMessage,
        destination: Destination,
        on_error: SendErrorCallback | None = None,
    ) -> None:
        """Serialize and send ``message`` (see :meth:`send_bytes`)."""
        self.send_bytes(bytes(message), destination, on_error)

    def send_bytes(
        self, data: bytes, destination: Destination, on_error: SendErrorCallback | None = None
    ) -> None:
        """Send one message to ``destination``; failures are reported later via ``on_error``.

        UDP goes out of the listening socket (so responses are symmetric, RFC 3581). TCP and
        TLS use ``destination.connection_id`` when that connection is still open, else any open
        connection to the same address, else a new connection (RFC 3261 18.1.1, 18.2.2).
        """
        source_filter = self._filter
        if source_filter is not None and not source_filter.may_send_to(destination.host):
            self.stats.filtered_sends += 1
            return
        if destination.transport == "UDP":
            self._send_udp(data, destination.host, destination.port, on_error)
        else:
            self._connections.send(data, destination, on_error)

    def _report(self, on_error: SendErrorCallback | None, error: Exception) -> None:
        self.stats.send_errors += 1
        logger.debug("send failed: %s", error)
        if on_error is not None and self._loop is not None:
            self._loop.call_soon(on_error, error)

    def _send_udp(
        self, data: bytes, host: str, port: int, on_error: SendErrorCallback | None
    ) -> None:
        if self._udp is None or self._udp.is_closing():
            self._report(on_error, TransportError("no UDP listener"))
            return
        address = self._resolved.get(host)
        if address is None:
            if not _is_ip_literal(host):
                self._spawn(self._resolve_and_send(data, host, port, on_error))
                return
            address = host
        self._udp.sendto(data, (address, port))

    async def _resolve_and_send(
        self, data: bytes, host: str, port: int, on_error: SendErrorCallback | None
    ) -> None:
        assert self._loop is not None
        try:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            infos = await self._loop.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)
        except OSError as error:
            self._report(on_error, error)
            return
        address = str(infos[0][4][0])
        if len(self._resolved) >= 1024:
            self._resolved.clear()
        self._resolved[host] = address
        self._send_udp(data, address, port, on_error)

    # -- receiving -----------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) <= 4 and not data.strip():
            return  # keepalive (RFC 5626 3.5.1 CRLF ping)
        source = Source("UDP", str(addr[0]), int(addr[1]), self.host, self.port)
        self.handle(data, source)

    def handle(self, data: bytes, source: Source) -> None:
        """Parse, stamp and dispatch one message; never raises. A message the source filter
        refuses is dropped unread."""
        self.stats.received += 1
        source_filter = self._filter
        if source_filter is not None and not source_filter.admits(source):
            self.stats.filtered += 1
            banned = not source_filter.may_send_to(source.remote_host)
            if banned and source.connection_id is not None:  # a banned address's stream: cut
                self._connections.abort_connection(source.connection_id)
            return
        config = self.config
        try:
            message = parse_message(
                data,
                max_header_bytes=config.max_header_bytes,
                max_body_bytes=config.max_body_bytes,
                max_header_fields=config.max_header_fields,
            )
            if isinstance(message, SipRequest):
                message = stamp_via(message, source)
        except SipParseError as error:
            self._reject(data, error, source)
            return
        user = self._user
        if user is None:
            return
        try:
            user.on_message(message, source)
        except Exception:
            self.stats.user_errors += 1
            logger.exception("error handling a message from %s", source)

    def _reject(self, data: bytes, error: SipParseError, source: Source) -> None:
        """Answer a broken request statelessly, or drop it (RFC 4475)."""
        if self._filter is not None:
            self._filter.on_malformed(source)
        response = salvage_error_response(data, error.status, error.reason)
        if response is None:
            if data.lstrip()[:4].upper() == b"SIP/":
                self.stats.dropped_responses += 1
            else:
                self.stats.dropped_unparseable += 1
            logger.debug("dropped unparseable message from %s: %s", source, error)
            return
        self.stats.rejected_unparseable += 1
        logger.info(
            "answered %s to an unparseable request from %s: %s", error.status, source, error
        )
        self.send_bytes(response, source.reply_destination())
