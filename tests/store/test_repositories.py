from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.errors import NotFound
from callwarden.domain.ids import QueueId, RoleId, TeamId, TrunkId, UserId
from callwarden.domain.models import (
    InboundNumber,
    QueueMember,
    QueueStrategy,
    RecordingPolicy,
    SipCredentials,
    Transport,
)
from callwarden.domain.patterns import DialPattern
from callwarden.store.repositories import (
    QueueRepository,
    RoleRepository,
    TeamRepository,
    TrunkRepository,
    UserRepository,
)
from callwarden.store.schema import (
    QueueMemberRow,
    QueueRow,
    RoleRow,
    TeamRow,
    TeamSupervisorRow,
    TrunkInboundNumberRow,
    TrunkRow,
    UserRow,
)


def _role_id(session: Session, name: str) -> int:
    role = session.scalar(select(RoleRow).where(RoleRow.name == name))
    assert role is not None
    return role.id


def _seed(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Two nested teams, two users (one supervising both teams), a trunk and a queue."""
    with sessions() as session, session.begin():
        root = TeamRow(name="center", display_name="Center")
        session.add(root)
        session.flush()
        support = TeamRow(name="support", display_name="Support", parent_id=root.id)
        session.add(support)
        session.flush()
        alice = UserRow(
            username="alice",
            display_name="Alice A.",
            role_id=_role_id(session, "operator"),
            team_id=support.id,
            extension="1001",
            enabled=True,
            password_hash="$argon2id$x",
            sip_realm="pbx",
            sip_ha1_md5="a" * 32,
            sip_ha1_sha256="b" * 64,
        )
        sue = UserRow(
            username="sue",
            display_name="Sue S.",
            role_id=_role_id(session, "supervisor"),
            team_id=root.id,
            enabled=True,
            supervised=[TeamSupervisorRow(team_id=root.id), TeamSupervisorRow(team_id=support.id)],
        )
        trunk = TrunkRow(
            name="carrier",
            host="192.0.2.10",
            port=5060,
            transport=Transport.TCP,
            outbound_patterns=["0[1-9]XXXXXXXX"],
            username="acct",
            password="secret",
            register=True,
            enabled=True,
            inbound_numbers=[
                TrunkInboundNumberRow(number="0312345678", destination="5000"),
                TrunkInboundNumberRow(number="0312345600"),
            ],
        )
        session.add_all([alice, sue, trunk])
        session.flush()
        queue = QueueRow(
            name="billing",
            display_name="Billing",
            number="5000",
            team_id=support.id,
            strategy=QueueStrategy.SKILLS,
            wrap_up_seconds=30,
            ring_timeout_seconds=20,
            max_no_answer=2,
            max_wait_seconds=600,
            service_level_seconds=20,
            service_level_percent=80,
            required_skill_level=3,
            recording=RecordingPolicy.ON_DEMAND,
            members=[QueueMemberRow(user_id=alice.id, penalty=1, skill_level=5)],
        )
        session.add(queue)
        session.flush()
        return {
            "root": root.id,
            "support": support.id,
            "alice": alice.id,
            "sue": sue.id,
            "trunk": trunk.id,
            "queue": queue.id,
        }


def test_users_read_back_as_domain_values(sessions: sessionmaker[Session]) -> None:
    ids = _seed(sessions)
    with sessions() as session:
        users = UserRepository(session)
        alice = users.get(UserId(ids["alice"]))
        assert alice.username == "alice"
        assert alice.display_name == "Alice A."
        assert alice.team_id == ids["support"]
        assert alice.extension == "1001"
        assert alice.password_hash == "$argon2id$x"
        assert alice.sip == SipCredentials(realm="pbx", ha1_md5="a" * 32, ha1_sha256="b" * 64)
        sue = users.find_by_username("sue")
        assert sue is not None
        assert sue.sip is None
        assert sue.extension is None
        assert sue.supervised_team_ids == {ids["root"], ids["support"]}
        assert users.find_by_username("nobody") is None
        assert [user.username for user in users.list_all()] == ["alice", "sue"]
        in_support = users.list_all(team_ids=[TeamId(ids["support"])])
        assert [user.username for user in in_support] == ["alice"]


def test_user_writes_flush_without_committing(sessions: sessionmaker[Session]) -> None:
    ids = _seed(sessions)
    alice_id = UserId(ids["alice"])
    with sessions() as session, session.begin():
        UserRepository(session).set_password_hash(alice_id, None)
        UserRepository(session).set_enabled(alice_id, False)
        session.rollback()
    with sessions() as session, session.begin():
        assert UserRepository(session).get(alice_id).enabled
        UserRepository(session).set_password_hash(alice_id, None)
        UserRepository(session).set_enabled(alice_id, False)
    with sessions() as session:
        alice = UserRepository(session).get(alice_id)
    assert (alice.password_hash, alice.enabled, alice.can_sign_in_to_web) == (None, False, False)


def test_teams_roles_trunks_queues(sessions: sessionmaker[Session]) -> None:
    ids = _seed(sessions)
    with sessions() as session:
        teams = TeamRepository(session)
        assert [team.name for team in teams.list_all()] == ["center", "support"]
        assert teams.get_by_name("support").parent_id == ids["root"]
        assert teams.get(TeamId(ids["root"])).display_name == "Center"

        roles = RoleRepository(session)
        assert [role.name for role in roles.list_all()] == [
            "admin",
            "auditor",
            "operator",
            "supervisor",
        ]
        operator = roles.get_by_name("operator")
        assert operator.builtin and operator.outbound_patterns == ()
        assert roles.get(operator.id) == operator

        trunk = TrunkRepository(session).get_by_name("carrier")
        assert trunk.id == ids["trunk"]
        assert (trunk.host, trunk.port, trunk.transport) == ("192.0.2.10", 5060, Transport.TCP)
        assert trunk.outbound_patterns == (DialPattern.parse("0[1-9]XXXXXXXX"),)
        assert trunk.inbound_numbers == (
            InboundNumber("0312345600", None),
            InboundNumber("0312345678", "5000"),
        )
        assert (trunk.username, trunk.password, trunk.register) == ("acct", "secret", True)
        assert TrunkRepository(session).get(TrunkId(ids["trunk"])) == trunk
        assert TrunkRepository(session).list_all() == [trunk]

        queue = QueueRepository(session).get_by_number("5000")
        assert queue.id == ids["queue"]
        assert queue.strategy is QueueStrategy.SKILLS
        assert queue.recording is RecordingPolicy.ON_DEMAND
        assert queue.members == (QueueMember(UserId(ids["alice"]), penalty=1, skill_level=5),)
        assert (queue.wrap_up_seconds, queue.max_wait_seconds, queue.required_skill_level) == (
            30,
            600,
            3,
        )
        assert QueueRepository(session).get(QueueId(ids["queue"])) == queue
        assert QueueRepository(session).list_all(team_ids=[TeamId(ids["root"])]) == []


@pytest.mark.parametrize(
    ("lookup", "error_id"),
    [
        (lambda s: TeamRepository(s).get(TeamId(999)), "team_not_found"),
        (lambda s: TeamRepository(s).get_by_name("nope"), "team_not_found"),
        (lambda s: RoleRepository(s).get(RoleId(999)), "role_not_found"),
        (lambda s: RoleRepository(s).get_by_name("nope"), "role_not_found"),
        (lambda s: UserRepository(s).get(UserId(999)), "user_not_found"),
        (lambda s: UserRepository(s).set_enabled(UserId(999), True), "user_not_found"),
        (lambda s: TrunkRepository(s).get(TrunkId(999)), "trunk_not_found"),
        (lambda s: TrunkRepository(s).get_by_name("nope"), "trunk_not_found"),
        (lambda s: QueueRepository(s).get(QueueId(999)), "queue_not_found"),
        (lambda s: QueueRepository(s).get_by_number("9"), "queue_not_found"),
    ],
)
def test_missing_objects_raise_not_found(
    sessions: sessionmaker[Session], lookup: object, error_id: str
) -> None:
    with sessions() as session, pytest.raises(NotFound) as caught:
        lookup(session)  # type: ignore[operator]
    assert caught.value.error_id == error_id


def test_a_role_in_use_cannot_be_deleted(sessions: sessionmaker[Session]) -> None:
    _seed(sessions)
    with pytest.raises(IntegrityError), sessions() as session, session.begin():
        session.execute(RoleRow.__table__.delete().where(RoleRow.name == "operator"))


def test_extensions_are_unique(sessions: sessionmaker[Session]) -> None:
    _seed(sessions)
    with pytest.raises(IntegrityError), sessions() as session, session.begin():
        session.add(
            UserRow(
                username="bob",
                display_name="Bob",
                role_id=_role_id(session, "operator"),
                extension="1001",
                enabled=True,
            )
        )


def test_deleting_a_user_removes_memberships_and_supervision(
    sessions: sessionmaker[Session],
) -> None:
    ids = _seed(sessions)
    with sessions() as session, session.begin():
        session.execute(UserRow.__table__.delete().where(UserRow.id == ids["alice"]))
        session.execute(UserRow.__table__.delete().where(UserRow.id == ids["sue"]))
    with sessions() as session:
        assert QueueRepository(session).get(QueueId(ids["queue"])).members == ()
        assert session.scalars(select(TeamSupervisorRow)).all() == []
