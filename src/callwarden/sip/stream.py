"""One TCP or TLS connection carrying SIP (RFC 3261 18.3 framing by Content-Length).

:class:`StreamConnection` is the asyncio protocol of a connection, inbound or outbound. It
queues writes until an outbound connection is up, splits the byte stream into messages with
:class:`~callwarden.sip.message.StreamFramer`, and hands everything else to its
:class:`StreamHandler` (the transport), which owns policy: limits, parsing, dispatch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, cast

from callwarden.sip.addressing import Source, TransportName
from callwarden.sip.clock import TimerHandle
from callwarden.sip.errors import SipParseError
from callwarden.sip.message import StreamFramer
from callwarden.sip.tx_base import SendErrorCallback

__all__ = ["ConnectionClosedError", "StreamConnection", "StreamHandler"]

logger = logging.getLogger(__name__)


class ConnectionClosedError(ConnectionError):
    """A message was queued on a connection that closed before it could be written."""


class StreamHandler(Protocol):
    """What a connection reports to its transport."""

    def connection_ready(self, connection: StreamConnection) -> bool:
        """The connection is up; False refuses (closes) it."""
        ...

    def stream_message(self, connection: StreamConnection, data: bytes) -> None:
        """One complete framed message."""
        ...

    def stream_error(
        self, connection: StreamConnection, error: SipParseError, chunk: bytes
    ) -> None:
        """Framing failed on ``chunk``; the connection is closed after this returns."""
        ...

    def connection_closed(self, connection: StreamConnection) -> None:
        """The connection is gone (either side closed it, or it failed)."""
        ...


class StreamConnection(asyncio.Protocol):
    """A SIP connection: framing, write queueing while connecting, activity tracking."""

    def __init__(
        self,
        handler: StreamHandler,
        transport_name: TransportName,
        connection_id: int,
        *,
        inbound: bool,
        framer: StreamFramer,
        now: float,
    ) -> None:
        self.handler = handler
        self.transport_name: TransportName = transport_name
        self.connection_id = connection_id
        self.inbound = inbound
        self.framer = framer
        self.last_activity = now
        self.transport: asyncio.Transport | None = None
        self.source: Source | None = None
        self.address_key: tuple[TransportName, str, int] | None = None
        self.idle_timer: TimerHandle | None = None
        self.closed = False
        self._pending: list[tuple[bytes, SendErrorCallback | None]] = []

    @property
    def connected(self) -> bool:
        return self.transport is not None and not self.closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transports are not asyncio.Transport subclasses, but implement it.
        self.transport = cast(asyncio.Transport, transport)
        transport = self.transport
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if not isinstance(peer, tuple) or not isinstance(local, tuple):
            transport.abort()
            return
        self.source = Source(
            self.transport_name, peer[0], peer[1], local[0], local[1], self.connection_id
        )
        if not self.handler.connection_ready(self):
            self.closed = True
            transport.abort()
            return
        pending, self._pending = self._pending, []
        for data, _ in pending:
            transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            messages = self.framer.feed(data)
        except SipParseError as error:
            self.handler.stream_error(self, error, data)
            self.close()
            return
        for message in messages:
            if not self.connected:  # a previous message's handler closed us
                return
            self.handler.stream_message(self, message)
        failure = self.framer.error
        if failure is not None and self.connected:  # garbage after complete messages
            self.handler.stream_error(self, failure, b"")
            self.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_pending(exc or ConnectionClosedError("connection closed"))
        self.handler.connection_closed(self)

    def write(self, data: bytes, on_error: SendErrorCallback | None = None) -> None:
        """Write now, or queue until the outbound connection is up."""
        if self.transport is None:
            self._pending.append((data, on_error))
        else:
            self.transport.write(data)

    def write_buffer_size(self) -> int:
        if self.transport is None:
            return sum(len(data) for data, _ in self._pending)
        return self.transport.get_write_buffer_size()

    def fail(self, error: Exception) -> None:
        """The outbound connection could not be made: report every queued write."""
        self.closed = True
        self._fail_pending(error)
        self.handler.connection_closed(self)

    def _fail_pending(self, error: Exception) -> None:
        pending, self._pending = self._pending, []
        for _, on_error in pending:
            if on_error is not None:
                on_error(error)

    def close(self) -> None:
        """Close gracefully (pending writes are flushed first)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
