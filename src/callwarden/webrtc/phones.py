"""`BrowserPhones`: the node's browser phones, by web session.

A phone is opened by the page's signalling WebSocket and closed with it. While its peer
connection is up it is one more registered contact of its user (`ContactRegistry`), so the
user's calls and queue offers ring it too and the first phone to answer wins. Each phone is
bound to the web session that opened it: when that session ends (sign-out, expiry, the user
disabled: `SessionsRevoked`, from any thread) its phones are closed on the event loop at once,
which hangs up their calls and closes their peer connections. A phone whose page was lost
during a call waits `rejoin_grace_seconds` for the same session's page to take it back
(`rejoin`, with the phone's rejoin token); a revoked session closes it at once all the same.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from callwarden.domain.ids import UserId
from callwarden.security.sessions import SessionId, SessionRevocations, SessionsRevoked
from callwarden.sip.addressing import Destination
from callwarden.sip.clock import Clock, LoopClock
from callwarden.sip.uri import SipUri
from callwarden.webrtc.codecs import DEFAULT_CODECS, codec_preference
from callwarden.webrtc.contacts import BrowserContacts
from callwarden.webrtc.phone import Attachment, BrowserPhone, Send
from callwarden.webrtc.turn import IceSettings

__all__ = ["BrowserPhones", "ContactRegistry", "TooManyPhones", "WebRtcSettings"]

logger = logging.getLogger(__name__)


class ContactRegistry(Protocol):
    """Where a user's phones are registered (`telephony.registrar.Registrar`)."""

    def bind_local(self, username: str, contact: SipUri, destination: Destination) -> None: ...

    def unbind_local(self, username: str, contact: SipUri) -> None: ...


MAX_REJOIN_GRACE = 60.0
"""The longest a call may wait for its page: meanwhile the browser's leg sends the bridge no
audio, and the media engine ends a leg silent that long (`rtp_timeout`, 60 s by default)."""
_MAX_TOKEN = 100
"""A rejoin token is 43 characters; anything longer is refused before it is compared."""


class TooManyPhones(Exception):  # noqa: N818 - named after what it is
    """The node carries its configured number of browser phones."""


@dataclass(frozen=True)
class WebRtcSettings:
    """`host`: the loopback address of the browser phones' SIP agent and relays;
    `ice`: the STUN and TURN servers of the pages (docs/webrtc.md);
    `max_phones`: browser phones the node carries at once; `max_per_session`: open at once by
    one web session (a page and its reload), so one session cannot take them all;
    `codecs`: the browser codecs in order of preference (`webrtc.codecs`);
    `rejoin_grace_seconds`: how long a call in progress waits for its page after the page's
    signalling or media dropped (0: the call ends with the page, at most `MAX_REJOIN_GRACE`)."""

    host: str = "127.0.0.1"
    ice: IceSettings = field(default_factory=IceSettings)
    max_phones: int = 500
    max_per_session: int = 2
    codecs: tuple[str, ...] = DEFAULT_CODECS
    rejoin_grace_seconds: float = 15.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "codecs", codec_preference(self.codecs))
        grace = self.rejoin_grace_seconds
        if not 0 <= grace <= MAX_REJOIN_GRACE:  # also refuses NaN
            raise ValueError(
                f"rejoin_grace_seconds must be between 0 and {MAX_REJOIN_GRACE:.0f} (got {grace})"
            )


class BrowserPhones:
    def __init__(
        self,
        contacts: BrowserContacts,
        registry: ContactRegistry,
        revocations: SessionRevocations,
        settings: WebRtcSettings | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._contacts = contacts
        self._clock = clock
        self._registry = registry
        self._revocations = revocations
        self.settings = settings or WebRtcSettings()
        self._phones: dict[SessionId, set[BrowserPhone]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._clock is None:
            self._clock = LoopClock(self._loop)
        await self._contacts.start()
        self._unsubscribe = self._revocations.subscribe(self.on_revoked)

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for phones in list(self._phones.values()):
            for phone in list(phones):
                await phone.close("shutdown")
        if self._closing:
            await asyncio.wait(self._closing)
        await self._contacts.close()

    def __len__(self) -> int:
        return sum(len(phones) for phones in self._phones.values())

    def of_session(self, session_id: SessionId) -> frozenset[BrowserPhone]:
        return frozenset(self._phones.get(session_id, ()))

    async def open(
        self, session_id: SessionId, user_id: UserId, username: str, send: Send
    ) -> BrowserPhone:
        """A new phone of `session_id`'s page (not yet reachable: it needs its media up)."""
        if len(self) >= self.settings.max_phones:
            raise TooManyPhones(f"{self.settings.max_phones} browser phones are open")
        if len(self._phones.get(session_id, ())) >= self.settings.max_per_session:
            raise TooManyPhones(f"{self.settings.max_per_session} browser phones of this session")
        key = self._contacts.new_key()
        assert self._clock is not None, "BrowserPhones.start() first"
        phone = BrowserPhone(
            session_id=session_id,
            user_id=user_id,
            username=username,
            key=key,
            host=self.settings.host,
            codecs=self.settings.codecs,
            clock=self._clock,
            grace_seconds=self.settings.rejoin_grace_seconds,
            send=send,
            on_reachable=self._reachable,
            on_closed=self._closed,
        )
        await phone.start()
        self._phones.setdefault(session_id, set()).add(phone)
        self._contacts.add(key, phone)
        return phone

    async def rejoin(
        self, session_id: SessionId, token: object, send: Send
    ) -> tuple[BrowserPhone, Attachment] | None:
        """The phone of `session_id` whose call is in progress and whose rejoin token is `token`,
        now talking through `send`; None otherwise. Only the session's own phones are compared
        (in constant time), so a token presented by another session finds nothing, exactly as
        a wrong one, and the phone it names carries on untouched."""
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN:
            return None
        presented = token.encode()
        for phone in list(self._phones.get(session_id, ())):
            if hmac.compare_digest(phone.rejoin_token.encode(), presented):
                attachment = await phone.attach(send)
                if attachment is None:
                    break
                logger.info("browser phone of %s taken back by its page", phone.username)
                return phone, attachment
        logger.info("a page's rejoin was refused: no call of its session holds that token")
        return None

    def _contact(self, phone: BrowserPhone) -> SipUri:
        uri = self._contacts.contact(phone.key).uri
        assert isinstance(uri, SipUri)
        return uri

    def _reachable(self, phone: BrowserPhone) -> None:
        contact = self._contact(phone)
        destination = Destination("UDP", contact.host, contact.port or 5060)
        self._registry.bind_local(phone.username, contact, destination)
        logger.info("browser phone of %s is reachable", phone.username)

    def _closed(self, phone: BrowserPhone) -> None:
        """A phone has begun to close: forgotten at once, waited for by `close()`."""
        self._registry.unbind_local(phone.username, self._contact(phone))
        finishing = asyncio.get_running_loop().create_task(phone.finished())
        self._closing.add(finishing)
        finishing.add_done_callback(self._closing.discard)
        self._contacts.remove(phone.key)
        phones = self._phones.get(phone.session_id)
        if phones is not None:
            phones.discard(phone)
            if not phones:
                del self._phones[phone.session_id]

    def on_revoked(self, event: SessionsRevoked) -> None:
        """`SessionRevocations` listener: safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._revoke(event)
        else:
            loop.call_soon_threadsafe(self._revoke, event)

    def _revoke(self, event: SessionsRevoked) -> None:
        for session_id in event.session_ids:
            for phone in list(self._phones.get(session_id, ())):
                logger.info(
                    "closing the browser phone of %s: session ended (%s)",
                    phone.username,
                    event.reason.value,
                )
                task = asyncio.get_running_loop().create_task(phone.close(event.reason.value))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
