"""Golden tests for callwarden.sip.headers: Via, name-addr, CSeq (RFC 3261 20, 25.1)."""

from __future__ import annotations

import pytest

from callwarden.sip.errors import SipParseError
from callwarden.sip.headers import CSeq, NameAddress, Via
from callwarden.sip.uri import AbsoluteUri, SipUri


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        (
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport",
            Via("UDP", "192.0.2.1", 5060, (("branch", "z9hG4bK776asdhds"), ("rport", None))),
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport",
        ),
        (
            "sip / 2.0 / tcp  host.example.com : 5061 ; branch = z9hG4bK1 ; received=192.0.2.9",
            Via(
                "TCP", "host.example.com", 5061, (("branch", "z9hG4bK1"), ("received", "192.0.2.9"))
            ),
            "SIP/2.0/TCP host.example.com:5061;branch=z9hG4bK1;received=192.0.2.9",
        ),
        (
            'SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bK2;x="a;b"',
            Via("TLS", "[2001:db8::9]", 5061, (("branch", "z9hG4bK2"), ("x", '"a;b"'))),
            'SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bK2;x="a;b"',
        ),
        ("SIP/2.0/WSS df7jal23ls0d.invalid", Via("WSS", "df7jal23ls0d.invalid"), None),
    ],
)
def test_via_parse(text: str, expected: Via, canonical: str | None) -> None:
    via = Via.parse(text)
    assert via == expected
    assert str(via) == (canonical or text)
    assert Via.parse(str(via)) == via


def test_via_properties() -> None:
    via = Via.parse("SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK-1;rport")
    assert (via.branch, via.received, via.rport, via.has_rport) == ("z9hG4bK-1", None, None, True)
    answered = via.with_params(received="203.0.113.7", rport="40123")
    assert str(answered) == (
        "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK-1;rport=40123;received=203.0.113.7"
    )
    assert (answered.received, answered.rport) == ("203.0.113.7", 40123)
    assert not Via.parse("SIP/2.0/UDP h").has_rport
    assert str(answered.without_params("rport", "received")) == (
        "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK-1"
    )
    with pytest.raises(SipParseError, match="invalid rport 'x'"):
        _ = Via.parse("SIP/2.0/UDP h;rport=x").rport


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "malformed Via ''"),
        ("SIP/2.0/UDP", "malformed Via"),
        ("SIP/3.0/UDP host", "malformed Via"),
        ("SIP/2.0/UDP host;;", "malformed parameter ''"),
        ("SIP/2.0/UDP 192.0.2.15;;,;,,", "malformed parameter"),
        ("SIP/2.0/UDP host:99999", "port out of range"),
        ("SIP/2.0/UDP host:", "malformed port"),
        ("SIP/2.0/UDP ho st", "malformed Via"),
        ("SIP/2.0/UDP host;branch=", "malformed value of parameter 'branch'"),
        ('SIP/2.0/UDP host;x="open', "unterminated quoted string"),
        ("SIP/2.0/UDP host;x=a b", "malformed value of parameter 'x'"),
    ],
)
def test_via_errors(text: str, message: str) -> None:
    with pytest.raises(SipParseError, match=message):
        Via.parse(text)


ALICE = SipUri("sip", "alice", None, "atlanta.com")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<sip:alice@atlanta.com>", NameAddress(None, ALICE)),
        ("sip:alice@atlanta.com", NameAddress(None, ALICE)),
        (
            '"Alice" <sip:alice@atlanta.com>;tag=1928',
            NameAddress("Alice", ALICE, (("tag", "1928"),)),
        ),
        ("Alice Liddell<sip:alice@atlanta.com>", NameAddress("Alice Liddell", ALICE)),
        (
            '  "A \\"B\\" \\\\"   <sip:alice@atlanta.com> ; tag = x ',
            NameAddress('A "B" \\', ALICE, (("tag", "x"),)),
        ),
        (
            "sip:alice@atlanta.com;tag=1;expires=60",
            NameAddress(None, ALICE, (("tag", "1"), ("expires", "60"))),
        ),
        (
            "<sip:alice@atlanta.com;transport=tcp>;q=0.7",
            NameAddress(None, ALICE.with_params(transport="tcp"), (("q", "0.7"),)),
        ),
        ('"" <tel:+123>', NameAddress("", AbsoluteUri("tel", "+123"))),
        ('"Ünïcødé" <sip:alice@atlanta.com>', NameAddress("Ünïcødé", ALICE)),
        (
            '<sip:alice@atlanta.com>;+sip.instance="<urn:uuid:0001>"',
            NameAddress(None, ALICE, (("+sip.instance", '"<urn:uuid:0001>"'),)),
        ),
    ],
)
def test_name_address_parse(text: str, expected: NameAddress) -> None:
    address = NameAddress.parse(text)
    assert address == expected
    assert NameAddress.parse(str(address)) == address


def test_name_address_str_and_tag() -> None:
    address = NameAddress.parse("Bob <sip:bob@biloxi.com>")
    assert str(address) == '"Bob" <sip:bob@biloxi.com>'
    tagged = address.with_tag("a6c85cf")
    assert str(tagged) == '"Bob" <sip:bob@biloxi.com>;tag=a6c85cf'
    assert tagged.tag == "a6c85cf"
    assert tagged.with_tag("b").tag == "b"
    assert str(NameAddress('say "hi"\r\n', ALICE)) == '"say \\"hi\\"  " <sip:alice@atlanta.com>'
    assert str(NameAddress(None, ALICE).with_params(expires="0")) == (
        "<sip:alice@atlanta.com>;expires=0"
    )
    with pytest.raises(ValueError, match="tag is not a token"):
        address.with_tag("a b")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty address"),
        ('"Mr. J. User <sip:j.user@example.com>', "unterminated quoted string"),
        ('"Alice" sip:alice@atlanta.com', "quoted display name not followed by '<'"),
        ("Bell, Alexander <sip:a.g.bell@example.com>", "malformed display name"),
        ("< sip:alice@atlanta.com >", "malformed URI"),
        ("<sip:alice@atlanta.com", "unterminated '<' in address"),
        ("<sip:alice@atlanta.com> x", "unexpected text after address"),
        ("<sip:alice@atlanta.com>;;", "malformed parameter"),
        ("sip:user@example.com?Route=%3Csip:x%3E", "must be enclosed in '<>'"),
        ("sip:a@b, sip:c@d", "must be enclosed in '<>'"),
    ],
)
def test_name_address_errors(text: str, message: str) -> None:
    with pytest.raises(SipParseError, match=message):
        NameAddress.parse(text)


def test_cseq() -> None:
    assert CSeq.parse("4711 INVITE") == CSeq(4711, "INVITE")
    assert CSeq.parse("  0009 \t  ACK ") == CSeq(9, "ACK")
    assert CSeq.parse("4294967295 BYE").number == 2**32 - 1
    assert str(CSeq(1, "REGISTER")) == "1 REGISTER"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("4294967296 INVITE", "CSeq number out of range"),
        ("36893488147419103232 REGISTER", "invalid CSeq number"),
        ("-1 INVITE", "invalid CSeq number"),
        ("INVITE", "malformed CSeq"),
        ("1 INVITE extra", "malformed CSeq"),
        ("1 IN<VITE", "malformed CSeq"),
        ("١ INVITE", "invalid CSeq number"),
    ],
)
def test_cseq_errors(text: str, message: str) -> None:
    with pytest.raises(SipParseError, match=message):
        CSeq.parse(text)
