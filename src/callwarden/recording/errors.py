"""Errors of the sealed recorder: each carries a stable ``error_id`` (see ``domain.errors``).

``RecordingCorrupted`` is raised for every integrity failure (a flipped byte, a chunk moved,
swapped or taken from another recording, a file cut inside a chunk, an edited manifest); its
message names what failed. A file that simply ends after a whole chunk is *incomplete*, not
corrupted, and is reported by the reader, not raised.
"""

from __future__ import annotations

from callwarden.domain.errors import DomainError, InvalidState, NotFound


class RecordingCorrupted(DomainError):  # noqa: N818 (the names are the API)
    """A sealed recording or its manifest failed an integrity check."""

    default_error_id = "recording_corrupted"

    def __init__(self, recording_id: str, reason: str) -> None:
        super().__init__(
            f"recording corrupted: {recording_id}: {reason}",
            details={"recording_id": recording_id, "reason": reason},
        )
        self.recording_id = recording_id
        self.reason = reason


class RecordingWriteFailed(DomainError):  # noqa: N818 (the names are the API)
    """Writing a chunk failed (disk full, I/O error); what was written before stays readable."""

    default_error_id = "recording_write_failed"

    def __init__(self, recording_id: str, reason: str) -> None:
        super().__init__(
            f"recording write failed: {recording_id}: {reason}",
            details={"recording_id": recording_id, "reason": reason},
        )
        self.recording_id = recording_id
        self.reason = reason


class KeyUnavailable(NotFound):
    """A data key cannot be unwrapped: its key-encryption key is gone or the wrapped key is bad."""

    default_error_id = "recording_key_unavailable"


class RecorderStateError(InvalidState):
    """A writer was used in a state that does not allow the call (closed, failed)."""

    default_error_id = "recorder_invalid_state"
