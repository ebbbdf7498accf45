"""Sealed multitrack recording: key ring, sealed container, manifest, verification, export.

See ``docs/recording.md`` for the file format and the cryptography. The entry points:

* :mod:`~callwarden.recording.keyring`: ``new_data_key()``, ``FileKeyRing``, ``WrappedKey``,
  the ``KeyEncryptionService`` protocol, ``rewrap()``;
* :mod:`~callwarden.recording.writer`: ``SealedWriter`` (run on a worker thread);
* :mod:`~callwarden.recording.reader`: ``SealedReader``;
* :mod:`~callwarden.recording.errors`: ``RecordingCorrupted``, ``RecordingWriteFailed``,
  ``KeyUnavailable``, ``RecorderStateError``.
"""

from callwarden.recording.errors import (
    KeyUnavailable,
    RecorderStateError,
    RecordingCorrupted,
    RecordingWriteFailed,
)
from callwarden.recording.keyring import (
    FileKeyRing,
    KeyEncryptionService,
    WrappedKey,
    new_data_key,
    rewrap,
)
from callwarden.recording.reader import SealedReader
from callwarden.recording.writer import PauseInterval, SealedWriter, SealSummary

__all__ = [
    "FileKeyRing",
    "KeyEncryptionService",
    "KeyUnavailable",
    "PauseInterval",
    "RecorderStateError",
    "RecordingCorrupted",
    "RecordingWriteFailed",
    "SealSummary",
    "SealedReader",
    "SealedWriter",
    "WrappedKey",
    "new_data_key",
    "rewrap",
]
