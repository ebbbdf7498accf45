"""The transaction layer (RFC 3261 17, RFC 6026): matching, the transaction table, CANCEL.

:class:`TransactionLayer` sits between the transport (it is the transport's
``TransportUser``) and the transaction user (a UA core, the B2BUA). Incoming requests are
matched to server transactions (17.2.3) - retransmissions are absorbed, new requests create a
transaction and go to :meth:`TransactionUser.on_request`; ACKs for 2xx (no transaction) go to
:meth:`TransactionUser.on_ack`; a CANCEL is answered here and reported through
:meth:`TransactionUser.on_cancel`. Responses are matched to client transactions (17.1.3);
strays are dropped and counted.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Protocol

from callwarden.sip.addressing import Destination, Source, response_destination
from callwarden.sip.client_transaction import (
    InviteClientTransaction,
    NonInviteClientTransaction,
    ResponseCallback,
)
from callwarden.sip.clock import Clock
from callwarden.sip.errors import SipError
from callwarden.sip.message import SipMessage, SipRequest, SipResponse, make_response
from callwarden.sip.server_transaction import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)
from callwarden.sip.tx_base import (
    InviteServerState,
    MessageSender,
    TimerSettings,
    TransactionContext,
    TransactionError,
)
from callwarden.sip.tx_keys import (
    ClientKey,
    ServerKey,
    client_key,
    is_bare_cookie,
    new_branch,
    new_tag,
    rfc2543_server_key,
    server_key,
)

__all__ = [
    "InviteClientTransaction",
    "InviteServerTransaction",
    "LayerLimits",
    "LayerStats",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "ResponseCallback",
    "ServerTransaction",
    "TimerSettings",
    "TransactionLayer",
    "TransactionUser",
]

logger = logging.getLogger(__name__)


def _is_power_of_ten(number: int) -> bool:
    """Log overload at 1, 10, 100... rejections: a flood must not flood the log too."""
    while number % 10 == 0:
        number //= 10
    return number == 1


class TransactionUser(Protocol):
    """What the layer above (UA core, B2BUA) receives."""

    def on_request(self, request: SipRequest, server_tx: ServerTransaction) -> None:
        """A new request (not ACK, not CANCEL); answer it through ``server_tx.respond``."""
        ...

    def on_ack(self, request: SipRequest, source: Source) -> None:
        """An ACK matching no transaction: the ACK for a 2xx (RFC 3261 17.2.3, 13.3.1.4)."""
        ...

    def on_cancel(self, server_tx: InviteServerTransaction) -> None:
        """A CANCEL arrived for this pending INVITE and was answered 200 (RFC 3261 9.2).

        The TU should now answer the INVITE with 487 (Request Terminated)."""
        ...


@dataclass(frozen=True, slots=True)
class LayerLimits:
    """Bounds on the server transaction table (503 beyond them, RFC 3261 21.5.4).

    Transactions stay in the table for their Timer J/L (64*T1 = 32 s) after the final
    response, so one busy source (a trunk, a load generator) holds about
    ``calls per second * 2 * 32`` of them (its INVITE and BYE): 19,200 at 300 calls/s.
    Size the per-source cap above that for the sources you trust with that load.
    """

    max_server_transactions_per_source: int = 50_000
    max_server_transactions: int = 500_000
    retry_after: int = 5


@dataclass(slots=True)
class LayerStats:
    """Counters for monitoring."""

    stray_responses: int = 0
    absorbed_retransmissions: int = 0
    rejected_overload: int = 0
    rejected_no_cookie: int = 0
    rfc2543_requests: int = 0
    foreign_challenges: int = 0


class TransactionLayer:
    """RFC 3261 17 transaction layer; implements the transport's ``TransportUser``."""

    def __init__(
        self,
        sender: MessageSender,
        clock: Clock,
        user: TransactionUser,
        *,
        timers: TimerSettings | None = None,
        limits: LayerLimits | None = None,
    ) -> None:
        self._ctx = TransactionContext(sender, clock, timers or TimerSettings())
        self._sender = sender
        self.user = user
        self.limits = limits or LayerLimits()
        self.stats = LayerStats()
        self._clients: dict[ClientKey, InviteClientTransaction | NonInviteClientTransaction] = {}
        self._servers: dict[ServerKey, ServerTransaction] = {}
        self._per_source: dict[str, int] = {}
        # Bound once: each transaction keeps these for up to 64*T1, a bound method apiece
        # would be one more object per transaction for the garbage collector to walk.
        self._release_server = self._release
        self._release_client_key = self._release_client
        self._spawn = self._spawn_cancel

    @property
    def timers(self) -> TimerSettings:
        return self._ctx.timers

    @property
    def clock(self) -> Clock:
        return self._ctx.clock

    @property
    def client_count(self) -> int:
        return len(self._clients)

    @property
    def server_count(self) -> int:
        return len(self._servers)

    # -- client side -------------------------------------------------------------------------

    def send_request(
        self, request: SipRequest, destination: Destination, on_response: ResponseCallback
    ) -> InviteClientTransaction | NonInviteClientTransaction:
        """Start a client transaction for ``request`` (RFC 3261 17.1).

        When the request has no Via, the transport's Via with a new branch is prepended.
        ``on_response`` receives every provisional and final response, plus a synthesized 408
        (Timer B/F) or 503 (transport error) with ``tx.failure`` set. ACK for 2xx goes through
        :meth:`send_stateless`, CANCEL through :meth:`InviteClientTransaction.cancel`.
        """
        method = request.method
        if method == "ACK":
            raise TransactionError("ACK for 2xx is not a transaction: use send_stateless")
        headers = request.headers
        branch: str | None
        if "Via" in headers:
            branch = request.top_via.branch
            if branch is None:
                raise TransactionError("request has a Via without branch")
        else:
            branch = new_branch()
            headers.prepend("Via", str(self._sender.make_via(branch, destination.transport)))
        key = client_key(branch, method)
        if key in self._clients:
            raise TransactionError(f"a client transaction {branch} {method} already exists")
        tx: InviteClientTransaction | NonInviteClientTransaction
        if method == "INVITE":
            tx = InviteClientTransaction(
                self._ctx,
                request,
                destination,
                key,
                on_response,
                self._release_client_key,
                self._spawn,
            )
        else:
            tx = NonInviteClientTransaction(
                self._ctx, request, destination, key, on_response, self._release_client_key
            )
        self._clients[key] = tx
        tx.start()
        return tx

    def _spawn_cancel(
        self, request: SipRequest, destination: Destination, on_response: ResponseCallback
    ) -> NonInviteClientTransaction:
        tx = self.send_request(request, destination, on_response)
        assert isinstance(tx, NonInviteClientTransaction)
        return tx

    def send_stateless(self, request: SipRequest, destination: Destination) -> None:
        """Send a request outside any transaction: the ACK for a 2xx (RFC 3261 13.2.2.4).

        A Via with a new branch is prepended when the request has none.
        """
        if "Via" not in request.headers:
            via = self._sender.make_via(new_branch(), destination.transport)
            request.headers.prepend("Via", str(via))
        self._sender.send_bytes(bytes(request), destination)

    def _release_client(self, key: ClientKey) -> None:
        self._clients.pop(key, None)

    # -- incoming ------------------------------------------------------------------------------

    def on_message(self, message: SipMessage, source: Source) -> None:
        """Entry point from the transport (``TransportUser``)."""
        if isinstance(message, SipResponse):
            self._on_response(message, source)
        else:
            self._on_request(message, source)

    def _on_response(self, response: SipResponse, source: Source) -> None:
        """Match a response to a client transaction (RFC 3261 17.1.3).

        A challenge (401/407) must come from the address the request was sent to: one from
        anywhere else is dropped unanswered (the SIP digest leak: a third party asking us to
        sign something for its realm), and the transaction goes on waiting for its peer."""
        branch = response.top_via.branch
        tx = None if branch is None else self._clients.get((branch, response.cseq.method))
        if tx is None:
            self.stats.stray_responses += 1
            logger.debug(
                "stray response %s to %s dropped (call %s)",
                response.status,
                response.cseq.method,
                response.call_id,
            )
            return
        if response.status in (401, 407) and not _from_the_peer(tx.destination, source):
            self.stats.foreign_challenges += 1
            logger.warning(
                "%d challenge to our %s (call %s) came from %s, not from %s where it was sent: "
                "dropped, never answered",
                response.status,
                response.cseq.method,
                response.call_id,
                source.remote_host,
                tx.destination.host,
            )
            return
        tx.receive_response(response)

    def _on_request(self, request: SipRequest, source: Source) -> None:
        """Match a request to a server transaction or create one (RFC 3261 17.2.3)."""
        method = request.method
        via = request.top_via
        key = server_key(via, method)
        if key is None:
            if is_bare_cookie(via.branch):
                if method == "ACK":
                    self.user.on_ack(request, source)
                else:
                    self.stats.rejected_no_cookie += 1
                    self._reply_stateless(request, source, 400, "Missing Branch Magic Cookie")
                return
            self.stats.rfc2543_requests += 1
            key = rfc2543_server_key(request)
        tx = self._servers.get(key)
        if method == "ACK":
            if isinstance(tx, InviteServerTransaction) and tx.receive_ack():
                return
            self.user.on_ack(request, source)
            return
        if tx is not None:
            self.stats.absorbed_retransmissions += 1
            tx.receive_retransmission()
            return
        host = source.remote_host
        count = self._per_source.get(host, 0)
        limits = self.limits
        if (
            count >= limits.max_server_transactions_per_source
            or len(self._servers) >= limits.max_server_transactions
        ):
            self.stats.rejected_overload += 1
            rejected = self.stats.rejected_overload
            level = logging.WARNING if _is_power_of_ten(rejected) else logging.DEBUG
            logger.log(
                level,
                "transaction limit reached for %s: 503 to %s (call %s; %s rejected so far)",
                host,
                method,
                request.call_id,
                rejected,
            )
            self._reply_stateless(
                request, source, 503, None, (("Retry-After", str(limits.retry_after)),)
            )
            return
        self._per_source[host] = count + 1
        if method == "INVITE":
            invite_tx = InviteServerTransaction(
                self._ctx, request, source, key, self._release_server
            )
            self._servers[key] = invite_tx
            invite_tx.start()
            self.user.on_request(request, invite_tx)
            return
        server_tx = NonInviteServerTransaction(
            self._ctx, request, source, key, self._release_server
        )
        self._servers[key] = server_tx
        if method == "CANCEL":
            self._on_cancel(server_tx, key)
        else:
            self.user.on_request(request, server_tx)

    def _on_cancel(self, cancel_tx: NonInviteServerTransaction, key: ServerKey) -> None:
        """Answer a CANCEL and tell the TU (RFC 3261 9.2).

        481 when it matches no INVITE transaction; otherwise 200 with the To tag the INVITE's
        responses carry (a new one, remembered on the INVITE transaction, when none was sent).
        The TU hears of it only while the INVITE has no final response.
        """
        invite_tx = self._servers.get((key[0], key[1], key[2], "INVITE"))
        if not isinstance(invite_tx, InviteServerTransaction):
            cancel_tx.respond_with(481)
            return
        to_tag = invite_tx.request.to.tag
        last = invite_tx.last_response
        if to_tag is None and last is not None and last.status > 100:
            to_tag = last.to.tag
        if to_tag is None:
            to_tag = invite_tx.cancel_to_tag or new_tag()
            invite_tx.cancel_to_tag = to_tag
        cancel_tx.respond_with(200, to_tag=to_tag)
        if invite_tx.state is InviteServerState.PROCEEDING and not invite_tx.cancelled:
            invite_tx.cancelled = True
            self.user.on_cancel(invite_tx)

    def _release(self, tx: ServerTransaction) -> None:
        if self._servers.get(tx.key) is tx:
            del self._servers[tx.key]
            host = tx.source.remote_host
            count = self._per_source.get(host, 0) - 1
            if count > 0:
                self._per_source[host] = count
            else:
                self._per_source.pop(host, None)

    def _reply_stateless(
        self,
        request: SipRequest,
        source: Source,
        status: int,
        reason: str | None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Answer without a transaction (RFC 3261 8.2.7 / 17.2)."""
        try:
            response = make_response(request, status, reason, to_tag=new_tag())
            for name, value in headers:
                response.headers.add(name, value)
            destination = response_destination(source, request.top_via)
            self._sender.send_bytes(bytes(response), destination)
        except SipError as error:
            logger.info("cannot answer %s statelessly: %s", request.method, error)


def _from_the_peer(destination: Destination, source: Source) -> bool:
    """Whether a response arrived from the address its request was sent to. A destination
    named by a host name is resolved in the transport, not here, and is not checked."""
    try:
        sent_to = ipaddress.ip_address(destination.host)
    except ValueError:
        return True
    try:
        came_from = ipaddress.ip_address(source.remote_host)
    except ValueError:
        return False
    return _unmapped(came_from) == _unmapped(sent_to)


def _unmapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> object:
    """An IPv4-mapped IPv6 address (a dual-stack socket's view) as its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
