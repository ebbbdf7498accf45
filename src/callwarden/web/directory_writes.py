"""Changes to users, roles, teams, queues and trunks through the provisioning rules, audited in
the same transaction.

The API changes the configuration the way the provisioning file does (the same checks of
references, numbers and team nesting, the same hashing of web passwords and HA1s of SIP
passwords), so there is one set of rules. Unlike a file run, each API change is one small
document applied inside a transaction the web layer opens itself, so that it can check
preconditions (the object exists, the caller may give the role), apply, read the result back
and append the audit entry (with before and after) before anything is committed: a change is
recorded, or it does not happen. The directory snapshot is reloaded after each change, so the
next request is judged by the new configuration.

Most changes have one of three shapes, written once here for every kind of object
(`ObjectKind`): `Create` (409 `{kind}_name_taken`, audited `{kind}.create` with the object
after), `Update` (404 if the object is gone, audited `{kind}.update` with what changed, before
and after) and `Delete` (audited `{kind}.delete` with the object before). A refusal that only
the change can decide (a grant the caller does not hold) is audited as a permission denial
(`run_or_audit_refusal`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import Conflict, Forbidden, JsonValue, ValidationFailed
from callwarden.domain.policy import not_found
from callwarden.provisioning.apply import Applier
from callwarden.provisioning.checks import cross_reference_problems
from callwarden.provisioning.document import ProvisioningDocument, Spec
from callwarden.provisioning.errors import Problem
from callwarden.provisioning.source import Locator
from callwarden.provisioning.state import StoredState, TargetState
from callwarden.security import audit
from callwarden.security.audit import AuditAction, AuditEvent, AuditOutcome
from callwarden.security.clock import Clock
from callwarden.security.passwords import PasswordHasher
from callwarden.sip.digest import compute_ha1
from callwarden.store.database import WRITE_TRANSACTION
from callwarden.web.access import Caller
from callwarden.web.admin_api import Identified
from callwarden.web.errors import validation_problems
from callwarden.web.services import DirectoryProvider, WebServices

logger = logging.getLogger(__name__)

_Result = TypeVar("_Result", covariant=True)
_Value = TypeVar("_Value")
_Identified = TypeVar("_Identified", bound="Identified")
_Row = TypeVar("_Row", bound="StoredRow")
_View = TypeVar("_View", bound="ObjectView")

SOURCE_NAME = "request"


class DirectoryChange(Protocol[_Result]):
    """One change: `prepare` checks preconditions against what is stored and returns the
    document to apply; `finish` reads the outcome back and says what to audit."""

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument: ...

    def finish(self, session: Session) -> tuple[_Result, Sequence[AuditEvent]]: ...


def _field_of(problem: Problem) -> str:
    """`users[0].team` -> `team`; a problem about the object as a whole names its section."""
    path = problem.path
    head, _, rest = path.partition("].")
    return rest if rest else (head.partition("[")[0] or "body")


def problems_error(problems: Sequence[Problem]) -> ValidationFailed:
    """What the API answers for problems the provisioning checks found (422, fields named)."""
    listed: list[JsonValue] = [
        {"location": "body", "field": _field_of(problem), "problem": problem.message}
        for problem in problems
    ]
    first = problems[0]
    return ValidationFailed(
        f"{_field_of(first)}: {first.message}",
        details={"field": _field_of(first), "problems": listed},
    )


def invalid_spec(error: PydanticValidationError) -> ValidationFailed:
    """A provisioning spec refused by its own rules (e.g. a role granting every permission)."""
    problems = validation_problems(
        [{**item, "loc": ("body", *item.get("loc", ()))} for item in error.errors()]
    )
    first = problems[0]
    return ValidationFailed(
        f"{first['field']}: {first['problem']}",
        details={"field": first["field"], "problems": list(problems)},
    )


class DirectoryWriter:
    """Runs `DirectoryChange`s: one write transaction each, audited inside it."""

    def __init__(
        self,
        database: Callable[[], Session],
        directory: DirectoryProvider,
        *,
        realm: str,
        hasher: PasswordHasher,
        clock: Clock,
    ) -> None:
        self._database = database
        self._directory = directory
        self._realm = realm
        self._hasher = hasher
        self._clock = clock

    def write(self, change: DirectoryChange[_Result]) -> _Result:
        """Apply `change` (blocking: call it from a worker thread)."""
        with self._database() as session:
            try:
                session.connection(execution_options=WRITE_TRANSACTION)
                stored = StoredState(session)
                document = change.prepare(session, stored)
                target = TargetState(document, stored)
                problems = cross_reference_problems(target, Locator(SOURCE_NAME, None))
                if problems:
                    raise problems_error(problems)
                Applier(
                    session,
                    target,
                    realm=self._realm,
                    hasher=self._hasher,
                    compute_ha1=compute_ha1,
                ).run()
                session.flush()
                result, events = change.finish(session)
                for event in events:
                    audit.append(session, event, self._clock)
                session.commit()
            except PydanticValidationError as error:
                raise invalid_spec(error) from None
            except IntegrityError as error:
                session.rollback()
                logger.warning("directory change refused by the database: %s", error.orig)
                raise Conflict(
                    "the change clashes with the stored configuration (changed meanwhile?); "
                    "nothing was changed",
                    error_id="directory_conflict",
                ) from None
        self._directory.reload()
        return result

    async def run(self, change: DirectoryChange[_Value]) -> _Value:
        """Apply `change` from a worker thread."""
        return await asyncio.to_thread(self.write, change)

    async def run_or_audit_refusal(
        self, change: DirectoryChange[_Value], caller: Caller, kind: str, services: WebServices
    ) -> _Value:
        """Apply `change`; a refusal the change itself decides (403, a grant the caller does
        not hold) is audited as a permission denial of `kind` before it is raised."""
        try:
            return await self.run(change)
        except Forbidden as refusal:
            object_id = None if caller.target is None else caller.target.object_id
            await services.audit.record_quietly(denial(caller, refusal, kind, object_id))
            raise


def denial(
    caller: Caller, refusal: Forbidden, kind: str, object_id: int | str | None
) -> AuditEvent:
    """The audit entry of a refusal decided by the change itself (a grant not held)."""
    return AuditEvent(
        action=AuditAction.PERMISSION_DENIED,
        actor=caller.actor,
        outcome=AuditOutcome.DENIED,
        object_kind=kind,
        object_id=object_id,
        source_address=caller.source_address,
        details={"decision": refusal.error_id, **refusal.details},
    )


def changes(
    before: Mapping[str, JsonValue], after: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    """The audit details of an update: the values that changed, before and after."""
    return {
        "before": {key: value for key, value in before.items() if after.get(key) != value},
        "after": {key: value for key, value in after.items() if before.get(key) != value},
    }


class StoredRow(Identified, Protocol):
    @property
    def name(self) -> str: ...


class ObjectView(Identified, Protocol):
    def model_dump(self, *, mode: str = ..., by_alias: bool = ...) -> dict[str, Any]: ...


def row_by_id(rows: Iterable[_Identified], object_id: int, what: str) -> _Identified:
    """The stored row of `object_id`; 404 `what {object_id}` (as the policy says it) if none."""
    for row in rows:
        if row.id == object_id:
            return row
    raise not_found(f"{what} {object_id}")


@dataclass(frozen=True)
class ObjectKind(Generic[_Row, _View]):
    """How the objects of one kind of the configuration (queues, trunks, teams, roles) are
    found, written and audited: `name` is the audit's object kind (`queue`, with the actions
    `queue.create`, `queue.update`, `queue.delete`) and is said in messages; the provisioning
    document lists such objects under its plural (`queues`), each a `spec`."""

    name: str
    spec: type[Spec]
    view: Callable[[_Row], _View]
    by_alias: bool = False

    def rows(self, stored: StoredState) -> Mapping[str, _Row]:
        rows: Mapping[str, _Row] = getattr(stored, f"{self.name}s")
        return rows

    def document(self, data: dict[str, Any]) -> ProvisioningDocument:
        """The document of one object with these keys, checked by the spec's own rules."""
        spec = self.spec.model_validate(data)
        return ProvisioningDocument.model_validate({f"{self.name}s": [spec]})

    def load(self, session: Session, name: str) -> _View:
        """The object `name` read back after the change is flushed."""
        session.expire_all()
        return self.view(self.rows(StoredState(session))[name])

    def details(self, view: _View) -> dict[str, JsonValue]:
        return dict(view.model_dump(mode="json", by_alias=self.by_alias))

    def stored(self, stored: StoredState, object_id: int) -> _Row:
        return row_by_id(self.rows(stored).values(), object_id, self.name)

    def succeeded(
        self, caller: Caller, verb: str, object_id: int, details: Mapping[str, JsonValue]
    ) -> AuditEvent:
        return caller.succeeded(AuditAction(f"{self.name}.{verb}"), self.name, object_id, details)


class DirectoryAdmin:
    """The use cases of an admin API over the directory: reads from its snapshot, changes
    through the writer."""

    def __init__(self, services: WebServices, writer: DirectoryWriter) -> None:
        self._services = services
        self._writer = writer

    @property
    def _snapshot(self) -> DirectorySnapshot:
        return self._services.directory.snapshot


@dataclass
class Create(Generic[_Row, _View]):
    """A new object named `name`; `data(stored)` gives the rest of its spec (422 on unknown
    references). 409 `{kind}_name_taken` if the name is."""

    kind: ObjectKind[_Row, _View]
    caller: Caller
    name: str
    data: Callable[[StoredState], dict[str, Any]]

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        name, kind = self.name, self.kind.name
        if name in self.kind.rows(stored):
            raise Conflict(f"{kind} name {name!r} is taken", error_id=f"{kind}_name_taken")
        return self.kind.document({"name": name, **self.data(stored)})

    def finish(self, session: Session) -> tuple[_View, Sequence[AuditEvent]]:
        view = self.kind.load(session, self.name)
        after = self.kind.details(view)
        return view, [self.kind.succeeded(self.caller, "create", view.id, {"after": after})]


@dataclass
class Update(Generic[_Row, _View]):
    """A change to the object `object_id`: `data(stored, row)` gives its spec (its name and what
    changes); audited with what changed, before and after, and the `extra` details."""

    kind: ObjectKind[_Row, _View]
    caller: Caller
    object_id: int
    data: Callable[[StoredState, _Row], dict[str, Any]]
    extra: Mapping[str, JsonValue] = field(default_factory=dict)
    name: str = ""
    before: dict[str, JsonValue] = field(default_factory=dict)

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        row = self.kind.stored(stored, self.object_id)
        self.name = row.name
        self.before = self.kind.details(self.kind.view(row))
        return self.kind.document(self.data(stored, row))

    def finish(self, session: Session) -> tuple[_View, Sequence[AuditEvent]]:
        view = self.kind.load(session, self.name)
        details = {**changes(self.before, self.kind.details(view)), **self.extra}
        return view, [self.kind.succeeded(self.caller, "update", view.id, details)]


@dataclass
class Delete(Generic[_Row, _View]):
    """The removal of the object `object_id`, once `check(stored, row)` has let it (it raises
    to refuse); audited with the object as it was."""

    kind: ObjectKind[_Row, _View]
    caller: Caller
    object_id: int
    check: Callable[[StoredState, _Row], None] = lambda stored, row: None
    before: dict[str, JsonValue] = field(default_factory=dict)

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        row = self.kind.stored(stored, self.object_id)
        self.check(stored, row)
        self.before = self.kind.details(self.kind.view(row))
        session.delete(row)
        session.flush()
        return ProvisioningDocument()

    def finish(self, session: Session) -> tuple[None, Sequence[AuditEvent]]:
        event = self.kind.succeeded(self.caller, "delete", self.object_id, {"before": self.before})
        return None, [event]
