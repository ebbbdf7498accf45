"""Shared pieces of the request and response models.

Every request model forbids unknown fields (`extra="forbid"`): a field the route does not take,
such as `role` in a user `PATCH`, is a 422 naming it, never silently dropped or, worse, applied
(mass assignment). Values are strict: a number where a string is expected is refused, not
converted. Field types with format rules come from the provisioning file's schema, so the API
and the file accept exactly the same names and numbers.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

Item = TypeVar("Item")
_Value = TypeVar("_Value")

ObjectId = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
"""An object id in a request body: a JSON number, 1 to 2^31-1."""

MAX_PAGE_SIZE = 200


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def given(self, name: str) -> bool:
        """Whether the request states `name` (possibly as null)."""
        return name in self.model_fields_set


def not_null(value: _Value) -> _Value:
    """For a field validator: a field a change may leave out, but not set to null."""
    if value is None:
        raise ValueError("cannot be null")
    return value


class PatchModel(RequestModel):
    """A change: it names at least one field, and none of `not_null` as null."""

    not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _something_and_not_null(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        nulls = [key for key in self.not_null if self.given(key) and getattr(self, key) is None]
        if nulls:
            raise ValueError(f"cannot be null: {', '.join(nulls)}")
        return self


class ResponseModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class Page(ResponseModel, Generic[Item]):
    items: list[Item]
    total: int
    limit: int
    offset: int
