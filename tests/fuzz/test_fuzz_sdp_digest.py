"""Fuzzing the SDP and Digest parsers (Hypothesis): random and mutated input only ever gives the
typed errors (SdpParseError, SipParseError, 488 OfferAnswerError) or the typed NotDigest result,
never another exception; whatever parses is written back to something that parses the same.

Run longer with ``make fuzz`` (the "long" Hypothesis profile of tests/fuzz/conftest.py).
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from callwarden.sip.digest import (
    AuthStatus,
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    NonceManager,
    NotDigest,
    answer_challenge,
    compute_ha1,
    parse_challenge,
    parse_credentials,
)
from callwarden.sip.errors import SipParseError
from callwarden.sip.sdp import (
    DEFAULT_CODECS,
    OfferAnswerError,
    SdpParseError,
    SessionDescription,
    build_offer,
    negotiate_answer,
    parse_answer,
)

SEED_SDPS = [
    b"v=0\r\no=alice 2890844526 2890844527 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\n"
    b"t=0 0\r\nm=audio 49170 RTP/AVP 8 0 96 101\r\na=rtpmap:96 opus/48000/2\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    b"m=video 51372 RTP/AVP 31\r\na=rtpmap:31 H261/90000\r\n",
    b"v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nt=0 0\r\na=sendonly\r\n"
    b"m=audio 4000/2 RTP/SAVP 0\r\nc=IN IP6 2001:db8::1\r\nb=AS:64\r\n"
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
    b"m=application 5000 TCP/BFCP *\r\nc=IN IP4 0.0.0.0\r\na=floorctrl:c-s\r\n",
    bytes(
        build_offer(local_address="203.0.113.5", local_port=4000, session_id=1, session_version=1)
    ),
]

# Fragments that steer mutations towards the parser's decisions.
SDP_FRAGMENTS = [
    b"\r\n",
    b"\n",
    b"\r",
    b"\x00",
    b" ",
    b"=",
    b":",
    b"/",
    b"-",
    b"0",
    b"65536",
    b"99999999999",
    b"a=rtpmap:",
    b"a=fmtp:",
    b"a=ptime:",
    b"a=sendonly",
    b"a=inactive",
    b"c=IN IP4 ",
    b"c=IN IP6 ",
    b"m=audio ",
    b"RTP/AVP",
    b"RTP/SAVP",
    b" 127",
    b" 128",
    b"telephone-event/8000",
    b"t=0 0",
    b"o=- 1 1 IN IP4 192.0.2.1",
    b"0.0.0.0",
    b"::",
    b"\xff",
    "é".encode(),
    b"x=",
    b"r=1 2",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], fragments: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "flip"]))
        if operation == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif operation == "insert":
            data[position:position] = draw(st.sampled_from(fragments) | st.binary(max_size=8))
        elif operation == "replace" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif operation == "duplicate":
            data[position:position] = data[max(0, position - 32) : position]
        elif operation == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def sdp_line() -> st.SearchStrategy[str]:
    kinds = st.sampled_from(list("vosiuepcbtrzkamx"))
    words = st.sampled_from(
        [
            "0",
            "1",
            "IN",
            "IP4",
            "IP6",
            "192.0.2.1",
            "audio",
            "RTP/AVP",
            "8000",
            "rtpmap:0",
            "PCMU/8000",
            "fmtp:101",
            "0-15",
            "sendrecv",
            "-",
            "",
            "AS:64",
            "ptime:20",
        ]
    ) | st.text(alphabet=st.characters(codec="utf-8"), max_size=6)
    return st.builds(
        lambda kind, parts: f"{kind}={' '.join(parts)}", kinds, st.lists(words, max_size=6)
    )


def check_sdp(data: bytes) -> None:
    """The oracle: a typed error, or a value that survives writing and negotiation."""
    try:
        description = SessionDescription.parse(data)
    except SdpParseError:
        return
    written = bytes(description)
    assert SessionDescription.parse(written) == description
    assert bytes(SessionDescription.parse(written)) == written
    try:
        answer, negotiated = negotiate_answer(
            description,
            DEFAULT_CODECS,
            local_address="203.0.113.5",
            local_port=40000,
            session_id=1,
            session_version=1,
        )
    except OfferAnswerError as error:
        assert error.status == 488
        return
    assert SessionDescription.parse(bytes(answer)) == answer
    assert len(answer.media) == len(description.media)
    assert 0 < negotiated.remote_port <= 65535


@given(st.binary(max_size=512))
def test_random_bytes_give_only_sdp_parse_errors(data: bytes) -> None:
    check_sdp(data)


@given(mutated(SEED_SDPS, SDP_FRAGMENTS))
@example(SEED_SDPS[0])
@example(SEED_SDPS[1])
def test_mutated_sdp_gives_only_typed_errors(data: bytes) -> None:
    check_sdp(data)


@given(st.lists(sdp_line(), max_size=14), st.sampled_from(["\r\n", "\n"]))
def test_generated_sdp_lines_give_only_typed_errors(lines: list[str], newline: str) -> None:
    header = ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0"]
    check_sdp(newline.join([*header, "m=audio 4000 RTP/AVP 0 8 101", *lines]).encode())


@given(mutated(SEED_SDPS, SDP_FRAGMENTS))
def test_mutated_answers_are_checked_with_typed_errors(data: bytes) -> None:
    offer = SessionDescription.parse(SEED_SDPS[2])
    try:
        answer = SessionDescription.parse(data)
        negotiated = parse_answer(offer, answer)
    except (SdpParseError, OfferAnswerError):
        return
    assert negotiated.payload_type in offer.media[0].formats


# --------------------------------------------------------------------------- Digest

REALM = "pbx.test"
SECRET = b"fuzzing-secret-0123456789abcdef"
NOW = 1_700_000_000.0
PHONE = "192.0.2.10"


def authenticator() -> DigestAuthenticator:
    nonces = NonceManager(SECRET, lambda: NOW, random_bytes=lambda size: bytes(size))
    return DigestAuthenticator(REALM, nonces)


def lookup(username: str, algorithm: str) -> str | None:
    return compute_ha1(username, REALM, "right", algorithm) if username == "alice" else None


DIGEST_FRAGMENTS = [
    b"Digest ",
    b"digest",
    b"Basic ",
    b'"',
    b"\\",
    b",",
    b"=",
    b" ",
    b"\t",
    b"\r\n ",
    b"\x00",
    b"response=",
    b'response="',
    b"nc=",
    b"00000001",
    b"qop=auth",
    b"algorithm=",
    b"MD5",
    b"SHA-256",
    b"-sess",
    b"realm=",
    b'"pbx.test"',
    b"username=",
    b"nonce=",
    b"opaque=",
    "é".encode(),
]
challenges = authenticator().challenge_headers(source=PHONE)
SEED_CREDENTIALS = [
    answer_challenge(challenge, "REGISTER", "sip:pbx.test", "alice", "right", cnonce="abc")
    for challenge in challenges
]
DIGEST_SEEDS = [value.encode() for value in SEED_CREDENTIALS + challenges] + [
    b'Digest realm="a \\"b\\" c", nonce="n", x-unknown="v, w", stale=TRUE',
    b"NoOneKnowsThisScheme opaque-data=here",
]


def check_header(text: str) -> None:
    for parse in (parse_challenge, parse_credentials):
        try:
            value = parse(text)
        except SipParseError as error:
            assert error.status == 400
            continue
        if isinstance(value, NotDigest):
            assert value.scheme.lower() != "digest"
            continue
        assert isinstance(value, DigestChallenge | DigestCredentials)
        assert parse(str(value)) == value  # what we write parses back the same
    result = authenticator().verify(
        "REGISTER", text, lookup, request_uri="sip:pbx.test", source=PHONE
    )
    assert result.status in AuthStatus
    if result.ok:  # only a header carrying alice's real response can authenticate
        credentials = parse_credentials(text)
        assert isinstance(credentials, DigestCredentials)
        assert credentials.username == "alice"
        assert re.sub("[0-9a-f]", "", credentials.response.lower()) == ""


@given(st.text(max_size=300))
@example("Digest")
@example('Digest response="')
@example("NoOneKnowsThisScheme opaque-data=here")
def test_random_digest_headers_give_only_typed_results(text: str) -> None:
    check_header(text)


@given(mutated(DIGEST_SEEDS, DIGEST_FRAGMENTS))
def test_mutated_digest_headers_give_only_typed_results(data: bytes) -> None:
    check_header(data.decode("utf-8", errors="replace"))


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "username",
                "realm",
                "nonce",
                "uri",
                "response",
                "algorithm",
                "cnonce",
                "opaque",
                "qop",
                "nc",
                "stale",
                "domain",
                "userhash",
                "x",
            ]
        ),
        st.text(max_size=20) | st.sampled_from(["alice", REALM, "auth", "00000001", "MD5"]),
    ),
    st.booleans(),
)
def test_generated_digest_parameters_give_only_typed_results(
    params: dict[str, str], quote_all: bool
) -> None:
    def render(value: str) -> str:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"' if quote_all or not value.isalnum() else value

    check_header("Digest " + ", ".join(f"{name}={render(v)}" for name, v in params.items()))
