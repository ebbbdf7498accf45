from __future__ import annotations

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import QueueId, RoleId, TeamId, TrunkId, UserId
from callwarden.domain.models import InboundNumber, Queue, Role, Team, Trunk, User
from callwarden.domain.patterns import DialPattern

OPERATOR = Role(id=RoleId(1), name="operator", outbound_patterns=(DialPattern.parse("0[1-9]X."),))
AUDITOR = Role(id=RoleId(2), name="auditor")
ROOT = Team(id=TeamId(1), name="center", display_name="Center")
SUPPORT = Team(id=TeamId(2), name="support", display_name="Support", parent_id=TeamId(1))
LEVEL2 = Team(id=TeamId(3), name="level2", display_name="Level 2", parent_id=TeamId(2))
SALES = Team(id=TeamId(4), name="sales", display_name="Sales")
ALICE = User(
    id=UserId(1),
    username="alice",
    display_name="Alice",
    role_id=RoleId(1),
    team_id=TeamId(2),
    extension="1001",
)
AUDIT = User(id=UserId(2), username="audit", display_name="Audit", role_id=RoleId(2))
BOB = User(
    id=UserId(3),
    username="bob",
    display_name="Bob",
    role_id=RoleId(1),
    extension="1002",
    enabled=False,
)
CARRIER = Trunk(
    id=TrunkId(1),
    name="carrier",
    host="192.0.2.10",
    inbound_numbers=(InboundNumber("0312345678", "5000"), InboundNumber("0312345679")),
    outbound_patterns=(DialPattern.parse("0X."),),
)
BACKUP = Trunk(
    id=TrunkId(2), name="backup", host="192.0.2.11", outbound_patterns=(DialPattern.parse("0X."),)
)
OFF = Trunk(
    id=TrunkId(3),
    name="off",
    host="192.0.2.12",
    outbound_patterns=(DialPattern.parse("0X."),),
    enabled=False,
)
BILLING = Queue(
    id=QueueId(1), name="billing", display_name="Billing", number="5000", team_id=TeamId(2)
)


def _snapshot() -> DirectorySnapshot:
    return DirectorySnapshot(
        teams=[SALES, LEVEL2, SUPPORT, ROOT],
        roles=[OPERATOR, AUDITOR],
        users=[BOB, AUDIT, ALICE],
        trunks=[OFF, CARRIER, BACKUP],
        queues=[BILLING],
    )


def test_lookups_by_the_keys_of_the_call_path() -> None:
    snapshot = _snapshot()
    assert snapshot.user_by_username("alice") is ALICE
    assert snapshot.user_by_extension("1001") is ALICE
    assert snapshot.user_by_extension("1003") is None
    assert snapshot.user_by_username("nobody") is None
    assert snapshot.user(UserId(2)) is AUDIT
    assert snapshot.role_of(ALICE) is OPERATOR
    assert snapshot.role_by_name("auditor") is AUDITOR
    assert snapshot.queue_by_number("5000") is BILLING
    assert snapshot.queue_by_name("billing") is BILLING
    assert snapshot.queue(QueueId(1)) is BILLING
    assert snapshot.trunk_by_name("carrier") is CARRIER
    assert snapshot.trunk(TrunkId(2)) is BACKUP
    assert snapshot.team(TeamId(4)) is SALES
    assert snapshot.role(RoleId(9)) is None


def test_listing_order_is_by_name() -> None:
    snapshot = _snapshot()
    assert [user.username for user in snapshot.users] == ["alice", "audit", "bob"]
    assert [trunk.name for trunk in snapshot.trunks] == ["backup", "carrier", "off"]
    assert repr(snapshot) == "DirectorySnapshot(teams=4, roles=2, users=3, trunks=3, queues=1)"


def test_inbound_numbers_name_their_trunk_and_destination() -> None:
    snapshot = _snapshot()
    assert snapshot.inbound_number("0312345678") == (CARRIER, InboundNumber("0312345678", "5000"))
    assert snapshot.inbound_number("0312345679") == (CARRIER, InboundNumber("0312345679", None))
    assert snapshot.inbound_number("0399999999") is None


def test_outbound_trunks_are_enabled_matching_ones_in_name_order() -> None:
    snapshot = _snapshot()
    assert snapshot.trunks_for_outbound("0312345678") == (BACKUP, CARRIER)
    assert snapshot.trunks_for_outbound("1001") == ()


def test_dial_out_follows_role_and_enabled_flag() -> None:
    snapshot = _snapshot()
    assert snapshot.may_dial_out(ALICE, "0312345678")
    assert not snapshot.may_dial_out(ALICE, "0012345678")
    assert not snapshot.may_dial_out(AUDIT, "0312345678")
    assert not snapshot.may_dial_out(BOB, "0312345678")


def test_team_with_descendants_walks_nested_teams() -> None:
    snapshot = _snapshot()
    assert snapshot.team_with_descendants(TeamId(1)) == {1, 2, 3}
    assert snapshot.team_with_descendants(TeamId(3)) == {3}
    assert snapshot.team_with_descendants(TeamId(4)) == {4}


def test_empty_snapshot_knows_nobody() -> None:
    snapshot = DirectorySnapshot()
    assert snapshot.user_by_username("alice") is None
    assert snapshot.trunks_for_outbound("0312345678") == ()
