"""The SIP authentication guard with a real DigestAuthenticator and NonceManager: challenges,
digest answers computed like a phone does, trunks by address, and throttling on a fake clock.

Users come from the directory in conftest (realm `callwarden`, password `<username>-secret`).
"""

from __future__ import annotations

from collections.abc import Callable

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
from callwarden.telephony.sip_auth import (
    FromTrunk,
    FromUser,
    Identity,
    Refused,
    SipAuthGuard,
    trunk_for_source,
)
from callwarden.telephony.throttle import FailureThrottle, ThrottleSettings

RequestFactory = Callable[..., SipRequest]

REALM = "callwarden"
NONCE_LIFETIME = 300.0
PER_ACCOUNT = ThrottleSettings(threshold=3, window=60.0, base_block=10.0, max_block=600.0)
PER_ADDRESS = ThrottleSettings(threshold=8, window=60.0, base_block=30.0, max_block=600.0)
PHONE = Source("UDP", "203.0.113.5", 40000, "192.0.2.1", 5060)
OTHER_PHONE = Source("UDP", "203.0.113.77", 40000, "192.0.2.1", 5060)
CARRIER = Source("UDP", "192.0.2.10", 5060, "192.0.2.1", 5060)
ARCHIVE = Source("UDP", "192.0.2.12", 5060, "192.0.2.1", 5060)
REGISTRAR_URI = "sip:pbx.example"
CALLEE_URI = "sip:1002@pbx.example"


@pytest.fixture
def authenticator(clock: FakeClock) -> DigestAuthenticator:
    nonces = NonceManager(b"telephony-test-nonce-secret-0001", clock.now, NONCE_LIFETIME)
    return DigestAuthenticator(REALM, nonces)


@pytest.fixture
def guard(authenticator: DigestAuthenticator, clock: FakeClock) -> SipAuthGuard:
    return SipAuthGuard(
        authenticator,
        per_account=FailureThrottle(clock, PER_ACCOUNT),
        per_address=FailureThrottle(clock, PER_ADDRESS),
    )


class Client:
    """Sends REGISTERs or INVITEs from one address, answering challenges like a phone."""

    def __init__(
        self,
        guard: SipAuthGuard,
        authenticator: DigestAuthenticator,
        directory: DirectorySnapshot,
        build_request: RequestFactory,
        source: Source = PHONE,
    ) -> None:
        self.guard = guard
        self.authenticator = authenticator
        self.directory = directory
        self.build_request = build_request
        self.source = source
        self.cseq = 0

    def request(self, method: str, *extra: str, user: str = "alice") -> SipRequest:
        self.cseq += 1
        return self.build_request(
            method,
            REGISTRAR_URI if method == "REGISTER" else CALLEE_URI,
            user=user,
            call_id=f"auth-{self.cseq}@203.0.113.5",
            cseq=self.cseq,
            extra=extra,
        )

    def send(self, request: SipRequest, *, allow_trunks: bool | None = None) -> Identity:
        trunks = request.method == "INVITE" if allow_trunks is None else allow_trunks
        return self.guard.identify(request, self.source, self.directory, allow_trunks=trunks)

    def authorization(
        self,
        method: str,
        username: str,
        password: str,
        *,
        challenge: str | None = None,
        algorithm: int = 0,
    ) -> str:
        """The credentials header line a phone sends after the challenge (a fresh one from the
        authenticator unless given; `algorithm` 0 is SHA-256, 1 is MD5)."""
        value = (
            challenge
            or self.authenticator.challenge_headers(source=self.source.remote_host)[algorithm]
        )
        uri = REGISTRAR_URI if method == "REGISTER" else CALLEE_URI
        answer = answer_challenge(value, method, uri, username, password, cnonce="0a4f113b")
        name = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
        return f"{name}: {answer}"

    def login(
        self, method: str, username: str, password: str | None = None, *, algorithm: int = 0
    ) -> Identity:
        """One authenticated request of `username` (its own password unless given)."""
        secret = password if password is not None else f"{username}-secret"
        line = self.authorization(method, username, secret, algorithm=algorithm)
        return self.send(self.request(method, line, user=username))


@pytest.fixture
def client(
    guard: SipAuthGuard,
    authenticator: DigestAuthenticator,
    directory: DirectorySnapshot,
    build_request: RequestFactory,
) -> Client:
    return Client(guard, authenticator, directory, build_request)


def refused(identity: Identity) -> SipResponse:
    assert isinstance(identity, Refused), identity
    return identity.response


def authenticated_as(identity: Identity) -> str:
    assert isinstance(identity, FromUser), identity
    return identity.user.username


def challenges(response: SipResponse) -> list[DigestChallenge]:
    name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
    parsed = [parse_challenge(value) for value in response.headers.get_all(name)]
    assert all(isinstance(challenge, DigestChallenge) for challenge in parsed)
    return [challenge for challenge in parsed if isinstance(challenge, DigestChallenge)]


def shape(response: SipResponse) -> tuple[object, ...]:
    """Everything an observer could compare between two refusals, minus the random parts
    (nonce, tags, and the Call-ID and CSeq copied from the request)."""
    return (
        response.status,
        response.reason,
        [name for name, _ in response.headers.items()],
        [
            (c.realm, c.algorithm, c.qop, c.opaque, c.stale, c.domain, len(c.nonce))
            for c in challenges(response)
        ],
        response.body,
    )


# --------------------------------------------------------------------------- challenges


def test_a_register_without_credentials_gets_401_sha256_then_md5(client: Client) -> None:
    response = refused(client.send(client.request("REGISTER")))
    assert (response.status, response.reason) == (401, "Unauthorized")
    assert "Proxy-Authenticate" not in response.headers
    offered = challenges(response)
    assert [challenge.algorithm for challenge in offered] == ["SHA-256", "MD5"]
    assert {challenge.realm for challenge in offered} == {REALM}
    assert all(challenge.qop == ("auth",) for challenge in offered)
    assert all(not challenge.stale for challenge in offered)
    assert offered[0].nonce == offered[1].nonce
    assert response.to.tag
    assert response.call_id == "auth-1@203.0.113.5"


def test_an_invite_without_credentials_gets_407(client: Client) -> None:
    response = refused(client.send(client.request("INVITE"), allow_trunks=True))
    assert (response.status, response.reason) == (407, "Proxy Authentication Required")
    assert "WWW-Authenticate" not in response.headers
    assert [challenge.algorithm for challenge in challenges(response)] == ["SHA-256", "MD5"]
    assert response.to.tag


def test_every_challenge_has_a_fresh_nonce(client: Client) -> None:
    first = challenges(refused(client.send(client.request("REGISTER"))))[0]
    second = challenges(refused(client.send(client.request("REGISTER"))))[0]
    assert first.nonce != second.nonce


def test_requests_without_credentials_never_count_as_failures(client: Client) -> None:
    """Every phone sends its first REGISTER and INVITE without credentials."""
    for _ in range(3 * PER_ADDRESS.threshold):
        assert refused(client.send(client.request("REGISTER"))).status == 401
        assert refused(client.send(client.request("INVITE"))).status == 407
    assert authenticated_as(client.login("REGISTER", "alice")) == "alice"


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize("method", ["REGISTER", "INVITE"])
@pytest.mark.parametrize("algorithm", [0, 1], ids=["SHA-256", "MD5"])
def test_the_right_digest_answer_authenticates(client: Client, method: str, algorithm: int) -> None:
    assert authenticated_as(client.login(method, "alice", algorithm=algorithm)) == "alice"
    assert authenticated_as(client.login(method, "bob", algorithm=algorithm)) == "bob"


def test_answering_the_challenge_the_guard_sent(client: Client) -> None:
    """The whole exchange: 401, then the phone answers the first (SHA-256) challenge."""
    challenge = client.send(client.request("REGISTER"))
    value = refused(challenge).headers.get_all("WWW-Authenticate")[0]
    line = client.authorization("REGISTER", "alice", "alice-secret", challenge=value)
    assert authenticated_as(client.send(client.request("REGISTER", line))) == "alice"


def test_the_same_answer_twice_is_a_replay(client: Client) -> None:
    line = client.authorization("REGISTER", "alice", "alice-secret")
    assert authenticated_as(client.send(client.request("REGISTER", line))) == "alice"
    assert refused(client.send(client.request("REGISTER", line))).status == 401


def test_an_answer_replayed_from_another_address_is_challenged_afresh(
    client: Client, build_request: RequestFactory
) -> None:
    """T7: alice's answer, captured and sent first from another address, is not accepted
    there (a fresh 401, counted as a failure) and still works from alice's phone."""
    line = client.authorization("REGISTER", "alice", "alice-secret")
    thief = Client(client.guard, client.authenticator, client.directory, build_request)
    thief.source = OTHER_PHONE
    response = refused(thief.send(thief.request("REGISTER", line)))
    assert response.status == 401
    assert not any(challenge.stale for challenge in challenges(response))
    assert authenticated_as(client.send(client.request("REGISTER", line))) == "alice"


def test_credentials_in_the_other_header_are_ignored(client: Client) -> None:
    """REGISTER is answered in Authorization, INVITE in Proxy-Authorization (RFC 3261 22)."""
    line = client.authorization("REGISTER", "alice", "alice-secret")
    wrong_header = line.replace("Authorization:", "Proxy-Authorization:", 1)
    assert refused(client.send(client.request("REGISTER", wrong_header))).status == 401


def test_an_expired_nonce_is_challenged_again_as_stale_without_counting(
    client: Client, clock: FakeClock
) -> None:
    for _ in range(PER_ACCOUNT.threshold + 1):
        line = client.authorization("REGISTER", "alice", "alice-secret")
        clock.advance(NONCE_LIFETIME + 1)
        response = refused(client.send(client.request("REGISTER", line)))
        assert response.status == 401
        assert all(challenge.stale for challenge in challenges(response))
    assert authenticated_as(client.login("REGISTER", "alice")) == "alice"


# --------------------------------------------------------------------------- no enumeration


@pytest.mark.parametrize("method", ["REGISTER", "INVITE"])
def test_wrong_password_unknown_user_and_disabled_user_look_alike(
    client: Client, method: str
) -> None:
    unauthenticated = refused(client.send(client.request(method)))
    wrong_password = refused(client.login(method, "alice", "guess"))
    unknown_user = refused(client.login(method, "mallory", "guess"))
    disabled_user = refused(client.login(method, "carol"))  # her right password
    assert unauthenticated.status == (401 if method == "REGISTER" else 407)
    assert shape(wrong_password) == shape(unauthenticated)
    assert shape(unknown_user) == shape(unauthenticated)
    assert shape(disabled_user) == shape(unauthenticated)
    for response in (wrong_password, unknown_user, disabled_user):
        assert response.to.tag


def test_a_disabled_user_cannot_authenticate_with_either_algorithm(client: Client) -> None:
    for algorithm in (0, 1):
        assert refused(client.login("REGISTER", "carol", algorithm=algorithm)).status == 401


# --------------------------------------------------------------------------- trunks


def test_a_trunk_is_recognised_by_its_address_for_calls(
    client: Client, directory: DirectorySnapshot
) -> None:
    client.source = CARRIER
    identity = client.send(client.request("INVITE"), allow_trunks=True)
    assert isinstance(identity, FromTrunk)
    assert identity.trunk == directory.trunk_by_name("carrier")


def test_a_trunk_address_does_not_register_without_credentials(client: Client) -> None:
    client.source = CARRIER
    assert refused(client.send(client.request("REGISTER"), allow_trunks=False)).status == 401
    assert refused(client.send(client.request("INVITE"), allow_trunks=False)).status == 407
    # ... though a user there still can, with a password
    assert authenticated_as(client.login("REGISTER", "alice")) == "alice"


def test_a_disabled_trunk_address_is_just_another_address(client: Client) -> None:
    client.source = ARCHIVE
    assert refused(client.send(client.request("INVITE"), allow_trunks=True)).status == 407


@pytest.mark.parametrize(
    ("host", "trunk"),
    [
        ("192.0.2.10", "carrier"),
        ("192.0.2.11", "partner"),
        ("192.0.2.12", None),
        ("192.0.2.13", None),
    ],
)
def test_trunk_for_source(directory: DirectorySnapshot, host: str, trunk: str | None) -> None:
    found = trunk_for_source(directory, Source("UDP", host, 5060, "192.0.2.1", 5060))
    assert (found.name if found is not None else None) == trunk


# --------------------------------------------------------------------------- throttling


def test_per_account_blocking_spares_other_users_at_that_address(
    client: Client, build_request: RequestFactory, clock: FakeClock
) -> None:
    guesses = [client.login("REGISTER", "alice", f"guess-{n}") for n in range(3)]
    assert [refused(guess).status for guess in guesses] == [401, 401, 403]
    assert refused(guesses[-1]).to.tag
    # alice from this address is refused even with her password, without a challenge
    blocked = refused(client.login("REGISTER", "alice"))
    assert (blocked.status, blocked.reason) == (403, "Forbidden")
    assert "WWW-Authenticate" not in blocked.headers
    assert blocked.to.tag
    # bob behind the same NAT is not affected, nor alice from elsewhere
    assert authenticated_as(client.login("REGISTER", "bob")) == "bob"
    assert authenticated_as(client.login("INVITE", "bob")) == "bob"
    elsewhere = Client(client.guard, client.authenticator, client.directory, build_request)
    elsewhere.source = OTHER_PHONE
    assert authenticated_as(elsewhere.login("REGISTER", "alice")) == "alice"
    # the block ends after base_block
    clock.advance(PER_ACCOUNT.base_block - 1)
    assert refused(client.login("REGISTER", "alice")).status == 403
    clock.advance(1)
    assert authenticated_as(client.login("REGISTER", "alice")) == "alice"


def test_per_address_blocking_after_the_higher_threshold(
    client: Client, build_request: RequestFactory, clock: FakeClock
) -> None:
    """A scanner cycling through user names: no account reaches its threshold, the address
    reaches its own."""
    statuses = [
        refused(client.login("REGISTER", f"user{n}", "guess")).status
        for n in range(PER_ADDRESS.threshold)
    ]
    assert statuses == [401] * (PER_ADDRESS.threshold - 1) + [403]
    # now nobody at that address is even challenged
    for identity in (
        client.login("REGISTER", "bob"),
        client.login("INVITE", "alice"),
        client.send(client.request("REGISTER")),
    ):
        response = refused(identity)
        assert (response.status, response.reason) == (403, "Forbidden")
        assert response.to.tag
    # other addresses are not affected
    elsewhere = Client(client.guard, client.authenticator, client.directory, build_request)
    elsewhere.source = OTHER_PHONE
    assert authenticated_as(elsewhere.login("REGISTER", "bob")) == "bob"
    clock.advance(PER_ADDRESS.base_block)
    assert authenticated_as(client.login("REGISTER", "bob")) == "bob"


def test_an_address_block_does_not_stop_a_trunk_call(client: Client) -> None:
    client.source = CARRIER
    for n in range(PER_ADDRESS.threshold):
        client.login("REGISTER", f"user{n}", "guess")
    assert refused(client.login("REGISTER", "alice")).status == 403
    assert isinstance(client.send(client.request("INVITE"), allow_trunks=True), FromTrunk)


def test_a_success_clears_the_account_failures(client: Client) -> None:
    for _ in range(2):
        for _ in range(PER_ACCOUNT.threshold - 1):
            assert refused(client.login("REGISTER", "alice", "typo")).status == 401
        assert authenticated_as(client.login("REGISTER", "alice")) == "alice"
