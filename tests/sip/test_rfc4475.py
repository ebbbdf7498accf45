"""RFC 4475 torture messages against the parser, the stream framer and check_request.

Every file of ../shared/testdata/rfc4475 (see its INDEX.md) has an explicit expectation here: the
datagram outcome (parsed with the listed field values, or SipParseError with a status), the
application-level outcome of check_request, and the stream (TCP) framing outcome.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callwarden.sip.errors import BadExtensionError, SipError, SipParseError
from callwarden.sip.headers import CSeq, NameAddress, Via
from callwarden.sip.message import (
    SipMessage,
    SipRequest,
    SipResponse,
    StreamFramer,
    parse_message,
)
from callwarden.sip.uri import AbsoluteUri, SipUri
from callwarden.sip.validation import check_request
from shared_testdata import RFC4475_DIR

CORPUS = RFC4475_DIR


def load(name: str) -> bytes:
    path = CORPUS / f"{name}.dat"
    if not path.is_file():
        pytest.fail(f"RFC 4475 corpus file missing: {path}")
    return path.read_bytes()


def request(name: str) -> SipRequest:
    message = parse_message(load(name))
    assert isinstance(message, SipRequest)
    return message


def response(name: str) -> SipResponse:
    message = parse_message(load(name))
    assert isinstance(message, SipResponse)
    return message


# --- datagram outcome: messages that must be rejected by the parser -------------------------

REJECTED: dict[str, tuple[int, str]] = {
    # 3.1.2 invalid messages
    "badinv01": (400, "malformed parameter"),
    "clerr": (400, "Content-Length larger than the message"),
    "ncl": (400, "invalid Content-Length"),
    "scalar02": (400, "invalid CSeq number"),
    "scalarlg": (400, "invalid CSeq number"),  # a response: dropped
    "quotbal": (400, "unterminated quoted string"),
    "ltgtruri": (400, "malformed URI '<sip:user@example.com>'"),
    "lwsruri": (400, "malformed Request-Line"),
    "escruri": (400, "Request-URI must not contain headers"),
    "regbadct": (400, "must be enclosed in '<>'"),
    "badaspec": (400, "malformed URI ' sip:t.watson@example.org '"),
    "baddn": (400, "malformed display name 'Bell, Alexander'"),
    "badvers": (505, "unsupported SIP version 'SIP/7.0'"),
    "mismatch01": (400, "CSeq method does not match"),
    "mismatch02": (400, "CSeq method does not match"),
    "bigcode": (400, "invalid status code '4294967301'"),  # a response: dropped
    # 3.3 application-level cases the parser already answers
    "insuf": (400, "missing Call-ID"),
    "multi01": (400, "more than one CSeq"),
    "mcl01": (400, "more than one Content-Length"),
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected_with_status(name: str) -> None:
    status, message = REJECTED[name]
    with pytest.raises(
        SipParseError, match=message.replace("(", r"\(").replace("*", r"\*")
    ) as info:
        parse_message(load(name))
    assert info.value.status == status


def test_rejected_responses_are_never_messages() -> None:
    """3.1.2.5 / 3.1.2.19: the element drops these responses; the parser gives it nothing else."""
    for name in ("scalarlg", "bigcode"):
        assert load(name).startswith(b"SIP/2.0 ")
        with pytest.raises(SipParseError):
            parse_message(load(name))


# --- datagram outcome: messages that parse, with the values they must yield -----------------

ACCEPTED: dict[str, Callable[[], None]] = {}


def accepted(function: Callable[[], None]) -> Callable[[], None]:
    """Register ``expect_<file>`` as the expectation for an accepted corpus file."""
    ACCEPTED[function.__name__.removeprefix("expect_")] = function
    return function


@accepted
def expect_wsinv() -> None:
    message = request("wsinv")
    assert message.method == "INVITE"
    assert message.uri == SipUri(
        "sip", "vivekg", None, "chair-dnrc.example.com", None, (("unknownparam", None),)
    )
    assert message.to == NameAddress(
        None,
        SipUri("sip", "vivekg", None, "chair-dnrc.example.com"),
        (("tag", "1918181833n"),),
    )
    assert message.from_.display_name == 'J Rosenberg \\"'
    assert message.from_.tag == "98asjd8"
    assert message.max_forwards == 68
    assert message.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert message.cseq == CSeq(9, "INVITE")
    assert message.vias == [
        Via("UDP", "192.0.2.2", None, (("branch", "390skdjuw"),)),
        Via("TCP", "spindle.example.com", None, (("branch", "z9hG4bK9ikj8"),)),
        Via("UDP", "192.168.255.111", None, (("branch", "z9hG4bK30239"),)),
    ]
    assert message.headers.get("Subject") == ""
    assert message.headers.get("NewFangledHeader") == (
        "newfangled value continued newfangled value"
    )
    assert message.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert message.headers.get_all("Route") == [
        "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    ]
    assert message.contacts == [
        NameAddress(
            'Quoted string ""',
            SipUri("sip", "jdrosen", None, "example.com"),
            (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33")),
        )
    ]
    assert message.content_type == "application/sdp"
    assert len(message.body) == 150


@accepted
def expect_intmeth() -> None:
    message = request("intmeth")
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert message.cseq == CSeq(139122385, message.method)
    assert isinstance(message.uri, SipUri)
    assert message.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert message.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert message.uri.host == "example.com"
    assert message.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert message.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert message.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert message.from_.tag == "_token~1'+`*%!-."
    assert message.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert message.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert message.max_forwards == 255
    assert message.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


@accepted
def expect_esc01() -> None:
    message = request("esc01")
    assert message.uri == SipUri("sip", "sips:user@example.com", None, "example.net")
    assert str(message.uri) == "sip:sips%3Auser%40example.com@example.net"
    assert message.to.uri == SipUri("sip", "user", None, "example.com")
    assert message.from_.uri == SipUri("sip", "I have spaces", None, "example.net")
    contact_uri = message.contacts[0].uri
    assert isinstance(contact_uri, SipUri)
    assert contact_uri.user == "caller"
    assert contact_uri.params == (("lr", None), ("name", "value%41"))  # not "valueA"
    assert message.content_type == "application/sdp"


@accepted
def expect_escnull() -> None:
    message = request("escnull")
    assert message.method == "REGISTER"
    for address in (message.to, message.from_):
        assert isinstance(address.uri, SipUri)
        assert address.uri.user == "null-\x00-null"
        assert str(address.uri) == "sip:null-%00-null@example.com"
    users = [contact.uri.user for contact in message.contacts if isinstance(contact.uri, SipUri)]
    assert users == ["\x00", "\x00\x00"]
    wire = bytes(message)
    assert b"null-%00-null" in wire
    assert b"\x00" not in wire


@accepted
def expect_esc02() -> None:
    message = request("esc02")
    assert message.method == "RE%47IST%45R"
    assert message.method != "REGISTER"
    assert message.to.display_name == "%Z%45"
    assert [str(contact.uri) for contact in message.contacts] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert message.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


@accepted
def expect_lwsdisp() -> None:
    message = request("lwsdisp")
    assert message.from_ == NameAddress(
        "caller", SipUri("sip", "caller", None, "example.com"), (("tag", "323"),)
    )


@accepted
def expect_longreq() -> None:
    message = request("longreq")
    assert message.to.display_name == ("I have a user name of " + "extreme" * 10 + " proportion")
    assert isinstance(message.to.uri, SipUri)
    assert message.to.uri.port == 6000
    assert len(message.to.uri.params) == 3
    assert len(message.vias) == 34
    assert [via.host for via in message.vias[:33]] == [
        f"sip{number}.example.com" for number in range(33, 0, -1)
    ]
    assert message.vias[33].received == "192.0.2.5"
    assert len(message.call_id) == 141
    assert message.from_.tag is not None
    assert len(message.from_.tag) == 155
    assert len(message.body) == 150


@accepted
def expect_dblreq() -> None:
    data = load("dblreq")
    message = request("dblreq")
    assert message.method == "REGISTER"
    assert message.body == b""
    assert message.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert b"INVITE" in data
    assert b"INVITE" not in bytes(message)  # the trailing octets are neither parsed nor kept


@accepted
def expect_semiuri() -> None:
    message = request("semiuri")
    assert isinstance(message.uri, SipUri)
    assert message.uri.user == "user;par=u@example.net"
    assert message.uri.host == "example.com"
    assert message.uri.params == ()
    assert str(message.uri) == "sip:user;par=u%40example.net@example.com"
    assert message.headers.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


@accepted
def expect_transports() -> None:
    message = request("transports")
    assert [via.transport for via in message.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert message.call_id == "transports.kijh4akdnaqjkwendsasfdj"


@accepted
def expect_mpart01() -> None:
    message = request("mpart01")
    assert message.method == "MESSAGE"
    assert message.content_type == "multipart/mixed"
    assert len(message.body) == 553
    assert b"\x00" in message.body
    assert message.body.endswith(b"--7a9cbec02ceef655--\r\n")


@accepted
def expect_unreason() -> None:
    message = response("unreason")
    assert message.status == 200
    assert message.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


@accepted
def expect_noreason() -> None:
    message = response("noreason")
    assert (message.status, message.reason) == (100, "")
    assert bytes(message).startswith(b"SIP/2.0 100 \r\n")


@accepted
def expect_inv2543() -> None:
    data = load("inv2543")
    message = request("inv2543")
    assert message.top_via == Via("UDP", "iftgw.example.com")
    assert message.top_via.branch is None
    assert message.from_.tag is None
    assert message.max_forwards is None
    assert message.body == data[data.index(b"\r\n\r\n") + 4 :]  # no Content-Length: the rest
    assert len(message.body) == 105


@accepted
def expect_lwsstart() -> None:
    message = request("lwsstart")  # liberal (3.1.2.9): accepted, never re-emitted
    assert bytes(message).startswith(b"INVITE sip:user@example.com SIP/2.0\r\n")


@accepted
def expect_trws() -> None:
    message = request("trws")  # liberal (3.1.2.10): accepted, never re-emitted
    assert bytes(message).startswith(b"OPTIONS sip:remote-target@example.com SIP/2.0\r\n")


@accepted
def expect_baddate() -> None:
    message = request("baddate")  # 3.1.2.12: Date does not matter here, so it is ignored
    assert message.headers.get_all("Date") == ["Fri, 01 Jan 2010 16:00:00 EST"]


@accepted
def expect_badbranch() -> None:
    message = request("badbranch")  # 3.2.1: the transaction layer decides
    assert message.top_via.branch == "z9hG4bK"


@accepted
def expect_unkscm() -> None:
    message = request("unkscm")
    assert message.uri == AbsoluteUri("nobodyknowsthisscheme", "totallyopaquecontent")


@accepted
def expect_novelsc() -> None:
    message = request("novelsc")
    assert message.uri == AbsoluteUri("soap.beep", "//192.0.2.103:3002")


@accepted
def expect_unksm2() -> None:
    message = request("unksm2")
    assert message.to.uri == AbsoluteUri("isbn", "2983792873")
    assert message.from_.uri == AbsoluteUri("http", "//www.example.com")
    assert message.from_.tag == "3234233"
    assert message.contacts == [NameAddress(None, AbsoluteUri("name", "John_Smith"))]
    with pytest.raises(SipParseError, match="not a SIP URI") as info:
        _ = message.to.sip_uri  # what a registrar asks for the address-of-record
    assert info.value.status == 400


@accepted
def expect_bext01() -> None:
    message = request("bext01")
    assert message.headers.get_all("Require") == [
        "nothingSupportsThis",
        "nothingSupportsThisEither",
    ]


@accepted
def expect_invut() -> None:
    message = request("invut")
    assert message.content_type == "application/unknownformat"
    assert len(message.body) == 40


@accepted
def expect_regaut01() -> None:
    message = request("regaut01")
    assert message.headers.get_all("Authorization") == ["NoOneKnowsThisScheme opaque-data=here"]


@accepted
def expect_bcast() -> None:
    message = response("bcast")
    assert message.status == 200
    assert [via.host for via in message.vias] == ["192.0.2.198", "255.255.255.255"]


@accepted
def expect_zeromf() -> None:
    assert request("zeromf").max_forwards == 0


@accepted
def expect_cparam01() -> None:
    (contact,) = request("cparam01").contacts
    assert contact.uri == SipUri("sip", "+19725552222", None, "gw1.example.net")
    assert contact.params == (("unknownparam", None),)  # a contact-param, not a uri-param


@accepted
def expect_cparam02() -> None:
    (contact,) = request("cparam02").contacts
    assert contact.uri == SipUri(
        "sip", "+19725552222", None, "gw1.example.net", None, (("unknownparam", None),)
    )
    assert contact.params == ()


@accepted
def expect_regescrt() -> None:
    message = request("regescrt")
    (contact,) = message.contacts
    assert isinstance(contact.uri, SipUri)
    assert contact.uri.headers == (("Route", "<sip:sip.example.com>"),)
    assert str(contact.uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    assert "Route" not in message.headers  # never applied as a header


@accepted
def expect_sdp01() -> None:
    message = request("sdp01")
    assert message.headers.get_all("Accept") == ["text/nobodyKnowsThis"]
    assert message.content_type == "application/sdp"


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_with_field_values(name: str) -> None:
    ACCEPTED[name]()


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_messages_reserialize_canonically(name: str) -> None:
    message = parse_message(load(name))
    wire = bytes(message)
    assert parse_message(wire) == message
    head = wire[: wire.index(b"\r\n\r\n")]
    assert head.count(b"\n") == head.count(b"\r\n")
    assert b"\r\n " not in head and b"\r\n\t" not in head  # folding is never re-emitted
    start_line = head.split(b"\r\n")[0]
    assert b"  " not in start_line
    assert not start_line.endswith(b" ") or isinstance(message, SipResponse)


def test_every_corpus_file_has_one_expectation() -> None:
    files = {path.stem for path in CORPUS.glob("*.dat")}
    assert len(files) == 49, f"corpus incomplete at {CORPUS}"
    assert set(REJECTED).isdisjoint(ACCEPTED)
    assert files == set(REJECTED) | set(ACCEPTED)


# --- application outcome: check_request on the requests that parse -------------------------

APPLICATION_STATUS: dict[str, int | None] = {
    "unkscm": 416,
    "novelsc": 416,
    "bext01": 420,
    "invut": 415,
    "sdp01": 406,
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_check_request_outcome(name: str) -> None:
    message = parse_message(load(name))
    if isinstance(message, SipResponse):
        assert name not in APPLICATION_STATUS
        return
    expected = APPLICATION_STATUS.get(name)
    if expected is None:
        check_request(message)
        return
    with pytest.raises(SipError) as info:
        check_request(message)
    assert info.value.status == expected


def test_bext01_lists_every_unknown_option_for_unsupported() -> None:
    message = request("bext01")
    with pytest.raises(BadExtensionError) as info:
        check_request(message)
    tags = (
        "nothingSupportsThis",
        "nothingSupportsThisEither",
        "noProxiesSupportThis",
        "norDoAnyProxiesSupportThis",
    )
    assert info.value.unsupported == tags
    assert info.value.headers == tuple(("Unsupported", tag) for tag in tags)
    check_request(message, supported_extensions=frozenset(tag.lower() for tag in tags))


def test_invut_answer_carries_accept() -> None:
    with pytest.raises(SipError) as info:
        check_request(request("invut"))
    assert info.value.headers == (("Accept", "application/sdp"),)


def test_unkscm_is_accepted_when_the_scheme_is_configured() -> None:
    check_request(
        request("unkscm"),
        supported_schemes=frozenset({"sip", "sips", "nobodyknowsthisscheme"}),
    )


# --- stream outcome: each file as the bytes of a TCP connection -----------------------------

STREAM_WAITS = {"clerr", "baddn"}  # Content-Length beyond the data / no end of headers yet
STREAM_FAILS = {
    "ncl": "invalid Content-Length",
    "mcl01": "more than one Content-Length",
    "inv2543": "missing Content-Length",  # RFC 3261 18.3: mandatory on streams
}


@pytest.mark.parametrize("name", sorted((set(REJECTED) | set(ACCEPTED)) - {"dblreq"}))
def test_stream_framing(name: str) -> None:
    data = load(name)
    framer = StreamFramer()
    if name in STREAM_FAILS:
        with pytest.raises(SipParseError, match=STREAM_FAILS[name]):
            framer.feed(data)
        with pytest.raises(SipParseError):
            framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\n")  # the connection stays failed
        return
    if name in STREAM_WAITS:
        assert framer.feed(data) == []
        return
    assert framer.feed(data) == [data]
    outcome: SipMessage | int
    try:
        outcome = parse_message(data)
    except SipParseError as error:
        outcome = error.status
    assert outcome == (REJECTED[name][0] if name in REJECTED else parse_message(data))


@pytest.mark.parametrize("name", ["wsinv", "longreq", "mpart01", "esc01"])
def test_stream_framing_byte_by_byte(name: str) -> None:
    data = load(name)
    framer = StreamFramer()
    frames = [frame for index in range(len(data)) for frame in framer.feed(data[index : index + 1])]
    assert frames == [data]


def test_stream_dblreq_delivers_the_register_then_fails_on_the_noise() -> None:
    data = load("dblreq")
    framer = StreamFramer()
    # On a stream the bytes after the REGISTER are an INVITE with its body, then noise.
    register, invite = framer.feed(data)
    assert parse_message(register) == parse_message(data)
    assert invite.startswith(b"INVITE sip:joe@example.com SIP/2.0\r\n")
    assert framer.error is not None
    assert "missing Content-Length" in str(framer.error)
    with pytest.raises(SipParseError):
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\n")  # the connection stays failed


def test_stream_dblreq_frames_the_register_before_the_noise() -> None:
    data = load("dblreq")
    framer = StreamFramer()
    register_end = data.index(b"\r\n\r\n") + 4
    (frame,) = framer.feed(data[:register_end])
    assert isinstance(parse_message(frame), SipRequest)
    assert parse_message(frame) == parse_message(data)
