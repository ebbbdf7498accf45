"""SDP parsing and writing (RFC 8866) and offer/answer (RFC 3264): golden bytes and tables."""

from __future__ import annotations

import ipaddress

import pytest

from callwarden.sip.errors import SipParseError
from callwarden.sip.sdp import (
    DEFAULT_CODECS,
    MAX_SDP_BYTES,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    Connection,
    Direction,
    MediaDescription,
    NegotiatedMedia,
    NoCommonCodec,
    OfferAnswerError,
    Origin,
    RtpMap,
    SdpParseError,
    SessionDescription,
    build_offer,
    negotiate_answer,
    parse_answer,
)
from callwarden.sip.session_description import packed_ip_address


def sdp(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


# A phone's offer in the canonical line order: it must come back byte for byte.
PHONE_OFFER = sdp(
    "v=0",
    "o=alice 2890844526 2890844527 IN IP4 198.51.100.7",
    "s=Talk",
    "i=a call",
    "c=IN IP4 198.51.100.7",
    "b=AS:84",
    "t=0 0",
    "a=tool:phone 1.0",
    "m=audio 49170 RTP/AVP 8 0 9 96 101",
    "b=TIAS:64000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 useinbandfec=1",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=ptime:20",
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
    "a=rtcp:49171",
    "a=maxptime:150",
    "a=sendrecv",
    "m=video 51372 RTP/AVP 31 34",
    "c=IN IP4 198.51.100.8",
    "a=rtpmap:31 H261/90000",
    "a=rtpmap:34 H263/90000",
    "a=recvonly",
)


def test_phone_offer_parses_to_its_fields() -> None:
    description = SessionDescription.parse(PHONE_OFFER)
    assert description.origin == Origin("alice", 2890844526, 2890844527, "198.51.100.7")
    assert description.session_name == "Talk"
    assert description.connection == Connection("198.51.100.7", "IP4")
    assert description.timing == [("t", "0 0")]
    assert description.attributes == [("tool", "phone 1.0")]
    assert description.other_lines == [("i", "a call"), ("b", "AS:84")]
    audio, video = description.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 49170, "RTP/AVP")
    assert audio.formats == [8, 0, 9, 96, 101]
    assert audio.rtpmap[96] == RtpMap("opus", 48000, 2)
    assert audio.fmtp == {96: "useinbandfec=1", 101: "0-16"}
    assert audio.payload_map(9) == RtpMap("G722", 8000)  # static, RFC 3551
    assert audio.payload_map(97) is None
    assert audio.ptime == 20
    assert audio.crypto == [
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32"
    ]
    assert audio.attributes == [("rtcp", "49171"), ("maxptime", "150")]
    assert audio.other_lines == [("b", "TIAS:64000")]
    assert (audio.direction, audio.direction_explicit) == ("sendrecv", True)
    assert audio.connection is None
    assert video.connection == Connection("198.51.100.8")
    assert video.direction == "recvonly"


def test_canonical_order_round_trips_byte_for_byte() -> None:
    assert bytes(SessionDescription.parse(PHONE_OFFER)) == PHONE_OFFER


def test_other_orders_and_line_endings_parse_to_the_same_value() -> None:
    reordered = sdp(
        "v=0",
        "o=- 1 2 IN IP6 2001:db8::7",
        "s=-",
        "c=IN IP6 2001:db8::7",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 101",
        "a=sendonly",
        "a=fmtp:101 0-15",
        "a=ptime:30",
        "a=rtpmap:101 telephone-event/8000",
    )
    canonical = sdp(
        "v=0",
        "o=- 1 2 IN IP6 2001:db8::7",
        "s=-",
        "c=IN IP6 2001:db8::7",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:30",
        "a=sendonly",
    )
    parsed = SessionDescription.parse(reordered)
    assert bytes(parsed) == canonical
    assert SessionDescription.parse(reordered.replace(b"\r\n", b"\n")) == parsed


def test_kept_lines_are_stored_in_rfc8866_order() -> None:
    """Found by the fuzzer: k= before i= must still parse to what its own output parses to."""
    body = sdp(*BASE[:3], "b=AS:64", "i=info", *BASE[3:], "k=prompt", "i=media info", "b=TIAS:1")
    parsed = SessionDescription.parse(body)
    assert parsed.other_lines == [("i", "info"), ("b", "AS:64")]
    assert parsed.media[0].other_lines == [("i", "media info"), ("b", "TIAS:1"), ("k", "prompt")]
    assert SessionDescription.parse(bytes(parsed)) == parsed


def test_session_direction_is_inherited_and_not_repeated() -> None:
    body = sdp(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "a=inactive",
        "m=audio 4000 RTP/AVP 0",
        "m=audio 4002 RTP/AVP 8",
        "a=sendrecv",
    )
    parsed = SessionDescription.parse(body)
    assert parsed.direction == "inactive"
    assert [(m.direction, m.direction_explicit) for m in parsed.media] == [
        ("inactive", False),
        ("sendrecv", True),
    ]
    assert bytes(parsed) == body


def test_non_rtp_media_keeps_format_tokens() -> None:
    body = sdp(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=application 5000/2 TCP/BFCP *",
        "a=fmtp:* floorctrl",
    )
    parsed = SessionDescription.parse(body)
    (media,) = parsed.media
    assert (media.formats, media.other_formats, media.port_count) == ([], ["*"], 2)
    assert media.attributes == [("fmtp", "* floorctrl")]
    assert bytes(parsed) == body


BASE = [
    "v=0",
    "o=- 1 1 IN IP4 192.0.2.1",
    "s=-",
    "c=IN IP4 192.0.2.1",
    "t=0 0",
    "m=audio 4000 RTP/AVP 0",
]


def with_line(index: int, line: str | None) -> bytes:
    """BASE with line ``index`` replaced (or removed when ``line`` is None, appended at len)."""
    lines = list(BASE)
    if index == len(lines):
        assert line is not None
        lines.append(line)
    elif line is None:
        del lines[index]
    else:
        lines[index] = line
    return sdp(*lines)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "SDP body is empty"),
        (b"\xff\xfe", "SDP body is not valid UTF-8"),
        (with_line(0, "v=1"), "v= line: unsupported version (line 1)"),
        (with_line(0, "o=- 1 1 IN IP4 192.0.2.1"), "line 1 must be the v= line"),
        (with_line(1, None), "line 2 must be the o= line"),
        (
            with_line(1, "o=- 1 1 IN IP4"),
            "o= line: expected 6 fields separated by single spaces (line 2)",
        ),
        (with_line(1, "o=- x 1 IN IP4 192.0.2.1"), "o= line: session id not a number (line 2)"),
        (
            with_line(1, "o=- 1 " + "9" * 21 + " IN IP4 192.0.2.1"),
            "o= line: session version not a number (line 2)",
        ),
        (with_line(1, "o=- 1 1 ATM IP4 192.0.2.1"), "o= line: unsupported network type (line 2)"),
        (with_line(2, "t=0 0"), "line 3 must be the s= line"),
        (with_line(3, "c=IN IP4"), "c= line: expected '<nettype> <addrtype> <address>' (line 4)"),
        (with_line(3, "c=IN IPX 192.0.2.1"), "c= line: unsupported address type (line 4)"),
        (
            with_line(3, "c=IN IP6 192.0.2.1"),
            "c= line: address does not match the address type (line 4)",
        ),
        (
            with_line(3, "c=IN IP4 bad_host!"),
            "c= line: address is not an IP address or host name (line 4)",
        ),
        (with_line(3, None), "m=audio section has no c= line at any level"),
        (with_line(4, None), "missing t= line"),
        (with_line(4, "t=0"), "t= line: expected '<start time> <stop time>' (line 5)"),
        (with_line(4, "t=now 0"), "t= line: time not a number (line 5)"),
        (with_line(4, "r=7d 1h 0 25h"), "r= line: before any t= line (line 5)"),
        (
            with_line(5, "m=audio"),
            "m= line: expected '<media> <port> <proto> <format> ...' (line 6)",
        ),
        (with_line(5, "m=audio x RTP/AVP 0"), "m= line: port not a number (line 6)"),
        (with_line(5, "m=audio -1 RTP/AVP 0"), "m= line: port not a number (line 6)"),
        (with_line(5, "m=audio 70000 RTP/AVP 0"), "m= line: port out of range (line 6)"),
        (
            with_line(5, "m=audio 4000/0 RTP/AVP 0"),
            "m= line: number of ports not a positive number (line 6)",
        ),
        (with_line(5, "m=audio 4000 RTP/AVP 0 x"), "m= line: payload type not a number (line 6)"),
        (with_line(5, "m=audio 4000 RTP/AVP 128"), "m= line: payload type out of range (line 6)"),
        (with_line(5, "m=audio 4000 RTP/AVP 0 0"), "m= line: payload type listed twice (line 6)"),
        (with_line(5, "m=aud(io 4000 RTP/AVP 0"), "m= line: media type is not a token (line 6)"),
        (
            with_line(5, "m=audio 4000 RTP//AVP 0"),
            "m= line: transport protocol is not a token (line 6)",
        ),
        (with_line(5, "m=audio ٣ RTP/AVP 0"), "m= line: port not a number (line 6)"),
        (with_line(6, "a=rtpmap:x PCMU/8000"), "a=rtpmap line: payload type not a number (line 7)"),
        (
            with_line(6, "a=rtpmap:0 PCMU"),
            "a=rtpmap line: expected '<encoding>/<clock rate>' (line 7)",
        ),
        (with_line(6, "a=rtpmap:0"), "a=rtpmap line: expected '<encoding>/<clock rate>' (line 7)"),
        (
            with_line(6, "a=rtpmap:0 PCMU/fast"),
            "a=rtpmap line: clock rate not a positive number (line 7)",
        ),
        (
            with_line(6, "a=rtpmap:0 PCMU/0"),
            "a=rtpmap line: clock rate not a positive number (line 7)",
        ),
        (
            with_line(6, "a=rtpmap:0 PCMU/8000/x"),
            "a=rtpmap line: channels not a positive number (line 7)",
        ),
        (with_line(6, "a=fmtp:101"), "a=fmtp line: expected '<format> <parameters>' (line 7)"),
        (with_line(6, "a=fmtp:1x1 0-15"), "a=fmtp line: payload type not a number (line 7)"),
        (
            with_line(6, "a=ptime:0"),
            "a=ptime line: not a positive integer of milliseconds (line 7)",
        ),
        (
            with_line(6, "a=ptime:twenty"),
            "a=ptime line: not a positive integer of milliseconds (line 7)",
        ),
        (with_line(6, "a=sendonly:yes"), "a=sendonly line: takes no value (line 7)"),
        (with_line(6, "a=crypto"), "a=crypto line: missing value (line 7)"),
        (with_line(6, "a=bad name"), "a= line: attribute name is not a token (line 7)"),
        (with_line(6, "b=AS"), "b= line: expected '<bwtype>:<bandwidth>' (line 7)"),
        (with_line(6, "t=0 0"), "t= line not allowed in a media description (line 7)"),
        (
            with_line(6, "c=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.2"),
            "c= line: more than one in a media description (line 8)",
        ),
        (
            with_line(6, "a=sendonly\r\na=recvonly"),
            "a= line: more than one direction attribute (line 8)",
        ),
        (
            with_line(6, "a=rtpmap:0 PCMU/8000\r\na=rtpmap:0 PCMA/8000"),
            "a=rtpmap line: payload type 0 mapped twice (line 8)",
        ),
        (with_line(6, "a=ptime:20\r\na=ptime:30"), "a=ptime line: more than one (line 8)"),
        (
            with_line(6, "a=fmtp:0 a=b\r\na=fmtp:0 c=d"),
            "a=fmtp line: payload type 0 has two fmtp lines (line 8)",
        ),
        (with_line(5, "o=- 2 2 IN IP4 192.0.2.1"), "o= line: more than one (line 6)"),
        (with_line(5, "c=IN IP4 192.0.2.1"), "c= line: more than one at session level (line 6)"),
        (
            with_line(5, "a=inactive\r\na=sendrecv"),
            "a= line: more than one direction attribute (line 7)",
        ),
        (with_line(5, "x=unknown"), "unknown line type 'x=' (line 6)"),
        (with_line(5, "M=audio 4000 RTP/AVP 0"), "expected '<type>=<value>' (line 6)"),
        (with_line(5, "m = audio 4000 RTP/AVP 0"), "expected '<type>=<value>' (line 6)"),
        (with_line(3, "c=IN IP4 192.0.2.1\r\n"), "expected '<type>=<value>' (line 5)"),
        (with_line(5, "s=nul\x00here"), "control character in SDP (line 6)"),
        (with_line(5, "s=cr\rhere"), "control character in SDP (line 6)"),
    ],
)
def test_malformed_lines_give_exact_errors(body: bytes, message: str) -> None:
    with pytest.raises(SdpParseError) as caught:
        SessionDescription.parse(body)
    assert str(caught.value) == message
    assert caught.value.status == 400
    assert isinstance(caught.value, SipParseError)


def test_oversized_body_is_rejected_before_parsing() -> None:
    padding = "a=x-padding:" + "p" * 1000
    body = sdp(*BASE, *([padding] * 70))
    assert len(body) > MAX_SDP_BYTES
    with pytest.raises(SdpParseError, match="SDP body larger than 65536 bytes"):
        SessionDescription.parse(body)
    assert SessionDescription.parse(sdp(*BASE, *([padding] * 60))).media[0].attributes


def test_rfc4475_sdp01_body_has_a_malformed_rtpmap() -> None:
    """RFC 4475 3.3.15 (sdp01) carries ``a=rtpmap:31 LPC`` (no clock rate); the 406 for its
    Accept header comes first, but should the body ever be parsed it is a typed 400."""
    body = sdp(
        "v=0",
        "o=mhandley 29739 7272939 IN IP4 192.0.2.5",
        "s=-",
        "c=IN IP4 192.0.2.5",
        "t=0 0",
        "m=audio 49217 RTP/AVP 0 12",
        "m=video 3227 RTP/AVP 31",
        "a=rtpmap:31 LPC",
    )
    assert len(body) == 150  # its Content-Length
    with pytest.raises(
        SdpParseError, match=r"^a=rtpmap line: expected '<encoding>/<clock rate>' \(line 8\)$"
    ):
        SessionDescription.parse(body)


# --------------------------------------------------------------------------- offers


def test_build_offer_golden_bytes() -> None:
    offer = build_offer(
        local_address="203.0.113.5", local_port=40000, session_id=7, session_version=7
    )
    assert bytes(offer) == sdp(
        "v=0",
        "o=- 7 7 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )
    assert SessionDescription.parse(bytes(offer)) == offer


def test_build_offer_for_hold_over_ipv6() -> None:
    offer = build_offer(
        local_address="2001:db8::5",
        local_port=40002,
        session_id=7,
        session_version=8,
        codecs=(PCMA,),
        direction="sendonly",
    )
    assert bytes(offer) == sdp(
        "v=0",
        "o=- 7 8 IN IP6 2001:db8::5",
        "s=-",
        "c=IN IP6 2001:db8::5",
        "t=0 0",
        "m=audio 40002 RTP/AVP 8",
        "a=rtpmap:8 PCMA/8000",
        "a=ptime:20",
        "a=sendonly",
    )


def test_build_offer_refuses_bad_local_settings() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        build_offer(local_address="media.example", local_port=1, session_id=1, session_version=1)
    with pytest.raises(ValueError, match="share a payload type"):
        build_offer(
            local_address="192.0.2.1",
            local_port=1,
            session_id=1,
            session_version=1,
            codecs=(PCMU, Codec("PCMA", 0)),
        )


# --------------------------------------------------------------------------- answers


def answer(
    offer_body: bytes,
    supported: tuple[Codec, ...] = DEFAULT_CODECS,
    local_direction: Direction = "sendrecv",
) -> tuple[SessionDescription, NegotiatedMedia]:
    return negotiate_answer(
        SessionDescription.parse(offer_body),
        supported,
        local_address="203.0.113.5",
        local_port=40000,
        session_id=11,
        session_version=12,
        local_direction=local_direction,
    )


def test_answer_to_the_phone_offer_golden_bytes() -> None:
    description, negotiated = answer(PHONE_OFFER)
    assert bytes(description) == sdp(
        "v=0",
        "o=- 11 12 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 40000 RTP/AVP 8 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
        "m=video 0 RTP/AVP 31 34",
    )
    assert negotiated == NegotiatedMedia(
        remote_address="198.51.100.7",
        remote_port=49170,
        payload_type=8,
        encoding="PCMA",
        clock_rate=8000,
        dtmf_payload_type=101,
        direction="sendrecv",
        ptime=20,
        is_hold=False,
    )


def offer_with(formats: str, *attributes: str, connection: str = "198.51.100.9") -> bytes:
    return sdp(
        "v=0",
        "o=- 5 5 IN IP4 198.51.100.9",
        "s=-",
        f"c=IN IP4 {connection}",
        "t=0 0",
        f"m=audio 5004 RTP/AVP {formats}",
        *attributes,
    )


@pytest.mark.parametrize(
    ("formats", "attributes", "payload_type", "encoding", "dtmf"),
    [
        ("0 8", (), 0, "PCMU", None),  # static types need no rtpmap
        ("8 0", (), 8, "PCMA", None),  # the offerer's preference wins
        ("18 8", (), 8, "PCMA", None),  # G.729 is skipped
        ("97 0", ("a=rtpmap:97 pcmu/8000",), 97, "PCMU", None),  # dynamic PT, name in any case
        ("0 96", ("a=rtpmap:96 telephone-event/8000",), 0, "PCMU", 96),  # offerer's DTMF PT kept
        ("0 96", ("a=rtpmap:96 telephone-event/16000",), 0, "PCMU", None),  # clock must match
        ("0 96", ("a=rtpmap:96 telephone-event/8000", "a=fmtp:96 32-40"), 0, "PCMU", None),
        ("0 98", ("a=rtpmap:0 PCMU/8000/2", "a=rtpmap:98 PCMA/8000"), 98, "PCMA", None),
    ],
)
def test_codec_choice_follows_the_offer(
    formats: str, attributes: tuple[str, ...], payload_type: int, encoding: str, dtmf: int | None
) -> None:
    description, negotiated = answer(offer_with(formats, *attributes))
    assert (negotiated.payload_type, negotiated.encoding, negotiated.dtmf_payload_type) == (
        payload_type,
        encoding,
        dtmf,
    )
    assert description.media[0].formats == [payload_type] + ([dtmf] if dtmf is not None else [])


@pytest.mark.parametrize(
    ("fmtp", "answered"),
    [
        (None, "0-15"),
        ("0-15", "0-15"),
        ("0-16", "0-16"),
        ("0-11,16,32-40", "0-11,16"),
        ("1, 3-5", "1,3-5"),
    ],
)
def test_telephone_event_list_is_intersected(fmtp: str | None, answered: str) -> None:
    attributes = ["a=rtpmap:101 telephone-event/8000"]
    if fmtp is not None:
        attributes.append(f"a=fmtp:101 {fmtp}")
    description, _ = answer(offer_with("0 101", *attributes))
    assert description.media[0].fmtp == {101: answered}


@pytest.mark.parametrize(
    ("offered", "connection", "local", "answered", "is_hold"),
    [
        ("sendrecv", "198.51.100.9", "sendrecv", "sendrecv", False),
        ("sendonly", "198.51.100.9", "sendrecv", "recvonly", True),
        ("recvonly", "198.51.100.9", "sendrecv", "sendonly", False),
        ("inactive", "198.51.100.9", "sendrecv", "inactive", True),
        ("sendrecv", "0.0.0.0", "sendrecv", "recvonly", True),  # RFC 2543 hold
        ("recvonly", "0.0.0.0", "sendrecv", "inactive", True),
        ("sendrecv", "198.51.100.9", "sendonly", "sendonly", False),  # we hold
        ("sendonly", "198.51.100.9", "sendonly", "inactive", True),
    ],
)
def test_answer_direction_rfc3264_6_1(
    offered: Direction, connection: str, local: Direction, answered: Direction, is_hold: bool
) -> None:
    description, negotiated = answer(
        offer_with("0", f"a={offered}", connection=connection), local_direction=local
    )
    assert description.media[0].direction == answered
    assert (negotiated.direction, negotiated.is_hold) == (answered, is_hold)
    assert negotiated.remote_address == connection


def test_answer_keeps_timing_rejects_other_streams_and_picks_the_first_usable_audio() -> None:
    offer = sdp(
        "v=0",
        "o=- 5 5 IN IP4 198.51.100.9",
        "s=-",
        "c=IN IP4 198.51.100.9",
        "t=3034423619 3042462419",
        "m=audio 5000 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        "m=audio 0 RTP/AVP 0",
        "m=audio 5002 RTP/AVP 18",
        "m=audio 5004 RTP/AVP 8",
        "c=IN IP4 198.51.100.10",
        "a=ptime:30",
        "m=application 5006 TCP/BFCP *",
    )
    description, negotiated = answer(offer)
    assert bytes(description) == sdp(
        "v=0",
        "o=- 11 12 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=3034423619 3042462419",
        "m=audio 0 RTP/SAVP 0",
        "m=audio 0 RTP/AVP 0",
        "m=audio 0 RTP/AVP 18",
        "m=audio 40000 RTP/AVP 8",
        "a=rtpmap:8 PCMA/8000",
        "a=ptime:20",
        "a=sendrecv",
        "m=application 0 TCP/BFCP *",
    )
    assert (negotiated.remote_address, negotiated.remote_port, negotiated.ptime) == (
        "198.51.100.10",
        5004,
        30,
    )


@pytest.mark.parametrize(
    ("offer", "message"),
    [
        (offer_with("18 9"), "no offered audio codec is supported"),
        (
            offer_with("0", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{'K' * 40}").replace(
                b"RTP/AVP", b"RTP/SAVP"
            ),
            "SDES keys refused: the signalling is not TLS",
        ),
        (
            offer_with("0").replace(b"m=audio 5004", b"m=audio 0"),
            "offer has no active audio stream",
        ),
        (offer_with("0").replace(b"m=audio", b"m=video"), "offer has no active audio stream"),
    ],
)
def test_nothing_in_common_is_488(offer: bytes, message: str) -> None:
    with pytest.raises(NoCommonCodec) as caught:
        answer(offer)
    assert (str(caught.value), caught.value.status, caught.value.reason) == (
        message,
        488,
        "Not Acceptable Here",
    )


def test_supported_list_restricts_the_choice() -> None:
    with pytest.raises(NoCommonCodec):
        answer(offer_with("0"), (PCMA, TELEPHONE_EVENT))
    _, negotiated = answer(offer_with("0 8"), (PCMA,))
    assert negotiated.encoding == "PCMA"


@pytest.mark.parametrize(
    "connection", ["media.example.net", "255.255.255.255", "224.2.1.1", "224.2.1.1/127"]
)
def test_offer_with_a_non_unicast_connection_is_refused(connection: str) -> None:
    """Media is never sent to a name, a multicast group or the broadcast address (T14)."""
    with pytest.raises(OfferAnswerError, match="not a unicast IP address") as caught:
        answer(offer_with("0", connection=connection))
    assert caught.value.status == 488


def test_answer_with_a_multicast_connection_is_refused() -> None:
    with pytest.raises(OfferAnswerError, match="not a unicast IP address"):
        parse_answer(OUR_OFFER, their_answer("m=audio 6000 RTP/AVP 0", connection="239.1.1.1"))


# --------------------------------------------------------------------------- parse_answer

OUR_OFFER = build_offer(
    local_address="203.0.113.5", local_port=40000, session_id=7, session_version=7
)


def their_answer(*media_lines: str, connection: str = "198.51.100.20") -> SessionDescription:
    return SessionDescription.parse(
        sdp(
            "v=0",
            "o=- 9 9 IN IP4 198.51.100.20",
            "s=-",
            f"c=IN IP4 {connection}",
            "t=0 0",
            *media_lines,
        )
    )


def test_parse_answer_accepts_a_phone_answer() -> None:
    negotiated = parse_answer(
        OUR_OFFER,
        their_answer(
            "m=audio 6000 RTP/AVP 8 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:30",
        ),
    )
    assert negotiated == NegotiatedMedia(
        "198.51.100.20", 6000, 8, "PCMA", 8000, 101, "sendrecv", 30
    )


def test_round_trip_of_our_offer_through_negotiate_answer() -> None:
    remote_answer, remote_view = negotiate_answer(
        SessionDescription.parse(bytes(OUR_OFFER)),
        (PCMA, TELEPHONE_EVENT),
        local_address="198.51.100.30",
        local_port=7000,
        session_id=1,
        session_version=1,
    )
    ours = parse_answer(OUR_OFFER, SessionDescription.parse(bytes(remote_answer)))
    assert ours == NegotiatedMedia("198.51.100.30", 7000, 8, "PCMA", 8000, 101, "sendrecv", 20)
    assert (remote_view.remote_address, remote_view.remote_port) == ("203.0.113.5", 40000)


@pytest.mark.parametrize(
    ("offer_direction", "answer_direction", "connection", "ours", "is_hold"),
    [
        ("sendrecv", "recvonly", "198.51.100.20", "sendonly", False),
        ("sendrecv", "sendonly", "198.51.100.20", "recvonly", True),
        ("sendonly", "recvonly", "198.51.100.20", "sendonly", False),
        ("sendonly", "inactive", "198.51.100.20", "inactive", True),
        ("sendrecv", "sendrecv", "0.0.0.0", "recvonly", True),
    ],
)
def test_parse_answer_directions(
    offer_direction: Direction,
    answer_direction: Direction,
    connection: str,
    ours: Direction,
    is_hold: bool,
) -> None:
    offer = build_offer(
        local_address="203.0.113.5",
        local_port=40000,
        session_id=7,
        session_version=8,
        direction=offer_direction,
    )
    negotiated = parse_answer(
        offer,
        their_answer("m=audio 6000 RTP/AVP 0", f"a={answer_direction}", connection=connection),
    )
    assert (negotiated.direction, negotiated.is_hold) == (ours, is_hold)


@pytest.mark.parametrize(
    ("media_lines", "error", "message"),
    [
        (
            ("m=audio 6000 RTP/AVP 0", "m=video 0 RTP/AVP 31"),
            OfferAnswerError,
            "answer has 2 m= lines, the offer had 1",
        ),
        (
            ("m=video 6000 RTP/AVP 0",),
            OfferAnswerError,
            "answer m= line 1 does not match the offer",
        ),
        (
            ("m=audio 6000 RTP/SAVP 0",),
            OfferAnswerError,
            "answer m= line 1 does not match the offer",
        ),
        (("m=audio 0 RTP/AVP 0",), NoCommonCodec, "answer rejected the audio stream"),
        (
            ("m=audio 6000 RTP/AVP 18",),
            NoCommonCodec,
            "answer lists no audio payload type from the offer",
        ),
        (
            ("m=audio 6000 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000"),
            NoCommonCodec,
            "answer lists no audio payload type from the offer",
        ),
        (
            ("m=audio 6000 RTP/AVP 8", "a=rtpmap:8 G729/8000"),
            OfferAnswerError,
            "answer redefines payload type 8",
        ),
    ],
)
def test_parse_answer_refuses_answers_that_break_rfc3264(
    media_lines: tuple[str, ...], error: type[OfferAnswerError], message: str
) -> None:
    with pytest.raises(error) as caught:
        parse_answer(OUR_OFFER, their_answer(*media_lines))
    assert str(caught.value) == message
    assert caught.value.status == 488


def test_parse_answer_refuses_a_direction_the_offer_did_not_allow() -> None:
    offer = build_offer(
        local_address="203.0.113.5",
        local_port=40000,
        session_id=7,
        session_version=8,
        direction="sendonly",
    )
    with pytest.raises(
        OfferAnswerError, match=r"^answer direction sendrecv is not allowed for a sendonly offer$"
    ):
        parse_answer(offer, their_answer("m=audio 6000 RTP/AVP 0", "a=sendrecv"))


def test_parse_answer_needs_an_audio_stream_in_our_offer() -> None:
    offer = SessionDescription(
        origin=Origin("-", 1, 1, "203.0.113.5"),
        connection=Connection("203.0.113.5"),
        media=[MediaDescription("audio", 0, "RTP/AVP", formats=[0])],
    )
    with pytest.raises(OfferAnswerError, match="our offer has no active audio stream"):
        parse_answer(offer, their_answer("m=audio 0 RTP/AVP 0"))


@pytest.mark.parametrize(
    ("text", "packed"),
    [
        ("192.0.2.10", bytes([192, 0, 2, 10])),
        ("0.0.0.0", bytes(4)),
        ("::", bytes(16)),
        ("::1", bytes(15) + b"\x01"),
        ("::ffff:192.0.2.1", bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 1])),
        ("fe80::1%eth0", b"\xfe\x80" + bytes(13) + b"\x01"),
        ("01.2.3.4", None),  # leading zeros are ambiguous: refused, as ipaddress does
        ("1.2.3", None),
        ("256.1.1.1", None),
        ("192.0.2.1 ", None),
        ("atlanta.example.com", None),
        ("", None),
    ],
)
def test_packed_ip_address_agrees_with_ipaddress(text: str, packed: bytes | None) -> None:
    assert packed_ip_address(text) == packed
    try:
        expected: bytes | None = ipaddress.ip_address(text).packed
    except ValueError:
        expected = None
    assert packed == expected
