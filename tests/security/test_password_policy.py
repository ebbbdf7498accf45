"""The web password policy (NIST SP 800-63B 5.1.1): a table of passwords and verdicts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from callwarden.domain.errors import ValidationFailed
from callwarden.provisioning import Provisioner
from callwarden.provisioning.errors import ProvisioningError
from callwarden.security.password_policy import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    CommonPasswords,
    PasswordPolicy,
    PasswordRejected,
    PasswordRejection,
    normalize_password,
)
from callwarden.security.passwords import PasswordHasher
from callwarden.store.database import Database
from callwarden.store.schema import UserRow


@pytest.fixture(scope="module")
def policy() -> PasswordPolicy:
    return PasswordPolicy.default()


TABLE = [
    # (password, username, display name, verdict: None = accepted)
    ("violet-harbour-tandem-41", "alice", "Alice Operator", None),
    ("correct horse battery", "alice", None, None),
    ("Tr0ub4dor&3-kestrel", None, None, None),
    ("x7#Kq9!mZ2@w", None, None, None),
    ("zwölf Ünïcödé wörter", None, None, None),
    ("a" * 11 + "b", None, None, PasswordRejection.REPETITIVE),
    ("short-pw-11", None, None, PasswordRejection.TOO_SHORT),
    ("", None, None, PasswordRejection.TOO_SHORT),
    ("n8#Pq2!vZ5@" + "x" * (PASSWORD_MAX_LENGTH - 11), None, None, None),
    ("n8#Pq2!vZ5@" + "x" * (PASSWORD_MAX_LENGTH - 10), None, None, PasswordRejection.TOO_LONG),
    ("line-one\nline-two", None, None, PasswordRejection.CONTROL_CHARACTERS),
    ("tab\tseparated-words", None, None, PasswordRejection.CONTROL_CHARACTERS),
    ("password1234", None, None, PasswordRejection.COMMON),
    ("Password2024!", None, None, PasswordRejection.COMMON),
    ("P@ssw0rd2024!!", None, None, PasswordRejection.COMMON),
    ("!!!Sunshine!!!", None, None, PasswordRejection.COMMON),
    ("qwertyuiop123", None, None, PasswordRejection.COMMON),
    ("QWERTYUIOPASDF", None, None, PasswordRejection.COMMON),
    ("1qaz2wsx3edc4rfv", None, None, PasswordRejection.COMMON),
    ("i love you 2024", None, None, PasswordRejection.COMMON),
    ("monkeymonkeymonkey", None, None, PasswordRejection.COMMON),
    ("123456789012", None, None, PasswordRejection.COMMON),
    ("abcdefghijklm", None, None, PasswordRejection.REPETITIVE),
    ("zyxwvutsrqpon", None, None, PasswordRejection.REPETITIVE),
    ("abababababababab", None, None, PasswordRejection.REPETITIVE),
    ("112233112233", None, None, PasswordRejection.REPETITIVE),
    ("alice2024!!!!", "alice", None, PasswordRejection.CONTEXT),
    ("ALICE-alice-Alice", "alice", None, PasswordRejection.CONTEXT),
    ("Ada Lovelace 1815", "ada", "Ada Lovelace", PasswordRejection.CONTEXT),
    ("lovelace-1815!", "ada", "Ada Lovelace", PasswordRejection.CONTEXT),
    ("lovelace-1815-xy", "ada", "Ada Lovelace", None),
    ("callwarden-xy-42", None, None, PasswordRejection.CONTEXT),
    ("alice-in-wonderland-tea", "alice", None, None),
    ("demo-web-aud-auditor", "aud", "Audrey Auditor", None),
]


@pytest.mark.parametrize(("password", "username", "display_name", "verdict"), TABLE)
def test_password_table(
    policy: PasswordPolicy,
    password: str,
    username: str | None,
    display_name: str | None,
    verdict: PasswordRejection | None,
) -> None:
    problem = policy.problem(password, username=username, display_name=display_name)
    assert (None if problem is None else problem.reason) is verdict


def test_a_rejection_is_a_validation_error_naming_the_password_field(
    policy: PasswordPolicy,
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        policy.check("short")
    error = caught.value
    assert isinstance(error, PasswordRejected)
    assert (error.error_id, error.message) == (
        "password_rejected",
        f"password must be at least {PASSWORD_MIN_LENGTH} characters long",
    )
    assert error.details == {
        "password": f"must be at least {PASSWORD_MIN_LENGTH} characters long",
        "reason": "too_short",
    }


def test_every_rule_has_its_own_message(policy: PasswordPolicy) -> None:
    messages = {
        row[3]: policy.problem(row[0], username=row[1], display_name=row[2])
        for row in TABLE
        if row[3] is not None
    }
    assert {reason: problem.reason_message for reason, problem in messages.items() if problem} == {
        PasswordRejection.TOO_SHORT: "must be at least 12 characters long",
        PasswordRejection.TOO_LONG: "must be at most 1024 characters long",
        PasswordRejection.CONTROL_CHARACTERS: "must not contain control characters",
        PasswordRejection.COMMON: "is too common (it is on the list of guessed passwords)",
        PasswordRejection.REPETITIVE: "is too repetitive or sequential",
        PasswordRejection.CONTEXT: "must not be based on the username or name",
    }


def test_length_counts_characters_after_nfkc(policy: PasswordPolicy) -> None:
    # "ﬃ" (one code point) is "ffi" (three) in NFKC: 10 ligatures are 30 characters.
    assert normalize_password("ﬃ") == "ffi"
    assert policy.check("ﬃ" * 4 + "-kx") == "ffiffiffiffi-kx"
    # Full-width letters are the ASCII ones: this is "Password2024" and common.
    problem = policy.problem("Ｐａｓｓｗｏｒｄ２０２４")
    assert problem is not None and problem.reason is PasswordRejection.COMMON


def test_the_hasher_verifies_any_unicode_form_of_the_password() -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost_kib=64, parallelism=1)
    composed, decomposed = "Crème brûlée au café", "Cre\u0300me bru\u0302le\u0301e au cafe\u0301"
    assert composed != decomposed
    stored = hasher.hash(decomposed)
    assert hasher.verify(stored, composed)
    assert not hasher.verify(stored, "Creme brulee au cafe")
    assert not hasher.verify(stored, "lone \ud800 surrogate")


def test_the_bundled_list_is_large_and_lower_cased() -> None:
    common = CommonPasswords.bundled()
    assert len(common) >= 1000
    assert all(entry == entry.lower() and entry.strip() == entry for entry in common.entries)
    assert {"password", "qwertyuiop", "1qaz2wsx", "iloveyou", "letmein"} <= common.entries
    assert "Password" in common


def test_a_custom_list_and_bounds(policy: PasswordPolicy) -> None:
    custom = PasswordPolicy(
        CommonPasswords.from_lines(["# comment", "", "Kestrel-Falcon-Hawk"]),
        min_length=8,
        max_length=64,
    )
    assert custom.check("owl-eyes") == "owl-eyes"
    problem = custom.problem("kestrel falcon hawk")
    assert problem is not None and problem.reason is PasswordRejection.COMMON
    too_long = custom.problem("q" + "w" * 60 + "erty")
    assert too_long is not None and too_long.reason is PasswordRejection.TOO_LONG


@pytest.mark.parametrize(("minimum", "maximum"), [(7, 128), (12, 63), (20, 12)])
def test_unsafe_bounds_are_refused(minimum: int, maximum: int) -> None:
    with pytest.raises(ValueError, match="password lengths"):
        PasswordPolicy(CommonPasswords(frozenset()), min_length=minimum, max_length=maximum)


def test_the_bounds_are_nists() -> None:
    assert (PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH) == (12, 1024)


def test_provisioning_refuses_a_password_the_policy_refuses(sign_in_db: Database) -> None:
    provisioner = Provisioner(
        sign_in_db.sessions,
        "callwarden.test",
        password_hasher=PasswordHasher(time_cost=1, memory_cost_kib=64, parallelism=1),
    )
    text = (
        "users:\n"
        "  - {username: alice, role: operator, password: Password2024!}\n"
        "  - {username: bob, role: operator, display_name: Bob Keller, password: bob-keller-99}\n"
        "  - {username: carol, role: operator, password: maple kettle orbit lantern}\n"
    )
    with pytest.raises(ProvisioningError) as caught:
        provisioner.apply_text(text, "callcenter.yaml")
    assert [str(problem) for problem in caught.value.problems] == [
        "callcenter.yaml:2: users[0].password: is too common (it is on the list of guessed "
        "passwords)",
        "callcenter.yaml:3: users[1].password: must not be based on the username or name",
    ]
    with sign_in_db.sessions() as session:
        assert session.scalars(select(UserRow.username)).all() == []
