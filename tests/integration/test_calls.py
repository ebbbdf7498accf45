"""Two independent phones (pjsua2) register with digest auth and call each other through a real
callwarden node: tones both ways (FFT), hangup from either side, CANCEL, busy, wrong password,
hold/unhold, over UDP and TCP. Each test checks the CDR the node wrote for the call.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio import Wav, longest_gap_ms, noise_floor_db, read_wav, tone_level_db, tone_snr_db
from node import Node, start_node
from phones import CallState, MediaState, Phone, PhoneBook, PhoneCall, Transport

SETTLE_S = 0.3

PROVISIONING = """
teams: [{name: support}]
users:
  - {username: alice, role: operator, team: support, extension: "1001",
     sip_password: alice-sip-secret-1}
  - {username: bob, role: operator, team: support, extension: "1002",
     sip_password: bob-sip-secret-22}
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    # Every phone of these tests shares 127.0.0.1: keep failed logins from throttling them
    # (the throttle has its own test below).
    started = start_node(
        tmp_path_factory.mktemp("node"),
        PROVISIONING,
        extra_env={"CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000"},
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _cdrs(node: Node) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        rows = db.execute(
            "SELECT caller, callee, disposition, hangup_side FROM cdrs ORDER BY id"
        ).fetchall()
    return [tuple(row) for row in rows]


def _wait_cdr_count(phones: PhoneBook, node: Node, count: int) -> None:
    phones.wait_until(lambda: len(_cdrs(node)) >= count, 5.0, f"{count} CDRs")


def _registered(
    phones: PhoneBook, node: Node, name: str, password: str, **options: object
) -> Phone:
    phone = phones.create(name, password=password, registrar=node.registrar, **options)  # type: ignore[arg-type]
    assert phone.register() == 200
    return phone


def _pair(
    phones: PhoneBook, node: Node, transport: Transport = Transport.UDP, **bob_options: object
) -> tuple[Phone, Phone]:
    alice = _registered(phones, node, "alice", "alice-sip-secret-1", transport=transport)
    bob = _registered(phones, node, "bob", "bob-sip-secret-22", transport=transport, **bob_options)
    return alice, bob


def _record(phones: PhoneBook, seconds: float, **calls: PhoneCall) -> dict[str, Wav]:
    for name, call in calls.items():
        call.record(phones.wav(name))
    phones.run_for(seconds)
    return {name: read_wav(call.stop_recording()) for name, call in calls.items()}


def _assert_hear_each_other(recordings: dict[str, Wav]) -> None:
    heard_by_bob = recordings["bob"].between(SETTLE_S)
    heard_by_alice = recordings["alice"].between(SETTLE_S)
    rate = recordings["bob"].rate
    assert tone_snr_db(heard_by_bob, rate, 440, [880]) > 40.0
    assert tone_snr_db(heard_by_alice, rate, 880, [440]) > 40.0
    # Nobody hears themselves through the bridge.
    floor = noise_floor_db(heard_by_alice, rate, [440, 880])
    assert tone_level_db(heard_by_alice, rate, 440) < floor + 6.0
    floor = noise_floor_db(heard_by_bob, rate, [440, 880])
    assert tone_level_db(heard_by_bob, rate, 880) < floor + 6.0
    assert longest_gap_ms(heard_by_alice, rate) < 40.0
    assert longest_gap_ms(heard_by_bob, rate) < 40.0


def _connected(
    phones: PhoneBook, node: Node, tones: dict[int, Path], transport: Transport = Transport.UDP
) -> tuple[PhoneCall, PhoneCall]:
    alice, bob = _pair(phones, node, transport)
    alice.play(tones[440])
    bob.play(tones[880])
    call = alice.dial("1002")
    call.wait_confirmed()
    answered = bob.wait_incoming()
    answered.wait_media(MediaState.ACTIVE)
    call.wait_media(MediaState.ACTIVE)
    return call, answered


@pytest.mark.integration
def test_register_with_digest_and_wrong_password(phones: PhoneBook, node: Node) -> None:
    _registered(phones, node, "alice", "alice-sip-secret-1")
    intruder = phones.create("bob", password="not-bobs-password", registrar=node.registrar)
    assert intruder.register() in (401, 403)
    nobody = phones.create("mallory", password="whatever-it-is", registrar=node.registrar)
    assert nobody.register() in (401, 403)


@pytest.mark.integration
def test_repeated_failures_throttle_that_account_from_that_address(
    phones: PhoneBook, tmp_path: Path
) -> None:
    throttled = start_node(
        tmp_path,
        PROVISIONING,
        rtp_ports=(34000, 34099),
        extra_env={"CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "3"},
    )
    try:
        guesser = phones.create("bob", password="guess-number-one", registrar=throttled.registrar)
        assert guesser.register() in (401, 403)
        # Now even the right password is refused for bob from this address, for a while...
        right = phones.create("bob", password="bob-sip-secret-22", registrar=throttled.registrar)
        assert right.register() == 403
        # ...while alice, from the same address, is not locked out by bob's guesser.
        alice = phones.create("alice", password="alice-sip-secret-1", registrar=throttled.registrar)
        assert alice.register() == 200
    finally:
        assert throttled.stop() == 0
    log = throttled.log()
    assert "SIP authentication failed from 127.0.0.1:" in log
    assert "blocked for" in log


@pytest.mark.integration
@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_phones_hear_each_other_through_the_b2bua(
    phones: PhoneBook, node: Node, tones: dict[int, Path], transport: Transport
) -> None:
    before = len(_cdrs(node))
    call, answered = _connected(phones, node, tones, transport)
    _assert_hear_each_other(_record(phones, 1.5, alice=call, bob=answered))
    call.hangup()
    answered.wait_disconnected()
    call.wait_disconnected()
    _wait_cdr_count(phones, node, before + 1)
    assert _cdrs(node)[-1] == ("1001", "1002", "answered", "caller")


@pytest.mark.integration
def test_callee_hangs_up(phones: PhoneBook, node: Node, tones: dict[int, Path]) -> None:
    before = len(_cdrs(node))
    call, answered = _connected(phones, node, tones)
    answered.hangup()
    call.wait_disconnected()
    answered.wait_disconnected()
    _wait_cdr_count(phones, node, before + 1)
    assert _cdrs(node)[-1] == ("1001", "1002", "answered", "callee")


@pytest.mark.integration
def test_cancel_before_answer(phones: PhoneBook, node: Node) -> None:
    before = len(_cdrs(node))
    alice, bob = _pair(phones, node, answer_code=None)
    call = alice.dial("1002")
    call.wait_state(CallState.EARLY)
    ringing = bob.wait_incoming()
    phones.run_for(0.3)
    assert ringing.state is CallState.EARLY
    call.hangup()  # CANCEL
    call.wait_disconnected()
    ringing.wait_disconnected()
    assert call.last_status == 487
    _wait_cdr_count(phones, node, before + 1)
    assert _cdrs(node)[-1] == ("1001", "1002", "cancelled", "caller")


@pytest.mark.integration
def test_busy_callee(phones: PhoneBook, node: Node) -> None:
    before = len(_cdrs(node))
    alice, _ = _pair(phones, node, answer_code=486)
    call = alice.dial("1002")
    call.wait_disconnected()
    assert call.last_status == 486
    _wait_cdr_count(phones, node, before + 1)
    assert _cdrs(node)[-1] == ("1001", "1002", "busy", "callee")


@pytest.mark.integration
def test_unknown_extension_and_unregistered_user(phones: PhoneBook, node: Node) -> None:
    alice = _registered(phones, node, "alice", "alice-sip-secret-1")
    unknown = alice.dial("1999")
    unknown.wait_disconnected()
    assert unknown.last_status == 404
    absent = alice.dial("1002")  # bob exists but has no phone registered
    absent.wait_disconnected()
    assert absent.last_status == 480


@pytest.mark.integration
def test_hold_and_unhold_keep_audio_flowing(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    call, answered = _connected(phones, node, tones)
    call.hold()
    phones.run_for(0.3)
    call.unhold()
    call.wait_media(MediaState.ACTIVE)
    _assert_hear_each_other(_record(phones, 1.5, alice=call, bob=answered))
    answered.hold()
    phones.run_for(0.3)
    answered.unhold()
    answered.wait_media(MediaState.ACTIVE)
    _assert_hear_each_other(_record(phones, 1.5, alice=call, bob=answered))
    call.hangup()
    answered.wait_disconnected()


@pytest.mark.integration
def test_all_phones_of_a_user_ring_and_the_first_to_answer_wins(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    alice = _registered(phones, node, "alice", "alice-sip-secret-1")
    desk = _registered(phones, node, "bob", "bob-sip-secret-22", answer_code=None)
    mobile = _registered(phones, node, "bob", "bob-sip-secret-22", answer_code=None)
    alice.play(tones[440])
    mobile.play(tones[880])
    call = alice.dial("1002")
    desk_ringing = desk.wait_incoming()
    mobile_ringing = mobile.wait_incoming()
    call.wait_state(CallState.EARLY)
    mobile_ringing.answer(200)
    call.wait_confirmed()
    desk_ringing.wait_disconnected()  # CANCELled when the mobile answered
    assert desk_ringing.last_status == 487
    mobile_ringing.wait_media(MediaState.ACTIVE)
    recorded = _record(phones, 1.5, alice=call, bob=mobile_ringing)
    _assert_hear_each_other(recorded)
    call.hangup()
    mobile_ringing.wait_disconnected()


@pytest.mark.integration
def test_health_and_metrics_count_registrations_without_naming_anyone(
    phones: PhoneBook, node: Node
) -> None:
    _registered(phones, node, "alice", "alice-sip-secret-1")
    base, context = node.base_url, node.tls_context()
    with urllib.request.urlopen(f"{base}/healthz", timeout=5, context=context) as response:
        health = json.load(response)
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert health["status"] == "ok"
    assert health["registered_phones"] >= 1
    with urllib.request.urlopen(f"{base}/metrics", timeout=5, context=context) as response:
        metrics = response.read().decode()
    assert "callwarden_registered_phones" in metrics
    assert "alice" not in metrics and "1001" not in metrics
