from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.cdr import CallDirection
from callwarden.domain.errors import InvalidState, NotFound, ValidationFailed
from callwarden.domain.ids import CallId, RecordingId, TeamId, UserId
from callwarden.domain.policy import ListScope
from callwarden.recording.holds import (
    LegalHoldRepository,
    RetentionPolicyRepository,
    TombstoneRepository,
)
from callwarden.recording.models import (
    HoldTargetKind,
    NewRecording,
    RecordingStatus,
    RetentionPolicy,
    RetentionScope,
    TombstoneKind,
)
from callwarden.recording.numbers import (
    NumberCorrupted,
    SealedNumbers,
    catalogue_secret,
    normalise_number,
)
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.search import RecordingQuery
from callwarden.store.database import Database
from callwarden.store.migrations import upgrade
from callwarden.store.schema import RecordingRow
from callwarden.store.testing import temporary_postgres_schema

from .conftest import Center, make_center

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
EVERYTHING = ListScope(everything=True, owner_id=None, team_ids=frozenset())


def new_recording(
    center: Center,
    *,
    started_at: datetime = T0,
    team: str = "support",
    caller: str | None = "+49 30 1234567",
    call_id: str | None = None,
) -> NewRecording:
    recording_id = RecordingId(uuid.uuid4().hex)
    support = team == "support"
    return NewRecording(
        recording_id=recording_id,
        call_id=CallId(call_id or f"call-{recording_id[:8]}"),
        direction=CallDirection.INBOUND,
        started_at=started_at,
        storage_key=f"{started_at:%Y/%m/%d}/{recording_id}.cwr",
        kek_id="kek-0001",
        wrapped_key=b"\x01" * 60,
        queue_id=center.support_queue if support else center.sales_queue,
        team_id=center.support if support else center.sales,
        operator_id=center.alice if support else center.bob,
        caller_number=caller,
    )


def test_create_close_and_read_back(
    sessions: sessionmaker[Session], numbers: SealedNumbers, center: Center
) -> None:
    new = new_recording(center)
    with sessions() as session, session.begin():
        repo = RecordingRepository(session, numbers)
        created = repo.create(new)
        assert created.status is RecordingStatus.RECORDING
        repo.pause_started(new.recording_id, T0 + timedelta(seconds=10))
        repo.pause_ended(new.recording_id, T0 + timedelta(seconds=25))
        repo.pause_started(new.recording_id, T0 + timedelta(seconds=50))
        repo.close(
            new.recording_id,
            status=RecordingStatus.COMPLETE,
            ended_at=T0 + timedelta(seconds=60),
            duration_ms=60_000,
            manifest_digest="ab" * 32,
            size_bytes=123_456,
        )
    with sessions() as session:
        got = RecordingRepository(session, numbers).get(new.recording_id)
        raw = session.get(RecordingRow, new.recording_id)
    assert got.status is RecordingStatus.COMPLETE
    assert got.caller_number == "+49 30 1234567"
    assert got.duration_ms == 60_000 and got.size_bytes == 123_456
    assert got.has_pauses
    assert [(p.started_at, p.ended_at) for p in got.pauses] == [
        (T0 + timedelta(seconds=10), T0 + timedelta(seconds=25)),
        (T0 + timedelta(seconds=50), T0 + timedelta(seconds=60)),  # closed with the recording
    ]
    assert got.wrapped_key == b"\x01" * 60 and got.kek_id == "kek-0001"
    assert raw is not None and raw.caller_number_sealed is not None
    assert b"1234567" not in raw.caller_number_sealed  # sealed, not in clear
    assert raw.caller_number_hmac == numbers.digest("+4930 123 4567")


def test_close_twice_and_unknown_ids_are_refused(
    sessions: sessionmaker[Session], numbers: SealedNumbers, center: Center
) -> None:
    new = new_recording(center)
    with sessions() as session, session.begin():
        repo = RecordingRepository(session, numbers)
        repo.create(new)
        repo.close(
            new.recording_id,
            status=RecordingStatus.INCOMPLETE,
            ended_at=T0,
            duration_ms=0,
            manifest_digest=None,
        )
        with pytest.raises(InvalidState) as closed:
            repo.close(
                new.recording_id,
                status=RecordingStatus.COMPLETE,
                ended_at=T0,
                duration_ms=0,
                manifest_digest=None,
            )
        assert closed.value.error_id == "recording_not_open"
        with pytest.raises(ValidationFailed):
            repo.close(
                new.recording_id,
                status=RecordingStatus.PURGED,
                ended_at=T0,
                duration_ms=0,
                manifest_digest=None,
            )
        with pytest.raises(NotFound) as missing:
            repo.get(RecordingId("nope"))
        assert missing.value.error_id == "recording_not_found"


def test_find_open_and_mark_failed(
    sessions: sessionmaker[Session], numbers: SealedNumbers, center: Center
) -> None:
    first, second = new_recording(center), new_recording(center, started_at=T0 + timedelta(1))
    with sessions() as session, session.begin():
        repo = RecordingRepository(session, numbers)
        repo.create(first)
        repo.create(second)
        repo.mark_failed(second.recording_id, "disk full", ended_at=T0 + timedelta(1))
    with sessions() as session:
        repo = RecordingRepository(session, numbers)
        assert [r.id for r in repo.find_open()] == [first.recording_id]
        failed = repo.get(second.recording_id)
    assert failed.status is RecordingStatus.FAILED and failed.failure_reason == "disk full"


def test_bad_storage_keys_are_refused(center: Center) -> None:
    for key in ("../etc/passwd", "/abs/path", "a/../b", "a\\b", "a/\x00b", ""):
        with pytest.raises(ValidationFailed):
            NewRecording(
                recording_id=RecordingId("x"),
                call_id=CallId("c"),
                direction=CallDirection.INBOUND,
                started_at=T0,
                storage_key=key,
                kek_id="kek-0001",
                wrapped_key=b"k",
            )


def test_search_filters_scopes_and_pages(
    sessions: sessionmaker[Session], numbers: SealedNumbers, center: Center
) -> None:
    made = [new_recording(center, started_at=T0 + timedelta(minutes=i)) for i in range(5)]
    other = new_recording(center, team="sales", caller="+1 555 0100")
    with sessions() as session, session.begin():
        repo = RecordingRepository(session, numbers)
        for new in [*made, other]:
            repo.create(new)
            repo.close(
                new.recording_id,
                status=RecordingStatus.COMPLETE,
                ended_at=new.started_at + timedelta(minutes=1),
                duration_ms=10_000 * (made.index(new) + 1) if new in made else 5_000,
                manifest_digest=None,
            )
        repo.add_tag(made[1].recording_id, "Training Example", by=center.alice, at=T0)
        repo.add_tag(made[1].recording_id, "dispute #123", by=center.alice, at=T0)
        repo.add_tag(made[2].recording_id, "training example", by=center.alice, at=T0)
    support_only = ListScope(everything=False, owner_id=None, team_ids=frozenset({center.support}))
    nothing = ListScope(everything=False, owner_id=None, team_ids=frozenset())
    bobs_own = ListScope(everything=False, owner_id=center.bob, team_ids=frozenset())
    with sessions() as session:
        repo = RecordingRepository(session, numbers)

        def ids(query: RecordingQuery, scope: ListScope = EVERYTHING) -> list[str]:
            return [r.id for r in repo.search(query, scope, number_scope=scope).items]

        newest_first = [n.recording_id for n in reversed(made)]
        assert ids(RecordingQuery(), support_only) == newest_first
        assert ids(RecordingQuery(), nothing) == []
        assert ids(RecordingQuery(), bobs_own) == [other.recording_id]
        assert ids(RecordingQuery(team_id=center.sales)) == [other.recording_id]
        assert ids(RecordingQuery(caller_number="+15550100")) == [other.recording_id]
        assert ids(RecordingQuery(caller_number="+15550100"), support_only) == []
        assert ids(RecordingQuery(min_duration_ms=30_000, max_duration_ms=40_000)) == [
            made[3].recording_id,
            made[2].recording_id,
        ]
        assert ids(RecordingQuery(tags=("training example",))) == [
            made[2].recording_id,
            made[1].recording_id,
        ]
        assert ids(RecordingQuery(tags=("training example", "dispute #123"))) == [
            made[1].recording_id
        ]
        assert ids(
            RecordingQuery(since=T0 + timedelta(minutes=3), queue_id=center.support_queue)
        ) == [
            made[4].recording_id,
            made[3].recording_id,
        ]
        page = repo.search(RecordingQuery(limit=2), support_only)
        seen = [r.id for r in page.items]
        while page.next_cursor is not None:
            page = repo.search(RecordingQuery(limit=2, cursor=page.next_cursor), support_only)
            seen.extend(r.id for r in page.items)
        assert seen == newest_first
        with pytest.raises(ValidationFailed):
            repo.search(RecordingQuery(caller_number="+15550100"), EVERYTHING)
    with pytest.raises(ValidationFailed):
        RecordingQuery(cursor="not a cursor!")
    with pytest.raises(ValidationFailed):
        RecordingQuery(limit=0)


def test_tags_and_notes(
    sessions: sessionmaker[Session], numbers: SealedNumbers, center: Center
) -> None:
    new = new_recording(center)
    with sessions() as session, session.begin():
        repo = RecordingRepository(session, numbers)
        repo.create(new)
        assert repo.add_tag(new.recording_id, " Dispute #123 ", by=center.alice, at=T0) == (
            "dispute #123"
        )
        repo.add_tag(new.recording_id, "dispute #123", by=center.alice, at=T0)
        repo.add_note(new.recording_id, "customer asked for a refund", by=center.alice, at=T0)
        with pytest.raises(ValidationFailed):
            repo.add_tag(new.recording_id, "<script>", by=center.alice, at=T0)
        with pytest.raises(ValidationFailed):
            repo.add_note(new.recording_id, "   ", by=center.alice, at=T0)
    with sessions() as session, session.begin():
        repo = RecordingRepository(session, numbers)
        assert repo.get(new.recording_id).tags == ("dispute #123",)
        assert [n.text for n in repo.notes(new.recording_id)] == ["customer asked for a refund"]
        assert repo.remove_tag(new.recording_id, "dispute #123")
        assert not repo.remove_tag(new.recording_id, "dispute #123")


def test_holds_policies_and_tombstones(
    sessions: sessionmaker[Session], numbers: SealedNumbers, center: Center
) -> None:
    new = new_recording(center, call_id="call-42")
    unrelated = new_recording(center, team="sales")
    with sessions() as session, session.begin():
        recordings = RecordingRepository(session, numbers)
        recording = recordings.create(new)
        recordings.create(unrelated)
        holds = LegalHoldRepository(session)
        on_call = holds.place(HoldTargetKind.CALL, "call-42", "dispute #7", by=center.alice, at=T0)
        on_queue = holds.place(
            HoldTargetKind.QUEUE, str(center.support_queue), "audit", by=None, at=T0
        )
        for index in range(50):  # no cap on how many holds
            holds.place(HoldTargetKind.USER, str(1000 + index), "case", by=None, at=T0)
        holds.release(on_queue.id, "audit closed", by=center.alice, at=T0 + timedelta(1))
        with pytest.raises(InvalidState):
            holds.release(on_queue.id, "again", by=None, at=T0)
        with pytest.raises(ValidationFailed):
            holds.place(HoldTargetKind.CALL, "call-42", "  ", by=None, at=T0)
        active = holds.active_for([recording])
        assert [h.id for h in active] == [on_call.id]
        assert holds.active_for([recordings.get(unrelated.recording_id)]) == []
        assert len(holds.list()) == 51 and len(holds.list(active_only=False)) == 52

        policies = RetentionPolicyRepository(session)
        policies.set(RetentionPolicy(scope=RetentionScope.DEFAULT, days=30), by=None, at=T0)
        policies.set(RetentionPolicy(scope=RetentionScope.DEFAULT, days=60), by=None, at=T0)
        policies.set(
            RetentionPolicy(scope=RetentionScope.QUEUE, days=400, queue_id=center.support_queue),
            by=center.alice,
            at=T0,
        )
        assert sorted(p.rule for p in policies.list()) == [
            "default:60d",
            f"queue:{center.support_queue}:400d",
        ]
        assert policies.remove(RetentionScope.QUEUE, queue_id=center.support_queue)
        assert [p.days for p in policies.list()] == [60]

        recordings.destroy_key(new.recording_id)
        tombstones = TombstoneRepository(session)
        tombstones.add(
            recording,
            kind=TombstoneKind.MANUAL,
            rule="manual",
            retention_days=None,
            reason="customer erasure request",
            actor_user_id=center.alice,
            actor_name="alice",
            at=T0,
        )
        with pytest.raises(InvalidState):
            tombstones.add(
                recording,
                kind=TombstoneKind.MANUAL,
                rule="manual",
                retention_days=None,
                reason=None,
                actor_user_id=None,
                actor_name="x",
                at=T0,
            )
    with sessions() as session:
        purged = RecordingRepository(session, numbers).get(new.recording_id)
        tombstone = TombstoneRepository(session).get(new.recording_id)
    assert purged.status is RecordingStatus.PURGED
    assert purged.wrapped_key is None and purged.kek_id is None and purged.caller_number is None
    assert tombstone is not None and tombstone.storage_key == new.storage_key
    assert not tombstone.finished


def test_retention_policy_values_are_checked() -> None:
    with pytest.raises(ValidationFailed):
        RetentionPolicy(scope=RetentionScope.DEFAULT, days=0)
    with pytest.raises(ValidationFailed):
        RetentionPolicy(scope=RetentionScope.TEAM, days=10)
    with pytest.raises(ValidationFailed):
        RetentionPolicy(scope=RetentionScope.DEFAULT, days=10, team_id=TeamId(1))
    assert RetentionPolicy(scope=RetentionScope.TEAM, days=10, team_id=TeamId(3)).rule == (
        "team:3:10d"
    )


def test_user_id_type_is_kept(
    sessions: sessionmaker[Session], numbers: SealedNumbers, center: Center
) -> None:
    new = new_recording(center, caller="anonymous")
    with sessions() as session, session.begin():
        got = RecordingRepository(session, numbers).create(new)
        raw = session.scalar(select(RecordingRow).where(RecordingRow.id == new.recording_id))
    assert got.operator_id == UserId(center.alice)
    assert got.caller_number == "anonymous"
    assert raw is not None and raw.caller_number_hmac is None


def test_the_catalogue_secret_is_made_once_owner_only(tmp_path: Path) -> None:
    first = catalogue_secret(tmp_path)
    path = tmp_path / "keys" / "recording-numbers.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert catalogue_secret(tmp_path) == first and len(first) == 32
    path.write_bytes(b"short")
    with pytest.raises(ValueError):
        catalogue_secret(tmp_path)


def test_numbers_normalise_and_tampered_seals_are_refused(numbers: SealedNumbers) -> None:
    assert normalise_number(" +49 (30) 123-45 ") == "+493012345"
    with pytest.raises(ValidationFailed):
        normalise_number("anonymous")
    sealed = bytearray(numbers.seal("+4930123"))
    sealed[-1] ^= 1
    with pytest.raises(NumberCorrupted):
        numbers.open(bytes(sealed))
    assert SealedNumbers(bytes(32)).digest("+4930123") != numbers.digest("+4930123")


@pytest.fixture
def postgres_database() -> Iterator[Database]:
    with temporary_postgres_schema() as url:
        upgrade(url)
        with Database(url) as database:
            yield database


@pytest.mark.postgres
def test_placing_a_hold_waits_for_a_deletion_in_progress(
    postgres_database: Database, numbers: SealedNumbers
) -> None:
    """The deletion locks its recording's row; a hold naming the recording (here by its
    queue) waits for that lock, so it is placed after the deletion or seen by it."""
    sessions = postgres_database.sessions
    center = make_center(sessions)
    new = new_recording(center)
    with sessions() as session, session.begin():
        RecordingRepository(session, numbers).create(new)
    with sessions() as deleting, deleting.begin():
        deleting.execute(
            select(RecordingRow.id).where(RecordingRow.id == new.recording_id).with_for_update()
        )
        with sessions() as holding, holding.begin():
            holding.execute(text("SET LOCAL lock_timeout = '300ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                LegalHoldRepository(holding).place(
                    HoldTargetKind.QUEUE, str(center.support_queue), "dispute", by=None, at=T0
                )
    with sessions() as session, session.begin():  # once the deletion is over, it goes through
        LegalHoldRepository(session).place(
            HoldTargetKind.QUEUE, str(center.support_queue), "dispute", by=None, at=T0
        )
    with sessions() as session, pytest.raises(ValidationFailed):
        LegalHoldRepository(session).place(
            HoldTargetKind.USER, "99999999999999999999", "x", by=None, at=T0
        )
