"""Calls through a SIP trunk: a pjsua2 phone plays the carrier, trusted by its address.

Inbound: the carrier calls one of its inbound numbers and reaches the operator it names,
without authenticating. Outbound: an operator dials a number the trunk carries; the role's
allow-list decides (403 outside it), and the carrier receives the call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio import read_wav, tone_snr_db
from node import Node, start_node
from phones import MediaState, Phone, PhoneBook

SETTLE_S = 0.3


def _provisioning(carrier_port: int) -> str:
    return f"""
roles:
  - {{name: operator, outbound_patterns: ["0[1-9]XXXXXXXX"]}}
teams: [{{name: support}}]
users:
  - {{username: alice, role: operator, team: support, extension: "1001",
     sip_password: alice-sip-secret-1}}
trunks:
  - name: carrier
    host: 127.0.0.1
    port: {carrier_port}
    inbound_numbers: [{{number: "0312345678", destination: "1001"}}]
    outbound_patterns: ["0XXXXXXXXX", "00X."]
"""


@pytest.fixture
def carrier_and_node(phones: PhoneBook, tmp_path: Path) -> Iterator[tuple[Phone, Node]]:
    carrier = phones.create("carrier")
    node = start_node(tmp_path, _provisioning(carrier.sip_port), rtp_ports=(36000, 36099))
    yield carrier, node
    assert node.stop() == 0, node.log()


def _cdr_rows(node: Node) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        return [
            tuple(row)
            for row in db.execute(
                "SELECT direction, caller, callee, disposition FROM cdrs ORDER BY id"
            )
        ]


@pytest.mark.integration
def test_inbound_call_from_the_carrier_reaches_the_operator(
    phones: PhoneBook, carrier_and_node: tuple[Phone, Node], tones: dict[int, Path]
) -> None:
    carrier, node = carrier_and_node
    alice = phones.create("alice", password="alice-sip-secret-1", registrar=node.registrar)
    assert alice.register() == 200
    carrier.play(tones[440])
    alice.play(tones[880])
    call = carrier.call(f"sip:0312345678@{node.registrar}")
    call.wait_confirmed()
    answered = alice.wait_incoming()
    answered.wait_media(MediaState.ACTIVE)
    answered.record(phones.wav("alice"))
    call.record(phones.wav("carrier"))
    phones.run_for(1.5)
    heard_by_alice = read_wav(answered.stop_recording())
    heard_by_carrier = read_wav(call.stop_recording())
    assert tone_snr_db(heard_by_alice.between(SETTLE_S), heard_by_alice.rate, 440, [880]) > 40
    assert tone_snr_db(heard_by_carrier.between(SETTLE_S), heard_by_carrier.rate, 880, [440]) > 40
    call.hangup()
    answered.wait_disconnected()
    phones.wait_until(lambda: len(_cdr_rows(node)) == 1, 5.0, "the CDR")
    # The carrier phone presents "carrier", not a number: recorded as anonymous.
    assert _cdr_rows(node) == [("inbound", "anonymous", "1001", "answered")]


@pytest.mark.integration
def test_carrier_cannot_call_other_numbers(carrier_and_node: tuple[Phone, Node]) -> None:
    carrier, node = carrier_and_node
    for number in ("1001", "0399999999", "0044123456"):  # an extension, not inbound, transit
        call = carrier.call(f"sip:{number}@{node.registrar}")
        call.wait_disconnected()
        assert call.last_status == 404


@pytest.mark.integration
def test_outbound_call_within_the_allow_list_reaches_the_carrier(
    phones: PhoneBook, carrier_and_node: tuple[Phone, Node]
) -> None:
    carrier, node = carrier_and_node
    alice = phones.create("alice", password="alice-sip-secret-1", registrar=node.registrar)
    assert alice.register() == 200
    call = alice.dial("0298765432")
    call.wait_confirmed()
    received = carrier.wait_incoming()
    received.wait_media(MediaState.ACTIVE)
    assert "sip:1001@" in received.remote_uri  # presented as the operator's extension
    received.hangup()
    call.wait_disconnected()
    # International numbers are carried by the trunk, but not allowed for operators.
    refused = alice.dial("0044123456789")
    refused.wait_disconnected()
    assert refused.last_status == 403
    phones.wait_until(lambda: len(_cdr_rows(node)) >= 1, 5.0, "the CDR")
    assert _cdr_rows(node)[0] == ("outbound", "1001", "0298765432", "answered")
