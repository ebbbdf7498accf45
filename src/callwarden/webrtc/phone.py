"""One browser phone: a web session's peer connection, its relay and the call ringing or
connected on it, driven by the signalling messages of the page (docs/webrtc.md).

From the page: `offer` (SDP), `candidate`, `answer_call`, `hang_up`, `dtmf`, `hold`, `resume`,
`ping`. To the page: `answer` (SDP), `ready` (reachable for calls), `ringing`, `connected`
(with the call's `rejoin_token`), `held`, `resumed`, `ended`, `error` (with an `error_id`),
`pong`, `media_lost` and `rejoined` (below), and `closed` (with the reason) when the phone is
closed.

A call in progress outlives a short loss of the page: when its signalling socket drops
(`detach`) or its peer connection fails, the call stays up, the customer hearing silence, for
`grace_seconds`. The same web session's page may take the phone back in that time (`attach`,
with the phone's rejoin token) and negotiate a new peer connection, which carries the call's
audio again (`rejoined`); when the time runs out the call is hung up (`connection_lost`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from callwarden.domain.ids import UserId
from callwarden.media.g711 import Encoding
from callwarden.security.sessions import SessionId
from callwarden.sip.clock import Clock, TimerHandle
from callwarden.sip.errors import SipError
from callwarden.sip.sdp import NegotiatedMedia
from callwarden.webrtc.audio import BridgeAudioTrack
from callwarden.webrtc.codecs import DEFAULT_CODECS
from callwarden.webrtc.contacts import BrowserCall, CallPhase
from callwarden.webrtc.peer import BrowserPeer, SignallingError
from callwarden.webrtc.relay import RelayTarget, RtpRelay

__all__ = ["Attachment", "BrowserPhone", "Send"]

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
DTMF_DIGITS = frozenset("0123456789*#ABCD")


class Attachment:
    """One signalling socket of the page that the phone talks through; `ended` is set once the
    phone has let it go (another socket of the same session took the phone, or it closed)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.ended = asyncio.Event()


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
        clock: Clock,
        grace_seconds: float = 0.0,
        on_reachable: Callable[[BrowserPhone], None],
        on_closed: Callable[[BrowserPhone], None],
    ) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.username = username
        self.key = key
        self.host = host
        self.attachment: Attachment | None = Attachment(send)
        self._codecs = tuple(codecs)
        self._clock = clock
        self.grace_seconds = grace_seconds
        self._grace: TimerHandle | None = None
        self._lost_at = 0.0
        self.rejoin_token = secrets.token_urlsafe(32)
        self._on_reachable = on_reachable
        self._on_closed = on_closed
        self.track = BridgeAudioTrack()
        self.relay = RtpRelay(self.track)
        self.peer = self._new_peer()
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
        self.rejoin_token = secrets.token_urlsafe(32)
        logger.info("browser phone of %s answered call %s", self.username, call.call_id)
        connected: dict[str, Any] = {"type": "connected", "call_id": call.call_id}
        connected["codec"] = self.peer.codec
        if self.grace_seconds > 0:
            connected["rejoin_token"] = self.rejoin_token
            connected["rejoin_seconds"] = self.grace_seconds
        await self._tell(connected)

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
        if self._grace is not None or self.attachment is None:  # the page or its media is gone
            self._spawn(self.close("connection_lost"))

    # -- peer --------------------------------------------------------------------------------------

    def _new_peer(self) -> BrowserPeer:
        """A peer connection for the page's next offer; only the phone's current one is heard."""

        def connected() -> None:
            if self.peer is peer:
                self._connected()

        def closed() -> None:
            if self.peer is peer:
                self._peer_closed()

        peer = BrowserPeer(
            self.relay, self.track, on_connected=connected, on_closed=closed, codecs=self._codecs
        )
        return peer

    def _connected(self) -> None:
        if self.closed.is_set():
            return
        if self._grace is not None:
            self._media_back()
        if self.reachable:
            return
        self.reachable = True
        self._on_reachable(self)
        self._spawn(self._tell({"type": "ready"}))

    def _peer_closed(self) -> None:
        if self.closed.is_set():
            return
        if not self._holds_call():
            self._spawn(self.close("media_failed"))
            return
        self._start_grace("media lost")
        self._spawn(self._tell({"type": "media_lost"}))

    # -- a short loss of the page (docs/webrtc.md, "A call survives a short network change") ---

    @property
    def in_grace(self) -> bool:
        """The call waits for the page's media to come back."""
        return self._grace is not None

    def _holds_call(self) -> bool:
        call = self.call
        return self.grace_seconds > 0 and call is not None and call.phase is CallPhase.TALKING

    async def detach(self, attachment: Attachment) -> None:
        """The page's socket `attachment` dropped without the page leaving: a call in progress
        is held for the grace period; otherwise the phone closes as the page has gone."""
        if attachment is not self.attachment or self.closed.is_set():
            return
        self.attachment = None
        attachment.ended.set()
        if not self._holds_call():
            await self.close("page_closed")
            return
        self._start_grace("signalling lost")  # its peer connection may carry on meanwhile

    async def attach(self, send: Send) -> Attachment | None:
        """The same session's page takes the phone back (its rejoin token checked by
        `BrowserPhones.rejoin`): None when there is no call in progress to take back. The page
        negotiates a new peer connection; until it is up the grace period keeps running."""
        if self.closed.is_set() or not self._holds_call():
            return None
        previous, self.attachment = self.attachment, Attachment(send)
        if previous is not None:  # an older socket the node had not seen drop yet
            previous.ended.set()
        self.rejoin_token = secrets.token_urlsafe(32)
        self._start_grace("page rejoining")
        await self._replace_peer()
        return self.attachment

    async def _replace_peer(self) -> None:
        old, self.peer = self.peer, self._new_peer()
        await old.close()

    def _start_grace(self, why: str) -> None:
        if self._grace is not None:
            return
        call_id = self.call.call_id if self.call is not None else None
        logger.info(
            "browser phone of %s: %s; call %s kept for %.0f s",
            self.username,
            why,
            call_id,
            self.grace_seconds,
        )
        self._lost_at = self._clock.now()
        self._grace = self._clock.call_later(self.grace_seconds, self._grace_over)

    def _stop_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    def _media_back(self) -> None:
        self._stop_grace()
        call = self.call
        if call is None:
            return
        logger.info(
            "browser phone of %s: call %s has its media back after %.1f s",
            self.username,
            call.call_id,
            self._clock.now() - self._lost_at,
        )
        message = {"type": "rejoined", "call_id": call.call_id, "held": self.held}
        self._spawn(self._tell({**message, "codec": self.peer.codec}))

    def _grace_over(self) -> None:
        self._grace = None
        if self.closed.is_set():
            return
        call_id = self.call.call_id if self.call is not None else None
        logger.warning(
            "browser phone of %s: call %s ended, the connection was lost for %.0f s",
            self.username,
            call_id,
            self.grace_seconds,
        )
        self._spawn(self.close("connection_lost"))

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
            self._stop_grace()
            self.reachable = False
            call, self.call = self.call, None
            if call is not None:
                call.hang_up()
            self.relay.close()
            self.track.stop()
            self._on_closed(self)
            await self.peer.close()
            logger.info("browser phone of %s closed (%s)", self.username, reason)
            if call is not None:
                await self._tell({"type": "ended", "call_id": call.call_id, "reason": reason})
            await self._tell({"type": "closed", "reason": reason})
        finally:
            if self.attachment is not None:
                self.attachment.ended.set()
            self._finished.set()

    async def finished(self) -> None:
        """Until the phone has closed (its peer connection too)."""
        await self._finished.wait()

    async def _tell(self, message: dict[str, Any]) -> None:
        attachment = self.attachment
        if attachment is None:  # no page holds the phone (in its grace period)
            return
        try:
            await attachment.send(message)
        except (OSError, RuntimeError) as error:  # the page has gone; the phone closes with it
            logger.debug("browser phone of %s: not sent: %s", self.username, error)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
