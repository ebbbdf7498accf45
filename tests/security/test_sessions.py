"""Server-side sessions: hashed tokens, rotation, both timeouts, revocation and its notices."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from callwarden.domain.errors import InvalidState, NotFound
from callwarden.domain.ids import UserId
from callwarden.security.sessions import (
    AuthLevel,
    IssuedSession,
    SessionEndReason,
    SessionId,
    SessionRevocations,
    SessionSettings,
    SessionsRevoked,
)
from callwarden.store.repositories import UserRepository
from callwarden.store.schema import WebSessionRow
from security.sign_in_support import SignIn


def _open(
    sign_in: SignIn,
    user_id: UserId,
    *,
    mfa_required: bool = False,
    address: str = "198.51.100.7",
) -> IssuedSession:
    return sign_in.sessions.create(
        user_id,
        auth_level=AuthLevel.PASSWORD,
        mfa_required=mfa_required,
        client_address=address,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
    )


def test_a_session_is_found_by_its_token_which_is_stored_only_hashed(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    issued = _open(sign_in, alice)
    assert len(issued.token) == 43  # 32 random bytes, URL-safe base64
    assert sign_in.sessions.validate(issued.token) == issued.session
    with sign_in.directory.database.sessions() as db:
        row = db.scalars(select(WebSessionRow)).one()
    assert row.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    stored = [str(value) for value in row.__dict__.values()]
    assert not any(issued.token in value for value in stored)
    assert issued.token not in repr(issued)
    assert issued.session.csrf_token not in repr(issued.session)


@pytest.mark.parametrize(
    "token",
    [None, "", "x" * 43 + "=", "not a token", "A" * 42, "A" * 44, "\x00" * 43],
)
def test_malformed_or_unknown_tokens_find_nothing(sign_in: SignIn, token: str | None) -> None:
    _open(sign_in, sign_in.directory.user("alice"))
    assert sign_in.sessions.validate(token) is None
    assert sign_in.sessions.validate("A" * 43) is None


def test_every_sign_in_gets_a_new_token_and_csrf_token(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    first, second = _open(sign_in, alice), _open(sign_in, alice)
    assert first.token != second.token
    assert first.session.id != second.session.id
    assert first.session.csrf_token != second.session.csrf_token


def test_mfa_elevation_rotates_the_token_and_the_old_one_dies(sign_in: SignIn) -> None:
    """Session fixation: a token known before MFA is worthless after it."""
    sam = sign_in.directory.user("sam", "supervisor")
    pending = _open(sign_in, sam, mfa_required=True)
    assert pending.session.fully_authenticated is False
    assert pending.session.expires_at == sign_in.clock.now() + timedelta(minutes=10)
    sign_in.clock.advance(minutes=2)
    elevated = sign_in.sessions.elevate(pending.session.id)
    assert elevated.token != pending.token
    assert elevated.session.id == pending.session.id
    assert elevated.session.csrf_token != pending.session.csrf_token
    assert elevated.session.auth_level is AuthLevel.MFA and elevated.session.fully_authenticated
    assert elevated.session.expires_at == pending.session.created_at + timedelta(hours=12)
    assert sign_in.sessions.validate(pending.token) is None
    assert sign_in.sessions.validate(elevated.token) == elevated.session
    with pytest.raises(InvalidState) as caught:
        sign_in.sessions.elevate(pending.session.id)
    assert caught.value.error_id == "mfa_done"


def test_a_pending_session_cannot_be_elevated_after_its_ten_minutes(sign_in: SignIn) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    pending = _open(sign_in, sam, mfa_required=True)
    sign_in.clock.advance(minutes=10)
    with pytest.raises(InvalidState) as caught:
        sign_in.sessions.elevate(pending.session.id)
    assert caught.value.error_id == "session_ended"
    assert sign_in.sessions.validate(pending.token) is None


def test_inactivity_ends_a_session_after_thirty_minutes(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    issued = _open(sign_in, alice)
    for _ in range(3):
        sign_in.clock.advance(minutes=29, seconds=59)
        assert sign_in.sessions.validate(issued.token) is not None
    sign_in.clock.advance(minutes=30)
    assert sign_in.sessions.validate(issued.token) is None
    ended = sign_in.sessions.get(issued.session.id)
    assert (ended.end_reason, ended.ended_at) == (
        SessionEndReason.IDLE_TIMEOUT,
        sign_in.clock.now(),
    )
    assert sign_in.revoked == [
        SessionsRevoked(alice, (issued.session.id,), SessionEndReason.IDLE_TIMEOUT)
    ]
    sign_in.clock.advance(seconds=1)
    assert sign_in.sessions.validate(issued.token) is None
    assert len(sign_in.revoked) == 1


def test_last_use_is_written_at_most_once_a_minute(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    issued = _open(sign_in, alice)
    start = sign_in.clock.now()
    sign_in.clock.advance(seconds=59)
    assert sign_in.sessions.validate(issued.token) is not None
    assert sign_in.sessions.get(issued.session.id).last_seen_at == start
    sign_in.clock.advance(seconds=1)
    seen = sign_in.sessions.validate(issued.token)
    assert seen is not None and seen.last_seen_at == sign_in.clock.now()
    assert seen.idle_expires_at == sign_in.clock.now() + timedelta(minutes=30)
    assert sign_in.sessions.get(issued.session.id).last_seen_at == sign_in.clock.now()


def test_a_busy_session_still_ends_twelve_hours_after_sign_in(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    issued = _open(sign_in, alice)
    for _ in range(12 * 3 - 1):
        sign_in.clock.advance(minutes=20)
        assert sign_in.sessions.validate(issued.token) is not None
    sign_in.clock.advance(minutes=19, seconds=59)
    active = sign_in.sessions.validate(issued.token)
    assert active is not None and active.idle_expires_at == active.expires_at
    sign_in.clock.advance(seconds=1)
    assert sign_in.sessions.validate(issued.token) is None
    assert sign_in.sessions.get(issued.session.id).end_reason is SessionEndReason.EXPIRED


@pytest.mark.parametrize(
    "reason",
    [
        SessionEndReason.DISABLED,
        SessionEndReason.ROLE_CHANGED,
        SessionEndReason.PASSWORD_CHANGED,
        SessionEndReason.LOGOUT_ALL,
    ],
)
def test_revoking_all_of_a_users_sessions_tells_the_listeners(
    sign_in: SignIn, reason: SessionEndReason
) -> None:
    alice = sign_in.directory.user("alice")
    bob = sign_in.directory.user("bob")
    laptop, phone = _open(sign_in, alice), _open(sign_in, alice, address="2001:db8::7")
    bobs = _open(sign_in, bob)
    ended = sign_in.sessions.revoke_all(alice, reason)
    assert ended == (laptop.session.id, phone.session.id)
    assert sign_in.revoked == [SessionsRevoked(alice, ended, reason)]
    assert sign_in.sessions.validate(laptop.token) is None
    assert sign_in.sessions.validate(phone.token) is None
    assert sign_in.sessions.validate(bobs.token) is not None
    assert sign_in.sessions.get(laptop.session.id).end_reason is reason
    assert sign_in.sessions.revoke_all(alice, reason) == ()
    assert len(sign_in.revoked) == 1


def test_sign_out_everywhere_else_keeps_the_current_session(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    here, there = _open(sign_in, alice), _open(sign_in, alice)
    ended = sign_in.sessions.revoke_all(alice, SessionEndReason.LOGOUT_ALL, keep=here.session.id)
    assert ended == (there.session.id,)
    assert sign_in.sessions.validate(here.token) is not None


def test_a_disabled_users_session_dies_at_its_next_request(sign_in: SignIn) -> None:
    """Even if whoever disabled the user forgot `revoke_all`."""
    alice = sign_in.directory.user("alice")
    issued = _open(sign_in, alice)
    with sign_in.directory.database.sessions() as db:
        UserRepository(db).set_enabled(alice, False)
        db.commit()
    assert sign_in.sessions.validate(issued.token) is None
    assert sign_in.revoked == [
        SessionsRevoked(alice, (issued.session.id,), SessionEndReason.DISABLED)
    ]


def test_sign_out_ends_only_that_session(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    here, there = _open(sign_in, alice), _open(sign_in, alice)
    ended = sign_in.sessions.revoke_token(here.token, SessionEndReason.LOGOUT)
    assert ended is not None and ended.id == here.session.id
    assert ended.end_reason is SessionEndReason.LOGOUT
    assert sign_in.sessions.validate(here.token) is None
    assert sign_in.sessions.validate(there.token) is not None
    assert sign_in.sessions.revoke_token(here.token, SessionEndReason.LOGOUT) is None
    assert sign_in.sessions.revoke_token("garbage", SessionEndReason.LOGOUT) is None


def test_the_your_sessions_page_lists_and_ends_only_ones_own(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    bob = sign_in.directory.user("bob")
    old = _open(sign_in, alice)
    sign_in.clock.advance(minutes=5)
    new = _open(sign_in, alice, address="203.0.113.9")
    bobs = _open(sign_in, bob)
    listed = sign_in.sessions.list_for_user(alice)
    assert [item.id for item in listed] == [new.session.id, old.session.id]
    assert listed[0].client_address == "203.0.113.9"
    with pytest.raises(NotFound):
        sign_in.sessions.revoke_own(alice, bobs.session.id, SessionEndReason.LOGOUT)
    assert sign_in.sessions.validate(bobs.token) is not None
    sign_in.sessions.revoke_own(alice, old.session.id, SessionEndReason.LOGOUT)
    with pytest.raises(NotFound):
        sign_in.sessions.revoke_own(alice, old.session.id, SessionEndReason.LOGOUT)
    assert [item.id for item in sign_in.sessions.list_for_user(alice)] == [new.session.id]
    everything = sign_in.sessions.list_for_user(alice, include_ended=True)
    assert [(item.id, item.end_reason) for item in everything] == [
        (new.session.id, None),
        (old.session.id, SessionEndReason.LOGOUT),
    ]
    sign_in.clock.advance(minutes=31)
    assert sign_in.sessions.list_for_user(alice) == []


def test_sweep_ends_timed_out_sessions_and_forgets_old_ones(sign_in: SignIn) -> None:
    alice = sign_in.directory.user("alice")
    idle = _open(sign_in, alice)
    busy = _open(sign_in, alice)
    sign_in.clock.advance(minutes=20)
    assert sign_in.sessions.validate(busy.token) is not None
    sign_in.clock.advance(minutes=10)
    assert sign_in.sessions.sweep() == 1
    assert sign_in.revoked == [
        SessionsRevoked(alice, (idle.session.id,), SessionEndReason.IDLE_TIMEOUT)
    ]
    assert sign_in.sessions.sweep() == 0
    sign_in.clock.advance(days=30)
    assert sign_in.sessions.sweep() == 1  # busy timed out meanwhile
    assert sign_in.sessions.get(idle.session.id).end_reason is SessionEndReason.IDLE_TIMEOUT
    sign_in.clock.advance(seconds=1)
    sign_in.sessions.sweep()
    with pytest.raises(NotFound):
        sign_in.sessions.get(idle.session.id)
    assert sign_in.sessions.get(busy.session.id).ended_at is not None


def test_a_failing_listener_does_not_stop_the_others() -> None:
    revocations = SessionRevocations()
    heard: list[SessionsRevoked] = []

    def broken(_event: SessionsRevoked) -> None:
        raise RuntimeError("socket already closed")

    revocations.subscribe(broken)
    unsubscribe = revocations.subscribe(heard.append)
    event = SessionsRevoked(UserId(1), (), SessionEndReason.DISABLED)
    revocations.publish(event)
    assert heard == []  # nothing ended: nobody is told
    event = SessionsRevoked(UserId(1), (SessionId(1),), SessionEndReason.DISABLED)
    revocations.publish(event)
    assert heard == [event]
    unsubscribe()
    unsubscribe()
    revocations.publish(event)
    assert heard == [event]


def test_csrf_tokens_are_compared_exactly(sign_in: SignIn) -> None:
    session = _open(sign_in, sign_in.directory.user("alice")).session
    assert session.csrf_matches(session.csrf_token)
    assert not session.csrf_matches(session.csrf_token[:-1])
    assert not session.csrf_matches("")
    assert not session.csrf_matches(None)


def test_long_client_details_are_cut_to_their_columns(sign_in: SignIn) -> None:
    issued = sign_in.sessions.create(
        sign_in.directory.user("alice"),
        auth_level=AuthLevel.PASSWORD,
        mfa_required=False,
        client_address="2001:db8::1",
        user_agent="A" * 5000,
    )
    found = sign_in.sessions.validate(issued.token)
    assert found is not None and found.user_agent == "A" * 512


@pytest.mark.parametrize(
    "settings",
    [
        {"idle_timeout": timedelta(hours=13)},
        {"touch_interval": timedelta(minutes=30)},
        {"touch_interval": timedelta(seconds=-1)},
    ],
)
def test_inconsistent_settings_are_refused(settings: dict[str, timedelta]) -> None:
    with pytest.raises(ValueError, match="touch_interval"):
        SessionSettings(**settings)


@pytest.mark.parametrize("lifetime", [timedelta(0), timedelta(hours=13)])
def test_the_mfa_step_lifetime_must_fit_in_a_session(lifetime: timedelta) -> None:
    with pytest.raises(ValueError, match="mfa_step_lifetime"):
        SessionSettings(mfa_step_lifetime=lifetime)
