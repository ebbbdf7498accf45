"""`/api/v1/phone?rejoin=1`: a page takes its call back over a new socket (docs/webrtc.md, "A call
survives a short network change"). The phone's socket drops during a call (no close frame); a
socket of another session of the same user presenting the call's rejoin token gets a new phone
of its own, exactly as with no token, and the call carries on untouched; the page's own session
takes it back (`rejoined` in the welcome, a new token), negotiates a new peer connection and the
call's audio flows both ways again (FFT); the page then leaving on purpose (1000) ends the call
at once. A customer (a SIP user agent on loopback) and aiortc peers stand in for the far end and
the browser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fastapi import FastAPI

from callwarden.sip.clock import FakeClock, LoopClock
from callwarden.telephony.registrar import Registrar
from callwarden.web.app import create_app
from callwarden.webrtc.contacts import BrowserContacts
from callwarden.webrtc.phones import BrowserPhones, WebRtcSettings
from web.support import Env, WebSocketSession, websocket_headers
from webrtc.phone_support import BROWSER_HZ, CUSTOMER_HZ, WAIT, Customer, PageMedia

PATH = "/api/v1/phone"
GRACE = 15.0


class PageSocket(WebSocketSession):
    """The page's phone socket; with `rejoin`, opened with `?rejoin=1` and the token first."""

    def __init__(
        self, app: FastAPI, headers: Mapping[str, str], rejoin: object | None = None
    ) -> None:
        super().__init__(app, PATH, headers)
        self._rejoin = rejoin
        if rejoin is not None:
            self._scope["query_string"] = b"rejoin=1"

    async def connect(self) -> bool:
        accepted = await super().connect()
        if accepted and self._rejoin is not None:
            await self.send_json({"type": "rejoin", "token": self._rejoin})
        return accepted

    async def expect(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.receive_json()
                assert message is not None, f"closed before {kind}"
                if message["type"] == kind:
                    return dict(message)

    async def drop(self) -> None:
        """The connection is lost: no close frame (1006), as a network change does."""
        await self._incoming.put({"type": "websocket.disconnect", "code": 1006})
        if self._task is not None:
            await asyncio.wait_for(self._task, 5)


@dataclass
class PhoneNode:
    app: FastAPI
    phones: BrowserPhones
    contacts: BrowserContacts
    grace: FakeClock


@pytest.fixture
async def node(env: Env) -> AsyncIterator[PhoneNode]:
    clock = LoopClock(asyncio.get_running_loop())
    contacts = BrowserContacts(clock, host="127.0.0.1")
    grace = FakeClock()
    phones = BrowserPhones(
        contacts,
        Registrar(clock),
        env.services.revocations,
        WebRtcSettings(rejoin_grace_seconds=GRACE),
        clock=grace,
    )
    await phones.start()
    app = create_app(replace(env.services, browser_phones=lambda: phones))
    try:
        yield PhoneNode(app, phones, contacts, grace)
    finally:
        await phones.close()


async def test_only_the_pages_own_session_takes_its_call_back(env: Env, node: PhoneNode) -> None:
    session = env.sign_in_directly("operator")
    headers = websocket_headers(session)
    socket = PageSocket(node.app, headers)
    assert await socket.connect()
    assert "rejoined" not in await socket.expect("welcome")
    media = PageMedia()
    customer = await Customer.start()
    try:
        await media.negotiate(socket.send_json, socket.expect, "ready")
        (phone,) = node.phones.of_session(session.session.id)
        await customer.calls(node.contacts.contact(phone.key).sip_uri)
        await socket.expect("ringing")
        await socket.send_json({"type": "answer_call"})
        await customer.answered()
        token = (await socket.expect("connected"))["rejoin_token"]

        await media.close()
        await socket.drop()
        assert phone.in_grace and not phone.closed.is_set()
        assert not customer.bye.is_set()

        other = env.sign_in_directly("operator")  # the same user, another session
        thief = PageSocket(node.app, websocket_headers(other), rejoin=token)
        assert await thief.connect()
        welcome = await thief.expect("welcome")
        assert "rejoined" not in welcome  # a new phone, as with no token at all
        (thiefs,) = node.phones.of_session(other.session.id)
        assert thiefs is not phone
        assert phone.in_grace and phone.attachment is None and phone.rejoin_token == token
        await thief.disconnect()
        stray = PageSocket(node.app, headers, rejoin={"not": "a token"})
        assert await stray.connect()
        assert "rejoined" not in await stray.expect("welcome")
        await stray.disconnect()
        assert not customer.bye.is_set()

        again = PageSocket(node.app, headers, rejoin=token)
        assert await again.connect()
        rejoined = (await again.expect("welcome"))["rejoined"]
        assert phone.call is not None and rejoined["call_id"] == phone.call.call_id
        assert rejoined["held"] is False and rejoined["token"] != token
        await media.negotiate(again.send_json, again.expect, "rejoined")
        node.grace.advance(GRACE * 2)
        customer.heard.clear()
        await asyncio.sleep(1.5)
        assert abs(customer.hears() - BROWSER_HZ) < 20
        assert abs(media.peak() - CUSTOMER_HZ) < 20
        assert not customer.bye.is_set()

        await again.disconnect()  # the page leaves (1000): its call ends at once
        await asyncio.wait_for(customer.bye.wait(), WAIT)
        assert phone.close_reason == "page_closed"
        assert len(node.phones) == 0
    finally:
        await media.close()
        await customer.close()
