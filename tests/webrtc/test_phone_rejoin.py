"""A browser phone keeps a call in progress while its page is away (docs/webrtc.md, "A call
survives a short network change").

The world: `BrowserPhones` with its SIP agent on loopback, a customer that is a plain SIP user
agent over UDP (INVITE, ACK, answering BYE) with an RTP endpoint playing 440 Hz, and the page
played by an aiortc peer connection with an 880 Hz microphone whose signalling messages go
straight to the phone. The grace period runs on a fake clock. Outcomes checked: the customer
gets a BYE or not, the audio both ways by FFT, what the page is told, the phone's registration.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from callwarden.domain.ids import UserId
from callwarden.security.sessions import (
    SessionEndReason,
    SessionId,
    SessionRevocations,
    SessionsRevoked,
)
from callwarden.sip.clock import FakeClock, LoopClock
from callwarden.telephony.registrar import Registrar
from callwarden.webrtc.contacts import BrowserContacts
from callwarden.webrtc.phone import Attachment, BrowserPhone
from callwarden.webrtc.phones import BrowserPhones, WebRtcSettings
from webrtc.phone_support import BROWSER_HZ, CUSTOMER_HZ, WAIT, Customer, PageMedia

GRACE = 15.0
SESSION = SessionId("session-of-the-operator")
OTHER_SESSION = SessionId("another-session-of-the-operator")
USER = UserId(7)


class Page:
    """The page: its inbox of the phone's messages (which it sends straight to the phone) and
    its media."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.media = PageMedia()

    async def send(self, message: dict[str, Any]) -> None:
        await self.inbox.put(message)

    async def expect(self, kind: str) -> dict[str, Any]:
        """The next message of `kind` (others before it are skipped)."""
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.inbox.get()
                if message["type"] == kind:
                    return message

    def drain(self) -> list[dict[str, Any]]:
        messages = []
        while not self.inbox.empty():
            messages.append(self.inbox.get_nowait())
        return messages

    async def negotiate(self, phone: BrowserPhone, until: str) -> None:
        await self.media.negotiate(phone.handle, self.expect, until)

    async def hangs_up_its_media(self) -> None:
        await self.media.close()

    def peak(self) -> float:
        return self.media.peak()


@dataclass
class World:
    phones: BrowserPhones
    contacts: BrowserContacts
    registrar: Registrar
    revocations: SessionRevocations
    grace: FakeClock
    customer: Customer
    page: Page
    phone: BrowserPhone
    attachment: Attachment


@asynccontextmanager
async def _world(grace_seconds: float = GRACE) -> AsyncIterator[World]:
    loop_clock = LoopClock(asyncio.get_running_loop())
    grace = FakeClock()
    contacts = BrowserContacts(loop_clock, host="127.0.0.1")
    registrar = Registrar(loop_clock)
    revocations = SessionRevocations()
    settings = WebRtcSettings(rejoin_grace_seconds=grace_seconds)
    phones = BrowserPhones(contacts, registrar, revocations, settings, clock=grace)
    await phones.start()
    customer = await Customer.start()
    pages = [Page()]
    made: list[World] = []
    try:
        page = pages[0]
        phone = await phones.open(SESSION, USER, "operator", page.send)
        assert phone.attachment is not None
        await page.negotiate(phone, until="ready")
        await customer.calls(contacts.contact(phone.key).sip_uri)
        await page.expect("ringing")
        await phone.handle({"type": "answer_call"})
        await customer.answered()
        world = World(
            phones, contacts, registrar, revocations, grace, customer, page, phone, phone.attachment
        )
        made.append(world)
        yield world
    finally:
        for page in pages + [w.page for w in made]:  # and the page that took the call back
            await page.hangs_up_its_media()
        await customer.close()
        await phones.close()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with _world() as made:
        yield made


async def _audio_both_ways(world: World) -> None:
    await asyncio.sleep(1.5)
    assert abs(world.customer.hears() - BROWSER_HZ) < 20, "the customer hears the browser"
    assert abs(world.page.peak() - CUSTOMER_HZ) < 20, "the browser hears the customer"


async def _page_drops(world: World) -> None:
    """What the route does when the page's socket drops abruptly, and the page's media going."""
    await world.page.hangs_up_its_media()
    await world.phone.detach(world.attachment)


async def test_a_call_outlives_a_dropped_page_which_takes_it_back(world: World) -> None:
    connected = await world.page.expect("connected")
    token = connected["rejoin_token"]
    assert isinstance(token, str) and len(token) >= 40 and connected["rejoin_seconds"] == GRACE
    await _audio_both_ways(world)

    await _page_drops(world)
    await asyncio.sleep(0.5)
    assert not world.customer.bye.is_set()
    assert world.phone.in_grace and not world.phone.closed.is_set()
    assert world.attachment.ended.is_set()
    assert len(world.registrar.bindings("operator")) == 1  # still the operator's phone
    world.grace.advance(GRACE - 1)
    assert not world.phone.closed.is_set()

    page = Page()
    taken = await world.phones.rejoin(SESSION, token, page.send)
    assert taken is not None and taken[0] is world.phone
    assert world.phone.rejoin_token != token  # a token takes the phone back once
    world.page = page
    await page.negotiate(world.phone, until="rejoined")
    assert not world.phone.in_grace
    world.grace.advance(GRACE * 2)  # the grace period is over: nothing ends any more
    world.customer.heard.clear()
    await _audio_both_ways(world)
    assert not world.customer.bye.is_set() and not world.phone.closed.is_set()
    assert world.phone.call is not None
    await world.phone.handle({"type": "hang_up"})
    await asyncio.wait_for(world.customer.bye.wait(), WAIT)


async def test_a_wrong_token_or_another_sessions_token_takes_nothing(world: World) -> None:
    token = (await world.page.expect("connected"))["rejoin_token"]
    await _page_drops(world)
    thief = Page()
    for presented in (None, 42, "", "x" * 5000, token[:-1], token + "x", "é" * 43):
        assert await world.phones.rejoin(SESSION, presented, thief.send) is None, presented
    assert await world.phones.rejoin(OTHER_SESSION, token, thief.send) is None
    assert thief.drain() == []  # nothing was told to whoever presented them
    assert world.phone.attachment is None and world.phone.in_grace
    assert world.phone.rejoin_token == token  # the refusals changed nothing
    assert not world.customer.bye.is_set()
    page = Page()
    assert await world.phones.rejoin(SESSION, token, page.send) is not None


async def test_the_grace_period_runs_out_and_the_call_ends(world: World) -> None:
    token = (await world.page.expect("connected"))["rejoin_token"]
    await _page_drops(world)
    world.grace.advance(GRACE - 0.1)
    await asyncio.sleep(0.2)
    assert not world.customer.bye.is_set()
    world.grace.advance(0.1)
    await asyncio.wait_for(world.customer.bye.wait(), WAIT)
    await asyncio.wait_for(world.phone.closed.wait(), WAIT)
    assert world.phone.close_reason == "connection_lost"
    assert world.registrar.bindings("operator") == []
    assert len(world.phones) == 0
    assert await world.phones.rejoin(SESSION, token, Page().send) is None


async def test_revoking_the_session_during_the_grace_period_ends_the_call_at_once(
    world: World,
) -> None:
    await world.page.expect("connected")
    await _page_drops(world)
    revoked = time.monotonic()
    world.revocations.publish(SessionsRevoked(USER, (SESSION,), SessionEndReason.LOGOUT))
    await asyncio.wait_for(world.customer.bye.wait(), WAIT)
    assert time.monotonic() - revoked < 1.0
    await asyncio.wait_for(world.phone.closed.wait(), WAIT)
    assert world.phone.close_reason == "logout"
    assert len(world.phones) == 0


async def test_a_newer_socket_takes_the_phone_from_one_not_yet_seen_dropping(
    world: World,
) -> None:
    """A network change: the page connects again before the node noticed its old socket
    drop; the old socket is let go (its route stops serving it) and leaves the call alone."""
    token = (await world.page.expect("connected"))["rejoin_token"]
    await world.page.hangs_up_its_media()
    page = Page()
    taken = await world.phones.rejoin(SESSION, token, page.send)
    assert taken is not None
    assert world.attachment.ended.is_set()
    await world.phone.detach(world.attachment)  # the old socket's end, later: nothing happens
    assert world.phone.attachment is taken[1]
    world.page = page
    await page.negotiate(world.phone, until="rejoined")
    world.customer.heard.clear()
    await _audio_both_ways(world)
    assert not world.customer.bye.is_set()


async def test_the_page_told_its_media_is_lost_while_its_socket_stays(world: World) -> None:
    """The peer connection fails under a page whose socket is up: the call is kept and the
    page told `media_lost` (it then comes back through a new socket)."""
    token = (await world.page.expect("connected"))["rejoin_token"]
    await world.page.hangs_up_its_media()  # DTLS close_notify: the node's peer closes
    await world.page.expect("media_lost")
    assert world.phone.in_grace and world.phone.attachment is world.attachment
    assert not world.customer.bye.is_set()
    page = Page()
    assert await world.phones.rejoin(SESSION, token, page.send) is not None
    world.page = page
    await page.negotiate(world.phone, until="rejoined")
    assert not world.phone.in_grace


async def test_the_customer_hanging_up_during_the_grace_period_closes_the_phone(
    world: World,
) -> None:
    token = (await world.page.expect("connected"))["rejoin_token"]
    await _page_drops(world)
    await world.customer.hangs_up()
    await asyncio.wait_for(world.phone.closed.wait(), WAIT)
    assert world.registrar.bindings("operator") == []
    assert await world.phones.rejoin(SESSION, token, Page().send) is None


async def test_without_a_grace_period_a_dropped_page_ends_its_call() -> None:
    async with _world(grace_seconds=0) as world:
        connected = await world.page.expect("connected")
        assert "rejoin_token" not in connected
        await _page_drops(world)
        await asyncio.wait_for(world.customer.bye.wait(), WAIT)
        assert world.phone.close_reason == "page_closed"


@pytest.mark.parametrize("grace", [-1.0, 61.0, math.nan, math.inf])
def test_the_grace_period_setting_is_checked(grace: float) -> None:
    with pytest.raises(ValueError, match="rejoin_grace_seconds must be between 0 and 60"):
        WebRtcSettings(rejoin_grace_seconds=grace)
