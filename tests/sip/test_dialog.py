"""Dialogs (RFC 3261 12) and the INVITE usage's 2xx/ACK duties (13.2.2.4, 13.3.1.4)."""

from __future__ import annotations

import pytest
from tx_fakes import PEER_SOURCE, UDP_PEER, Stack, outgoing, request

from callwarden.sip.addressing import Destination
from callwarden.sip.dialog import Dialog, DialogState, DialogTable
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.headers import NameAddress
from callwarden.sip.invite_usage import InviteClientUsage, InviteServerUsage
from callwarden.sip.message import SipRequest, SipResponse, make_response, parse_message
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.sip.tx_base import IllegalTransitionError
from callwarden.sip.uri import SipUri

RECORD_ROUTES = "Record-Route: <sip:p1.example.com;lr>\r\nRecord-Route: <sip:p2.example.com;lr>\r\n"
OUR_CONTACT = NameAddress(None, SipUri.parse("sip:b2bua@192.0.2.1:5060"))


def uas_dialog(status: int = 200, extra: str = RECORD_ROUTES) -> tuple[Dialog, SipRequest]:
    invite = request("INVITE", cseq=10, extra=extra)
    response = make_response(invite, status, to_tag="uas1")
    return Dialog.as_uas(invite, response, local_contact=OUR_CONTACT), invite


def uac_response(
    invite: SipRequest, status: int, *, tag: str = "far1", contact: str = "sip:carol@203.0.113.9"
) -> SipResponse:
    response = make_response(invite, status, to_tag=tag)
    response.headers.add("Contact", f"<{contact}>")
    response.headers.add("Record-Route", "<sip:p1.example.net;lr>")
    response.headers.add("Record-Route", "<sip:p2.example.net;lr>")
    return response


def sent_invite(stack: Stack) -> SipRequest:
    return stack.wire.sent[0].request


# -- creation -----------------------------------------------------------------------------------


def test_uas_dialog_from_request_and_response():
    dialog, _ = uas_dialog(180)
    assert dialog.state is DialogState.EARLY
    assert dialog.id == ("a84b4c76e66710@pc33.example.com", "uas1", "1928301774")
    assert [str(route) for route in dialog.route_set] == [
        "<sip:p1.example.com;lr>",
        "<sip:p2.example.com;lr>",
    ]
    assert str(dialog.remote_target) == "sip:alice@198.51.100.7:5062"
    assert (dialog.remote_cseq, dialog.local_cseq) == (10, 0)
    assert str(dialog.local_uri) == "sip:bob@example.com"
    assert str(dialog.remote_party) == '"Alice" <sip:alice@example.com>'
    assert dialog.is_uas
    assert not dialog.secure
    dialog.transition(DialogState.CONFIRMED)
    with pytest.raises(IllegalTransitionError):
        dialog.transition(DialogState.EARLY)


def test_uas_dialog_needs_a_contact_and_tags():
    invite = request("INVITE").headers
    invite.remove("Contact")
    bare = SipRequest("INVITE", SipUri.parse("sip:bob@192.0.2.1"), invite)
    with pytest.raises(SipError, match="missing Contact") as caught:
        Dialog.as_uas(bare, make_response(bare, 200, to_tag="x"), local_contact=OUR_CONTACT)
    assert caught.value.status == 400
    untagged = request("INVITE")
    with pytest.raises(SipError, match="tag"):
        Dialog.as_uas(untagged, make_response(untagged, 200))


def test_uac_dialog_reverses_record_route_and_keeps_local_cseq():
    invite = request("INVITE", cseq=314)
    dialog = Dialog.as_uac(invite, uac_response(invite, 200))
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.id == ("a84b4c76e66710@pc33.example.com", "1928301774", "far1")
    assert [str(route.uri) for route in dialog.route_set] == [
        "sip:p2.example.net;lr",
        "sip:p1.example.net;lr",
    ]
    assert (dialog.local_cseq, dialog.remote_cseq) == (314, None)
    assert str(dialog.remote_target) == "sip:carol@203.0.113.9"


def test_uac_early_dialog_is_confirmed_and_rerouted_by_the_2xx():
    invite = request("INVITE")
    early = make_response(invite, 183, to_tag="far1")
    early.headers.add("Contact", "<sip:carol@10.0.0.1>")
    dialog = Dialog.as_uac(invite, early)
    assert dialog.state is DialogState.EARLY
    assert dialog.route_set == ()
    dialog.on_response(uac_response(invite, 200))
    assert dialog.state is DialogState.CONFIRMED
    assert len(dialog.route_set) == 2
    assert str(dialog.remote_target) == "sip:carol@203.0.113.9"


# -- requests within the dialog -------------------------------------------------------------------


def test_bye_golden_bytes():
    dialog, _ = uas_dialog()
    bye = dialog.create_request("BYE")
    assert bytes(bye) == (
        b"BYE sip:alice@198.51.100.7:5062 SIP/2.0\r\n"
        b"Route: <sip:p1.example.com;lr>\r\n"
        b"Route: <sip:p2.example.com;lr>\r\n"
        b"Max-Forwards: 70\r\n"
        b'From: "Bob" <sip:bob@example.com>;tag=uas1\r\n'
        b'To: "Alice" <sip:alice@example.com>;tag=1928301774\r\n'
        b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
        b"CSeq: 1 BYE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def test_reinvite_increments_cseq_and_carries_contact_and_body():
    dialog, _ = uas_dialog()
    first = dialog.create_request("INVITE", body=b"v=0\r\n")
    second = dialog.create_request("INVITE")
    assert (first.cseq.number, second.cseq.number) == (1, 2)
    assert first.headers.get("Contact") == "<sip:b2bua@192.0.2.1:5060>"
    assert first.headers.get("Content-Type") == "application/sdp"
    assert first.body == b"v=0\r\n"
    assert dialog.invite_cseq == 2
    with pytest.raises(ValueError, match="create_ack"):
        dialog.create_request("ACK")


def test_strict_route_goes_into_the_request_uri():
    extra = "Record-Route: <sip:strict.example.com;method=INVITE>\r\nRecord-Route: <sip:p2;lr>\r\n"
    dialog, _ = uas_dialog(extra=extra)
    bye = dialog.create_request("BYE")
    assert str(bye.uri) == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == [
        "<sip:p2;lr>",
        "<sip:alice@198.51.100.7:5062>",
    ]


def test_ack_for_2xx_uses_the_invite_cseq_and_credentials():
    invite = request("INVITE", cseq=7, extra='Proxy-Authorization: Digest username="a"\r\n')
    dialog = Dialog.as_uac(invite, uac_response(invite, 200))
    ack = dialog.create_ack(invite)
    assert str(ack.cseq) == "7 ACK"
    assert ack.headers.get("Proxy-Authorization") == 'Digest username="a"'
    assert "Via" not in ack.headers
    assert str(ack.uri) == "sip:carol@203.0.113.9"
    assert dialog.local_cseq == 7  # ACK does not consume a sequence number
    assert dialog.create_request("BYE").cseq.number == 8


def test_next_hop_prefers_flow_then_route_then_target():
    dialog, _ = uas_dialog()
    assert dialog.next_hop() == Destination("UDP", "p1.example.com", 5060)
    plain, _ = uas_dialog(extra="")
    assert plain.next_hop("TCP") == Destination("TCP", "198.51.100.7", 5062)
    plain.remote_target = SipUri.parse("sip:alice@198.51.100.7;transport=tcp")
    assert plain.next_hop() == Destination("TCP", "198.51.100.7", 5060)
    plain.flow = Destination("UDP", "203.0.113.50", 40000)
    assert plain.next_hop() == plain.flow


def test_target_refresh_on_reinvite():
    dialog, _ = uas_dialog()
    reinvite = request("INVITE", cseq=11, to_tag="uas1").headers
    reinvite.set("Contact", "<sip:alice@198.51.100.99:6000>")
    dialog.refresh_target(SipRequest("INVITE", SipUri.parse("sip:bob@192.0.2.1"), reinvite))
    assert str(dialog.remote_target) == "sip:alice@198.51.100.99:6000"


# -- matching (RFC 3261 12.2.2) -------------------------------------------------------------------


def test_table_matches_in_dialog_requests_and_orders_cseq():
    table = DialogTable()
    dialog, _ = uas_dialog()
    table.add(dialog)
    assert table.match_request(request("INFO", cseq=11, to_tag="uas1")) is dialog
    assert dialog.remote_cseq == 11
    with pytest.raises(SipError) as lower:
        table.match_request(request("BYE", cseq=10, to_tag="uas1"))
    assert lower.value.status == 500
    assert table.match_request(request("ACK", cseq=10, to_tag="uas1")) is dialog
    with pytest.raises(SipError) as unknown:
        table.match_request(request("BYE", cseq=12, to_tag="other"))
    assert unknown.value.status == 481
    dialog.terminate()
    with pytest.raises(SipError) as ended:
        table.match_request(request("BYE", cseq=12, to_tag="uas1"))
    assert ended.value.status == 481
    table.remove(dialog)
    assert len(table) == 0


def test_table_finds_dialog_of_a_response():
    table = DialogTable()
    invite = request("INVITE")
    response = uac_response(invite, 200)
    dialog = Dialog.as_uac(invite, response)
    table.add(dialog)
    assert table.find_for_response(response) is dialog
    assert dialog in table
    with pytest.raises(ValueError, match="already exists"):
        table.add(dialog)


# -- InviteServerUsage (RFC 3261 13.3.1.4) --------------------------------------------------------


def answered_call(stack: Stack) -> tuple[InviteServerUsage, list[Dialog]]:
    stack.receive(request("INVITE"))
    invite, tx = stack.user.requests[0]
    assert isinstance(tx, InviteServerTransaction)
    ok = make_response(invite, 200, to_tag="uas1")
    ok.headers.add("Contact", "<sip:b2bua@192.0.2.1>")
    dialog = Dialog.as_uas(invite, ok, local_contact=OUR_CONTACT)
    timeouts: list[Dialog] = []
    usage = InviteServerUsage(stack.layer, tx, dialog, on_ack_timeout=timeouts.append)
    usage.answer(ok)
    return usage, timeouts


def test_2xx_is_retransmitted_until_64_t1_then_bye():
    stack = Stack()
    usage, timeouts = answered_call(stack)
    stack.clock.advance(31.999)
    assert stack.wire.times("SIP/2.0 200") == [
        0,
        0.5,
        1.5,
        3.5,
        7.5,
        11.5,
        15.5,
        19.5,
        23.5,
        27.5,
        31.5,
    ]
    assert timeouts == []
    stack.clock.advance(0.001)
    assert timeouts == [usage.dialog]
    assert usage.dialog.state is DialogState.TERMINATED
    bye = stack.wire.sent[-1]
    assert bye.request.method == "BYE"
    assert bye.destination == Destination("UDP", "198.51.100.7", 5062)
    assert str(bye.request.to) == '"Alice" <sip:alice@example.com>;tag=1928301774'


def test_ack_stops_2xx_retransmission():
    stack = Stack()
    usage, timeouts = answered_call(stack)
    stack.clock.advance(2)
    ack = request("ACK", branch="z9hG4bKack2xx", to_tag="uas1")
    stack.receive(ack)
    ((received, _),) = stack.user.acks
    assert not usage.receive_ack(request("ACK", cseq=2, to_tag="uas1"))
    assert usage.receive_ack(received)
    stack.clock.advance(60)
    assert stack.wire.times("SIP/2.0 200") == [0, 0.5, 1.5]
    assert timeouts == []
    assert usage.dialog.state is DialogState.CONFIRMED


# -- InviteClientUsage (RFC 3261 13.2.2.4) --------------------------------------------------------


def test_client_usage_acknowledges_every_2xx_and_reports_once():
    stack = Stack()
    table = DialogTable()
    events: list[tuple[int, Dialog | None]] = []
    usage = InviteClientUsage(
        stack.layer,
        outgoing("INVITE"),
        UDP_PEER,
        lambda response, dialog: events.append((response.status, dialog)),
        dialogs=table,
        local_contact=OUR_CONTACT,
    )
    usage.start()
    invite = sent_invite(stack)
    stack.layer.on_message(uac_response(invite, 180), PEER_SOURCE)
    stack.layer.on_message(uac_response(invite, 200), PEER_SOURCE)
    stack.layer.on_message(uac_response(invite, 200), PEER_SOURCE)  # retransmitted 2xx
    assert [status for status, _ in events] == [180, 200]
    early, confirmed = events[0][1], events[1][1]
    assert early is confirmed is not None
    assert confirmed.state is DialogState.CONFIRMED
    acks = [sent for sent in stack.wire.sent if sent.data.startswith(b"ACK")]
    assert len(acks) == 2
    assert acks[0].data == acks[1].data  # the same ACK, same branch
    ack = acks[0].request
    assert str(ack.cseq) == "1 ACK"
    assert ack.top_via.branch != invite.top_via.branch
    assert str(ack.uri) == "sip:carol@203.0.113.9"
    assert ack.headers.get_all("Route") == ["<sip:p2.example.net;lr>", "<sip:p1.example.net;lr>"]
    assert acks[0].destination == Destination("UDP", "p2.example.net", 5060)
    assert len(table) == 1


def test_client_usage_forked_2xx_creates_a_second_dialog():
    stack = Stack()
    events: list[tuple[int, Dialog | None]] = []
    usage = InviteClientUsage(
        stack.layer, outgoing("INVITE"), UDP_PEER, lambda r, d: events.append((r.status, d))
    )
    usage.start()
    invite = sent_invite(stack)
    stack.layer.on_message(uac_response(invite, 200, tag="a"), PEER_SOURCE)
    stack.layer.on_message(uac_response(invite, 200, tag="b"), PEER_SOURCE)
    assert sorted(usage.dialogs) == ["a", "b"]
    assert len([s for s in stack.wire.sent if s.data.startswith(b"ACK")]) == 2
    assert [status for status, _ in events] == [200, 200]


def test_client_usage_with_a_malformed_contact_reports_1xx_without_dialog_and_drops_2xx():
    """A response's Contact is parsed when a dialog needs it: the parser lets the response
    through, the usage then finds it unusable for a dialog."""
    stack = Stack()
    events: list[tuple[int, Dialog | None]] = []
    usage = InviteClientUsage(
        stack.layer, outgoing("INVITE"), UDP_PEER, lambda r, d: events.append((r.status, d))
    )
    usage.start()
    invite = sent_invite(stack)
    for status in (180, 200):
        wire = bytes(uac_response(invite, status, contact="sip:carol@[bad")).decode()
        response = parse_message(wire.encode())
        with pytest.raises(SipParseError):
            _ = response.contacts
        stack.layer.on_message(parse_message(wire.encode()), PEER_SOURCE)
    assert events == [(180, None)]
    assert usage.dialogs == {}
    assert not [sent for sent in stack.wire.sent if sent.data.startswith(b"ACK")]


def test_client_usage_failure_ends_early_dialogs():
    stack = Stack()
    events: list[tuple[int, Dialog | None]] = []
    usage = InviteClientUsage(
        stack.layer, outgoing("INVITE"), UDP_PEER, lambda r, d: events.append((r.status, d))
    )
    usage.start()
    invite = sent_invite(stack)
    stack.layer.on_message(uac_response(invite, 183), PEER_SOURCE)
    stack.layer.on_message(uac_response(invite, 486), PEER_SOURCE)
    assert [status for status, _ in events] == [183, 486]
    assert usage.dialogs["far1"].state is DialogState.TERMINATED
    # the non-2xx ACK came from the transaction, with the INVITE's branch
    ack = stack.wire.sent[-1].request
    assert ack.method == "ACK"
    assert ack.top_via.branch == invite.top_via.branch


def test_reinvite_through_the_usage_refreshes_target_and_acks_with_its_cseq():
    stack = Stack()
    invite = request("INVITE", cseq=1)
    dialog = Dialog.as_uac(invite, uac_response(invite, 200), local_contact=OUR_CONTACT)
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n")
    events: list[int] = []
    usage = InviteClientUsage(
        stack.layer,
        reinvite,
        dialog.next_hop(),
        lambda r, d: events.append(r.status),
        dialog=dialog,
    )
    usage.start()
    sent = sent_invite(stack)
    assert str(sent.cseq) == "2 INVITE"
    stack.layer.on_message(
        uac_response(sent, 200, contact="sip:carol@203.0.113.77:5070"), PEER_SOURCE
    )
    assert str(dialog.remote_target) == "sip:carol@203.0.113.77:5070"
    ack = stack.wire.sent[-1].request
    assert str(ack.cseq) == "2 ACK"
    assert events == [200]
