"""Client transactions: INVITE (RFC 3261 17.1.1, RFC 6026 7.2) and non-INVITE (17.1.2).

A client transaction sends its request (retransmitting over UDP), matches responses by branch
and CSeq method (17.1.3, done by the layer) and reports every response the TU must see through
one callback. Timeouts (Timers B and F, 9.1's CANCEL guard) and transport errors (17.1.4) are
reported as synthesized 408 and 503 responses with :attr:`failure` set, so the TU handles every
outcome in one place. No task per transaction: only clock timers and callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from callwarden.sip.addressing import Destination, is_reliable
from callwarden.sip.clock import TimerHandle
from callwarden.sip.message import Headers, SipRequest, SipResponse, make_response
from callwarden.sip.tx_base import (
    INVITE_CLIENT_TRANSITIONS,
    NON_INVITE_CLIENT_TRANSITIONS,
    InviteClientState,
    NonInviteClientState,
    TransactionContext,
    TransactionFailure,
    check_transition,
)
from callwarden.sip.tx_keys import ClientKey

__all__ = [
    "ClientTransaction",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "ResponseCallback",
    "build_cancel",
    "build_non_2xx_ack",
]

logger = logging.getLogger(__name__)

ResponseCallback = Callable[[SipResponse], None]
"""Receives provisional and final responses (real or synthesized 408/503)."""

SpawnRequest = Callable[[SipRequest, Destination, ResponseCallback], "NonInviteClientTransaction"]
Release = Callable[[ClientKey], None]

_IC = InviteClientState
_NC = NonInviteClientState


def _after_termination(response: SipResponse) -> None:
    """Where a terminated transaction's responses go: nowhere (see ClientTransaction._let_go)."""


def _copy_first(source: Headers, target: Headers, name: str) -> None:
    value = source.get(name)
    if value is not None:
        target.add(name, value)


def build_non_2xx_ack(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK a client transaction sends for a 300-699 response (RFC 3261 17.1.1.3).

    Same Request-URI, Call-ID, From and CSeq number as the INVITE; To from the response (it
    carries the tag); only the INVITE's top Via; its Route headers.
    """
    headers = Headers()
    original = invite.headers
    headers.add("Via", original.get_all("Via")[0])
    for route in original.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    _copy_first(original, headers, "From")
    _copy_first(response.headers, headers, "To")
    _copy_first(original, headers, "Call-ID")
    headers.add("CSeq", f"{invite.cseq.number} ACK")
    return SipRequest("ACK", invite.uri, headers)


def build_cancel(invite: SipRequest) -> SipRequest:
    """The CANCEL for a pending INVITE (RFC 3261 9.1).

    Same Request-URI, Call-ID, From, To (without a new tag), CSeq number and top Via (hence
    branch) as the INVITE, and its Route headers.
    """
    headers = Headers()
    original = invite.headers
    headers.add("Via", original.get_all("Via")[0])
    for route in original.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    _copy_first(original, headers, "From")
    _copy_first(original, headers, "To")
    _copy_first(original, headers, "Call-ID")
    headers.add("CSeq", f"{invite.cseq.number} CANCEL")
    return SipRequest("CANCEL", invite.uri, headers)


class ClientTransaction:
    """What both client transactions share: sending, timers, synthesized failures."""

    __slots__ = (
        "_ctx",
        "_data",
        "_interval",
        "_on_response",
        "_release",
        "_retransmit_timer",
        "_timeout_timer",
        "destination",
        "failure",
        "key",
        "reliable",
        "request",
    )

    def __init__(
        self,
        ctx: TransactionContext,
        request: SipRequest,
        destination: Destination,
        key: ClientKey,
        on_response: ResponseCallback,
        release: Release,
    ) -> None:
        self._ctx = ctx
        self.request = request
        self.destination = destination
        self.key = key
        self._on_response = on_response
        self._release = release
        self._data = bytes(request)
        self.reliable = is_reliable(destination.transport)
        self._interval = ctx.timers.t1
        self._retransmit_timer: TimerHandle | None = None
        self._timeout_timer: TimerHandle | None = None
        self.failure: TransactionFailure | None = None

    @property
    def branch(self) -> str:
        return self.key[0]

    def _send(self, data: bytes) -> None:
        self._ctx.sender.send_bytes(data, self.destination, self._on_transport_error)

    def _cancel_timers(self) -> None:
        if self._retransmit_timer is not None:
            self._retransmit_timer.cancel()
            self._retransmit_timer = None
        if self._timeout_timer is not None:
            self._timeout_timer.cancel()
            self._timeout_timer = None

    def _report_failure(self, failure: TransactionFailure) -> None:
        """Tell the TU through a synthesized response (RFC 3261 8.1.3.1, 17.1.4)."""
        self.failure = failure
        status = 408 if failure is TransactionFailure.TIMEOUT else 503
        logger.info(
            "client transaction %s %s failed: %s (call %s)",
            self.request.method,
            self.branch,
            failure.value,
            self.request.call_id,
        )
        self._on_response(make_response(self.request, status))
        self._let_go()

    def _let_go(self) -> None:
        """Once terminated a transaction reports nothing more: drop the TU's callback. The TU
        (an INVITE usage, a call) usually holds this transaction too, and that reference cycle
        would otherwise keep both alive until a full garbage collection."""
        self._on_response = _after_termination

    def _on_transport_error(self, error: Exception) -> None:
        raise NotImplementedError


class InviteClientTransaction(ClientTransaction):
    """INVITE client transaction, RFC 3261 17.1.1 with RFC 6026 7.2 (Accepted state, Timer M).

    Timer A retransmits over UDP at T1, 2*T1, 4*T1... (no cap) while Calling; Timer B (64*T1)
    ends a transaction still Calling with a 408. A 300-699 response is acknowledged here
    (17.1.1.3) and Timer D absorbs its retransmissions; a 2xx moves to Accepted where later 2xx
    (retransmissions, forks) still reach the TU, which acknowledges them, until Timer M.
    """

    __slots__ = ("_ack_data", "_cancel_requested", "_spawn", "cancel_transaction", "state")

    def __init__(
        self,
        ctx: TransactionContext,
        request: SipRequest,
        destination: Destination,
        key: ClientKey,
        on_response: ResponseCallback,
        release: Release,
        spawn: SpawnRequest,
    ) -> None:
        super().__init__(ctx, request, destination, key, on_response, release)
        self._spawn = spawn
        self.state = _IC.CALLING
        self._ack_data: bytes | None = None
        self._cancel_requested = False
        self.cancel_transaction: NonInviteClientTransaction | None = None

    def _transition(self, new: InviteClientState) -> None:
        self.state = check_transition(INVITE_CLIENT_TRANSITIONS, self.state, new)
        if new is _IC.TERMINATED:
            self._cancel_timers()
            self._release(self.key)

    def start(self) -> None:
        """Send the INVITE, start Timer A (UDP only) and Timer B (RFC 3261 17.1.1.2)."""
        clock = self._ctx.clock
        if not self.reliable:
            self._retransmit_timer = clock.call_later(self._interval, self._on_timer_a)
        self._timeout_timer = clock.call_later(self._ctx.timers.timeout, self._on_timer_b)
        self._send(self._data)

    def _on_timer_a(self) -> None:
        if self.state is not _IC.CALLING:
            return
        self._interval *= 2
        self._retransmit_timer = self._ctx.clock.call_later(self._interval, self._on_timer_a)
        self._send(self._data)

    def _on_timer_b(self) -> None:
        """Timer B, or the 64*T1 guard after CANCEL (RFC 3261 17.1.1.2, 9.1)."""
        self._timeout_timer = None
        if self.state in (_IC.CALLING, _IC.PROCEEDING):
            self._transition(_IC.TERMINATED)
            self._report_failure(TransactionFailure.TIMEOUT)

    def _on_timer_d(self) -> None:
        self._retransmit_timer = None
        if self.state is _IC.COMPLETED:
            self._transition(_IC.TERMINATED)
            self._let_go()

    def _on_timer_m(self) -> None:
        self._timeout_timer = None
        if self.state is _IC.ACCEPTED:
            self._transition(_IC.TERMINATED)
            self._let_go()

    def _on_transport_error(self, error: Exception) -> None:
        if self.state in (_IC.CALLING, _IC.PROCEEDING):
            logger.info("INVITE %s: transport error %s", self.branch, error)
            self._transition(_IC.TERMINATED)
            self._report_failure(TransactionFailure.TRANSPORT_ERROR)
        elif self.state is _IC.COMPLETED:
            self._transition(_IC.TERMINATED)
            self._let_go()

    def receive_response(self, response: SipResponse) -> None:
        """Feed a response matched to this transaction (RFC 3261 17.1.1.2, RFC 6026 7.2)."""
        status = response.status
        state = self.state
        if status < 200:
            if state is _IC.CALLING:
                self._transition(_IC.PROCEEDING)
                self._cancel_timers()
                if self._cancel_requested:
                    self._send_cancel()
            elif state is not _IC.PROCEEDING:
                return
            self._on_response(response)
        elif status < 300:
            if state is _IC.CALLING or state is _IC.PROCEEDING:
                self._transition(_IC.ACCEPTED)
                self._cancel_timers()
                self._timeout_timer = self._ctx.clock.call_later(
                    self._ctx.timers.timeout, self._on_timer_m
                )
            elif state is not _IC.ACCEPTED:
                return
            self._on_response(response)
            # Until Timer M only 2xx retransmissions pass through: the parsed INVITE can go.
            self.request.release_parsed()
        elif state is _IC.CALLING or state is _IC.PROCEEDING:
            self._transition(_IC.COMPLETED)
            self._cancel_timers()
            self._ack_data = bytes(build_non_2xx_ack(self.request, response))
            self._send(self._ack_data)
            if not self.reliable:
                self._retransmit_timer = self._ctx.clock.call_later(
                    self._ctx.timers.timer_d, self._on_timer_d
                )
            self._on_response(response)
            if self.reliable and self.state is _IC.COMPLETED:
                self._transition(_IC.TERMINATED)
                self._let_go()
            else:
                self.request.release_parsed()
        elif state is _IC.COMPLETED and self._ack_data is not None:
            self._send(self._ack_data)

    def cancel(self) -> None:
        """Cancel the INVITE (RFC 3261 9.1).

        The CANCEL is sent once a provisional response has arrived (not before, 9.1); after a
        final response there is nothing to cancel. A final response still ends the INVITE:
        usually 487 from the far end, or a synthesized 408 when none came within 64*T1.
        """
        if self._cancel_requested:
            return
        self._cancel_requested = True
        if self.state is _IC.PROCEEDING:
            self._send_cancel()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    def _send_cancel(self) -> None:
        self.cancel_transaction = self._spawn(
            build_cancel(self.request), self.destination, self._on_cancel_response
        )
        if self._timeout_timer is not None:
            self._timeout_timer.cancel()
        self._timeout_timer = self._ctx.clock.call_later(self._ctx.timers.timeout, self._on_timer_b)

    def _on_cancel_response(self, response: SipResponse) -> None:
        if response.status >= 200:
            logger.debug(
                "CANCEL %s answered %s (call %s)", self.branch, response.status, response.call_id
            )


class NonInviteClientTransaction(ClientTransaction):
    """Non-INVITE client transaction, RFC 3261 17.1.2.

    Timer E retransmits over UDP at T1 doubling up to T2 while Trying, every T2 once
    Proceeding; Timer F (64*T1) ends it with a 408; Timer K (T4 over UDP, zero otherwise)
    absorbs retransmitted final responses.
    """

    __slots__ = ("state",)

    def __init__(
        self,
        ctx: TransactionContext,
        request: SipRequest,
        destination: Destination,
        key: ClientKey,
        on_response: ResponseCallback,
        release: Release,
    ) -> None:
        super().__init__(ctx, request, destination, key, on_response, release)
        self.state = _NC.TRYING

    def _transition(self, new: NonInviteClientState) -> None:
        self.state = check_transition(NON_INVITE_CLIENT_TRANSITIONS, self.state, new)
        if new is _NC.TERMINATED:
            self._cancel_timers()
            self._release(self.key)

    def start(self) -> None:
        """Send the request, start Timer E (UDP only) and Timer F (RFC 3261 17.1.2.2)."""
        clock = self._ctx.clock
        if not self.reliable:
            self._retransmit_timer = clock.call_later(self._interval, self._on_timer_e)
        self._timeout_timer = clock.call_later(self._ctx.timers.timeout, self._on_timer_f)
        self._send(self._data)

    def _on_timer_e(self) -> None:
        timers = self._ctx.timers
        if self.state is _NC.TRYING:
            self._interval = min(2 * self._interval, timers.t2)
        elif self.state is _NC.PROCEEDING:
            self._interval = timers.t2
        else:
            return
        self._retransmit_timer = self._ctx.clock.call_later(self._interval, self._on_timer_e)
        self._send(self._data)

    def _on_timer_f(self) -> None:
        self._timeout_timer = None
        if self.state is _NC.TRYING or self.state is _NC.PROCEEDING:
            self._transition(_NC.TERMINATED)
            self._report_failure(TransactionFailure.TIMEOUT)

    def _on_timer_k(self) -> None:
        self._retransmit_timer = None
        if self.state is _NC.COMPLETED:
            self._transition(_NC.TERMINATED)
            self._let_go()

    def _on_transport_error(self, error: Exception) -> None:
        if self.state is _NC.TRYING or self.state is _NC.PROCEEDING:
            logger.info("%s %s: transport error %s", self.request.method, self.branch, error)
            self._transition(_NC.TERMINATED)
            self._report_failure(TransactionFailure.TRANSPORT_ERROR)

    def receive_response(self, response: SipResponse) -> None:
        """Feed a response matched to this transaction (RFC 3261 17.1.2.2)."""
        state = self.state
        if state is _NC.COMPLETED or state is _NC.TERMINATED:
            return
        if response.status < 200:
            if state is _NC.TRYING:
                self._transition(_NC.PROCEEDING)
            self._on_response(response)
            return
        self._transition(_NC.COMPLETED)
        self._cancel_timers()
        if not self.reliable:
            self._retransmit_timer = self._ctx.clock.call_later(
                self._ctx.timers.t4, self._on_timer_k
            )
        self._on_response(response)
        if self.reliable and self.state is _NC.COMPLETED:
            self._transition(_NC.TERMINATED)
            self._let_go()
        else:
            self.request.release_parsed()
