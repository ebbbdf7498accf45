"""Guessing one account from many addresses (T9, NIST SP 800-63B 5.2.2), through the real
auth guard and digest authenticator on a fake clock: after 100 failures from addresses the
user never authenticated from, such addresses are refused for that account even with the
right password; the user's own phone is not; unknown names behave alike; admins are alerted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from callwarden.bus.event import Event
from callwarden.domain.directory import DirectorySnapshot
from callwarden.sip.addressing import Source
from callwarden.sip.clock import FakeClock
from callwarden.sip.digest import DigestAuthenticator, NonceManager, answer_challenge
from callwarden.sip.message import SipRequest
from callwarden.telephony.account_guard import AccountGuard, AccountGuardSettings
from callwarden.telephony.security_events import AccountGuessingAlert
from callwarden.telephony.sip_auth import FromUser, Identity, Refused, SipAuthGuard
from callwarden.telephony.throttle import FailureThrottle, ThrottleSettings

RequestFactory = Callable[..., SipRequest]
WALL = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SETTINGS = AccountGuardSettings(threshold=100, window=3600.0, block=900.0)
ALICE_PHONE = Source("UDP", "203.0.113.5", 5060, "192.0.2.1", 5060)
URI = "sip:pbx.example"


def bot(n: int) -> Source:
    return Source("UDP", f"198.18.{n // 250}.{n % 250 + 1}", 5060, "192.0.2.1", 5060)


class Rig:
    def __init__(
        self, clock: FakeClock, directory: DirectorySnapshot, build_request: RequestFactory
    ) -> None:
        self.events: list[Event] = []
        self.accounts = AccountGuard(
            clock, settings=SETTINGS, publish=self.events.append, wall_clock=lambda: WALL
        )
        nonces = NonceManager(b"account-guard-test-nonce-secret1", clock.now, 300.0)
        self.authenticator = DigestAuthenticator("callwarden", nonces)
        self.guard = SipAuthGuard(
            self.authenticator,
            per_account=FailureThrottle(clock, ThrottleSettings(threshold=5)),
            per_address=FailureThrottle(clock, ThrottleSettings(threshold=50)),
            per_user=self.accounts,
        )
        self.directory = directory
        self.build_request = build_request
        self.cseq = 0

    def register(self, source: Source, user: str, password: str) -> Identity:
        self.cseq += 1
        challenge = self.authenticator.challenge_headers(source=source.remote_host)[0]
        answer = answer_challenge(challenge, "REGISTER", URI, user, password, cnonce="a1b2c3d4")
        request = self.build_request(
            "REGISTER",
            URI,
            user=user,
            call_id=f"guess-{self.cseq}",
            cseq=self.cseq,
            extra=(f"Authorization: {answer}",),
        )
        return self.guard.identify(request, source, self.directory, allow_trunks=False)


@pytest.fixture
def rig(clock: FakeClock, directory: DirectorySnapshot, build_request: RequestFactory) -> Rig:
    return Rig(clock, directory, build_request)


def status(identity: Identity) -> int | str:
    if isinstance(identity, FromUser):
        return identity.user.username
    assert isinstance(identity, Refused)
    return identity.response.status


def test_a_botnet_is_stopped_at_100_failures_and_alices_phone_goes_on(
    rig: Rig, clock: FakeClock
) -> None:
    assert status(rig.register(ALICE_PHONE, "alice", "alice-secret")) == "alice"
    answers = [status(rig.register(bot(n), "alice", f"guess-{n}")) for n in range(150)]
    assert answers[:100] == [401] * 100  # one guess per address: no per-address throttle
    assert answers[100:] == [403] * 50
    # the right password from a new address is refused too: guessing it right changes nothing
    assert status(rig.register(bot(999), "alice", "alice-secret")) == 403
    # alice's phone, where she registered before, is not locked out
    assert status(rig.register(ALICE_PHONE, "alice", "alice-secret")) == "alice"
    # bob is unaffected
    assert status(rig.register(bot(1000), "bob", "bob-secret")) == "bob"
    [alert] = rig.events
    assert isinstance(alert, AccountGuessingAlert)
    assert (alert.username, alert.failures) == ("alice", 100)
    assert alert.permission.value == "settings.manage"
    # the block ends; a new address may then sign in with the right password
    clock.advance(SETTINGS.block)
    assert status(rig.register(bot(1001), "alice", "alice-secret")) == "alice"


def test_an_unknown_name_is_blocked_alike(rig: Rig) -> None:
    """No oracle: the block does not depend on whether the account exists."""
    for name in ("alice", "nobody"):
        answers = [status(rig.register(bot(n), name, "wrong")) for n in range(101)]
        assert answers == [401] * 100 + [403], name
    assert [e.username for e in rig.events] == ["alice", "nobody"]  # type: ignore[attr-defined]


def test_known_addresses_are_bounded_and_failures_from_them_do_not_count(
    clock: FakeClock,
) -> None:
    events: list[Event] = []
    guard = AccountGuard(
        clock,
        settings=AccountGuardSettings(threshold=3, known_per_user=2, max_users=2),
        publish=events.append,
        wall_clock=lambda: WALL,
    )
    for host in ("a", "b", "c"):
        guard.record_success("alice", host)
    assert not guard.is_known("alice", "a") and guard.is_known("alice", "c")
    for _ in range(10):
        guard.record_failure("alice", "c")  # her own phone mistyping: not guessing
    assert events == []
    guard.record_success("bob", "x")
    guard.record_success("carol", "y")
    assert not guard.is_known("alice", "c")  # the least recently seen user was let go


def test_an_ipv6_phone_is_known_by_its_64(clock: FakeClock) -> None:
    events: list[Event] = []
    guard = AccountGuard(
        clock,
        settings=AccountGuardSettings(threshold=1),
        publish=events.append,
        wall_clock=lambda: WALL,
    )
    guard.record_success("alice", "2001:db8:5:6::10")
    guard.record_failure("alice", "198.18.0.1")  # blocks alice for unknown addresses
    assert guard.is_blocked("alice", "198.18.0.2")
    assert not guard.is_blocked("alice", "2001:db8:5:6:a:b:c:d")  # a new temporary address
    assert guard.is_blocked("alice", "2001:db8:5:7::10")  # another network
    assert len(events) == 1
