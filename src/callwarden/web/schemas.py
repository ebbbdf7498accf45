"""Shared pieces of the request and response models.

Every request model forbids unknown fields (`extra="forbid"`): a field the route does not take,
such as `role` in a user `PATCH`, is a 422 naming it, never silently dropped or, worse, applied
(mass assignment). Values are strict: a number where a string is expected is refused, not
converted. Field types with format rules come from the provisioning file's schema, so the API
and the file accept exactly the same names and numbers.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Item = TypeVar("Item")

ObjectId = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
"""An object id in a request body: a JSON number, 1 to 2^31-1."""

MAX_PAGE_SIZE = 200


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def given(self, name: str) -> bool:
        """Whether the request states `name` (possibly as null)."""
        return name in self.model_fields_set


class ResponseModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class Page(ResponseModel, Generic[Item]):
    items: list[Item]
    total: int
    limit: int
    offset: int
