"""The base of every event on the bus, and the filter that applies the policy to it.

Each event names the permission needed to receive it (`Event.permission`) and the object it is
about (`Event.resource()`: its owner and its team), so a live stream filters with the same
`authorize()` as the REST API: `visible_to(principal)` is that filter.

Concrete events live with the package that emits them (`callwarden.acd.events` for queues and
agents); the bus only needs them to be frozen, keyword-only dataclasses deriving from `Event`
with a unique `kind`, so that `EventCodec` can carry them between nodes. They are not slotted:
each event caches its `resource()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import ClassVar

from callwarden.domain.ids import TeamId, UserId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Principal, Resource, ResourceKind, covers

EventFilter = Callable[["Event"], bool]
"""Decides whether a subscriber receives an event; must be cheap and must not raise."""


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something that happened, at wall-clock time `at` (timezone-aware).

    `team_id` is the team the object belongs to and `user_id` the person it is about (the
    agent); both are what the policy's TEAM and OWN scopes look at.
    """

    kind: ClassVar[str] = "event"
    """Stable wire name (`"acd.agent_state_changed"`); unique among the codec's types."""
    permission: ClassVar[Permission] = Permission.LIVE_VIEW
    """The permission a subscriber needs on `resource()` to receive this event."""
    resource_kind: ClassVar[ResourceKind] = ResourceKind.CALL

    at: datetime
    team_id: TeamId | None = None
    user_id: UserId | None = None

    def resource(self) -> Resource:
        """The object this event is about, as the policy sees it (built once per event: every
        subscriber's filter asks for it)."""
        return self._resource

    @cached_property
    def _resource(self) -> Resource:
        return Resource.of(self.resource_kind, owner=self.user_id, team=self.team_id)


def visible_to(principal: Principal) -> EventFilter:
    """A subscription filter passing exactly the events `principal` may see: those for which
    `authorize(principal, event.permission, event.resource())` allows.

    It asks the policy's allow rule directly (the permission's scope covers the resource),
    skipping what `authorize` does to tell a denial's kind apart, which a filter never needs:
    with hundreds of subscribers, most events are denied to most of them.
    """

    def admits(event: Event) -> bool:
        scope = principal.scope_of(event.permission)
        return scope is not None and covers(scope, principal, event.resource())

    return admits


def of_kinds(*types: type[Event]) -> EventFilter:
    """A subscription filter passing events of the given classes (and their subclasses)."""

    def admits(event: Event) -> bool:
        return isinstance(event, types)

    return admits
