"""The sign-in use case: outcomes, equal work, throttling, MFA steps, network policy, devices."""

from __future__ import annotations

from ipaddress import ip_address

import pyotp
import pytest
from sqlalchemy import select

from callwarden.domain.errors import NotFound, ValidationFailed
from callwarden.domain.ids import RoleId, UserId
from callwarden.security.login import (
    PUBLIC_FAILURE_MESSAGE,
    Authenticated,
    ClientInfo,
    Failure,
    FailureReason,
    LoginService,
    MfaRequired,
    RetryAfter,
    SignInOutcome,
    Success,
)
from callwarden.security.mfa import MfaPolicy, RecoveryCodes, time_step
from callwarden.security.network_policy import address_key, parse_network
from callwarden.security.passwords import PasswordHasher
from callwarden.security.sessions import SessionEndReason, SessionsRevoked
from callwarden.security.throttle import ThrottleScope
from callwarden.store.schema import UserRow
from security.sign_in_support import PASSWORD, SignIn, cheap_hasher

HOME = ClientInfo(ip_address("198.51.100.20"), "Firefox on Linux")
ELSEWHERE = ClientInfo(ip_address("203.0.113.80"), "Firefox on Linux")
ATTACKER = ClientInfo(ip_address("192.0.2.66"), "curl/8.0")


def _success(outcome: SignInOutcome) -> Success:
    assert isinstance(outcome, Success), outcome
    return outcome


def _failure(outcome: SignInOutcome) -> FailureReason:
    assert isinstance(outcome, Failure), outcome
    return outcome.reason


def _retry(outcome: SignInOutcome) -> tuple[int, ThrottleScope]:
    assert isinstance(outcome, RetryAfter), outcome
    return outcome.seconds, outcome.scope


def _client(address: str, agent: str = "Firefox on Linux") -> ClientInfo:
    return ClientInfo.parse(address, agent)


# outcomes


def test_an_operator_signs_in_with_the_password_alone(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    success = _success(sign_in.login.sign_in("alice", PASSWORD, HOME))
    assert (success.user_id, success.username, success.client) == (alice, "alice", HOME)
    assert (success.needs_mfa, success.mfa_enrolment_needed) == (False, False)
    assert (success.new_device, success.new_address) == (True, True)
    assert success.session.session.fully_authenticated
    assert success.session.session.client_address == "198.51.100.20"
    assert sign_in.login.authenticate(success.session.token) == Authenticated(
        success.session.session
    )


def test_each_sign_in_gets_a_new_session_token(sign_in: SignIn) -> None:
    """Session fixation: no token survives into a new sign-in."""
    sign_in.directory.user("alice")
    first = _success(sign_in.login.sign_in("alice", PASSWORD, HOME))
    second = _success(sign_in.login.sign_in("alice", PASSWORD, HOME))
    assert first.session.token != second.session.token
    assert first.session.session.id != second.session.session.id


def test_a_new_address_or_browser_is_flagged_once(sign_in: SignIn) -> None:
    sign_in.directory.user("alice")
    flags = []
    for client in (
        HOME,
        HOME,
        _client("198.51.100.20", "Chrome on Windows"),
        _client("198.51.100.20", "Chrome on Windows"),
        ELSEWHERE,
        _client("::ffff:203.0.113.80"),
    ):
        success = _success(sign_in.login.sign_in("alice", PASSWORD, client))
        flags.append((success.new_address, success.new_device))
    assert flags == [
        (True, True),
        (False, False),
        (False, True),
        (False, False),
        (True, True),
        (False, False),
    ]
    devices = sign_in.devices.list_for_user(success.user_id)
    assert sorted((device.address, device.user_agent) for device in devices) == [
        ("198.51.100.20", "Chrome on Windows"),
        ("198.51.100.20", "Firefox on Linux"),
        ("203.0.113.80", "Firefox on Linux"),
    ]


def test_ipv6_clients_are_known_by_their_64(sign_in: SignIn) -> None:
    sign_in.directory.user("alice")
    first = _success(sign_in.login.sign_in("alice", PASSWORD, _client("2001:db8:7:1::10")))
    same = _success(sign_in.login.sign_in("alice", PASSWORD, _client("2001:db8:7:1:a:b:c:d")))
    other = _success(sign_in.login.sign_in("alice", PASSWORD, _client("2001:db8:7:2::10")))
    assert (first.new_address, same.new_address, other.new_address) == (True, False, True)
    assert address_key(ip_address("2001:db8:7:1:a:b:c:d")) == "2001:db8:7:1::/64"


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("alice", PASSWORD + "x", FailureReason.BAD_PASSWORD),
        ("alice", "", FailureReason.BAD_PASSWORD),
        ("mallory", PASSWORD, FailureReason.UNKNOWN_USER),
        ("", PASSWORD, FailureReason.UNKNOWN_USER),
        ("a" * 65, PASSWORD, FailureReason.UNKNOWN_USER),
        ("dora", PASSWORD, FailureReason.ACCOUNT_DISABLED),
        ("dora", "wrong-password-1", FailureReason.ACCOUNT_DISABLED),
        ("nick", PASSWORD, FailureReason.NO_WEB_PASSWORD),
        ("alice", "x" * 1025, FailureReason.MALFORMED_INPUT),
        ("alice", "lone \ud800 surrogate", FailureReason.MALFORMED_INPUT),
        ("alice' OR '1'='1", PASSWORD, FailureReason.UNKNOWN_USER),
    ],
)
def test_failures_carry_their_reason_for_the_log_only(
    sign_in: SignIn, username: str, password: str, reason: FailureReason
) -> None:
    users = {
        "alice": sign_in.directory.user("alice"),
        "dora": sign_in.directory.user("dora", enabled=False),
        "nick": sign_in.directory.user("nick", password=None),
    }
    outcome = sign_in.login.sign_in(username, password, HOME)
    assert _failure(outcome) is reason
    assert isinstance(outcome, Failure)
    assert outcome.public_message == PUBLIC_FAILURE_MESSAGE
    assert (outcome.username, outcome.user_id) == (username.lower(), users.get(username))
    assert outcome.client == HOME


class CountingHasher(PasswordHasher):
    """A real (cheap) argon2id hasher that counts its verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost_kib=64, parallelism=1)
        self.verified = 0

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        return super().verify(password_hash, password)


def test_every_attempt_costs_one_argon2_verification(sign_in: SignIn) -> None:
    """No user enumeration by timing: unknown, disabled and password-less users cost the same."""
    sign_in.directory.user("alice")
    sign_in.directory.user("dora", enabled=False)
    sign_in.directory.user("nick", password=None)
    hasher = CountingHasher()
    login = LoginService(
        sign_in.directory.database.sessions,
        clock=sign_in.clock,
        hasher=hasher,
        sessions=sign_in.sessions,
        mfa=sign_in.mfa,
        throttle=sign_in.throttle,
        network_policy=sign_in.network,
        devices=sign_in.devices,
    )
    for username, password in [
        ("alice", PASSWORD),
        ("alice", "wrong-password-1"),
        ("mallory", PASSWORD),
        ("dora", PASSWORD),
        ("nick", PASSWORD),
        ("alice", "x" * 2000),
    ]:
        before = hasher.verified
        login.sign_in(username, password, _client(f"192.0.2.{hasher.verified + 1}"))
        assert hasher.verified - before == 1, username


@pytest.mark.parametrize("typed", ["ALICE", " alice ", "ａｌｉｃｅ"])
def test_usernames_are_matched_case_and_width_insensitively(sign_in: SignIn, typed: str) -> None:
    alice = sign_in.directory.user("alice")
    assert _success(sign_in.login.sign_in(typed, PASSWORD, HOME)).user_id == alice


def test_a_hash_made_with_old_parameters_is_renewed_at_sign_in(sign_in: SignIn) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost_kib=32, parallelism=1)
    alice = sign_in.directory.user("alice", hasher=weak)
    _success(sign_in.login.sign_in("alice", PASSWORD, HOME))
    with sign_in.directory.database.sessions() as db:
        stored = db.scalar(select(UserRow.password_hash).where(UserRow.id == alice))
    assert stored is not None and stored.startswith("$argon2id$v=19$m=64,t=1,p=1$")
    _success(sign_in.login.sign_in("alice", PASSWORD, HOME))


def test_client_addresses_are_validated() -> None:
    with pytest.raises(ValidationFailed) as caught:
        ClientInfo.parse("not-an-address", "x")
    assert caught.value.details == {"client_address": "not an IP address"}
    assert ClientInfo.parse(" ::ffff:192.0.2.1 ", None) == ClientInfo(ip_address("192.0.2.1"), "")


# throttling


def test_failures_from_one_address_grow_its_delay_for_that_account(sign_in: SignIn) -> None:
    sign_in.directory.user("alice")
    for _ in range(3):
        assert _failure(sign_in.login.sign_in("alice", "guess", ATTACKER))
    delays = []
    for _ in range(11):
        delay, scope = _retry(sign_in.login.sign_in("alice", PASSWORD, ATTACKER))
        assert scope is ThrottleScope.PAIR
        delays.append(delay)
        sign_in.clock.advance(seconds=delay - 1)
        assert _retry(sign_in.login.sign_in("alice", PASSWORD, ATTACKER))[0] == 1
        sign_in.clock.advance(seconds=1)
        assert _failure(sign_in.login.sign_in("alice", "guess", ATTACKER))
    assert delays == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]


def test_the_real_user_at_another_address_is_not_held_up(sign_in: SignIn) -> None:
    sign_in.directory.user("alice")
    for _ in range(9):
        sign_in.login.sign_in("alice", "guess", ATTACKER)
    assert _retry(sign_in.login.sign_in("alice", PASSWORD, ATTACKER))[1] is ThrottleScope.PAIR
    _success(sign_in.login.sign_in("alice", PASSWORD, HOME))


def test_guessing_from_many_addresses_slows_new_addresses_boundedly(sign_in: SignIn) -> None:
    sign_in.directory.user("alice")
    _success(sign_in.login.sign_in("alice", PASSWORD, HOME))  # HOME becomes known
    for host in range(10):
        assert _failure(sign_in.login.sign_in("alice", "guess", _client(f"192.0.2.{host}")))
    delays = []
    for host in range(10, 30):
        delay, scope = _retry(sign_in.login.sign_in("alice", "guess", _client(f"192.0.2.{host}")))
        assert scope is ThrottleScope.ACCOUNT
        delays.append(delay)
        sign_in.clock.advance(seconds=delay)
        assert _failure(sign_in.login.sign_in("alice", "guess", _client(f"192.0.2.{host}")))
    assert delays == [1, 2, 4, 8, 16, 32, *[60] * 14]
    # The account is still under a slow-down, but not at an address it has signed in from.
    assert _retry(sign_in.login.sign_in("alice", PASSWORD, ELSEWHERE))[1] is ThrottleScope.ACCOUNT
    _success(sign_in.login.sign_in("alice", PASSWORD, HOME))
    # A success clears the account count: the real user at a new address goes ahead too.
    _success(sign_in.login.sign_in("alice", PASSWORD, ELSEWHERE))


def test_spraying_from_one_address_is_slowed_except_for_its_known_users(sign_in: SignIn) -> None:
    sign_in.directory.user("bob")
    sign_in.directory.user("carol")
    office = _client("192.0.2.10")
    _success(sign_in.login.sign_in("bob", PASSWORD, office))
    for index in range(30):
        assert _failure(sign_in.login.sign_in(f"user{index}", "Winter2026!", office))
    delay, scope = _retry(sign_in.login.sign_in("carol", PASSWORD, office))
    assert (delay, scope) == (2, ThrottleScope.ADDRESS)
    _success(sign_in.login.sign_in("bob", PASSWORD, office))
    _success(sign_in.login.sign_in("carol", PASSWORD, HOME))


def test_failures_are_forgotten_a_day_after_the_last(sign_in: SignIn) -> None:
    sign_in.directory.user("alice")
    for _ in range(5):
        sign_in.login.sign_in("alice", "guess", ATTACKER)
        sign_in.clock.advance(minutes=20)
    assert _failure(sign_in.login.sign_in("alice", "guess", ATTACKER))
    assert _retry(sign_in.login.sign_in("alice", "guess", ATTACKER)) == (16, ThrottleScope.PAIR)
    sign_in.clock.advance(hours=24, seconds=1)
    # Counting starts again: three free failures.
    for _ in range(3):
        assert _failure(sign_in.login.sign_in("alice", "guess", ATTACKER))
    assert sign_in.throttle.sweep() == 0
    sign_in.clock.advance(hours=24, seconds=1)
    assert sign_in.throttle.sweep() == 3  # pair, address and account counters


def test_unknown_usernames_are_throttled_like_real_ones(sign_in: SignIn) -> None:
    sign_in.directory.user("alice")
    answers = []
    for username in ("alice", "mallory"):
        for _ in range(3):
            sign_in.login.sign_in(username, "guess", _client("192.0.2.99"))
        answers.append(_retry(sign_in.login.sign_in(username, "guess", _client("192.0.2.99"))))
    assert answers[0] == answers[1] == (2, ThrottleScope.PAIR)


# MFA


def _first_sign_in_with_enrolment(sign_in: SignIn, username: str) -> tuple[Success, pyotp.TOTP]:
    pending = _success(sign_in.login.sign_in(username, PASSWORD, HOME))
    assert (pending.needs_mfa, pending.mfa_enrolment_needed) == (True, True)
    enrolment = sign_in.login.begin_mfa_enrolment(pending.session.token, HOME)
    assert not isinstance(enrolment, Failure)
    totp = pyotp.TOTP(enrolment.secret)
    done = _success(
        sign_in.login.complete_mfa_enrolment(
            pending.session.token, totp.at(sign_in.clock.now()), HOME
        )
    )
    return done, totp


def test_a_supervisor_must_set_up_mfa_before_the_session_counts(sign_in: SignIn) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    pending = _success(sign_in.login.sign_in("sam", PASSWORD, HOME))
    assert (pending.needs_mfa, pending.mfa_enrolment_needed) == (True, True)
    assert not pending.session.session.fully_authenticated
    assert sign_in.login.authenticate(pending.session.token) == MfaRequired(
        pending.session.session, enrolment_needed=True
    )
    enrolment = sign_in.login.begin_mfa_enrolment(pending.session.token, HOME)
    assert not isinstance(enrolment, Failure)
    totp = pyotp.TOTP(enrolment.secret)
    now = sign_in.clock.now()
    window = {totp.generate_otp(time_step(now) + offset) for offset in (-1, 0, 1)}
    wrong = next(code for code in ("000000", "111111", "222222") if code not in window)
    bad = sign_in.login.complete_mfa_enrolment(pending.session.token, wrong, HOME)
    assert _failure(bad) is FailureReason.MFA_BAD_CODE
    done = _success(sign_in.login.complete_mfa_enrolment(pending.session.token, totp.at(now), HOME))
    assert done.user_id == sam and not done.needs_mfa
    assert isinstance(done.recovery_codes, RecoveryCodes) and len(done.recovery_codes.codes) == 10
    assert done.session.token != pending.session.token
    assert done.session.session.id == pending.session.session.id
    assert sign_in.login.authenticate(pending.session.token) is None
    assert sign_in.login.authenticate(done.session.token) == Authenticated(done.session.session)
    again = sign_in.login.begin_mfa_enrolment(done.session.token, HOME)
    assert isinstance(again, Failure) and again.reason is FailureReason.MFA_NOT_PENDING


def test_an_enrolled_user_completes_sign_in_with_a_fresh_code_only(sign_in: SignIn) -> None:
    sign_in.directory.user("ada", "admin")
    _, totp = _first_sign_in_with_enrolment(sign_in, "ada")
    used = totp.at(sign_in.clock.now())
    sign_in.clock.advance(seconds=20)
    pending = _success(sign_in.login.sign_in("ada", PASSWORD, HOME))
    assert (pending.needs_mfa, pending.mfa_enrolment_needed) == (True, False)
    token = pending.session.token
    assert sign_in.login.authenticate(token) == MfaRequired(pending.session.session, False)
    replay = sign_in.login.verify_mfa(token, used, HOME)
    assert _failure(replay) is FailureReason.MFA_CODE_REPLAYED
    sign_in.clock.advance(seconds=30)
    done = _success(sign_in.login.verify_mfa(token, totp.at(sign_in.clock.now()), HOME))
    assert done.session.token != token and not done.used_recovery_code
    assert sign_in.login.authenticate(token) is None
    assert isinstance(sign_in.login.authenticate(done.session.token), Authenticated)
    finished = sign_in.login.verify_mfa(done.session.token, totp.at(sign_in.clock.now()), HOME)
    assert _failure(finished) is FailureReason.MFA_NOT_PENDING


def test_a_recovery_code_completes_sign_in_once(sign_in: SignIn) -> None:
    sign_in.directory.user("ada", "admin")
    done, _ = _first_sign_in_with_enrolment(sign_in, "ada")
    assert done.recovery_codes is not None
    code = done.recovery_codes.codes[3]
    first = _success(sign_in.login.sign_in("ada", PASSWORD, HOME))
    recovered = _success(sign_in.login.verify_mfa(first.session.token, code, HOME))
    assert recovered.used_recovery_code
    second = _success(sign_in.login.sign_in("ada", PASSWORD, HOME))
    assert _failure(sign_in.login.verify_mfa(second.session.token, code, HOME)) is (
        FailureReason.MFA_BAD_CODE
    )


def test_guessing_mfa_codes_is_throttled(sign_in: SignIn) -> None:
    sign_in.directory.user("ada", "admin")
    _, totp = _first_sign_in_with_enrolment(sign_in, "ada")
    pending = _success(sign_in.login.sign_in("ada", PASSWORD, HOME))
    window = {totp.generate_otp(time_step(sign_in.clock.now()) + step) for step in (-1, 0, 1)}
    candidates = ("000000", "111111", "222222", "333333", "444444", "555555", "666666")
    guesses = [code for code in candidates if code not in window][:4]
    for guess in guesses[:3]:
        assert _failure(sign_in.login.verify_mfa(pending.session.token, guess, HOME)) is (
            FailureReason.MFA_BAD_CODE
        )
    outcome = sign_in.login.verify_mfa(pending.session.token, guesses[3], HOME)
    assert _retry(outcome) == (2, ThrottleScope.MFA)


def test_mfa_cannot_be_skipped_with_the_pending_token(sign_in: SignIn) -> None:
    sign_in.directory.user("aud", "auditor")
    pending = _success(sign_in.login.sign_in("aud", PASSWORD, HOME))
    checked = sign_in.login.authenticate(pending.session.token)
    assert isinstance(checked, MfaRequired) and not checked.session.fully_authenticated
    assert _failure(sign_in.login.verify_mfa("forged-token", "123456", HOME)) is (
        FailureReason.SESSION_INVALID
    )
    # A pending session dies after ten minutes, MFA or not.
    sign_in.clock.advance(minutes=10)
    assert sign_in.login.authenticate(pending.session.token) is None


def test_an_operator_who_set_up_mfa_must_use_it(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    enrolment = sign_in.mfa.begin_enrolment(alice, "alice")
    assert sign_in.mfa.confirm_enrolment(
        alice, pyotp.TOTP(enrolment.secret).at(sign_in.clock.now())
    )
    outcome = _success(sign_in.login.sign_in("alice", PASSWORD, HOME))
    assert (outcome.needs_mfa, outcome.mfa_enrolment_needed) == (True, False)


def test_policy_can_require_mfa_of_operators(sign_in: SignIn) -> None:
    sign_in.directory.user("alice")
    strict = LoginService(
        sign_in.directory.database.sessions,
        clock=sign_in.clock,
        hasher=cheap_hasher(),
        sessions=sign_in.sessions,
        mfa=sign_in.mfa,
        throttle=sign_in.throttle,
        network_policy=sign_in.network,
        devices=sign_in.devices,
        mfa_policy=MfaPolicy(optional_roles=frozenset()),
    )
    outcome = _success(strict.sign_in("alice", PASSWORD, HOME))
    assert (outcome.needs_mfa, outcome.mfa_enrolment_needed) == (True, True)


def test_a_device_becomes_known_only_once_mfa_is_complete(sign_in: SignIn) -> None:
    sign_in.directory.user("sam", "supervisor")
    first = _success(sign_in.login.sign_in("sam", PASSWORD, HOME))
    abandoned = _success(sign_in.login.sign_in("sam", PASSWORD, HOME))
    assert (first.new_device, abandoned.new_device) == (True, True)
    done, totp = _first_sign_in_with_enrolment(sign_in, "sam")
    assert (done.new_address, done.new_device) == (True, True)
    sign_in.clock.advance(seconds=30)
    later = _success(sign_in.login.sign_in("sam", PASSWORD, HOME))
    assert (later.new_address, later.new_device) == (False, False)
    completed = _success(
        sign_in.login.verify_mfa(later.session.token, totp.at(sign_in.clock.now()), HOME)
    )
    assert (completed.new_address, completed.new_device) == (False, False)


# revocation


def test_disabling_a_user_ends_their_sessions_and_tells_the_listeners(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    laptop = _success(sign_in.login.sign_in("alice", PASSWORD, HOME))
    phone = _success(sign_in.login.sign_in("alice", PASSWORD, ELSEWHERE))
    ended = sign_in.sessions.revoke_all(alice, SessionEndReason.DISABLED)
    assert sign_in.revoked == [SessionsRevoked(alice, ended, SessionEndReason.DISABLED)]
    assert set(ended) == {laptop.session.session.id, phone.session.session.id}
    assert sign_in.login.authenticate(laptop.session.token) is None
    assert sign_in.login.authenticate(phone.session.token) is None


# network policy


def test_a_role_limited_to_the_vpn(sign_in: SignIn) -> None:
    sign_in.directory.user("ada", "admin")
    sign_in.directory.user("alice")
    admin = RoleId(sign_in.directory.role_id("admin"))
    sign_in.network.add("10.8.0.0/16", role_id=admin, description="company VPN")
    sign_in.network.add("fd00:8::/32", role_id=admin)
    inside = _success(sign_in.login.sign_in("ada", PASSWORD, _client("10.8.3.4")))
    assert inside.needs_mfa
    assert _success(sign_in.login.sign_in("ada", PASSWORD, _client("fd00:8:1::5")))
    assert _success(sign_in.login.sign_in("ada", PASSWORD, _client("::ffff:10.8.0.1")))
    assert _failure(sign_in.login.sign_in("ada", PASSWORD, HOME)) is FailureReason.NETWORK_DENIED
    assert _failure(sign_in.login.sign_in("ada", PASSWORD, _client("10.9.0.1"))) is (
        FailureReason.NETWORK_DENIED
    )
    _success(sign_in.login.sign_in("alice", PASSWORD, HOME))


def test_team_ranges_apply_to_sub_teams_and_combine_with_role_ranges(sign_in: SignIn) -> None:
    directory = sign_in.directory
    partner = directory.team("partner")
    night = directory.team("partner-night", parent=partner)
    support = directory.team("support")
    directory.user("olga", team=night)
    directory.user("sue", "supervisor", team=partner)
    directory.user("alice", team=support)
    sign_in.network.add("192.0.2.0/24", team_id=partner)
    supervisor = RoleId(directory.role_id("supervisor"))
    sign_in.network.add("192.0.2.128/25", role_id=supervisor)
    sign_in.network.add("198.51.100.0/24", role_id=supervisor)
    verdicts = {}
    for name, address in [
        ("olga", "192.0.2.10"),
        ("olga", "198.51.100.20"),
        ("sue", "192.0.2.200"),
        ("sue", "192.0.2.10"),
        ("sue", "198.51.100.20"),
        ("alice", "198.51.100.20"),
    ]:
        outcome = sign_in.login.sign_in(name, PASSWORD, _client(address))
        verdicts[name, address] = isinstance(outcome, Success)
    assert verdicts == {
        ("olga", "192.0.2.10"): True,
        ("olga", "198.51.100.20"): False,
        ("sue", "192.0.2.200"): True,  # in the team's range and in one of the role's
        ("sue", "192.0.2.10"): False,  # the team's, but not the role's
        ("sue", "198.51.100.20"): False,  # the role's, but not the team's
        ("alice", "198.51.100.20"): True,
    }


def test_network_rules_are_validated_listed_and_removed(sign_in: SignIn) -> None:
    admin = RoleId(sign_in.directory.role_id("admin"))
    with pytest.raises(ValidationFailed) as caught:
        sign_in.network.add("10.8.0.1/16", role_id=admin)
    assert "did you mean 10.8.0.0/16?" in caught.value.message
    for bad in ("10.8.0.0/33", "vpn", "", "10.8.0.0/16; DROP TABLE users"):
        with pytest.raises(ValidationFailed):
            sign_in.network.add(bad, role_id=admin)
    with pytest.raises(ValidationFailed):
        sign_in.network.add("10.8.0.0/16")
    team = sign_in.directory.team("support")
    with pytest.raises(ValidationFailed):
        sign_in.network.add("10.8.0.0/16", role_id=admin, team_id=team)
    with pytest.raises(NotFound):
        sign_in.network.add("10.8.0.0/16", role_id=RoleId(9999))
    rule = sign_in.network.add("10.8.0.0/16", role_id=admin, description="VPN")
    assert rule.network == parse_network("10.8.0.0/16")
    assert sign_in.network.list_all() == [rule]
    sign_in.network.remove(rule.id)
    assert sign_in.network.list_all() == []
    with pytest.raises(NotFound):
        sign_in.network.remove(rule.id)


def test_a_user_without_rules_may_sign_in_from_anywhere(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    for address in ("192.0.2.1", "2001:db8::1", "127.0.0.1"):
        assert _success(sign_in.login.sign_in("alice", PASSWORD, _client(address))).user_id == (
            UserId(alice)
        )
