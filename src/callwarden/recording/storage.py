"""Where sealed recording files live: a storage backend, addressed by relative storage keys.

The files are ciphertext (the sealed container); a backend never sees a data key, and the
wrapped keys live in the database, never beside the objects. `LocalStorage` keeps them under
one directory (`<data_dir>/recordings/` by default) with owner-only permissions;
`callwarden.recording.storage_s3.S3Storage` keeps them in an S3-compatible object store shared
by several nodes.

A recording's life in a backend: `path_for_writing` (the writer appends to that local path;
a remote backend ships what is appended as it goes), the manifest is written beside it, then
`commit` (a remote backend stores the whole file and its manifest as objects and lets go of the
local copy). After a crash `reclaim` gives a local path holding what the backend kept (for
recovery to cut a torn tail and seal a manifest over), then `commit` again.

A storage key is a relative path of plain segments (`2026/03/02/<recording id>.cwr`, see
`recording_storage_key`); anything else (`..`, an absolute path, a backslash, a NUL) is refused
before it reaches the file system.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from callwarden.recording.manifest import manifest_paths
from callwarden.recording.models import require_storage_key

logger = logging.getLogger(__name__)

DIRECTORY_MODE = 0o700
FILE_SUFFIX = ".cwr"
MANIFEST_SUFFIXES = (".manifest.json", ".manifest.sig")  # of manifest_paths, in that order


def recording_storage_key(recording_id: str, started_at: datetime) -> str:
    """`YYYY/MM/DD/<recording id>.cwr`, by the recording's start in UTC."""
    return require_storage_key(f"{started_at:%Y/%m/%d}/{recording_id}{FILE_SUFFIX}")


def path_under(root: Path, storage_key: str) -> Path:
    """`root / storage_key`, refusing a key that is not a plain relative path or that leaves
    `root` (through a symbolic link too)."""
    path = root / require_storage_key(storage_key)
    if root.resolve() not in path.resolve().parents:
        raise ValueError(f"storage key {storage_key!r} leaves {root}")
    return path


class RecordingStorage(Protocol):
    """A place for sealed recording files."""

    def path_for_writing(self, storage_key: str) -> Path:
        """A local path the sealed writer creates the file at (its directory exists)."""
        ...

    def local_copy(self, storage_key: str) -> contextlib.AbstractContextManager[Path]:
        """A local path of the sealed file for the reader, for the duration of the block (the
        file itself for a local backend; a ciphertext copy for a remote one)."""
        ...

    def commit(self, storage_key: str) -> None:
        """The writer closed the file at `path_for_writing(storage_key)` and its manifest is
        beside it: make both durable in the backend (a no-op for a local directory)."""
        ...

    def reclaim(self, storage_key: str) -> Path | None:
        """After a crash: a local path holding as much of the sealed file as the backend kept
        (None if nothing), to be cut, sealed and then `commit`ted by crash recovery."""
        ...

    def finish_pending(self) -> list[str]:
        """At start-up: finish the commits a stopped node or a refusing store left undone;
        the storage keys finished."""
        ...

    def exists(self, storage_key: str) -> bool: ...

    def delete(self, storage_key: str) -> bool:
        """Remove the file (and its manifest); False if it was already gone (idempotent)."""
        ...


class LocalStorage:
    """Sealed files in a directory of this machine (or a shared mount)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> LocalStorage:
        return cls(data_dir / "recordings")

    def _path(self, storage_key: str) -> Path:
        return path_under(self.root, storage_key)

    def path_for_writing(self, storage_key: str) -> Path:
        path = self._path(storage_key)
        self.root.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
        return path

    @contextlib.contextmanager
    def local_copy(self, storage_key: str) -> Iterator[Path]:
        path = self._path(storage_key)
        if not path.is_file():
            raise FileNotFoundError(f"no sealed file for storage key {storage_key!r}")
        yield path

    def commit(self, storage_key: str) -> None:
        """Nothing to do: the writer and the manifest synced the file where it stays."""
        self._path(storage_key)

    def reclaim(self, storage_key: str) -> Path | None:
        path = self._path(storage_key)
        return path if path.is_file() else None

    def finish_pending(self) -> list[str]:
        """Nothing is ever pending: `commit` has nothing to do."""
        return []

    def exists(self, storage_key: str) -> bool:
        return self._path(storage_key).is_file()

    def delete(self, storage_key: str) -> bool:
        path = self._path(storage_key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        for manifest in manifest_paths(path):
            manifest.unlink(missing_ok=True)
        _sync_directory(path.parent)
        logger.info("deleted sealed recording file %s", storage_key)
        return True

    def close(self) -> None:
        """Nothing to let go of (an object store's backend stops its shipping thread)."""


def _sync_directory(directory: Path) -> None:
    """Make a deletion durable (the directory entry is gone after a crash too)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
