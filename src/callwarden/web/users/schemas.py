"""Request and response models of the user routes.

A user is changed through three doors, each with its own model, so that no request can reach
a field its route does not own: `UserPatch` (names, team, numbers, credentials), `RoleChange`
(the role, on its own admin route) and the enable/disable routes. The role, `enabled`, the
username and the id are not fields of `UserPatch`: sending them is a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from callwarden.domain.models import User
from callwarden.provisioning.document import Digits, DisplayName, SipPassword, Username, WebPassword
from callwarden.web.schemas import (
    MAX_PAGE_SIZE,
    ObjectId,
    PatchModel,
    RequestModel,
    ResponseModel,
    not_null,
)

USER_SORT_FIELDS = ("username", "display_name", "id", "extension")
UserSortField = Literal["username", "display_name", "id", "extension"]
SortOrder = Literal["asc", "desc"]
USERNAME_PREFIX_PATTERN = r"^[a-z][a-z0-9._-]{0,63}$"
QueryId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class UserView(ResponseModel):
    """A user as the API shows it: never a password hash or an HA1."""

    id: int
    username: str
    display_name: str
    role_id: int
    role: str
    team_id: int | None
    extension: str | None
    enabled: bool
    supervised_team_ids: list[int]
    has_web_password: bool
    has_sip_credentials: bool

    @classmethod
    def of(cls, user: User, role_name: str) -> UserView:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role_id=user.role_id,
            role=role_name,
            team_id=user.team_id,
            extension=user.extension,
            enabled=user.enabled,
            supervised_team_ids=sorted(user.supervised_team_ids),
            has_web_password=user.password_hash is not None,
            has_sip_credentials=user.sip is not None,
        )


class NewUser(RequestModel):
    username: Username
    role_id: ObjectId
    display_name: DisplayName | None = None
    team_id: ObjectId | None = None
    extension: Digits | None = None
    password: WebPassword | None = None
    sip_password: SipPassword | None = None
    supervises: Annotated[list[ObjectId], Field(max_length=100)] = Field(default_factory=list)


class UserPatch(PatchModel):
    """What `PATCH /users/{id}` may change; a field left out keeps its value, `null` clears
    an optional one (team, extension, web password, SIP password)."""

    display_name: DisplayName | None = None
    team_id: ObjectId | None = None
    extension: Digits | None = None
    password: WebPassword | None = None
    sip_password: SipPassword | None = None
    supervises: Annotated[list[ObjectId], Field(max_length=100)] | None = None

    _not_null = field_validator("display_name", "supervises")(not_null)


class RoleChange(RequestModel):
    role_id: ObjectId


class MfaResetView(ResponseModel):
    """The outcome of an MFA reset: whether the user had a second factor to remove."""

    user_id: int
    had_mfa: bool


class UserListQuery(BaseModel):
    """Filters, sort (from an allow-list) and page of `GET /users`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team_id: QueryId | None = None
    role_id: QueryId | None = None
    enabled: bool | None = None
    username_prefix: Annotated[str, Field(pattern=USERNAME_PREFIX_PATTERN)] | None = None
    sort: UserSortField = "username"
    order: SortOrder = "asc"
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


UserListParameters = Annotated[UserListQuery, Query()]
