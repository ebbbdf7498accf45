"""Fuzzing the SDES a=crypto parser and SRTP offer/answer (Hypothesis): random and generated
attributes only ever give CryptoError (488) or an attribute that writes back to itself; SRTP
offers with them are answered with a well-formed a=crypto of ours or refused 488, never a crash
and never plain RTP.

Run longer with ``make fuzz`` (the "long" Hypothesis profile of tests/fuzz/conftest.py).
"""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from callwarden.sip.errors import SipError
from callwarden.sip.sdes import CryptoAttribute, CryptoError
from callwarden.sip.sdp import DEFAULT_CODECS, SdpParseError, SessionDescription, negotiate_answer

SUITES = st.sampled_from(
    [
        "AES_CM_128_HMAC_SHA1_80",
        "AEAD_AES_128_GCM",
        "AES_CM_128_HMAC_SHA1_32",
        "AES_256_CM_HMAC_SHA1_80",
        "F8_128_HMAC_SHA1_80",
        "X",
    ]
)


@st.composite
def crypto_values(draw: st.DrawFn) -> str:
    tag = draw(st.one_of(st.integers(0, 10**10), st.text(max_size=4)))
    key = base64.b64encode(draw(st.binary(max_size=64))).decode()
    if draw(st.booleans()):
        key = key.rstrip("=")
    params = [f"inline:{key}"]
    params += draw(
        st.lists(
            st.one_of(
                st.sampled_from(["2^20", "2^99", "1000", "0", "1:4", "junk"]),
                st.text(max_size=6),
            ),
            max_size=3,
        )
    )
    session = draw(
        st.lists(st.sampled_from(["UNENCRYPTED_SRTP", "KDR=1", "FEC_ORDER=x"]), max_size=2)
    )
    return " ".join([str(tag), draw(SUITES), "|".join(params), *session])


def _check(value: str) -> CryptoAttribute | None:
    try:
        attribute = CryptoAttribute.parse(value)
    except CryptoError as error:
        assert error.status == 488
        return None
    assert CryptoAttribute.parse(str(attribute)) == attribute
    return attribute


@given(st.text(max_size=200))
def test_random_text_gives_only_crypto_errors_or_round_trips(value: str) -> None:
    _check(value)


@given(crypto_values())
def test_generated_attributes_give_only_crypto_errors_or_round_trips(value: str) -> None:
    attribute = _check(value)
    if attribute is not None and attribute.supported_suite is not None:
        assert len(attribute.key) == attribute.supported_suite.key_length


@given(st.lists(crypto_values(), max_size=4), st.sampled_from(["RTP/SAVP", "RTP/AVP"]))
def test_srtp_offers_are_answered_with_our_key_or_refused(lines: list[str], proto: str) -> None:
    body = (
        "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
        f"m=audio 4000 {proto} 0\r\n" + "".join(f"a=crypto:{line}\r\n" for line in lines)
    ).encode()
    try:
        offer = SessionDescription.parse(body)
    except SdpParseError:
        return
    try:
        answer, negotiated = negotiate_answer(
            offer,
            DEFAULT_CODECS,
            local_address="203.0.113.5",
            local_port=40000,
            session_id=1,
            session_version=1,
            accept_sdes=True,
            require_srtp=True,
        )
    except SipError as error:
        assert error.status == 488
        return
    media = answer.media[0]
    assert proto == "RTP/SAVP" and media.proto == "RTP/SAVP"
    assert negotiated.srtp is not None and len(media.crypto) == 1
    ours = CryptoAttribute.parse(media.crypto[0])
    assert ours.key == negotiated.srtp.local_key
    assert len(ours.key) == negotiated.srtp.suite.key_length
