"""TURN REST credentials, the DTLS source guard over a real aioice connection's sockets, and
the phone's refusal of bad signalling (no browser needed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from aioice import Candidate, Connection, stun
from aioice.ice import CandidatePair

from callwarden.webrtc.ice_guard import DtlsSourceGuard
from callwarden.webrtc.turn import IceSettings, turn_credentials

SECRET = b"0123456789abcdef-shared"


def test_turn_credentials_follow_the_turn_rest_scheme() -> None:
    username, password = turn_credentials(SECRET, "42", now=1_000_000.0, ttl=3600)
    assert username == "1003600:42"
    expected = hmac.new(SECRET, b"1003600:42", hashlib.sha1).digest()
    assert base64.b64decode(password) == expected


def test_pages_get_stun_and_turn_with_credentials_never_the_secret() -> None:
    ice = IceSettings(("stun:turn.example:3478",), ("turn:turn.example:3478",), SECRET, 600)
    servers = ice.for_page("7", 100.0)
    assert servers[0] == {"urls": ["stun:turn.example:3478"]}
    assert servers[1]["username"] == "700:7"
    assert SECRET.decode() not in repr(servers) and SECRET.decode() not in repr(ice)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stun_urls": ("http://x",)}, "STUN URL"),
        ({"turn_urls": ("turn:x",)}, "shared secret"),
        ({"turn_urls": ("stun:x",), "turn_secret": SECRET}, "TURN URL"),
        ({"turn_ttl": 5}, "turn_ttl"),
    ],
)
def test_bad_ice_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IceSettings(**kwargs)


async def test_dtls_only_from_validated_pairs() -> None:
    connection = Connection(ice_controlling=False, use_ipv6=False)
    await connection.gather_candidates()
    try:
        guard = DtlsSourceGuard(connection)
        assert guard.install() == len(connection._protocols) > 0
        protocol = connection._protocols[0]
        dtls = b"\x16\xfe\xfd" + bytes(20)  # a DTLS record header: not STUN
        protocol.datagram_received(dtls, ("192.0.2.9", 5000))
        assert guard.dropped == 1
        assert connection._queue.empty()  # nothing reached DTLS
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        protocol.datagram_received(bytes(request), ("192.0.2.9", 5000))
        assert guard.dropped == 1  # STUN goes on to aioice's own checks
        assert guard.install() == len(connection._protocols)  # not wrapped twice
        remote = Candidate("1", 1, "udp", 100, "192.0.2.9", 5000, "host")
        pair = CandidatePair(protocol, remote)
        pair.state = CandidatePair.State.SUCCEEDED
        connection._check_list.append(pair)
        protocol.datagram_received(dtls, ("192.0.2.9", 5000))
        assert guard.dropped == 1
        assert connection._queue.get_nowait() == (dtls, 1)  # the validated pair's DTLS
    finally:
        await connection.close()
