"""The SIP auth guard under attack, with the real DigestAuthenticator and the real source
guard: an attacker guessing alice's password from 127.0.0.2 is banned and never locks alice
out on 127.0.0.1; unknown users, wrong passwords and missing extensions answer alike, in
shape exactly and in timing within noise (many interleaved tries, medians compared)."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.sip.addressing import Source
from callwarden.sip.clock import FakeClock
from callwarden.sip.digest import (
    DigestAuthenticator,
    DigestChallenge,
    NonceManager,
    answer_challenge,
    parse_challenge,
)
from callwarden.sip.message import SipRequest, SipResponse
from callwarden.telephony.sip_auth import FromUser, Identity, Refused, SipAuthGuard
from callwarden.telephony.source_guard import SourceGuard, SourceGuardSettings
from callwarden.telephony.throttle import FailureThrottle, ThrottleSettings

RequestFactory = Callable[..., SipRequest]
REALM = "callwarden"
ALICE_HOME = Source("UDP", "127.0.0.1", 5070, "127.0.0.1", 5060)
ATTACKER = Source("UDP", "127.0.0.2", 5070, "127.0.0.1", 5060)
REGISTRAR_URI = "sip:pbx.example"


class Edge:
    """The auth guard wired to a source guard as the node wires them."""

    def __init__(
        self,
        clock: FakeClock,
        directory: DirectorySnapshot,
        build_request: RequestFactory,
        *,
        account_threshold: int = 5,
        address_threshold: int = 50,
        ban_threshold: int = 20,
    ) -> None:
        nonces = NonceManager(b"attack-test-nonce-secret-000001", clock.now, 300.0)
        self.authenticator = DigestAuthenticator(REALM, nonces)
        self.sources = SourceGuard(
            clock,
            settings=SourceGuardSettings(ban_threshold=ban_threshold, trusted_networks=()),
            publish=lambda event: None,
            wall_clock=lambda: datetime(2026, 11, 28, tzinfo=UTC),
        )
        self.guard = SipAuthGuard(
            self.authenticator,
            per_account=FailureThrottle(clock, ThrottleSettings(threshold=account_threshold)),
            per_address=FailureThrottle(clock, ThrottleSettings(threshold=address_threshold)),
            on_failure=self.sources.on_auth_failure,
        )
        self.directory = directory
        self.build_request = build_request
        self.cseq = 0

    def request(
        self,
        method: str,
        user: str,
        password: str | None,
        *,
        to_user: str | None = None,
        source: Source = ATTACKER,
    ) -> SipRequest:
        """A request of `user` from `source`, with credentials for `password` (none when None)
        answering a challenge sent to `source`."""
        self.cseq += 1
        uri = REGISTRAR_URI if method == "REGISTER" else f"sip:{to_user or '1002'}@pbx.example"
        extra: tuple[str, ...] = ()
        if password is not None:
            challenge = self.authenticator.challenge_headers(source=source.remote_host)[0]
            answer = answer_challenge(challenge, method, uri, user, password, cnonce="c0ffee01")
            name = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
            extra = (f"{name}: {answer}",)
        request: SipRequest = self.build_request(
            method,
            uri,
            user=user,
            to_user=user if method == "REGISTER" else to_user,
            call_id=f"attack-{self.cseq}",
            cseq=self.cseq,
            extra=extra,
        )
        return request

    def send(self, source: Source, request: SipRequest) -> Identity | None:
        """None when the source guard dropped it before the application saw it."""
        if not self.sources.admits(source):
            return None
        return self.guard.identify(
            request, source, self.directory, allow_trunks=request.method == "INVITE"
        )


@pytest.fixture
def edge(clock: FakeClock, directory: DirectorySnapshot, build_request: RequestFactory) -> Edge:
    return Edge(clock, directory, build_request)


def test_an_attacker_guessing_alices_password_never_locks_alice_out(edge: Edge) -> None:
    answers = [
        edge.send(ATTACKER, edge.request("REGISTER", "alice", f"guess-{n}")) for n in range(40)
    ]
    statuses = [a.response.status if isinstance(a, Refused) else a for a in answers]
    # challenged, then refused by the per-account throttle, then dropped by the ban: the
    # attempts refused by the throttle still count toward the ban (20 offences)
    assert statuses[:4] == [401] * 4
    assert set(statuses[4:20]) == {403}
    assert statuses[20:] == [None] * 20
    assert edge.sources.is_banned("127.0.0.2")
    # alice, at home, with her password: in at once, not even throttled
    identity = edge.send(
        ALICE_HOME, edge.request("REGISTER", "alice", "alice-secret", source=ALICE_HOME)
    )
    assert isinstance(identity, FromUser) and identity.user.username == "alice"
    assert not edge.sources.is_banned("127.0.0.1")


def test_a_scanner_cycling_user_names_is_banned_by_the_source_guard(edge: Edge) -> None:
    for n in range(20):
        assert isinstance(edge.send(ATTACKER, edge.request("REGISTER", f"u{n}", "x")), Refused)
    assert edge.send(ATTACKER, edge.request("REGISTER", "u99", "x")) is None


def test_requests_without_credentials_and_successes_are_not_offences(edge: Edge) -> None:
    for _ in range(30):
        assert isinstance(
            edge.send(ALICE_HOME, edge.request("REGISTER", "alice", None, source=ALICE_HOME)),
            Refused,
        )
        assert isinstance(
            edge.send(
                ALICE_HOME, edge.request("REGISTER", "alice", "alice-secret", source=ALICE_HOME)
            ),
            FromUser,
        )
    assert edge.sources.stats.auth_failures == 0


# --------------------------------------------------------------------------- enumeration


def _challenges(response: SipResponse) -> list[DigestChallenge]:
    name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
    found = [parse_challenge(value) for value in response.headers.get_all(name)]
    return [challenge for challenge in found if isinstance(challenge, DigestChallenge)]


def shape(response: SipResponse) -> tuple[object, ...]:
    """All an observer can compare, minus the random parts (nonce value, tags, copied ids)."""
    return (
        response.status,
        response.reason,
        tuple(name for name, _ in response.headers.items()),
        tuple(
            (c.realm, c.algorithm, tuple(c.qop), c.opaque, c.stale, len(c.nonce))
            for c in _challenges(response)
        ),
        response.body,
    )


PROBES: dict[str, Callable[[Edge, Source], SipRequest]] = {
    "REGISTER unknown user": lambda e, s: e.request("REGISTER", "mallory", "guess", source=s),
    "REGISTER known user, wrong password": lambda e, s: e.request(
        "REGISTER", "alice", "guess", source=s
    ),
    "REGISTER known user, no credentials": lambda e, s: e.request(
        "REGISTER", "alice", None, source=s
    ),
    "INVITE unknown user": lambda e, s: e.request("INVITE", "mallory", "guess", source=s),
    "INVITE known user, wrong password": lambda e, s: e.request(
        "INVITE", "alice", "guess", source=s
    ),
    "INVITE to a missing extension": lambda e, s: e.request(
        "INVITE", "mallory", "g", to_user="9999", source=s
    ),
    "INVITE to a real extension": lambda e, s: e.request(
        "INVITE", "mallory", "g", to_user="1002", source=s
    ),
}


def _answer(edge: Edge, source: Source, request: SipRequest) -> SipResponse:
    identity = edge.send(source, request)
    assert isinstance(identity, Refused), identity
    return identity.response


def test_every_probe_gets_the_same_challenge_shape(
    clock: FakeClock, directory: DirectorySnapshot, build_request: RequestFactory
) -> None:
    edge = Edge(clock, directory, build_request)
    shapes: dict[str, dict[str, tuple[object, ...]]] = {"REGISTER": {}, "INVITE": {}}
    for n, (name, probe) in enumerate(PROBES.items()):
        source = Source("UDP", f"198.51.100.{n + 1}", 5070, "127.0.0.1", 5060)
        shapes[name.split()[0]][name] = shape(_answer(edge, source, probe(edge, source)))
    for method, found in shapes.items():
        assert len(set(found.values())) == 1, (method, found)
    assert next(iter(shapes["REGISTER"].values()))[0] == 401
    assert next(iter(shapes["INVITE"].values()))[0] == 407


def test_unknown_and_known_users_take_the_same_time(
    clock: FakeClock, directory: DirectorySnapshot, build_request: RequestFactory
) -> None:
    """Interleaved tries, so machine load hits both alike; the medians may differ by less
    than a generous bound (the work is the same: a dummy HA1 stands in for a missing user)."""
    edge = Edge(
        clock,
        directory,
        build_request,
        account_threshold=100_000,
        address_threshold=100_000,
        ban_threshold=100_000,
    )
    timings: dict[str, list[float]] = {"unknown": [], "wrong password": []}
    users = {"unknown": "mallory", "wrong password": "alice"}
    for n in range(600):
        for kind in ("unknown", "wrong password") if n % 2 else ("wrong password", "unknown"):
            request = edge.request("REGISTER", users[kind], "guess")
            started = time.perf_counter()
            _answer(edge, ATTACKER, request)
            timings[kind].append(time.perf_counter() - started)
            clock.advance(1.0)  # within the source's request rate
    unknown = statistics.median(timings["unknown"])
    known = statistics.median(timings["wrong password"])
    logging.getLogger(__name__).info(
        "median unknown %.1f µs, known %.1f µs", unknown * 1e6, known * 1e6
    )
    assert abs(unknown - known) < max(0.25 * min(unknown, known), 50e-6), (unknown, known)
