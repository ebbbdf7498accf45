"""When a recording expires: pure rules, no database and no clock of their own.

The rules (docs/recording.md, "Keeping, deleting, finding and playing"):

1. The policies that apply to a recording are the default policy, its team's and its queue's.
   **The longest applicable policy wins**: a queue kept 30 days in a center whose default is
   90 keeps its recordings 90 days. No applicable policy: kept until a policy says otherwise.
2. A recording expires `days` whole days after it ended (after it started if it has no end).
3. **A recording under an active legal hold never expires**, whatever the policies: a hold on
   the recording itself, on its call, on its operator (user) or on its queue.
4. A recording still being recorded, or already purged, never expires.

`expiry_of` gives the same answer for the same inputs (the time is passed in), so a purge that
stops half-way and runs again decides exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from callwarden.recording.models import (
    LegalHold,
    Recording,
    RecordingStatus,
    RetentionPolicy,
    RetentionScope,
)

NO_POLICY_RULE = "no_policy"


@dataclass(frozen=True)
class Expiry:
    """What the rules say about one recording. `expires_at` None: never (see `rule`)."""

    recording_id: str
    expires_at: datetime | None
    rule: str
    days: int | None
    holds: tuple[int, ...] = ()

    @property
    def held(self) -> bool:
        return bool(self.holds)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def applicable_policies(
    recording: Recording, policies: Iterable[RetentionPolicy]
) -> list[RetentionPolicy]:
    """The default policy and the policies of the recording's team and queue."""
    found = []
    for policy in policies:
        if (
            policy.scope is RetentionScope.DEFAULT
            or (policy.scope is RetentionScope.TEAM and policy.team_id == recording.team_id)
            or (policy.scope is RetentionScope.QUEUE and policy.queue_id == recording.queue_id)
        ):
            found.append(policy)
    return found


def longest_policy(
    recording: Recording, policies: Iterable[RetentionPolicy]
) -> RetentionPolicy | None:
    """The applicable policy keeping the recording longest; on a tie the most specific one
    (queue, then team, then default) names the rule."""
    specificity = {RetentionScope.QUEUE: 2, RetentionScope.TEAM: 1, RetentionScope.DEFAULT: 0}
    candidates = applicable_policies(recording, policies)
    if not candidates:
        return None
    return max(candidates, key=lambda policy: (policy.days, specificity[policy.scope]))


def active_holds_on(recording: Recording, holds: Iterable[LegalHold]) -> tuple[int, ...]:
    """The ids of the active holds naming the recording, its call, operator or queue."""
    return tuple(sorted(hold.id for hold in holds if hold.active and hold.applies_to(recording)))


def expiry_of(
    recording: Recording, policies: Sequence[RetentionPolicy], holds: Iterable[LegalHold]
) -> Expiry:
    """When `recording` expires under `policies`, unless one of `holds` protects it."""
    if recording.status in (RecordingStatus.RECORDING, RecordingStatus.PURGED):
        return Expiry(recording.id, None, recording.status.value, None)
    held = active_holds_on(recording, holds)
    if held:
        rule = "legal_hold:" + ",".join(str(hold_id) for hold_id in held)
        return Expiry(recording.id, None, rule, None, held)
    policy = longest_policy(recording, policies)
    if policy is None:
        return Expiry(recording.id, None, NO_POLICY_RULE, None)
    base = recording.ended_at or recording.started_at
    return Expiry(recording.id, base + timedelta(days=policy.days), policy.rule, policy.days)


def shortest_days(policies: Iterable[RetentionPolicy]) -> int | None:
    """The fewest days any policy keeps a recording: nothing newer than that can expire."""
    days = [policy.days for policy in policies]
    return min(days) if days else None
