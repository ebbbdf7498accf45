"""The RFC 4475 torture messages sent to a running node, over UDP and over TCP.

Each message gets the response the RFC asks of a B2BUA that requires authentication, or none
(responses and unusable messages are dropped); afterwards the node still answers OPTIONS.
The files are read from ../shared/testdata/rfc4475 (see its INDEX.md), never copied.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from node import LOOPBACK, Node, options_probe, start_node

from shared_testdata import RFC4475_DIR

CORPUS = RFC4475_DIR

PROVISIONING = """
teams: [{name: support}]
users:
  - {username: alice, role: operator, team: support, extension: "1001",
     sip_password: alice-sip-secret-1}
"""

# The response each message gets; None: no response at all (dropped).
EXPECTED: dict[str, int | None] = {
    # 3.1.1 valid messages: processed like any request (unauthenticated here).
    "wsinv.dat": 481,  # matched the RFC 2543 way (no magic cookie); To tag of no dialog
    "intmeth.dat": 501,  # unknown method
    "esc01.dat": 407,  # INVITE: challenged
    "escnull.dat": 401,  # REGISTER: challenged
    "esc02.dat": 501,  # RE%47IST%45R is not REGISTER
    "lwsdisp.dat": 200,  # OPTIONS
    "longreq.dat": 407,  # no branch: matched the RFC 2543 way, then challenged
    "dblreq.dat": 401,  # the REGISTER; the trailing INVITE-like bytes are ignored
    "semiuri.dat": 200,
    "transports.dat": 200,
    "mpart01.dat": 405,  # MESSAGE is not served
    "unreason.dat": None,  # a response: no transaction, dropped
    "noreason.dat": None,
    # 3.1.2 invalid messages
    "badinv01.dat": 400,
    "clerr.dat": 400,  # UDP; over TCP the node waits for the missing bytes
    "ncl.dat": 400,
    "scalar02.dat": 400,
    "scalarlg.dat": None,
    "quotbal.dat": 400,
    "ltgtruri.dat": 400,
    "lwsruri.dat": 400,
    "lwsstart.dat": 407,  # liberal: extra SP accepted (an INVITE: challenged), never re-emitted
    "trws.dat": 200,  # liberal: trailing SP accepted
    "escruri.dat": 400,
    "baddate.dat": 407,  # the Date does not matter to us: processed
    "regbadct.dat": 400,
    "badaspec.dat": 400,
    "baddn.dat": 400,
    "badvers.dat": 505,
    "mismatch01.dat": 400,
    "mismatch02.dat": 400,
    "bigcode.dat": None,
    # 3.2 transaction layer
    "badbranch.dat": 400,
    # 3.3 application layer
    "insuf.dat": 400,
    "unkscm.dat": 416,
    "novelsc.dat": 416,
    "unksm2.dat": 400,  # the AOR must be a sip or sips URI
    "bext01.dat": 420,
    "invut.dat": 415,
    "regaut01.dat": 401,  # unknown scheme: challenged, never authenticated
    "multi01.dat": 400,
    "mcl01.dat": 400,
    "bcast.dat": None,
    "zeromf.dat": 200,  # OPTIONS with Max-Forwards 0: we are its endpoint
    "cparam01.dat": 401,
    "cparam02.dat": 401,
    "regescrt.dat": 401,
    "sdp01.dat": 406,
    # 3.4 backward compatibility
    "inv2543.dat": 407,  # RFC 2543 transaction matching (UDP; TCP needs Content-Length)
}

# Over TCP a broken Content-Length makes the stream unframeable: 400 (when the message is
# readable) and the connection closed; too short a body is waited for.
TCP_CLOSES = {"ncl.dat", "mcl01.dat", "inv2543.dat"}
TCP_WAITS = {"clerr.dat", "baddn.dat"}  # baddn.dat lacks the empty line ending its header
# inv2543.dat has no Content-Length, which a stream cannot do without (RFC 3261 18.3).
TCP_EXPECTED = {"inv2543.dat": 400}

_VIA = re.compile(
    rb"^(?:via|v)\s*:\s*SIP\s*/\s*2\.0\s*/\s*\w+\s+[^\s;:,]+(?::(\d+))?([^\r\n]*)",
    re.IGNORECASE | re.MULTILINE,
)


def _reply_port(data: bytes) -> int | None:
    """Where a UDP response goes (RFC 3261 18.2.2 with RFC 3581): the top Via's sent-by port
    on the source address, or the source port itself (None) when the Via asks for rport."""
    match = _VIA.search(data)
    if match is None:
        return 5060
    if b";rport" in match.group(2).lower():
        return None
    return int(match.group(1) or 5060)


_CALL_ID = re.compile(rb"^(?:call-id|i)\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def _status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def _receive_response(sock: socket.socket, request: bytes) -> int | None:
    """The status of the first response to `request` (by Call-ID) before the timeout.
    Retransmissions of responses to earlier messages, on the same port, are skipped."""
    wanted = _CALL_ID.search(request)
    while True:
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return None
        if not data:
            return None
        found = _CALL_ID.search(data)
        if wanted is None or (found is not None and found.group(1) == wanted.group(1)):
            return _status(data)


_BRANCH = re.compile(rb";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)


def _transaction_key(data: bytes) -> tuple[bytes, ...]:
    """Roughly the RFC 3261 17.2.3 key: several files share one (same branch, sent-by and
    method), so a node would rightly take the second for a retransmission of the first."""
    via = _VIA.search(data)
    branch = _BRANCH.search(data)
    return (
        data.split(b" ", 1)[0],
        via.group(0)[:80] if via else b"",
        branch.group(1) if branch else b"",
    )


def _node_index(name: str) -> int:
    """Which node of a transport gets `name`: the n-th file with one key goes to node n."""
    key = _transaction_key((CORPUS / name).read_bytes())
    earlier = [other for other in sorted(EXPECTED) if other < name]
    return sum(1 for other in earlier if _transaction_key((CORPUS / other).read_bytes()) == key)


class Nodes:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._nodes: dict[tuple[str, int], Node] = {}

    def get(self, transport: str, index: int) -> Node:
        key = (transport, index)
        if key not in self._nodes:
            first_port = 35000 + 100 * len(self._nodes)
            self._nodes[key] = start_node(
                self._new_dir(f"{transport}{index}"),
                PROVISIONING,
                rtp_ports=(first_port, first_port + 99),
            )
        return self._nodes[key]

    def _new_dir(self, name: str) -> Path:
        directory = self._directory / name
        directory.mkdir()
        return directory

    def stop(self) -> None:
        for node in self._nodes.values():
            assert node.stop() == 0, node.log()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    pool = Nodes(tmp_path_factory.mktemp("rfc4475"))
    yield pool
    pool.stop()


def test_the_corpus_is_complete() -> None:
    assert CORPUS.is_dir(), f"RFC 4475 corpus missing at {CORPUS}"
    assert sorted(path.name for path in CORPUS.glob("*.dat")) == sorted(EXPECTED)


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message_over_udp(nodes: Nodes, name: str) -> None:
    udp_node = nodes.get("udp", _node_index(name))
    data = (CORPUS / name).read_bytes()
    port = _reply_port(data)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port or 0))
        except OSError as error:
            pytest.fail(f"port {port} is needed to receive the response ({error})")
        expected = EXPECTED[name]
        sock.settimeout(2.0 if expected is not None else 0.7)
        sock.sendto(data, (LOOPBACK, udp_node.sip_port))
        received = _receive_response(sock, data)
    assert received == expected
    assert options_probe(udp_node.sip_port) == "SIP/2.0 200 OK"


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message_over_tcp(nodes: Nodes, name: str) -> None:
    tcp_node = nodes.get("tcp", _node_index(name))
    data = (CORPUS / name).read_bytes()
    expected = None if name in TCP_WAITS else TCP_EXPECTED.get(name, EXPECTED[name])
    with socket.create_connection((LOOPBACK, tcp_node.sip_port), timeout=5) as sock:
        sock.settimeout(2.0 if expected is not None else 0.7)
        sock.sendall(data)
        assert _receive_response(sock, data) == expected
        if name in TCP_CLOSES:
            sock.settimeout(2.0)
            assert sock.recv(65535) == b"", "the connection should be closed"
    assert options_probe(tcp_node.sip_port) == "SIP/2.0 200 OK"
