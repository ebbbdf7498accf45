"""Reload listeners of the in-memory directory: each reload hands them the new snapshot, so the
node can act on a change at once (a disabled user's phones are unregistered)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from callwarden.domain.directory import DirectorySnapshot
from callwarden.store.directory import UserDirectory


def test_listeners_get_each_new_snapshot_and_a_failing_one_stops_nobody(
    sessions: sessionmaker[Session],
) -> None:
    directory = UserDirectory(sessions)
    seen: list[DirectorySnapshot] = []

    def failing(_snapshot: DirectorySnapshot) -> None:
        raise RuntimeError("listener bug")

    directory.on_reload(failing)
    directory.on_reload(seen.append)
    first = directory.reload()
    second = directory.reload()
    assert seen == [first, second]
    assert directory.snapshot is second
