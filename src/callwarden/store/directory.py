"""The in-memory directory the SIP and call layers read instead of the database.

`UserDirectory.reload()` reads every team, role, user, trunk and queue in one transaction and
swaps in a new immutable `DirectorySnapshot`; readers holding the old snapshot keep a consistent
view. Reload after provisioning or any configuration change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from callwarden.domain.directory import DirectorySnapshot
from callwarden.store.repositories import (
    QueueRepository,
    RoleRepository,
    TeamRepository,
    TrunkRepository,
    UserRepository,
)
from callwarden.store.schema import BreakReasonRow

logger = logging.getLogger(__name__)


def load_snapshot(session: Session) -> DirectorySnapshot:
    """Read the whole configuration through `session`."""
    return DirectorySnapshot(
        teams=TeamRepository(session).list_all(),
        roles=RoleRepository(session).list_all(),
        users=UserRepository(session).list_all(),
        trunks=TrunkRepository(session).list_all(),
        queues=QueueRepository(session).list_all(),
        break_reasons=session.scalars(
            select(BreakReasonRow.code).order_by(BreakReasonRow.position)
        ).all(),
    )


class UserDirectory:
    """Holds the current snapshot; empty (nobody known, nothing allowed) until `reload()`."""

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory
        self._snapshot = DirectorySnapshot()
        self._listeners: list[Callable[[DirectorySnapshot], None]] = []

    def on_reload(self, listener: Callable[[DirectorySnapshot], None]) -> None:
        """Call `listener` with each new snapshot, in the reloading thread, after the swap."""
        self._listeners.append(listener)

    @property
    def snapshot(self) -> DirectorySnapshot:
        return self._snapshot

    def reload(self) -> DirectorySnapshot:
        """Read the configuration again and make it current; returns the new snapshot."""
        with self._session_factory() as session, session.begin():
            snapshot = load_snapshot(session)
        self._snapshot = snapshot
        logger.info("directory loaded: %r", snapshot)
        for listener in list(self._listeners):
            try:
                listener(snapshot)
            except Exception:  # one listener must not stop the others or the reload
                logger.exception("directory reload listener failed")
        return snapshot
