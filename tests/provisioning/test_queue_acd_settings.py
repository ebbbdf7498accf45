"""Queue overflow, announcements, hold music and break reasons through the provisioning file
(SQLite and PostgreSQL): stored, read back in the directory, refused with a clear message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import HoldMusic, Queue, QueueOverflow
from callwarden.provisioning import ObjectKind, Outcome, Provisioner, ProvisioningError

Snapshot = Callable[[], DirectorySnapshot]
Write = Callable[..., Path]

BASE = """\
teams: [{name: support}]
users:
  - {username: alice, role: operator, team: support, extension: "1001"}
  - {username: bob, role: supervisor, team: support, extension: "1002"}
"""


def _queue(snapshot: DirectorySnapshot, name: str) -> Queue:
    queue = snapshot.queue_by_name(name)
    assert queue is not None, name
    return queue


def test_overflow_targets_announcements_and_music_are_stored(
    provisioner: Provisioner, snapshot: Snapshot, write_yaml: Write
) -> None:
    path = write_yaml(
        BASE
        + """\
queues:
  - name: sales
    number: "5001"
    team: support
    members: [alice]
    max_wait_seconds: 60
    overflow: {action: queue, queue: overflow}
    announce_seconds: 20
    music_on_hold: melody
  - name: overflow
    number: "5002"
    team: support
    overflow: {action: user, user: bob}
  - name: late
    number: "5003"
    team: support
    overflow: voicemail
    announce_seconds: null
break_reasons: [lunch, coaching, meeting]
"""
    )
    provisioner.apply_file(path)
    directory = snapshot()
    sales, overflow, late = (_queue(directory, n) for n in ("sales", "overflow", "late"))
    bob = directory.user_by_username("bob")
    assert bob is not None
    assert (sales.overflow, sales.overflow_queue_id, sales.overflow_user_id) == (
        QueueOverflow.QUEUE,
        overflow.id,
        None,
    )
    assert (sales.announce_seconds, sales.music_on_hold) == (20, HoldMusic.MELODY)
    assert (overflow.overflow, overflow.overflow_user_id) == (QueueOverflow.USER, bob.id)
    assert (overflow.announce_seconds, overflow.music_on_hold) == (30, HoldMusic.TONES)
    assert (late.overflow, late.announce_seconds) == (QueueOverflow.VOICEMAIL, None)
    assert directory.break_reasons == ("lunch", "coaching", "meeting")
    again = provisioner.apply_file(path)
    assert again.updated == 0


def test_changing_the_overflow_updates_the_queue_and_unset_keys_are_kept(
    provisioner: Provisioner, snapshot: Snapshot, write_yaml: Write
) -> None:
    queue = "queues: [{name: sales, number: '5001', team: support, %s}]\n"
    provisioner.apply_file(
        write_yaml(BASE + queue % "overflow: {action: user, user: alice}" + "break_reasons: [a]")
    )
    report = provisioner.apply_file(write_yaml(BASE + queue % "overflow: hangup"))
    assert report.names(ObjectKind.QUEUE, Outcome.UPDATED) == ("sales",)
    directory = snapshot()
    sales = _queue(directory, "sales")
    assert (sales.overflow, sales.overflow_user_id) == (QueueOverflow.HANGUP, None)
    assert directory.break_reasons == ("a",)  # not in the second file: unchanged
    provisioner.apply_file(write_yaml(BASE + queue % "strategy: ring_all"))
    assert _queue(snapshot(), "sales").overflow is QueueOverflow.HANGUP
    provisioner.apply_file(write_yaml(BASE + "break_reasons: []"))
    assert snapshot().break_reasons == ()


@pytest.mark.parametrize(
    ("queue_text", "message"),
    [
        ("overflow: {action: queue, queue: nowhere}", "unknown queue 'nowhere'"),
        ("overflow: {action: queue, queue: sales}", "a queue cannot overflow to itself"),
        ("overflow: {action: user, user: zed}", "unknown user 'zed'"),
        ("overflow: {action: queue}", "queue: names the target of 'action: queue'"),
        ("overflow: {action: hangup, user: bob}", "user: names the target of 'action: user'"),
        ("overflow: elsewhere", "overflow.action"),
        ("announce_seconds: 5", "announce_seconds"),
        ("music_on_hold: jazz", "music_on_hold"),
    ],
)
def test_bad_queue_settings_are_refused_and_change_nothing(
    provisioner: Provisioner,
    snapshot: Snapshot,
    write_yaml: Write,
    queue_text: str,
    message: str,
) -> None:
    before = snapshot()
    path = write_yaml(
        BASE + f"queues: [{{name: sales, number: '5001', team: support, {queue_text}}}]\n"
    )
    with pytest.raises(ProvisioningError) as caught:
        provisioner.apply_file(path)
    assert message in str(caught.value)
    assert snapshot().queues == before.queues


@pytest.mark.parametrize(
    ("reasons", "message"),
    [
        ("[lunch, lunch]", "each break reason is listed once"),
        ("[missed]", "the system's own reason"),
        ("[a, b, c, d, e, f, g, h, i, j]", "at most 9"),
        ("[Lunch Break]", "must be 1-64 characters"),
    ],
)
def test_bad_break_reasons_are_refused(
    provisioner: Provisioner, snapshot: Snapshot, write_yaml: Write, reasons: str, message: str
) -> None:
    with pytest.raises(ProvisioningError) as caught:
        provisioner.apply_file(write_yaml(BASE + f"break_reasons: {reasons}\n"))
    assert message in str(caught.value)
    assert snapshot().break_reasons == ()
