from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.models import QueueStrategy, RecordingPolicy, Transport
from callwarden.domain.patterns import DialPattern
from callwarden.store.directory import UserDirectory
from callwarden.store.schema import (
    QueueRow,
    RoleRow,
    TeamRow,
    TrunkInboundNumberRow,
    TrunkRow,
    UserRow,
)


def _add_configuration(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        operator = session.scalar(select(RoleRow).where(RoleRow.name == "operator"))
        assert operator is not None
        operator.outbound_patterns = ["0[1-9]XXXXXXXX", "not a pattern"]
        team = TeamRow(name="support", display_name="Support")
        session.add(team)
        session.flush()
        session.add(
            UserRow(
                username="alice",
                display_name="Alice",
                role_id=operator.id,
                team_id=team.id,
                extension="1001",
                enabled=True,
            )
        )
        session.add(
            TrunkRow(
                name="carrier",
                host="192.0.2.10",
                port=5060,
                transport=Transport.UDP,
                outbound_patterns=["0X."],
                register=False,
                enabled=True,
                inbound_numbers=[TrunkInboundNumberRow(number="0312345678", destination="5000")],
            )
        )
        session.add(
            QueueRow(
                name="billing",
                display_name="Billing",
                number="5000",
                team_id=team.id,
                strategy=QueueStrategy.LONGEST_IDLE,
                wrap_up_seconds=10,
                ring_timeout_seconds=15,
                max_no_answer=3,
                service_level_seconds=20,
                service_level_percent=80,
                required_skill_level=0,
                recording=RecordingPolicy.ALL,
            )
        )


def test_directory_is_empty_until_reloaded(sessions: sessionmaker[Session]) -> None:
    _add_configuration(sessions)
    directory = UserDirectory(sessions)
    assert directory.snapshot.user_by_username("alice") is None
    snapshot = directory.reload()
    assert directory.snapshot is snapshot
    alice = snapshot.user_by_extension("1001")
    assert alice is not None and alice.username == "alice"
    assert snapshot.queue_by_number("5000") is not None
    found = snapshot.inbound_number("0312345678")
    assert found is not None and found[0].name == "carrier" and found[1].destination == "5000"
    assert [trunk.name for trunk in snapshot.trunks_for_outbound("0312345678")] == ["carrier"]


def test_a_stored_pattern_that_does_not_parse_is_left_out(
    sessions: sessionmaker[Session],
) -> None:
    _add_configuration(sessions)
    snapshot = UserDirectory(sessions).reload()
    operator = snapshot.role_by_name("operator")
    assert operator is not None
    assert operator.outbound_patterns == (DialPattern.parse("0[1-9]XXXXXXXX"),)
    alice = snapshot.user_by_username("alice")
    assert alice is not None
    assert snapshot.may_dial_out(alice, "0312345678")


def test_reload_swaps_in_a_new_snapshot_and_keeps_the_old_one_intact(
    sessions: sessionmaker[Session],
) -> None:
    _add_configuration(sessions)
    directory = UserDirectory(sessions)
    before = directory.reload()
    with sessions() as session, session.begin():
        alice = session.scalar(select(UserRow).where(UserRow.username == "alice"))
        assert alice is not None
        alice.extension = "1009"
    after = directory.reload()
    assert before.user_by_extension("1001") is not None
    assert after.user_by_extension("1001") is None
    assert after.user_by_extension("1009") is not None
    assert directory.snapshot is after
