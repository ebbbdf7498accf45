"""CPU cost of the SIP transaction layer per transaction, without sockets.

Each line is the best of several runs of N operations, in process CPU time: what the layer
itself does (matching, state, timers on a FakeClock, serializing what it sends). Messages the
far end would send are built and parsed before timing (parsing is the message layer's cost).
Run: ``.venv/bin/python benchmarks/sip_transactions.py [N]``. On a loaded machine, compare
lines of one run only.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

from callwarden.sip.addressing import Destination, Source, TransportName
from callwarden.sip.clock import FakeClock
from callwarden.sip.headers import Via
from callwarden.sip.message import Headers, SipRequest, SipResponse, make_response, parse_message
from callwarden.sip.server_transaction import InviteServerTransaction, ServerTransaction
from callwarden.sip.transaction import LayerLimits, TransactionLayer
from callwarden.sip.tx_base import SendErrorCallback
from callwarden.sip.uri import SipUri

LOCAL = "192.0.2.1"
PEER = Destination("UDP", "203.0.113.5", 5060)
PEER_SOURCE = Source("UDP", "203.0.113.5", 5060, LOCAL, 5060)
PHONE = Source("UDP", "198.51.100.7", 5062, LOCAL, 5060)
RUNS = 7


class NullWire:
    def send_bytes(
        self, data: bytes, destination: Destination, on_error: SendErrorCallback | None = None
    ) -> None:
        pass

    def make_via(self, branch: str, transport: TransportName = "UDP") -> Via:
        return Via(transport, LOCAL, 5060, (("branch", branch), ("rport", None)))


class ScriptedUser:
    """Answers every request with the responses prepared for it."""

    def __init__(self) -> None:
        self.responses: tuple[SipResponse, ...] = ()

    def on_request(self, request: SipRequest, server_tx: ServerTransaction) -> None:
        for response in self.responses:
            server_tx.respond(response)

    def on_ack(self, request: SipRequest, source: Source) -> None:
        pass

    def on_cancel(self, server_tx: InviteServerTransaction) -> None:
        pass


def incoming(method: str, index: int, *, to_tag: str = "") -> SipRequest:
    tag = f";tag={to_tag}" if to_tag else ""
    data = (
        f"{method} sip:bob@{LOCAL} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK{method}{index};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"To: <sip:bob@example.com>{tag}\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        f"Call-ID: call-{index}@198.51.100.7\r\n"
        f"CSeq: 1 {method}\r\n"
        "Contact: <sip:alice@198.51.100.7:5062>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    return message


def outgoing(method: str) -> SipRequest:
    headers = Headers(
        [
            ("Max-Forwards", "70"),
            ("To", "<sip:carol@example.net>"),
            ("From", f"<sip:b2bua@{LOCAL}>;tag=b1"),
            ("Call-ID", "out-1@192.0.2.1"),
            ("CSeq", f"1 {method}"),
            ("Contact", f"<sip:b2bua@{LOCAL}>"),
        ]
    )
    return SipRequest(method, SipUri.parse("sip:carol@203.0.113.5"), headers)


def best_of(run: Callable[[], float]) -> float:
    return min(run() for _ in range(RUNS))


def server_side(method: str, statuses: tuple[int, ...], count: int) -> float:
    def run() -> float:
        clock, user = FakeClock(), ScriptedUser()
        layer = TransactionLayer(NullWire(), clock, user, limits=LayerLimits(10**9, 10**9))
        work = []
        for index in range(count):
            request = incoming(method, index, to_tag="t" if method != "INVITE" else "")
            responses = tuple(make_response(request, s, to_tag="t") for s in statuses)
            work.append((request, responses))
        gc.collect()
        start = time.process_time()
        for request, responses in work:
            user.responses = responses
            layer.on_message(request, PHONE)
        clock.advance(100)
        return (time.process_time() - start) / count

    return best_of(run)


def client_send(method: str, count: int) -> float:
    def run() -> float:
        clock = FakeClock()
        layer = TransactionLayer(NullWire(), clock, ScriptedUser())
        requests = [outgoing(method) for _ in range(count)]
        gc.collect()
        start = time.process_time()
        for request in requests:
            layer.send_request(request, PEER, _ignore)
        elapsed = time.process_time() - start
        return elapsed / count

    return best_of(run)


def client_receive(method: str, statuses: tuple[int, ...], count: int) -> float:
    def run() -> float:
        clock = FakeClock()
        layer = TransactionLayer(NullWire(), clock, ScriptedUser())
        batches = []
        for _ in range(count):
            tx = layer.send_request(outgoing(method), PEER, _ignore)
            built = [make_response(tx.request, s, to_tag="r") for s in statuses]
            batches.append([parse_message(bytes(response)) for response in built])
        gc.collect()
        start = time.process_time()
        for batch in batches:
            for response in batch:
                layer.on_message(response, PEER_SOURCE)
        clock.advance(100)
        return (time.process_time() - start) / count

    return best_of(run)


def ack_to_user(count: int) -> float:
    def run() -> float:
        layer = TransactionLayer(NullWire(), FakeClock(), ScriptedUser())
        acks = [incoming("ACK", index, to_tag="t") for index in range(count)]
        gc.collect()
        start = time.process_time()
        for ack in acks:
            layer.on_message(ack, PHONE)
        return (time.process_time() - start) / count

    return best_of(run)


def _ignore(response: SipResponse) -> None:
    pass


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rows: list[tuple[str, Callable[[], float]]] = [
        (
            "server INVITE: match, new tx, send 180 + 200, Timer L",
            lambda: server_side("INVITE", (180, 200), count),
        ),
        ("server BYE: match, new tx, send 200, Timer J", lambda: server_side("BYE", (200,), count)),
        (
            "client INVITE: Via + branch, serialize, send, Timers A/B",
            lambda: client_send("INVITE", count),
        ),
        (
            "client INVITE: match 180 + 200, Timer M",
            lambda: client_receive("INVITE", (180, 200), count),
        ),
        (
            "client BYE: Via + branch, serialize, send, Timers E/F",
            lambda: client_send("BYE", count),
        ),
        ("client BYE: match 200, Timer K", lambda: client_receive("BYE", (200,), count)),
        ("ACK for 2xx handed to the TU", lambda: ack_to_user(count)),
    ]
    total = 0.0
    for label, measure in rows:
        seconds = measure()
        total += seconds
        print(f"{label:60s} {seconds * 1e6:7.1f} us")
    print(f"{'one B2BUA call (both legs: INVITE, ACK, BYE)':60s} {total * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
