"""Recording control through a real node's HTTP API, and recording of direct calls, with
independent phones (pjsua2). The customer plays 440 Hz, the operator 880 Hz.

- A queue call recorded by its queue's policy: the operator, signed in to the API, pauses their
  own call's recording (`PUT /api/v1/calls/{call_id}/recording`), the answer comes once the
  pause is confirmed, and the paused stretch of the sealed recording holds no audio at all;
  resuming from the API records again.
- A direct call, extension to extension (no queue), from a user of a team whose provisioning
  says nothing to an operator of a team whose direct calls are recorded (`recording: all`): the
  sealed recording has the caller's 440 Hz on the `customer` track and the callee's 880 Hz on
  the `operator` track, and nothing of the other. An operator's own call to an extension puts
  the operator (the caller) on `operator` and the callee on `customer`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio import tone_snr_db
from monitoring_api import ApiClient, audit_rows
from node import Node, start_node
from phones import MediaState, Phone, PhoneBook, PhoneCall
from test_recording import RATE, SETTLE_S, _open, _rows

from callwarden.recording.manifest import SignedManifest

PASSWORD = "recording-api-sip-secret"
WEB_PASSWORD = "recording-api-web-password-1"


def _user(name: str, team: str, extension: str) -> str:
    return (
        f"  - {{username: {name}, role: operator, team: {team}, extension: '{extension}',"
        f" sip_password: {PASSWORD}, password: {WEB_PASSWORD}}}\n"
    )


PROVISIONING = (
    "teams: [{name: north, recording: all}, {name: street}]\nusers:\n"
    + _user("cust", "street", "1201")
    + _user("op", "north", "2201")
    + "queues:\n  - {name: line, number: '5201', team: north, members: [op],"
    " wrap_up_seconds: 1, recording: all}\n"
)
ENV = {"CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000", "CALLWARDEN_ACD_AUTO_SIGN_IN": "true"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_node(
        tmp_path_factory.mktemp("recording-api-node"),
        PROVISIONING,
        rtp_ports=(39500, 39999),
        extra_env=ENV,
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _phone(phones: PhoneBook, node: Node, name: str, **options: object) -> Phone:
    phone = phones.create(name, password=PASSWORD, registrar=node.registrar, **options)  # type: ignore[arg-type]
    assert phone.register() == 200
    return phone


def _call(
    phones: PhoneBook, node: Node, tones: dict[int, Path], number: str
) -> tuple[PhoneCall, PhoneCall]:
    """cust (440 Hz) dials `number`; op (880 Hz) answers."""
    operator = _phone(phones, node, "op", answer_code=None)
    operator.play(tones[880])
    customer = _phone(phones, node, "cust")
    customer.play(tones[440])
    call = customer.dial(number)
    ringing = operator.wait_incoming()
    ringing.answer(200)
    call.wait_confirmed()
    ringing.wait_media(MediaState.ACTIVE)
    return call, ringing


def _recording_call_id(node: Node) -> str | None:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        row = db.execute("SELECT call_id FROM recordings WHERE status = 'recording'").fetchone()
    return None if row is None else str(row[0])


def _hang_up(phones: PhoneBook, node: Node, call: PhoneCall, operator: PhoneCall) -> None:
    call.hangup()
    call.wait_disconnected()
    operator.wait_disconnected()
    phones.wait_until(
        lambda: bool(_rows(node)) and _rows(node)[-1][1] != "recording", 10.0, "the closed row"
    )


@pytest.mark.integration
def test_the_operator_pauses_their_call_from_the_api_and_the_pause_is_silent(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    api = ApiClient(node, "op", WEB_PASSWORD).sign_in()
    try:
        call, operator = _call(phones, node, tones, "5201")
        phones.wait_until(lambda: _recording_call_id(node) is not None, 10.0, "the recording")
        call_id = _recording_call_id(node)
        path = f"/api/v1/calls/{call_id}/recording"
        phones.run_for(2.0)
        paused = api.request("PUT", path, {"state": "paused", "reason": "card number"})
        assert paused.status_code == 200, paused.text
        assert paused.json()["state"] == "paused"  # answered once confirmed
        phones.run_for(2.0)
        resumed = api.request("PUT", path, {"state": "recording"})
        assert (resumed.status_code, resumed.json()["state"]) == (200, "recording")
        phones.run_for(1.5)
        _hang_up(phones, node, call, operator)
    finally:
        api.close()
    opened = _open(node, _rows(node)[-1])
    reader = opened.reader
    assert opened.status == "complete", opened.failure
    [pause] = reader.pauses
    assert pause.end is not None and 1.5 < (pause.end - pause.start) / RATE < 3.0
    customer, agent = reader.pcm("customer"), reader.pcm("operator")
    talk = slice(round(SETTLE_S * RATE), pause.start)
    assert tone_snr_db(customer[talk], RATE, 440, [880]) > 30.0
    assert tone_snr_db(agent[talk], RATE, 880, [440]) > 30.0
    assert not customer[pause.start : pause.end].any()  # no audio at all while paused
    assert not agent[pause.start : pause.end].any()
    after = slice(pause.end + round(SETTLE_S * RATE), None)
    assert tone_snr_db(customer[after], RATE, 440, [880]) > 30.0
    assert tone_snr_db(agent[after], RATE, 880, [440]) > 30.0
    [(actor, outcome, object_id, reason)] = audit_rows(node, "recording.pause")
    assert (actor, outcome, object_id, reason) == (
        "op",
        "success",
        reader.recording_id,
        "card number",
    )


@pytest.mark.integration
def test_a_direct_call_is_recorded_by_the_callees_team_policy(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    before = len(_rows(node))
    call, operator = _call(phones, node, tones, "2201")  # op's extension: no queue
    phones.run_for(3.0)
    _hang_up(phones, node, call, operator)
    rows = _rows(node)
    assert len(rows) == before + 1
    opened = _open(node, rows[-1])
    reader = opened.reader
    assert opened.status == "complete", opened.failure
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        queue_id, operator_name = db.execute(
            "SELECT r.queue_id, u.username FROM recordings r JOIN users u"
            " ON u.id = r.operator_id WHERE r.id = ?",
            (reader.recording_id,),
        ).fetchone()
    assert (queue_id, operator_name) == (None, "op")
    caller, callee = reader.pcm("customer"), reader.pcm("operator")
    talk = slice(round(SETTLE_S * RATE), None)
    assert tone_snr_db(caller[talk], RATE, 440, [880]) > 30.0
    assert tone_snr_db(callee[talk], RATE, 880, [440]) > 30.0
    assert tone_snr_db(caller[talk], RATE, 880, [440]) < 10.0
    assert tone_snr_db(callee[talk], RATE, 440, [880]) < 10.0
    manifest = SignedManifest.load(opened.path).fields()
    assert manifest["call"]["queue_id"] is None and manifest["monitoring_sessions"] == []


@pytest.mark.integration
def test_an_operators_own_direct_call_is_recorded_as_theirs(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    """op (north: all) calls cust (street: nothing said): recorded, as op's call, whose key
    presses are the operator's; op (the caller) is on the `operator` track, the far party on
    `customer`, as in every other recording."""
    before = len(_rows(node))
    operator = _phone(phones, node, "op")
    operator.play(tones[880])
    customer = _phone(phones, node, "cust", answer_code=None)
    customer.play(tones[440])
    call = operator.dial("1201")
    ringing = customer.wait_incoming()
    ringing.answer(200)
    call.wait_confirmed()
    ringing.wait_media(MediaState.ACTIVE)
    phones.run_for(2.0)
    _hang_up(phones, node, call, ringing)
    rows = _rows(node)
    assert len(rows) == before + 1
    opened = _open(node, rows[-1])
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        (operator_name,) = db.execute(
            "SELECT u.username FROM recordings r JOIN users u ON u.id = r.operator_id"
            " WHERE r.id = ?",
            (opened.reader.recording_id,),
        ).fetchone()
    assert operator_name == "op" and opened.status == "complete"
    talk = slice(round(SETTLE_S * RATE), None)
    far_party, own = opened.reader.pcm("customer"), opened.reader.pcm("operator")
    assert tone_snr_db(own[talk], RATE, 880, [440]) > 30.0
    assert tone_snr_db(far_party[talk], RATE, 440, [880]) > 30.0
    assert tone_snr_db(own[talk], RATE, 440, [880]) < 10.0
    assert tone_snr_db(far_party[talk], RATE, 880, [440]) < 10.0
