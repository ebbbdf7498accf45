"""Request and response models of the trunk routes. The password is write-only: a trunk is
shown with `has_password`, never with the password (nor is it audited)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from callwarden.domain.models import Trunk
from callwarden.provisioning.document import (
    Digits,
    Host,
    Name,
    PatternText,
    PhoneNumber,
    SecretText,
)
from callwarden.web.schemas import PatchModel, RequestModel, ResponseModel

TransportName = Literal["udp", "tcp", "tls"]
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
MAX_NUMBERS = 500
MAX_PATTERNS = 100

# Fields a PATCH may not set to null (the others clear: `auth_username`, `password`).
_NOT_NULL = (
    "host",
    "port",
    "transport",
    "inbound_numbers",
    "outbound_patterns",
    "registers",
    "enabled",
)


class InboundBody(RequestModel):
    """A number the carrier delivers here, and where calls to it go (an extension or queue
    number; none: the dial plan's default)."""

    number: PhoneNumber
    destination: Digits | None = None


class TrunkSettings(RequestModel):
    host: Host | None = None
    port: Port | None = None
    transport: TransportName | None = None
    inbound_numbers: Annotated[list[InboundBody], Field(max_length=MAX_NUMBERS)] | None = None
    outbound_patterns: Annotated[list[PatternText], Field(max_length=MAX_PATTERNS)] | None = None
    auth_username: SecretText | None = None
    """The user name the carrier knows this installation by (free text, like the password)."""
    password: SecretText | None = None
    # `register` would shadow ABCMeta.register on the model class (as in the provisioning file).
    registers: bool | None = Field(default=None, alias="register")
    enabled: bool | None = None

    @field_validator("inbound_numbers")
    @classmethod
    def _numbers_unique(cls, numbers: list[InboundBody] | None) -> list[InboundBody] | None:
        if numbers is not None:
            listed = [inbound.number for inbound in numbers]
            if len(set(listed)) != len(listed):
                raise ValueError("each number is listed once")
        return numbers


class NewTrunk(TrunkSettings):
    name: Name

    @model_validator(mode="after")
    def _host_required(self) -> NewTrunk:
        if self.host is None:
            raise ValueError("host required")
        return self


class TrunkPatch(TrunkSettings, PatchModel):
    not_null = _NOT_NULL


class InboundView(ResponseModel):
    number: str
    destination: str | None


class TrunkView(ResponseModel):
    id: int
    name: str
    host: str
    port: int
    transport: str
    inbound_numbers: list[InboundView]
    outbound_patterns: list[str]
    auth_username: str | None
    has_password: bool
    registers: bool = Field(alias="register")
    enabled: bool

    @classmethod
    def of(cls, trunk: Trunk) -> TrunkView:
        return cls(
            id=trunk.id,
            name=trunk.name,
            host=trunk.host,
            port=trunk.port,
            transport=trunk.transport.value,
            inbound_numbers=[
                InboundView(number=inbound.number, destination=inbound.destination)
                for inbound in trunk.inbound_numbers
            ],
            outbound_patterns=[pattern.text for pattern in trunk.outbound_patterns],
            auth_username=trunk.username,
            has_password=trunk.password is not None,
            register=trunk.register,
            enabled=trunk.enabled,
        )


class TrunkList(ResponseModel):
    items: list[TrunkView]
