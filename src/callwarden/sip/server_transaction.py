"""Server transactions: INVITE (RFC 3261 17.2.1, RFC 6026 7.1) and non-INVITE (17.2.2).

A server transaction absorbs retransmitted requests (resending its last response), sends the
TU's responses to where RFC 3261 18.2.2 / RFC 3581 say, retransmits non-2xx final responses to
INVITE over UDP until the ACK, and keeps the 2xx retransmissions to the TU (RFC 6026: the
Accepted state only absorbs requests; 13.3.1.4 retransmission lives in the INVITE usage).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from callwarden.sip.addressing import Destination, Source, is_reliable, response_destination
from callwarden.sip.clock import TimerHandle
from callwarden.sip.message import SipRequest, SipResponse, make_response
from callwarden.sip.tx_base import (
    INVITE_SERVER_TRANSITIONS,
    NON_INVITE_SERVER_TRANSITIONS,
    InviteServerState,
    NonInviteServerState,
    TransactionContext,
    TransactionError,
    TransactionFailure,
    check_transition,
)
from callwarden.sip.tx_keys import ServerKey

__all__ = [
    "InviteServerTransaction",
    "NonInviteServerTransaction",
    "ServerTransaction",
]

logger = logging.getLogger(__name__)

_IS = InviteServerState
_NS = NonInviteServerState


class ServerTransaction:
    """What both server transactions share.

    ``on_failure`` (settable by the TU) is called when the transaction ends without the
    expected outcome: Timer H (no ACK for a non-2xx final response) or a transport error
    while sending a response (RFC 3261 17.2.1, 17.2.4).
    """

    __slots__ = (
        "_ctx",
        "_final_data",
        "_interval",
        "_provisional_data",
        "_release",
        "_retransmit_timer",
        "_timeout_timer",
        "destination",
        "failure",
        "key",
        "last_response",
        "on_failure",
        "reliable",
        "request",
        "source",
    )

    def __init__(
        self,
        ctx: TransactionContext,
        request: SipRequest,
        source: Source,
        key: ServerKey,
        release: Callable[[ServerTransaction], None],
    ) -> None:
        self._ctx = ctx
        self.request = request
        self.source = source
        self.key = key
        self._release = release
        self.destination: Destination = response_destination(source, request.top_via)
        self.reliable = is_reliable(source.transport)
        self.last_response: SipResponse | None = None
        self._provisional_data: bytes | None = None
        self._final_data: bytes | None = None
        self._interval = ctx.timers.t1
        self._retransmit_timer: TimerHandle | None = None
        self._timeout_timer: TimerHandle | None = None
        self.failure: TransactionFailure | None = None
        self.on_failure: Callable[[ServerTransaction], None] | None = None

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def is_terminated(self) -> bool:
        raise NotImplementedError

    def respond(self, response: SipResponse) -> None:
        raise NotImplementedError

    def receive_retransmission(self) -> None:
        raise NotImplementedError

    def respond_with(
        self,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> SipResponse:
        """Build a response with :func:`make_response`, add ``headers``, send it, return it."""
        response = make_response(self.request, status, reason, to_tag=to_tag)
        for name, value in headers:
            response.headers.add(name, value)
        self.respond(response)
        return response

    def _send(self, data: bytes) -> None:
        self._ctx.sender.send_bytes(data, self.destination, self._on_transport_error)

    def _linger(self) -> None:
        """The final response is out: from here on the transaction resends bytes and matches
        keys until its timer ends it (up to 64*T1), so its messages drop their parsed forms."""
        self.request.release_parsed()
        if self.last_response is not None:
            self.last_response.release_parsed()

    def _cancel_timers(self) -> None:
        if self._retransmit_timer is not None:
            self._retransmit_timer.cancel()
            self._retransmit_timer = None
        if self._timeout_timer is not None:
            self._timeout_timer.cancel()
            self._timeout_timer = None

    def _fail(self, failure: TransactionFailure) -> None:
        self.failure = failure
        logger.info(
            "server transaction %s %s failed: %s (call %s)",
            self.request.method,
            self.key[0],
            failure.value,
            self.request.call_id,
        )
        if self.on_failure is not None:
            self.on_failure(self)

    def _on_transport_error(self, error: Exception) -> None:
        raise NotImplementedError


class InviteServerTransaction(ServerTransaction):
    """INVITE server transaction, RFC 3261 17.2.1 with RFC 6026 7.1.

    Proceeding: 100 Trying goes out ``trying_delay`` after the INVITE unless the TU has sent
    a provisional response; retransmitted INVITEs get the last provisional again. A 2xx moves
    to Accepted (Timer L, 64*T1): retransmitted INVITEs are absorbed, the TU's 2xx
    retransmissions are sent, ACKs go to the TU. A 300-699 moves to Completed: Timer G
    retransmits it over UDP (T1 doubling to T2), Timer H (64*T1) gives up waiting for the ACK,
    and the ACK moves to Confirmed where Timer I (T4 over UDP, zero otherwise) absorbs ACKs.
    """

    __slots__ = ("cancel_to_tag", "cancelled", "state")

    def __init__(
        self,
        ctx: TransactionContext,
        request: SipRequest,
        source: Source,
        key: ServerKey,
        release: Callable[[ServerTransaction], None],
    ) -> None:
        super().__init__(ctx, request, source, key, release)
        self.state = _IS.PROCEEDING
        self.cancelled = False
        self.cancel_to_tag: str | None = None

    @property
    def is_terminated(self) -> bool:
        return self.state is _IS.TERMINATED

    def _transition(self, new: InviteServerState) -> None:
        self.state = check_transition(INVITE_SERVER_TRANSITIONS, self.state, new)
        if new is _IS.TERMINATED:
            self._cancel_timers()
            self._release(self)

    def start(self) -> None:
        """Arrange for 100 Trying (RFC 3261 17.2.1)."""
        delay = self._ctx.timers.trying_delay
        if delay is None:
            return
        if delay <= 0:
            self._send_trying()
        else:
            self._retransmit_timer = self._ctx.clock.call_later(delay, self._on_trying_timer)

    def _on_trying_timer(self) -> None:
        self._retransmit_timer = None
        if self.state is _IS.PROCEEDING and self._provisional_data is None:
            self._send_trying()

    def _send_trying(self) -> None:
        trying = make_response(self.request, 100)
        self.last_response = trying
        self._provisional_data = bytes(trying)
        self._send(self._provisional_data)

    def respond(self, response: SipResponse) -> None:
        """Send a response from the TU (RFC 3261 17.2.1, RFC 6026 7.1)."""
        status = response.status
        state = self.state
        if state is _IS.PROCEEDING:
            data = bytes(response)
            self.last_response = response
            if self._retransmit_timer is not None:
                self._retransmit_timer.cancel()
                self._retransmit_timer = None
            if status < 200:
                self._provisional_data = data
                self._send(data)
            elif status < 300:
                self._transition(_IS.ACCEPTED)
                self._final_data = data
                self._timeout_timer = self._ctx.clock.call_later(
                    self._ctx.timers.timeout, self._on_timer_l
                )
                self._send(data)
                self._linger()
            else:
                self._transition(_IS.COMPLETED)
                self._final_data = data
                clock = self._ctx.clock
                if not self.reliable:
                    self._retransmit_timer = clock.call_later(self._interval, self._on_timer_g)
                self._timeout_timer = clock.call_later(self._ctx.timers.timeout, self._on_timer_h)
                self._send(data)
                self._linger()
        elif state is _IS.ACCEPTED and 200 <= status < 300:
            self.last_response = response
            self._final_data = bytes(response)
            self._send(self._final_data)
        else:
            raise TransactionError(
                f"INVITE server transaction {self.key[0]} in {state.name} cannot send {status}"
            )

    def retransmit_final(self) -> None:
        """Send the last 2xx again while Accepted (the INVITE usage's 13.3.1.4 timer)."""
        if self.state is _IS.ACCEPTED and self._final_data is not None:
            self._send(self._final_data)

    def receive_retransmission(self) -> None:
        """A retransmitted INVITE (RFC 3261 17.2.1): resend the last response, if any."""
        if self.state is _IS.PROCEEDING:
            if self._provisional_data is not None:
                self._send(self._provisional_data)
        elif self.state is _IS.COMPLETED and self._final_data is not None:
            self._send(self._final_data)

    def receive_ack(self) -> bool:
        """An ACK matching this transaction; True when it is absorbed here.

        Completed -> Confirmed (stop Timer G and H, start Timer I); Confirmed absorbs; in
        Accepted the ACK belongs to the TU (RFC 6026 7.1) so False is returned.
        """
        state = self.state
        if state is _IS.COMPLETED:
            self._transition(_IS.CONFIRMED)
            self._cancel_timers()
            if self.reliable:
                self._transition(_IS.TERMINATED)
            else:
                self._timeout_timer = self._ctx.clock.call_later(
                    self._ctx.timers.t4, self._on_timer_i
                )
            return True
        return state is not _IS.ACCEPTED

    def _on_timer_g(self) -> None:
        if self.state is not _IS.COMPLETED or self._final_data is None:
            return
        self._interval = min(2 * self._interval, self._ctx.timers.t2)
        self._retransmit_timer = self._ctx.clock.call_later(self._interval, self._on_timer_g)
        self._send(self._final_data)

    def _on_timer_h(self) -> None:
        self._timeout_timer = None
        if self.state is _IS.COMPLETED:
            self._transition(_IS.TERMINATED)
            self._fail(TransactionFailure.NO_ACK)

    def _on_timer_i(self) -> None:
        self._timeout_timer = None
        if self.state is _IS.CONFIRMED:
            self._transition(_IS.TERMINATED)

    def _on_timer_l(self) -> None:
        self._timeout_timer = None
        if self.state is _IS.ACCEPTED:
            self._transition(_IS.TERMINATED)

    def _on_transport_error(self, error: Exception) -> None:
        if self.state is _IS.TERMINATED:
            return
        logger.info("INVITE server transaction %s: transport error %s", self.key[0], error)
        self._transition(_IS.TERMINATED)
        self._fail(TransactionFailure.TRANSPORT_ERROR)


class NonInviteServerTransaction(ServerTransaction):
    """Non-INVITE server transaction, RFC 3261 17.2.2.

    Trying absorbs retransmissions silently; Proceeding resends the last provisional response;
    Completed resends the final response until Timer J (64*T1 over UDP, zero otherwise).
    """

    __slots__ = ("state",)

    def __init__(
        self,
        ctx: TransactionContext,
        request: SipRequest,
        source: Source,
        key: ServerKey,
        release: Callable[[ServerTransaction], None],
    ) -> None:
        super().__init__(ctx, request, source, key, release)
        self.state = _NS.TRYING

    @property
    def is_terminated(self) -> bool:
        return self.state is _NS.TERMINATED

    def _transition(self, new: NonInviteServerState) -> None:
        self.state = check_transition(NON_INVITE_SERVER_TRANSITIONS, self.state, new)
        if new is _NS.TERMINATED:
            self._cancel_timers()
            self._release(self)

    def respond(self, response: SipResponse) -> None:
        """Send a response from the TU (RFC 3261 17.2.2)."""
        state = self.state
        if state is not _NS.TRYING and state is not _NS.PROCEEDING:
            raise TransactionError(
                f"{self.request.method} server transaction {self.key[0]} in {state.name} "
                f"cannot send {response.status}"
            )
        data = bytes(response)
        self.last_response = response
        if response.status < 200:
            if state is _NS.TRYING:
                self._transition(_NS.PROCEEDING)
            self._provisional_data = data
            self._send(data)
            return
        self._transition(_NS.COMPLETED)
        self._final_data = data
        self._send(data)
        if self.state is not _NS.COMPLETED:
            return  # the send failed synchronously and ended the transaction
        if self.reliable:
            self._transition(_NS.TERMINATED)
        else:
            self._timeout_timer = self._ctx.clock.call_later(
                self._ctx.timers.timeout, self._on_timer_j
            )
            self._linger()

    def receive_retransmission(self) -> None:
        """A retransmitted request (RFC 3261 17.2.2): resend the last response, if any."""
        if self.state is _NS.PROCEEDING and self._provisional_data is not None:
            self._send(self._provisional_data)
        elif self.state is _NS.COMPLETED and self._final_data is not None:
            self._send(self._final_data)

    def _on_timer_j(self) -> None:
        self._timeout_timer = None
        if self.state is _NS.COMPLETED:
            self._transition(_NS.TERMINATED)

    def _on_transport_error(self, error: Exception) -> None:
        if self.state is _NS.TERMINATED:
            return
        logger.info(
            "%s server transaction %s: transport error %s", self.request.method, self.key[0], error
        )
        self._transition(_NS.TERMINATED)
        self._fail(TransactionFailure.TRANSPORT_ERROR)
