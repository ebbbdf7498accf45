"""SRTP legs of the media engine over real loopback UDP (T15's SRTP part).

The phones here protect and unprotect with their own libsrtp sessions (pylibsrtp), as a real
SRTP phone would: a round trip through a bridge to a plain leg and to another SRTP leg (each
listener gets its own key), tampered and replayed packets counted and dropped, never relayed.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest
from pylibsrtp import Error as LibSrtpError
from pylibsrtp import Policy, Session

from callwarden.media import g711
from callwarden.media.control import EndpointId, MediaConfig, MediaError
from callwarden.media.engine import MediaEngine
from callwarden.media.g711 import Encoding
from callwarden.media.rtcp import ReceiverReport, parse_compound, serialize_compound
from callwarden.media.rtp import RtpPacket
from callwarden.media.srtp import SUITES, SrtpKeys
from callwarden.media.workers import MediaWorkerPool

from .netutil import FakeClock, Phone, eventually, open_phone, rtp

PORTS = "47600-47699"


class SrtpPhone:
    """A loopback phone that speaks SRTP with its own key and the engine's."""

    def __init__(self, phone: Phone, suite: str) -> None:
        profile, length = SUITES[suite]
        self.phone = phone
        self.suite = suite
        self.own_key = os.urandom(length)  # what the phone sends with (its a=crypto)
        self.engine_key = os.urandom(length)  # what the engine sends it with (our a=crypto)
        self.tx = Session(Policy(self.own_key, Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
        self.rx = Session(Policy(self.engine_key, Policy.SSRC_ANY_INBOUND, srtp_profile=profile))

    @property
    def keys(self) -> SrtpKeys:
        """The engine's side: it sends with engine_key and receives with own_key."""
        return SrtpKeys(self.suite, send_key=self.engine_key, receive_key=self.own_key)

    def protect(self, packet: bytes) -> bytes:
        return bytes(self.tx.protect(packet))

    async def receive(self) -> RtpPacket:
        return RtpPacket.parse(bytes(self.rx.unprotect(await self.phone.next())))


@pytest.fixture(params=[True, False], ids=["c-pump", "python"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[MediaEngine]:
    engine = MediaEngine(
        MediaConfig(ports=PORTS, rtp_timeout=None, fast_path=request.param),
        clock=FakeClock(),
        rng=random.Random(3),
    )
    yield engine
    await engine.close()


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    opened = [await open_phone() for _ in range(3)]
    yield opened
    for phone in opened:
        phone.close()


async def leg(
    engine: MediaEngine, phone: Phone, bridge: str, role: str, keys: SrtpKeys | None
) -> tuple[EndpointId, tuple[str, int]]:
    local = await engine.create_endpoint(bridge_id=bridge, srtp=keys is not None)
    await engine.set_remote(
        local.endpoint_id,
        host=phone.address[0],
        port=phone.address[1],
        payload_type=0,
        encoding="PCMU",
        srtp=keys,
    )
    await engine.add_to_bridge(bridge, local.endpoint_id, role)
    await engine.enable(local.endpoint_id)
    return local.endpoint_id, (local.host, local.rtp_port)


async def quiet(phone: Phone, seconds: float = 0.15) -> bool:
    try:
        await phone.next(within=seconds)
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize("suite", sorted(SUITES))
async def test_srtp_leg_to_plain_leg_round_trip(
    engine: MediaEngine, phones: list[Phone], suite: str
) -> None:
    secure, plain = SrtpPhone(phones[0], suite), phones[1]
    bridge = await engine.create_bridge()
    a, a_media = await leg(engine, secure.phone, bridge, "customer", secure.keys)
    b, b_media = await leg(engine, plain, bridge, "operator", None)
    voice = bytes(range(160))
    for seq in range(1, 4):
        wire = secure.protect(rtp(seq, voice))
        assert voice not in wire  # encrypted on the wire
        secure.phone.send(wire, a_media)
        assert (await plain.packets(1))[0].payload == voice  # decrypted at the edge
    for seq in range(1, 4):
        plain.send(rtp(seq, voice), b_media)
        wire = await secure.phone.next()
        assert voice not in wire
        assert RtpPacket.parse(bytes(secure.rx.unprotect(wire))).payload == voice
    stats = await engine.stats(a)
    assert (stats.srtp, stats.packets_in, stats.packets_out, stats.dropped_auth) == (
        True,
        3,
        3,
        0,
    )
    assert engine._endpoints[a].packets_protected == 3  # type: ignore[attr-defined]
    assert not (await engine.stats(b)).srtp


async def test_two_srtp_legs_each_get_their_own_key(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    caller = SrtpPhone(phones[0], "AES_CM_128_HMAC_SHA1_80")
    callee = SrtpPhone(phones[1], "AEAD_AES_128_GCM")
    bridge = await engine.create_bridge()
    _, a_media = await leg(engine, caller.phone, bridge, "customer", caller.keys)
    _, b_media = await leg(engine, callee.phone, bridge, "operator", callee.keys)
    caller.phone.send(caller.protect(rtp(1, b"\x11" * 160)), a_media)
    assert (await callee.receive()).payload == b"\x11" * 160
    callee.phone.send(callee.protect(rtp(1, b"\x22" * 160)), b_media)
    wire = await caller.phone.next()
    with pytest.raises(LibSrtpError):  # not the callee's key: re-encrypted for this listener
        callee.rx.unprotect(wire)
    assert RtpPacket.parse(bytes(caller.rx.unprotect(wire))).payload == b"\x22" * 160


async def test_tampered_replayed_and_foreign_packets_are_counted_and_never_relayed(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    secure, plain, intruder = SrtpPhone(phones[0], "AES_CM_128_HMAC_SHA1_80"), *phones[1:]
    bridge = await engine.create_bridge()
    a, a_media = await leg(engine, secure.phone, bridge, "customer", secure.keys)
    await leg(engine, plain, bridge, "operator", None)
    good = secure.protect(rtp(1))
    tampered = bytearray(secure.protect(rtp(2)))
    tampered[20] ^= 0x01  # one payload bit
    secure.phone.send(bytes(tampered), a_media)
    secure.phone.send(rtp(3), a_media)  # plain RTP on an SRTP leg: fails authentication
    secure.phone.send(good, a_media)
    assert len(await plain.packets(1)) == 1
    secure.phone.send(good, a_media)  # replayed
    intruder.send(secure.protect(rtp(4)), a_media)  # valid SRTP, foreign address
    await eventually(lambda: engine._endpoints[a].dropped_foreign == 1)
    assert await quiet(plain)
    stats = await engine.stats(a)
    assert (stats.packets_in, stats.dropped_auth, stats.dropped_replay) == (1, 2, 1)
    assert stats.remote == secure.phone.address


async def test_srtcp_reports_are_protected_and_checked(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    secure = SrtpPhone(phones[0], "AES_CM_128_HMAC_SHA1_80")
    bridge = await engine.create_bridge()
    a, _ = await leg(engine, secure.phone, bridge, "customer", secure.keys)
    endpoint = engine._endpoints[a]
    rtcp_phone = await open_phone()
    try:
        report = serialize_compound([ReceiverReport(ssrc=0xCAFE)])
        endpoint._rtcp_peer = rtcp_phone.address
        endpoint.close()  # sends an RTCP BYE: SRTCP on this leg
        wire = await rtcp_phone.next()
        assert isinstance(parse_compound(bytes(secure.rx.unprotect_rtcp(wire)))[0], ReceiverReport)
        endpoint.enabled, endpoint._rtcp_peer = True, None
        endpoint.rtcp_received(report, secure.phone.address)  # plain RTCP: refused
        endpoint.rtcp_received(bytes(secure.tx.protect_rtcp(report)), secure.phone.address)
        assert (endpoint.rtcp_in, endpoint.rtcp_dropped, endpoint.dropped_auth) == (1, 1, 1)  # type: ignore[attr-defined]
    finally:
        rtcp_phone.close()


async def test_bad_keys_are_refused_and_leave_the_endpoint_as_it_was(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    secure = SrtpPhone(phones[0], "AES_CM_128_HMAC_SHA1_80")
    plain_endpoint = await engine.create_endpoint()
    with pytest.raises(MediaError, match="was not created for SRTP"):
        await engine.set_remote(
            plain_endpoint.endpoint_id,
            host="127.0.0.1",
            port=4000,
            payload_type=0,
            encoding="PCMU",
            srtp=secure.keys,
        )
    local = await engine.create_endpoint(srtp=True)
    for keys in (
        SrtpKeys("AES_CM_128_HMAC_SHA1_32", secure.engine_key, secure.own_key),
        SrtpKeys("AEAD_AES_128_GCM", secure.engine_key, secure.own_key),  # 30 bytes, not 28
    ):
        with pytest.raises(MediaError):
            await engine.set_remote(
                local.endpoint_id,
                host="127.0.0.2",
                port=4000,
                payload_type=0,
                encoding="PCMU",
                srtp=keys,
            )
    stats = await engine.stats(local.endpoint_id)
    assert (stats.srtp, stats.remote) == (False, None)


async def test_the_worker_pool_passes_srtp_to_its_workers() -> None:
    async with MediaWorkerPool(MediaConfig(ports="47700-47799"), workers=1) as pool:
        secure = SrtpPhone(await open_phone(), "AEAD_AES_128_GCM")
        try:
            bridge = await pool.create_bridge()
            local = await pool.create_endpoint(bridge_id=bridge, srtp=True)
            await pool.set_remote(
                local.endpoint_id,
                host=secure.phone.address[0],
                port=secure.phone.address[1],
                payload_type=0,
                encoding="PCMU",
                srtp=secure.keys,
            )
            await pool.add_to_bridge(bridge, local.endpoint_id, "customer")
            await pool.enable(local.endpoint_id)
            tone = await pool.add_tone(bridge, [440.0])
            assert tone
            packet = await asyncio.wait_for(secure.receive(), 2.0)
            assert packet.payload_type == 0
            assert (await pool.stats(local.endpoint_id)).srtp
        finally:
            secure.phone.close()


class Tracks:
    """A recording sink: each participant's own track, as the recorder gets it."""

    def __init__(self) -> None:
        self.frames: dict[str, list[bytes]] = {}

    def on_frame(self, participant_id: str, pcm: npt.NDArray[np.int16], timestamp: int) -> None:
        self.frames.setdefault(participant_id, []).append(pcm.tobytes())


async def test_a_recording_taps_the_srtp_leg_decrypted(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    secure, plain = SrtpPhone(phones[0], "AEAD_AES_128_GCM"), phones[1]
    bridge = await engine.create_bridge()
    a, a_media = await leg(engine, secure.phone, bridge, "customer", secure.keys)
    await leg(engine, plain, bridge, "operator", None)
    tracks = Tracks()
    engine.set_track_sink(bridge, tracks)
    pcm = (np.sin(np.arange(160) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
    voice = g711.encode(pcm, Encoding.PCMU)
    for seq in range(1, 5):
        secure.phone.send(secure.protect(rtp(seq, voice)), a_media)
    assert [p.payload for p in await plain.packets(4)] == [voice] * 4
    for _ in range(4):
        engine.tick()
    decoded = g711.decode(voice, Encoding.PCMU).tobytes()
    assert tracks.frames[a].count(decoded) >= 2  # past the jitter buffer's depth


async def test_srtp_before_the_answer_is_never_relayed(
    engine: MediaEngine, phones: list[Phone]
) -> None:
    secure, plain = SrtpPhone(phones[0], "AES_CM_128_HMAC_SHA1_80"), phones[1]
    bridge = await engine.create_bridge()
    local = await engine.create_endpoint(bridge_id=bridge, srtp=True)
    await engine.set_remote(
        local.endpoint_id,
        host=secure.phone.address[0],
        port=secure.phone.address[1],
        payload_type=0,
        encoding="PCMU",
        srtp=secure.keys,
    )
    await engine.add_to_bridge(bridge, local.endpoint_id, "customer")
    await leg(engine, plain, bridge, "operator", None)
    secure.phone.send(secure.protect(rtp(1)), (local.host, local.rtp_port))
    await eventually(lambda: engine._endpoints[local.endpoint_id].dropped_early == 1)
    assert await quiet(plain)
    await engine.enable(local.endpoint_id)  # answered: the next packet goes through
    secure.phone.send(secure.protect(rtp(2)), (local.host, local.rtp_port))
    assert len(await plain.packets(1)) == 1
