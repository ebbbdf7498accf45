"""Which live connections receive a bus event: the policy, applied to the connections it could
concern.

`live_filter(principal)` is the rule: what `authorize()` allows the principal on the event's
object (`bus.visible_to`), and account events about themself (the self-service rule of
`callwarden.security.account_events`). Each connection's subscription filters with it.

`LiveDispatch` holds one subscription to the node's bus for all the live connections of an
application and hands each event to the connections whose principal could be covered: those
holding some permission at ALL scope, those owning the event's object (their own agent, their
own call, their own account), and those whose teams (own and supervised) include the object's
team. The candidates' own filters then decide, so the index only saves work and can never
widen what anyone sees. Publishing costs the publisher one queue append however many
connections are open, and an event costs a policy check per candidate, not per connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from callwarden.bus.event import Event, EventFilter, visible_to
from callwarden.bus.protocol import EventBus
from callwarden.bus.subscription import Fanout, Subscription
from callwarden.domain.ids import TeamId, UserId
from callwarden.domain.permissions import Permission, Scope
from callwarden.domain.policy import Principal
from callwarden.security.account_events import shown_to_owner

__all__ = ["DEFAULT_BACKLOG", "LiveDispatch", "live_filter"]

logger = logging.getLogger(__name__)

DEFAULT_BACKLOG = 10_000
"""Events the dispatcher may fall behind the bus before the oldest are dropped."""


def live_filter(principal: Principal) -> EventFilter:
    """The events a live connection of `principal` receives: what the policy allows them
    (`visible_to`), and account events about themself (the self-service rule)."""
    allowed = visible_to(principal)
    user_id = principal.user_id

    def admits(event: Event) -> bool:
        return allowed(event) or shown_to_owner(event, user_id)

    return admits


def _holds_anything_everywhere(principal: Principal) -> bool:
    return any(principal.scope_of(permission) is Scope.ALL for permission in Permission)


class LiveDispatch:
    """Hands the bus's events to the live connections' subscriptions (bounded queues that drop
    their oldest, `bus.Subscription`). Lives on the event loop serving the connections; its task
    starts with the first subscription and ends when the bus closes, closing every
    subscription (their streams then close with 1001)."""

    def __init__(self, bus: EventBus, *, backlog: int = DEFAULT_BACKLOG) -> None:
        self._bus = bus
        self._backlog = backlog
        self._fanout = Fanout()
        self._everything: set[Subscription] = set()
        self._by_user: dict[UserId, set[Subscription]] = {}
        self._by_team: dict[TeamId, set[Subscription]] = {}
        self._keys: dict[Subscription, tuple[UserId, frozenset[TeamId]]] = {}
        self._source: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def subscribe(self, principal: Principal, *, max_pending: int) -> Subscription:
        """A subscription receiving, from now on, the events `live_filter(principal)` admits;
        give it back with `unsubscribe`."""
        self._start()
        subscription = self._fanout.subscribe(live_filter(principal), max_pending=max_pending)
        user_id = principal.user_id
        teams = principal.team_ids
        self._keys[subscription] = (user_id, teams)
        if _holds_anything_everywhere(principal):
            self._everything.add(subscription)
        self._by_user.setdefault(user_id, set()).add(subscription)
        for team_id in teams:
            self._by_team.setdefault(team_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        key = self._keys.pop(subscription, None)
        if key is None:
            return
        user_id, teams = key
        self._everything.discard(subscription)
        _discard(self._by_user, user_id, subscription)
        for team_id in teams:
            _discard(self._by_team, team_id, subscription)

    async def close(self) -> None:
        """Stop dispatching and close every subscription."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                if not self._task.cancelled():
                    raise
            self._task = None
        self._stop()

    def _start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._source = self._bus.subscribe(max_pending=self._backlog)
        self._task = asyncio.create_task(self._run(self._source), name="live-dispatch")

    def _stop(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        self._fanout.close_all()

    async def _run(self, source: Subscription) -> None:
        reported = 0
        async for event in source:
            if source.dropped != reported:
                self._lost(source.dropped - reported)
                reported = source.dropped
            for subscription in self._candidates(event):
                subscription.deliver(event)
        logger.info("the bus closed: ending %s live connections", len(self._keys))
        self._stop()

    def _candidates(self, event: Event) -> set[Subscription]:
        resource = event.resource()
        found = set(self._everything)
        by_user = self._by_user
        for owner in resource.owner_ids:
            found.update(by_user.get(owner, ()))
        if event.user_id is not None:
            found.update(by_user.get(event.user_id, ()))
        by_team = self._by_team
        for team_id in resource.team_ids:
            found.update(by_team.get(team_id, ()))
        return found

    def _lost(self, count: int) -> None:
        """The dispatcher fell `count` events behind the bus: every connection may have lost
        them, and is told so with its next event."""
        logger.warning("live dispatch dropped %s events (fell behind the bus)", count)
        for subscription in self._keys:
            subscription.dropped += count


_Key = TypeVar("_Key")


def _discard(index: dict[_Key, set[Subscription]], key: _Key, subscription: Subscription) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(subscription)
        if not members:
            del index[key]
