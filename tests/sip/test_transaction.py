"""Transaction layer tables (RFC 3261 17, RFC 6026) driven by a fake clock and a recording wire."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable

import pytest
from tx_fakes import (
    PEER_SOURCE,
    PHONE_HOST,
    TCP_PEER,
    UDP_PEER,
    Stack,
    outgoing,
    request,
    tcp_source,
    udp_source,
)

from callwarden.sip.addressing import Destination, Source
from callwarden.sip.clock import FakeClock, LoopClock
from callwarden.sip.message import make_response
from callwarden.sip.server_transaction import ServerTransaction
from callwarden.sip.transaction import (
    InviteServerTransaction,
    LayerLimits,
    NonInviteServerTransaction,
)
from callwarden.sip.tx_base import (
    INVITE_CLIENT_TRANSITIONS,
    INVITE_SERVER_TRANSITIONS,
    NON_INVITE_CLIENT_TRANSITIONS,
    NON_INVITE_SERVER_TRANSITIONS,
    IllegalTransitionError,
    InviteClientState,
    InviteServerState,
    NonInviteClientState,
    NonInviteServerState,
    TimerSettings,
    TransactionError,
    TransactionFailure,
    check_transition,
)

# -- clocks -------------------------------------------------------------------------------------


def test_fake_clock_fires_in_due_order_and_skips_cancelled():
    clock = FakeClock(start=100.0)
    fired: list[tuple[str, float]] = []

    def note(name: str) -> None:
        fired.append((name, clock.now()))
        if name == "a":  # scheduled while advancing, due within the step: fires too
            clock.call_later(0.5, note, "nested")

    clock.call_later(2, note, "b")
    clock.call_later(1, note, "a")
    clock.call_later(2, note, "b2")  # same due time: scheduling order
    clock.call_later(1.2, note, "cancelled").cancel()
    clock.call_later(5, note, "later")
    assert clock.pending() == 4
    clock.advance(2)
    assert fired == [("a", 101.0), ("nested", 101.5), ("b", 102.0), ("b2", 102.0)]
    assert clock.now() == 102.0
    assert clock.next_deadline() == 105.0
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


async def test_loop_clock_runs_callbacks_on_the_loop():
    loop = asyncio.get_running_loop()
    clock = LoopClock(loop)
    done = loop.create_future()
    start = clock.now()
    clock.call_later(0.01, done.set_result, "fired")
    clock.call_later(0.001, done.set_result, "cancelled").cancel()
    assert await asyncio.wait_for(done, 2) == "fired"
    assert clock.now() - start >= 0.009


# -- state tables -------------


@pytest.mark.parametrize(
    ("table", "current", "new"),
    [
        (INVITE_CLIENT_TRANSITIONS, InviteClientState.COMPLETED, InviteClientState.PROCEEDING),
        (INVITE_CLIENT_TRANSITIONS, InviteClientState.ACCEPTED, InviteClientState.COMPLETED),
        (INVITE_CLIENT_TRANSITIONS, InviteClientState.TERMINATED, InviteClientState.CALLING),
        (
            NON_INVITE_CLIENT_TRANSITIONS,
            NonInviteClientState.PROCEEDING,
            NonInviteClientState.TRYING,
        ),
        (INVITE_SERVER_TRANSITIONS, InviteServerState.CONFIRMED, InviteServerState.COMPLETED),
        (INVITE_SERVER_TRANSITIONS, InviteServerState.ACCEPTED, InviteServerState.CONFIRMED),
        (
            NON_INVITE_SERVER_TRANSITIONS,
            NonInviteServerState.COMPLETED,
            NonInviteServerState.TRYING,
        ),
    ],
)
def test_illegal_transitions_raise(table, current, new):  # type: ignore[no-untyped-def]
    with pytest.raises(IllegalTransitionError, match=f"{current.name} -> {new.name}"):
        check_transition(table, current, new)


def test_states_carry_rfc_names():
    assert [state.value for state in InviteClientState] == [
        "Calling",
        "Proceeding",
        "Completed",
        "Accepted",
        "Terminated",
    ]
    assert [state.value for state in InviteServerState] == [
        "Proceeding",
        "Completed",
        "Confirmed",
        "Accepted",
        "Terminated",
    ]


def test_timer_settings_reject_nonsense():
    with pytest.raises(ValueError, match="T1"):
        TimerSettings(t1=5.0, t2=4.0)
    assert TimerSettings(t1=0.1).timeout == pytest.approx(6.4)


# -- INVITE client -------------


def test_invite_client_timer_a_doubles_and_timer_b_gives_408():
    stack = Stack()
    tx = stack.send("INVITE")
    stack.clock.advance(40)
    assert stack.wire.times() == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert [r.status for r in stack.responses] == [408]
    assert stack.clock.now() == 40
    assert tx.failure is TransactionFailure.TIMEOUT
    assert tx.state is InviteClientState.TERMINATED
    assert stack.layer.client_count == 0


def test_invite_client_timer_b_fires_exactly_at_64_t1():
    stack = Stack()
    stack.send("INVITE")
    stack.clock.advance(31.999)
    assert stack.responses == []
    stack.clock.advance(0.001)
    assert [r.status for r in stack.responses] == [408]


def test_invite_client_over_tcp_does_not_retransmit():
    stack = Stack()
    stack.send("INVITE", TCP_PEER)
    stack.clock.advance(40)
    assert stack.wire.times() == [0]
    assert [r.status for r in stack.responses] == [408]


def test_invite_client_custom_t1():
    stack = Stack(TimerSettings(t1=0.1, t2=4.0))
    stack.send("INVITE")
    stack.clock.advance(7)
    assert stack.wire.times() == pytest.approx([0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    assert [r.status for r in stack.responses] == [408]


def test_invite_client_provisional_stops_timer_a_and_timer_b():
    stack = Stack()
    tx = stack.send("INVITE")
    stack.clock.advance(0.7)
    stack.reply(180)
    stack.clock.advance(100)
    assert stack.wire.times() == [0, 0.5]
    assert [r.status for r in stack.responses] == [180]
    assert tx.state is InviteClientState.PROCEEDING


def test_invite_client_acknowledges_non_2xx_and_absorbs_retransmissions():
    stack = Stack()
    tx = stack.send("INVITE")
    stack.reply(100)
    stack.reply(486)
    invite = stack.wire.sent[0].request
    ack = stack.wire.sent[1].request
    assert ack.method == "ACK"
    assert ack.uri == invite.uri
    assert str(ack.cseq) == "1 ACK"
    assert ack.call_id == invite.call_id
    assert ack.from_ == invite.from_
    assert ack.to.tag == "peer1"
    assert [str(via) for via in ack.vias] == [str(invite.top_via)]
    assert stack.wire.sent[1].destination == UDP_PEER
    assert tx.state is InviteClientState.COMPLETED
    stack.clock.advance(10)
    stack.reply(486)  # retransmission: ACK again, TU not told twice
    assert stack.wire.first_lines()[2].startswith("ACK ")
    assert [r.status for r in stack.responses] == [100, 486]
    stack.clock.advance(21.999)
    assert tx.state is InviteClientState.COMPLETED
    stack.clock.advance(0.001)  # Timer D: 32 s after the first 486
    assert tx.state is InviteClientState.TERMINATED
    assert stack.layer.client_count == 0


@pytest.mark.parametrize("status", [300, 404, 486, 503, 600])
def test_invite_client_ack_for_every_non_2xx_class(status: int):
    stack = Stack()
    stack.send("INVITE")
    stack.reply(status)
    assert stack.wire.first_lines()[1] == "ACK sip:carol@203.0.113.5 SIP/2.0"
    assert [r.status for r in stack.responses] == [status]


def test_invite_client_over_tcp_terminates_at_once_after_non_2xx():
    stack = Stack()
    tx = stack.send("INVITE", TCP_PEER)
    stack.reply(603)
    assert stack.wire.first_lines()[1].startswith("ACK ")
    assert tx.state is InviteClientState.TERMINATED
    assert stack.layer.client_count == 0


def test_invite_client_2xx_goes_to_accepted_and_every_2xx_reaches_the_tu():
    stack = Stack()
    tx = stack.send("INVITE")
    stack.reply(180)
    stack.reply(200)
    assert tx.state is InviteClientState.ACCEPTED
    stack.clock.advance(1)
    stack.reply(200)  # retransmission: the TU must ACK it again (RFC 6026 7.2)
    stack.reply(200, to_tag="fork2")  # another fork
    assert [r.status for r in stack.responses] == [180, 200, 200, 200]
    assert stack.wire.first_lines() == ["INVITE sip:carol@203.0.113.5 SIP/2.0"]
    stack.clock.advance(31)  # Timer M = 64*T1 from the first 2xx
    assert tx.state is InviteClientState.TERMINATED
    stack.reply(200)
    assert len(stack.responses) == 4
    assert stack.layer.stats.stray_responses == 1


class _UsageLike:
    """A TU that holds its transaction, as the INVITE usage and the B2BUA's calls do."""

    def __init__(self) -> None:
        self.transaction: object = None
        self.statuses: list[int] = []

    def on_response(self, response: object) -> None:
        self.statuses.append(response.status)  # type: ignore[attr-defined]


def _end_by_timer_m(stack: Stack) -> None:
    stack.reply(200)
    stack.clock.advance(32)


def _end_by_timer_d(stack: Stack) -> None:
    stack.reply(486)
    stack.clock.advance(32)


def _end_by_timer_b(stack: Stack) -> None:
    stack.clock.advance(32)


def _end_by_timer_k(stack: Stack) -> None:
    stack.reply(200)
    stack.clock.advance(5)


@pytest.mark.parametrize(
    ("method", "end"),
    [
        ("INVITE", _end_by_timer_m),
        ("INVITE", _end_by_timer_d),
        ("INVITE", _end_by_timer_b),
        ("BYE", _end_by_timer_k),
    ],
)
def test_terminated_client_transaction_lets_go_of_its_tu(
    method: str, end: Callable[[Stack], None]
) -> None:
    """TU <-> transaction is a reference cycle; ending the transaction breaks it, so reference
    counting frees both without waiting for the cyclic collector."""
    stack = Stack()
    tu = _UsageLike()
    tu.transaction = stack.layer.send_request(outgoing(method), UDP_PEER, tu.on_response)
    seen = tu.statuses
    alive = weakref.ref(tu)
    gc.disable()
    try:
        end(stack)
        del tu
        assert alive() is None
    finally:
        gc.enable()
    assert seen and seen[-1] >= 200
    assert stack.layer.client_count == 0


def test_invite_client_transport_error_gives_503():
    stack = Stack()
    stack.wire.fail_sends = True
    tx = stack.send("INVITE")
    stack.clock.advance(0)
    assert [r.status for r in stack.responses] == [503]
    assert tx.failure is TransactionFailure.TRANSPORT_ERROR
    assert stack.layer.client_count == 0


def test_cancel_waits_for_a_provisional_response():
    stack = Stack()
    tx = stack.send("INVITE")
    tx.cancel()
    assert stack.wire.first_lines() == ["INVITE sip:carol@203.0.113.5 SIP/2.0"]
    stack.clock.advance(0.2)
    stack.reply(180)
    cancel = stack.wire.sent[1].request
    invite = stack.wire.sent[0].request
    assert cancel.method == "CANCEL"
    assert str(cancel.cseq) == "1 CANCEL"
    assert cancel.top_via.branch == invite.top_via.branch
    assert cancel.to.tag is None
    assert cancel.uri == invite.uri
    stack.reply(200, index=1)  # 200 to the CANCEL: absorbed by the layer
    stack.reply(487)
    assert [r.status for r in stack.responses] == [180, 487]
    assert stack.wire.first_lines()[2].startswith("ACK ")


def test_cancel_without_final_response_times_out_after_64_t1():
    stack = Stack()
    tx = stack.send("INVITE")
    stack.reply(183)
    stack.clock.advance(5)
    tx.cancel()
    tx.cancel()  # idempotent
    assert stack.wire.first_lines().count("CANCEL sip:carol@203.0.113.5 SIP/2.0") == 1
    stack.reply(200, index=1)
    stack.clock.advance(31.9)
    assert tx.state is InviteClientState.PROCEEDING
    stack.clock.advance(0.1)
    assert [r.status for r in stack.responses] == [183, 408]
    assert tx.state is InviteClientState.TERMINATED


def test_cancel_after_final_response_sends_nothing():
    stack = Stack()
    tx = stack.send("INVITE")
    stack.reply(200)
    tx.cancel()
    assert stack.wire.first_lines() == ["INVITE sip:carol@203.0.113.5 SIP/2.0"]


def test_ack_and_duplicate_transactions_are_refused():
    stack = Stack()
    with pytest.raises(TransactionError, match="send_stateless"):
        stack.layer.send_request(outgoing("ACK"), UDP_PEER, stack.responses.append)
    tx = stack.send("OPTIONS")
    with pytest.raises(TransactionError, match="already exists"):
        stack.layer.send_request(tx.request, UDP_PEER, stack.responses.append)


# -- non-INVITE client -------------


def test_non_invite_client_timer_e_caps_at_t2_and_timer_f_gives_408():
    stack = Stack()
    tx = stack.send("OPTIONS")
    stack.clock.advance(40)
    assert stack.wire.times() == [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [r.status for r in stack.responses] == [408]
    assert tx.state is NonInviteClientState.TERMINATED


def test_non_invite_client_proceeding_retransmits_every_t2():
    stack = Stack()
    tx = stack.send("BYE")
    stack.clock.advance(0.2)
    stack.reply(100)
    assert tx.state is NonInviteClientState.PROCEEDING
    stack.clock.advance(12.3)
    assert stack.wire.times() == [0, 0.5, 4.5, 8.5, 12.5]


def test_non_invite_client_timer_k_absorbs_final_retransmissions():
    stack = Stack()
    tx = stack.send("BYE")
    stack.clock.advance(1)
    stack.reply(200)
    stack.reply(200)
    assert [r.status for r in stack.responses] == [200]
    assert tx.state is NonInviteClientState.COMPLETED
    stack.clock.advance(4.999)
    assert tx.state is NonInviteClientState.COMPLETED
    stack.clock.advance(0.001)  # Timer K = T4
    assert tx.state is NonInviteClientState.TERMINATED
    assert stack.wire.times() == [0, 0.5]


def test_non_invite_client_over_tcp_terminates_on_final():
    stack = Stack()
    tx = stack.send("REGISTER", TCP_PEER)
    stack.reply(401)
    assert tx.state is NonInviteClientState.TERMINATED
    assert stack.clock.pending() == 0


def test_stray_response_is_dropped_and_counted():
    stack = Stack()
    stray = make_response(request("INVITE"), 200, to_tag="x")
    stack.layer.on_message(stray, PEER_SOURCE)
    assert stack.layer.stats.stray_responses == 1
    assert stack.responses == []


@pytest.mark.parametrize("method", ["INVITE", "REGISTER"])
@pytest.mark.parametrize("status", [401, 407])
def test_a_challenge_from_another_address_is_dropped_and_the_peers_goes_through(
    method: str, status: int
):
    """T13: only the peer we sent the request to may challenge it; a third party's 401/407
    (the SIP digest leak) never reaches the TU, and the transaction waits for the peer."""
    stack = Stack()
    tx = stack.send(method)
    sent = stack.wire.sent[0].request
    for elsewhere in ("198.51.100.9", "203.0.113.6", "::ffff:198.51.100.9", "2001:db8::5"):
        foreign = make_response(sent, status, to_tag="evil")
        stack.layer.on_message(foreign, Source("UDP", elsewhere, 5060, "192.0.2.1", 5060))
    assert stack.responses == []
    assert stack.layer.stats.foreign_challenges == 4
    assert tx.state in (InviteClientState.CALLING, NonInviteClientState.TRYING)
    # the peer itself, seen by a dual-stack socket as an IPv4-mapped address, is the peer
    mapped = Source("UDP", "::ffff:203.0.113.5", 5060, "192.0.2.1", 5060)
    stack.layer.on_message(make_response(sent, status, to_tag="peer1"), mapped)
    assert [r.status for r in stack.responses] == [status]
    assert stack.layer.stats.foreign_challenges == 4


def test_other_answers_are_not_checked_by_address():
    """Only challenges are: a final answer from another address (a multi-homed peer) is the
    transaction's as before."""
    stack = Stack()
    stack.send("INVITE")
    sent = stack.wire.sent[0].request
    other = Source("UDP", "198.51.100.9", 5060, "192.0.2.1", 5060)
    stack.layer.on_message(make_response(sent, 486, to_tag="peer1"), other)
    assert [r.status for r in stack.responses] == [486]
    assert stack.layer.stats.foreign_challenges == 0


# -- INVITE server -------------


def test_invite_server_sends_100_trying_after_200_ms_of_silence():
    stack = Stack()
    stack.receive(request("INVITE"))
    stack.clock.advance(0.199)
    assert stack.wire.sent == []
    stack.clock.advance(0.001)
    trying = stack.wire.sent[0].response
    assert trying.status == 100
    assert trying.to.tag is None
    assert stack.wire.sent[0].destination == Destination("UDP", PHONE_HOST, 5062)


def test_invite_server_no_100_when_tu_answers_quickly():
    stack = Stack()
    stack.user.answer = lambda req, tx: tx.respond_with(180, to_tag="uas1")
    stack.receive(request("INVITE"))
    stack.clock.advance(1)
    assert [sent.response.status for sent in stack.wire.sent] == [180]


def test_invite_server_immediate_100_when_configured():
    stack = Stack(TimerSettings(trying_delay=0))
    stack.receive(request("INVITE"))
    assert [sent.response.status for sent in stack.wire.sent] == [100]
    stack_never = Stack(TimerSettings(trying_delay=None))
    stack_never.receive(request("INVITE"))
    stack_never.clock.advance(10)
    assert stack_never.wire.sent == []


def test_invite_server_absorbs_retransmissions_and_resends_provisional():
    stack = Stack()
    stack.receive(request("INVITE"))
    assert len(stack.user.requests) == 1
    stack.receive(request("INVITE"))  # before any response: nothing to resend
    assert stack.wire.sent == []
    _, tx = stack.user.requests[0]
    tx.respond_with(180, to_tag="uas1")
    stack.receive(request("INVITE"))
    assert [sent.response.status for sent in stack.wire.sent] == [180, 180]
    assert len(stack.user.requests) == 1
    assert stack.layer.stats.absorbed_retransmissions == 2


def test_invite_server_timer_g_and_timer_h():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, tx = stack.user.requests[0]
    failures: list[ServerTransaction] = []
    tx.on_failure = failures.append
    stack.clock.advance(0.1)
    tx.respond_with(486, to_tag="uas1")
    stack.clock.advance(40)
    times = stack.wire.times("SIP/2.0 486")
    assert times == pytest.approx(
        [0.1, 0.6, 1.6, 3.6, 7.6, 11.6, 15.6, 19.6, 23.6, 27.6, 31.6], abs=1e-9
    )
    assert isinstance(tx, InviteServerTransaction)
    assert tx.state is InviteServerState.TERMINATED
    assert tx.failure is TransactionFailure.NO_ACK
    assert failures == [tx]
    assert stack.layer.server_count == 0


def test_invite_server_ack_confirms_and_timer_i_terminates():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, tx = stack.user.requests[0]
    assert isinstance(tx, InviteServerTransaction)
    tx.respond_with(404, to_tag="uas1")
    stack.clock.advance(1)
    stack.receive(request("ACK", to_tag="uas1"))
    assert tx.state is InviteServerState.CONFIRMED
    assert stack.user.acks == []  # absorbed: it belongs to the transaction
    stack.receive(request("ACK", to_tag="uas1"))
    stack.receive(request("INVITE"))  # late retransmission: absorbed silently
    stack.clock.advance(10)
    assert stack.wire.times("SIP/2.0 404") == [0, 0.5]
    assert tx.state is InviteServerState.TERMINATED


def test_invite_server_timer_i_is_t4():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, tx = stack.user.requests[0]
    assert isinstance(tx, InviteServerTransaction)
    tx.respond_with(404, to_tag="uas1")
    stack.receive(request("ACK", to_tag="uas1"))
    stack.clock.advance(4.999)
    assert tx.state is InviteServerState.CONFIRMED
    stack.clock.advance(0.001)
    assert tx.state is InviteServerState.TERMINATED


def test_invite_server_completed_resends_final_on_retransmitted_invite():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, tx = stack.user.requests[0]
    tx.respond_with(480, to_tag="uas1")
    stack.clock.advance(0.2)
    stack.receive(request("INVITE"))
    assert [s.response.status for s in stack.wire.sent] == [480, 480]


def test_invite_server_over_tcp_no_timer_g_and_ack_terminates_at_once():
    stack = Stack()
    stack.receive(request("INVITE", transport="TCP"), tcp_source())
    _, tx = stack.user.requests[0]
    assert isinstance(tx, InviteServerTransaction)
    tx.respond_with(486, to_tag="uas1")
    assert stack.wire.sent[0].destination == Destination("TCP", PHONE_HOST, 5062, 7)
    stack.clock.advance(10)
    assert len(stack.wire.sent) == 1
    stack.receive(request("ACK", to_tag="uas1", transport="TCP"), tcp_source())
    assert tx.state is InviteServerState.TERMINATED


@pytest.mark.parametrize(("method", "status"), [("INVITE", 200), ("INVITE", 486), ("BYE", 200)])
def test_a_lingering_server_transaction_keeps_its_messages_unparsed(method: str, status: int):
    """After the final response only bytes are resent and keys matched (up to 64*T1): the
    parsed header values are let go, and come back on demand."""
    stack = Stack()
    stack.receive(request(method, to_tag=None if method == "INVITE" else "uas1"))
    _, tx = stack.user.requests[0]
    parsed = tx.request.from_
    tx.respond_with(status, to_tag="uas1")
    assert tx.request.from_ == parsed
    assert tx.request.from_ is not parsed
    stack.receive(request(method, to_tag=None if method == "INVITE" else "uas1"))
    assert len(stack.user.requests) == 1  # the retransmission is still matched and absorbed


def test_invite_server_accepted_state_rfc_6026():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, tx = stack.user.requests[0]
    assert isinstance(tx, InviteServerTransaction)
    tx.respond_with(200, to_tag="uas1")
    assert tx.state is InviteServerState.ACCEPTED
    stack.receive(request("INVITE"))  # absorbed, not answered, not passed up
    assert len(stack.wire.sent) == 1
    assert len(stack.user.requests) == 1
    tx.respond(tx.last_response)  # type: ignore[arg-type]  # the TU core's 2xx retransmission
    assert len(stack.wire.sent) == 2
    ack = request("ACK", to_tag="uas1")  # same branch: still the TU's business (RFC 6026 7.1)
    stack.receive(ack)
    assert [a.method for a, _ in stack.user.acks] == ["ACK"]
    stack.clock.advance(31.999)
    assert tx.state is InviteServerState.ACCEPTED
    stack.clock.advance(0.001)  # Timer L
    assert tx.state is InviteServerState.TERMINATED
    with pytest.raises(TransactionError, match="TERMINATED cannot send 200"):
        tx.respond_with(200)


def test_invite_server_refuses_responses_after_final():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, tx = stack.user.requests[0]
    tx.respond_with(486, to_tag="uas1")
    with pytest.raises(TransactionError, match="COMPLETED cannot send 180"):
        tx.respond_with(180)


def test_invite_server_transport_error_fails_the_transaction():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, tx = stack.user.requests[0]
    stack.wire.fail_sends = True
    tx.respond_with(500, to_tag="uas1")
    stack.clock.advance(0)
    assert tx.failure is TransactionFailure.TRANSPORT_ERROR
    assert tx.is_terminated


# -- non-INVITE server -------------


def test_non_invite_server_trying_proceeding_completed_and_timer_j():
    stack = Stack()
    stack.receive(request("BYE", to_tag="uas1", cseq=2))
    _, tx = stack.user.requests[0]
    assert isinstance(tx, NonInviteServerTransaction)
    stack.receive(request("BYE", to_tag="uas1", cseq=2))  # Trying: discarded
    assert stack.wire.sent == []
    tx.respond_with(100)
    stack.receive(request("BYE", to_tag="uas1", cseq=2))  # Proceeding: resend 100
    tx.respond_with(200)
    stack.receive(request("BYE", to_tag="uas1", cseq=2))  # Completed: resend 200
    assert [s.response.status for s in stack.wire.sent] == [100, 100, 200, 200]
    assert tx.state is NonInviteServerState.COMPLETED
    stack.clock.advance(31.999)
    assert tx.state is NonInviteServerState.COMPLETED
    stack.clock.advance(0.001)  # Timer J
    assert tx.state is NonInviteServerState.TERMINATED
    stack.receive(request("BYE", to_tag="uas1", cseq=2))  # a new transaction now
    assert len(stack.user.requests) == 2


def test_non_invite_server_over_tcp_terminates_on_final():
    stack = Stack()
    stack.receive(request("OPTIONS", transport="TCP"), tcp_source())
    _, tx = stack.user.requests[0]
    tx.respond_with(200, to_tag="x")
    assert tx.is_terminated
    assert stack.layer.server_count == 0
    with pytest.raises(TransactionError, match="TERMINATED cannot send 200"):
        tx.respond_with(200)


# -- matching (RFC 3261 17.2.3) -------------


def test_matching_uses_branch_sent_by_and_method():
    stack = Stack()
    stack.receive(request("INVITE"))
    stack.receive(request("INVITE", via_port=5070))  # other sent-by: another transaction
    stack.receive(request("INVITE", branch="z9hG4bKother"))
    stack.receive(request("OPTIONS", cseq=1))  # same branch, other method
    assert len(stack.user.requests) == 4
    assert stack.layer.server_count == 4


def test_ack_for_2xx_with_new_branch_goes_to_the_tu():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, tx = stack.user.requests[0]
    tx.respond_with(200, to_tag="uas1")
    ack = request("ACK", branch="z9hG4bKnewone", to_tag="uas1")
    stack.receive(ack)
    assert len(stack.user.acks) == 1
    assert stack.user.acks[0][0].top_via.branch == "z9hG4bKnewone"


def test_a_bare_magic_cookie_gets_400_and_its_ack_goes_up():
    """RFC 4475 3.2.1: the cookie with nothing after it identifies no transaction."""
    stack = Stack()
    stack.receive(request("OPTIONS", branch="z9hG4bK"))
    assert [s.response.status for s in stack.wire.sent] == [400]
    assert stack.wire.sent[0].response.reason == "Missing Branch Magic Cookie"
    assert stack.user.requests == []
    stack.receive(request("ACK", branch="z9hG4bK", to_tag="x"))
    assert len(stack.user.acks) == 1


@pytest.mark.parametrize("branch", ["oldstyle-1", ""])
def test_rfc2543_requests_are_matched_by_their_fields(branch: str):
    """RFC 3261 17.2.3, backward compatibility: no magic cookie (or no branch at all)."""
    stack = Stack()
    stack.receive(request("INVITE", branch=branch))
    stack.receive(request("INVITE", branch=branch))  # retransmission: absorbed
    assert len(stack.user.requests) == 1
    assert stack.layer.stats.absorbed_retransmissions == 1
    assert stack.layer.stats.rfc2543_requests == 2
    _, invite_tx = stack.user.requests[0]
    assert isinstance(invite_tx, InviteServerTransaction)
    invite_tx.respond_with(180, to_tag="uas1")
    stack.receive(request("CANCEL", branch=branch))  # same fields, CSeq method CANCEL
    assert stack.user.cancels == [invite_tx]
    invite_tx.respond_with(487)
    stack.receive(request("ACK", branch=branch, to_tag="uas1"))  # ACK of a non-2xx: absorbed
    assert invite_tx.state is InviteServerState.CONFIRMED
    assert stack.user.acks == []
    # Another CSeq, Call-ID, From tag or Request-URI-equal Via: another transaction.
    stack.receive(request("INVITE", branch=branch, cseq=2))
    stack.receive(request("INVITE", branch=branch, call_id="other@pc33.example.com"))
    stack.receive(request("INVITE", branch=branch, from_tag="another"))
    stack.receive(request("INVITE", branch=branch, via_port=5070))
    assert len(stack.user.requests) == 5


def test_an_rfc2543_key_never_equals_an_rfc3261_one():
    stack = Stack()
    stack.receive(request("OPTIONS", branch="z9hG4bKnashds8"))
    stack.receive(request("OPTIONS", branch="nashds8"))
    assert len(stack.user.requests) == 2


def test_transaction_cap_per_source_answers_503():
    stack = Stack(limits=LayerLimits(max_server_transactions_per_source=2))
    for index in range(3):
        stack.receive(request("OPTIONS", branch=f"z9hG4bK{index}"))
    stack.receive(request("OPTIONS", branch="z9hG4bKfromelsewhere"), udp_source(host="192.0.2.99"))
    assert len(stack.user.requests) == 3
    rejected = stack.wire.sent[0].response
    assert rejected.status == 503
    assert rejected.headers.get("Retry-After") == "5"
    assert stack.layer.stats.rejected_overload == 1
    _, first = stack.user.requests[0]
    first.respond_with(200, to_tag="a")
    stack.clock.advance(32)  # Timer J frees the slot
    stack.receive(request("OPTIONS", branch="z9hG4bKlater"))
    assert len(stack.user.requests) == 4


# -- CANCEL (RFC 3261 9.2) -------------


def test_cancel_matching_a_pending_invite():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, invite_tx = stack.user.requests[0]
    assert isinstance(invite_tx, InviteServerTransaction)
    invite_tx.respond_with(180, to_tag="uas1")
    stack.receive(request("CANCEL"))
    ok = stack.wire.sent[1].response
    assert (ok.status, ok.cseq.method, ok.to.tag) == (200, "CANCEL", "uas1")
    assert stack.user.cancels == [invite_tx]
    assert invite_tx.cancelled
    stack.receive(request("CANCEL"))  # retransmitted CANCEL: 200 again, TU not told twice
    assert stack.wire.sent[2].response.status == 200
    assert len(stack.user.cancels) == 1
    invite_tx.respond_with(487)
    stack.receive(request("ACK", to_tag="uas1"))
    assert invite_tx.state is InviteServerState.CONFIRMED
    assert [a for a, _ in stack.user.acks] == []
    assert [r.method for r, _ in stack.user.requests] == ["INVITE"]


def test_cancel_before_any_tagged_response_gets_a_tag_for_the_487():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, invite_tx = stack.user.requests[0]
    assert isinstance(invite_tx, InviteServerTransaction)
    stack.clock.advance(0.3)  # 100 Trying went out, untagged
    stack.receive(request("CANCEL"))
    ok = stack.wire.sent[1].response
    assert ok.to.tag is not None
    assert ok.to.tag == invite_tx.cancel_to_tag
    terminated = invite_tx.respond_with(487, to_tag=invite_tx.cancel_to_tag)
    assert terminated.to.tag == ok.to.tag


def test_cancel_without_matching_invite_gets_481():
    stack = Stack()
    stack.receive(request("CANCEL"))
    assert stack.wire.sent[0].response.status == 481
    assert stack.user.cancels == []


def test_cancel_after_final_response_is_answered_but_not_reported():
    stack = Stack()
    stack.receive(request("INVITE"))
    _, invite_tx = stack.user.requests[0]
    invite_tx.respond_with(200, to_tag="uas1")
    stack.receive(request("CANCEL"))
    assert stack.wire.sent[1].response.status == 200
    assert stack.user.cancels == []


def test_send_stateless_adds_a_fresh_via():
    stack = Stack()
    ack = outgoing("ACK")
    stack.layer.send_stateless(ack, UDP_PEER)
    sent = stack.wire.sent[0].request
    assert sent.top_via.branch is not None
    assert sent.top_via.branch.startswith("z9hG4bK")
    assert sent.top_via.has_rport
    assert stack.layer.client_count == 0


def test_layer_counts_are_released():
    stack = Stack()
    stack.send("OPTIONS")
    stack.receive(request("OPTIONS"))
    assert (stack.layer.client_count, stack.layer.server_count) == (1, 1)
    stack.reply(200)
    _, tx = stack.user.requests[0]
    tx.respond_with(200, to_tag="t")
    stack.clock.advance(40)
    assert (stack.layer.client_count, stack.layer.server_count) == (0, 0)
    assert stack.clock.pending() == 0
