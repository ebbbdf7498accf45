"""Changes to users, roles and teams through the provisioning rules, audited in the same
transaction.

The API changes the configuration the way the provisioning file does (the same checks of
references, numbers and team nesting, the same hashing of web passwords and HA1s of SIP
passwords), so there is one set of rules. Unlike a file run, each API change is one small
document applied inside a transaction the web layer opens itself, so that it can check
preconditions (the object exists, the caller may give the role), apply, read the result back
and append the audit entry (with before and after) before anything is committed: a change is
recorded, or it does not happen. The directory snapshot is reloaded after each change, so the
next request is judged by the new configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callwarden.domain.errors import Conflict, JsonValue, ValidationFailed
from callwarden.provisioning.apply import Applier
from callwarden.provisioning.checks import cross_reference_problems
from callwarden.provisioning.document import ProvisioningDocument
from callwarden.provisioning.errors import Problem
from callwarden.provisioning.source import Locator
from callwarden.provisioning.state import StoredState, TargetState
from callwarden.security import audit
from callwarden.security.audit import AuditEvent
from callwarden.security.clock import Clock
from callwarden.security.passwords import PasswordHasher
from callwarden.sip.digest import compute_ha1
from callwarden.store.database import WRITE_TRANSACTION
from callwarden.web.errors import validation_problems
from callwarden.web.services import DirectoryProvider

logger = logging.getLogger(__name__)

_Result = TypeVar("_Result", covariant=True)

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
