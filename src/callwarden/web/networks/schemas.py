"""Request and response models of the sign-in network routes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from callwarden.provisioning.document import Description
from callwarden.security.network_policy import NetworkRule
from callwarden.web.schemas import ObjectId, RequestModel, ResponseModel


class NewNetwork(RequestModel):
    """A range in CIDR notation (`10.8.0.0/16`, `2001:db8::/32`) for one role or one team."""

    network: Annotated[str, Field(min_length=1, max_length=64)]
    role_id: ObjectId | None = None
    team_id: ObjectId | None = None
    description: Annotated[Description, Field(max_length=255)] = ""

    @model_validator(mode="after")
    def _one_target(self) -> NewNetwork:
        if (self.role_id is None) == (self.team_id is None):
            raise ValueError("give exactly one of role_id and team_id")
        return self


class NetworkView(ResponseModel):
    id: int
    network: str
    role_id: int | None
    team_id: int | None
    description: str

    @classmethod
    def of(cls, rule: NetworkRule) -> NetworkView:
        return cls(
            id=rule.id,
            network=str(rule.network),
            role_id=rule.role_id,
            team_id=rule.team_id,
            description=rule.description,
        )


class NetworkList(ResponseModel):
    items: list[NetworkView]
