"""The provisioning file's schema (validated with pydantic); docs/provisioning.md describes it.

Each object is keyed by its name (username for users). A key that an object in the file leaves
out keeps its stored value (a new object gets the default shown here); `null` clears an
optional value. Lists (members, inbound numbers, patterns, supervised teams) are replaced whole.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from callwarden.domain.models import (
    DEFAULT_ROLE_NAMES,
    HoldMusic,
    MonitoringTransparency,
    QueueOverflow,
    QueueStrategy,
    RecordingPolicy,
    Transport,
)
from callwarden.domain.patterns import DialPattern, InvalidDialPattern
from callwarden.domain.permissions import Grant, InvalidGrant, Permission
from callwarden.security.password_policy import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

FORMAT_VERSION = 1

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")
_DIGITS = re.compile(r"[0-9]{1,15}")
_PHONE_NUMBER = re.compile(r"\+?[0-9]{1,20}")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _no_control_characters(value: str) -> str:
    """Names and descriptions end up in logs and pages: no control or bidi-format characters."""
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in value):
        raise ValueError("must not contain control characters")
    return value


def _no_control_codes(value: str) -> str:
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ValueError("must not contain control characters")
    return value


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            "must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _username(value: str) -> str:
    if not _USERNAME.fullmatch(value):
        raise ValueError(
            "must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter"
        )
    return value


def _quoted(value: object) -> object:
    """Numbers are strings: an unquoted YAML number would lose its leading zeros."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError('must be a quoted string of digits, e.g. "1001"')
    return value


def _digits(value: str) -> str:
    if not _DIGITS.fullmatch(value):
        raise ValueError("must be digits (1 to 15 of them)")
    return value


def _phone_number(value: str) -> str:
    if not _PHONE_NUMBER.fullmatch(value):
        raise ValueError("must be digits (1 to 20), optionally after a leading '+'")
    return value


def _pattern(value: str) -> str:
    try:
        DialPattern.parse(value)
    except InvalidDialPattern as error:
        raise ValueError(error.message) from error
    return value


def _grant(value: str) -> str:
    try:
        Grant.parse(value)
    except InvalidGrant as error:
        raise ValueError(error.message) from error
    return value


def _host(value: str) -> str:
    """An IP address (IPv6 with or without brackets) or a DNS name (RFC 1123)."""
    literal = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        if literal != value or len(value) > 253:
            raise ValueError("must be an IP address or a host name") from None
        labels = value.removesuffix(".").split(".")
        if not all(_HOST_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
            raise ValueError("must be an IP address or a host name") from None
        return value.lower()
    if address.is_unspecified or address.is_multicast or str(address) == "255.255.255.255":
        raise ValueError("must be a unicast address (not unspecified, multicast or broadcast)")
    return str(address)


Name = Annotated[str, Field(strict=True), AfterValidator(_name)]
ReasonCode = Annotated[str, Field(strict=True, max_length=32), AfterValidator(_name)]
MAX_BREAK_REASONS = 9
"""One digit after the break feature code picks a reason."""
MISSED_REASON = "missed"
Username = Annotated[str, Field(strict=True), AfterValidator(_username)]
DisplayName = Annotated[
    str, Field(strict=True, min_length=1, max_length=128), AfterValidator(_no_control_characters)
]
Description = Annotated[
    str, Field(strict=True, max_length=500), AfterValidator(_no_control_characters)
]
Digits = Annotated[str, BeforeValidator(_quoted), Field(strict=True), AfterValidator(_digits)]
PhoneNumber = Annotated[
    str, BeforeValidator(_quoted), Field(strict=True), AfterValidator(_phone_number)
]
PatternText = Annotated[str, BeforeValidator(_quoted), Field(strict=True), AfterValidator(_pattern)]
GrantText = Annotated[str, Field(strict=True, max_length=100), AfterValidator(_grant)]
Host = Annotated[str, Field(strict=True), AfterValidator(_host)]
WebPassword = Annotated[
    str,
    Field(strict=True, min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH),
    AfterValidator(_no_control_codes),
]
SipPassword = Annotated[
    str, Field(strict=True, min_length=8, max_length=128), AfterValidator(_no_control_codes)
]
SecretText = Annotated[
    str, Field(strict=True, min_length=1, max_length=255), AfterValidator(_no_control_codes)
]
Seconds = Annotated[StrictInt, Field(ge=0, le=86_400)]
Level = Annotated[StrictInt, Field(ge=0, le=100)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def given(self, key: str) -> bool:
        """Whether the file states `key` for this object (possibly as null)."""
        return key in self.model_fields_set


class TeamSpec(Spec):
    name: Name
    display_name: DisplayName | None = None
    parent: Name | None = None
    recording: RecordingPolicy | None = None
    """Direct calls of its members (not queue calls): `all`, `none`, `on_demand`; unset: as
    the parent team, and `none` at the top."""
    monitoring_transparency: MonitoringTransparency | None = None
    """Whether its operators are told they are monitored: `silent`, `screen`,
    `screen_and_tone`; unset: as the node's `monitor_notify_teams` setting."""


class RoleSpec(Spec):
    name: Name
    description: Description = ""
    outbound_patterns: list[PatternText] = []
    grants: list[GrantText] = []

    @field_validator("grants")
    @classmethod
    def _custom_roles_only(cls, grants: list[str], info: ValidationInfo) -> list[str]:
        """The built-in roles' grants are fixed in code; each permission is granted once; no
        role may hold every permission."""
        name = info.data.get("name")
        if name in DEFAULT_ROLE_NAMES:
            raise ValueError(
                f"the grants of built-in role {name!r} are fixed; define a custom role instead"
            )
        first: dict[Permission, int] = {}
        for index, text in enumerate(grants):
            permission = Grant.parse(text).permission
            if permission in first:
                raise ValueError(
                    f"{permission.value} is granted twice (grants[{first[permission]}] and "
                    f"grants[{index}])"
                )
            first[permission] = index
        if len(first) == len(Permission):
            raise ValueError("no role may hold every permission")
        return grants

    def parsed_grants(self) -> frozenset[Grant]:
        return frozenset(Grant.parse(text) for text in self.grants)


class UserSpec(Spec):
    username: Username
    role: Name
    display_name: DisplayName | None = None
    team: Name | None = None
    extension: Digits | None = None
    enabled: StrictBool = True
    password: WebPassword | None = None
    sip_password: SipPassword | None = None
    supervises: list[Name] = []
    recording: RecordingPolicy | None = None
    """Their direct calls (not queue calls); unset: as their team."""


class MemberSpec(Spec):
    user: Username
    penalty: Level = 0
    skill_level: Level = 1

    @model_validator(mode="before")
    @classmethod
    def _username_alone(cls, data: Any) -> Any:
        return {"user": data} if isinstance(data, str) else data


class OverflowSpec(Spec):
    """Where a call goes after the queue's `max_wait_seconds`: `queue` (name it), `user`
    (name them), `voicemail` or `hangup`; a bare word stands for `{action: word}`."""

    action: QueueOverflow
    queue: Name | None = None
    user: Username | None = None

    @model_validator(mode="before")
    @classmethod
    def _action_alone(cls, data: Any) -> Any:
        return {"action": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _target_matches_action(self) -> OverflowSpec:
        needs_queue = self.action is QueueOverflow.QUEUE
        needs_user = self.action is QueueOverflow.USER
        if needs_queue != (self.queue is not None):
            raise ValueError("queue: names the target of 'action: queue' (and only of it)")
        if needs_user != (self.user is not None):
            raise ValueError("user: names the target of 'action: user' (and only of it)")
        return self


class QueueSpec(Spec):
    name: Name
    number: Digits
    team: Name
    display_name: DisplayName | None = None
    members: list[MemberSpec] = []
    strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE
    wrap_up_seconds: Annotated[StrictInt, Field(ge=0, le=3600)] = 10
    ring_timeout_seconds: Annotated[StrictInt, Field(ge=5, le=300)] = 15
    max_no_answer: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    max_wait_seconds: Annotated[StrictInt, Field(ge=10, le=86_400)] | None = None
    service_level_seconds: Annotated[StrictInt, Field(ge=1, le=3600)] = 20
    service_level_percent: Annotated[StrictInt, Field(ge=1, le=100)] = 80
    required_skill_level: Level = 0
    recording: RecordingPolicy = RecordingPolicy.ALL
    overflow: OverflowSpec = OverflowSpec(action=QueueOverflow.HANGUP)
    announce_seconds: Annotated[StrictInt, Field(ge=10, le=3600)] | None = 30
    music_on_hold: HoldMusic = HoldMusic.TONES


class InboundSpec(Spec):
    number: PhoneNumber
    destination: Digits | None = None

    @model_validator(mode="before")
    @classmethod
    def _number_alone(cls, data: Any) -> Any:
        return {"number": data} if isinstance(data, str) else data


class TrunkSpec(Spec):
    name: Name
    host: Host
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = 5060
    transport: Transport = Transport.UDP
    inbound_numbers: list[InboundSpec] = []
    outbound_patterns: list[PatternText] = []
    username: SecretText | None = None
    password: SecretText | None = None
    # `register` would shadow ABCMeta.register on the model class.
    registers: StrictBool = Field(default=False, alias="register")
    enabled: StrictBool = True

    @model_validator(mode="after")
    def _registration_needs_credentials(self) -> TrunkSpec:
        if self.registers and (self.username is None or self.password is None):
            raise ValueError("register: true needs a username and a password")
        return self


MAX_DISPOSITIONS = 50


class DispositionSpec(Spec):
    """A wrap-up disposition code the operator picks for a call, with its label in each
    language of the pages."""

    code: ReasonCode
    label_ja: DisplayName
    label_en: DisplayName


class ProvisioningDocument(Spec):
    version: Annotated[StrictInt, Field(ge=FORMAT_VERSION, le=FORMAT_VERSION)] = FORMAT_VERSION
    prune: StrictBool = False
    roles: list[RoleSpec] = []
    teams: list[TeamSpec] = []
    users: list[UserSpec] = []
    trunks: list[TrunkSpec] = []
    queues: list[QueueSpec] = []
    break_reasons: Annotated[list[ReasonCode], Field(max_length=MAX_BREAK_REASONS)] | None = None
    """The reasons an operator may give for a break, in order (the digit after the phone's
    break code is the 1-based index); absent: unchanged; `missed` is the system's own."""

    dispositions: Annotated[list[DispositionSpec], Field(max_length=MAX_DISPOSITIONS)] | None = None
    """The wrap-up disposition codes offered on the operator desktop, in order; absent:
    unchanged; `[]` clears the list (a call's disposition must name a listed code)."""

    @field_validator("dispositions")
    @classmethod
    def _dispositions_unique(
        cls, dispositions: list[DispositionSpec] | None
    ) -> list[DispositionSpec] | None:
        if dispositions is not None:
            codes = [disposition.code for disposition in dispositions]
            if len(set(codes)) != len(codes):
                raise ValueError("each disposition code is listed once")
        return dispositions

    @field_validator("break_reasons")
    @classmethod
    def _reasons_unique(cls, reasons: list[str] | None) -> list[str] | None:
        if reasons is None:
            return None
        if len(set(reasons)) != len(reasons):
            raise ValueError("each break reason is listed once")
        if MISSED_REASON in reasons:
            raise ValueError(f"{MISSED_REASON!r} is the system's own reason (ring no-answer)")
        return reasons


_SECTIONS: dict[str, type[Spec]] = {
    "roles": RoleSpec,
    "teams": TeamSpec,
    "users": UserSpec,
    "trunks": TrunkSpec,
    "queues": QueueSpec,
}
_NESTED: dict[str, type[Spec]] = {"members": MemberSpec, "inbound_numbers": InboundSpec}
_SINGLE: dict[str, type[Spec]] = {"overflow": OverflowSpec}


def _keys(model: type[Spec]) -> frozenset[str]:
    return frozenset(info.alias or name for name, info in model.model_fields.items())


def keys_at(path: Sequence[str | int]) -> frozenset[str]:
    """The keys allowed in the mapping at `path` (e.g. `("users", 0)`), for 'did you mean' hints."""
    model: type[Spec] | None = None
    if not path:
        model = ProvisioningDocument
    elif len(path) == 2 and isinstance(path[0], str):
        model = _SECTIONS.get(path[0])
    elif len(path) == 4 and isinstance(path[2], str):
        model = _NESTED.get(path[2])
    elif len(path) == 3 and isinstance(path[2], str):
        model = _SINGLE.get(path[2])
    return _keys(model) if model is not None else frozenset()
