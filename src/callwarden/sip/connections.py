"""The TCP and TLS connections of one SIP transport (RFC 3261 18: connection reuse, 18.3 framing).

:class:`ConnectionPool` accepts inbound connections (refusing those over the per-host and total
limits), opens outbound ones on demand, reuses any open connection to the same address for
requests and the connection a request came on for its responses (RFC 3261 18.2.2), closes idle
connections on the injected clock, and answers framing errors statelessly before closing.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from callwarden.sip.addressing import Destination, Source, TransportName
from callwarden.sip.clock import Clock
from callwarden.sip.errors import SipParseError
from callwarden.sip.message import StreamFramer
from callwarden.sip.salvage import salvage_error_response
from callwarden.sip.stream import StreamConnection
from callwarden.sip.transport_config import TransportConfig, TransportError, TransportStats
from callwarden.sip.tx_base import SendErrorCallback

__all__ = ["ConnectionPool", "MessageSink"]

logger = logging.getLogger(__name__)


class MessageSink(Protocol):
    """Where complete framed messages go (the transport's parse-and-dispatch)."""

    def handle(self, data: bytes, source: Source) -> None: ...


class ConnectionPool:
    """TCP/TLS connections: inbound and outbound, reuse, limits, idle timeout."""

    def __init__(
        self,
        clock: Clock,
        config: TransportConfig,
        stats: TransportStats,
        sink: MessageSink,
        tls_client_context: ssl.SSLContext | None = None,
        admit: Callable[[Source], bool] | None = None,
    ) -> None:
        """`admit(source)` decides on each inbound connection before any byte is read (the
        source filter: a banned address is refused at once)."""
        self._clock = clock
        self._admit = admit
        self.config = config
        self.stats = stats
        self._sink = sink
        self._tls_client_context = tls_client_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: dict[int, StreamConnection] = {}
        self._by_address: dict[tuple[TransportName, str, int], StreamConnection] = {}
        self._inbound_per_host: dict[str, int] = {}
        self._next_connection_id = 1
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __len__(self) -> int:
        return len(self._connections)

    def inbound(self, transport: TransportName) -> StreamConnection:
        """Protocol factory for a listener of ``transport``."""
        return self._new_connection(transport, inbound=True)

    async def close(self) -> None:
        """Abort every connection and cancel pending connection attempts."""
        for connection in list(self._connections.values()):
            connection.abort()
            self._forget(connection)
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report(self, on_error: SendErrorCallback | None, error: Exception) -> None:
        self.stats.send_errors += 1
        logger.debug("send failed: %s", error)
        if on_error is not None and self._loop is not None:
            self._loop.call_soon(on_error, error)

    def send(
        self, data: bytes, destination: Destination, on_error: SendErrorCallback | None
    ) -> None:
        connection = None
        if destination.connection_id is not None:
            connection = self._connections.get(destination.connection_id)
        if connection is None or connection.closed:
            key = (destination.transport, destination.host.lower(), destination.port)
            connection = self._by_address.get(key)
            if connection is None or connection.closed:
                connection = self._connect(destination)
                if connection is None:
                    self._report(on_error, TransportError(f"cannot connect to {destination}"))
                    return
        if connection.write_buffer_size() > self.config.max_write_buffer:
            logger.warning("write buffer full towards %s: closing the connection", destination)
            connection.abort()
            self._report(on_error, TransportError("write buffer full"))
            return
        connection.write(data, on_error)

    def _connect(self, destination: Destination) -> StreamConnection | None:
        if self._loop is None or len(self._connections) >= self.config.max_connections:
            return None
        ssl_context = None
        if destination.transport == "TLS":
            ssl_context = self._tls_client_context
            if ssl_context is None:
                return None
        connection = self._new_connection(destination.transport, inbound=False)
        self._connections[connection.connection_id] = connection
        key = (destination.transport, destination.host.lower(), destination.port)
        connection.address_key = key
        self._by_address[key] = connection
        self._spawn(self._open(connection, destination, ssl_context))
        return connection

    async def _open(
        self,
        connection: StreamConnection,
        destination: Destination,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        assert self._loop is not None
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                await self._loop.create_connection(
                    lambda: connection,
                    destination.host,
                    destination.port,
                    ssl=ssl_context,
                    server_hostname=destination.host if ssl_context is not None else None,
                )
        except (OSError, TimeoutError) as error:
            logger.info("cannot connect to %s: %s", destination, error)
            self.stats.send_errors += 1
            connection.fail(error)

    # -- StreamHandler ---------------------------------------------------------------------------

    def _new_connection(self, transport: TransportName, *, inbound: bool) -> StreamConnection:
        connection_id = self._next_connection_id
        self._next_connection_id += 1
        framer = StreamFramer(self.config.max_header_bytes, self.config.max_body_bytes)
        return StreamConnection(
            self, transport, connection_id, inbound=inbound, framer=framer, now=self._clock.now()
        )

    def connection_ready(self, connection: StreamConnection) -> bool:
        source = connection.source
        assert source is not None
        host = source.remote_host
        if connection.inbound:
            if self._admit is not None and not self._admit(source):
                self.stats.connections_refused += 1
                logger.debug("connection from banned %s refused", host)
                return False
            count = self._inbound_per_host.get(host, 0)
            if (
                count >= self.config.max_connections_per_host
                or len(self._connections) >= self.config.max_connections
            ):
                self.stats.connections_refused += 1
                logger.warning("too many connections from %s: refused", host)
                return False
            self._inbound_per_host[host] = count + 1
            self._connections[connection.connection_id] = connection
            key = (source.transport, host.lower(), source.remote_port)
            connection.address_key = key
            self._by_address[key] = connection
        connection.last_activity = self._clock.now()
        connection.idle_timer = self._clock.call_later(
            self.config.idle_timeout, self._check_idle, connection
        )
        return True

    def _check_idle(self, connection: StreamConnection) -> None:
        connection.idle_timer = None
        if connection.closed:
            return
        idle_for = self._clock.now() - connection.last_activity
        timeout = self.config.idle_timeout
        if idle_for >= timeout:
            self.stats.connections_idle_closed += 1
            logger.debug("closing idle connection %s", connection.source)
            connection.close()
            return
        connection.idle_timer = self._clock.call_later(
            timeout - idle_for, self._check_idle, connection
        )

    def stream_message(self, connection: StreamConnection, data: bytes) -> None:
        source = connection.source
        assert source is not None
        connection.last_activity = self._clock.now()
        self._sink.handle(data, source)

    def stream_error(
        self, connection: StreamConnection, error: SipParseError, chunk: bytes
    ) -> None:
        source = connection.source
        assert source is not None
        self.stats.framing_errors += 1
        logger.info("framing error from %s: %s (closing)", source, error)
        response = salvage_error_response(chunk, error.status, error.reason)
        if response is not None:
            self.stats.rejected_unparseable += 1
            connection.write(response)
        else:
            self.stats.dropped_unparseable += 1

    def abort_connection(self, connection_id: int) -> None:
        """Drop the connection `connection_id` (if still open) without flushing anything."""
        connection = self._connections.get(connection_id)
        if connection is not None:
            connection.abort()
            self._forget(connection)

    def connection_closed(self, connection: StreamConnection) -> None:
        self._forget(connection)

    def _forget(self, connection: StreamConnection) -> None:
        if connection.idle_timer is not None:
            connection.idle_timer.cancel()
            connection.idle_timer = None
        if self._connections.pop(connection.connection_id, None) is None:
            return
        key = connection.address_key
        if key is not None and self._by_address.get(key) is connection:
            del self._by_address[key]
        if connection.inbound and connection.source is not None:
            host = connection.source.remote_host
            count = self._inbound_per_host.get(host, 0) - 1
            if count > 0:
                self._inbound_per_host[host] = count
            else:
                self._inbound_per_host.pop(host, None)
