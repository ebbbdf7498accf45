"""Request and response models of the role routes. Grants are `permission:scope` texts
(`recordings.play:team`), as in the provisioning file."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from callwarden.domain.models import Role
from callwarden.domain.permissions import Permission
from callwarden.provisioning.document import Description, GrantText, Name, PatternText
from callwarden.web.schemas import MAX_PAGE_SIZE, RequestModel, ResponseModel

MAX_GRANTS = len(Permission)


class RoleView(ResponseModel):
    id: int
    name: str
    description: str
    builtin: bool
    grants: list[str]
    outbound_patterns: list[str]

    @classmethod
    def of(cls, role: Role) -> RoleView:
        order = {permission: index for index, permission in enumerate(Permission)}
        return cls(
            id=role.id,
            name=role.name,
            description=role.description,
            builtin=role.builtin,
            grants=[str(g) for g in sorted(role.grants, key=lambda g: order[g.permission])],
            outbound_patterns=[pattern.text for pattern in role.outbound_patterns],
        )


class NewRole(RequestModel):
    name: Name
    description: Description = ""
    grants: Annotated[list[GrantText], Field(max_length=MAX_GRANTS)] = Field(default_factory=list)
    outbound_patterns: Annotated[list[PatternText], Field(max_length=100)] = Field(
        default_factory=list
    )


class GrantsChange(RequestModel):
    """The role's grants, whole (like the file's `grants` list)."""

    grants: Annotated[list[GrantText], Field(max_length=MAX_GRANTS)]


class PatternsChange(RequestModel):
    """The role's outbound allow-list, whole: the dial patterns its members may call out to
    (`_X.`, `0X.`, `+81.`; docs/provisioning.md). Empty: no outbound calls."""

    outbound_patterns: Annotated[list[PatternText], Field(max_length=100)]


class RoleListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    builtin: bool | None = None
    sort: Literal["name", "id"] = "name"
    order: Literal["asc", "desc"] = "asc"
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


RoleListParameters = Annotated[RoleListQuery, Query()]
