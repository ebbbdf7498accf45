"""Applying provisioning files to SQLite and PostgreSQL: outcomes, idempotence, rejection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import Conflict
from callwarden.domain.models import (
    InboundNumber,
    QueueMember,
    QueueStrategy,
    RecordingPolicy,
    SipDigestAlgorithm,
    Transport,
    User,
)
from callwarden.domain.patterns import DialPattern
from callwarden.provisioning import ObjectKind, Outcome, Provisioner, ProvisioningError
from callwarden.security.passwords import PasswordHasher
from callwarden.sip.digest import compute_ha1
from callwarden.store.database import Database, create_database_engine
from callwarden.store.schema import UserRow

REALM = "callwarden.test"  # as in conftest.py
DATA = Path(__file__).parent / "data"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "callcenter.yaml"

Snapshot = Callable[[], DirectorySnapshot]


def _user(snapshot: DirectorySnapshot, username: str) -> User:
    user = snapshot.user_by_username(username)
    assert user is not None, username
    return user


def test_the_issue_example_creates_everything(
    provisioner: Provisioner, snapshot: Snapshot, hasher: PasswordHasher
) -> None:
    report = provisioner.apply_file(DATA / "issue-example.yaml")
    assert (report.created, report.updated, report.unchanged, report.deleted) == (4, 0, 0, 0)
    assert report.names(ObjectKind.USER, Outcome.CREATED) == ("alice",)

    directory = snapshot()
    alice = _user(directory, "alice")
    support = directory.teams[0]
    assert (alice.display_name, alice.extension, alice.team_id) == ("alice", "1001", support.id)
    assert directory.role_of(alice).name == "operator"
    assert alice.password_hash is not None
    assert hasher.verify(alice.password_hash, "correct horse battery")
    credentials = alice.sip_credentials_for(REALM)
    assert credentials is not None
    for algorithm in SipDigestAlgorithm:
        expected = compute_ha1("alice", REALM, "sip-secret", algorithm.value)
        assert credentials.ha1(algorithm) == expected
    queue = directory.queue_by_number("5000")
    assert queue is not None
    assert (queue.name, queue.team_id, queue.strategy) == (
        "billing",
        support.id,
        QueueStrategy.LONGEST_IDLE,
    )
    assert queue.members == (QueueMember(alice.id),)
    trunk = directory.trunk_by_name("carrier")
    assert trunk is not None
    assert (trunk.host, trunk.port, trunk.transport) == ("192.0.2.10", 5060, Transport.UDP)
    assert trunk.inbound_numbers == (InboundNumber("0312345678"),)
    assert trunk.outbound_patterns == (DialPattern.parse("0[1-9]XXXXXXXX"),)


def test_applying_the_same_file_again_changes_nothing(
    provisioner: Provisioner, snapshot: Snapshot, database: Database
) -> None:
    provisioner.apply_file(EXAMPLE)
    before = snapshot()
    with database.sessions() as session:
        hashes = dict(session.execute(select(UserRow.username, UserRow.password_hash)).all())
    again = provisioner.apply_file(EXAMPLE)
    assert not again.changed
    assert again.unchanged == again.count(Outcome.UNCHANGED) == 14
    after = snapshot()
    assert after.users == before.users
    assert after.teams == before.teams
    assert after.roles == before.roles
    assert after.trunks == before.trunks
    assert after.queues == before.queues
    with database.sessions() as session:
        assert (
            dict(session.execute(select(UserRow.username, UserRow.password_hash)).all()) == hashes
        )


def test_the_full_example_lands_as_written(provisioner: Provisioner, snapshot: Snapshot) -> None:
    report = provisioner.apply_file(EXAMPLE)
    assert report.created == 12  # team-lead, 3 teams, 5 users, 1 trunk, 2 queues
    assert report.count(Outcome.UPDATED, ObjectKind.ROLE) == 2  # operator, supervisor patterns
    directory = snapshot()
    center, sales, support = directory.teams
    assert (center.name, sales.parent_id, support.parent_id) == ("center", center.id, center.id)
    assert directory.team_with_descendants(center.id) == {center.id, sales.id, support.id}
    sue = _user(directory, "sue")
    assert sue.supervised_team_ids == {support.id, sales.id}
    bob = _user(directory, "bob")
    assert (bob.password_hash, bob.can_sign_in_to_web) == (None, False)
    assert directory.may_dial_out(bob, "00491234")
    alice = _user(directory, "alice")
    assert directory.may_dial_out(alice, "0312345678")
    assert not directory.may_dial_out(alice, "00491234")
    audra = _user(directory, "audra")
    assert not audra.enabled
    assert _user(directory, "adam").sip is None
    trunk = directory.trunk_by_name("carrier")
    assert trunk is not None
    assert (trunk.username, trunk.password, trunk.register) == (
        "callwarden-account",
        "carrier-secret",
        True,
    )
    assert directory.inbound_number("0312345600") == (trunk, InboundNumber("0312345600", "5000"))
    billing = directory.queue_by_name("billing")
    sales_queue = directory.queue_by_name("sales")
    assert billing is not None and sales_queue is not None
    assert billing.members == (QueueMember(alice.id), QueueMember(bob.id, penalty=1, skill_level=3))
    assert (billing.wrap_up_seconds, billing.ring_timeout_seconds, billing.max_wait_seconds) == (
        15,
        20,
        600,
    )
    assert (sales_queue.strategy, sales_queue.recording) == (
        QueueStrategy.SKILLS,
        RecordingPolicy.ON_DEMAND,
    )
    assert (sales_queue.required_skill_level, sales_queue.display_name) == (2, "sales")


def test_objects_and_keys_the_file_leaves_out_are_left_alone(
    provisioner: Provisioner, snapshot: Snapshot
) -> None:
    provisioner.apply_file(EXAMPLE)
    before = snapshot()
    report = provisioner.apply_text(
        "users:\n  - {username: alice, role: operator, display_name: Alice M.}\n", "second.yaml"
    )
    assert report.names(ObjectKind.USER, Outcome.UPDATED) == ("alice",)
    assert report.outcomes[ObjectKind.USER].keys() == {"alice"}
    after = snapshot()
    alice_before, alice_after = _user(before, "alice"), _user(after, "alice")
    assert alice_after.display_name == "Alice M."
    assert (alice_after.extension, alice_after.team_id) == (
        alice_before.extension,
        alice_before.team_id,
    )
    assert alice_after.password_hash == alice_before.password_hash
    assert alice_after.sip == alice_before.sip
    assert [user for user in after.users if user.username != "alice"] == [
        user for user in before.users if user.username != "alice"
    ]
    assert after.queues == before.queues


def test_null_clears_what_it_names(provisioner: Provisioner, snapshot: Snapshot) -> None:
    provisioner.apply_file(DATA / "issue-example.yaml")
    report = provisioner.apply_text(
        "users:\n  - {username: alice, role: operator, password: null, sip_password: null,"
        " extension: null, team: null}\n",
        "clear.yaml",
    )
    assert report.names(ObjectKind.USER, Outcome.UPDATED) == ("alice",)
    alice = _user(snapshot(), "alice")
    assert (alice.password_hash, alice.sip, alice.extension, alice.team_id) == (
        None,
        None,
        None,
        None,
    )


def test_changes_are_reported_as_updates(provisioner: Provisioner, snapshot: Snapshot) -> None:
    provisioner.apply_file(DATA / "issue-example.yaml")
    text = (DATA / "issue-example.yaml").read_text()
    changed = text.replace('extension: "1001"', 'extension: "1009"').replace(
        "correct horse battery", "a different passphrase"
    )
    report = provisioner.apply_text(changed, "changed.yaml")
    assert report.names(ObjectKind.USER, Outcome.UPDATED) == ("alice",)
    assert report.count(Outcome.UNCHANGED) == 3
    directory = snapshot()
    assert directory.user_by_extension("1001") is None
    assert _user(directory, "alice").extension == "1009"


def test_extensions_and_queue_numbers_can_swap(
    provisioner: Provisioner, snapshot: Snapshot
) -> None:
    first = """\
teams: [{name: t}]
users:
  - {username: ann, role: operator, extension: "1001"}
  - {username: ben, role: operator, extension: "1002"}
queues:
  - {name: q1, number: "5001", team: t}
  - {name: q2, number: "5002", team: t}
trunks:
  - {name: a, host: 192.0.2.1, inbound_numbers: ["0311"]}
  - {name: b, host: 192.0.2.2, inbound_numbers: ["0322"]}
"""
    provisioner.apply_text(first, "first.yaml")
    swapped = (
        first.replace('"1001"', '"X"')
        .replace('"1002"', '"1001"')
        .replace('"X"', '"1002"')
        .replace('"5001"', '"X"')
        .replace('"5002"', '"5001"')
        .replace('"X"', '"5002"')
        .replace('"0311"', '"X"')
        .replace('"0322"', '"0311"')
        .replace('"X"', '"0322"')
    )
    report = provisioner.apply_text(swapped, "swapped.yaml")
    assert report.updated == 6
    directory = snapshot()
    assert _user(directory, "ann").extension == "1002"
    assert _user(directory, "ben").extension == "1001"
    assert directory.queue_by_number("5001") == directory.queue_by_name("q2")
    found = directory.inbound_number("0311")
    assert found is not None and found[0].name == "b"


def test_prune_removes_what_the_file_does_not_list(
    provisioner: Provisioner, snapshot: Snapshot
) -> None:
    provisioner.apply_file(EXAMPLE)
    text = (DATA / "issue-example.yaml").read_text()
    text = text.replace("{name: support}", "{name: support, parent: null}")
    report = provisioner.apply_text("prune: true\n" + text, "pruned.yaml")
    assert report.names(ObjectKind.USER, Outcome.DELETED) == ("adam", "audra", "bob", "sue")
    assert report.names(ObjectKind.TEAM, Outcome.DELETED) == ("center", "sales")
    assert report.names(ObjectKind.QUEUE, Outcome.DELETED) == ("sales",)
    assert report.names(ObjectKind.ROLE, Outcome.DELETED) == ("team-lead",)
    assert report.names(ObjectKind.TEAM, Outcome.UPDATED) == ("support",)  # parent removed
    directory = snapshot()
    assert [user.username for user in directory.users] == ["alice"]
    assert [team.name for team in directory.teams] == ["support"]
    assert [role.name for role in directory.roles] == ["admin", "auditor", "operator", "supervisor"]
    billing = directory.queue_by_name("billing")
    assert billing is not None and billing.members == (QueueMember(_user(directory, "alice").id),)


def test_a_dry_run_reports_without_writing(provisioner: Provisioner, snapshot: Snapshot) -> None:
    report = provisioner.apply_file(EXAMPLE, dry_run=True)
    assert report.dry_run and report.created == 12
    assert "dry run: nothing was changed" in report.summary()
    assert snapshot().users == ()


def test_an_invalid_file_changes_nothing(
    provisioner: Provisioner, snapshot: Snapshot, write_yaml: Callable[[str, str], Path]
) -> None:
    provisioner.apply_file(EXAMPLE)
    before = snapshot()
    path = write_yaml(
        (DATA / "issue-example.yaml")
        .read_text()
        .replace("team: support, members", "team: nowhere, members"),
        "broken.yaml",
    )
    with pytest.raises(ProvisioningError) as caught:
        provisioner.apply_file(path)
    assert str(caught.value).endswith(f"{path}:3: queues[0].team: unknown team 'nowhere'")
    after = snapshot()
    assert (after.users, after.queues, after.teams, after.trunks) == (
        before.users,
        before.queues,
        before.teams,
        before.trunks,
    )


def test_another_realm_recomputes_the_sip_credentials(
    database: Database, provisioner: Provisioner, snapshot: Snapshot, hasher: PasswordHasher
) -> None:
    provisioner.apply_file(DATA / "issue-example.yaml")
    other = Provisioner(database.sessions, "other.realm", password_hasher=hasher)
    report = other.apply_file(DATA / "issue-example.yaml")
    assert report.names(ObjectKind.USER, Outcome.UPDATED) == ("alice",)
    alice = _user(snapshot(), "alice")
    assert alice.sip_credentials_for(REALM) is None
    credentials = alice.sip_credentials_for("other.realm")
    assert credentials is not None
    assert credentials.ha1_md5 == compute_ha1("alice", "other.realm", "sip-secret", "MD5")


def test_a_hash_with_old_parameters_is_replaced(
    database: Database, provisioner: Provisioner, snapshot: Snapshot
) -> None:
    provisioner.apply_file(DATA / "issue-example.yaml")
    old_hash = _user(snapshot(), "alice").password_hash
    stronger = PasswordHasher(time_cost=2, memory_cost_kib=64, parallelism=1)
    report = Provisioner(database.sessions, REALM, password_hasher=stronger).apply_file(
        DATA / "issue-example.yaml"
    )
    assert report.names(ObjectKind.USER, Outcome.UPDATED) == ("alice",)
    new_hash = _user(snapshot(), "alice").password_hash
    assert new_hash is not None and new_hash != old_hash
    assert not stronger.needs_rehash(new_hash)
    assert stronger.verify(new_hash, "correct horse battery")


def test_apply_document_takes_parsed_data(provisioner: Provisioner, snapshot: Snapshot) -> None:
    report = provisioner.apply_document(
        {
            "teams": [{"name": "ops"}],
            "users": [{"username": "otto", "role": "admin", "team": "ops"}],
        },
        "api",
    )
    assert report.created == 2 and report.source == "api"
    assert _user(snapshot(), "otto").team_id is not None


def _intrude(database: Database) -> str:
    """From another connection, give a new user the extension the file is about to claim."""
    engine = create_database_engine(database.url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA busy_timeout = 50")
                connection.commit()
            with connection.begin():
                connection.execute(
                    text(
                        "INSERT INTO users (username, display_name, role_id, extension, enabled) "
                        "SELECT 'mallory', 'M', id, '1001', true FROM roles WHERE name = 'operator'"
                    )
                )
        return "inserted"
    except OperationalError as error:
        assert "database is locked" in str(error.orig)
        return "refused"
    finally:
        engine.dispose()


def test_a_concurrent_writer_never_leaves_a_half_applied_file(
    database: Database, hasher: PasswordHasher, snapshot: Snapshot
) -> None:
    outcome: list[str] = []

    def ha1_with_intruder(username: str, realm: str, password: str, algorithm: str) -> str:
        if not outcome:  # mid-run: the team is written, alice is not yet
            outcome.append(_intrude(database))
        return compute_ha1(username, realm, password, algorithm)

    provisioner = Provisioner(
        database.sessions, REALM, password_hasher=hasher, ha1_function=ha1_with_intruder
    )
    text_ = "teams: [{name: t}]\nusers:\n  - {username: alice, role: operator, extension: '1001',"
    text_ += " sip_password: sip-secret}\n"
    if database.engine.dialect.name == "sqlite":
        # The run holds SQLite's write lock from its first read: the intruder must wait, and
        # gives up; the file is applied whole.
        report = provisioner.apply_text(text_, "race.yaml")
        assert outcome == ["refused"]
        assert report.created == 2
        assert _user(snapshot(), "alice").extension == "1001"
    else:
        # PostgreSQL lets the intruder commit first; the run then fails as a whole.
        with pytest.raises(Conflict) as caught:
            provisioner.apply_text(text_, "race.yaml")
        assert outcome == ["inserted"]
        assert caught.value.error_id == "provisioning_conflict"
        directory = snapshot()
        assert [user.username for user in directory.users] == ["mallory"]
        assert directory.teams == ()
