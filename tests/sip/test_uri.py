"""Golden tests for callwarden.sip.uri (RFC 3261 19.1, 25.1)."""

from __future__ import annotations

import pytest

from callwarden.sip.errors import SipParseError
from callwarden.sip.uri import AbsoluteUri, SipUri, parse_uri


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip:example.com", SipUri("sip", None, None, "example.com")),
        ("SIP:Alice@Example.com:5060", SipUri("sip", "Alice", None, "Example.com", 5060)),
        ("sips:bob:secret@192.0.2.4", SipUri("sips", "bob", "secret", "192.0.2.4")),
        ("sip:[2001:db8::10]:5070", SipUri("sip", None, None, "[2001:db8::10]", 5070)),
        (
            "sip:+1-212-555-1212;isub=1@gw.example.net;user=phone;lr",
            SipUri(
                "sip",
                "+1-212-555-1212;isub=1",
                None,
                "gw.example.net",
                None,
                (("user", "phone"), ("lr", None)),
            ),
        ),
        (
            "sip:carol@chicago.com?Subject=next%20meeting&Priority=urgent",
            SipUri(
                "sip",
                "carol",
                None,
                "chicago.com",
                None,
                (),
                (("Subject", "next meeting"), ("Priority", "urgent")),
            ),
        ),
        (
            "sip:%61lice@atlanta.com;transport=TCP;maddr=%31%39%32.0.2.1",
            SipUri(
                "sip",
                "alice",
                None,
                "atlanta.com",
                None,
                (("transport", "TCP"), ("maddr", "192.0.2.1")),
            ),
        ),
    ],
)
def test_parse(text: str, expected: SipUri) -> None:
    assert SipUri.parse(text) == expected
    assert parse_uri(text) == expected


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("sip:alice@atlanta.com", "sip:alice@atlanta.com"),
        ("SIP:alice@atlanta.com;LR", "sip:alice@atlanta.com;LR"),
        ("sip:%61lice@atlanta.com", "sip:alice@atlanta.com"),
        ("sip:user;par=u%40example.net@example.com", "sip:user;par=u%40example.net@example.com"),
        ("sip:a%20b:p%3aw@h:1;n%3d=v%25", "sip:a%20b:p%3Aw@h:1;n%3D=v%25"),
        ("sip:u@h?Route=%3Csip:x%3E&X=", "sip:u@h?Route=%3Csip:x%3E&X="),
        ("sip:%E2%82%AC@h", "sip:%E2%82%AC@h"),
        ("sip:%FF@h", "sip:%FF@h"),
    ],
)
def test_str_is_canonical_and_round_trips(text: str, canonical: str) -> None:
    uri = SipUri.parse(text)
    assert str(uri) == canonical
    assert SipUri.parse(str(uri)) == uri


def test_escaped_and_unescaped_forms_are_equal() -> None:
    """RFC 3261 19.1.4: escaping does not change a URI; unescaping is never recursive."""
    assert SipUri.parse("sip:%61lice@atlanta.com") == SipUri.parse("sip:alice@atlanta.com")
    assert SipUri.parse("sip:a@h;n=v%2541").param("n") == "v%41"
    assert SipUri.parse("sip:%E2%82%AC@h").user == "€"


def test_params() -> None:
    uri = SipUri.parse("sip:proxy.example.com;lr;Transport=tcp")
    assert uri.has_param("lr")
    assert uri.param("lr") is None
    assert uri.param("transport") == "tcp"
    assert not uri.has_param("maddr")
    changed = uri.with_params(transport="udp", maddr="192.0.2.1")
    assert str(changed) == "sip:proxy.example.com;lr;Transport=udp;maddr=192.0.2.1"
    assert str(changed.without_params("LR", "maddr")) == "sip:proxy.example.com;Transport=udp"
    assert str(uri.with_params(ob=None)) == "sip:proxy.example.com;lr;Transport=tcp;ob"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sip:", "malformed host ''"),
        ("sip:@example.com", "malformed user part"),
        ("sip:a@b@c", "unescaped '@' in SIP URI"),
        ("sip:a b@c", "malformed user part"),
        ("sip:alice@host:", "malformed port ''"),
        ("sip:alice@host:65536", "port out of range: 65536"),
        ("sip:alice@host:12a", "malformed port '12a'"),
        ("sip:alice@[::1", "malformed IPv6 reference"),
        ("sip:alice@[::1]x", "malformed host"),
        ("sip:alice@ho st", "malformed host"),
        ("sip:alice@host;;lr", "malformed URI parameter ''"),
        ("sip:alice@host;a=", "malformed URI parameter 'a='"),
        ("sip:alice@host;a=<", "malformed URI parameter"),
        ("sip:al%4ice@host", "malformed %-escape in URI user part"),
        ("sip:alice@host?x", "malformed URI header 'x'"),
        ("sip:alice@host?a=b&&c=d", "malformed URI header ''"),
        ("http://example.com", "not a SIP URI"),
        ("<sip:alice@host>", "not a SIP URI"),
    ],
)
def test_sip_uri_errors(text: str, message: str) -> None:
    with pytest.raises(SipParseError, match=message.replace("[", r"\[")) as info:
        SipUri.parse(text)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tel:+1-201-555-0123", AbsoluteUri("tel", "+1-201-555-0123")),
        ("URN:uuid:f81d4fae", AbsoluteUri("urn", "uuid:f81d4fae")),
        ("soap.beep://192.0.2.103:3002", AbsoluteUri("soap.beep", "//192.0.2.103:3002")),
        ("sipx:foo", AbsoluteUri("sipx", "foo")),
    ],
)
def test_absolute_uri(text: str, expected: AbsoluteUri) -> None:
    assert parse_uri(text) == expected
    assert str(expected) == f"{expected.scheme}:{expected.opaque}"


@pytest.mark.parametrize(
    "text",
    ["", "nocolon", ":opaque", "1tel:123", "tel:", "tel:a b", "tel:<x>", 'tel:"x"', "tel:%zz"],
)
def test_absolute_uri_errors(text: str) -> None:
    with pytest.raises(SipParseError, match="malformed"):
        parse_uri(text)
