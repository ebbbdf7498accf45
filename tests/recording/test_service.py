from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callwarden.bus.event import Event
from callwarden.domain.errors import Conflict, Forbidden, InvalidState, NotFound
from callwarden.domain.ids import UserId
from callwarden.domain.permissions import DEFAULT_ROLE_GRANTS, Grant
from callwarden.domain.policy import Principal
from callwarden.recording.catalogue_events import RecordingIntegrityAlert
from callwarden.recording.models import HoldTargetKind, RecordingStatus, RetentionScope
from callwarden.recording.numbers import SealedNumbers
from callwarden.recording.playback import PlaybackGrants, PlaybackMode, Rendition
from callwarden.recording.search import RecordingQuery
from callwarden.recording.service import RecordingService
from callwarden.recording.signing import NodeSigningKey
from callwarden.store.database import Database

from .conftest import Center
from .test_purge import World

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def principal(center: Center, role: str | None, *extra: str) -> Principal:
    """A principal of the support team; `role` a default role's grants, plus `extra` grants."""
    grants = set(DEFAULT_ROLE_GRANTS[role]) if role else set()
    grants |= {Grant.parse(text) for text in extra}
    supervised = frozenset({center.support}) if role == "supervisor" else frozenset()
    return Principal(UserId(center.alice), center.support, supervised, frozenset(grants))


class Setup:
    def __init__(self, world: World) -> None:
        self.world = world
        self.alerts: list[Event] = []
        self.signing_key = NodeSigningKey.generate()  # the node's: its manifests play
        self.service = RecordingService(
            world.sessions,
            world.numbers,
            world.keyring,
            world.storage,
            world.shredder,
            PlaybackGrants(b"g" * 32),
            world.clock,
            signers=(self.signing_key.public_key(),),
            alert=self.alerts.append,
        )
        self.ours = world.sealer.make(world.support(), started_at=T0, caller="+49 30 1234567")
        self.theirs = world.sealer.make(
            world.sales(), started_at=T0 + timedelta(hours=1), caller="+1 555 0100"
        )


@pytest.fixture
def setup(database: Database, numbers: SealedNumbers, tmp_path: Path, center: Center) -> Setup:
    world = World(database, numbers, tmp_path, center)
    world.clock.current = T0 + timedelta(days=1)
    return Setup(world)


def test_a_supervisor_finds_only_their_teams_recordings(setup: Setup, center: Center) -> None:
    supervisor = principal(center, "supervisor")
    page = setup.service.search(supervisor, RecordingQuery())
    assert [view.recording.id for view in page.items] == [setup.ours.id]
    assert page.items[0].caller_number == "+49 30 1234567"  # numbers.view:team
    with pytest.raises(NotFound) as hidden:
        setup.service.get(supervisor, setup.theirs.id)
    assert hidden.value.error_id == "not_found"
    assert str(hidden.value) == f"recording {setup.theirs.id} not found"
    by_number = setup.service.search(supervisor, RecordingQuery(caller_number="+15550100"))
    assert by_number.items == ()


def test_operators_see_no_recordings_by_default(setup: Setup, center: Center) -> None:
    operator = principal(center, "operator")  # not even their own
    assert setup.service.search(operator, RecordingQuery()).items == ()
    with pytest.raises(Forbidden):
        setup.service.get(operator, setup.ours.id)


def test_numbers_are_masked_without_numbers_view(setup: Setup, center: Center) -> None:
    listener = principal(center, None, "recordings.play:all")
    views = setup.service.search(listener, RecordingQuery()).items
    assert {view.caller_number for view in views} == {"+** ** ***4567", "+* *** 0100"}
    assert setup.service.search(listener, RecordingQuery(caller_number="+4930 1234567")).items == ()
    auditor = principal(center, "auditor")
    found = setup.service.search(auditor, RecordingQuery(caller_number="+4930 1234567")).items
    assert [view.recording.id for view in found] == [setup.ours.id]


async def test_manual_deletion_needs_permission_reason_and_no_hold(
    setup: Setup, center: Center
) -> None:
    deleter = principal(
        center, "supervisor", "recordings.delete:team", "recordings.legal_hold:team"
    )
    with pytest.raises(Forbidden):
        await setup.service.delete(principal(center, "supervisor"), "sup", setup.ours.id, "x")
    with pytest.raises(NotFound):
        await setup.service.delete(deleter, "sup", setup.theirs.id, "erasure request")
    hold = setup.service.place_hold(deleter, HoldTargetKind.RECORDING, setup.ours.id, "case 5")
    with pytest.raises(Conflict) as held:
        await setup.service.delete(deleter, "sup", setup.ours.id, "erasure request")
    assert held.value.error_id == "recording_on_legal_hold"
    assert held.value.details["holds"] == [hold.id]
    assert setup.world.file(setup.ours).exists()
    with pytest.raises(Forbidden):  # releasing holds is for scope `all`
        setup.service.release_hold(deleter, hold.id, "case closed")
    releaser = principal(center, None, "recordings.legal_hold:all")
    setup.service.release_hold(releaser, hold.id, "case closed")

    tombstone = await setup.service.delete(deleter, "sup", setup.ours.id, "  erasure request ")
    assert tombstone.reason == "erasure request" and tombstone.actor_user_id == deleter.user_id
    assert setup.world.get(setup.ours).status is RecordingStatus.PURGED
    assert not setup.world.file(setup.ours).exists()
    [record] = setup.world.audit.records
    assert (record.action, record.object_id, record.reason) == (
        "recording.delete",
        setup.ours.id,
        "erasure request",
    )
    with pytest.raises(InvalidState):
        await setup.service.delete(deleter, "sup", setup.ours.id, "again")


def test_playback_through_a_grant(setup: Setup, center: Center) -> None:
    supervisor = principal(center, "supervisor")
    grant = setup.service.start_playback(
        supervisor, 41, setup.ours.id, Rendition(PlaybackMode.STEREO)
    )
    with setup.service.open_grant(supervisor, 41, grant.token) as opened:
        assert opened.audio.channels == 2 and opened.audio.frames == 2 * 8000
    with pytest.raises(NotFound):
        setup.service.open_grant(supervisor, 42, grant.token)
    shape = setup.service.waveform(supervisor, 41, grant.token, 10)
    assert len(shape.maximum) == 10 and max(shape.maximum) > 1000


def test_a_tampered_file_is_refused_as_corrupted(setup: Setup, center: Center) -> None:
    path = setup.world.file(setup.ours)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    auditor = principal(center, "auditor")
    grant = setup.service.start_playback(auditor, 1, setup.ours.id, Rendition(PlaybackMode.MIX))
    with pytest.raises(InvalidState) as refused:
        setup.service.open_grant(auditor, 1, grant.token)
    assert refused.value.error_id == "recording_corrupted"
    [alert] = setup.alerts
    assert isinstance(alert, RecordingIntegrityAlert)
    assert (alert.kind, alert.recording_id, alert.team_id) == (
        "recording.corrupted",
        setup.ours.id,
        center.support,
    )
    assert "+49" not in repr(alert)
    # Other recordings are unaffected.
    other = setup.service.start_playback(auditor, 1, setup.theirs.id, Rendition(PlaybackMode.MIX))
    with setup.service.open_grant(auditor, 1, other.token) as opened:
        assert opened.audio.frames > 0


def test_tags_notes_and_retention_policies(setup: Setup, center: Center) -> None:
    supervisor = principal(center, "supervisor")
    setup.service.add_tag(supervisor, setup.ours.id, "Training example")
    setup.service.add_note(supervisor, setup.ours.id, "good de-escalation at 1:20")
    found = setup.service.search(supervisor, RecordingQuery(tags=("training example",)))
    assert [view.recording.id for view in found.items] == [setup.ours.id]
    assert [note.text for note in setup.service.notes(supervisor, setup.ours.id)] == [
        "good de-escalation at 1:20"
    ]
    with pytest.raises(NotFound):
        setup.service.add_tag(supervisor, setup.theirs.id, "x")
    with pytest.raises(Forbidden):
        setup.service.policies(supervisor)
    manager = principal(center, None, "retention.manage")
    after = setup.service.set_policy(manager, RetentionScope.DEFAULT, 90)
    assert [policy.rule for policy in after] == ["default:90d"]
    assert setup.service.set_policy(manager, RetentionScope.DEFAULT, None) == []
