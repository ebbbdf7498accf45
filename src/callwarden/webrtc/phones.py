"""`BrowserPhones`: the node's browser phones, by web session.

A phone is opened by the page's signalling WebSocket and closed with it. While its peer
connection is up it is one more registered contact of its user (`ContactRegistry`), so the
user's calls and queue offers ring it too and the first phone to answer wins. Each phone is
bound to the web session that opened it: when that session ends (sign-out, expiry, the user
disabled: `SessionsRevoked`, from any thread) its phones are closed on the event loop at once,
which hangs up their calls and closes their peer connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from callwarden.domain.ids import UserId
from callwarden.security.sessions import SessionId, SessionRevocations, SessionsRevoked
from callwarden.sip.addressing import Destination
from callwarden.sip.uri import SipUri
from callwarden.webrtc.codecs import DEFAULT_CODECS, codec_preference
from callwarden.webrtc.contacts import BrowserContacts
from callwarden.webrtc.phone import BrowserPhone, Send
from callwarden.webrtc.turn import IceSettings

__all__ = ["BrowserPhones", "ContactRegistry", "TooManyPhones", "WebRtcSettings"]

logger = logging.getLogger(__name__)


class ContactRegistry(Protocol):
    """Where a user's phones are registered (`telephony.registrar.Registrar`)."""

    def bind_local(self, username: str, contact: SipUri, destination: Destination) -> None: ...

    def unbind_local(self, username: str, contact: SipUri) -> None: ...


class TooManyPhones(Exception):  # noqa: N818 - named after what it is
    """The node carries its configured number of browser phones."""


@dataclass(frozen=True)
class WebRtcSettings:
    """`host`: the loopback address of the browser phones' SIP agent and relays;
    `ice`: the STUN and TURN servers of the pages (docs/webrtc.md);
    `max_phones`: browser phones the node carries at once; `max_per_session`: open at once by
    one web session (a page and its reload), so one session cannot take them all;
    `codecs`: the browser codecs in order of preference (`webrtc.codecs`)."""

    host: str = "127.0.0.1"
    ice: IceSettings = field(default_factory=IceSettings)
    max_phones: int = 500
    max_per_session: int = 2
    codecs: tuple[str, ...] = DEFAULT_CODECS

    def __post_init__(self) -> None:
        object.__setattr__(self, "codecs", codec_preference(self.codecs))


class BrowserPhones:
    def __init__(
        self,
        contacts: BrowserContacts,
        registry: ContactRegistry,
        revocations: SessionRevocations,
        settings: WebRtcSettings | None = None,
    ) -> None:
        self._contacts = contacts
        self._registry = registry
        self._revocations = revocations
        self.settings = settings or WebRtcSettings()
        self._phones: dict[SessionId, set[BrowserPhone]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
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
        phone = BrowserPhone(
            session_id=session_id,
            user_id=user_id,
            username=username,
            key=key,
            host=self.settings.host,
            codecs=self.settings.codecs,
            send=send,
            on_reachable=self._reachable,
            on_closed=self._closed,
        )
        await phone.start()
        self._phones.setdefault(session_id, set()).add(phone)
        self._contacts.add(key, phone)
        return phone

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
        self._registry.unbind_local(phone.username, self._contact(phone))
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
