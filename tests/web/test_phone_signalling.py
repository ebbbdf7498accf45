"""`/api/v1/phone`: the browser phone's signalling. The handshake needs the desk's access; a
node without browser phones says so (4503); bad messages get an `error_id` and change nothing;
a real aiortc peer (standing in for the browser) negotiates PCMU and makes the operator
reachable (one more registered contact); revoking the web session closes the phone, unbinds
the contact and closes the socket with 4401 within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from fastapi import FastAPI

from callwarden.security.sessions import SessionEndReason
from callwarden.sip.clock import LoopClock
from callwarden.telephony.registrar import Registrar
from callwarden.web.app import create_app
from callwarden.webrtc.contacts import BrowserContacts
from callwarden.webrtc.phones import BrowserPhones
from web.support import Env, WebSocketSession, websocket_headers

PATH = "/api/v1/phone"


@dataclass
class PhoneNode:
    app: FastAPI
    phones: BrowserPhones
    registrar: Registrar


@pytest.fixture
async def node(env: Env) -> AsyncIterator[PhoneNode]:
    clock = LoopClock(asyncio.get_running_loop())
    registrar = Registrar(clock)
    phones = BrowserPhones(
        BrowserContacts(clock, host="127.0.0.1"), registrar, env.services.revocations
    )
    await phones.start()
    app = create_app(replace(env.services, browser_phones=lambda: phones))
    try:
        yield PhoneNode(app, phones, registrar)
    finally:
        await phones.close()


async def test_refused_without_the_desk_access_and_unavailable_without_phones(
    env: Env, node: PhoneNode
) -> None:
    admin = WebSocketSession(node.app, PATH, websocket_headers(env.sign_in_directly("admin")))
    assert not await admin.connect()
    assert admin.close_reason == "forbidden"
    foreign = WebSocketSession(
        node.app, PATH, websocket_headers(env.sign_in_directly("operator"), "https://evil.test")
    )
    assert not await foreign.connect()
    assert foreign.close_reason == "origin_refused"
    plain = WebSocketSession(env.app, PATH, websocket_headers(env.sign_in_directly("operator")))
    assert await plain.connect()
    assert await plain.receive_json() is None
    assert (plain.close_code, plain.close_reason) == (4503, "not_configured")


async def test_bad_messages_get_an_error_and_change_nothing(env: Env, node: PhoneNode) -> None:
    socket = WebSocketSession(node.app, PATH, websocket_headers(env.sign_in_directly("operator")))
    assert await socket.connect()
    welcome = await socket.receive_json()
    assert welcome == {
        "type": "welcome",
        "user_id": env.user("operator").id,
        "ice_servers": [],
        "ice_transport_policy": "all",
    }
    cases = [
        ({"type": "nope"}, "unknown_type"),
        ({"kind": "offer"}, "bad_message"),
        ({"type": "offer", "sdp": 5}, "bad_offer"),
        ({"type": "offer", "sdp": "v=0\r\n"}, "bad_offer"),
        ({"type": "candidate", "candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host"}, "no_offer"),
        ({"type": "answer_call"}, "no_ringing_call"),
        ({"type": "hang_up"}, "no_call"),
        ({"type": "dtmf", "digit": "x"}, "bad_digit"),
        ({"type": "dtmf", "digit": "5"}, "no_call"),
        ({"type": "hold"}, "no_call"),
        ({"type": "resume"}, "no_call"),
    ]
    for message, error_id in cases:
        await socket.send_json(message)
        assert await socket.receive_json() == {"type": "error", "error_id": error_id}, message
    await socket.send_json({"type": "ping"})
    assert await socket.receive_json() == {"type": "pong"}
    assert len(node.phones) == 1
    assert node.registrar.bindings("operator") == []
    await socket.disconnect()
    assert len(node.phones) == 0


async def test_one_session_opens_at_most_two_phones(env: Env, node: PhoneNode) -> None:
    headers = websocket_headers(env.sign_in_directly("operator"))
    sockets = [WebSocketSession(node.app, PATH, headers) for _ in range(3)]
    for socket in sockets:
        assert await socket.connect()
    for socket in sockets[:2]:
        assert (await socket.receive_json())["type"] == "welcome"
    assert await sockets[2].receive_json() is None
    assert (sockets[2].close_code, sockets[2].close_reason) == (4503, "too_many_phones")
    other = WebSocketSession(node.app, PATH, websocket_headers(env.sign_in_directly("operator")))
    assert await other.connect()
    assert (await other.receive_json())["type"] == "welcome"  # another session is not refused
    for socket in (*sockets[:2], other):
        await socket.disconnect()
    assert len(node.phones) == 0


async def _receive_until(socket: WebSocketSession, kind: str) -> dict[str, object]:
    while True:
        message = await socket.receive_json()
        assert message is not None, f"closed before {kind}"
        if message["type"] == kind:
            return dict(message)


async def test_a_peer_becomes_reachable_and_a_revoked_session_closes_it(
    env: Env, node: PhoneNode
) -> None:
    session = env.sign_in_directly("operator")
    socket = WebSocketSession(node.app, PATH, websocket_headers(session))
    assert await socket.connect()
    await _receive_until(socket, "welcome")
    browser = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        browser.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        await browser.setLocalDescription(await browser.createOffer())
        await socket.send_json({"type": "offer", "sdp": browser.localDescription.sdp})
        answer = await _receive_until(socket, "answer")
        assert isinstance(answer["sdp"], str)
        assert "PCMU/8000" in answer["sdp"] and "opus" not in answer["sdp"]
        await browser.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await _receive_until(socket, "ready")
        bindings = node.registrar.bindings("operator")
        assert len(bindings) == 1 and (bindings[0].contact.user or "").startswith("browser-")
        assert bindings[0].destination.host == "127.0.0.1"

        revoked = time.monotonic()
        assert env.services.sessions.revoke(session.session.id, SessionEndReason.LOGOUT)
        closed = await _receive_until(socket, "closed")
        assert closed == {"type": "closed", "reason": "logout"}
        await socket.wait_closed()
        assert time.monotonic() - revoked < 1.0
        assert (socket.close_code, socket.close_reason) == (4401, "logout")
        assert node.registrar.bindings("operator") == []
        assert len(node.phones) == 0
    finally:
        await browser.close()
