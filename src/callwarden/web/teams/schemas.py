"""Request and response models of the team routes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callwarden.domain.models import Team
from callwarden.provisioning.document import DisplayName, Name
from callwarden.web.schemas import MAX_PAGE_SIZE, ObjectId, RequestModel, ResponseModel


class TeamView(ResponseModel):
    id: int
    name: str
    display_name: str
    parent_id: int | None

    @classmethod
    def of(cls, team: Team) -> TeamView:
        return cls(
            id=team.id, name=team.name, display_name=team.display_name, parent_id=team.parent_id
        )


class NewTeam(RequestModel):
    name: Name
    display_name: DisplayName | None = None
    parent_id: ObjectId | None = None


class TeamPatch(RequestModel):
    """`display_name` and where the team sits (`parent_id`, null for the top level)."""

    display_name: DisplayName | None = None
    parent_id: ObjectId | None = None

    @field_validator("display_name")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null")
        return value

    @model_validator(mode="after")
    def _something_to_change(self) -> TeamPatch:
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        return self


class TeamListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    parent_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    sort: Literal["name", "display_name", "id"] = "name"
    order: Literal["asc", "desc"] = "asc"
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


TeamListParameters = Annotated[TeamListQuery, Query()]
