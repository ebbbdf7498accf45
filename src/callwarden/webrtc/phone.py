"""One browser phone: a web session's peer connection, its relay and the call ringing or
connected on it, driven by the signalling messages of the page (docs/webrtc.md).

From the page: `offer` (SDP), `candidate`, `answer_call`, `hang_up`, `dtmf`, `hold`, `resume`,
`ping`. To the page: `answer` (SDP), `ready` (reachable for calls), `ringing`, `connected`,
`held`, `resumed`, `ended`, `error`
(with an `error_id`), `pong`, and `closed` (with the reason) when the phone is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from callwarden.domain.ids import UserId
from callwarden.media.g711 import Encoding
from callwarden.security.sessions import SessionId
from callwarden.sip.errors import SipError
from callwarden.sip.sdp import NegotiatedMedia
from callwarden.webrtc.audio import BridgeAudioTrack
from callwarden.webrtc.codecs import DEFAULT_CODECS
from callwarden.webrtc.contacts import BrowserCall, CallPhase
from callwarden.webrtc.peer import BrowserPeer, SignallingError
from callwarden.webrtc.relay import RelayTarget, RtpRelay

__all__ = ["BrowserPhone", "Send"]

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
DTMF_DIGITS = frozenset("0123456789*#ABCD")


class BrowserPhone:
    def __init__(
        self,
        *,
        session_id: SessionId,
        user_id: UserId,
        username: str,
        key: str,
        host: str,
        send: Send,
        codecs: Sequence[str] = DEFAULT_CODECS,
        on_reachable: Callable[[BrowserPhone], None],
        on_closed: Callable[[BrowserPhone], None],
    ) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.username = username
        self.key = key
        self.host = host
        self._send = send
        self._on_reachable = on_reachable
        self._on_closed = on_closed
        self.track = BridgeAudioTrack()
        self.relay = RtpRelay(self.track)
        self.peer = BrowserPeer(
            self.relay,
            self.track,
            on_connected=self._connected,
            on_closed=self._peer_closed,
            codecs=codecs,
        )
        self.call: BrowserCall | None = None
        self.relay_port = 0
        self.closed = asyncio.Event()
        self._finished = asyncio.Event()
        self.close_reason = ""
        self.reachable = False
        self.held = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.relay_port = await self.relay.open(self.host)

    # -- from the page --------------------------------------------------------------------------

    async def handle(self, message: object) -> None:
        """One signalling message of the page; a bad one is answered with an error."""
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._tell({"type": "error", "error_id": "bad_message"})
            return
        kind = message["type"]
        try:
            if kind == "ping":
                await self._tell({"type": "pong"})
            elif kind == "offer":
                sdp = message.get("sdp")
                if not isinstance(sdp, str):
                    raise SignallingError("bad_offer", "the offer's sdp must be a string")
                await self._tell({"type": "answer", "sdp": await self.peer.answer(sdp)})
            elif kind == "candidate":
                candidate, mid = message.get("candidate"), message.get("sdpMid")
                if not isinstance(candidate, str) or not (mid is None or isinstance(mid, str)):
                    raise SignallingError("bad_candidate", "candidate must be a string")
                await self.peer.add_candidate(candidate, mid)
            elif kind == "answer_call":
                await self._answer_call()
            elif kind == "hang_up":
                await self._hang_up()
            elif kind == "dtmf":
                await self._dtmf(message.get("digit"))
            elif kind in ("hold", "resume"):
                self._hold(hold=kind == "hold")
            else:
                raise SignallingError("unknown_type", f"unknown message type {kind[:30]!r}")
        except SignallingError as error:
            logger.info("browser phone of %s: %s (%s)", self.username, error.error_id, error)
            await self._tell({"type": "error", "error_id": error.error_id})

    async def _answer_call(self) -> None:
        call = self.call
        if call is None or call.phase is not CallPhase.RINGING:
            raise SignallingError("no_ringing_call", "nothing rings")
        if not self.reachable:
            raise SignallingError("media_not_connected", "the peer connection is not up")
        try:
            negotiated = call.answer()
        except SipError as error:
            raise SignallingError("no_ringing_call", str(error)) from error
        self._connect_relay(negotiated)
        self.relay.muted = self.held = False
        logger.info("browser phone of %s answered call %s", self.username, call.call_id)
        await self._tell({"type": "connected", "call_id": call.call_id, "codec": self.peer.codec})

    async def _hang_up(self) -> None:
        call, self.call = self.call, None
        if call is None:
            raise SignallingError("no_call", "no call to hang up")
        self.relay.disconnect()
        call.hang_up()
        await self._tell({"type": "ended", "call_id": call.call_id, "reason": "hung_up"})

    async def _dtmf(self, digit: object) -> None:
        if not isinstance(digit, str) or digit not in DTMF_DIGITS:
            raise SignallingError("bad_digit", "a digit is one of 0-9 * # A-D")
        if self.call is None or self.call.phase is not CallPhase.TALKING:
            raise SignallingError("no_call", "no call to send a digit on")
        if not self.relay.send_digit(digit):
            raise SignallingError("dtmf_not_negotiated", "the call has no telephone-event")

    def _hold(self, *, hold: bool) -> None:
        """Hold (RFC 3264 8.4 `sendonly`: the customer hears nothing from this side) or resume;
        the page hears `held` or `resumed` once the node agreed."""
        call = self.call
        if call is None or call.phase is not CallPhase.TALKING:
            raise SignallingError("no_call", "no call to hold")
        try:
            call.reoffer(hold=hold, on_done=partial(self._held, call, hold))
        except SipError as error:
            raise SignallingError("hold_in_progress", str(error)) from error

    def _held(self, call: BrowserCall, hold: bool, negotiated: NegotiatedMedia | None) -> None:
        if call is not self.call:
            return
        if negotiated is None:
            self._spawn(self._tell({"type": "error", "error_id": "hold_refused"}))
            return
        self._connect_relay(negotiated)
        self.relay.muted = hold
        self.held = hold
        self._spawn(self._tell({"type": "held" if hold else "resumed", "call_id": call.call_id}))

    def _connect_relay(self, negotiated: NegotiatedMedia) -> None:
        self.relay.connect(
            RelayTarget(
                negotiated.remote_address,
                negotiated.remote_port,
                negotiated.payload_type,
                Encoding.from_name(negotiated.encoding),
                negotiated.dtmf_payload_type,
            )
        )

    # -- from the SIP side (CallHolder) -----------------------------------------------------------

    def offer(self, call: BrowserCall) -> bool:
        if not self.reachable or self.call is not None or self.closed.is_set():
            return False
        try:
            call.prepare(self.host, self.relay_port)
        except SipError as error:
            logger.info("browser phone of %s: unusable offer: %s", self.username, error)
            call.reject(error.status)
            return False
        self.call = call
        call.ring()
        self._spawn(self._tell({"type": "ringing", "call_id": call.call_id}))
        return True

    def call_ended(self, call: BrowserCall, reason: str) -> None:
        if call is not self.call:
            return
        self.call = None
        self.relay.disconnect()
        self._spawn(self._tell({"type": "ended", "call_id": call.call_id, "reason": reason}))

    # -- peer --------------------------------------------------------------------------------------

    def _connected(self) -> None:
        if self.reachable or self.closed.is_set():
            return
        self.reachable = True
        self._on_reachable(self)
        self._spawn(self._tell({"type": "ready"}))

    def _peer_closed(self) -> None:
        if not self.closed.is_set():
            self._spawn(self.close("media_failed"))

    # -- ending --------------------------------------------------------------------------------

    async def close(self, reason: str) -> None:
        """Hang up, close the media and tell the page why (the first reason wins; a second
        caller waits until the first has finished)."""
        if self.closed.is_set():
            await self._finished.wait()
            return
        self.close_reason = reason
        self.closed.set()
        try:
            self.reachable = False
            call, self.call = self.call, None
            if call is not None:
                call.hang_up()
            self.relay.close()
            self.track.stop()
            self._on_closed(self)
            await self.peer.close()
            logger.info("browser phone of %s closed (%s)", self.username, reason)
            await self._tell({"type": "closed", "reason": reason})
        finally:
            self._finished.set()

    async def _tell(self, message: dict[str, Any]) -> None:
        try:
            await self._send(message)
        except (OSError, RuntimeError) as error:  # the page has gone; the phone closes with it
            logger.debug("browser phone of %s: not sent: %s", self.username, error)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
