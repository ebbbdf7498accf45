"""The hash chain of the audit log: canonical form, entry hash, head, verification (pure).

Canonical form (format version 1). An entry's hash is the lowercase hex SHA-256 of the UTF-8
bytes of one JSON object holding every stored field except the hash itself:

    action, actor_kind, actor_name, actor_user_id, details, format_version, object_id,
    object_kind, outcome, previous_hash, reason, recorded_at, sequence, source_address

serialised with keys sorted (at every level, by code point), no whitespace (separators `,`
and `:`), non-ASCII characters as themselves (not `\\u` escapes), and no NaN or infinity.
Values: `sequence`, `format_version` and `actor_user_id` are integers (the last may be null);
`recorded_at` is the UTC time as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fraction digits);
`actor_kind` and `outcome` are their enum values; the text fields are the encoded text as
stored (see `audit_text`), or null; `details` is the stored JSON object; `previous_hash` is the
previous entry's hash, or 64 zeros for the first entry (sequence 1).

Verification walks the entries in sequence order and stops at the first broken one:

- a sequence number skipped: entries were deleted (MISSING);
- an entry whose content no longer matches its hash: edited (EDITED), or, when it names as its
  predecessor an entry stored elsewhere in the chain, moved (REORDERED);
- an entry whose content matches its hash but whose `previous_hash` is not the hash of the
  entry before it: that entry was edited and re-hashed, or this one rewritten (BROKEN_LINK).

A chain that is intact but shorter than an exported head was truncated (TRUNCATED); one whose
entry at the head's sequence has another hash was rewritten (DIVERGED). Only the exported head,
kept outside the database, catches a chain rewritten from some point on and re-hashed.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from callwarden.domain.errors import JsonValue, ValidationFailed
from callwarden.security.audit_model import AuditActor, AuditEntry, EncodedEvent

FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64
HASH_PATTERN = re.compile(r"[0-9a-f]{64}")


def format_timestamp(moment: datetime) -> str:
    """`moment` in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the canonical form)."""
    if moment.utcoffset() is None:
        raise ValueError("naive datetime in the audit chain")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def chain_fields(entry: AuditEntry) -> dict[str, JsonValue]:
    """The fields of `entry` that its hash covers, as canonical JSON values."""
    return {
        "action": entry.action,
        "actor_kind": entry.actor.kind.value,
        "actor_name": entry.actor.name,
        "actor_user_id": entry.actor.user_id,
        "details": entry.details,
        "format_version": entry.format_version,
        "object_id": entry.object_id,
        "object_kind": entry.object_kind,
        "outcome": entry.outcome.value,
        "previous_hash": entry.previous_hash,
        "reason": entry.reason,
        "recorded_at": format_timestamp(entry.recorded_at),
        "sequence": entry.sequence,
        "source_address": entry.source_address,
    }


def canonical_bytes(fields: Mapping[str, JsonValue]) -> bytes:
    """The canonical serialisation described above."""
    text = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def compute_hash(entry: AuditEntry) -> str:
    """The hash `entry` must carry: SHA-256 of its canonical form."""
    return hashlib.sha256(canonical_bytes(chain_fields(entry))).hexdigest()


def seal(
    event: EncodedEvent, *, sequence: int, recorded_at: datetime, previous_hash: str
) -> AuditEntry:
    """The entry `event` becomes at `sequence`, after the entry whose hash is `previous_hash`."""
    unsealed = AuditEntry(
        sequence=sequence,
        recorded_at=recorded_at.astimezone(UTC),
        actor=AuditActor(kind=event.actor_kind, name=event.actor_name, user_id=event.actor_user_id),
        action=event.action,
        object_kind=event.object_kind,
        object_id=event.object_id,
        outcome=event.outcome,
        source_address=event.source_address,
        reason=event.reason,
        details=event.details,
        previous_hash=previous_hash,
        entry_hash="",
        format_version=FORMAT_VERSION,
    )
    return replace(unsealed, entry_hash=compute_hash(unsealed))


@dataclass(frozen=True, kw_only=True)
class AuditHead:
    """The newest entry of a chain: keep a copy outside the database to detect truncation."""

    sequence: int
    entry_hash: str
    recorded_at: datetime

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditHead:
        return cls(
            sequence=entry.sequence, entry_hash=entry.entry_hash, recorded_at=entry.recorded_at
        )

    def to_json(self) -> str:
        """`{"hash": ..., "sequence": ..., "timestamp": ...}` (one line, keys sorted)."""
        return json.dumps(
            {
                "hash": self.entry_hash,
                "sequence": self.sequence,
                "timestamp": format_timestamp(self.recorded_at),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> AuditHead:
        """Parse what `to_json` wrote; anything else raises `ValidationFailed`."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise _bad_head(f"not JSON ({error})") from None
        if not isinstance(data, dict) or set(data) != {"hash", "sequence", "timestamp"}:
            raise _bad_head("expected an object with exactly hash, sequence and timestamp")
        sequence, entry_hash, timestamp = data["sequence"], data["hash"], data["timestamp"]
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
            raise _bad_head("sequence must be a positive integer")
        if not isinstance(entry_hash, str) or HASH_PATTERN.fullmatch(entry_hash) is None:
            raise _bad_head("hash must be 64 lowercase hex digits")
        if not isinstance(timestamp, str):
            raise _bad_head("timestamp must be a string")
        try:
            recorded_at = parse_timestamp(timestamp)
        except ValueError:
            raise _bad_head("timestamp must look like 2026-01-31T12:00:00.000000Z") from None
        return cls(sequence=sequence, entry_hash=entry_hash, recorded_at=recorded_at)


def _bad_head(message: str) -> ValidationFailed:
    return ValidationFailed(
        f"exported audit head: {message}", error_id="audit_head_invalid", details={"field": "head"}
    )


class ChainProblem(enum.Enum):
    MISSING = "missing"
    EDITED = "edited"
    REORDERED = "reordered"
    BROKEN_LINK = "broken_link"
    TRUNCATED = "truncated"
    DIVERGED = "diverged"


@dataclass(frozen=True, kw_only=True)
class ChainBreak:
    """The first broken entry: its sequence number, what is wrong, and a sentence saying so."""

    sequence: int
    problem: ChainProblem
    message: str


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """`verified` entries were found intact from sequence 1; `head` is the last of them."""

    verified: int
    head: AuditHead | None
    broken: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.broken is None

    def summary(self) -> str:
        if self.broken is not None:
            return f"audit log broken at entry {self.broken.sequence}: {self.broken.message}"
        if self.head is None:
            return "audit log intact: no entries"
        return (
            f"audit log intact: {self.verified} entries, head {self.head.sequence} "
            f"{self.head.entry_hash} at {format_timestamp(self.head.recorded_at)}"
        )


@dataclass(frozen=True, kw_only=True)
class UnreadableEntry:
    """A stored entry whose values cannot be read back (edited behind the application)."""

    sequence: int
    problem: str


Locator = Callable[[str], int | None]
"""Where an entry hash is stored: its sequence number, or None (used to name a re-ordering)."""


class ChainVerifier:
    """Feed entries in sequence order; the first broken one ends the walk.

    `locate` finds the stored sequence number of an entry hash; it is asked only once an entry
    is broken, to tell a moved entry from an edited one.
    """

    def __init__(self, locate: Locator) -> None:
        self._locate = locate
        self._previous: AuditEntry | None = None
        self._verified = 0
        self._broken: ChainBreak | None = None

    @property
    def broken(self) -> ChainBreak | None:
        return self._broken

    def feed(self, entry: AuditEntry | UnreadableEntry) -> bool:
        """Check the next entry; False once the chain is broken (stop feeding then)."""
        if self._broken is not None:
            return False
        self._broken = self._check(entry)
        if self._broken is not None or not isinstance(entry, AuditEntry):
            return False
        self._previous = entry
        self._verified += 1
        return True

    def _check(self, entry: AuditEntry | UnreadableEntry) -> ChainBreak | None:
        previous = self._previous
        expected = 1 if previous is None else previous.sequence + 1
        previous_hash = GENESIS_HASH if previous is None else previous.entry_hash
        if entry.sequence > expected:
            return _missing(expected, entry.sequence)
        if entry.sequence < expected:
            return ChainBreak(
                sequence=entry.sequence,
                problem=ChainProblem.REORDERED,
                message=f"entry {entry.sequence} comes after entry {expected - 1}",
            )
        if isinstance(entry, UnreadableEntry):
            return ChainBreak(
                sequence=entry.sequence,
                problem=ChainProblem.EDITED,
                message=f"entry {entry.sequence} was altered: it cannot be read ({entry.problem})",
            )
        linked = entry.previous_hash == previous_hash
        if compute_hash(entry) != entry.entry_hash:
            moved_after = None if linked else self._locate(entry.previous_hash)
            if moved_after is not None:
                return ChainBreak(
                    sequence=entry.sequence,
                    problem=ChainProblem.REORDERED,
                    message=(
                        f"entry {entry.sequence} is out of order: it was written after the "
                        f"entry now stored as {moved_after}, not after entry {expected - 1}"
                    ),
                )
            return ChainBreak(
                sequence=entry.sequence,
                problem=ChainProblem.EDITED,
                message=f"entry {entry.sequence} was altered: its content does not match its hash",
            )
        if not linked:
            return ChainBreak(
                sequence=entry.sequence,
                problem=ChainProblem.BROKEN_LINK,
                message=(
                    f"entry {entry.sequence} does not follow entry {expected - 1}: its previous "
                    f"hash {entry.previous_hash} is not {previous_hash} (entry {expected - 1} was "
                    f"altered and re-hashed, or entry {entry.sequence} was replaced)"
                ),
            )
        return None

    def finish(self, expected_head: AuditHead | None = None) -> VerifyResult:
        """The result, checking the chain against an exported head when one is given."""
        head = None if self._previous is None else AuditHead.of(self._previous)
        broken = self._broken
        if broken is None and expected_head is not None:
            broken = self._against_head(expected_head)
        return VerifyResult(verified=self._verified, head=head, broken=broken)

    def _against_head(self, expected: AuditHead) -> ChainBreak | None:
        last = 0 if self._previous is None else self._previous.sequence
        if last < expected.sequence:
            removed = (
                f"entry {expected.sequence} was"
                if last + 1 == expected.sequence
                else f"entries {last + 1} to {expected.sequence} were"
            )
            return ChainBreak(
                sequence=last + 1,
                problem=ChainProblem.TRUNCATED,
                message=(
                    f"the chain ends at entry {last} but the exported head is entry "
                    f"{expected.sequence}: {removed} removed"
                ),
            )
        stored = self._locate(expected.entry_hash)
        if stored != expected.sequence:
            return ChainBreak(
                sequence=expected.sequence,
                problem=ChainProblem.DIVERGED,
                message=(
                    f"entry {expected.sequence} is not the exported head {expected.entry_hash}: "
                    f"the chain was rewritten from entry {expected.sequence} or earlier"
                ),
            )
        return None


def _missing(expected: int, found: int) -> ChainBreak:
    span = (
        f"entry {expected} is"
        if found == expected + 1
        else f"entries {expected} to {found - 1} are"
    )
    return ChainBreak(
        sequence=expected,
        problem=ChainProblem.MISSING,
        message=f"{span} missing (deleted): entry {found} follows entry {expected - 1}",
    )
