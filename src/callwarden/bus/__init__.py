"""The event bus: everything that happens is an event (DESIGN.md, idea 3).

`InProcessBus` serves one node; `RedisBus` spans several nodes on one Redis. Both implement
`EventBus`. `AgentClaims` (in process or on Redis) lets the ACD claim an agent atomically
before offering a call. Imports nothing of ours but `domain`.
"""

from callwarden.bus.claims import AgentClaims, Claim, InProcessAgentClaims
from callwarden.bus.codec import Envelope, EventCodec, EventTypeError, MalformedEvent
from callwarden.bus.event import Event, EventFilter, of_kinds, visible_to
from callwarden.bus.in_process import InProcessBus
from callwarden.bus.protocol import EventBus
from callwarden.bus.subscription import DEFAULT_MAX_PENDING, Subscription, SubscriptionClosed

__all__ = [
    "DEFAULT_MAX_PENDING",
    "AgentClaims",
    "Claim",
    "Envelope",
    "Event",
    "EventBus",
    "EventCodec",
    "EventFilter",
    "EventTypeError",
    "InProcessAgentClaims",
    "InProcessBus",
    "MalformedEvent",
    "Subscription",
    "SubscriptionClosed",
    "of_kinds",
    "visible_to",
]
