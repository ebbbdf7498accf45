"""`POST /api/v1/recordings/{id}/verify`: the integrity check of `callwarden recording verify`
over HTTP, for whoever may play the recording (`recordings.play` on it), audited.

It runs `callwarden.recording.verify.verify_recording` (the manifest's Ed25519 signature, every
chunk's authentication and digest, the whole file's digest, completeness, the WAV digests) on
the sealed file the catalogue names, with the node's signing key, in a worker thread. A
recording that fails a check answers 200 with `verified: false` and the check that failed (the
check ran; its answer is "no"); one that cannot be checked at all (its key destroyed by a purge,
no file, no node key) answers 409 `recording_not_verifiable`. A missing manifest is a failed
check: a sealed recording always has one. The audit entry (`recording.verify`) names the
outcome: `success` when verified, `failed` otherwise. When verified, the answer carries the
manifest's monitoring sessions, which the recordings page marks on the timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callwarden.domain.errors import InvalidState, JsonValue
from callwarden.domain.ids import RecordingId
from callwarden.recording.commands import RecordingCommandError, RecordingTools
from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.manifest import SignedManifest
from callwarden.recording.models import Recording, RecordingStatus
from callwarden.recording.verify import VerificationResult, verify_recording
from callwarden.security.audit import AuditEvent, AuditOutcome
from callwarden.web.access import Caller
from callwarden.web.schemas import ResponseModel

logger = logging.getLogger(__name__)

VERIFY_ACTION = "recording.verify"
SAMPLE_RATE = 8000
MANIFEST_MISSING = "the signed manifest is missing"
FILE_MISSING = "the sealed file is missing"
UNCHECKABLE = frozenset({RecordingStatus.RECORDING, RecordingStatus.FAILED, RecordingStatus.PURGED})


class RecordingNotVerifiable(InvalidState):
    default_error_id = "recording_not_verifiable"


class MonitoringSessionOut(ResponseModel):
    supervisor_id: int | None
    started_at: datetime
    ended_at: datetime | None
    modes: list[str]


class VerificationOut(ResponseModel):
    """The check's answer: `verified`, and either what was checked or the first failure."""

    recording_id: str
    verified: bool
    error: str | None
    checks: list[str]
    complete: bool | None
    chunks: int | None
    duration_seconds: float | None
    file_sha256: str | None
    signer_fingerprint: str | None
    monitoring_sessions: list[MonitoringSessionOut]


@dataclass(frozen=True)
class Checked:
    result: VerificationResult | None
    error: str | None
    monitoring: Sequence[Mapping[str, Any]]


def check(tools: RecordingTools, recording: Recording) -> Checked:
    """Verify one catalogued recording (blocking: run it in a worker thread). The answer names
    no path of the node: what could not be read is logged here."""
    if recording.status in UNCHECKABLE or recording.wrapped_key is None:
        raise RecordingNotVerifiable(
            f"recording {recording.id} is {recording.status.value}: nothing sealed to check"
        )
    try:
        with tools.opened(recording.id) as (location, data_key, signed):
            public_key = tools.signing_key().public_key()
            try:
                result = verify_recording(
                    location.path,
                    recording.id,
                    data_key,
                    signed,
                    public_key,
                    recording.manifest_digest,
                )
            except RecordingCorrupted as error:
                logger.error("recording %s failed verification: %s", recording.id, error.reason)
                return Checked(None, error.reason, ())
            return Checked(result, None, _monitoring(signed))
    except RecordingCommandError as error:
        logger.error("recording %s cannot be verified: %s", recording.id, error)
        text = str(error)
        if "no manifest" in text or "no file" in text:
            missing = MANIFEST_MISSING if "no manifest" in text else FILE_MISSING
            return Checked(None, missing, ())
        raise RecordingNotVerifiable(
            f"recording {recording.id} cannot be verified on this node"
        ) from None


def _monitoring(signed: SignedManifest) -> Sequence[Mapping[str, Any]]:
    sessions = signed.fields().get("monitoring_sessions")
    return [entry for entry in sessions or () if isinstance(entry, Mapping)]


def verification_out(recording_id: RecordingId, checked: Checked) -> VerificationOut:
    result = checked.result
    return VerificationOut(
        recording_id=recording_id,
        verified=result is not None,
        error=checked.error,
        checks=[] if result is None else list(result.checks),
        complete=None if result is None else result.complete,
        chunks=None if result is None else result.chunk_count,
        duration_seconds=None if result is None else result.duration_samples / SAMPLE_RATE,
        file_sha256=None if result is None else result.file_sha256,
        signer_fingerprint=None if result is None else result.signer_fingerprint,
        monitoring_sessions=[
            MonitoringSessionOut(
                supervisor_id=entry.get("supervisor_id"),
                started_at=entry["started_at"],
                ended_at=entry.get("ended_at"),
                modes=[str(mode.get("mode")) for mode in entry.get("modes") or ()],
            )
            for entry in checked.monitoring
            if entry.get("started_at")
        ],
    )


def verify_event(caller: Caller, recording_id: RecordingId, checked: Checked) -> AuditEvent:
    details: dict[str, JsonValue] = {
        "verified": checked.result is not None,
        "session": int(caller.session.id),
    }
    if checked.error is not None:
        details["error"] = checked.error
    return AuditEvent(
        action=VERIFY_ACTION,
        actor=caller.actor,
        outcome=AuditOutcome.SUCCESS if checked.result is not None else AuditOutcome.FAILED,
        object_kind="recording",
        object_id=recording_id,
        source_address=caller.source_address,
        details=details,
    )
