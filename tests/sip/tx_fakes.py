"""Test doubles for the transaction and dialog tests: a recording wire and a recording TU.

They are fakes (working in-memory implementations), not mocks: the wire keeps what was sent and
when, the TU keeps what it was told, and tests assert on those outcomes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callwarden.sip.addressing import Destination, Source, TransportName
from callwarden.sip.client_transaction import InviteClientTransaction, NonInviteClientTransaction
from callwarden.sip.clock import FakeClock
from callwarden.sip.headers import Via
from callwarden.sip.message import (
    Headers,
    SipMessage,
    SipRequest,
    SipResponse,
    make_response,
    parse_message,
)
from callwarden.sip.server_transaction import ServerTransaction
from callwarden.sip.transaction import InviteServerTransaction, LayerLimits, TransactionLayer
from callwarden.sip.tx_base import SendErrorCallback, TimerSettings
from callwarden.sip.uri import SipUri

LOCAL_HOST = "192.0.2.1"
PHONE_HOST = "198.51.100.7"


@dataclass
class Sent:
    time: float
    data: bytes
    destination: Destination

    @property
    def message(self) -> SipMessage:
        return parse_message(self.data)

    @property
    def request(self) -> SipRequest:
        message = self.message
        assert isinstance(message, SipRequest)
        return message

    @property
    def response(self) -> SipResponse:
        message = self.message
        assert isinstance(message, SipResponse)
        return message


class FakeWire:
    """A MessageSender that records every send; ``fail_sends`` makes sends fail (later)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[Sent] = []
        self.fail_sends = False

    def send_bytes(
        self, data: bytes, destination: Destination, on_error: SendErrorCallback | None = None
    ) -> None:
        self.sent.append(Sent(self.clock.now(), data, destination))
        if self.fail_sends and on_error is not None:
            self.clock.call_later(0, on_error, ConnectionRefusedError("refused"))

    def make_via(self, branch: str, transport: TransportName = "UDP") -> Via:
        return Via(transport, LOCAL_HOST, 5060, (("branch", branch), ("rport", None)))

    def times(self, first_line: str | None = None) -> list[float]:
        """Send times, optionally only of messages whose first line starts with ``first_line``."""
        return [
            sent.time
            for sent in self.sent
            if first_line is None or sent.data.startswith(first_line.encode())
        ]

    def first_lines(self) -> list[str]:
        return [sent.data.split(b"\r\n", 1)[0].decode() for sent in self.sent]


@dataclass
class RecordingUser:
    """A TransactionUser that records what it is told; ``answer`` may respond at once."""

    answer: Callable[[SipRequest, ServerTransaction], None] | None = None
    requests: list[tuple[SipRequest, ServerTransaction]] = field(default_factory=list)
    acks: list[tuple[SipRequest, Source]] = field(default_factory=list)
    cancels: list[InviteServerTransaction] = field(default_factory=list)

    def on_request(self, request: SipRequest, server_tx: ServerTransaction) -> None:
        self.requests.append((request, server_tx))
        if self.answer is not None:
            self.answer(request, server_tx)

    def on_ack(self, request: SipRequest, source: Source) -> None:
        self.acks.append((request, source))

    def on_cancel(self, server_tx: InviteServerTransaction) -> None:
        self.cancels.append(server_tx)


UDP_PEER = Destination("UDP", "203.0.113.5", 5060)
TCP_PEER = Destination("TCP", "203.0.113.5", 5060)
PEER_SOURCE = Source("UDP", "203.0.113.5", 5060, "192.0.2.1", 5060)


class Stack:
    """One transaction layer on a fake clock and wire, with a recording TU."""

    def __init__(self, timers: TimerSettings | None = None, limits: LayerLimits | None = None):
        self.clock = FakeClock()
        self.wire = FakeWire(self.clock)
        self.user = RecordingUser()
        self.layer = TransactionLayer(
            self.wire, self.clock, self.user, timers=timers or TimerSettings(), limits=limits
        )
        self.responses: list[SipResponse] = []

    def send(
        self, method: str = "INVITE", destination: Destination = UDP_PEER
    ) -> InviteClientTransaction | NonInviteClientTransaction:
        return self.layer.send_request(outgoing(method), destination, self.responses.append)

    def reply(self, status: int, *, index: int = 0, to_tag: str | None = "peer1") -> SipResponse:
        """The peer's response to the request we sent ``index``-th; delivered to the layer."""
        sent = self.wire.sent[index].request
        response = make_response(sent, status, to_tag=to_tag if status > 100 else None)
        self.layer.on_message(response, PEER_SOURCE)
        return response

    def receive(self, message: SipRequest, source: Source | None = None) -> None:
        self.layer.on_message(message, source or udp_source())


def udp_source(host: str = PHONE_HOST, port: int = 5062) -> Source:
    return Source("UDP", host, port, LOCAL_HOST, 5060)


def tcp_source(host: str = PHONE_HOST, port: int = 40000, connection_id: int = 7) -> Source:
    return Source("TCP", host, port, LOCAL_HOST, 5060, connection_id)


def request_bytes(
    method: str = "INVITE",
    *,
    branch: str = "z9hG4bKnashds8",
    via_host: str = PHONE_HOST,
    via_port: int = 5062,
    transport: str = "UDP",
    cseq: int = 1,
    cseq_method: str | None = None,
    to_tag: str | None = None,
    from_tag: str = "1928301774",
    call_id: str = "a84b4c76e66710@pc33.example.com",
    extra: str = "",
    body: bytes = b"",
) -> bytes:
    """A well-formed request from the phone at ``via_host`` (RFC 3261 24.2 style)."""
    branch_param = f";branch={branch}" if branch else ""
    to_tag_param = f";tag={to_tag}" if to_tag else ""
    head = (
        f"{method} sip:bob@{LOCAL_HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {via_host}:{via_port}{branch_param};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"To: Bob <sip:bob@example.com>{to_tag_param}\r\n"
        f"From: Alice <sip:alice@example.com>;tag={from_tag}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        f"Contact: <sip:alice@{via_host}:{via_port}>\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def request(method: str = "INVITE", **kwargs: Any) -> SipRequest:
    message = parse_message(request_bytes(method, **kwargs))
    assert isinstance(message, SipRequest)
    return message


def outgoing(method: str = "INVITE", *, cseq: int = 1) -> SipRequest:
    """A request this element sends (no Via: the layer adds one)."""
    headers = Headers(
        [
            ("Max-Forwards", "70"),
            ("To", "<sip:carol@example.net>"),
            ("From", f"<sip:b2bua@{LOCAL_HOST}>;tag=b2b1"),
            ("Call-ID", "out-1@192.0.2.1"),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:b2bua@{LOCAL_HOST}>"),
        ]
    )
    return SipRequest(method, SipUri.parse("sip:carol@203.0.113.5"), headers)
