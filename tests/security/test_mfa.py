"""TOTP (RFC 6238) enrolment and single use, recovery codes, the MFA policy, sealed seeds."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select, update

from callwarden.domain.errors import InvalidState
from callwarden.domain.ids import UserId
from callwarden.security.mfa import (
    RECOVERY_CODE_COUNT,
    MfaPolicy,
    MfaService,
    MfaVerification,
    RecoveryCodes,
    time_step,
)
from callwarden.security.secret_box import SecretBox, SecretBoxError
from callwarden.store.schema import MfaRecoveryCodeRow, MfaTotpRow
from security.sign_in_support import FakeClock, SignIn

# RFC 6238 Appendix B: the SHA-1 seed is the ASCII "12345678901234567890"; 8-digit codes.
RFC_6238_SEED = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RFC_6238_VECTORS = [
    (59, 1, "94287082"),
    (1111111109, 0x23523EC, "07081804"),
    (1111111111, 0x23523ED, "14050471"),
    (1234567890, 0x273EF07, "89005924"),
    (2000000000, 0x3F940AA, "69279037"),
    (20000000000, 0x27BC86AA, "65353130"),
]


@pytest.mark.parametrize(("unix_time", "step", "code"), RFC_6238_VECTORS)
def test_time_steps_match_rfc_6238_appendix_b(unix_time: int, step: int, code: str) -> None:
    moment = datetime.fromtimestamp(unix_time, UTC)
    assert time_step(moment) == step
    assert pyotp.TOTP(RFC_6238_SEED, digits=8).generate_otp(time_step(moment)) == code


def _wrong_code(totp: pyotp.TOTP, now: datetime) -> str:
    """A well-formed code that no step of the window around `now` has."""
    window = {totp.generate_otp(time_step(now) + offset) for offset in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in window)


def _enrol(sign_in: SignIn, user_id: UserId) -> tuple[pyotp.TOTP, RecoveryCodes]:
    enrolment = sign_in.mfa.begin_enrolment(user_id, "sam")
    totp = pyotp.TOTP(enrolment.secret)
    codes = sign_in.mfa.confirm_enrolment(user_id, totp.at(sign_in.clock.now()))
    assert codes is not None
    return totp, codes


def test_enrolment_needs_one_valid_code_before_it_counts(sign_in: SignIn) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    enrolment = sign_in.mfa.begin_enrolment(sam, "sam")
    assert enrolment.provisioning_uri.startswith("otpauth://totp/callwarden:sam?secret=")
    assert f"secret={enrolment.secret}" in enrolment.provisioning_uri
    assert len(enrolment.secret) == 32  # 160 bits in base32
    assert sign_in.mfa.status(sam).enrolled is False
    totp = pyotp.TOTP(enrolment.secret)
    now = sign_in.clock.now()
    assert sign_in.mfa.verify_totp(sam, totp.at(now)) is MfaVerification.NOT_ENROLLED
    assert sign_in.mfa.confirm_enrolment(sam, _wrong_code(totp, now)) is None
    codes = sign_in.mfa.confirm_enrolment(sam, totp.at(now))
    assert codes is not None
    status = sign_in.mfa.status(sam)
    assert (status.enrolled, status.enrolled_at, status.recovery_codes_left) == (True, now, 10)
    with pytest.raises(InvalidState) as caught:
        sign_in.mfa.begin_enrolment(sam, "sam")
    assert caught.value.error_id == "mfa_already_enrolled"


def test_a_new_enrolment_replaces_an_unconfirmed_seed(sign_in: SignIn) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    first = pyotp.TOTP(sign_in.mfa.begin_enrolment(sam, "sam").secret)
    second = pyotp.TOTP(sign_in.mfa.begin_enrolment(sam, "sam").secret)
    now = sign_in.clock.now()
    if first.at(now) != second.at(now):
        assert sign_in.mfa.confirm_enrolment(sam, first.at(now)) is None
    assert sign_in.mfa.confirm_enrolment(sam, second.at(now)) is not None


def test_a_totp_code_is_accepted_once(sign_in: SignIn) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    totp, _ = _enrol(sign_in, sam)
    # The enrolment code's step counts as used: it cannot sign anyone in.
    assert sign_in.mfa.verify(sam, totp.at(sign_in.clock.now())) is MfaVerification.REPLAYED
    sign_in.clock.advance(seconds=30)
    code = totp.at(sign_in.clock.now())
    assert sign_in.mfa.verify(sam, code) is MfaVerification.ACCEPTED_TOTP
    assert sign_in.mfa.verify(sam, code) is MfaVerification.REPLAYED
    sign_in.clock.advance(seconds=10)  # same step, still inside the window
    assert sign_in.mfa.verify(sam, code) is MfaVerification.REPLAYED


def test_the_window_is_one_step_either_side_and_older_codes_die_with_newer_use(
    sign_in: SignIn,
) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    totp, _ = _enrol(sign_in, sam)
    sign_in.clock.advance(minutes=10)
    now = sign_in.clock.now()
    step = time_step(now)
    code_at = {offset: totp.generate_otp(step + offset) for offset in (-2, -1, 0, 1, 2)}
    assume_distinct = len(set(code_at.values())) == len(code_at)
    if assume_distinct:
        assert sign_in.mfa.verify(sam, code_at[-2]) is MfaVerification.REJECTED
        assert sign_in.mfa.verify(sam, code_at[2]) is MfaVerification.REJECTED
    assert sign_in.mfa.verify(sam, code_at[-1]) is MfaVerification.ACCEPTED_TOTP
    assert sign_in.mfa.verify(sam, code_at[1]) is MfaVerification.ACCEPTED_TOTP
    # The current step's code is older than the one just used: refused as a replay.
    assert sign_in.mfa.verify(sam, code_at[0]) is MfaVerification.REPLAYED


@pytest.mark.parametrize("malformed", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "123 456 7"])
def test_malformed_codes_are_rejected(sign_in: SignIn, malformed: str) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    _enrol(sign_in, sam)
    assert sign_in.mfa.verify(sam, malformed) is MfaVerification.REJECTED


def test_a_code_with_spaces_is_read_as_its_digits(sign_in: SignIn) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    totp, _ = _enrol(sign_in, sam)
    sign_in.clock.advance(seconds=30)
    code = totp.at(sign_in.clock.now())
    assert sign_in.mfa.verify(sam, f" {code[:3]} {code[3:]} ") is MfaVerification.ACCEPTED_TOTP


def test_recovery_codes_are_single_use_and_personal(sign_in: SignIn) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    ada = sign_in.directory.user("ada", "admin")
    _, codes = _enrol(sign_in, sam)
    assert len(codes.codes) == RECOVERY_CODE_COUNT == len(set(codes.codes))
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes.codes)
    _enrol(sign_in, ada)
    first, second = codes.codes[0], codes.codes[1]
    assert sign_in.mfa.verify(ada, first) is MfaVerification.REJECTED
    assert sign_in.mfa.verify(sam, first) is MfaVerification.ACCEPTED_RECOVERY_CODE
    assert sign_in.mfa.verify(sam, first) is MfaVerification.REJECTED
    typed = second.upper().replace("-", " ").replace("0", "O").replace("1", "l")
    assert sign_in.mfa.verify(sam, typed) is MfaVerification.ACCEPTED_RECOVERY_CODE
    assert sign_in.mfa.status(sam).recovery_codes_left == 8


def test_regenerating_recovery_codes_voids_the_old_ones(sign_in: SignIn) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    _, old = _enrol(sign_in, sam)
    new = sign_in.mfa.regenerate_recovery_codes(sam)
    assert not set(old.codes) & set(new.codes)
    assert sign_in.mfa.verify(sam, old.codes[0]) is MfaVerification.REJECTED
    assert sign_in.mfa.verify(sam, new.codes[0]) is MfaVerification.ACCEPTED_RECOVERY_CODE


def test_secrets_are_not_stored_readably(sign_in: SignIn) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    enrolment = sign_in.mfa.begin_enrolment(sam, "sam")
    codes = sign_in.mfa.confirm_enrolment(sam, pyotp.TOTP(enrolment.secret).at(sign_in.clock.now()))
    assert codes is not None
    with sign_in.directory.database.sessions() as db:
        sealed = db.scalars(select(MfaTotpRow.secret_sealed)).one()
        hashes = db.scalars(select(MfaRecoveryCodeRow.code_hash)).all()
    assert enrolment.secret.encode() not in sealed
    assert sealed[:1] == b"\x01" and len(sealed) == 1 + 12 + 32 + 16
    raw_codes = {code.replace("-", "") for code in codes.codes}
    assert len(hashes) == 10
    assert all(len(digest) == 64 and digest not in raw_codes for digest in hashes)
    assert "TotpEnrolment(" in repr(enrolment) and enrolment.secret not in repr(enrolment)
    assert codes.codes[0] not in repr(codes)


def test_a_seed_moved_to_another_user_or_read_with_another_key_does_not_open(
    sign_in: SignIn, clock: FakeClock
) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    ada = sign_in.directory.user("ada", "admin")
    _enrol(sign_in, sam)
    _enrol(sign_in, ada)
    database = sign_in.directory.database
    with database.sessions() as db:
        sams = db.scalars(select(MfaTotpRow.secret_sealed).where(MfaTotpRow.user_id == sam)).one()
        db.execute(update(MfaTotpRow).where(MfaTotpRow.user_id == ada).values(secret_sealed=sams))
        db.commit()
    with pytest.raises(SecretBoxError):
        sign_in.mfa.verify(ada, "123456")
    other_key = MfaService(database.sessions, SecretBox.generate(), clock)
    with pytest.raises(SecretBoxError):
        other_key.verify(sam, "123456")


def test_reset_removes_the_seed_and_the_recovery_codes(sign_in: SignIn) -> None:
    sam = sign_in.directory.user("sam", "supervisor")
    totp, codes = _enrol(sign_in, sam)
    assert sign_in.mfa.reset(sam) is True
    assert sign_in.mfa.reset(sam) is False
    assert sign_in.mfa.status(sam).enrolled is False
    sign_in.clock.advance(seconds=30)
    assert sign_in.mfa.verify(sam, totp.at(sign_in.clock.now())) is MfaVerification.NOT_ENROLLED
    assert sign_in.mfa.verify(sam, codes.codes[0]) is MfaVerification.NOT_ENROLLED
    with pytest.raises(InvalidState):
        sign_in.mfa.regenerate_recovery_codes(sam)
    with pytest.raises(InvalidState):
        sign_in.mfa.confirm_enrolment(sam, "123456")


@pytest.mark.parametrize(
    ("policy", "role", "required"),
    [
        (MfaPolicy(), "operator", False),
        (MfaPolicy(), "supervisor", True),
        (MfaPolicy(), "admin", True),
        (MfaPolicy(), "auditor", True),
        (MfaPolicy(), "quality-coach", True),
        (MfaPolicy(optional_roles=frozenset()), "operator", True),
    ],
)
def test_mfa_policy(policy: MfaPolicy, role: str, required: bool) -> None:
    assert policy.required_for(role) is required


def test_a_key_file_is_made_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    box = SecretBox.from_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_bytes()) == 32
    sealed = box.seal(b"seed", b"totp:1")
    assert SecretBox.from_key_file(path).open(sealed, b"totp:1") == b"seed"
    with pytest.raises(SecretBoxError):
        box.open(sealed, b"totp:2")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SecretBoxError):
        box.open(tampered, b"totp:1")
    with pytest.raises(SecretBoxError, match="malformed"):
        box.open(b"\x02" + sealed[1:], b"totp:1")
    (tmp_path / "short.key").write_bytes(b"x" * 31)
    with pytest.raises(SecretBoxError, match="exactly 32 bytes"):
        SecretBox.from_key_file(tmp_path / "short.key")
    assert repr(box) == "SecretBox(<key hidden>)"
