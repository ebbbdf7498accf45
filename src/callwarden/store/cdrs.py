"""The call detail record store: written once per ended call, read by reports and the web.

`add_many` writes a batch in one round of INSERTs, for a writer that buffers CDRs off the call
path and flushes them together.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, insert, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from callwarden.domain.cdr import CallDirection, Cdr, Disposition, NewCdr
from callwarden.domain.errors import NotFound, ValidationFailed
from callwarden.domain.ids import CallId, CdrId, QueueId, TeamId, UserId
from callwarden.store.mapping import cdr_from_row, cdr_values, leg_values, normalise_cdr, stored_cdr
from callwarden.store.schema import CdrLegRow, CdrRow, QueueRow, TeamRow, TrunkRow, UserRow

MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, kw_only=True)
class CdrQuery:
    """Filters of `CdrRepository.list`; all given filters must hold. Newest first.

    `since` is inclusive and `until` exclusive, both on `started_at`. `user_id` matches the
    caller or the callee. `team_ids` limits to CDRs of those teams (a supervisor's scope).
    """

    since: datetime | None = None
    until: datetime | None = None
    user_id: UserId | None = None
    queue_id: QueueId | None = None
    team_ids: Collection[TeamId] | None = None
    direction: CallDirection | None = None
    disposition: Disposition | None = None
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise ValidationFailed(
                f"limit must be between 1 and {MAX_PAGE_SIZE}", details={"field": "limit"}
            )
        if self.offset < 0:
            raise ValidationFailed("offset must not be negative", details={"field": "offset"})
        for name, value in (("since", self.since), ("until", self.until)):
            if value is not None and value.utcoffset() is None:
                raise ValidationFailed(f"{name} must be timezone-aware", details={"field": name})


def _conditions(query: CdrQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.since is not None:
        conditions.append(CdrRow.started_at >= query.since)
    if query.until is not None:
        conditions.append(CdrRow.started_at < query.until)
    if query.user_id is not None:
        conditions.append(
            or_(CdrRow.caller_user_id == query.user_id, CdrRow.callee_user_id == query.user_id)
        )
    if query.queue_id is not None:
        conditions.append(CdrRow.queue_id == query.queue_id)
    if query.team_ids is not None:
        conditions.append(CdrRow.team_id.in_(list(query.team_ids)))
    if query.direction is not None:
        conditions.append(CdrRow.direction == query.direction)
    if query.disposition is not None:
        conditions.append(CdrRow.disposition == query.disposition)
    return conditions


_Id = TypeVar("_Id", bound=int)


def _known_or_none(value: _Id | None, known: set[int]) -> _Id | None:
    if value is None or value not in known:
        return None
    return value


def _all_known(
    cdr: NewCdr, users: set[int], trunks: set[int], queues: set[int], teams: set[int]
) -> bool:
    pairs = [
        (cdr.caller_user_id, users),
        (cdr.callee_user_id, users),
        (cdr.trunk_id, trunks),
        (cdr.queue_id, queues),
        (cdr.team_id, teams),
        *((leg.user_id, users) for leg in cdr.legs),
        *((leg.trunk_id, trunks) for leg in cdr.legs),
    ]
    return all(value is None or value in known for value, known in pairs)


def _cleared(
    cdr: NewCdr, users: set[int], trunks: set[int], queues: set[int], teams: set[int]
) -> NewCdr:
    return replace(
        cdr,
        caller_user_id=_known_or_none(cdr.caller_user_id, users),
        callee_user_id=_known_or_none(cdr.callee_user_id, users),
        trunk_id=_known_or_none(cdr.trunk_id, trunks),
        queue_id=_known_or_none(cdr.queue_id, queues),
        team_id=_known_or_none(cdr.team_id, teams),
        legs=tuple(
            replace(
                leg,
                user_id=_known_or_none(leg.user_id, users),
                trunk_id=_known_or_none(leg.trunk_id, trunks),
            )
            for leg in cdr.legs
        ),
    )


class CdrRepository:
    """CDRs inside the caller's session (flushes, never commits)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, cdr: NewCdr) -> Cdr:
        return self.add_many([cdr])[0]

    def add_many(self, cdrs: Iterable[NewCdr]) -> Sequence[Cdr]:
        """Insert `cdrs` with one multi-row INSERT per table; returns them as stored."""
        normalised = [normalise_cdr(cdr) for cdr in cdrs]
        if not normalised:
            return []
        self._session.flush()
        normalised = self._without_dangling_links(normalised)
        statement = insert(CdrRow).returning(CdrRow.id, sort_by_parameter_order=True)
        ids = self._session.scalars(statement, [cdr_values(cdr) for cdr in normalised]).all()
        legs = [
            leg_values(cdr_id, position, leg)
            for cdr_id, cdr in zip(ids, normalised, strict=True)
            for position, leg in enumerate(cdr.legs)
        ]
        if legs:
            self._session.execute(insert(CdrLegRow), legs)
        return [stored_cdr(CdrId(cdr_id), cdr) for cdr_id, cdr in zip(ids, normalised, strict=True)]

    def _known(self, column: InstrumentedAttribute[int], ids: Iterable[int | None]) -> set[int]:
        wanted = {value for value in ids if value is not None}
        if not wanted:
            return set()
        return set(self._session.scalars(select(column).where(column.in_(wanted))))

    def _without_dangling_links(self, cdrs: list[NewCdr]) -> list[NewCdr]:
        """Clear links to users, queues, trunks and teams deleted while the call went on.

        A CDR outlives what it names (the foreign keys say ON DELETE SET NULL); a record that
        arrives after its operator was deleted is stored the same way instead of failing the
        whole batch.
        """
        legs = [leg for cdr in cdrs for leg in cdr.legs]
        users = self._known(
            UserRow.id,
            {cdr.caller_user_id for cdr in cdrs}
            | {cdr.callee_user_id for cdr in cdrs}
            | {leg.user_id for leg in legs},
        )
        trunks = self._known(
            TrunkRow.id, {cdr.trunk_id for cdr in cdrs} | {leg.trunk_id for leg in legs}
        )
        queues = self._known(QueueRow.id, {cdr.queue_id for cdr in cdrs})
        teams = self._known(TeamRow.id, {cdr.team_id for cdr in cdrs})
        return [
            cdr
            if _all_known(cdr, users, trunks, queues, teams)
            else _cleared(cdr, users, trunks, queues, teams)
            for cdr in cdrs
        ]

    def get(self, cdr_id: CdrId) -> Cdr:
        row = self._session.get(CdrRow, cdr_id, options=[selectinload(CdrRow.legs)])
        if row is None:
            raise NotFound(f"call record {cdr_id} not found", error_id="cdr_not_found")
        return cdr_from_row(row)

    def list(self, query: CdrQuery | None = None) -> Sequence[Cdr]:
        """The CDRs matching `query` (default: the 100 newest), newest first."""
        wanted = query if query is not None else CdrQuery()
        statement = (
            select(CdrRow)
            .where(*_conditions(wanted))
            .options(selectinload(CdrRow.legs))
            .order_by(CdrRow.started_at.desc(), CdrRow.id.desc())
            .limit(wanted.limit)
            .offset(wanted.offset)
        )
        return [cdr_from_row(row) for row in self._session.scalars(statement)]

    def for_call(self, call_id: CallId) -> Sequence[Cdr]:
        """Every CDR written for `call_id` (normally one), newest first."""
        statement = (
            select(CdrRow)
            .where(CdrRow.call_id == call_id)
            .options(selectinload(CdrRow.legs))
            .order_by(CdrRow.id.desc())
        )
        return [cdr_from_row(row) for row in self._session.scalars(statement)]
