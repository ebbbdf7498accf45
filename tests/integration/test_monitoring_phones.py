"""Live monitoring through a real node, with independent phones (pjsua2) playing tones:
the customer 440 Hz, the operator 880 Hz, the supervisor 1,300 Hz (a second supervisor
1,700 Hz). What each phone received is analysed by FFT, mode by mode:

- listen: the supervisor hears 440 and 880; customer and operator hear no 1,300;
- whisper: the operator hears 440 and 1,300; the customer hears 880 and 1,300 at least 50 dB
  below it, over the whole stretch of listening and whispering, switches included;
- barge: everyone hears the other two;
- take over: the customer hears 1,300, the operator's leg is gone (BYE) and the operator is in
  wrap-up; the CDR keeps the operator's leg ended at the handover and the supervisor's leg;
  on the operator's own outbound call through a trunk (the operator is the caller) the
  operator's call is the one hung up, and the customer hears the supervisor.

Modes are switched by DTMF from the supervisor's phone (4/5/6) and by the API (PATCH) while the
tones play, and the customer's audio never drops out for more than 60 ms at any switch.
Several supervisors: a listening supervisor never hears another supervisor's whisper.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio import Wav, longest_gap_ms, read_wav, tone_level_db, tone_snr_db, write_tone_wav
from monitoring_api import ApiClient, audit_rows
from node import Node, start_node
from phones import CallState, Phone, PhoneBook, PhoneCall

PASSWORD = "monitoring-sip-secret"
WEB_PASSWORD = "monitoring-web-password-1"
CUSTOMER_HZ, OPERATOR_HZ, SUPERVISOR_HZ, SECOND_HZ = 440, 880, 1300, 1700
SETTLE_S = 0.4
HEARD_SNR_DB = 25.0
WHISPER_MARGIN_DB = 50.0
MAX_GAP_MS = 60.0
_recordings = itertools.count(1)
logger = logging.getLogger(__name__)


def _user(name: str, role: str, team: str, extension: str) -> str:
    return (
        f"  - {{username: {name}, role: {role}, team: {team}, extension: '{extension}',"
        f" sip_password: {PASSWORD}, password: {WEB_PASSWORD}}}\n"
    )


PROVISIONING = (
    "teams: [{name: north}, {name: south}, {name: street}]\nusers:\n"
    + _user("cust", "operator", "street", "1001")
    + _user("op", "operator", "north", "2001")
    + _user("sup", "supervisor", "north", "3001")
    + _user("sup2", "supervisor", "north", "3002")
    + """queues:
  - {name: line, number: "5001", team: north, members: [op], wrap_up_seconds: 8}
"""
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_node(
        tmp_path_factory.mktemp("monitoring-node"),
        PROVISIONING,
        rtp_ports=(36000, 36499),
        extra_env={
            "CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000",
            "CALLWARDEN_ACD_AUTO_SIGN_IN": "true",
        },
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


@pytest.fixture(scope="module")
def api(node: Node) -> Iterator[ApiClient]:
    """The supervisor `sup` signed in to the API (MFA set up once for the module)."""
    client = ApiClient(node, "sup", WEB_PASSWORD).sign_in()
    yield client
    client.close()


@pytest.fixture(scope="module")
def second_tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tone-1700") / "tone-1700.wav"
    return write_tone_wav(path, SECOND_HZ, 90.0, 0.25)


def _phone(phones: PhoneBook, node: Node, name: str, tone: Path) -> Phone:
    phone = phones.create(name, password=PASSWORD, registrar=node.registrar)
    assert phone.register() == 200
    phone.play(tone)
    return phone


def _connected_call(phones: PhoneBook, customer: Phone, operator: Phone) -> PhoneCall:
    """The customer calls the queue; the operator (signed in on registering) answers."""
    call = customer.dial("5001")
    call.wait_confirmed()
    operator.wait_incoming().wait_confirmed()
    phones.run_for(0.5)  # the bridge goes to normal once the node has the operator's 200
    return call


def _record(phones: PhoneBook, seconds: float, **calls: PhoneCall) -> dict[str, Wav]:
    for name, call in calls.items():
        call.record(phones.wav(f"{name}-{next(_recordings)}"))
    phones.run_for(seconds)
    return {name: read_wav(call.stop_recording()) for name, call in calls.items()}


def _snr(wav: Wav, freq: float, *others: float) -> float:
    return tone_snr_db(wav.between(SETTLE_S), wav.rate, freq, list(others))


def _hears(wav: Wav, freq: float, *others: float) -> bool:
    snr = _snr(wav, freq, *others)
    logger.info("%d Hz at %.1f dB over the noise floor", freq, snr)
    return snr > HEARD_SNR_DB


def _wait_mode(phones: PhoneBook, api: ApiClient, mode: str, state: str = "joined") -> str:
    """Pump the phones until the supervisor's session shows `mode` (and `state`); its id."""
    found: list[str] = []

    def shown() -> bool:
        items = api.request("GET", "/api/v1/monitoring").json()["items"]
        mine = [item for item in items if item["mode"] == mode and item["state"] == state]
        found[:] = [item["id"] for item in mine]
        return bool(mine)

    phones.wait_until(shown, 8.0, f"a session in {mode}")
    return found[0]


def _whisper_never_reaches(wav: Wav, whisper_hz: float) -> None:
    """Over the whole recording and over every half second of it, the whisper's tone stays at
    least 50 dB under the operator's tone in the customer's audio."""
    samples = wav.samples[round(0.1 * wav.rate) :]
    whole = tone_level_db(samples, wav.rate, whisper_hz) - tone_level_db(
        samples, wav.rate, OPERATOR_HZ
    )
    logger.info("whisper %.1f dB under the operator over the whole session", -whole)
    assert whole <= -WHISPER_MARGIN_DB, f"whole session: whisper at {whole:.1f} dB"
    window = wav.rate // 2
    worst = -200.0
    for start in range(0, len(samples) - window + 1, window // 2):
        part = samples[start : start + window]
        margin = tone_level_db(part, wav.rate, whisper_hz) - tone_level_db(
            part, wav.rate, OPERATOR_HZ
        )
        assert margin <= -WHISPER_MARGIN_DB, f"at {start / wav.rate:.2f} s: {margin:.1f} dB"
        worst = max(worst, margin)
    logger.info("whisper at least %.1f dB under the operator in every half second", -worst)


def _longest_gap(wav: Wav, skip_s: float) -> float:
    gap = longest_gap_ms(wav.samples[round(skip_s * wav.rate) :], wav.rate)
    logger.info("longest gap in the customer's audio: %.0f ms", gap)
    return gap


def _cdr_legs(node: Node, call_id: str) -> list[tuple[str, int | None, str, str]]:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        rows = db.execute(
            "SELECT l.role, l.user_id, l.started_at, l.ended_at FROM cdr_legs l"
            " JOIN cdrs c ON c.id = l.cdr_id WHERE c.call_id = ? ORDER BY l.position",
            (call_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


def _user_id(node: Node, username: str) -> int:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        (found,) = db.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
    return int(found)


def _listen_then_whisper(
    phones: PhoneBook, api: ApiClient, customer: PhoneCall, operator: PhoneCall, sup: Phone
) -> tuple[PhoneCall, str]:
    """Listen (dialled *91), whisper (key 5), listen (API), whisper (API): what each hears.
    The customer's audio is recorded the whole time, joining and switches included."""
    customer.record(phones.wav("customer-a"))
    monitor = sup.dial("*912001")
    monitor.wait_confirmed()
    session = _wait_mode(phones, api, "listen")
    heard = _record(phones, 1.5, operator=operator, sup=monitor)
    assert _hears(heard["sup"], CUSTOMER_HZ, OPERATOR_HZ, SUPERVISOR_HZ)
    assert _hears(heard["sup"], OPERATOR_HZ, CUSTOMER_HZ, SUPERVISOR_HZ)
    assert not _hears(heard["operator"], SUPERVISOR_HZ, CUSTOMER_HZ, OPERATOR_HZ)

    monitor.send_dtmf("5")
    _wait_mode(phones, api, "whisper")
    heard = _record(phones, 1.5, operator=operator, sup=monitor)
    assert _hears(heard["operator"], CUSTOMER_HZ, SUPERVISOR_HZ)
    assert _hears(heard["operator"], SUPERVISOR_HZ, CUSTOMER_HZ)
    assert _hears(heard["sup"], CUSTOMER_HZ, OPERATOR_HZ, SUPERVISOR_HZ)

    for mode in ("listen", "whisper"):
        switched = api.request("PATCH", f"/api/v1/monitoring/{session}", {"mode": mode})
        assert switched.status_code == 200, switched.text
        phones.run_for(0.8)
    monitor.send_dtmf("4")
    _wait_mode(phones, api, "listen")
    phones.run_for(0.8)
    whole = read_wav(customer.stop_recording())
    assert _hears(whole, OPERATOR_HZ, SUPERVISOR_HZ)
    _whisper_never_reaches(whole, SUPERVISOR_HZ)
    assert _longest_gap(whole, 0.1) <= MAX_GAP_MS
    return monitor, session


@pytest.mark.integration
def test_listen_whisper_barge_take_over_by_dtmf_and_api(
    phones: PhoneBook, node: Node, api: ApiClient, tones: dict[int, Path]
) -> None:
    op = _phone(phones, node, "op", tones[OPERATOR_HZ])
    customer_phone = _phone(phones, node, "cust", tones[CUSTOMER_HZ])
    sup = _phone(phones, node, "sup", tones[SUPERVISOR_HZ])
    customer = _connected_call(phones, customer_phone, op)
    operator = op.incoming[-1]
    monitor, session = _listen_then_whisper(phones, api, customer, operator, sup)

    # Barge by key 6, then take over by the API; the customer's audio has no gap at either.
    customer.record(phones.wav("customer-bc"))
    monitor.send_dtmf("6")
    _wait_mode(phones, api, "barge")
    heard = _record(phones, 1.5, operator=operator, sup=monitor)
    assert _hears(heard["operator"], CUSTOMER_HZ, SUPERVISOR_HZ)
    assert _hears(heard["operator"], SUPERVISOR_HZ, CUSTOMER_HZ)
    assert _hears(heard["sup"], CUSTOMER_HZ, OPERATOR_HZ, SUPERVISOR_HZ)
    assert _hears(heard["sup"], OPERATOR_HZ, CUSTOMER_HZ, SUPERVISOR_HZ)
    taken = api.request("PATCH", f"/api/v1/monitoring/{session}", {"mode": "takeover"})
    assert taken.status_code == 200, taken.text
    operator.wait_disconnected()
    phones.run_for(1.5)
    barge_and_takeover = read_wav(customer.stop_recording())
    assert _longest_gap(barge_and_takeover, 0.1) <= MAX_GAP_MS
    during_barge = Wav(barge_and_takeover.between(0.6, 1.6), barge_and_takeover.rate)
    assert _hears(during_barge, OPERATOR_HZ, SUPERVISOR_HZ)
    assert _hears(during_barge, SUPERVISOR_HZ, OPERATOR_HZ)
    heard = _record(phones, 1.5, customer=customer, sup=monitor)
    assert _hears(heard["customer"], SUPERVISOR_HZ, OPERATOR_HZ)
    assert not _hears(heard["customer"], OPERATOR_HZ, SUPERVISOR_HZ)
    assert _hears(heard["sup"], CUSTOMER_HZ, SUPERVISOR_HZ)
    agents = api.request("GET", "/api/v1/agents").json()["items"]
    assert [a["state"] for a in agents if a["username"] == "op"] == ["wrap_up"]

    # The customer hangs up: the call ends, and with it the supervisor's leg.
    customer.hangup()
    monitor.wait_disconnected()
    call_id = customer.call_id
    phones.wait_until(lambda: len(_cdr_legs(node, call_id)) == 3, 5.0, "the CDR")
    roles = [(role, user) for role, user, _, _ in _cdr_legs(node, call_id)]
    assert roles == [
        ("caller", _user_id(node, "cust")),
        ("callee", _user_id(node, "op")),
        ("monitor", _user_id(node, "sup")),
    ]
    legs = _cdr_legs(node, call_id)
    assert legs[1][3] < legs[2][3]  # the operator left at the handover, the supervisor stayed
    phones.wait_until(lambda: audit_rows(node, "monitoring.ended") != [], 5.0, "the end audit")
    assert [row[2] for row in audit_rows(node, "monitoring.ended")][-1] == call_id
    takeovers = audit_rows(node, "monitoring.takeover")
    assert takeovers[-1][:3] == ("sup", "success", call_id)
    listens = audit_rows(node, "monitoring.listen")
    assert listens[0][3] is not None and "*912001" in listens[0][3]
    assert len(audit_rows(node, "monitoring.whisper")) >= 2


@pytest.mark.integration
def test_a_listening_supervisor_never_hears_another_supervisors_whisper(
    phones: PhoneBook, node: Node, api: ApiClient, tones: dict[int, Path], second_tone: Path
) -> None:
    op = _phone(phones, node, "op", tones[OPERATOR_HZ])
    phones.run_for(0.1)
    customer_phone = _phone(phones, node, "cust", tones[CUSTOMER_HZ])
    sup = _phone(phones, node, "sup", tones[SUPERVISOR_HZ])
    sup2 = _phone(phones, node, "sup2", second_tone)
    phones.wait_until(lambda: _agent_state(api, "op") == "available", 15.0, "op available")
    customer = _connected_call(phones, customer_phone, op)
    operator = op.incoming[-1]
    # sup listens from the API (the node rings sup's own phone), sup2 whispers by *92.
    started = api.request(
        "POST",
        "/api/v1/monitoring",
        {"call_id": customer.call_id, "mode": "listen", "reason": "quality check QA-17"},
    )
    assert started.status_code == 201, started.text
    assert started.json()["state"] == "ringing"
    listening = sup.wait_incoming()
    listening.wait_confirmed()
    _wait_mode(phones, api, "listen")
    whisper = sup2.dial("*922001")
    whisper.wait_confirmed()
    phones.run_for(0.8)
    heard = _record(
        phones, 2.0, customer=customer, operator=operator, listener=listening, whisperer=whisper
    )
    everyone = (CUSTOMER_HZ, OPERATOR_HZ, SUPERVISOR_HZ, SECOND_HZ)

    def others(freq: int) -> list[int]:
        return [f for f in everyone if f != freq]

    assert _hears(heard["operator"], SECOND_HZ, *others(SECOND_HZ))
    assert _hears(heard["listener"], CUSTOMER_HZ, *others(CUSTOMER_HZ))
    assert _hears(heard["listener"], OPERATOR_HZ, *others(OPERATOR_HZ))
    assert not _hears(heard["listener"], SECOND_HZ, *others(SECOND_HZ))
    assert not _hears(heard["customer"], SECOND_HZ, *others(SECOND_HZ))
    assert not _hears(heard["customer"], SUPERVISOR_HZ, *others(SUPERVISOR_HZ))
    assert not _hears(heard["whisperer"], SUPERVISOR_HZ, *others(SUPERVISOR_HZ))
    # Ending the listener's session leaves the call and the whisper as they were.
    ended = api.request("DELETE", f"/api/v1/monitoring/{started.json()['id']}")
    assert ended.status_code == 200, ended.text
    listening.wait_disconnected()
    heard = _record(phones, 1.5, customer=customer, operator=operator)
    assert customer.state is CallState.CONFIRMED
    assert _hears(heard["customer"], OPERATOR_HZ, CUSTOMER_HZ, SECOND_HZ)
    assert _hears(heard["operator"], SECOND_HZ, CUSTOMER_HZ, OPERATOR_HZ)
    customer.hangup()
    whisper.wait_disconnected()
    operator.wait_disconnected()
    reasons = [row[3] for row in audit_rows(node, "monitoring.listen")]
    assert "quality check QA-17" in reasons


def _agent_state(api: ApiClient, username: str) -> str | None:
    agents = api.request("GET", "/api/v1/agents").json()["items"]
    states = [a["state"] for a in agents if a["username"] == username]
    return states[0] if states else None


def _outbound_provisioning(carrier_port: int) -> str:
    return (
        """roles:
  - {name: operator, outbound_patterns: ["0[1-9]XXXXXXXX"]}
teams: [{name: north}]
users:
"""
        + _user("op", "operator", "north", "2001")
        + _user("sup", "supervisor", "north", "3001")
        + f"""trunks:
  - name: carrier
    host: 127.0.0.1
    port: {carrier_port}
    outbound_patterns: ["0XXXXXXXXX"]
"""
    )


@pytest.mark.integration
def test_a_takeover_of_an_operators_own_outbound_call_keeps_the_customer(
    phones: PhoneBook, tmp_path: Path, tones: dict[int, Path]
) -> None:
    """The operator is the caller: the operator dials a customer through the trunk (a pjsua2
    phone plays the carrier and the customer, 440 Hz). After the takeover the customer hears
    the supervisor (1,300 Hz) and no longer the operator (880 Hz), whose own call was hung up;
    the customer's call goes on with the supervisor until the customer hangs up."""
    carrier = phones.create("carrier")
    node = start_node(
        tmp_path,
        _outbound_provisioning(carrier.sip_port),
        rtp_ports=(36500, 36599),
        extra_env={"CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000"},
    )
    api: ApiClient | None = None
    try:
        op = _phone(phones, node, "op", tones[OPERATOR_HZ])
        sup = _phone(phones, node, "sup", tones[SUPERVISOR_HZ])
        carrier.play(tones[CUSTOMER_HZ])
        outgoing = op.dial("0298765432")
        customer = carrier.wait_incoming()
        customer.wait_confirmed()
        outgoing.wait_confirmed()
        phones.run_for(0.5)
        api = ApiClient(node, "sup", WEB_PASSWORD).sign_in()
        monitor = sup.dial("*912001")  # listen to op's call (op is its caller)
        monitor.wait_confirmed()
        session = _wait_mode(phones, api, "listen")
        heard = _record(phones, 1.5, sup=monitor)
        assert _hears(heard["sup"], CUSTOMER_HZ, OPERATOR_HZ, SUPERVISOR_HZ)
        assert _hears(heard["sup"], OPERATOR_HZ, CUSTOMER_HZ, SUPERVISOR_HZ)

        taken = api.request("PATCH", f"/api/v1/monitoring/{session}", {"mode": "takeover"})
        assert taken.status_code == 200, taken.text
        outgoing.wait_disconnected()  # the operator's own call: gone
        phones.run_for(0.5)
        assert customer.state is CallState.CONFIRMED  # the customer's: still up
        heard = _record(phones, 1.5, customer=customer, sup=monitor)
        assert _hears(heard["customer"], SUPERVISOR_HZ, OPERATOR_HZ, CUSTOMER_HZ)
        assert not _hears(heard["customer"], OPERATOR_HZ, SUPERVISOR_HZ, CUSTOMER_HZ)
        assert _hears(heard["sup"], CUSTOMER_HZ, SUPERVISOR_HZ, OPERATOR_HZ)
        assert not _hears(heard["sup"], OPERATOR_HZ, SUPERVISOR_HZ, CUSTOMER_HZ)

        customer.hangup()  # the call ends with the customer, and the supervisor's leg with it
        monitor.wait_disconnected()
        takeovers = audit_rows(node, "monitoring.takeover")
        assert takeovers[-1][:2] == ("sup", "success")
    finally:
        if api is not None:
            api.close()
        assert node.stop() == 0, node.log()
