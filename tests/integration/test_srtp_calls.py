"""Encrypted calls from home: pjsua2 phones with SRTP mandatory (SDES keys over SIP/TLS) call
each other through a node whose media policy says operators use TLS + SRTP only.

The tones cross the bridge both ways (FFT check), and the node's SRTP endpoints report at close
that every packet they received was authenticated and every packet they sent was encrypted
(the engine's own counters; the phones, SRTP mandatory, would drop plain RTP anyway). Under the
same policy a phone registering over UDP gets 403 and one offering plain RTP over TLS gets 488,
each with a log line saying why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio import longest_gap_ms, noise_floor_db, read_wav, tone_level_db, tone_snr_db
from node import LOOPBACK, Node, free_port, start_node
from phones import MediaState, Phone, PhoneBook, PhoneCall, Transport

SETTLE_S = 0.3

PROVISIONING = """
teams: [{name: support}]
users:
  - {username: alice, role: operator, team: support, extension: "1001",
     sip_password: alice-sip-secret-1}
  - {username: bob, role: operator, team: support, extension: "1002",
     sip_password: bob-sip-secret-22}
  - {username: carol, role: operator, team: support, extension: "1003",
     sip_password: carol-sip-secret-333}
  - {username: erin, role: operator, team: support, extension: "1004",
     sip_password: erin-sip-secret-4444}
  - {username: dave, role: auditor, team: support, extension: "1005",
     sip_password: dave-sip-secret-55555}
  - {username: sam, role: supervisor, team: support, extension: "1006",
     sip_password: sam-sip-secret-666666}
queues:
  - {name: home, number: "5001", team: support, members: [erin]}
"""

PASSWORDS = {
    "alice": "alice-sip-secret-1",
    "bob": "bob-sip-secret-22",
    "carol": "carol-sip-secret-333",
    "erin": "erin-sip-secret-4444",
    "dave": "dave-sip-secret-55555",
    "sam": "sam-sip-secret-666666",
}

_SRTP_CLOSED = re.compile(
    r"endpoint \S+: SRTP (\S+) closed: (\d+) packets received and authenticated, (\d+) sent, "
    r"(\d+) of them encrypted; (\d+) failed authentication, (\d+) replayed"
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, str]]:
    tls_port = free_port()
    started = start_node(
        tmp_path_factory.mktemp("node"),
        PROVISIONING,
        rtp_ports=(35000, 35099),
        extra_env={
            "CALLWARDEN_SIP_TLS_PORT": str(tls_port),
            "CALLWARDEN_ENCRYPTED_MEDIA_ROLES": "operator,supervisor",
            "CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000",
            "CALLWARDEN_ACD_AUTO_SIGN_IN": "true",
        },
    )
    yield started, f"{LOOPBACK}:{tls_port}"
    code = started.stop()
    assert code == 0, started.log()


def _phone(
    phones: PhoneBook, registrar: str, name: str, transport: Transport, *, srtp: bool
) -> Phone:
    return phones.create(
        name, password=PASSWORDS[name], registrar=registrar, transport=transport, srtp=srtp
    )


def _srtp_call(
    phones: PhoneBook, node: tuple[Node, str], tones: dict[int, Path]
) -> tuple[PhoneCall, PhoneCall]:
    """alice (440 Hz) calls bob (880 Hz); both phones TLS with SRTP mandatory."""
    server, tls = node
    alice = _phone(phones, tls, "alice", Transport.TLS, srtp=True)
    bob = _phone(phones, tls, "bob", Transport.TLS, srtp=True)
    assert alice.register() == 200, server.log()
    assert bob.register() == 200, server.log()
    alice.play(tones[440])
    bob.play(tones[880])
    call = alice.dial("1002")
    call.wait_confirmed()
    answered = bob.wait_incoming()
    answered.wait_media(MediaState.ACTIVE)
    call.wait_media(MediaState.ACTIVE)
    return call, answered


def _assert_hear_each_other(phones: PhoneBook, call: PhoneCall, answered: PhoneCall) -> None:
    call.record(phones.wav("alice"))
    answered.record(phones.wav("bob"))
    phones.run_for(1.5)
    heard_by_alice = read_wav(call.stop_recording())
    heard_by_bob = read_wav(answered.stop_recording())
    rate = heard_by_bob.rate
    bob_hears, alice_hears = heard_by_bob.between(SETTLE_S), heard_by_alice.between(SETTLE_S)
    assert tone_snr_db(bob_hears, rate, 440, [880]) > 40.0
    assert tone_snr_db(alice_hears, rate, 880, [440]) > 40.0
    floor = noise_floor_db(alice_hears, rate, [440, 880])
    assert tone_level_db(alice_hears, rate, 440) < floor + 6.0  # nobody hears themselves
    assert longest_gap_ms(alice_hears, rate) < 40.0
    assert longest_gap_ms(bob_hears, rate) < 40.0


def _assert_every_packet_encrypted(
    phones: PhoneBook, server: Node, calls_before: int, legs_expected: int = 2
) -> None:
    """The SRTP legs' totals, logged by the engine as they closed."""
    phones.wait_until(
        lambda: len(_SRTP_CLOSED.findall(server.log())) >= calls_before + legs_expected,
        5.0,
        "the SRTP legs closed",
    )
    legs = _SRTP_CLOSED.findall(server.log())[calls_before : calls_before + legs_expected]
    for suite, received, sent, encrypted, failed, replayed in legs:
        assert suite in ("AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM")
        assert int(received) > 50  # at least 1.5 s of 20 ms packets, authenticated
        assert int(sent) > 50
        assert encrypted == sent  # no packet left these legs in the clear
        assert (failed, replayed) == ("0", "0")


@pytest.mark.integration
def test_srtp_phones_over_tls_hear_each_other_and_nothing_goes_plain(
    phones: PhoneBook, node: tuple[Node, str], tones: dict[int, Path]
) -> None:
    before = len(_SRTP_CLOSED.findall(node[0].log()))
    call, answered = _srtp_call(phones, node, tones)
    _assert_hear_each_other(phones, call, answered)
    call.hangup()
    answered.wait_disconnected()
    call.wait_disconnected()
    _assert_every_packet_encrypted(phones, node[0], before)


@pytest.mark.integration
def test_hold_and_unhold_over_srtp_keep_audio_flowing_encrypted(
    phones: PhoneBook, node: tuple[Node, str], tones: dict[int, Path]
) -> None:
    before = len(_SRTP_CLOSED.findall(node[0].log()))
    call, answered = _srtp_call(phones, node, tones)
    call.hold()
    phones.run_for(0.3)
    call.unhold()
    call.wait_media(MediaState.ACTIVE)
    _assert_hear_each_other(phones, call, answered)
    answered.hold()
    phones.run_for(0.3)
    answered.unhold()
    answered.wait_media(MediaState.ACTIVE)
    _assert_hear_each_other(phones, call, answered)
    call.hangup()
    answered.wait_disconnected()
    _assert_every_packet_encrypted(phones, node[0], before)


@pytest.mark.integration
@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_an_operator_registering_without_tls_is_refused(
    phones: PhoneBook, node: tuple[Node, str], transport: Transport
) -> None:
    server, _ = node
    phone = _phone(phones, server.registrar, "carol", transport, srtp=False)
    assert phone.register() == 403
    assert (
        f"REGISTER of carol from 127.0.0.1 over {transport.name}: "
        "the media policy for role operator requires TLS and SRTP" in server.log()
    )


@pytest.mark.integration
def test_an_operator_offering_plain_rtp_is_refused_with_488(
    phones: PhoneBook, node: tuple[Node, str]
) -> None:
    server, tls = node
    bob = _phone(phones, tls, "bob", Transport.TLS, srtp=True)
    assert bob.register() == 200
    carol = _phone(phones, tls, "carol", Transport.TLS, srtp=False)  # TLS, but plain RTP
    assert carol.register() == 200
    call = carol.dial("1002")
    call.wait_disconnected()
    assert call.last_status == 488
    assert "INVITE from carol at 127.0.0.1 offers plain RTP" in server.log()
    assert not bob.calls  # never reached the callee


@pytest.mark.integration
def test_a_plain_caller_reaches_an_encrypted_only_agent_through_a_queue_and_is_monitored(
    phones: PhoneBook, node: tuple[Node, str], tones: dict[int, Path]
) -> None:
    """The customer's leg is plain RTP (not under the policy), the operator's SRTP: decrypted
    and re-encrypted at the bridge. A supervisor listens in over SRTP (dialled *91)."""
    server, tls = node
    before = len(_SRTP_CLOSED.findall(server.log()))
    erin = phones.create(
        "erin",
        password=PASSWORDS["erin"],
        registrar=tls,
        transport=Transport.TLS,
        srtp=True,
        answer_code=None,
    )
    assert erin.register() == 200  # and signs in to the queue (acd_auto_sign_in)
    erin.play(tones[880])
    dave = _phone(phones, server.registrar, "dave", Transport.UDP, srtp=False)
    assert dave.register() == 200
    dave.play(tones[440])
    call = dave.dial("5001")
    call.wait_confirmed()  # answered by the queue
    ringing = erin.wait_incoming()
    ringing.answer(200)
    ringing.wait_media(MediaState.ACTIVE)
    phones.run_for(0.5)  # the bridge switches once the node has the 200
    _assert_hear_each_other(phones, call, ringing)
    sam = _phone(phones, tls, "sam", Transport.TLS, srtp=True)
    assert sam.register() == 200
    monitor = sam.dial("*911004")
    monitor.wait_confirmed()
    monitor.wait_media(MediaState.ACTIVE)
    phones.run_for(0.8)  # the listen matrix is set once the leg is answered
    monitor.record(phones.wav("sam"))
    phones.run_for(1.5)
    heard = read_wav(monitor.stop_recording())
    assert tone_snr_db(heard.between(SETTLE_S), heard.rate, 440, [880]) > 25.0
    assert tone_snr_db(heard.between(SETTLE_S), heard.rate, 880, [440]) > 25.0
    call.hangup()
    ringing.wait_disconnected()
    monitor.wait_disconnected()
    _assert_every_packet_encrypted(phones, server, before, legs_expected=2)
