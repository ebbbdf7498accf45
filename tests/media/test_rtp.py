"""RTP packets (RFC 3550 5.1): golden bytes, round trips and exact parse errors."""

import pytest

from callwarden.media.rtp import (
    FIXED_HEADER,
    HeaderExtension,
    RtpPacket,
    RtpParseError,
    payload_bounds,
    seq_newer,
)

# V=2, no P/X/CC; M=1, PT=0; seq 0x1234; ts 0x0000ABCD; SSRC 0xDEADBEEF; 4 payload bytes.
SIMPLE = bytes.fromhex("80 80 1234 0000abcd deadbeef") + b"\xff\xfe\xfd\xfc"
# V=2, P=1, X=1, CC=2; PT=8; two CSRCs; extension profile 0xBEDE with one word; payload; 3 pad.
FULL = (
    bytes.fromhex("b2 08 ffff ffffffff 00000001")
    + bytes.fromhex("0000000a 0000000b")
    + bytes.fromhex("bede 0001 01020304")
    + b"\xd5\xd5"
    + b"\x00\x00\x03"
)


def test_parse_simple_packet_fields() -> None:
    packet = RtpPacket.parse(SIMPLE)
    assert packet == RtpPacket(
        payload_type=0,
        sequence_number=0x1234,
        timestamp=0xABCD,
        ssrc=0xDEADBEEF,
        payload=b"\xff\xfe\xfd\xfc",
        marker=True,
    )
    assert bytes(packet) == SIMPLE


def test_parse_padding_extension_csrc_and_round_trip() -> None:
    packet = RtpPacket.parse(FULL)
    assert packet.payload_type == 8
    assert packet.sequence_number == 0xFFFF
    assert packet.timestamp == 0xFFFFFFFF
    assert packet.csrcs == (10, 11)
    assert packet.extension == HeaderExtension(0xBEDE, bytes.fromhex("01020304"))
    assert packet.payload == b"\xd5\xd5"
    assert packet.padding == 3
    assert not packet.marker
    assert bytes(packet) == FULL


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x00\x00", "packet too short for the RTP header: 3 bytes"),
        (bytes.fromhex("40 00 0001 00000000 00000000"), "RTP version 1, expected 2"),
        (
            bytes.fromhex("81 00 0001 00000000 00000000"),
            "CSRC list runs past the end of the packet",
        ),
        (
            bytes.fromhex("90 00 0001 00000000 00000000 bede"),
            "header extension runs past the end of the packet",
        ),
        (
            bytes.fromhex("90 00 0001 00000000 00000000 bede 0002 00000000"),
            "header extension runs past the end of the packet",
        ),
        (
            bytes.fromhex("a0 00 0001 00000000 00000000 aa 00"),
            "padding bit set but padding count is zero",
        ),
        (bytes.fromhex("a0 00 0001 00000000 00000000 aa 09"), "padding count exceeds the packet"),
    ],
)
def test_parse_errors_are_typed_and_exact(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError) as caught:
        RtpPacket.parse(data)
    assert str(caught.value) == message


def test_payload_bounds_hot_path_agrees_with_parser() -> None:
    assert payload_bounds(SIMPLE) == (12, 16)
    assert payload_bounds(FULL) == (28, 30)
    assert FIXED_HEADER.unpack_from(SIMPLE) == (0x80, 0x80, 0x1234, 0xABCD, 0xDEADBEEF)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"payload_type": 128},
        {"sequence_number": 65536},
        {"timestamp": -1},
        {"ssrc": 1 << 32},
        {"csrcs": tuple(range(16))},
        {"padding": 256},
    ],
)
def test_constructor_rejects_out_of_range_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"payload_type": 0, "sequence_number": 0, "timestamp": 0, "ssrc": 0}
    fields.update(kwargs)
    with pytest.raises(ValueError):
        RtpPacket(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("candidate", "reference", "newer"),
    [(1, 0, True), (0, 1, False), (0, 0xFFFF, True), (0xFFFF, 0, False), (0x8000, 0, False)],
)
def test_sequence_serial_arithmetic(candidate: int, reference: int, newer: bool) -> None:
    assert seq_newer(candidate, reference) is newer
