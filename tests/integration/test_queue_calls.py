"""Calls to queues through a real node, with independent phones (pjsua2): the caller is answered
and hears the hold melody (FFT), is offered to the longest-idle operator, and caller and
operator hear each other; with two operators and three callers the third waits for the first
operator freed after wrap-up; an unanswered offer puts the operator on break; a caller nobody
answers overflows after the queue's maximum wait; a caller hanging up while waiting is counted
as abandoned (CDR).

Operators are signed in by `acd_auto_sign_in` when their phone registers, in the order they
register (so the first to register is the longest idle). Each test has its own queue and
operators, so agent states carried over from one test do not touch the next.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio import Wav, read_wav, tone_level_db, tone_snr_db
from node import Node, start_node
from phones import CallState, MediaState, Phone, PhoneBook, PhoneCall

SETTLE_S = 0.3
HOLD_HZ = 494.0  # the hold melody's upper note (telephony.queue_call.HOLD_TONE_HZ)
BUSY_HZ = 620.0  # the overflow message's upper note (BUSY_TONE_HZ)
POSITION_HZ = 1300.0  # telephony.prompts.POSITION_BEEP_HZ
WAIT_HZ = 880.0  # telephony.prompts.WAIT_BEEP_HZ
CUE_HZ = 1000.0  # telephony.queue_voicemail.CUE_HZ
PASSWORD = "queue-test-sip-secret"


def _user(name: str, extension: str) -> str:
    return (
        f"  - {{username: {name}, role: operator, team: support, extension: '{extension}',"
        f" sip_password: {PASSWORD}}}\n"
    )


PROVISIONING = (
    "teams: [{name: support}]\nusers:\n"
    + "".join(_user(f"caller{n}", f"100{n}") for n in range(1, 4))
    + "".join(
        _user(name, ext)
        for name, ext in (
            ("ann", "2001"),
            ("ben", "2002"),
            ("cat", "2003"),
            ("dan", "2004"),
            ("eve", "2005"),
            ("fay", "2006"),
        )
    )
    + """queues:
  - {name: first, number: "5001", team: support, members: [ann, ben], wrap_up_seconds: 1}
  - {name: pool, number: "5002", team: support, members: [cat, dan], wrap_up_seconds: 2}
  - {name: desk, number: "5003", team: support, members: [eve], ring_timeout_seconds: 5,
     max_no_answer: 1}
  - {name: closed, number: "5004", team: support, members: [fay], max_wait_seconds: 10}
  - {name: told, number: "5006", team: support, announce_seconds: 10}
  - {name: mailbox, number: "5007", team: support, max_wait_seconds: 10, overflow: voicemail}
"""
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_node(
        tmp_path_factory.mktemp("queue-node"),
        PROVISIONING,
        rtp_ports=(35000, 35499),
        extra_env={
            "CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000",
            "CALLWARDEN_ACD_AUTO_SIGN_IN": "true",
        },
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _phone(phones: PhoneBook, node: Node, name: str, **options: object) -> Phone:
    phone = phones.create(name, password=PASSWORD, registrar=node.registrar, **options)  # type: ignore[arg-type]
    assert phone.register() == 200
    return phone


def _cdrs(node: Node, queue_number: str) -> list[tuple[str, str, str, str | None, str | None]]:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        rows = db.execute(
            "SELECT c.callee, c.disposition, c.route_kind, c.hangup_side, c.hangup_cause"
            " FROM cdrs c JOIN queues q ON q.id = c.queue_id WHERE q.number = ? ORDER BY c.id",
            (queue_number,),
        ).fetchall()
    return [tuple(row) for row in rows]


def _record(phones: PhoneBook, seconds: float, **calls: PhoneCall) -> dict[str, Wav]:
    for name, call in calls.items():
        call.record(phones.wav(name))
    phones.run_for(seconds)
    return {name: read_wav(call.stop_recording()) for name, call in calls.items()}


def _hears_hold(phones: PhoneBook, call: PhoneCall, name: str) -> bool:
    heard = _record(phones, 1.5, **{name: call})[name]
    return tone_snr_db(heard.between(SETTLE_S), heard.rate, HOLD_HZ, [392.0]) > 20.0


def _assert_hear_each_other(phones: PhoneBook, caller: PhoneCall, operator: PhoneCall) -> None:
    heard = _record(phones, 1.5, caller=caller, operator=operator)
    by_caller, by_operator = heard["caller"], heard["operator"]
    rate = by_caller.rate
    assert tone_snr_db(by_operator.between(SETTLE_S), rate, 440, [880]) > 30.0
    assert tone_snr_db(by_caller.between(SETTLE_S), rate, 880, [440]) > 30.0
    # The hold melody is gone once the operator answers.
    talk = by_caller.between(SETTLE_S)
    assert tone_level_db(talk, rate, HOLD_HZ) < tone_level_db(talk, rate, 880) - 40.0


@pytest.mark.integration
def test_caller_hears_hold_then_longest_idle_operator_answers(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    ben = _phone(phones, node, "ben", answer_code=None)  # registers first: longest idle
    phones.run_for(0.1)  # (the node's clock ticks per loop iteration: keep the two apart)
    ann = _phone(phones, node, "ann", answer_code=None)
    ben.play(tones[880])
    caller = _phone(phones, node, "caller1")
    caller.play(tones[440])
    call = caller.dial("5001")
    call.wait_confirmed()  # answered at once by the queue
    ringing = ben.wait_incoming()
    assert _hears_hold(phones, call, "caller")
    assert not ann.incoming
    ringing.answer(200)
    ringing.wait_media(MediaState.ACTIVE)
    phones.run_for(0.5)  # the node switches the bridge once it has the 200 and told the ACD
    _assert_hear_each_other(phones, call, ringing)
    call.hangup()
    ringing.wait_disconnected()
    call.wait_disconnected()
    phones.wait_until(lambda: len(_cdrs(node, "5001")) >= 1, 5.0, "the queue call's CDR")
    assert _cdrs(node, "5001")[-1] == ("2002", "answered", "queue", "caller", "normal clearing")


@pytest.mark.integration
def test_second_caller_waits_for_the_operator_freed_after_wrap_up(
    phones: PhoneBook, node: Node
) -> None:
    # One operator (dan is a member who never signs in) and two callers; the full
    # scenario (two operators, three callers) is test_queue_two_operators.py.
    cat = _phone(phones, node, "cat")
    callers = [_phone(phones, node, f"caller{n}") for n in (1, 2)]
    first = callers[0].dial("5002")
    cat.wait_incoming().wait_confirmed()
    second = callers[1].dial("5002")
    second.wait_confirmed()
    assert _hears_hold(phones, second, "second")
    assert len(cat.incoming) == 1
    # The first caller hangs up: cat wraps up for 2 s, then gets the second caller.
    first.hangup()
    first.wait_disconnected()
    hung_up = time.monotonic()
    phones.run_for(1.0)
    assert len(cat.incoming) == 1  # still wrapping up
    offered = cat.wait_incoming(2, timeout=5.0)
    assert time.monotonic() - hung_up >= 1.8
    offered.wait_confirmed()
    second.hangup()
    second.wait_disconnected()
    phones.wait_until(lambda: len(_cdrs(node, "5002")) >= 2, 5.0, "both CDRs")
    assert [row[:2] for row in _cdrs(node, "5002")] == [("2003", "answered")] * 2


@pytest.mark.integration
def test_ring_no_answer_puts_operator_on_break_and_abandon_is_counted(
    phones: PhoneBook, node: Node
) -> None:
    eve = _phone(phones, node, "eve", answer_code=None)
    caller = _phone(phones, node, "caller2")
    call = caller.dial("5003")
    call.wait_confirmed()
    ringing = eve.wait_incoming()
    ringing.wait_disconnected(timeout=8.0)  # the queue's 5 s ring timeout: CANCEL
    assert ringing.last_status == 487
    # On break ("missed") after one unanswered offer: not rung again while the caller waits.
    phones.run_for(2.0)
    assert len(eve.incoming) == 1
    assert call.state is CallState.CONFIRMED
    call.hangup()
    call.wait_disconnected()
    phones.wait_until(lambda: len(_cdrs(node, "5003")) >= 1, 5.0, "the abandoned call's CDR")
    assert _cdrs(node, "5003")[-1] == ("5003", "cancelled", "queue", "caller", "abandoned")


@pytest.mark.integration
def test_overflow_after_max_wait_plays_a_message_and_hangs_up(
    phones: PhoneBook, node: Node
) -> None:
    caller = _phone(phones, node, "caller3")  # fay, the only member, never signs in
    call = caller.dial("5004")
    call.wait_confirmed()
    dialled = time.monotonic()
    phones.wait_until(lambda: time.monotonic() - dialled > 10.2, 12.0, "the maximum wait")
    heard = _record(phones, 1.0, caller=call)["caller"]
    assert tone_snr_db(heard.samples, heard.rate, BUSY_HZ, [480.0]) > 20.0
    call.wait_disconnected(timeout=5.0)
    assert time.monotonic() - dialled < 15.0
    phones.wait_until(lambda: len(_cdrs(node, "5004")) >= 1, 5.0, "the overflowed call's CDR")
    assert _cdrs(node, "5004")[-1] == ("5004", "no_answer", "queue", "system", "overflow: hangup")


@pytest.mark.integration
def test_a_waiting_caller_hears_position_then_expected_wait_then_hold_again(
    phones: PhoneBook, node: Node
) -> None:
    # Nobody serves "told": position 1; expected wait 1 x 180 s (the initial handle time) over
    # at least one agent = 3 minutes: one 1,300 Hz beep, then three 880 Hz beeps, at 10 s.
    caller = _phone(phones, node, "caller1")
    call = caller.dial("5006")
    call.wait_confirmed()
    answered = time.monotonic()
    phones.wait_until(lambda: time.monotonic() - answered > 8.5, 10.0, "the first announcement")
    heard = _record(phones, 6.0, caller=call)["caller"]  # from about 8.5 s to 14.5 s
    rate = heard.rate
    assert tone_snr_db(heard.between(0.0, 1.2), rate, HOLD_HZ, [392.0]) > 20.0
    assert tone_snr_db(heard.between(1.0, 2.5), rate, POSITION_HZ, [HOLD_HZ]) > 20.0
    assert tone_snr_db(heard.between(2.0, 4.0), rate, WAIT_HZ, [HOLD_HZ]) > 20.0
    assert tone_snr_db(heard.between(4.6, 6.0), rate, HOLD_HZ, [392.0]) > 20.0
    quiet = heard.between(4.6, 6.0)  # the prompts are over
    assert tone_level_db(quiet, rate, POSITION_HZ) < tone_level_db(quiet, rate, HOLD_HZ) - 30.0
    call.hangup()
    call.wait_disconnected()


@pytest.mark.integration
def test_voicemail_overflow_records_the_caller_s_message(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    caller = _phone(phones, node, "caller2")
    caller.play(tones[440])
    call = caller.dial("5007")
    call.wait_confirmed()
    answered = time.monotonic()
    phones.wait_until(lambda: time.monotonic() - answered > 9.8, 12.0, "the maximum wait")
    cue = _record(phones, 1.0, caller=call)["caller"]
    assert tone_snr_db(cue.samples, cue.rate, CUE_HZ, [HOLD_HZ]) > 20.0
    phones.run_for(3.0)  # the message: the caller's 440 Hz tone
    call.hangup()
    call.wait_disconnected()
    phones.wait_until(lambda: len(_cdrs(node, "5007")) >= 1, 5.0, "the CDR")
    assert _cdrs(node, "5007")[-1] == (
        "5007",
        "no_answer",
        "queue",
        "caller",
        "overflow: voicemail",
    )
    phones.wait_until(lambda: len(_messages(node)) > 0, 5.0, "the sealed message")
    ((status, operator, seconds),) = _messages(node)
    assert (status, operator) == ("complete", None)
    assert 2.0 < seconds < 6.0


def _messages(node: Node) -> list[tuple[str, int | None, float]]:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        rows = db.execute(
            "SELECT r.status, r.operator_id, r.duration_ms / 1000.0 FROM recordings r"
            " JOIN queues q ON q.id = r.queue_id WHERE q.number = '5007'"
            " AND r.status != 'recording'"
        ).fetchall()
    return [tuple(row) for row in rows]
