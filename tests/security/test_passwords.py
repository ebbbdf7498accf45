"""argon2id password hashing: outcomes of hash, verify and needs_rehash."""

from __future__ import annotations

import pytest

from callwarden.security.passwords import PasswordHasher


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost_kib=64, parallelism=1)


def test_hash_is_argon2id_with_the_given_parameters_and_a_fresh_salt(
    hasher: PasswordHasher,
) -> None:
    first = hasher.hash("correct horse battery staple")
    second = hasher.hash("correct horse battery staple")
    assert first.startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert first != second
    assert "correct horse" not in first


def test_default_parameters_follow_rfc_9106() -> None:
    assert PasswordHasher().hash("x" * 12).startswith("$argon2id$v=19$m=65536,t=3,p=4$")


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("correct horse battery staple", True),
        ("correct horse battery stapl", False),
        ("Correct horse battery staple", False),
        ("correct horse battery staple ", False),
        ("", False),
    ],
)
def test_only_the_exact_password_verifies(
    hasher: PasswordHasher, candidate: str, expected: bool
) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert hasher.verify(stored, candidate) is expected


def test_long_and_unicode_passwords_are_never_truncated(hasher: PasswordHasher) -> None:
    long_password = "ü" * 200 + "end"
    stored = hasher.hash(long_password)
    assert hasher.verify(stored, long_password)
    assert not hasher.verify(stored, "ü" * 200)


@pytest.mark.parametrize("stored", ["", "plain text", "$argon2id$v=19$m=64,t=1,p=1$broken"])
def test_a_malformed_stored_hash_never_verifies(hasher: PasswordHasher, stored: str) -> None:
    assert not hasher.verify(stored, "anything")
    assert hasher.needs_rehash(stored)


def test_needs_rehash_when_parameters_change(hasher: PasswordHasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert not hasher.needs_rehash(stored)
    stronger = PasswordHasher(time_cost=2, memory_cost_kib=64, parallelism=1)
    assert stronger.needs_rehash(stored)
    assert stronger.verify(stored, "correct horse battery staple")
