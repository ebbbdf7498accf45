"""DTMF telephone-events (RFC 4733): payload golden bytes, one digit per key press, generator."""

import pytest

from callwarden.media.dtmf import (
    DtmfDigit,
    DtmfParseError,
    DtmfReceiver,
    TelephoneEvent,
    digit_event,
    dtmf_packets,
)
from callwarden.media.rtp import RtpPacket


def test_payload_golden_bytes() -> None:
    # Event 11 ('#'), end bit, volume 10, duration 1600 (RFC 4733 2.3).
    data = bytes.fromhex("0b 8a 0640")
    event = TelephoneEvent.parse(data)
    assert event == TelephoneEvent(event=11, end=True, volume=10, duration=1600)
    assert event.digit == "#"
    assert bytes(event) == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x02", "telephone-event payload too short: 2 bytes"),
        (b"\x01\x02\x03\x04\x05", "telephone-event payload not a multiple of 4: 5"),
    ],
)
def test_parse_errors(data: bytes, message: str) -> None:
    with pytest.raises(DtmfParseError) as caught:
        TelephoneEvent.parse(data)
    assert str(caught.value) == message


def test_generated_packets_golden() -> None:
    packets = dtmf_packets(
        "5", payload_type=101, ssrc=0xABCD, sequence_number=65534, timestamp=8000, duration=480
    )
    assert [bytes(p) for p in packets] == [
        bytes.fromhex("80e5fffe00001f400000abcd 050a00a0"),
        bytes.fromhex("8065ffff00001f400000abcd 050a0140"),
        bytes.fromhex("8065000000001f400000abcd 058a01e0"),
        bytes.fromhex("8065000100001f400000abcd 058a01e0"),
        bytes.fromhex("8065000200001f400000abcd 058a01e0"),
    ]


def feed(receiver: DtmfReceiver, packets: list[RtpPacket]) -> list[DtmfDigit]:
    digits = []
    for packet in packets:
        digit = receiver.receive(packet.marker, packet.timestamp, packet.payload)
        if digit is not None:
            digits.append(digit)
    return digits


def press(digit: str, timestamp: int, seq: int = 0, duration: int = 800) -> list[RtpPacket]:
    return dtmf_packets(
        digit, payload_type=101, ssrc=1, sequence_number=seq, timestamp=timestamp, duration=duration
    )


def test_one_digit_per_press_with_end_repeats() -> None:
    receiver = DtmfReceiver()
    packets = press("1", 1000) + press("1", 3000) + press("#", 5000)
    assert feed(receiver, packets) == [
        DtmfDigit("1", 1000),
        DtmfDigit("1", 3000),
        DtmfDigit("#", 5000),
    ]


def test_lost_first_packet_and_lost_end_packets_still_one_digit() -> None:
    receiver = DtmfReceiver()
    first = press("7", 1000)[1:]  # the marker packet is lost
    second = press("7", 4000)[:-3]  # every end packet is lost
    third = press("7", 7000)
    assert feed(receiver, first + second + third) == [
        DtmfDigit("7", 1000),
        DtmfDigit("7", 4000),
        DtmfDigit("7", 7000),
    ]


def test_reordered_old_event_packet_is_ignored() -> None:
    receiver = DtmfReceiver()
    old, new = press("2", 1000), press("3", 2000)
    assert feed(receiver, old[:2] + new[:2] + old[2:] + new[2:]) == [
        DtmfDigit("2", 1000),
        DtmfDigit("3", 2000),
    ]


def test_long_press_segments_count_once() -> None:
    # RFC 4733 2.5.1.3: past 0xFFFF the sender starts a new segment at ts + 0xFFFF, no marker.
    receiver = DtmfReceiver()
    segment_one = press("9", 0, duration=0xFFFF)[:-3]
    segment_one.append(
        RtpPacket(101, 500, 0, 1, bytes(TelephoneEvent(9, False, 10, 0xFFFF)), marker=False)
    )
    segment_two = [
        RtpPacket(101, 501, 0xFFFF, 1, bytes(TelephoneEvent(9, False, 10, 800)), marker=False),
        RtpPacket(101, 502, 0xFFFF, 1, bytes(TelephoneEvent(9, True, 10, 960)), marker=False),
    ]
    assert feed(receiver, segment_one + segment_two) == [DtmfDigit("9", 0)]


def test_non_digit_events_are_not_reported() -> None:
    receiver = DtmfReceiver()
    tone = bytes(TelephoneEvent(event=70, end=False, volume=10, duration=160))
    assert receiver.receive(True, 100, tone) is None


def test_digit_event_codes() -> None:
    assert [digit_event(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert digit_event("a") == 12
    with pytest.raises(ValueError, match="not a DTMF digit: 'X'"):
        digit_event("X")
