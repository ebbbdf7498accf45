"""The call detail record store: written once per ended call, read by reports and the web.

`add_many` writes a batch and returns it as stored; `write_many` only writes it, for the writer
that buffers CDRs off the call path and flushes them together. Both insert through statements
SQLAlchemy compiles once per batch and the driver's cursor executes, with the columns' own bind
processors (UTC times, enum values): an ORM bulk insert spent ~5x the CPU per record, in the
node's process, on every call.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Table, insert, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from callwarden.domain.cdr import CallDirection, Cdr, Disposition, NewCdr
from callwarden.domain.errors import NotFound, ValidationFailed
from callwarden.domain.ids import CallId, CdrId, QueueId, TeamId, UserId
from callwarden.store.mapping import cdr_from_row, normalise_cdr, stored_cdr
from callwarden.store.schema import (
    CDR_TEXT_LENGTH,
    NAME_LENGTH,
    URI_LENGTH,
    CallDispositionRow,
    CdrLegRow,
    CdrRow,
    QueueRow,
    TeamRow,
    TrunkRow,
    UserRow,
)

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


_CDR_COLUMNS = (
    "call_id",
    "direction",
    "caller",
    "callee",
    "dialled_number",
    "route_kind",
    "started_at",
    "answered_at",
    "ended_at",
    "duration_ms",
    "disposition",
    "hangup_cause",
    "sip_status",
    "hangup_side",
    "caller_user_id",
    "callee_user_id",
    "queue_id",
    "trunk_id",
    "team_id",
)
_LEG_COLUMNS = (
    "cdr_id",
    "position",
    "role",
    "sip_call_id",
    "uri",
    "started_at",
    "answered_at",
    "ended_at",
    "sip_status",
    "hangup_cause",
    "user_id",
    "trunk_id",
)
_MS = timedelta(milliseconds=1)


def _clip(text: str | None, length: int) -> str | None:
    return text if text is None or len(text) <= length else text[:length]


def _cdr_row(cdr: NewCdr) -> tuple[Any, ...]:
    """The `cdrs` row (in _CDR_COLUMNS order), free text cut to its column (never refused)."""
    return (
        _clip(cdr.call_id, CDR_TEXT_LENGTH),
        cdr.direction,
        _clip(cdr.caller, CDR_TEXT_LENGTH),
        _clip(cdr.callee, CDR_TEXT_LENGTH),
        _clip(cdr.dialled_number, NAME_LENGTH),
        cdr.route_kind,
        cdr.started_at,
        cdr.answered_at,
        cdr.ended_at,
        cdr.duration // _MS,
        cdr.disposition,
        _clip(cdr.hangup_cause, CDR_TEXT_LENGTH),
        cdr.sip_status,
        cdr.hangup_side,
        cdr.caller_user_id,
        cdr.callee_user_id,
        cdr.queue_id,
        cdr.trunk_id,
        cdr.team_id,
    )


def _leg_rows(cdr_id: int, cdr: NewCdr) -> list[tuple[Any, ...]]:
    return [
        (
            cdr_id,
            position,
            leg.role,
            _clip(leg.sip_call_id, CDR_TEXT_LENGTH),
            _clip(leg.uri, URI_LENGTH),
            leg.started_at,
            leg.answered_at,
            leg.ended_at,
            leg.sip_status,
            _clip(leg.hangup_cause, CDR_TEXT_LENGTH),
            leg.user_id,
            leg.trunk_id,
        )
        for position, leg in enumerate(cdr.legs)
    ]


def _table(name: str) -> Table:
    return CdrRow.metadata.tables[name]


class _DriverInsert:
    """An INSERT into ``table`` compiled by SQLAlchemy for the connection's dialect and run on
    the driver's cursor: per row, only the columns' bind processors (UTC times, enum values) and
    the driver call. Driver errors come out as SQLAlchemy's (IntegrityError...) like any other
    statement's."""

    def __init__(
        self,
        connection: Connection,
        table: Table,
        columns: Sequence[str],
        *,
        returning_id: bool,
    ) -> None:
        dialect = connection.dialect
        statement = insert(table)
        if returning_id:
            statement = statement.returning(table.c.id)
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        self._sql = str(compiled)
        processors = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
        ]
        self._processors: list[tuple[int, Callable[[Any], Any]]] = [
            (index, processor) for index, processor in enumerate(processors) if processor
        ]
        position = {name: index for index, name in enumerate(columns)}
        order = compiled.positiontup
        self._order: list[int] | None = None if order is None else [position[n] for n in order]
        self._names = list(columns)
        self._connection = connection
        self._base_error: type[Exception] = dialect.loaded_dbapi.Error

    def _parameters(self, row: tuple[Any, ...]) -> Sequence[Any] | Mapping[str, Any]:
        values = list(row)
        for index, processor in self._processors:
            values[index] = processor(values[index])
        if self._order is not None:
            return [values[index] for index in self._order]
        return dict(zip(self._names, values, strict=True))

    def returning_ids(self, rows: Sequence[tuple[Any, ...]]) -> list[int]:
        """Insert row by row (RETURNING order is only defined per statement): the new ids."""
        cursor = self._connection.connection.cursor()
        try:
            ids: list[int] = []
            for row in rows:
                parameters = self._parameters(row)
                self._run(cursor.execute, parameters)
                row_id = cursor.fetchone()
                if row_id is None:
                    raise DBAPIError(self._sql, parameters, Exception("INSERT returned no id"))
                ids.append(int(row_id[0]))
            return ids
        finally:
            cursor.close()

    def many(self, rows: Sequence[tuple[Any, ...]]) -> None:
        cursor = self._connection.connection.cursor()
        try:
            self._run(cursor.executemany, [self._parameters(row) for row in rows])
        finally:
            cursor.close()

    def _run(self, method: Callable[[str, Any], object], parameters: Any) -> None:
        try:
            method(self._sql, parameters)
        except self._base_error as error:
            raise DBAPIError.instance(self._sql, parameters, error, self._base_error) from error


class CdrRepository:
    """CDRs inside the caller's session (flushes, never commits)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, cdr: NewCdr) -> Cdr:
        return self.add_many([cdr])[0]

    def add_many(self, cdrs: Iterable[NewCdr]) -> Sequence[Cdr]:
        """Insert `cdrs`; returns them as stored (times in UTC, text cut to its column)."""
        normalised = [normalise_cdr(cdr) for cdr in cdrs]
        stored = self._insert(normalised)
        return [
            stored_cdr(CdrId(cdr_id), cdr) for cdr_id, cdr in zip(stored[0], stored[1], strict=True)
        ]

    def write_many(self, cdrs: Iterable[NewCdr]) -> int:
        """Insert `cdrs` without building them back (the CDR writer's path); how many."""
        return len(self._insert(list(cdrs))[0])

    def _insert(self, cdrs: list[NewCdr]) -> tuple[list[int], list[NewCdr]]:
        if not cdrs:
            return [], []
        self._session.flush()
        cdrs = self._without_dangling_links(cdrs)
        connection = self._session.connection()
        ids = _DriverInsert(
            connection, _table(CdrRow.__tablename__), _CDR_COLUMNS, returning_id=True
        )
        cdr_ids = ids.returning_ids([_cdr_row(cdr) for cdr in cdrs])
        legs = [
            row for cdr_id, cdr in zip(cdr_ids, cdrs, strict=True) for row in _leg_rows(cdr_id, cdr)
        ]
        if legs:
            _DriverInsert(
                connection, _table(CdrLegRow.__tablename__), _LEG_COLUMNS, returning_id=False
            ).many(legs)
        return cdr_ids, cdrs

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
        return self._with_codes([row])[0]

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
        return self._with_codes(self._session.scalars(statement).all())

    def for_call(self, call_id: CallId) -> Sequence[Cdr]:
        """Every CDR written for `call_id` (normally one), newest first."""
        statement = (
            select(CdrRow)
            .where(CdrRow.call_id == call_id)
            .options(selectinload(CdrRow.legs))
            .order_by(CdrRow.id.desc())
        )
        return self._with_codes(self._session.scalars(statement).all())

    def _with_codes(self, rows: Sequence[CdrRow]) -> Sequence[Cdr]:
        """The records of `rows`, each with its call's wrap-up disposition code (one query)."""
        call_ids = sorted({row.call_id for row in rows})
        codes: dict[str, str] = {}
        for start in range(0, len(call_ids), MAX_PAGE_SIZE):
            chunk = call_ids[start : start + MAX_PAGE_SIZE]
            found = self._session.execute(
                select(CallDispositionRow.call_id, CallDispositionRow.code).where(
                    CallDispositionRow.call_id.in_(chunk)
                )
            )
            codes.update({call_id: code for call_id, code in found})
        return [cdr_from_row(row, codes.get(row.call_id)) for row in rows]
