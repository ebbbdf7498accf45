"""Digest authentication (RFC 7616, RFC 8760, RFC 3261 22.4): RFC test vectors, header syntax,
nonces with a fake clock, the server's verdicts and the client's answers."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable

import pytest

from callwarden.sip.digest import (
    AuthFailure,
    AuthResult,
    AuthStatus,
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    DigestError,
    NonceManager,
    NonceStatus,
    NotDigest,
    UnsupportedAlgorithm,
    answer_challenge,
    compute_ha1,
    parse_challenge,
    parse_credentials,
    select_challenge,
)
from callwarden.sip.errors import SipParseError

# RFC 7616 3.9.1, unfolded.
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_SHA256_RESPONSE = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
RFC7616_MD5_RESPONSE = "8ca523f5e9506fed4657c9700eebdbec"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- test vectors


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [("SHA-256", RFC7616_SHA256_RESPONSE), ("MD5", RFC7616_MD5_RESPONSE)],
)
def test_rfc7616_3_9_1_example(algorithm: str, response: str) -> None:
    challenge = RFC7616_CHALLENGE.replace("algorithm=SHA-256", f"algorithm={algorithm}")
    value = answer_challenge(
        challenge, "GET", "/dir/index.html", "Mufasa", "Circle of Life", cnonce=RFC7616_CNONCE
    )
    credentials = parse_credentials(value)
    assert isinstance(credentials, DigestCredentials)
    assert credentials == DigestCredentials(
        username="Mufasa",
        realm="http-auth@example.org",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        uri="/dir/index.html",
        response=response,
        algorithm=algorithm,
        cnonce=RFC7616_CNONCE,
        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
        qop="auth",
        nc="00000001",
    )


def test_rfc2617_3_5_example_and_its_ha1() -> None:
    assert (
        compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", "MD5")
        == "939e7578ed9e3c518a452acee763bce9"
    )
    value = answer_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle Of Life",
        cnonce="0a4f113b",
    )
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="6629fae49393a05397450978507c4ef1", cnonce="0a4f113b", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001'
    )


def test_compute_ha1_refuses_other_algorithms() -> None:
    for algorithm in ("SHA-512-256", "MD5-sess", "", "sha1"):
        with pytest.raises(UnsupportedAlgorithm):
            compute_ha1("alice", "realm", "secret", algorithm)
    assert compute_ha1("alice", "r", "p", "sha-256") == compute_ha1("alice", "r", "p", "SHA-256")
    assert len(compute_ha1("alice", "r", "p", "SHA-256")) == 64


# --------------------------------------------------------------------------- header syntax


def test_rfc7616_challenge_parses() -> None:
    challenge = parse_challenge(RFC7616_CHALLENGE)
    assert challenge == DigestChallenge(
        realm="http-auth@example.org",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        algorithm="SHA-256",
        qop=("auth", "auth-int"),
        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
    )


def test_escapes_scheme_case_folding_and_unknown_parameters() -> None:
    text = (
        'DIGEST realm="a \\"quoted\\" \\\\ realm",\r\n nonce="n", Stale=TRUE, '
        'x-vendor="kept, with comma", x-token=abc'
    )
    challenge = parse_challenge(text)
    assert isinstance(challenge, DigestChallenge)
    assert challenge.realm == 'a "quoted" \\ realm'
    assert challenge.stale is True
    assert challenge.other_params == (
        ("x-vendor", "kept, with comma", True),
        ("x-token", "abc", False),
    )
    assert str(challenge) == (
        'Digest realm="a \\"quoted\\" \\\\ realm", nonce="n", stale=true, '
        'x-vendor="kept, with comma", x-token=abc'
    )
    assert parse_challenge(str(challenge)) == challenge


def test_credentials_round_trip_and_keep_nc_as_sent() -> None:
    text = (
        'Digest username="bob", realm="r", nonce="n", uri="sip:r", response="ab", '
        'algorithm=MD5, cnonce="c", opaque="o", qop=auth, nc=0000000A, extra="x"'
    )
    credentials = parse_credentials(text)
    assert isinstance(credentials, DigestCredentials)
    assert (credentials.nc, credentials.nonce_count) == ("0000000A", 10)
    assert credentials.other_params == (("extra", "x", True),)
    assert str(credentials) == text


@pytest.mark.parametrize(
    "text",
    [
        "NoOneKnowsThisScheme opaque-data=here",  # RFC 4475 3.3.7 regaut01
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        "Bearer",
        "Digestive realm=x",
    ],
)
def test_other_schemes_are_not_digest(text: str) -> None:
    scheme = text.split()[0]
    assert parse_credentials(text) == NotDigest(scheme)
    assert parse_challenge(text) == NotDigest(scheme)


VALID = 'Digest username="u", realm="r", nonce="n", uri="sip:r", response="ab"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "authentication header: scheme is not a token"),
        ('"Digest" realm=x', "authentication header: scheme is not a token"),
        ("Digest", "Digest header: parameter name is not a token"),
        ('Digest username="u', "Digest header: unterminated quoted string"),
        ('Digest username="u\\', "Digest header: unterminated quoted string"),
        ("Digest username", "Digest header: parameter 'username' has no value"),
        ("Digest username=", "Digest header: parameter value is neither token nor quoted string"),
        ('Digest username="u" realm="r"', "Digest header: expected ',' between parameters"),
        ('Digest username="u",, realm="r"', "Digest header: parameter name is not a token"),
        ('Digest username="u",', "Digest header: parameter name is not a token"),
        ("Digest a=b(c)", "Digest header: parameter value is neither token nor quoted string"),
        (VALID + ', response="cd"', "Digest header: duplicate parameter 'response'"),
        (VALID + ', RESPONSE="cd"', "Digest header: duplicate parameter 'response'"),
        (VALID.replace(', response="ab"', ""), "Digest credentials: missing 'response'"),
        (VALID.replace('username="u", ', ""), "Digest credentials: missing 'username'"),
        (VALID + ", qop=auth, nc=1", "Digest credentials: nc must be 8 hex digits"),
        (VALID + ", qop=auth, nc=0000000g", "Digest credentials: nc must be 8 hex digits"),
        (VALID + ", qop=auth", "Digest credentials: qop requires nc and cnonce"),
        (VALID + ", qop=auth, nc=00000001", "Digest credentials: qop requires nc and cnonce"),
        (VALID.replace('"u"', '"u\x00x"'), "Digest header: control character"),
        (VALID.replace('"u"', '"u\x7f"'), "Digest header: control character"),
        ('Digest nonce="' + "n" * 100_000 + '"', "Digest header longer than 8192 characters"),
    ],
)
def test_malformed_credentials_give_exact_errors(text: str, message: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_credentials(text)
    assert str(caught.value) == message
    assert caught.value.status == 400


def test_challenge_needs_realm_and_nonce() -> None:
    with pytest.raises(SipParseError, match=r"^Digest challenge: missing 'nonce'$"):
        parse_challenge('Digest realm="r"')
    with pytest.raises(SipParseError, match=r"^Digest challenge: missing 'realm'$"):
        parse_challenge('Digest nonce="n"')


# --------------------------------------------------------------------------- nonces

SECRET = b"0123456789abcdef0123456789abcdef"
PHONE = "192.0.2.10"


def test_nonce_lifecycle_valid_stale_invalid() -> None:
    clock = FakeClock()
    nonces = NonceManager(SECRET, clock, lifetime=300)
    nonce = nonces.issue("pbx.test", source=PHONE)
    assert len(nonce) == 64
    assert nonces.verify(nonce, "pbx.test", source=PHONE) is NonceStatus.VALID
    assert (
        nonces.verify(nonce, "other.test", source=PHONE) is NonceStatus.INVALID
    )  # bound to the realm
    assert (
        NonceManager(SECRET[::-1], clock).verify(nonce, "pbx.test", source=PHONE)
        is NonceStatus.INVALID
    )
    flipped = ("A" if nonce[20] != "A" else "B").join((nonce[:20], nonce[21:]))
    assert nonces.verify(flipped, "pbx.test", source=PHONE) is NonceStatus.INVALID
    assert nonces.verify(nonce + "=", "pbx.test", source=PHONE) is NonceStatus.INVALID
    assert nonces.verify("not base64 at all!", "pbx.test", source=PHONE) is NonceStatus.INVALID
    clock.now += 300
    assert nonces.verify(nonce, "pbx.test", source=PHONE) is NonceStatus.VALID
    clock.now += 0.01
    assert nonces.verify(nonce, "pbx.test", source=PHONE) is NonceStatus.STALE
    clock.now -= 400  # issued "in the future" (clock jumped back): refused
    assert nonces.verify(nonce, "pbx.test", source=PHONE) is NonceStatus.INVALID


def test_a_nonce_is_bound_to_the_address_it_was_sent_to() -> None:
    nonces = NonceManager(SECRET, FakeClock())
    nonce = nonces.issue("pbx.test", source=PHONE)
    assert nonces.verify(nonce, "pbx.test", source=PHONE) is NonceStatus.VALID
    for elsewhere in ("192.0.2.11", "2001:db8::10", "", PHONE + " "):
        assert nonces.verify(nonce, "pbx.test", source=elsewhere) is NonceStatus.INVALID
        assert nonces.record_use(nonce, "pbx.test", 1, source=elsewhere) is NonceStatus.INVALID
    assert nonces.record_use(nonce, "pbx.test", 1, source=PHONE) is NonceStatus.VALID
    # the realm and the address are not run together: ("pbx.tes", "t192...") is another MAC
    assert nonces.verify(nonce, "pbx.tes", source="t" + PHONE) is NonceStatus.INVALID


def test_nonces_issued_in_the_same_millisecond_differ() -> None:
    nonces = NonceManager(SECRET, FakeClock())
    assert nonces.issue("r", source=PHONE) != nonces.issue("r", source=PHONE)


def test_nonce_counts_are_single_use_within_a_window() -> None:
    nonces = NonceManager(SECRET, FakeClock(), nc_window=4)
    nonce = nonces.issue("r", source=PHONE)
    results = [nonces.record_use(nonce, "r", nc, source=PHONE) for nc in (1, 3, 2, 3, 9, 5, 6, 0)]
    assert results == [
        NonceStatus.VALID,
        NonceStatus.VALID,
        NonceStatus.VALID,  # out of order but within the window
        NonceStatus.INVALID,  # replay
        NonceStatus.VALID,
        NonceStatus.INVALID,  # fell out of the window (9 - 4)
        NonceStatus.VALID,
        NonceStatus.INVALID,  # counts start at 1
    ]


def test_evicted_nonce_history_makes_the_nonce_stale_not_replayable() -> None:
    clock = FakeClock()
    nonces = NonceManager(SECRET, clock, max_tracked=2)
    first = nonces.issue("r", source=PHONE)
    clock.now += 1
    second, third = nonces.issue("r", source=PHONE), nonces.issue("r", source=PHONE)
    assert nonces.record_use(first, "r", 1, source=PHONE) is NonceStatus.VALID
    assert nonces.record_use(second, "r", 1, source=PHONE) is NonceStatus.VALID
    assert nonces.record_use(third, "r", 1, source=PHONE) is NonceStatus.VALID  # evicts first
    assert (
        nonces.record_use(first, "r", 1, source=PHONE) is NonceStatus.STALE
    )  # not a silent replay
    assert (
        nonces.record_use(second, "r", 1, source=PHONE) is NonceStatus.INVALID
    )  # still tracked: a replay
    assert nonces.record_use(second, "r", 2, source=PHONE) is NonceStatus.VALID
    clock.now += 1
    fresh = nonces.issue("r", source=PHONE)
    assert (
        nonces.record_use(fresh, "r", 1, source=PHONE) is NonceStatus.VALID
    )  # evicts third (least recent)
    assert nonces.record_use(third, "r", 2, source=PHONE) is NonceStatus.STALE
    assert nonces.record_use(second, "r", 3, source=PHONE) is NonceStatus.VALID


def test_eviction_is_tracked_across_realms_sharing_a_manager() -> None:
    clock = FakeClock()
    nonces = NonceManager(SECRET, clock, max_tracked=1)
    ours = nonces.issue("a.test", source=PHONE)
    assert nonces.record_use(ours, "a.test", 1, source=PHONE) is NonceStatus.VALID
    clock.now += 1
    assert (
        nonces.record_use(nonces.issue("b.test", source=PHONE), "b.test", 1, source=PHONE)
        is NonceStatus.VALID
    )
    assert nonces.record_use(ours, "a.test", 1, source=PHONE) is NonceStatus.STALE


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        NonceManager(b"short", FakeClock())


# --------------------------------------------------------------------------- server side

REALM = "pbx.test"
URI = "sip:pbx.test"
USERS = {"alice": "wonderland", "bob": "builder"}


def make_lookup(calls: list[tuple[str, str]]) -> Callable[[str, str], str | None]:
    def lookup(username: str, algorithm: str) -> str | None:
        calls.append((username, algorithm))
        password = USERS.get(username)
        return None if password is None else compute_ha1(username, REALM, password, algorithm)

    return lookup


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def authenticator(clock: FakeClock) -> DigestAuthenticator:
    return DigestAuthenticator(REALM, NonceManager(SECRET, clock))


def login(
    authenticator: DigestAuthenticator,
    username: str,
    password: str,
    *,
    challenge_index: int = 0,
    method: str = "REGISTER",
    uri: str = URI,
    nc: int = 1,
) -> str:
    challenge = authenticator.challenge_headers(source=PHONE)[challenge_index]
    return answer_challenge(challenge, method, uri, username, password, cnonce="c0ffee", nc=nc)


def verify(
    authenticator: DigestAuthenticator,
    header: str | list[str] | None,
    *,
    method: str = "REGISTER",
    request_uri: str = URI,
    calls: list[tuple[str, str]] | None = None,
    source: str = PHONE,
) -> AuthResult:
    return authenticator.verify(
        method,
        header,
        make_lookup(calls if calls is not None else []),
        request_uri=request_uri,
        source=source,
    )


def test_challenges_offer_sha256_first_then_md5(authenticator: DigestAuthenticator) -> None:
    sha256, md5 = (
        parse_challenge(value) for value in authenticator.challenge_headers(source=PHONE)
    )
    assert isinstance(sha256, DigestChallenge) and isinstance(md5, DigestChallenge)
    assert (sha256.algorithm, md5.algorithm) == ("SHA-256", "MD5")
    assert sha256.qop == md5.qop == ("auth",)
    assert sha256.realm == md5.realm == REALM
    assert sha256.opaque == md5.opaque and sha256.opaque is not None
    assert sha256.nonce == md5.nonce
    assert not sha256.stale
    stale_sha256, _ = (
        parse_challenge(v) for v in authenticator.challenge_headers(stale=True, source=PHONE)
    )
    assert isinstance(stale_sha256, DigestChallenge) and stale_sha256.stale
    assert str(stale_sha256).endswith(", stale=true")


@pytest.mark.parametrize("challenge_index", [0, 1])
def test_right_password_authenticates_once_per_nonce_count(
    authenticator: DigestAuthenticator, challenge_index: int
) -> None:
    calls: list[tuple[str, str]] = []
    header = login(authenticator, "alice", "wonderland", challenge_index=challenge_index)
    result = verify(authenticator, header, calls=calls)
    assert (result.status, result.username, result.ok) == (AuthStatus.OK, "alice", True)
    assert calls == [("alice", ("SHA-256", "MD5")[challenge_index])]
    replay = verify(authenticator, header)
    assert (replay.status, replay.failure, replay.username) == (
        AuthStatus.FAILED,
        AuthFailure.REPLAY,
        None,
    )


def test_next_nonce_count_on_the_same_nonce_is_accepted(authenticator: DigestAuthenticator) -> None:
    challenge = authenticator.challenge_headers(source=PHONE)[0]
    for nc in (1, 2, 3):
        header = answer_challenge(challenge, "INVITE", URI, "bob", "builder", cnonce="x", nc=nc)
        assert verify(authenticator, header, method="INVITE").ok


def test_unknown_user_and_wrong_password_look_the_same(authenticator: DigestAuthenticator) -> None:
    wrong_calls: list[tuple[str, str]] = []
    unknown_calls: list[tuple[str, str]] = []
    wrong = verify(authenticator, login(authenticator, "alice", "guess"), calls=wrong_calls)
    unknown = verify(authenticator, login(authenticator, "mallory", "guess"), calls=unknown_calls)
    assert (wrong.status, wrong.failure, wrong.username) == (
        AuthStatus.FAILED,
        AuthFailure.BAD_CREDENTIALS,
        None,
    )
    assert (unknown.status, unknown.failure, unknown.reason) == (
        wrong.status,
        wrong.failure,
        wrong.reason,
    )
    assert (wrong.claimed_username, unknown.claimed_username) == ("alice", "mallory")
    assert wrong_calls == [("alice", "SHA-256")] and unknown_calls == [("mallory", "SHA-256")]


def test_stale_nonce_with_right_password_is_stale_and_with_wrong_password_failed(
    authenticator: DigestAuthenticator, clock: FakeClock
) -> None:
    right = login(authenticator, "alice", "wonderland")
    wrong = login(authenticator, "alice", "guess")
    clock.now += 301
    assert verify(authenticator, right).status is AuthStatus.STALE
    assert verify(authenticator, wrong).failure is AuthFailure.BAD_CREDENTIALS


def test_an_answer_captured_and_replayed_from_another_address_is_refused(
    authenticator: DigestAuthenticator, clock: FakeClock
) -> None:
    """T7: the eavesdropper's copy of alice's answer, sent from the eavesdropper's own address,
    fails on the nonce (challenged afresh) even before its count is used; alice's goes on."""
    header = login(authenticator, "alice", "wonderland")
    stolen = verify(authenticator, header, source="198.51.100.66")
    assert (stolen.status, stolen.failure, stolen.username) == (
        AuthStatus.FAILED,
        AuthFailure.INVALID_NONCE,
        None,
    )
    assert verify(authenticator, header).ok  # from the phone the challenge went to
    clock.now += 301  # an expired nonce from elsewhere is not even stale: it is not ours
    assert verify(authenticator, header, source="198.51.100.66").failure is (
        AuthFailure.INVALID_NONCE
    )


def test_foreign_nonce_is_invalid(authenticator: DigestAuthenticator, clock: FakeClock) -> None:
    other = DigestAuthenticator(REALM, NonceManager(SECRET[::-1], clock))
    header = login(other, "alice", "wonderland")
    # same realm and opaque, but the nonce was not made with our secret
    assert verify(authenticator, header).failure is AuthFailure.INVALID_NONCE


def tamper(header: str, old: str, new: str) -> str:
    assert old in header
    return header.replace(old, new)


@pytest.mark.parametrize(
    ("change", "failure"),
    [
        (lambda h: tamper(h, 'realm="pbx.test"', 'realm="evil.test"'), AuthFailure.REALM_MISMATCH),
        (
            lambda h: tamper(h, 'uri="sip:pbx.test"', 'uri="sip:other.test"'),
            AuthFailure.URI_MISMATCH,
        ),
        (lambda h: re.sub('opaque="[^"]*"', 'opaque="forged"', h), AuthFailure.OPAQUE_MISMATCH),
        (lambda h: re.sub(', opaque="[^"]*"', "", h), AuthFailure.OPAQUE_MISMATCH),
        (
            lambda h: tamper(h, "algorithm=SHA-256", "algorithm=SHA-512-256"),
            AuthFailure.UNSUPPORTED,
        ),
        (lambda h: tamper(h, "algorithm=SHA-256", "algorithm=MD5-sess"), AuthFailure.UNSUPPORTED),
        (lambda h: tamper(h, "qop=auth", "qop=auth-int"), AuthFailure.UNSUPPORTED),
        (lambda h: h.split(", cnonce=")[0], AuthFailure.UNSUPPORTED),  # RFC 2069 style, no qop
        (lambda h: tamper(h, 'nonce="', 'nonce="x'), AuthFailure.INVALID_NONCE),
        (lambda h: tamper(h, 'response="', 'response="0'), AuthFailure.BAD_CREDENTIALS),
        (lambda h: tamper(h, 'username="alice"', 'username="bob"'), AuthFailure.BAD_CREDENTIALS),
        (lambda h: tamper(h, 'response="', 'response="é'), AuthFailure.BAD_CREDENTIALS),
        (lambda h: h + ", nc=00000002", AuthFailure.MALFORMED),
        (lambda h: tamper(h, "Digest", "Basic"), AuthFailure.NOT_DIGEST),
    ],
)
def test_tampered_credentials_fail_with_the_reason(
    authenticator: DigestAuthenticator, change: Callable[[str], str], failure: AuthFailure
) -> None:
    header = change(login(authenticator, "alice", "wonderland"))
    result = verify(authenticator, header)
    assert (result.status, result.failure, result.username) == (AuthStatus.FAILED, failure, None)


def test_another_method_with_the_same_credentials_fails(authenticator: DigestAuthenticator) -> None:
    header = login(authenticator, "alice", "wonderland", method="REGISTER")
    assert verify(authenticator, header, method="INVITE").failure is AuthFailure.BAD_CREDENTIALS


def test_uri_is_compared_as_a_parsed_uri(authenticator: DigestAuthenticator) -> None:
    header = login(authenticator, "alice", "wonderland", uri="sip:%61lice@pbx.test")
    assert verify(authenticator, header, request_uri="sip:alice@pbx.test").ok


def test_missing_and_unknown_scheme_credentials(authenticator: DigestAuthenticator) -> None:
    assert verify(authenticator, None).failure is AuthFailure.NO_CREDENTIALS
    assert verify(authenticator, []).failure is AuthFailure.NO_CREDENTIALS
    regaut01 = verify(authenticator, "NoOneKnowsThisScheme opaque-data=here")
    assert (regaut01.ok, regaut01.failure) == (False, AuthFailure.NOT_DIGEST)


def test_the_credentials_for_our_realm_are_picked(authenticator: DigestAuthenticator) -> None:
    ours = login(authenticator, "alice", "wonderland")
    theirs = tamper(ours, 'realm="pbx.test"', 'realm="proxy.test"')
    assert verify(authenticator, ["Basic Zm9vOmJhcg==", theirs, ours]).ok


def test_md5_sess_when_configured(clock: FakeClock) -> None:
    authenticator = DigestAuthenticator(REALM, NonceManager(SECRET, clock), algorithms=["MD5-sess"])
    (challenge,) = authenticator.challenge_headers(source=PHONE)
    assert "algorithm=MD5-sess" in challenge
    header = answer_challenge(challenge, "REGISTER", URI, "alice", "wonderland", cnonce="cn")
    calls: list[tuple[str, str]] = []
    assert verify(authenticator, header, calls=calls).ok
    assert calls == [("alice", "MD5")]  # the stored HA1 is the plain MD5 one


def test_unsupported_configured_algorithm_is_refused(clock: FakeClock) -> None:
    with pytest.raises(UnsupportedAlgorithm):
        DigestAuthenticator(REALM, NonceManager(SECRET, clock), algorithms=["SHA-1"])


# --------------------------------------------------------------------------- client side


def test_answer_without_qop_uses_rfc2069_form() -> None:
    """Cross-checked with the standard library's independent digest client (urllib), which
    uses the RFC 2069 form when the challenge has no qop."""
    passwords = urllib.request.HTTPPasswordMgr()
    passwords.add_password("trunk", "http://trunk.test/", "u", "p")
    request = urllib.request.Request("http://trunk.test/1")
    reference = urllib.request.AbstractDigestAuthHandler(passwords).get_authorization(
        request, {"realm": "trunk", "nonce": "abc"}
    )
    assert reference is not None
    expected = parse_credentials("Digest " + reference)
    value = answer_challenge(
        'Digest realm="trunk", nonce="abc"', "GET", "/1", "u", "p", cnonce="unused"
    )
    assert isinstance(expected, DigestCredentials)
    assert value == (
        f'Digest username="u", realm="trunk", nonce="abc", uri="/1", response="{expected.response}"'
    )


@pytest.mark.parametrize(
    ("challenge", "error", "message"),
    [
        ("Basic realm=x", DigestError, "cannot answer a Basic challenge: not Digest"),
        (
            'Digest realm="r", nonce="n", qop="auth-int"',
            DigestError,
            "challenge offers no qop we support (auth)",
        ),
        (
            'Digest realm="r", nonce="n", algorithm=XYZ',
            UnsupportedAlgorithm,
            "unsupported digest algorithm 'XYZ'",
        ),
        ('Digest realm="r"', SipParseError, "Digest challenge: missing 'nonce'"),
    ],
)
def test_unanswerable_challenges(challenge: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        answer_challenge(challenge, "INVITE", "sip:x", "u", "p", cnonce="c")
    assert str(caught.value) == message


def test_nonce_count_range() -> None:
    with pytest.raises(ValueError, match="nonce count"):
        answer_challenge(
            'Digest realm="r", nonce="n", qop="auth"', "BYE", "sip:x", "u", "p", cnonce="c", nc=0
        )


def test_select_challenge_prefers_sha256_and_filters_realm() -> None:
    md5 = 'Digest realm="trunk", nonce="1", algorithm=MD5, qop="auth"'
    sha = 'Digest realm="trunk", nonce="2", algorithm=SHA-256, qop="auth"'
    foreign = 'Digest realm="evil", nonce="3", algorithm=SHA-256, qop="auth"'
    unusable = [
        'Digest realm="trunk", nonce="4", algorithm=SHA-512-256',
        "Basic realm=x",
        'Digest realm="',
    ]
    assert select_challenge([md5, sha]) == sha
    assert select_challenge([foreign, md5], realm="trunk") == md5
    assert select_challenge([foreign, *unusable], realm="trunk") is None
    assert select_challenge([]) is None
