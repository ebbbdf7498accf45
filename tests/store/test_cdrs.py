from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.cdr import (
    CallDirection,
    CdrLeg,
    Disposition,
    HangupSide,
    LegRole,
    NewCdr,
    RouteKind,
)
from callwarden.domain.errors import NotFound, ValidationFailed
from callwarden.domain.ids import CallId, CdrId, QueueId, TeamId, TrunkId, UserId
from callwarden.store.cdrs import CdrQuery, CdrRepository
from callwarden.store.schema import CallDispositionRow, CdrRow, RoleRow, TeamRow, UserRow

T0 = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)


def _users(sessions: sessionmaker[Session]) -> tuple[UserId, UserId, TeamId]:
    with sessions() as session, session.begin():
        role = session.scalar(select(RoleRow).where(RoleRow.name == "operator"))
        assert role is not None
        team = TeamRow(name="support", display_name="Support")
        session.add(team)
        session.flush()
        alice = UserRow(
            username="alice",
            display_name="A",
            role_id=role.id,
            team_id=team.id,
            extension="1001",
            enabled=True,
        )
        bob = UserRow(
            username="bob", display_name="B", role_id=role.id, extension="1002", enabled=True
        )
        session.add_all([alice, bob])
        session.flush()
        return UserId(alice.id), UserId(bob.id), TeamId(team.id)


def _call(
    minute: int,
    *,
    caller: UserId | None = None,
    callee: UserId | None = None,
    team: TeamId | None = None,
    answered: bool = True,
    direction: CallDirection = CallDirection.INTERNAL,
) -> NewCdr:
    start = T0 + timedelta(minutes=minute)
    return NewCdr(
        call_id=CallId(f"call-{minute}@example"),
        direction=direction,
        caller="1001",
        callee="1002",
        dialled_number="1002",
        route_kind=RouteKind.EXTENSION,
        started_at=start,
        answered_at=start + timedelta(seconds=3) if answered else None,
        ended_at=start + timedelta(seconds=33),
        disposition=Disposition.ANSWERED if answered else Disposition.NO_ANSWER,
        caller_user_id=caller,
        callee_user_id=callee,
        team_id=team,
    )


def test_a_cdr_with_legs_round_trips(sessions: sessionmaker[Session]) -> None:
    alice, bob, team = _users(sessions)
    plus_one = timezone(timedelta(hours=1))
    started = datetime(2026, 3, 2, 9, 0, 0, 250000, tzinfo=plus_one)
    cdr = NewCdr(
        call_id=CallId("a84b4c76e66710@pc33.example.com"),
        direction=CallDirection.INTERNAL,
        caller="Alice <sip:1001@pbx>",
        callee="1002",
        dialled_number="1002",
        route_kind=RouteKind.EXTENSION,
        started_at=started,
        answered_at=started + timedelta(seconds=2),
        ended_at=started + timedelta(seconds=92, milliseconds=500),
        disposition=Disposition.ANSWERED,
        hangup_cause="normal clearing",
        sip_status=200,
        hangup_side=HangupSide.CALLEE,
        caller_user_id=alice,
        callee_user_id=bob,
        team_id=team,
        legs=(
            CdrLeg(
                role=LegRole.CALLER,
                sip_call_id="a84b4c76e66710@pc33.example.com",
                uri="sip:1001@192.0.2.50:5062",
                started_at=started,
                answered_at=started + timedelta(seconds=2),
                ended_at=started + timedelta(seconds=92),
                sip_status=200,
                user_id=alice,
            ),
            CdrLeg(
                role=LegRole.CALLEE,
                sip_call_id="cw-2@pbx",
                uri="sip:1002@192.0.2.51",
                started_at=started + timedelta(milliseconds=5),
                answered_at=started + timedelta(seconds=2),
                ended_at=started + timedelta(seconds=92),
                sip_status=200,
                hangup_cause="BYE",
                user_id=bob,
            ),
        ),
    )
    with sessions() as session, session.begin():
        stored = CdrRepository(session).add(cdr)
    with sessions() as session:
        loaded = CdrRepository(session).get(stored.id)
        duration_ms = session.scalar(select(CdrRow.duration_ms))
    assert loaded == stored
    assert loaded.started_at == started
    assert loaded.started_at.tzinfo is UTC
    assert loaded.duration == timedelta(seconds=90, milliseconds=500)
    assert duration_ms == 90_500
    assert [leg.role for leg in loaded.legs] == [LegRole.CALLER, LegRole.CALLEE]
    assert loaded.legs[1].hangup_cause == "BYE"
    assert loaded.legs[0].user_id == alice


def test_list_filters_and_orders_newest_first(sessions: sessionmaker[Session]) -> None:
    alice, bob, team = _users(sessions)
    with sessions() as session, session.begin():
        CdrRepository(session).add_many(
            [
                _call(0, caller=alice, callee=bob, team=team),
                _call(10, caller=bob, team=None, answered=False),
                _call(20, callee=alice, team=team, direction=CallDirection.INBOUND),
                _call(30),
            ]
        )
    with sessions() as session:
        cdrs = CdrRepository(session)

        def minutes(query: CdrQuery | None = None) -> list[int]:
            return [int((c.started_at - T0).total_seconds() // 60) for c in cdrs.list(query)]

        assert minutes() == [30, 20, 10, 0]
        assert minutes(CdrQuery(user_id=alice)) == [20, 0]
        assert minutes(CdrQuery(user_id=bob)) == [10, 0]
        assert minutes(CdrQuery(team_ids=[team])) == [20, 0]
        assert minutes(CdrQuery(team_ids=[])) == []
        assert minutes(CdrQuery(since=T0 + timedelta(minutes=10))) == [30, 20, 10]
        assert minutes(CdrQuery(until=T0 + timedelta(minutes=10))) == [0]
        assert minutes(CdrQuery(direction=CallDirection.INBOUND)) == [20]
        assert minutes(CdrQuery(disposition=Disposition.NO_ANSWER)) == [10]
        assert minutes(CdrQuery(limit=2)) == [30, 20]
        assert minutes(CdrQuery(limit=2, offset=2)) == [10, 0]
        assert [c.call_id for c in cdrs.for_call(CallId("call-20@example"))] == ["call-20@example"]
        assert cdrs.for_call(CallId("unknown")) == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"since": datetime(2026, 1, 1)}, "since"),
    ],
)
def test_invalid_queries_are_refused(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        CdrQuery(**arguments)  # type: ignore[arg-type]
    assert caught.value.details == {"field": field}


def test_missing_cdr_is_not_found(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(NotFound) as caught:
        CdrRepository(session).get(CdrId(12345))
    assert caught.value.error_id == "cdr_not_found"


def test_overlong_free_text_is_cut_to_fit(sessions: sessionmaker[Session]) -> None:
    long_name = '"' + "x" * 400 + '" <sip:1001@pbx>'
    cdr = NewCdr(
        call_id=CallId("c" * 300),
        direction=CallDirection.INBOUND,
        caller=long_name,
        callee="5000",
        dialled_number="5" * 80,
        started_at=T0,
        ended_at=T0,
        disposition=Disposition.FAILED,
        hangup_cause="y" * 300,
    )
    with sessions() as session, session.begin():
        stored = CdrRepository(session).add(cdr)
    assert stored.caller == long_name[:255]
    assert stored.call_id == "c" * 255
    assert stored.dialled_number == "5" * 64
    assert stored.hangup_cause == "y" * 255


def test_cdrs_outlive_the_users_they_name(sessions: sessionmaker[Session]) -> None:
    alice, bob, team = _users(sessions)
    with sessions() as session, session.begin():
        stored = CdrRepository(session).add(_call(0, caller=alice, callee=bob, team=team))
    with sessions() as session, session.begin():
        session.execute(UserRow.__table__.delete().where(UserRow.id == alice))
    with sessions() as session:
        kept = CdrRepository(session).get(stored.id)
    assert (kept.caller_user_id, kept.callee_user_id, kept.caller) == (None, bob, "1001")


def test_a_batch_keeps_its_order_and_an_empty_batch_writes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    batch = [_call(minute) for minute in (5, 1, 3)]
    with sessions() as session, session.begin():
        assert CdrRepository(session).add_many([]) == []
        stored = CdrRepository(session).add_many(batch)
    assert [cdr.call_id for cdr in stored] == ["call-5@example", "call-1@example", "call-3@example"]
    assert stored[0].id < stored[1].id < stored[2].id
    with sessions() as session:
        assert [CdrRepository(session).get(cdr.id) for cdr in stored] == list(stored)


def test_write_many_stores_what_add_many_would(sessions: sessionmaker[Session]) -> None:
    """The writer's path (no read-back) stores the same rows: UTC times, cut text, legs."""
    _, bob, team = _users(sessions)
    plus_two = timezone(timedelta(hours=2))
    start = datetime(2026, 3, 2, 10, 0, 0, 500, tzinfo=plus_two)

    def record(call_id: str) -> NewCdr:
        return NewCdr(
            call_id=CallId(call_id),
            direction=CallDirection.INBOUND,
            caller="x" * 300,
            callee="1002",
            dialled_number="1002",
            route_kind=RouteKind.EXTENSION,
            started_at=start,
            answered_at=start + timedelta(seconds=2),
            ended_at=start + timedelta(seconds=62),
            disposition=Disposition.ANSWERED,
            hangup_side=HangupSide.CALLEE,
            hangup_cause="normal clearing",
            sip_status=200,
            callee_user_id=bob,
            team_id=team,
            legs=tuple(
                CdrLeg(
                    role=role,
                    sip_call_id=f"{role.value}-{call_id}",
                    uri="sip:" + "u" * 600,
                    started_at=start,
                    answered_at=start + timedelta(seconds=2),
                    ended_at=start + timedelta(seconds=62),
                    sip_status=200,
                    user_id=bob if role is LegRole.CALLEE else None,
                )
                for role in (LegRole.CALLER, LegRole.CALLEE)
            ),
        )

    with sessions() as session, session.begin():
        assert CdrRepository(session).write_many([record("w1"), record("w2")]) == 2
        assert CdrRepository(session).write_many([]) == 0
        (expected,) = CdrRepository(session).add_many([record("a1")])
    with sessions() as session:
        cdrs = CdrRepository(session)
        written = [cdrs.for_call(CallId(call_id))[0] for call_id in ("w1", "w2")]
    for cdr in written:
        assert replace(cdr, id=expected.id, call_id=expected.call_id, legs=()) == replace(
            expected, legs=()
        )
        assert [replace(leg, sip_call_id="") for leg in cdr.legs] == [
            replace(leg, sip_call_id="") for leg in expected.legs
        ]
    assert written[0].started_at.tzinfo == UTC
    assert len(written[0].caller) == 255


def test_links_to_objects_deleted_during_the_call_are_cleared(
    sessions: sessionmaker[Session],
) -> None:
    alice, bob, team = _users(sessions)
    gone = UserId(bob + 1000)
    start = T0
    cdr = NewCdr(
        call_id=CallId("late@example"),
        direction=CallDirection.OUTBOUND,
        caller="1001",
        callee="0312345678",
        dialled_number="0312345678",
        route_kind=RouteKind.TRUNK,
        started_at=start,
        ended_at=start + timedelta(seconds=5),
        disposition=Disposition.FAILED,
        caller_user_id=gone,
        callee_user_id=alice,
        trunk_id=TrunkId(77),
        queue_id=QueueId(alice),  # an id that exists, but in another table
        team_id=team,
        legs=(
            CdrLeg(
                role=LegRole.CALLER,
                sip_call_id="x",
                uri="sip:1001@pbx",
                started_at=start,
                ended_at=start,
                user_id=gone,
                trunk_id=TrunkId(77),
            ),
        ),
    )
    batch = [_call(0, caller=alice, callee=bob, team=team), cdr]
    with sessions() as session, session.begin():
        stored = CdrRepository(session).add_many(batch)
    with sessions() as session:
        late = CdrRepository(session).get(stored[1].id)
    assert late == stored[1]
    assert (late.caller_user_id, late.callee_user_id, late.team_id) == (None, alice, team)
    assert (late.trunk_id, late.queue_id) == (None, None)
    assert (late.legs[0].user_id, late.legs[0].trunk_id) == (None, None)
    assert stored[0].caller_user_id == alice


def test_a_record_carries_its_calls_wrap_up_code_once_one_is_set(
    sessions: sessionmaker[Session],
) -> None:
    alice, bob, team = _users(sessions)
    with sessions() as session, session.begin():
        stored = CdrRepository(session).add_many(
            [_call(1, caller=alice, callee=bob, team=team), _call(2, caller=alice, team=team)]
        )
    assert [cdr.wrap_up_code for cdr in stored] == [None, None]
    with sessions() as session, session.begin():
        session.add(
            CallDispositionRow(
                call_id="call-1@example",
                user_id=bob,
                team_id=team,
                code="resolved",
                note="",
                updated_at=T0 + timedelta(minutes=5),
            )
        )
    with sessions() as session:
        repository = CdrRepository(session)
        assert [(cdr.call_id, cdr.wrap_up_code) for cdr in repository.list()] == [
            ("call-2@example", None),
            ("call-1@example", "resolved"),
        ]
        assert repository.get(stored[0].id).wrap_up_code == "resolved"
        (found,) = repository.for_call(CallId("call-1@example"))
        assert found.wrap_up_code == "resolved"
