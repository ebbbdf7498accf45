from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import CallId, QueueId, RecordingId, TeamId, UserId
from callwarden.recording.models import (
    HoldTargetKind,
    LegalHold,
    Recording,
    RecordingStatus,
    RetentionPolicy,
    RetentionScope,
)
from callwarden.recording.retention import NO_POLICY_RULE, expiry_of, shortest_days

ENDED = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)

RECORDING = Recording(
    id=RecordingId("r1"),
    call_id=CallId("call-1"),
    queue_id=QueueId(7),
    team_id=TeamId(3),
    operator_id=UserId(11),
    direction=CallDirection.INBOUND,
    caller_number=None,
    started_at=ENDED - timedelta(minutes=5),
    ended_at=ENDED,
    duration_ms=300_000,
    status=RecordingStatus.COMPLETE,
    storage_key="2026/01/10/r1.cwr",
    kek_id="kek-0001",
    wrapped_key=b"k",
    has_pauses=False,
    monitored=False,
    manifest_digest=None,
    size_bytes=None,
    failure_reason=None,
)

DEFAULT_30 = RetentionPolicy(scope=RetentionScope.DEFAULT, days=30)
TEAM_90 = RetentionPolicy(scope=RetentionScope.TEAM, days=90, team_id=TeamId(3))
OTHER_TEAM_400 = RetentionPolicy(scope=RetentionScope.TEAM, days=400, team_id=TeamId(4))
QUEUE_10 = RetentionPolicy(scope=RetentionScope.QUEUE, days=10, queue_id=QueueId(7))
QUEUE_365 = RetentionPolicy(scope=RetentionScope.QUEUE, days=365, queue_id=QueueId(7))


def hold(
    kind: HoldTargetKind, target: str, *, released: bool = False, hold_id: int = 1
) -> LegalHold:
    return LegalHold(
        id=hold_id,
        target_kind=kind,
        target_id=target,
        reason="dispute",
        placed_by=None,
        placed_at=ENDED,
        released_at=ENDED + timedelta(days=1) if released else None,
    )


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **amount: float) -> None:
        self.current += timedelta(**amount)


@pytest.mark.parametrize(
    ("policies", "days", "rule"),
    [
        ([], None, NO_POLICY_RULE),
        ([DEFAULT_30], 30, "default:30d"),
        ([DEFAULT_30, TEAM_90], 90, "team:3:90d"),
        ([DEFAULT_30, QUEUE_10], 30, "default:30d"),  # the longest rule wins, not the narrowest
        ([DEFAULT_30, TEAM_90, QUEUE_365], 365, "queue:7:365d"),
        ([DEFAULT_30, OTHER_TEAM_400], 30, "default:30d"),  # another team's policy: not ours
        ([QUEUE_10], 10, "queue:7:10d"),
        ([RetentionPolicy(scope=RetentionScope.DEFAULT, days=90), TEAM_90], 90, "team:3:90d"),
    ],
)
def test_the_longest_applicable_rule_wins(
    policies: list[RetentionPolicy], days: int | None, rule: str
) -> None:
    expiry = expiry_of(RECORDING, policies, [])
    assert expiry.rule == rule
    assert expiry.days == days
    assert expiry.expires_at == (None if days is None else ENDED + timedelta(days=days))


def test_expiry_follows_the_clock() -> None:
    clock = FakeClock(ENDED)
    expiry = expiry_of(RECORDING, [DEFAULT_30], [])
    assert not expiry.expired(clock())
    clock.advance(days=30, seconds=-1)
    assert not expiry.expired(clock())
    clock.advance(seconds=1)
    assert expiry.expired(clock())
    # Deterministic: the same inputs give the same answer every time.
    assert expiry_of(RECORDING, [DEFAULT_30], []) == expiry


@pytest.mark.parametrize(
    "held_by",
    [
        hold(HoldTargetKind.RECORDING, "r1"),
        hold(HoldTargetKind.CALL, "call-1"),
        hold(HoldTargetKind.USER, "11"),
        hold(HoldTargetKind.QUEUE, "7"),
    ],
    ids=["recording", "call", "user", "queue"],
)
def test_an_active_legal_hold_blocks_expiry(held_by: LegalHold) -> None:
    clock = FakeClock(ENDED + timedelta(days=10_000))
    expiry = expiry_of(RECORDING, [DEFAULT_30], [held_by])
    assert expiry.held and expiry.holds == (1,)
    assert expiry.expires_at is None and not expiry.expired(clock())
    assert expiry.rule == "legal_hold:1"


@pytest.mark.parametrize(
    "not_ours",
    [
        hold(HoldTargetKind.RECORDING, "r2"),
        hold(HoldTargetKind.CALL, "call-2"),
        hold(HoldTargetKind.USER, "12"),
        hold(HoldTargetKind.QUEUE, "8"),
        hold(HoldTargetKind.RECORDING, "r1", released=True),
    ],
    ids=["other recording", "other call", "other user", "other queue", "released"],
)
def test_other_or_released_holds_do_not_protect(not_ours: LegalHold) -> None:
    expiry = expiry_of(RECORDING, [DEFAULT_30], [not_ours])
    assert not expiry.held
    assert expiry.expired(ENDED + timedelta(days=31))


def test_many_holds_are_all_named() -> None:
    holds = [hold(HoldTargetKind.USER, "11", hold_id=n) for n in range(1, 500)]
    expiry = expiry_of(RECORDING, [DEFAULT_30], holds)
    assert expiry.holds == tuple(range(1, 500))


@pytest.mark.parametrize("status", [RecordingStatus.RECORDING, RecordingStatus.PURGED])
def test_open_or_purged_recordings_never_expire(status: RecordingStatus) -> None:
    expiry = expiry_of(replace(RECORDING, status=status), [DEFAULT_30], [])
    assert expiry.expires_at is None
    assert not expiry.expired(ENDED + timedelta(days=10_000))


@pytest.mark.parametrize("status", [RecordingStatus.INCOMPLETE, RecordingStatus.FAILED])
def test_incomplete_and_failed_recordings_expire_too(status: RecordingStatus) -> None:
    assert expiry_of(replace(RECORDING, status=status), [DEFAULT_30], []).expired(
        ENDED + timedelta(days=30)
    )


def test_a_recording_without_an_end_counts_from_its_start() -> None:
    unended = replace(RECORDING, ended_at=None, status=RecordingStatus.INCOMPLETE)
    expiry = expiry_of(unended, [DEFAULT_30], [])
    assert expiry.expires_at == RECORDING.started_at + timedelta(days=30)


def test_shortest_days() -> None:
    assert shortest_days([]) is None
    assert shortest_days([DEFAULT_30, QUEUE_10, TEAM_90]) == 10
