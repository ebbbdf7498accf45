"""The phone harness proves itself before it proves callwarden.

The audio analysis is checked against generated signals of known level. The phones call each
other directly (no server: A dials sip:b@127.0.0.1:<port of B>) and must hear each other's tone,
not their own, through answer, busy, cancel, hold/unhold and hangup from either side. A small
digest registrar served from the test thread checks the REGISTER path (RFC 3261 section 10,
digest per RFC 7616/8760).
"""

from __future__ import annotations

import hashlib
import re
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from audio import (
    Wav,
    has_tone,
    longest_gap_ms,
    noise_floor_db,
    read_wav,
    tone,
    tone_level_db,
    tone_snr_db,
    write_tone_wav,
    write_wav,
)
from phones import (
    CallbackError,
    CallState,
    MediaState,
    Phone,
    PhoneBook,
    PhoneCall,
    SipEndpoint,
    Transport,
    request_uri_port,
)

RATE = 8000
SETTLE_S = 0.3  # jitter buffer fill at the start of a recording


# -- audio analysis ----------------------------------------------------------------------


def test_tone_level_is_dbfs_of_the_amplitude() -> None:
    samples = tone(440, 2.0, amplitude=0.25)
    assert tone_level_db(samples, RATE, 440) == pytest.approx(-12.04, abs=0.1)
    assert tone_level_db(tone(1300, 1.0, amplitude=1.0), RATE, 1300) == pytest.approx(0.0, abs=0.1)


def test_snr_separates_present_and_absent_tones_in_noise() -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 30.0, 2 * RATE)  # about -61 dBFS RMS
    mixed = np.clip(tone(880, 2.0, amplitude=0.1) + noise, -32768, 32767).astype(np.int16)
    assert tone_snr_db(mixed, RATE, 880) > 40.0
    assert has_tone(mixed, RATE, 880, min_snr_db=40.0)
    assert not has_tone(mixed, RATE, 440, min_snr_db=6.0, exclude_hz=[880])
    floor = noise_floor_db(mixed, RATE, exclude_hz=[880])
    assert tone_level_db(mixed, RATE, 440) < floor + 6.0


def test_longest_gap_measures_a_dropout() -> None:
    samples = tone(440, 1.0)
    samples[4000:4800] = 0  # 100 ms
    assert longest_gap_ms(samples, RATE) == pytest.approx(100.0, abs=5.0)
    assert longest_gap_ms(tone(440, 1.0), RATE) == 0.0


def _unfinished(path: Path, samples: np.ndarray, data_size: int) -> Path:
    write_wav(path, samples, RATE)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 4, 0)
    struct.pack_into("<I", raw, 40, data_size)
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("data_size", [0, 10**9], ids=["zero", "past-end"])
def test_read_wav_tolerates_an_unfinished_header(tmp_path: Path, data_size: int) -> None:
    samples = tone(440, 0.5)
    wav = read_wav(_unfinished(tmp_path / "open.wav", samples, data_size))
    assert wav.rate == RATE
    assert np.array_equal(wav.samples, samples)


def test_write_tone_wav_round_trips(tmp_path: Path) -> None:
    wav = read_wav(write_tone_wav(tmp_path / "t.wav", [440, 1300], 1.0, amplitude=0.2))
    assert wav.duration_s == 1.0
    assert tone_level_db(wav.samples, wav.rate, 440) == pytest.approx(-13.98, abs=0.1)
    assert tone_level_db(wav.samples, wav.rate, 1300) == pytest.approx(-13.98, abs=0.1)


@pytest.mark.parametrize(
    ("message", "port"),
    [
        ("INVITE sip:b@127.0.0.1:5072 SIP/2.0\r\n", 5072),
        ("INVITE sip:1001@127.0.0.1:40001;transport=tcp SIP/2.0\r\n", 40001),
        ("BYE sip:[::1]:5099;ob SIP/2.0\r\n", 5099),
        ("OPTIONS sip:127.0.0.1 SIP/2.0\r\n", None),
        ("SIP/2.0 200 OK\r\n", None),
    ],
)
def test_request_uri_port(message: str, port: int | None) -> None:
    assert request_uri_port(message) == port


# -- phones calling each other directly ---------------------------------------------------


def _record(phones: PhoneBook, seconds: float, **calls: PhoneCall) -> dict[str, Wav]:
    for name, call in calls.items():
        call.record(phones.wav(name))
    phones.run_for(seconds)
    return {name: read_wav(call.stop_recording()) for name, call in calls.items()}


def _connected_pair(
    phones: PhoneBook, tones: dict[int, Path], transport: Transport = Transport.UDP
) -> tuple[Phone, Phone, PhoneCall, PhoneCall]:
    a = phones.create("a", transport=transport)
    b = phones.create("b", transport=transport)
    a.play(tones[440])
    b.play(tones[880])
    a_call = a.call(b.uri)
    a_call.wait_confirmed()
    b_call = b.wait_incoming()
    b_call.wait_media(MediaState.ACTIVE)
    return a, b, a_call, b_call


@pytest.mark.integration
def test_each_phone_hears_the_other_and_not_itself(
    phones: PhoneBook, tones: dict[int, Path]
) -> None:
    _, _, a_call, b_call = _connected_pair(phones, tones)
    assert a_call.status_codes[-1] == 200
    rec = _record(phones, 1.5, a=a_call, b=b_call)
    heard_by_b = rec["b"].between(SETTLE_S)
    heard_by_a = rec["a"].between(SETTLE_S)
    assert tone_snr_db(heard_by_b, rec["b"].rate, 440, [880]) > 40.0
    assert tone_snr_db(heard_by_a, rec["a"].rate, 880, [440]) > 40.0
    floor = noise_floor_db(heard_by_a, rec["a"].rate, [440, 880])
    assert tone_level_db(heard_by_a, rec["a"].rate, 440) < floor + 6.0
    assert longest_gap_ms(heard_by_a, rec["a"].rate) < 40.0

    a_call.send_dtmf("15#*")
    b_call.wait_dtmf("15#*")
    phones.run_for(0.2)
    assert b_call.dtmf_digits == "15#*"
    assert [d.duration_ms for d in b_call.dtmf] == [100] * 4


@pytest.mark.integration
@pytest.mark.parametrize("who_hangs_up", ["caller", "callee"])
def test_hangup_from_either_side_is_observed(
    phones: PhoneBook, tones: dict[int, Path], who_hangs_up: str
) -> None:
    _, _, a_call, b_call = _connected_pair(phones, tones)
    ending, other = (a_call, b_call) if who_hangs_up == "caller" else (b_call, a_call)
    ending.hangup()
    other.wait_disconnected()
    ending.wait_disconnected()
    assert other.state is CallState.DISCONNECTED
    assert not other.phone.active_calls


@pytest.mark.integration
def test_busy_callee_gives_486_to_the_caller(phones: PhoneBook) -> None:
    a = phones.create("a")
    b = phones.create("b", answer_code=486)
    call = a.call(b.uri)
    call.wait_disconnected()
    assert call.last_status == 486
    assert b.incoming[-1].state is CallState.DISCONNECTED


@pytest.mark.integration
def test_unanswered_call_rings_and_can_be_cancelled(phones: PhoneBook) -> None:
    a = phones.create("a")
    b = phones.create("b", answer_code=None)
    call = a.call(b.uri)
    call.wait_state(CallState.EARLY)
    assert call.last_status == 180
    ringing = b.wait_incoming()
    phones.run_for(0.3)
    assert ringing.state is CallState.EARLY
    call.hangup()  # CANCEL (RFC 3261 section 9)
    call.wait_disconnected()
    ringing.wait_disconnected()
    assert call.last_status == 487


@pytest.mark.integration
def test_delayed_answer_after_ringing(phones: PhoneBook) -> None:
    a = phones.create("a")
    b = phones.create("b", ring_s=0.5)
    call = a.call(b.uri)
    call.wait_state(CallState.EARLY)
    call.wait_confirmed(timeout=3.0)
    assert call.status_codes == [180, 200]


@pytest.mark.integration
def test_hold_then_unhold_keeps_audio_flowing(phones: PhoneBook, tones: dict[int, Path]) -> None:
    _, _, a_call, b_call = _connected_pair(phones, tones)
    a_call.hold()
    b_call.wait_media(MediaState.REMOTE_HOLD)
    held = _record(phones, 1.0, b=b_call)["b"]
    assert has_tone(held.between(SETTLE_S), held.rate, 440, 30.0)  # sendonly still sends

    a_call.unhold()
    b_call.wait_media(MediaState.ACTIVE)
    rec = _record(phones, 1.5, a=a_call, b=b_call)
    for name, freq, other in (("a", 880, 440), ("b", 440, 880)):
        samples = rec[name].between(SETTLE_S)
        assert tone_snr_db(samples, rec[name].rate, freq, [other]) > 40.0
        assert longest_gap_ms(samples, rec[name].rate) < 40.0


@pytest.mark.integration
def test_requests_go_to_the_phone_whose_port_is_in_the_request_uri(
    phones: PhoneBook, sip_endpoint: SipEndpoint
) -> None:
    strays_before = len(sip_endpoint.stray_requests)  # earlier tests' leftovers are theirs
    a = phones.create("a")
    b = phones.create("b")
    c = phones.create("c")
    call = a.call(f"sip:somebody-else@127.0.0.1:{c.sip_port}")
    call.wait_confirmed()
    assert len(c.incoming) == 1
    assert not b.incoming
    assert sip_endpoint.stray_requests[strays_before:] == []


@pytest.mark.integration
def test_tcp_phones_call_and_hang_up(phones: PhoneBook, tones: dict[int, Path]) -> None:
    _, _, a_call, b_call = _connected_pair(phones, tones, Transport.TCP)
    heard = _record(phones, 1.0, b=b_call)["b"]
    assert has_tone(heard.between(SETTLE_S), heard.rate, 440, 40.0)
    b_call.hangup()
    a_call.wait_disconnected()


@pytest.mark.integration
def test_a_callback_on_a_foreign_thread_fails_the_test(sip_endpoint: SipEndpoint) -> None:
    def foreign() -> None:
        with sip_endpoint.callback("onProbe"):
            pass

    worker = threading.Thread(target=foreign, name="not-the-test-thread")
    worker.start()
    worker.join()
    with pytest.raises(CallbackError, match="onProbe ran on thread not-the-test-thread"):
        sip_endpoint.pump()


@pytest.mark.integration
def test_a_raising_callback_fails_the_test(sip_endpoint: SipEndpoint) -> None:
    with sip_endpoint.callback("onProbe"):
        raise ValueError("boom")
    with pytest.raises(CallbackError, match=r"onProbe raised ValueError\('boom'\)"):
        sip_endpoint.pump()


# -- registration against a digest registrar served from the test thread -------------------

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')
_ROUTING_HEADERS = ("via", "from", "to", "call-id", "cseq")


class DigestRegistrar:
    """Answers REGISTER over UDP: a digest challenge per algorithm offered, then 200 for a
    valid response (qop=auth, RFC 7616 section 3.4.1) and 401 again for a wrong one."""

    def __init__(self, endpoint: SipEndpoint, password: str, algorithms: tuple[str, ...]) -> None:
        self.password = password
        self.algorithms = algorithms
        self.realm = "callwarden-test"
        self.nonce = "6a1e0c2d"
        self.used: list[str] = []
        self.expires: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.setblocking(False)
        self.hostport = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self._endpoint = endpoint
        endpoint.pollers.append(self.poll)

    def close(self) -> None:
        self._endpoint.pollers.remove(self.poll)
        self._sock.close()

    def poll(self) -> None:
        while True:
            try:
                data, addr = self._sock.recvfrom(65535)
            except BlockingIOError:
                return
            self._sock.sendto(self._answer(data.decode()), addr)

    def _answer(self, request: str) -> bytes:
        lines = request.split("\r\n\r\n", 1)[0].split("\r\n")
        method, _uri, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        echo = [f"{line}" for line in lines[1:] if line.split(":")[0].lower() in _ROUTING_HEADERS]
        self.expires.append(headers.get("expires", ""))
        authorization = headers.get("authorization")
        if authorization is not None and self._valid(method, authorization):
            extra = [f"Contact: {headers['contact']};expires={headers.get('expires', '300')}"]
            return self._response("200 OK", echo + extra)
        challenges = [
            f'WWW-Authenticate: Digest realm="{self.realm}", nonce="{self.nonce}", '
            f'algorithm={algorithm}, qop="auth"'
            for algorithm in self.algorithms
        ]
        return self._response("401 Unauthorized", echo + challenges)

    def _valid(self, method: str, authorization: str) -> bool:
        params: dict[str, str] = {m[0]: m[1] or m[2] for m in _PARAM.findall(authorization)}
        algorithm = params.get("algorithm", "MD5")
        self.used.append(algorithm)
        digest = _HASHES[algorithm]

        def h(text: str) -> str:
            return digest(text.encode()).hexdigest()

        ha1 = h(f"{params['username']}:{self.realm}:{self.password}")
        ha2 = h(f"{method}:{params['uri']}")
        fields = (ha1, params["nonce"], params["nc"], params["cnonce"], params["qop"], ha2)
        return h(":".join(fields)) == params["response"]

    @staticmethod
    def _response(status: str, headers: list[str]) -> bytes:
        return "\r\n".join([f"SIP/2.0 {status}", *headers, "Content-Length: 0", "", ""]).encode()


@pytest.fixture
def registrar(
    sip_endpoint: SipEndpoint, request: pytest.FixtureRequest
) -> Iterator[DigestRegistrar]:
    algorithms = getattr(request, "param", ("SHA-256", "MD5"))
    server = DigestRegistrar(sip_endpoint, "s3cret", algorithms)
    yield server
    server.close()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("registrar", "expected"),
    [(("SHA-256", "MD5"), "SHA-256"), (("MD5",), "MD5")],
    indirect=["registrar"],
    ids=["sha256-first", "md5-only"],
)
def test_register_answers_the_digest_challenge(
    phones: PhoneBook, registrar: DigestRegistrar, expected: str
) -> None:
    alice = phones.create("alice", password="s3cret", registrar=registrar.hostport)
    assert alice.register() == 200
    assert alice.registered
    assert registrar.used == [expected]
    assert alice.unregister() == 200
    assert registrar.expires[-1] == "0"


@pytest.mark.integration
def test_register_with_a_wrong_password_fails(
    phones: PhoneBook, registrar: DigestRegistrar
) -> None:
    mallory = phones.create("alice", password="guess", registrar=registrar.hostport)
    assert mallory.register() == 401
    assert not mallory.registered
