"""Events about a person's own account, published on the bus for the live stream.

A sign-in from a new address or device must be "recorded and shown to the user and their
supervisor" (issue 3). It is recorded in the audit log (`auth.login.new_device`, by the web
sign-in service); `NewSignInLocation` is how it is shown:

- **to their supervisor** by the policy: the event needs `agents.manage` on the user (a
  `Resource` of kind USER owned by the user, in the user's team), which the built-in
  `supervisor` role holds at TEAM scope: the supervisors of the user's team see it, and so
  does anyone holding `agents.manage` at ALL; nobody else (an operator of the same team, an
  admin, an auditor) does. `agents.manage` rather than `live.view`: a person's addresses and
  browsers are for whoever manages them, not for every wallboard of the team.
- **to the user themself** by the self-service rule (`shown_to_owner`): an `AccountEvent` is
  shown to the user it is about, whatever their grants, the way their own sessions and MFA are
  theirs to see (`self_service()` routes in `callwarden.web.access`). No role needs a
  permission for it, so no role can be configured out of its own security notices.

`ACCOUNT_EVENT_TYPES` is what a node registers with its `EventCodec` to carry them between
nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from callwarden.bus.event import Event
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import UserId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind

__all__ = [
    "ACCOUNT_EVENT_TYPES",
    "AccountEvent",
    "NewSignInLocation",
    "shown_to_owner",
]


@dataclass(frozen=True, kw_only=True)
class AccountEvent(Event):
    """An event about the account of `user_id` (required), who sees it by the self-service
    rule; others see it if the policy allows them `permission` on the user."""

    permission: ClassVar[Permission] = Permission.AGENTS_MANAGE
    resource_kind: ClassVar[ResourceKind] = ResourceKind.USER

    def __post_init__(self) -> None:
        if self.user_id is None:
            raise ValidationFailed(
                f"{self.kind}: an account event names its user", details={"field": "user_id"}
            )


@dataclass(frozen=True, kw_only=True)
class NewSignInLocation(AccountEvent):
    """`username` completed a sign-in (MFA included, where needed) from an address, or an
    (address, browser) pair, not seen for them before.

    `address` is the client's address as the server saw it; `user_agent` the browser's
    User-Agent header (at most 512 characters, as the session keeps it); `new_address` says the
    address itself is new for the user, `new_device` the pair is.
    """

    kind: ClassVar[str] = "security.new_sign_in_location"

    username: str
    address: str
    user_agent: str = ""
    new_address: bool = False
    new_device: bool = False


def shown_to_owner(event: Event, user_id: UserId) -> bool:
    """The self-service rule: whether `event` is an account event about `user_id`."""
    return isinstance(event, AccountEvent) and event.user_id == user_id


ACCOUNT_EVENT_TYPES: tuple[type[Event], ...] = (NewSignInLocation,)
