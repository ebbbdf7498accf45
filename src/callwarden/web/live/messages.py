"""The JSON text frames of the live WebSocket, made from bus events (docs/api.md describes them).

An event becomes::

    {"type": "event", "kind": "acd.agent_state_changed", "at": "2026-12-01T09:00:00+00:00",
     "fields": {"team_id": 1, "user_id": 7, "state": "available", ...}}

`fields` holds every field of the event but `at`: enums by value, date-times as ISO 8601 with
their offset, ids as numbers or strings, tuples and sets as lists.

**Customers' numbers** are masked (all but the last four digits, `domain.policy.mask_number`)
for a principal the policy does not allow `numbers.view` on the event's object. A field holds a
customer's number when its event class names it in `customer_number_fields` or, failing closed
for event classes that forget to, when the field is called `number` or ends in `_number`.

Encoding is done once per event and variant (numbers whole or masked), however many
connections receive it: `LiveMessages` keeps the text of the latest events.
"""

from __future__ import annotations

import enum
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime

from callwarden.bus.event import Event
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Principal, covers, mask_number

__all__ = [
    "CUSTOMER_NUMBER_FIELDS",
    "LiveMessages",
    "dropped_message",
    "holds_customer_number",
]

logger = logging.getLogger(__name__)

CUSTOMER_NUMBER_FIELDS = "customer_number_fields"
"""The class attribute (a collection of field names) by which an event class declares the
fields holding customers' numbers."""

DEFAULT_CACHE_SIZE = 512


def holds_customer_number(event_type: type[Event], field_name: str) -> bool:
    """Whether the live stream treats `field_name` of `event_type` as a customer's number."""
    declared = getattr(event_type, CUSTOMER_NUMBER_FIELDS, ())
    return field_name in declared or field_name == "number" or field_name.endswith("_number")


def _plain(value: object) -> object:
    """A field value as JSON sees it."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, frozenset | set):
        return sorted((_plain(item) for item in value), key=repr)
    return str(value)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What encoding needs to know about one event class."""

    field_names: tuple[str, ...]
    number_fields: frozenset[str]


@dataclass(slots=True)
class _Encoded:
    event: Event  # held so that its id() is not reused while cached
    whole: str | None = None
    masked: str | None = None


def _may_see_numbers(principal: Principal, event: Event) -> bool:
    """`authorize(principal, NUMBERS_VIEW, event.resource())` allows (its allow rule alone)."""
    scope = principal.scope_of(Permission.NUMBERS_VIEW)
    return scope is not None and covers(scope, principal, event.resource())


class LiveMessages:
    """Encodes events for live connections, with a cache of the latest `cache_size` events.

    Not thread-safe: it lives on the event loop serving the connections.
    """

    __slots__ = ("_cache", "_cache_size", "_shapes")

    def __init__(self, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self._cache: OrderedDict[int, _Encoded] = OrderedDict()
        self._cache_size = cache_size
        self._shapes: dict[type[Event], _Shape] = {}

    def text(self, event: Event, principal: Principal) -> str:
        """The frame carrying `event` to `principal` (numbers masked unless they may see them).

        Raises `ValueError` for an event JSON cannot carry (a non-finite float).
        """
        shape = self._shape(type(event))
        mask = bool(shape.number_fields) and not _may_see_numbers(principal, event)
        key = id(event)
        encoded = self._cache.get(key)
        if encoded is None or encoded.event is not event:
            encoded = _Encoded(event)
            self._cache[key] = encoded
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if mask:
            if encoded.masked is None:
                encoded.masked = self._encode(event, shape, mask=True)
            return encoded.masked
        if encoded.whole is None:
            encoded.whole = self._encode(event, shape, mask=False)
        return encoded.whole

    def _shape(self, event_type: type[Event]) -> _Shape:
        shape = self._shapes.get(event_type)
        if shape is None:
            names = tuple(field.name for field in fields(event_type) if field.name != "at")
            numbers = frozenset(name for name in names if holds_customer_number(event_type, name))
            shape = _Shape(names, numbers)
            self._shapes[event_type] = shape
        return shape

    @staticmethod
    def _encode(event: Event, shape: _Shape, *, mask: bool) -> str:
        body: dict[str, object] = {}
        for name in shape.field_names:
            value = getattr(event, name)
            if mask and name in shape.number_fields and isinstance(value, str):
                value = mask_number(value, principal_may_see_numbers=False)
            body[name] = _plain(value)
        message: Mapping[str, object] = {
            "type": "event",
            "kind": event.kind,
            "at": event.at.isoformat(),
            "fields": body,
        }
        return json.dumps(message, separators=(",", ":"), allow_nan=False)


def dropped_message(count: int, total: int) -> str:
    """The frame telling a client that `count` events were dropped since the last it got
    (`total` since it connected), because it fell too far behind."""
    return json.dumps({"type": "dropped", "count": count, "total": total}, separators=(",", ":"))
