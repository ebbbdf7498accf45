"""MediaWorkerPool: calls spread over worker processes behind the same interface."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callwarden.media.control import DtmfEvent, MediaConfig, MediaError, MediaEvent
from callwarden.media.dtmf import dtmf_packets
from callwarden.media.workers import MediaWorkerPool, split_ports

from .netutil import Phone, eventually, open_phone, rtp


def test_split_ports_gives_disjoint_pair_ranges() -> None:
    assert split_ports("47300-47311", 2) == ["47300-47305", "47306-47311"]
    with pytest.raises(MediaError, match="too small for 3 workers"):
        split_ports("47300-47303", 3)


@pytest.fixture
async def pool() -> AsyncIterator[MediaWorkerPool]:
    async with MediaWorkerPool(MediaConfig(ports="47300-47399"), workers=2) as started:
        yield started


async def start_call(pool: MediaWorkerPool, caller: Phone, callee: Phone) -> tuple[str, int, str]:
    bridge = await pool.create_bridge()
    ports = []
    ids = []
    for phone, role in ((caller, "customer"), (callee, "operator")):
        local = await pool.create_endpoint(bridge_id=bridge)
        await pool.set_remote(
            local.endpoint_id,
            host=phone.address[0],
            port=phone.address[1],
            payload_type=0,
            encoding="PCMU",
            dtmf_payload_type=101,
        )
        await pool.add_to_bridge(bridge, local.endpoint_id, role)
        await pool.enable(local.endpoint_id)
        ports.append(local.rtp_port)
        ids.append(local.endpoint_id)
    return bridge, ports[0], ids[0]


async def test_calls_in_two_workers_relay_report_dtmf_and_route(pool: MediaWorkerPool) -> None:
    """One test, so the worker processes are spawned once."""
    await check_calls(pool)
    await check_routing_errors(pool)


async def check_calls(pool: MediaWorkerPool) -> None:
    events: list[MediaEvent] = []
    pool.subscribe(events.append)
    phones = [await open_phone() for _ in range(4)]
    try:
        first = await start_call(pool, phones[0], phones[1])
        second = await start_call(pool, phones[2], phones[3])
        assert {first[0].split(".")[0], second[0].split(".")[0]} == {"w0", "w1"}
        for (_, port, _), sender, receiver in (
            (first, phones[0], phones[1]),
            (second, phones[2], phones[3]),
        ):
            sender.send(rtp(1, b"\x33" * 160), ("127.0.0.1", port))
            await receive_payload(receiver, b"\x33" * 160)
        for packet in dtmf_packets("8", payload_type=101, ssrc=1, sequence_number=2, timestamp=320):
            phones[2].send(bytes(packet), ("127.0.0.1", second[1]))
        await eventually(lambda: len(events) == 1)
        assert events == [DtmfEvent(second[2], "8", 320)]  # type: ignore[arg-type]
        stats = await pool.stats(second[2])
        assert stats.packets_in == 1 + 7 and stats.dtmf_digits == 1  # audio + 4 updates + 3 ends
        totals = await pool.engine_stats()
        assert (totals.endpoints, totals.bridges) == (4, 2)
    finally:
        for phone in phones:
            phone.close()


async def receive_payload(phone: Phone, payload: bytes) -> None:
    """Skip the silence frames the bridge sends while the source is quiet."""
    for _ in range(200):
        if (await phone.packets(1))[0].payload == payload:
            return
    raise AssertionError("payload never arrived")


async def check_routing_errors(pool: MediaWorkerPool) -> None:
    bridge = await pool.create_bridge()
    other = await pool.create_bridge()
    endpoint = await pool.create_endpoint(bridge_id=other)
    with pytest.raises(MediaError, match="live in different media workers"):
        await pool.add_to_bridge(bridge, endpoint.endpoint_id, "customer")
    with pytest.raises(MediaError, match="no endpoint or bridge 'e1'"):
        await pool.enable("e1")
    with pytest.raises(MediaError, match=r"no endpoint 'w0\.e999'"):
        await pool.enable("w0.e999")
    await pool.close_endpoint(endpoint.endpoint_id)
    await pool.close_bridge(bridge)
    assert (await pool.engine_stats()).bridges == 3  # two calls and "other"
