"""Attacks on a running node over loopback, each from its own address (127.0.0.x): a scanner,
password guessing against a real phone's account, an INVITE flood, garbage, unauthenticated
methods, guessed dialogs, oversized header sections and too many calls for one user.

The node runs with no trusted network (not even its own loopback) so that every attacker
address is judged; the real phone (pjsua2) is on 127.0.0.1 and is never locked out.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator

import pytest
from node import LOOPBACK, Node, options_probe, start_node
from phones import PhoneBook

from callwarden.sip.digest import answer_challenge

PROVISIONING = """
roles:
  - {name: operator, outbound_patterns: ["0[1-9]XXXXXXXX", "8XXX", "7XXX"]}
teams: [{name: support}]
users:
  - {username: alice, role: operator, team: support, extension: "1001",
     sip_password: alice-sip-secret-1}
  - {username: bob, role: operator, team: support, extension: "1002",
     sip_password: bob-sip-secret-22}
  - {username: carol, role: operator, team: support, extension: "1003",
     sip_password: carol-sip-secret-3}
trunks:
  - name: carrier
    host: 127.0.0.250
    port: 5999
    outbound_patterns: ["0XXXXXXXXX"]
  - name: challenging
    host: 127.0.0.251
    port: 5999
    username: callwarden-out
    password: trunk-secret-1
    outbound_patterns: ["8XXX"]
  - name: realmed
    host: 127.0.0.252
    port: 5999
    username: callwarden-realmed
    password: trunk-secret-2
    outbound_patterns: ["7XXX"]
"""

NODE_ENV = {
    "CALLWARDEN_SIP_TRUSTED_NETWORKS": "",
    "CALLWARDEN_SIP_BAN_THRESHOLD": "20",
    "CALLWARDEN_SIP_REQUESTS_PER_SECOND": "20",
    "CALLWARDEN_SIP_REQUEST_BURST": "50",
    "CALLWARDEN_MAX_CALLS_PER_USER": "2",
    "CALLWARDEN_TRUNK_REALMS": "realmed:sip.carrier.example",
}
OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
RECEIVE_S = 2.0
SILENCE_S = 0.7


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    running = start_node(
        tmp_path_factory.mktemp("attacks"),
        PROVISIONING,
        rtp_ports=(37000, 37099),
        extra_env=NODE_ENV,
    )
    yield running
    assert running.stop() == 0, running.log()


class Client:
    """A raw SIP client on its own loopback address (UDP)."""

    def __init__(self, node: Node, host: str) -> None:
        self.node = node
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = int(self.sock.getsockname()[1])
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def request(
        self,
        method: str,
        uri: str,
        *,
        user: str = "alice",
        to_user: str | None = None,
        extra: tuple[str, ...] = (),
        to_tag: str | None = None,
        call_id: str | None = None,
        body: str = "",
    ) -> bytes:
        self.cseq += 1
        to = f"<sip:{to_user or user}@{LOOPBACK}>" + (f";tag={to_tag}" if to_tag else "")
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{LOOPBACK}>;tag={secrets.token_hex(4)}",
            f"To: {to}",
            f"Call-ID: {call_id or secrets.token_hex(8)}@{self.host}",
            f"CSeq: {self.cseq} {method}",
            f"Contact: <sip:{user}@{self.host}:{self.port}>",
            *extra,
            *(("Content-Type: application/sdp",) if body else ()),
            f"Content-Length: {len(body)}",
            "",
            body,
        ]
        return "\r\n".join(lines).encode()

    def send(self, data: bytes, *, wait: float = RECEIVE_S) -> bytes | None:
        """Send; the final response to this request, or None (see `final_for`)."""
        self.sock.sendto(data, (LOOPBACK, self.node.sip_port))
        return self.final_for(data, wait=wait)

    def final_for(self, data: bytes, *, wait: float = RECEIVE_S) -> bytes | None:
        """The final response to the request `data` (provisional ones and retransmissions of
        earlier answers skipped; a non-2xx to an INVITE is ACKed), or None."""
        cseq = header(data, "CSeq")
        deadline = time.monotonic() + wait
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                answer = self.sock.recv(65535)
            except TimeoutError:
                return None
            if header(answer, "CSeq") != cseq or answer.startswith(b"SIP/2.0 1"):
                continue
            if cseq[0].endswith("INVITE") and not answer.startswith(b"SIP/2.0 2"):
                self.sock.sendto(ack_for(data, answer), (LOOPBACK, self.node.sip_port))
            return answer
        return None

    def status(self, data: bytes, *, wait: float = RECEIVE_S) -> int | None:
        answer = self.send(data, wait=wait)
        return None if answer is None else int(answer.split(b" ", 2)[1])


@pytest.fixture
def clients(node: Node) -> Iterator[Callable[[str], Client]]:
    """`clients("127.0.0.5")`: a client on that address, closed after the test."""
    made: list[Client] = []

    def make(host: str) -> Client:
        made.append(Client(node, host))
        return made[-1]

    yield make
    for client in made:
        client.close()


def ack_for(invite: bytes, answer: bytes) -> bytes:
    """The ACK of a non-2xx answer to `invite` (RFC 3261 17.1.1.3): same Via branch, From,
    Call-ID, the answer's To, CSeq method ACK."""
    lines = invite.decode().split("\r\n")
    number = header(invite, "CSeq")[0].split()[0]
    kept = []
    for line in lines[1:]:
        name = line.split(":", 1)[0].lower()
        if name == "to":
            line = "To: " + header(answer, "To")[0]
        elif name == "cseq":
            line = f"CSeq: {number} ACK"
        elif name in ("contact", "proxy-authorization"):
            continue
        kept.append(line)
    uri = lines[0].split()[1]
    return "\r\n".join([f"ACK {uri} SIP/2.0", *kept]).encode()


def registrar_uri(node: Node) -> str:
    return f"sip:{LOOPBACK}:{node.sip_port}"


def header(answer: bytes, name: str) -> list[str]:
    prefix = name.lower().encode() + b":"
    return [
        line.split(b":", 1)[1].strip().decode()
        for line in answer.split(b"\r\n")
        if line.lower().startswith(prefix)
    ]


def challenge_answer(
    client: Client, method: str, uri: str, user: str, password: str, *, body: str = ""
) -> bytes | None:
    """The request, challenged, then again with credentials for `password` (None when the
    challenge did not come: the address is banned)."""
    first = client.send(client.request(method, uri, user=user, body=body))
    if first is None:
        return None
    name = "WWW-Authenticate" if method == "REGISTER" else "Proxy-Authenticate"
    challenge = header(first, name)[0]
    answer = answer_challenge(challenge, method, uri, user, password, cnonce="0badc0de")
    auth = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
    return client.request(method, uri, user=user, extra=(f"{auth}: {answer}",), body=body)


def wait_for_log(node: Node, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = node.log()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the node's log:\n{node.log()[-3000:]}")


def wait_for_audit(node: Node, action: str, object_id: str) -> tuple[str, str]:
    """The (actor kind, outcome) of the audit entry `action` about `object_id`, once written."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        with sqlite3.connect(node.data_dir / "callwarden.db") as db:
            row = db.execute(
                "SELECT actor_kind, outcome FROM audit_log WHERE action = ? AND object_id = ?",
                (action, object_id),
            ).fetchone()
        if row is not None:
            return str(row[0]), str(row[1])
        time.sleep(0.05)
    raise AssertionError(f"no audit entry {action} for {object_id}")


@pytest.mark.integration
def test_a_scanner_gets_no_answer_and_is_banned(
    node: Node, clients: Callable[[str], Client]
) -> None:
    scanner = clients("127.0.0.5")
    probe = scanner.request("OPTIONS", registrar_uri(node), extra=("User-Agent: friendly-scanner",))
    assert scanner.status(probe, wait=SILENCE_S) is None
    assert scanner.status(probe, wait=SILENCE_S) is None
    wait_for_log(node, "SIP source 127.0.0.5 banned")
    assert wait_for_audit(node, "sip.source.banned", "127.0.0.5") == ("sip", "denied")
    # banned: even a plain OPTIONS is dropped unread; another address is answered
    assert scanner.status(scanner.request("OPTIONS", registrar_uri(node)), wait=SILENCE_S) is None
    assert options_probe(node.sip_port) == "SIP/2.0 200 OK"


@pytest.mark.integration
def test_password_guessing_is_banned_and_the_real_phone_still_registers(
    node: Node, clients: Callable[[str], Client], phones: PhoneBook
) -> None:
    attacker = clients("127.0.0.2")
    uri = registrar_uri(node)
    statuses: list[int | None] = []
    for n in range(30):
        guess = challenge_answer(attacker, "REGISTER", uri, "alice", f"guess{n}")
        statuses.append(None if guess is None else attacker.status(guess))
    # 401 until the per-account throttle refuses (403, still an offence), then silence once
    # the address is banned (20 offences: the challenges are not offences)
    assert statuses[:4] == [401] * 4
    assert statuses[4] == 403
    assert statuses[-1] is None
    wait_for_log(node, "SIP source 127.0.0.2 banned")
    alice = phones.create("alice", password="alice-sip-secret-1", registrar=node.registrar)
    assert alice.register() == 200


@pytest.mark.integration
def test_an_invite_flood_is_banned(node: Node, clients: Callable[[str], Client]) -> None:
    flooder = clients("127.0.0.3")
    uri = f"sip:1001@{LOOPBACK}:{node.sip_port}"
    for _ in range(400):
        flooder.sock.sendto(flooder.request("INVITE", uri), (LOOPBACK, node.sip_port))
    log = wait_for_log(node, "SIP source 127.0.0.3 banned")
    assert "(rate)" in log
    assert flooder.status(flooder.request("OPTIONS", uri), wait=SILENCE_S) is None
    assert options_probe(node.sip_port) == "SIP/2.0 200 OK"


@pytest.mark.integration
def test_garbage_is_banned(node: Node, clients: Callable[[str], Client]) -> None:
    sender = clients("127.0.0.4")
    for n in range(25):
        sender.sock.sendto(b"\x16\x03\x01 garbage %d\r\n\r\n" % n, (LOOPBACK, node.sip_port))
    log = wait_for_log(node, "SIP source 127.0.0.4 banned")
    assert "(malformed)" in log


@pytest.mark.integration
@pytest.mark.parametrize("method", ["MESSAGE", "SUBSCRIBE", "NOTIFY", "REFER", "INFO", "PUBLISH"])
def test_unauthenticated_methods_are_refused(
    node: Node, clients: Callable[[str], Client], method: str
) -> None:
    client = clients("127.0.0.6")
    uri = f"sip:1001@{LOOPBACK}:{node.sip_port}"
    answer = client.send(client.request(method, uri))
    assert answer is not None and answer.startswith(b"SIP/2.0 405 ")
    allowed = {m.strip() for value in header(answer, "Allow") for m in value.split(",")}
    assert allowed == {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER"}
    # the same with a guessed dialog: refused (501) or no such dialog (481), never relayed
    in_dialog = client.status(client.request(method, uri, to_tag="guessed1"))
    assert in_dialog in (481, 501)


@pytest.mark.integration
@pytest.mark.parametrize("method", ["BYE", "INVITE", "INFO", "UPDATE"])
def test_in_dialog_requests_with_guessed_ids_get_481(
    node: Node, clients: Callable[[str], Client], method: str
) -> None:
    client = clients("127.0.0.7")
    uri = f"sip:1001@{LOOPBACK}:{node.sip_port}"
    assert client.status(client.request(method, uri, to_tag="f00d", call_id="guess")) == 481


@pytest.mark.integration
@pytest.mark.parametrize("count", [300, 1000])
def test_too_many_header_fields_get_513(
    node: Node, clients: Callable[[str], Client], count: int
) -> None:
    client = clients("127.0.0.8")
    vias = tuple(
        f"Via: SIP/2.0/UDP 192.0.2.{n % 250}:5060;branch=z9hG4bKx{n}" for n in range(count)
    )
    data = client.request("OPTIONS", registrar_uri(node), extra=vias)
    assert len(data) < 65_000  # one datagram, under the 64 KB header limit
    answer = client.sock
    answer.sendto(data, (LOOPBACK, node.sip_port))
    answer.settimeout(RECEIVE_S)
    assert answer.recv(65535).startswith(b"SIP/2.0 513 ")
    assert options_probe(node.sip_port) == "SIP/2.0 200 OK"


@pytest.fixture
def silent_carrier() -> Iterator[socket.socket]:
    """The trunk's address, receiving the node's INVITEs and never answering."""
    with _carrier_socket("127.0.0.250") as carrier:
        yield carrier


@contextlib.contextmanager
def _carrier_socket(host: str) -> Iterator[socket.socket]:
    """A UDP socket at a provisioned trunk's address (port 5999)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as carrier:
        carrier.bind((host, 5999))
        yield carrier


def _answer_to(request: bytes, status: str, *extra: str, tag: str = "carrier1") -> bytes:
    """A response to `request` (its Via, From, To, Call-ID and CSeq) with a To tag."""
    lines = [
        f"SIP/2.0 {status}",
        *(f"Via: {value}" for value in header(request, "Via")),
        f"From: {header(request, 'From')[0]}",
        f"To: {header(request, 'To')[0]};tag={tag}",
        f"Call-ID: {header(request, 'Call-ID')[0]}",
        f"CSeq: {header(request, 'CSeq')[0]}",
        *extra,
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


@pytest.mark.integration
def test_a_user_cannot_start_more_than_the_allowed_concurrent_calls(
    node: Node, clients: Callable[[str], Client], silent_carrier: socket.socket
) -> None:
    """bob's password is known (a stolen phone): his third parallel call out is refused at
    once, while the first two are still trying the carrier."""
    client = clients("127.0.0.9")
    finals = []
    for n in range(3):
        uri = f"sip:020123456{n}@{LOOPBACK}:{node.sip_port}"
        invite = challenge_answer(client, "INVITE", uri, "bob", "bob-sip-secret-22", body=OFFER)
        assert invite is not None
        answer = client.send(invite, wait=1.0)
        finals.append(None if answer is None else answer.split(b"\r\n", 1)[0].decode())
    assert finals == [None, None, "SIP/2.0 403 Too Many Calls"]
    silent_carrier.settimeout(RECEIVE_S)
    assert silent_carrier.recv(65535).startswith(b"INVITE sip:020123456")


def _challenge_every_invite(
    carrier: socket.socket, count: int, realm: str = "carrier"
) -> list[bytes]:
    """Play a carrier that answers every INVITE with 401 and a fresh nonce (CVE-2020-28242);
    the INVITEs received (ACKs and retransmissions aside) within the wait."""
    invites: list[bytes] = []
    seen: set[str] = set()
    carrier.settimeout(RECEIVE_S)
    while True:
        try:
            data, peer = carrier.recvfrom(65535)
        except TimeoutError:
            return invites
        if not data.startswith(b"INVITE "):
            continue
        branch = header(data, "Via")[0]
        if branch in seen:
            continue
        seen.add(branch)
        invites.append(data)
        challenge = (
            f'WWW-Authenticate: Digest realm="{realm}", nonce="{secrets.token_hex(16)}", '
            'algorithm=MD5, qop="auth"'
        )
        answer = _answer_to(data, "401 Unauthorized", challenge, tag=f"carrier{len(invites)}")
        carrier.sendto(answer, peer)
        if len(invites) > count:
            return invites


def _call_out(client: Client, node: Node, number: str) -> bytes:
    """alice's authenticated INVITE to `number` (through a trunk), sent; the INVITE."""
    uri = f"sip:{number}@{LOOPBACK}:{node.sip_port}"
    invite = challenge_answer(client, "INVITE", uri, "alice", "alice-sip-secret-1", body=OFFER)
    assert invite is not None
    client.sock.sendto(invite, (LOOPBACK, node.sip_port))
    return invite


@pytest.fixture
def challenging_carrier() -> Iterator[socket.socket]:
    with _carrier_socket("127.0.0.251") as carrier:
        yield carrier


@pytest.mark.integration
def test_a_carrier_challenging_every_invite_gets_one_authenticated_retry(
    node: Node, clients: Callable[[str], Client], challenging_carrier: socket.socket
) -> None:
    """T12: at most one authenticated retry per call; the caller then gets a clear failure."""
    client = clients("127.0.0.10")
    invite = _call_out(client, node, "8123")
    invites = _challenge_every_invite(challenging_carrier, count=5)
    assert len(invites) == 2, [i.split(b"\r\n", 1)[0] for i in invites]
    assert header(invites[0], "Authorization") == []
    [credentials] = header(invites[1], "Authorization")
    assert 'username="callwarden-out"' in credentials
    final = client.final_for(invite)
    assert final is not None and final.startswith(b"SIP/2.0 503 "), final


@pytest.fixture
def realmed_carrier() -> Iterator[socket.socket]:
    with _carrier_socket("127.0.0.252") as carrier:
        yield carrier


@pytest.mark.integration
def test_a_trunk_challenge_for_another_realm_is_never_answered(
    node: Node, clients: Callable[[str], Client], realmed_carrier: socket.socket
) -> None:
    """T13: the trunk `realmed` is configured with realm sip.carrier.example; its challenge
    for another realm gets no credentials and fails the call (503, a log line), its challenge
    for its own realm gets the one authenticated retry."""
    client = clients("127.0.0.13")
    for n, (realm, expected_invites) in enumerate(
        (("evil.example", 1), ("sip.carrier.example", 2))
    ):
        invite = _call_out(client, node, f"712{n}")
        invites = _challenge_every_invite(realmed_carrier, count=5, realm=realm)
        assert len(invites) == expected_invites, [i.split(b"\r\n", 1)[0] for i in invites]
        authorizations = [header(sent, "Authorization") for sent in invites]
        if expected_invites == 1:
            assert authorizations == [[]]
        else:
            assert authorizations[0] == []
            assert 'realm="sip.carrier.example"' in authorizations[1][0]
            assert 'username="callwarden-realmed"' in authorizations[1][0]
        final = client.final_for(invite)
        assert final is not None and final.startswith(b"SIP/2.0 503 "), final
    assert (
        "realms ['evil.example'] offered, the trunk's realm is 'sip.carrier.example'" in node.log()
    )


@pytest.mark.integration
def test_a_challenge_from_an_address_that_is_not_the_trunk_is_dropped(
    node: Node, clients: Callable[[str], Client], challenging_carrier: socket.socket
) -> None:
    """T13: a third party (127.0.0.253) that sees our INVITE to the trunk and challenges it
    gets nothing: no credentials go out, and the trunk's own answer still ends the call."""
    client = clients("127.0.0.14")
    invite = _call_out(client, node, "8124")
    challenging_carrier.settimeout(RECEIVE_S)
    offered = challenging_carrier.recv(65535)
    while not offered.startswith(b"INVITE "):
        offered = challenging_carrier.recv(65535)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.253", 0))
        realm = 'WWW-Authenticate: Digest realm="carrier", nonce="stolen", qop="auth"'
        stranger.sendto(_answer_to(offered, "401 Unauthorized", realm), (LOOPBACK, node.sip_port))
        stranger.settimeout(SILENCE_S)
        with contextlib.suppress(TimeoutError):
            assert b"Authorization" not in stranger.recv(65535)
    challenging_carrier.settimeout(SILENCE_S)
    later: list[bytes] = []
    with contextlib.suppress(TimeoutError):
        while True:
            later.append(challenging_carrier.recv(65535))
    assert all(b"Authorization" not in message for message in later), later
    challenging_carrier.sendto(_answer_to(offered, "486 Busy Here"), (LOOPBACK, node.sip_port))
    final = client.final_for(invite)
    assert final is not None and final.startswith(b"SIP/2.0 486 "), final
    assert "came from 127.0.0.253, not from 127.0.0.251 where it was sent" in node.log()


@pytest.mark.integration
def test_a_phone_challenging_our_invite_never_gets_credentials(
    node: Node, clients: Callable[[str], Client]
) -> None:
    """T13 (SIP digest leak): the callee is a registered phone, not a trunk; its 407 to our
    INVITE is never answered with credentials: the caller gets a failure."""
    phone = clients("127.0.0.11")
    register = challenge_answer(
        phone, "REGISTER", registrar_uri(node), "alice", "alice-sip-secret-1"
    )
    assert register is not None and phone.status(register) == 200
    caller = clients("127.0.0.12")
    uri = f"sip:1001@{LOOPBACK}:{node.sip_port}"
    invite = challenge_answer(caller, "INVITE", uri, "carol", "carol-sip-secret-3", body=OFFER)
    assert invite is not None
    caller.sock.sendto(invite, (LOOPBACK, node.sip_port))
    phone.sock.settimeout(RECEIVE_S)
    offered = phone.sock.recv(65535)
    while not offered.startswith(b"INVITE "):
        offered = phone.sock.recv(65535)
    challenge = _answer_to(
        offered,
        "407 Proxy Authentication Required",
        f'Proxy-Authenticate: Digest realm="callwarden", nonce="{secrets.token_hex(16)}"',
        tag="leak1",
    )
    phone.sock.sendto(challenge, (LOOPBACK, node.sip_port))
    phone.sock.settimeout(1.0)
    later: list[bytes] = []
    with contextlib.suppress(TimeoutError):
        while True:
            later.append(phone.sock.recv(65535))
    assert all(b"Authorization" not in message for message in later)
    assert not any(message.startswith(b"INVITE ") and message != offered for message in later)


def _wire_shape(answer: bytes | None) -> tuple[object, ...]:
    """Status line and header names in order, challenge parameters without the nonce value."""
    assert answer is not None
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    lines = head.split("\r\n")
    names = tuple(line.split(":", 1)[0] for line in lines[1:])
    challenges = tuple(
        re.sub(r'nonce="[^"]*"', "nonce=…", line.split(":", 1)[1])
        for line in lines[1:]
        if line.lower().startswith(("www-authenticate:", "proxy-authenticate:"))
    )
    return lines[0], names, challenges


@pytest.mark.integration
def test_unknown_and_known_users_and_extensions_answer_alike_on_the_wire(
    node: Node, clients: Callable[[str], Client]
) -> None:
    """T8, V6.3.8: each probe from its own address (no throttle in play) gets an answer of the
    same shape as its counterpart: REGISTER for a known user with a wrong password and for an
    unknown user; INVITE with credentials of an unknown user and of a known user with a wrong
    password, to a real extension and to a missing one; OPTIONS to either."""
    register = registrar_uri(node)
    answers: list[bytes | None] = []
    shapes: dict[str, list[tuple[object, ...]]] = {"REGISTER": [], "INVITE": [], "OPTIONS": []}
    probes = [
        ("REGISTER", register, "alice", "wrong"),
        ("REGISTER", register, "nobody", "wrong"),
        ("INVITE", f"sip:1002@{LOOPBACK}:{node.sip_port}", "alice", "wrong"),
        ("INVITE", f"sip:1002@{LOOPBACK}:{node.sip_port}", "nobody", "wrong"),
        ("INVITE", f"sip:9999@{LOOPBACK}:{node.sip_port}", "alice", "wrong"),
        ("INVITE", f"sip:9999@{LOOPBACK}:{node.sip_port}", "nobody", "wrong"),
    ]
    for n, (method, uri, user, password) in enumerate(probes):
        client = clients(f"127.0.0.{30 + n}")
        body = OFFER if method == "INVITE" else ""
        request = challenge_answer(client, method, uri, user, password, body=body)
        assert request is not None
        shapes[method].append(_wire_shape(client.send(request)))
    for n, user in enumerate(("1001", "9999", "alice", "nobody")):
        client = clients(f"127.0.0.{40 + n}")
        uri = f"sip:{user}@{LOOPBACK}:{node.sip_port}"
        answers.append(client.send(client.request("OPTIONS", uri, user=user)))
        shapes["OPTIONS"].append(_wire_shape(answers[-1]))
    for method, found in shapes.items():
        assert len(set(found)) == 1, (method, found)
    assert shapes["REGISTER"][0][0] == "SIP/2.0 401 Unauthorized"
    assert shapes["INVITE"][0][0] == "SIP/2.0 407 Proxy Authentication Required"
    assert shapes["OPTIONS"][0][0] == "SIP/2.0 200 OK"
