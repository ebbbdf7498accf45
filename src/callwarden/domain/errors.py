"""Domain errors: each carries a stable, machine-readable `error_id`.

The `error_id` is part of the public contract (the web layer returns it as
`{"error_id", "message", "details"}` and clients may switch on it); the message is for people
and may change. One module per boundary maps these classes to that boundary's status codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, TypeAlias

JsonValue: TypeAlias = (
    str | int | float | bool | Sequence["JsonValue"] | Mapping[str, "JsonValue"] | None
)


class DomainError(Exception):
    """Base class of every typed error the model raises."""

    default_error_id: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        error_id: str | None = None,
        details: Mapping[str, JsonValue] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_id = error_id if error_id is not None else self.default_error_id
        self.details: Mapping[str, JsonValue] = dict(details) if details is not None else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(error_id={self.error_id!r}, message={self.message!r})"


class NotFound(DomainError):  # noqa: N818 (the names are the API)
    """The object does not exist, or the caller may not know that it exists."""

    default_error_id = "not_found"


class Forbidden(DomainError):  # noqa: N818 (the names are the API)
    """The caller may see the object but not do this to it."""

    default_error_id = "forbidden"


class Conflict(DomainError):  # noqa: N818 (the names are the API)
    """The change clashes with existing state (a duplicate name, number or extension)."""

    default_error_id = "conflict"


class InvalidState(DomainError):  # noqa: N818 (the names are the API)
    """The object is not in a state that allows this action."""

    default_error_id = "invalid_state"


class ValidationFailed(DomainError):  # noqa: N818 (the names are the API)
    """Input from outside is malformed; `details` names the fields at fault."""

    default_error_id = "validation_failed"
