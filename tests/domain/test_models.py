from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from callwarden.domain.cdr import CallDirection, CdrLeg, Disposition, LegRole, NewCdr
from callwarden.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from callwarden.domain.ids import CallId, RoleId, TeamId, TrunkId, UserId
from callwarden.domain.models import (
    Role,
    SipCredentials,
    SipDigestAlgorithm,
    Trunk,
    User,
)
from callwarden.domain.patterns import DialPattern

T0 = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


def _cdr(**changes: object) -> NewCdr:
    values: dict[str, object] = {
        "call_id": CallId("abc@host"),
        "direction": CallDirection.INTERNAL,
        "caller": "1001",
        "callee": "1002",
        "dialled_number": "1002",
        "started_at": T0,
        "answered_at": T0 + timedelta(seconds=4),
        "ended_at": T0 + timedelta(seconds=64),
        "disposition": Disposition.ANSWERED,
    }
    values.update(changes)
    return NewCdr(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error_class", "error_id"),
    [
        (NotFound, "not_found"),
        (Forbidden, "forbidden"),
        (Conflict, "conflict"),
        (InvalidState, "invalid_state"),
        (ValidationFailed, "validation_failed"),
    ],
)
def test_errors_carry_a_default_error_id(error_class: type[DomainError], error_id: str) -> None:
    error = error_class("message")
    assert error.error_id == error_id
    assert error.message == "message"
    assert error.details == {}
    assert str(error) == "message"


def test_error_id_and_details_can_be_specific() -> None:
    error = NotFound("user 7 not found", error_id="user_not_found", details={"id": 7})
    assert (error.error_id, error.details) == ("user_not_found", {"id": 7})
    assert repr(error) == "NotFound(error_id='user_not_found', message='user 7 not found')"


def test_role_allow_list() -> None:
    role = Role(id=RoleId(1), name="operator", outbound_patterns=(DialPattern.parse("0[1-9]X."),))
    assert role.allows_dialling("0312345678")
    assert not role.allows_dialling("0031234")
    assert not Role(id=RoleId(2), name="auditor").allows_dialling("0312345678")


def test_secrets_stay_out_of_repr() -> None:
    user = User(
        id=UserId(1),
        username="alice",
        display_name="Alice",
        role_id=RoleId(1),
        password_hash="$argon2id$secret-hash",
        sip=SipCredentials(realm="r", ha1_md5="md5-secret", ha1_sha256="sha-secret"),
    )
    trunk = Trunk(id=TrunkId(1), name="carrier", host="192.0.2.10", password="trunk-secret")
    text = repr(user) + repr(trunk)
    for secret in ("secret-hash", "md5-secret", "sha-secret", "trunk-secret"):
        assert secret not in text


def test_sip_credentials_only_for_enabled_users_and_their_realm() -> None:
    credentials = SipCredentials(realm="pbx", ha1_md5="a" * 32, ha1_sha256="b" * 64)
    user = User(
        id=UserId(1), username="alice", display_name="A", role_id=RoleId(1), sip=credentials
    )
    assert user.sip_credentials_for("pbx") is credentials
    assert user.sip_credentials_for("other") is None
    disabled = User(
        id=UserId(1),
        username="alice",
        display_name="A",
        role_id=RoleId(1),
        sip=credentials,
        enabled=False,
    )
    assert disabled.sip_credentials_for("pbx") is None
    assert credentials.ha1(SipDigestAlgorithm.MD5) == "a" * 32
    assert credentials.ha1(SipDigestAlgorithm.SHA256) == "b" * 64


def test_web_sign_in_needs_a_password_and_an_enabled_account() -> None:
    base = {"id": UserId(1), "username": "a", "display_name": "A", "role_id": RoleId(1)}
    assert not User(**base).can_sign_in_to_web  # type: ignore[arg-type]
    assert User(**base, password_hash="h").can_sign_in_to_web  # type: ignore[arg-type]
    assert not User(**base, password_hash="h", enabled=False).can_sign_in_to_web  # type: ignore[arg-type]
    assert User(**base, team_id=TeamId(3)).team_id == 3  # type: ignore[arg-type]


def test_cdr_durations() -> None:
    cdr = _cdr()
    assert cdr.duration == timedelta(seconds=60)
    assert cdr.total_duration == timedelta(seconds=64)
    assert cdr.wait_duration == timedelta(seconds=4)
    missed = _cdr(answered_at=None, disposition=Disposition.NO_ANSWER)
    assert missed.duration == timedelta(0)
    assert missed.wait_duration is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"started_at": datetime(2026, 1, 5, 9)}, "started_at must be timezone-aware"),
        (
            {
                "ended_at": T0 - timedelta(seconds=1),
                "answered_at": None,
                "disposition": Disposition.FAILED,
            },
            "ended_at is before started_at",
        ),
        ({"answered_at": T0 + timedelta(hours=1)}, "answered_at is outside started_at..ended_at"),
        (
            {"disposition": Disposition.BUSY},
            "answered_at is set exactly when the disposition is 'answered'",
        ),
        ({"answered_at": None}, "answered_at is set exactly when the disposition is 'answered'"),
    ],
)
def test_inconsistent_cdr_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _cdr(**changes)
    assert caught.value.message == message


def test_cdr_accepts_any_timezone() -> None:
    plus_two = timezone(timedelta(hours=2))
    cdr = _cdr(started_at=datetime(2026, 1, 5, 11, 0, 0, tzinfo=plus_two))
    assert cdr.wait_duration == timedelta(seconds=4)


def test_cdr_leg_needs_order_and_aware_times() -> None:
    with pytest.raises(ValidationFailed, match="leg ended_at is before started_at"):
        CdrLeg(
            role=LegRole.CALLER,
            sip_call_id="x",
            uri="sip:a@b",
            started_at=T0,
            ended_at=T0 - timedelta(seconds=1),
        )
    with pytest.raises(ValidationFailed, match="leg started_at must be timezone-aware"):
        CdrLeg(
            role=LegRole.CALLER,
            sip_call_id="x",
            uri="sip:a@b",
            started_at=datetime(2026, 1, 1),
            ended_at=T0,
        )
