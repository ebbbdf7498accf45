"""SDES (RFC 4568) a=crypto parsing, and SRTP offer/answer in sip.sdp (T16).

The bad inputs follow pjsip's ``scripts-sendto`` SRTP negatives: duplicated tag, tag 0 or not
a number, key too short or too long, unknown suite, no key, RTP/SAVP over plain signalling.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest

from callwarden.sip.sdes import (
    CryptoAttribute,
    CryptoError,
    CryptoSuite,
    choose_crypto,
    new_crypto,
    parse_offered,
)
from callwarden.sip.sdp import (
    DEFAULT_CODECS,
    NegotiatedMedia,
    NoCommonCodec,
    OfferAnswerError,
    SdesKeys,
    SessionDescription,
    build_offer,
    negotiate_answer,
    offer_crypto,
    parse_answer,
)

KEY30 = base64.b64encode(bytes(range(30))).decode()
KEY28 = base64.b64encode(bytes(range(28))).decode()


def sdp(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


def savp_offer(*crypto: str, proto: str = "RTP/SAVP") -> bytes:
    return sdp(
        "v=0",
        "o=- 5 5 IN IP4 198.51.100.9",
        "s=-",
        "c=IN IP4 198.51.100.9",
        "t=0 0",
        f"m=audio 5004 {proto} 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        *(f"a=crypto:{value}" for value in crypto),
    )


def answer(
    body: bytes,
    *,
    tls: bool = True,
    require_srtp: bool = False,
    current: SdesKeys | None = None,
    random_bytes: Callable[[int], bytes] = lambda n: b"\x07" * n,
) -> tuple[bytes, NegotiatedMedia]:
    description, negotiated = negotiate_answer(
        SessionDescription.parse(body),
        DEFAULT_CODECS,
        local_address="203.0.113.5",
        local_port=40000,
        session_id=11,
        session_version=12,
        accept_sdes=tls,
        require_srtp=require_srtp,
        random_bytes=random_bytes,
        current=current,
    )
    return bytes(description), negotiated


def test_an_attribute_round_trips_and_never_shows_its_key() -> None:
    text = f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^20"
    attribute = CryptoAttribute.parse(text)
    assert (attribute.tag, attribute.suite, attribute.key, attribute.lifetime) == (
        1,
        "AES_CM_128_HMAC_SHA1_80",
        bytes(range(30)),
        "2^20",
    )
    assert str(attribute) == text
    assert attribute.supported_suite is CryptoSuite.AES_CM_128_HMAC_SHA1_80
    assert "key=" not in repr(attribute) and repr(attribute.key) not in repr(attribute)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "a=crypto needs a tag, a suite and key parameters: ''"),
        ("1 AES_CM_128_HMAC_SHA1_80", "a=crypto needs a tag, a suite and key parameters"),
        (f"0 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}", "a=crypto tag 0 is not allowed"),
        (f"x AES_CM_128_HMAC_SHA1_80 inline:{KEY30}", "a=crypto tag is not a number"),
        (f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}", "a=crypto tag is not a number"),
        (f"-1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}", "a=crypto tag is not a number"),
        (f"1 AES-CM! inline:{KEY30}", "a=crypto suite is not a suite name"),
        (f"1 AES_CM_128_HMAC_SHA1_80 uri:{KEY30}", "a=crypto key method must be inline"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:", "a=crypto key method must be inline"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", "a=crypto key is not base64"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:QQ=", "a=crypto key is not valid base64"),
        (
            f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY28}",
            "a=crypto AES_CM_128_HMAC_SHA1_80 key is 28 bytes, it must be 30",
        ),
        (
            f"1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(bytes(46)).decode()}",
            "a=crypto AES_CM_128_HMAC_SHA1_80 key is 46 bytes, it must be 30",
        ),
        (
            f"1 AEAD_AES_128_GCM inline:{KEY30}",
            "a=crypto AEAD_AES_128_GCM key is 30 bytes, it must be 28",
        ),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^99", "key lifetime out of range"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|0", "key lifetime out of range"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|junk", "key parameter not understood"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|1:4|2:4", "key parameter not understood"),
    ],
)
def test_malformed_attributes_are_488_with_the_reason(value: str, message: str) -> None:
    with pytest.raises(CryptoError) as caught:
        CryptoAttribute.parse(value)
    assert message in str(caught.value)
    assert caught.value.status == 488


def test_duplicated_tags_are_refused() -> None:
    line = f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}"
    with pytest.raises(CryptoError, match="a=crypto tags repeat within the m= line"):
        parse_offered([line, f"1 AEAD_AES_128_GCM inline:{KEY28}"])


def test_the_first_supported_attribute_is_chosen_and_unsupported_ones_are_passed_over() -> None:
    offered = parse_offered(
        [
            f"1 AES_256_CM_HMAC_SHA1_80 inline:{base64.b64encode(bytes(46)).decode()}",
            f"2 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|1:4",  # an MKI: not supported
            f"3 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} UNENCRYPTED_SRTP",  # session parameter
            f"4 AEAD_AES_128_GCM inline:{KEY28}",
            f"5 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}",
        ]
    )
    chosen = choose_crypto(offered)
    assert chosen is not None and chosen.tag == 4
    assert choose_crypto(offered[:3]) is None


def test_new_keys_are_fresh_and_of_the_suites_length() -> None:
    first = new_crypto(1, CryptoSuite.AES_CM_128_HMAC_SHA1_80)
    second = new_crypto(1, CryptoSuite.AES_CM_128_HMAC_SHA1_80)
    gcm = new_crypto(2, CryptoSuite.AEAD_AES_128_GCM)
    assert (len(first.key), len(gcm.key)) == (30, 28)
    assert first.key != second.key
    assert CryptoAttribute.parse(str(gcm)) == gcm


def test_a_savp_offer_over_tls_is_answered_with_our_own_key_under_its_tag() -> None:
    body, negotiated = answer(
        savp_offer(
            f"1 AES_256_CM_HMAC_SHA1_80 inline:{base64.b64encode(bytes(46)).decode()}",
            f"2 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}",
        )
    )
    ours = base64.b64encode(b"\x07" * 30).decode()
    assert body == sdp(
        "v=0",
        "o=- 11 12 IN IP4 203.0.113.5",
        "s=-",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 40000 RTP/SAVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        f"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{ours}",
        "a=sendrecv",
    )
    srtp = negotiated.srtp
    assert srtp is not None
    assert (srtp.suite, srtp.local_key, srtp.remote_key) == (
        CryptoSuite.AES_CM_128_HMAC_SHA1_80,
        b"\x07" * 30,
        bytes(range(30)),
    )


@pytest.mark.parametrize(
    ("body", "tls", "require", "message"),
    [
        (
            savp_offer(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}"),
            False,
            False,
            "SDES keys refused: the signalling is not TLS",
        ),
        (
            savp_offer(f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY30}"),
            True,
            False,
            "no offered SRTP crypto suite is supported",
        ),
        (savp_offer(), True, False, "no offered SRTP crypto suite is supported"),
        (
            savp_offer(proto="RTP/AVP"),
            True,
            True,
            "SRTP required: the offer has no RTP/SAVP audio stream",
        ),
    ],
)
def test_srtp_offers_we_cannot_take_are_488_never_plain_rtp(
    body: bytes, tls: bool, require: bool, message: str
) -> None:
    with pytest.raises(NoCommonCodec) as caught:
        answer(body, tls=tls, require_srtp=require)
    assert (str(caught.value), caught.value.status) == (message, 488)


@pytest.mark.parametrize(
    "crypto",
    [
        ("0 AES_CM_128_HMAC_SHA1_80 inline:" + KEY30,),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + KEY28,),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + KEY30, "1 AEAD_AES_128_GCM inline:" + KEY28),
    ],
)
def test_a_malformed_crypto_offer_is_488(crypto: tuple[str, ...]) -> None:
    with pytest.raises(CryptoError) as caught:
        answer(savp_offer(*crypto))
    assert caught.value.status == 488


def test_our_srtp_offer_and_the_answer_give_both_keys() -> None:
    crypto = offer_crypto()
    offer = build_offer(
        local_address="203.0.113.5",
        local_port=40000,
        session_id=1,
        session_version=1,
        crypto=crypto,
    )
    media = offer.media[0]
    assert media.proto == "RTP/SAVP"
    assert [CryptoAttribute.parse(line).suite for line in media.crypto] == [
        "AES_CM_128_HMAC_SHA1_80",
        "AEAD_AES_128_GCM",
    ]
    body, _ = answer(bytes(offer).replace(b"203.0.113.5", b"198.51.100.9"))
    negotiated = parse_answer(offer, SessionDescription.parse(body))
    assert negotiated.srtp is not None
    assert negotiated.srtp.local_key == crypto[0].key
    assert negotiated.srtp.remote_key == b"\x07" * 30


@pytest.mark.parametrize(
    ("crypto_lines", "message"),
    [
        ((), "answer to an SRTP offer has 0 a=crypto lines"),
        (
            (f"9 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}",),
            "answer a=crypto does not match a tag and suite of the offer",
        ),
        (
            (f"1 AEAD_AES_128_GCM inline:{KEY28}",),
            "answer a=crypto does not match a tag and suite of the offer",
        ),
        (
            (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}", f"2 AEAD_AES_128_GCM inline:{KEY28}"),
            "answer to an SRTP offer has 2 a=crypto lines",
        ),
    ],
)
def test_answers_to_our_srtp_offer_that_break_rfc4568_are_refused(
    crypto_lines: tuple[str, ...], message: str
) -> None:
    offer = build_offer(
        local_address="203.0.113.5",
        local_port=40000,
        session_id=1,
        session_version=1,
        crypto=offer_crypto(),
    )
    body = sdp(
        "v=0",
        "o=- 5 5 IN IP4 198.51.100.9",
        "s=-",
        "c=IN IP4 198.51.100.9",
        "t=0 0",
        "m=audio 5004 RTP/SAVP 0",
        *(f"a=crypto:{line}" for line in crypto_lines),
    )
    with pytest.raises(OfferAnswerError) as caught:
        parse_answer(offer, SessionDescription.parse(body))
    assert (str(caught.value), caught.value.status) == (message, 488)


def test_a_reoffer_keeps_our_key_for_the_same_suite_and_rekeys_for_another() -> None:
    first_offer = savp_offer(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}")
    _, first = answer(first_offer, random_bytes=os.urandom)
    assert first.srtp is not None
    _, again = answer(first_offer, random_bytes=os.urandom, current=first.srtp)
    assert again.srtp == first.srtp
    body, rekeyed = answer(
        savp_offer(f"3 AEAD_AES_128_GCM inline:{KEY28}"),
        random_bytes=os.urandom,
        current=first.srtp,
    )
    assert rekeyed.srtp is not None and rekeyed.srtp.suite is CryptoSuite.AEAD_AES_128_GCM
    assert len(rekeyed.srtp.local_key) == 28
    assert b"a=crypto:3 AEAD_AES_128_GCM inline:" in body
