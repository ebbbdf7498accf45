"""RTCP (RFC 3550 6.4-6.6): golden bytes for SR/RR/SDES/BYE, compound packets, exact errors."""

import pytest

from callwarden.media.rtcp import (
    SDES_CNAME,
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpParseError,
    RtcpRawPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    ntp_middle32,
    ntp_timestamp,
    parse_compound,
    serialize_compound,
)

BLOCK = bytes.fromhex("22222222 40ffffff 00010005 00000020 b2c38000 00010000")
SR = (
    bytes.fromhex("81 c8 000c 11111111")
    + bytes.fromhex("e5a1b2c3 80000000 00001000 00000032 00001f40")
    + BLOCK
)
SDES = bytes.fromhex("81 ca 0003 11111111 0103614062 000000")
BYE = bytes.fromhex("81 cb 0002 11111111 03627965")
RR_EMPTY = bytes.fromhex("80 c9 0001 11111111")


def test_sender_report_golden() -> None:
    expected = SenderReport(
        ssrc=0x11111111,
        ntp_timestamp=0xE5A1B2C3_80000000,
        rtp_timestamp=0x1000,
        packet_count=50,
        octet_count=8000,
        reports=(
            ReportBlock(
                ssrc=0x22222222,
                fraction_lost=0x40,
                cumulative_lost=-1,
                highest_sequence=0x10005,
                jitter=0x20,
                last_sr=0xB2C38000,
                delay_since_last_sr=0x10000,
            ),
        ),
    )
    assert parse_compound(SR) == [expected]
    assert bytes(expected) == SR


def test_compound_sr_sdes_bye_round_trip() -> None:
    data = SR + SDES + BYE
    packets = parse_compound(data)
    assert [type(p) for p in packets] == [SenderReport, SourceDescription, Goodbye]
    assert packets[1] == SourceDescription((SdesChunk(0x11111111, ((SDES_CNAME, b"a@b"),)),))
    assert packets[2] == Goodbye((0x11111111,), b"bye")
    assert serialize_compound(packets) == data


def test_receiver_report_without_blocks_and_unknown_types_round_trip() -> None:
    app = bytes.fromhex("80 cc 0002 11111111 6e616d65")  # APP (204), kept verbatim
    packets = parse_compound(RR_EMPTY + app)
    assert packets == [
        ReceiverReport(0x11111111),
        RtcpRawPacket(204, 0, bytes.fromhex("11111111 6e616d65")),
    ]
    assert serialize_compound(packets) == RR_EMPTY + app


def test_padding_on_last_packet_is_removed() -> None:
    padded = bytes.fromhex("a0 c9 0002 11111111 00000004")
    assert parse_compound(padded) == [ReceiverReport(0x11111111)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\xc9", "RTCP packet too short: 2 bytes"),
        (bytes.fromhex("40 c9 0001 11111111"), "RTCP version 1, expected 2"),
        (
            bytes.fromhex("80 c9 0002 11111111"),
            "RTCP length field runs past the end of the datagram",
        ),
        (RR_EMPTY + b"\x80", "trailing bytes after the last RTCP packet"),
        (
            bytes.fromhex("a0 c9 0002 11111111 00000004") + RR_EMPTY,
            "padding in an RTCP packet that is not the last",
        ),
        (bytes.fromhex("a0 c9 0001 11111100"), "invalid RTCP padding count"),
        (bytes.fromhex("81 c9 0001 11111111"), "1 report blocks do not fit in the packet"),
        (bytes.fromhex("80 c8 0001 11111111"), "sender report shorter than its sender info"),
        (bytes.fromhex("81 ca 0001 11111111"), "SDES item list not terminated"),
        (
            bytes.fromhex("81 ca 0002 11111111 0109aaaa"),
            "SDES item runs past the end of the packet",
        ),
        (bytes.fromhex("82 cb 0001 11111111"), "BYE source list truncated"),
        (
            bytes.fromhex("81 cb 0002 11111111 09aaaaaa"),
            "BYE reason runs past the end of the packet",
        ),
    ],
)
def test_parse_errors_are_typed_and_exact(data: bytes, message: str) -> None:
    with pytest.raises(RtcpParseError) as caught:
        parse_compound(data)
    assert str(caught.value) == message


def test_ntp_timestamp_of_unix_epoch_and_middle_bits() -> None:
    assert ntp_timestamp(0.0) == 2_208_988_800 << 32
    assert ntp_timestamp(0.5) == (2_208_988_800 << 32) | 0x80000000
    assert ntp_middle32(0xE5A1B2C3_80000000) == 0xB2C38000


def test_report_block_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        ReportBlock(1, 256, 0, 0, 0)
    with pytest.raises(ValueError):
        ReportBlock(1, 0, 1 << 23, 0, 0)
