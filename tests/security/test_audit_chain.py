"""The audit chain without a database: text encoding, events, canonical form, verification."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import UserId
from callwarden.security.audit import (
    REASON_REQUIRED,
    AuditAction,
    AuditActor,
    AuditEntry,
    AuditEvent,
    AuditHead,
    AuditOutcome,
    AuditQuery,
    ChainProblem,
    VerifyResult,
    canonical_bytes,
    chain_fields,
    compute_hash,
    require_reason,
)
from callwarden.security.audit_chain import (
    GENESIS_HASH,
    ChainVerifier,
    UnreadableEntry,
    seal,
)
from callwarden.security.audit_text import (
    MAX_DETAILS_DEPTH,
    REDACTED,
    encode_details,
    encode_text,
)

T0 = datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC)
ALICE = AuditActor.user(UserId(7), "alice")


# --- text encoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("alice", "alice"),
        ("bell\x07", "bell\\u0007"),
        ("alice\r\nadmin login ok", "alice\\u000d\\u000aadmin login ok"),
        ("\x1b[2J\x1b[31mred", "\\u001b[2J\\u001b[31mred"),
        ("nul\x00", "nul\\u0000"),
        ("del\x7f c1\x85", "del\\u007f c1\\u0085"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("back\\slash", "back\\\\slash"),
        ("typed \\u0007", "typed \\\\u0007"),
        ("Zoë 北京 🙂", "Zoë 北京 🙂"),
    ],
)
def test_text_is_encoded_so_no_control_or_format_character_survives(raw: str, encoded: str) -> None:
    assert encode_text(raw, 255) == encoded


def test_encoding_is_unambiguous_for_backslashes_and_escapes() -> None:
    assert encode_text("\x07", 50) != encode_text("\\u0007", 50)


@pytest.mark.parametrize(
    ("raw", "limit", "encoded"),
    [
        ("abcdef", 6, "abcdef"),
        ("abcdefg", 6, "abcd\\…"),
        ("ab\x07cdef", 9, "ab\\…"),
        ("ab\x07cdef", 10, "ab\\u0007\\…"),
        ("a\\bc", 4, "a\\…"),
    ],
)
def test_long_text_is_cut_at_a_whole_escape_with_a_mark(raw: str, limit: int, encoded: str) -> None:
    assert encode_text(raw, limit) == encoded
    assert len(encoded) <= limit


def test_details_are_encoded_redacted_and_bounded() -> None:
    details = {
        "before": {"username": "bob\x1b", "password_hash": "$argon2id$...", "sip_ha1_md5": "ab"},
        "after": {"username": "bob", "password_hash": None},
        "teams\u202e": [1, 2.5, True, None, "x\ny"],
    }
    assert encode_details(details) == {
        "before": {"username": "bob\\u001b", "password_hash": REDACTED, "sip_ha1_md5": REDACTED},
        "after": {"username": "bob", "password_hash": None},
        "teams\\u202e": [1, 2.5, True, None, "x\\u000ay"],
    }


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"n": float("nan")}, "audit details $.n: numbers must be finite"),
        ({"blob": b"\x00"}, "audit details $.blob: bytes is not a JSON value"),
        ({"when": T0}, "audit details $.when: datetime is not a JSON value"),
        ({"ids": {1: "x"}}, "audit details $.ids: key 1 is not a string"),
        ({"big": "x" * 4000, "more": ["y" * 4000] * 20}, "audit details $: "),
        (_nested(MAX_DETAILS_DEPTH + 1), "nested deeper than 8 levels"),
    ],
)
def test_details_that_are_not_bounded_json_are_refused(
    details: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationFailed, match="audit details") as caught:
        encode_details(details)
    assert message in caught.value.message
    assert caught.value.error_id == "audit_details_invalid"


# --- events and the reason rule ------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    ["login", "Auth.login", "auth..login", "auth.login.", "auth login", "auth.lo%gin", "a." * 40],
)
def test_action_names_must_be_dotted_lower_case(action: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        AuditEvent(action=action, actor=ALICE, outcome=AuditOutcome.SUCCESS)
    assert caught.value.error_id == "audit_action_invalid"


def test_the_known_actions_are_well_formed_and_new_ones_may_be_added() -> None:
    for action in AuditAction:
        AuditEvent(action=action, actor=ALICE, outcome=AuditOutcome.DENIED)
    assert AuditEvent(action="queue.create", actor=ALICE, outcome=AuditOutcome.SUCCESS).action == (
        "queue.create"
    )


@pytest.mark.parametrize("action", sorted(REASON_REQUIRED))
def test_acts_exposing_audio_need_a_reason_when_they_succeed(action: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        AuditEvent(action=action, actor=ALICE, outcome=AuditOutcome.SUCCESS, reason="   ")
    assert caught.value.error_id == "audit_reason_required"
    assert caught.value.details == {"field": "reason"}
    with pytest.raises(ValidationFailed):
        require_reason(action, None)
    event = AuditEvent(action=action, actor=ALICE, outcome=AuditOutcome.SUCCESS, reason=" T-42 ")
    assert event.reason == "T-42"


@pytest.mark.parametrize("outcome", [AuditOutcome.DENIED, AuditOutcome.FAILED])
def test_a_refused_attempt_is_logged_without_a_reason(outcome: AuditOutcome) -> None:
    event = AuditEvent(action=AuditAction.RECORDING_PLAY, actor=ALICE, outcome=outcome)
    assert event.reason is None


def test_reason_required_covers_playing_downloading_and_listening() -> None:
    assert {"recording.play", "recording.download", "monitoring.listen"} <= REASON_REQUIRED
    assert "recording.delete" not in REASON_REQUIRED
    assert require_reason("user.update", None) is None


def test_a_reason_over_500_characters_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        require_reason(AuditAction.RECORDING_PLAY, "x" * 501)
    assert caught.value.error_id == "audit_reason_too_long"


def test_an_event_keeps_raw_text_and_encodes_once() -> None:
    event = AuditEvent(
        action=AuditAction.LOGIN_FAILED,
        actor=AuditActor.anonymous(),
        outcome=AuditOutcome.FAILED,
        object_kind="user",
        object_id="eve\r\n",
        source_address="198.51.100.4",
    )
    again = replace(event, source_address="198.51.100.5")
    assert again.encoded().object_id == event.encoded().object_id == "eve\\u000d\\u000a"


def test_actor_kinds_carry_a_user_id_only_for_users() -> None:
    assert AuditActor.sip("192.0.2.7:5060").name == "sip:192.0.2.7:5060"
    assert AuditActor.system().user_id is None
    with pytest.raises(ValueError, match="user id"):
        replace(ALICE, user_id=None)


# --- canonical form and hash ---------------------------------------------------------------


def _event(number: int) -> AuditEvent:
    return AuditEvent(
        action=AuditAction.USER_UPDATE,
        actor=ALICE,
        outcome=AuditOutcome.SUCCESS,
        object_kind="user",
        object_id=100 + number,
        source_address="192.0.2.1",
        details={"after": {"display_name": f"User {number}"}},
    )


def _chain(length: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    previous = GENESIS_HASH
    for number in range(1, length + 1):
        entry = seal(
            _event(number).encoded(),
            sequence=number,
            recorded_at=T0 + timedelta(seconds=number),
            previous_hash=previous,
        )
        entries.append(entry)
        previous = entry.entry_hash
    return entries


GOLDEN_FIRST_ENTRY = (
    b'{"action":"user.update","actor_kind":"user","actor_name":"alice","actor_user_id":7,'
    b'"details":{"after":{"display_name":"User 1"}},"format_version":1,"object_id":"101",'
    b'"object_kind":"user","outcome":"success","previous_hash":"'
    + b"0"
    * 64
    + b'","reason":null,"recorded_at":"2026-12-01T09:30:01.123456Z","sequence":1,'
    b'"source_address":"192.0.2.1"}'
)


def test_canonical_form_is_sorted_compact_utf8_json_of_every_field() -> None:
    first = _chain(1)[0]
    assert canonical_bytes(chain_fields(first)) == GOLDEN_FIRST_ENTRY
    assert first.entry_hash == compute_hash(first) == hashlib.sha256(GOLDEN_FIRST_ENTRY).hexdigest()


def test_non_ascii_text_is_serialised_as_utf8_not_escaped() -> None:
    event = replace(_event(1), details={"name": "Zoë"})
    entry = seal(event.encoded(), sequence=1, recorded_at=T0, previous_hash=GENESIS_HASH)
    assert '"name":"Zoë"'.encode() in canonical_bytes(chain_fields(entry))


def test_each_entry_links_to_the_hash_of_the_one_before() -> None:
    chain = _chain(3)
    assert chain[0].previous_hash == GENESIS_HASH
    assert [entry.previous_hash for entry in chain[1:]] == [entry.entry_hash for entry in chain[:2]]


@pytest.mark.parametrize(
    "change",
    [
        {"action": "user.create"},
        {"actor": AuditActor.user(UserId(8), "alice")},
        {"object_id": "999"},
        {"outcome": AuditOutcome.DENIED},
        {"source_address": "192.0.2.2"},
        {"reason": "x"},
        {"details": {}},
        {"recorded_at": T0},
        {"sequence": 9},
        {"previous_hash": "f" * 64},
        {"format_version": 2},
    ],
)
def test_every_field_is_covered_by_the_hash(change: dict[str, object]) -> None:
    entry = _chain(1)[0]
    assert compute_hash(replace(entry, **change)) != entry.entry_hash  # type: ignore[arg-type]


# --- verification --------------------------------------------------------------------------


def _verify(
    entries: list[AuditEntry | UnreadableEntry], head: AuditHead | None = None
) -> VerifyResult:
    stored = {
        entry.entry_hash: entry.sequence for entry in entries if isinstance(entry, AuditEntry)
    }
    verifier = ChainVerifier(stored.get)
    for entry in entries:
        if not verifier.feed(entry):
            break
    return verifier.finish(head)


def test_an_intact_chain_verifies_up_to_its_head() -> None:
    chain = _chain(5)
    result = _verify(list(chain), AuditHead.of(chain[-1]))
    assert result.intact
    assert result.verified == 5
    assert result.head == AuditHead.of(chain[-1])
    assert result.summary().startswith("audit log intact: 5 entries, head 5 ")


def test_an_empty_chain_is_intact() -> None:
    result = _verify([])
    assert result == VerifyResult(verified=0, head=None, broken=None)
    assert result.summary() == "audit log intact: no entries"


def test_an_edited_entry_is_named() -> None:
    chain: list[AuditEntry | UnreadableEntry] = list(_chain(5))
    chain[2] = replace(_chain(5)[2], outcome=AuditOutcome.DENIED)
    result = _verify(chain)
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (3, ChainProblem.EDITED)
    assert result.broken.message == "entry 3 was altered: its content does not match its hash"
    assert result.verified == 2


def test_a_deleted_entry_is_named() -> None:
    chain: list[AuditEntry | UnreadableEntry] = list(_chain(5))
    del chain[1]
    result = _verify(chain)
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (2, ChainProblem.MISSING)
    assert result.broken.message == "entry 2 is missing (deleted): entry 3 follows entry 1"


def test_several_deleted_entries_are_named_as_a_span() -> None:
    chain = _chain(6)
    result = _verify([chain[0], chain[4], chain[5]])
    assert result.broken is not None
    assert result.broken.message == "entries 2 to 4 are missing (deleted): entry 5 follows entry 1"


def test_swapped_entries_are_named_as_reordered() -> None:
    chain = _chain(5)
    swapped: list[AuditEntry | UnreadableEntry] = [
        chain[0],
        chain[1],
        replace(chain[3], sequence=3),
        replace(chain[2], sequence=4),
        chain[4],
    ]
    result = _verify(swapped)
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (3, ChainProblem.REORDERED)
    assert result.broken.message == (
        "entry 3 is out of order: it was written after the entry now stored as 4, not after entry 2"
    )


def test_an_entry_edited_and_rehashed_breaks_the_next_link() -> None:
    chain: list[AuditEntry | UnreadableEntry] = list(_chain(5))
    edited = replace(_chain(5)[1], object_id="666")
    chain[1] = replace(edited, entry_hash=compute_hash(edited))
    result = _verify(chain)
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (3, ChainProblem.BROKEN_LINK)
    assert "entry 3 does not follow entry 2" in result.broken.message


def test_an_unreadable_entry_counts_as_edited() -> None:
    chain: list[AuditEntry | UnreadableEntry] = list(_chain(3))
    chain[1] = UnreadableEntry(sequence=2, problem="ValueError: Invalid isoformat string")
    result = _verify(chain)
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (2, ChainProblem.EDITED)
    assert "cannot be read (ValueError" in result.broken.message


def test_truncation_is_caught_only_against_an_exported_head() -> None:
    chain = _chain(6)
    head = AuditHead.of(chain[-1])
    truncated: list[AuditEntry | UnreadableEntry] = list(chain[:4])
    assert _verify(truncated).intact
    result = _verify(truncated, head)
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (5, ChainProblem.TRUNCATED)
    assert result.broken.message == (
        "the chain ends at entry 4 but the exported head is entry 6: entries 5 to 6 were removed"
    )
    emptied = _verify([], head)
    assert emptied.broken is not None and emptied.broken.problem is ChainProblem.TRUNCATED


def test_a_chain_rewritten_past_the_head_diverges_from_it() -> None:
    chain = _chain(6)
    head = AuditHead.of(chain[3])
    rewritten: list[AuditEntry | UnreadableEntry] = list(chain[:3])
    previous = chain[2].entry_hash
    for number in (4, 5, 6, 7):
        entry = seal(
            replace(_event(number), object_id="forged").encoded(),
            sequence=number,
            recorded_at=T0,
            previous_hash=previous,
        )
        rewritten.append(entry)
        previous = entry.entry_hash
    assert _verify(rewritten).intact
    result = _verify(rewritten, head)
    assert result.broken is not None
    assert (result.broken.sequence, result.broken.problem) == (4, ChainProblem.DIVERGED)


# --- exported head -------------------------------------------------------------------------


def test_a_head_round_trips_through_its_json() -> None:
    head = AuditHead.of(_chain(2)[-1])
    text = head.to_json()
    assert json.loads(text) == {
        "hash": head.entry_hash,
        "sequence": 2,
        "timestamp": "2026-12-01T09:30:02.123456Z",
    }
    assert AuditHead.from_json(text) == head


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "exactly hash, sequence and timestamp"),
        ('{"hash": "' + "a" * 64 + '", "sequence": 1}', "exactly hash, sequence and timestamp"),
        ('{"hash": "' + "a" * 64 + '", "sequence": 0, "timestamp": "x"}', "positive integer"),
        ('{"hash": "' + "a" * 64 + '", "sequence": true, "timestamp": "x"}', "positive integer"),
        ('{"hash": "ABC", "sequence": 1, "timestamp": "x"}', "64 lowercase hex"),
        ('{"hash": "' + "a" * 64 + '", "sequence": 1, "timestamp": 5}', "must be a string"),
        ('{"hash": "' + "a" * 64 + '", "sequence": 1, "timestamp": "yesterday"}', "look like"),
    ],
)
def test_a_malformed_head_is_refused_with_a_typed_error(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message) as caught:
        AuditHead.from_json(text)
    assert caught.value.error_id == "audit_head_invalid"


# --- query validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"sort": "sequence;DROP TABLE audit_log"}, "sort"),
        ({"sort": "entry_hash"}, "sort"),
        ({"sort": "1,(select 1)"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
        ({"since": datetime(2026, 1, 1)}, "since"),
        ({"since": T0, "until": T0}, "until"),
        ({"action_prefix": "auth%"}, "action_prefix"),
        ({"action_prefix": "' OR 1=1--"}, "action_prefix"),
        ({"action_prefix": "auth_"}, None),
        ({"actor_name": ""}, "actor_name"),
        ({"object_id": "x" * 256}, "object_id"),
    ],
)
def test_query_fields_are_validated_by_name(
    arguments: dict[str, object], field: str | None
) -> None:
    if field is None:
        AuditQuery(**arguments)  # type: ignore[arg-type]
        return
    with pytest.raises(ValidationFailed) as caught:
        AuditQuery(**arguments)  # type: ignore[arg-type]
    assert caught.value.details == {"field": field}
    assert caught.value.error_id == "audit_query_invalid"
