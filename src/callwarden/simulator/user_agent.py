"""A simulated phone's SIP user agent core (RFC 3261 8): its own UDP port, a transaction layer,
its dialogs, and the calls on them.

It is the transaction layer's user: a new INVITE becomes an :class:`IncomingCall` handed to
the phone's owner (none: 480), BYE ends the call of its dialog (481 without one, RFC 3261
15.1.2), CANCEL ends a ringing call, OPTIONS is answered, anything else refused. It talks to
the node only over the network, like any phone.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from callwarden.simulator.audio import SpeechLoop
from callwarden.simulator.calls import CallState, IncomingCall, OutgoingCall, SipCall
from callwarden.simulator.rtp_session import MediaTicker, RtpCounters, RtpSession
from callwarden.sip.addressing import Destination, Source
from callwarden.sip.clock import Clock
from callwarden.sip.headers import NameAddress
from callwarden.sip.message import SipRequest, make_response
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.sip.transaction import TransactionLayer
from callwarden.sip.transport import SipTransport
from callwarden.sip.tx_keys import new_tag
from callwarden.sip.ua_core import UserAgentCore
from callwarden.sip.uri import SipUri

__all__ = ["IncomingCallHandler", "UserAgent"]

logger = logging.getLogger(__name__)

USER_AGENT = "callwarden-simulator"


class IncomingCallHandler(Protocol):
    def on_incoming(self, call: IncomingCall) -> None:
        """A new call rings: call ``call.ring()`` (through :meth:`UserAgent.spawn`), then
        ``answer()`` or ``reject()``."""
        ...


class UserAgent(UserAgentCore[SipCall]):
    """One simulated phone (or the trunk of simulated customers) on ``host``:``port``."""

    user_agent = USER_AGENT

    def __init__(
        self,
        clock: Clock,
        *,
        name: str,
        host: str,
        port: int,
        node: Destination,
        ticker: MediaTicker,
        voices: tuple[SpeechLoop, ...],
        rng: random.Random,
        rtp_totals: RtpCounters,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.name = name
        self.host = host
        self.node = node
        self.ticker = ticker
        self.handler: IncomingCallHandler | None = None
        self._voices = voices
        self._rng = rng
        self._rtp_totals = rtp_totals
        self.transport = SipTransport(clock, host=host, port=port, enable_tcp=False)
        self.layer = TransactionLayer(self.transport, clock, self)
        self._ringing: dict[int, IncomingCall] = {}
        self.calls: set[SipCall] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return self.transport.port

    def contact(self, user: str | None = None) -> NameAddress:
        """Where this phone is reached (Contact of REGISTER, INVITE and 2xx)."""
        return NameAddress(None, self.transport.contact_uri("UDP", user or self.name))

    async def start(self) -> None:
        await self.transport.start(self.layer)

    async def close(self) -> None:
        """Hang up what is still up, stop listening, cancel background work."""
        for call in list(self.calls):
            call.stop()
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.transport.close()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a step of a call in the background; it is cancelled by :meth:`close`."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: a call step failed", self.name, exc_info=task.exception())

    def new_media(self) -> RtpSession:
        voice = self._rng.choice(self._voices)
        return RtpSession(voice, random.Random(self._rng.getrandbits(64)), totals=self._rtp_totals)

    # -- calls ---------------------------------------------------------------------------------

    def place_call(
        self, caller: str, number: str, on_ended: Callable[[SipCall], None]
    ) -> OutgoingCall:
        """Call ``number`` at the node as ``caller``: the RTP port opens, then the INVITE goes."""
        call = OutgoingCall(self, self.new_media(), caller=caller, number=number)
        call.on_ended = on_ended
        self.calls.add(call)
        self.spawn(self._dial(call))
        return call

    async def _dial(self, call: OutgoingCall) -> None:
        try:
            await call.media.open(self.host)
        except OSError as error:
            logger.warning("%s: no RTP port for a call: %s", self.name, error)
            call.fail(str(error))
            return
        if call.state is CallState.ENDED:  # cancelled while the port was opened
            call.media.close()
            return
        call.start()

    def forget(self, call: SipCall) -> None:
        self.calls.discard(call)
        if isinstance(call, IncomingCall):
            self._ringing.pop(id(call.transaction), None)

    # -- TransactionUser (INVITE, BYE, ACK and CANCEL; the rest is UserAgentCore's) ------------

    def _on_invite(self, server_tx: InviteServerTransaction) -> None:
        request = server_tx.request
        uri = request.uri
        if self.handler is None or not isinstance(uri, SipUri):
            server_tx.respond(make_response(request, 480, to_tag=new_tag()))
            return
        call = IncomingCall(self, self.new_media(), server_tx)
        self.calls.add(call)
        self._ringing[id(server_tx)] = call
        self.handler.on_incoming(call)

    def _on_bye(self, call: SipCall, request: SipRequest) -> None:
        call.on_bye(request)

    def on_ack(self, request: SipRequest, source: Source) -> None:
        call = self.call_of(request)
        if isinstance(call, IncomingCall):
            call.on_ack(request)

    def on_cancel(self, server_tx: InviteServerTransaction) -> None:
        call = self._ringing.get(id(server_tx))
        if call is not None:
            call.on_cancel()
        elif server_tx.last_response is None or server_tx.last_response.status < 200:
            server_tx.respond(make_response(server_tx.request, 487, to_tag=new_tag()))
