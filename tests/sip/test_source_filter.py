"""The transport's source filter over real loopback sockets: a refused source's datagrams are
dropped unread, garbage is reported against its sender, and nothing is sent to a refused
address (not even an answer the node would otherwise give)."""

from __future__ import annotations

import asyncio
import socket

from tx_fakes import request_bytes

from callwarden.sip.addressing import Destination, Source
from callwarden.sip.clock import LoopClock
from callwarden.sip.message import SipMessage, SipRequest, make_response
from callwarden.sip.transport import SipTransport

LOOPBACK = "127.0.0.1"
BLOCKED = "127.0.0.21"
WAIT = 2.0


class BlockList:
    """A SourceFilter refusing a fixed set of hosts, recording garbage reports."""

    def __init__(self, *blocked: str) -> None:
        self.blocked = set(blocked)
        self.malformed: list[str] = []
        self.reported = asyncio.Event()

    def admits(self, source: Source) -> bool:
        return source.remote_host not in self.blocked

    def on_malformed(self, source: Source) -> None:
        self.malformed.append(source.remote_host)
        self.reported.set()

    def may_send_to(self, host: str) -> bool:
        return host not in self.blocked


class Answerer:
    """The layer above: answers every request 200 and remembers what reached it."""

    def __init__(self) -> None:
        self.transport: SipTransport | None = None
        self.received: list[SipMessage] = []

    def on_message(self, message: SipMessage, source: Source) -> None:
        self.received.append(message)
        if isinstance(message, SipRequest) and self.transport is not None:
            self.transport.send(
                make_response(message, 200, to_tag="t1"), source.reply_destination()
            )


def _client(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


async def _receive(sock: socket.socket, wait_s: float) -> bytes | None:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(wait_s):
            return await loop.sock_recv(sock, 65535)
    except TimeoutError:
        return None


async def test_a_refused_source_is_dropped_unread_and_never_answered() -> None:
    blocklist = BlockList(BLOCKED)
    user = Answerer()
    transport = SipTransport(
        LoopClock(asyncio.get_running_loop()), host=LOOPBACK, port=0, source_filter=blocklist
    )
    user.transport = transport
    await transport.start(user)
    allowed, blocked = _client(LOOPBACK), _client(BLOCKED)
    try:
        node = (LOOPBACK, transport.port)
        blocked.sendto(request_bytes("OPTIONS"), node)
        allowed.sendto(request_bytes("OPTIONS", branch="z9hG4bKok"), node)
        answer = await _receive(allowed, WAIT)
        assert answer is not None and answer.startswith(b"SIP/2.0 200 ")
        assert await _receive(blocked, 0.3) is None
        assert len(user.received) == 1
        assert transport.stats.filtered == 1
        # garbage is reported against its sender (and still answered or dropped as before)
        allowed.sendto(b"NOT SIP AT ALL\r\n\r\n", node)
        async with asyncio.timeout(WAIT):
            await blocklist.reported.wait()
        assert blocklist.malformed == [LOOPBACK]
        # nothing goes out to a refused address, whatever asks for it
        blocked_port = blocked.getsockname()[1]
        transport.send_bytes(
            b"OPTIONS sip:x SIP/2.0\r\n\r\n", Destination("UDP", BLOCKED, blocked_port)
        )
        assert await _receive(blocked, 0.3) is None
        assert transport.stats.filtered_sends == 1
    finally:
        allowed.close()
        blocked.close()
        await transport.close()


async def _tcp_connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(LOOPBACK, port, local_addr=(host, 0))


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(WAIT):
            return await reader.read(65535) == b""
    except (ConnectionResetError, TimeoutError):
        return True


async def test_a_refused_source_cannot_open_a_tcp_connection_and_loses_an_open_one() -> None:
    blocklist = BlockList()
    user = Answerer()
    transport = SipTransport(
        LoopClock(asyncio.get_running_loop()), host=LOOPBACK, port=0, source_filter=blocklist
    )
    user.transport = transport
    await transport.start(user)
    try:
        reader, writer = await _tcp_connect(BLOCKED, transport.port)
        writer.write(request_bytes("OPTIONS", transport="TCP"))
        async with asyncio.timeout(WAIT):
            answer = await reader.readuntil(b"\r\n\r\n")
        assert answer.startswith(b"SIP/2.0 200 ")
        # banned now: its next message is dropped and its connection cut
        blocklist.blocked.add(BLOCKED)
        writer.write(request_bytes("OPTIONS", transport="TCP", branch="z9hG4bKsecond"))
        assert await _closed_by_peer(reader)
        writer.close()
        assert len(user.received) == 1
        # and a new connection from it is refused before any byte is read
        refused_before = transport.stats.connections_refused
        reader, writer = await _tcp_connect(BLOCKED, transport.port)
        assert await _closed_by_peer(reader)
        writer.close()
        assert transport.stats.connections_refused == refused_before + 1
        assert transport.connection_count == 0
    finally:
        await transport.close()
