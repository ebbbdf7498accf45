"""Agent feature codes from real phones (pjsua2) against a running node: an operator signs in
with *51 (confirmation tone, then the node hangs up), is offered a queue call, takes a break
with *53 + digit (not offered while on break), comes back with *54 (offered the waiting
call), signs out with *52; bad codes and non-members are refused; every change is audited."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio import read_wav, tone_snr_db
from node import Node, start_node
from phones import CallState, Phone, PhoneBook, PhoneCall

PASSWORD = "agent-code-sip-secret"
CONFIRM_HZ = 880.0  # telephony.agent_codes.CONFIRM_TONE_HZ

PROVISIONING = f"""\
teams: [{{name: support}}]
users:
  - {{username: ann, role: operator, team: support, extension: '2001', sip_password: {PASSWORD}}}
  - {{username: cal, role: operator, team: support, extension: '1001', sip_password: {PASSWORD}}}
queues:
  - {{name: sales, number: "5001", team: support, members: [ann], wrap_up_seconds: 0}}
break_reasons: [lunch, training]
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_node(
        tmp_path_factory.mktemp("agent-codes-node"),
        PROVISIONING,
        rtp_ports=(36000, 36499),
        extra_env={"CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000"},
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _phone(phones: PhoneBook, node: Node, name: str, **options: object) -> Phone:
    phone = phones.create(name, password=PASSWORD, registrar=node.registrar, **options)  # type: ignore[arg-type]
    assert phone.register() == 200
    return phone


def _code(phones: PhoneBook, phone: Phone, code: str) -> PhoneCall:
    """Dial `code`; the node answers with the confirmation tone and hangs up itself."""
    call = phone.dial(code)
    call.wait_confirmed()
    call.record(phones.wav(f"code{code}"))
    phones.run_for(0.5)
    heard = read_wav(call.stop_recording())
    assert tone_snr_db(heard.samples, heard.rate, CONFIRM_HZ, [440.0]) > 20.0
    call.wait_disconnected(timeout=5.0)  # BYE from the node, not from us
    return call


def _refused(phone: Phone, code: str) -> int:
    call = phone.dial(code)
    call.wait_disconnected(timeout=5.0)
    assert call.state is CallState.DISCONNECTED
    return call.last_status


def _audit(node: Node) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        rows = db.execute(
            "SELECT actor_name, outcome, source_address FROM audit_log"
            " WHERE action = 'agent.state.change' ORDER BY sequence"
        ).fetchall()
    return [tuple(row) for row in rows]


@pytest.mark.integration
def test_an_operator_drives_their_state_from_the_phone(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    ann = _phone(phones, node, "ann", answer_code=None)
    cal = _phone(phones, node, "cal")
    _code(phones, ann, "*51")
    waiting = cal.dial("5001")
    waiting.wait_confirmed()
    offered = ann.wait_incoming()  # signed in: offered the queue call
    waiting.hangup()
    offered.wait_disconnected()
    _code(phones, ann, "*532")  # break, reason 2 (training)
    waiting = cal.dial("5001")
    waiting.wait_confirmed()
    phones.run_for(2.0)
    assert len(ann.incoming) == 1  # on break: not offered
    _code(phones, ann, "*54")  # available again: the waiting call comes
    ann.wait_incoming(2, timeout=5.0)
    waiting.hangup()
    waiting.wait_disconnected()
    _code(phones, ann, "*52")
    assert _refused(ann, "*539") == 404  # no 9th break reason
    assert _refused(cal, "*51") == 404  # not a queue member
    phones.wait_until(lambda: len(_audit(node)) >= 4, 5.0, "the audit entries")
    assert _audit(node) == [("ann", "success", "127.0.0.1")] * 4
