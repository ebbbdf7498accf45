"""Fuzzing the RTP, RTCP and telephone-event parsers (Hypothesis): random and mutated packets
only ever give the typed errors (RtpParseError, RtcpParseError, DtmfParseError), never another
exception; whatever parses is written back to bytes that parse to the same value.

A media port receives whatever anyone sends to it (T15, T17): these parsers are the first code
that sees it. Run longer with ``make fuzz`` (the "long" Hypothesis profile of conftest.py).
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from callwarden.media.dtmf import DtmfParseError, TelephoneEvent
from callwarden.media.rtcp import RtcpParseError, parse_compound, serialize_compound
from callwarden.media.rtp import RtpPacket, RtpParseError

SEED_RTP = [
    bytes.fromhex("80000001000000a0deadbeef") + b"\xff" * 160,  # PCMU, 20 ms
    bytes.fromhex("906500020000014000000001bede0001") + b"\x10\xaa\x00\x00" + b"\x01\x02",
    bytes.fromhex("a2080003000001e0cafebabe00000001")
    + b"\x00\x00\x00\x02"
    + b"\xd5" * 8
    + b"\x00\x03",
    bytes.fromhex("80e50004000002800badf00d") + bytes.fromhex("0a0a00a0"),  # telephone-event
]
SEED_RTCP = [
    # SR with one report block, then SDES with a CNAME, then BYE
    bytes.fromhex(
        "80c8000c" "deadbeef" "e7a1b2c3d4e5f601" "00000140" "00000010" "00000a00"
        "cafebabe" "01000002" "00001234" "00000010" "11223344" "00000005"
    )
    + bytes.fromhex("81ca0004deadbeef0109")
    + b"user@host\x00"
    + bytes.fromhex("81cb0001deadbeef"),
    bytes.fromhex("80c90001deadbeef"),  # an empty RR
]  # fmt: skip


def _mutate(seed: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    data = bytearray(seed)
    for position, value in edits:
        if data:
            data[position % len(data)] = value
    return bytes(data[:cut] if cut is not None else data)


mutations = st.tuples(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    st.none() | st.integers(0, 400),
)


def _check_rtp(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return
    assert RtpPacket.parse(bytes(packet)) == packet


def _check_rtcp(data: bytes) -> None:
    try:
        packets = parse_compound(data)
    except RtcpParseError:
        return
    assert parse_compound(serialize_compound(packets)) == packets


@given(st.binary(max_size=400))
@example(b"")
@example(b"\x80")
@example(bytes.fromhex("8f000001000000a0deadbeef"))  # 15 CSRCs announced, none there
@example(bytes.fromhex("a0000001000000a0deadbeef"))  # padding bit, no padding count
def test_random_bytes_give_only_rtp_parse_errors(data: bytes) -> None:
    _check_rtp(data)


@given(st.sampled_from(SEED_RTP), mutations)
def test_mutated_rtp_gives_only_typed_errors(
    seed: bytes, mutation: tuple[list[tuple[int, int]], int | None]
) -> None:
    _check_rtp(_mutate(seed, *mutation))


@given(st.binary(max_size=400))
@example(b"")
@example(bytes.fromhex("80c8ffff"))  # a length running far past the datagram
@example(bytes.fromhex("9fc90001deadbeef"))  # 31 report blocks announced in 8 bytes
def test_random_bytes_give_only_rtcp_parse_errors(data: bytes) -> None:
    _check_rtcp(data)


@given(st.sampled_from(SEED_RTCP), mutations)
def test_mutated_rtcp_gives_only_typed_errors(
    seed: bytes, mutation: tuple[list[tuple[int, int]], int | None]
) -> None:
    _check_rtcp(_mutate(seed, *mutation))


@given(st.binary(max_size=16))
@example(b"")
@example(bytes.fromhex("ff0000a0"))  # an event code past the table
def test_random_telephone_events_give_only_dtmf_parse_errors(payload: bytes) -> None:
    try:
        event = TelephoneEvent.parse(payload)
    except DtmfParseError:
        return
    assert TelephoneEvent.parse(bytes(event)) == event
