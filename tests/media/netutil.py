"""Test helpers: a fake clock and UDP 'phones' on loopback (not a test module)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from callwarden.media.control import EndpointId
from callwarden.media.engine import MediaEngine
from callwarden.media.rtp import RtpPacket


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now


class Phone(asyncio.DatagramProtocol):
    """A UDP socket that records every datagram it receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received.put_nowait((data, (addr[0], addr[1])))

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, to)

    async def next(self, within: float = 2.0) -> bytes:
        data, _ = await asyncio.wait_for(self.received.get(), within)
        return data

    async def packets(self, count: int, within: float = 2.0) -> list[RtpPacket]:
        return [RtpPacket.parse(await self.next(within)) for _ in range(count)]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_phone(host: str = "127.0.0.1") -> Phone:
    loop = asyncio.get_running_loop()
    _, phone = await loop.create_datagram_endpoint(Phone, local_addr=(host, 0))
    return phone


async def eventually(predicate: Callable[[], bool], within: float = 2.0) -> None:
    """Wait for packets in flight on loopback to be processed (counters have no event to await)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.002)


def rtp(
    seq: int,
    payload: bytes = b"\xff" * 160,
    *,
    pt: int = 0,
    ts: int | None = None,
    marker: bool = False,
) -> bytes:
    return bytes(
        RtpPacket(
            payload_type=pt,
            sequence_number=seq & 0xFFFF,
            timestamp=(seq * 160 if ts is None else ts) & 0xFFFFFFFF,
            ssrc=0xCAFE,
            payload=payload,
            marker=marker,
        )
    )


async def start_call(
    engine: MediaEngine, caller: Phone, callee: Phone, dtmf: int | None = None
) -> tuple[tuple[str, int], tuple[str, int], EndpointId, EndpointId]:
    """A two-party bridge between ``caller`` and ``callee``, both legs enabled."""
    a = await engine.create_endpoint()
    b = await engine.create_endpoint()
    await engine.set_remote(
        a.endpoint_id,
        host=caller.address[0],
        port=caller.address[1],
        payload_type=0,
        encoding="PCMU",
        dtmf_payload_type=101,
    )
    await engine.set_remote(
        b.endpoint_id,
        host=callee.address[0],
        port=callee.address[1],
        payload_type=0,
        encoding="PCMU",
        dtmf_payload_type=dtmf,
    )
    bridge = await engine.create_bridge()
    await engine.add_to_bridge(bridge, a.endpoint_id, "customer")
    await engine.add_to_bridge(bridge, b.endpoint_id, "operator")
    await engine.enable(a.endpoint_id)
    await engine.enable(b.endpoint_id)
    return (a.host, a.rtp_port), (b.host, b.rtp_port), a.endpoint_id, b.endpoint_id
