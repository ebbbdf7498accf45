"""Request and response models of the team routes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from callwarden.domain.models import Team
from callwarden.provisioning.document import DisplayName, Name
from callwarden.web.schemas import (
    MAX_PAGE_SIZE,
    ObjectId,
    PatchModel,
    RequestModel,
    ResponseModel,
    not_null,
)

Transparency = Literal["silent", "screen", "screen_and_tone"]


class TeamView(ResponseModel):
    id: int
    name: str
    display_name: str
    parent_id: int | None
    monitoring_transparency: str | None
    """Whether its operators are told they are monitored; null: as the node's setting."""

    @classmethod
    def of(cls, team: Team) -> TeamView:
        transparency = team.monitoring_transparency
        return cls(
            id=team.id,
            name=team.name,
            display_name=team.display_name,
            parent_id=team.parent_id,
            monitoring_transparency=None if transparency is None else transparency.value,
        )


class NewTeam(RequestModel):
    name: Name
    display_name: DisplayName | None = None
    parent_id: ObjectId | None = None
    monitoring_transparency: Transparency | None = None


class TeamPatch(PatchModel):
    """`display_name`, where the team sits (`parent_id`, null for the top level) and whether
    its operators are told they are monitored (`monitoring_transparency`, null: as the node's
    `monitor_notify_teams` setting)."""

    display_name: DisplayName | None = None
    parent_id: ObjectId | None = None
    monitoring_transparency: Transparency | None = None

    _not_null = field_validator("display_name")(not_null)


class TeamListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    parent_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    sort: Literal["name", "display_name", "id"] = "name"
    order: Literal["asc", "desc"] = "asc"
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


TeamListParameters = Annotated[TeamListQuery, Query()]
