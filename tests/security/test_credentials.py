"""Password changes: through the policy, throttled, and ending every session of the user."""

from __future__ import annotations

import pytest

from callwarden.domain.errors import NotFound, ValidationFailed
from callwarden.domain.ids import UserId
from callwarden.security.credentials import PasswordRetryLater
from callwarden.security.login import ClientInfo, Failure, FailureReason, Success
from callwarden.security.password_policy import PasswordRejected, PasswordRejection
from callwarden.security.sessions import SessionEndReason, SessionsRevoked
from security.sign_in_support import PASSWORD, SignIn

HOME = ClientInfo.parse("198.51.100.20", "Firefox on Linux")
NEW_PASSWORD = "quiet-meadow-lantern-93"


def _sign_in(sign_in: SignIn, password: str = PASSWORD) -> Success:
    outcome = sign_in.login.sign_in("alice", password, HOME)
    assert isinstance(outcome, Success), outcome
    return outcome


def test_changing_ones_password_ends_every_session(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    laptop, phone = _sign_in(sign_in), _sign_in(sign_in)
    ended = sign_in.passwords.change_own(alice, PASSWORD, NEW_PASSWORD, address=HOME.address_key)
    assert set(ended) == {laptop.session.session.id, phone.session.session.id}
    assert sign_in.revoked == [SessionsRevoked(alice, ended, SessionEndReason.PASSWORD_CHANGED)]
    assert sign_in.login.authenticate(laptop.session.token) is None
    old = sign_in.login.sign_in("alice", PASSWORD, HOME)
    assert isinstance(old, Failure) and old.reason is FailureReason.BAD_PASSWORD
    _sign_in(sign_in, NEW_PASSWORD)


def test_a_wrong_current_password_changes_nothing_and_is_throttled(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    session = _sign_in(sign_in)
    for _ in range(3):
        with pytest.raises(ValidationFailed) as caught:
            sign_in.passwords.change_own(alice, "wrong", NEW_PASSWORD, address="192.0.2.9")
        assert caught.value.details == {"current_password": "not correct"}
    with pytest.raises(PasswordRetryLater) as throttled:
        sign_in.passwords.change_own(alice, PASSWORD, NEW_PASSWORD, address="192.0.2.9")
    assert throttled.value.seconds == 2
    assert sign_in.login.authenticate(session.session.token) is not None
    _sign_in(sign_in)


@pytest.mark.parametrize(
    ("new_password", "reason"),
    [
        ("short", PasswordRejection.TOO_SHORT),
        ("Password2026!", PasswordRejection.COMMON),
        ("alice-2026!!", PasswordRejection.CONTEXT),
    ],
)
def test_the_new_password_must_pass_the_policy(
    sign_in: SignIn, new_password: str, reason: PasswordRejection
) -> None:
    alice = sign_in.directory.user("alice")
    session = _sign_in(sign_in)
    with pytest.raises(PasswordRejected) as caught:
        sign_in.passwords.change_own(alice, PASSWORD, new_password, address=HOME.address_key)
    assert caught.value.reason is reason and "password" in caught.value.details
    assert sign_in.login.authenticate(session.session.token) is not None
    _sign_in(sign_in)


def test_an_administrators_reset_ends_the_sessions_too(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    session = _sign_in(sign_in)
    assert sign_in.passwords.set_by_administrator(alice, NEW_PASSWORD) == (
        session.session.session.id,
    )
    assert sign_in.login.authenticate(session.session.token) is None
    _sign_in(sign_in, NEW_PASSWORD)
    with pytest.raises(NotFound):
        sign_in.passwords.set_by_administrator(UserId(9999), NEW_PASSWORD)
