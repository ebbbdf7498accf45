"""JSON for events crossing nodes, with a registry of the event types a node understands.

Wire form (UTF-8 JSON, one object per message)::

    {"v": 1, "node": "<node id>", "kind": "<Event.kind>", "event": {<field>: <value>, ...}}

Field values: `str`, `int`, `float`, `bool` and None as themselves; enums by value; datetimes
as ISO 8601 with their offset (they must be timezone-aware); NewType ids as their base type;
tuples and frozensets as lists. Decoding checks every field against the dataclass's type hints,
so a message from a node running other code fails with `MalformedEvent` naming the field
rather than producing a half-typed event.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from callwarden.bus.event import Event
from callwarden.domain.errors import ValidationFailed

__all__ = [
    "WIRE_VERSION",
    "Envelope",
    "EventCodec",
    "EventTypeError",
    "MalformedEvent",
]

WIRE_VERSION = 1

_Decoder = Callable[[object, str], object]


class MalformedEvent(ValidationFailed):
    """A message that is not a well-formed event of a registered kind."""

    default_error_id = "malformed_event"


class EventTypeError(TypeError):
    """An event class the codec cannot carry (a programming error, raised at start-up)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded message: the node that published it and the event."""

    node_id: str
    event: Event


def _fail(path: str, expected: str, value: object) -> MalformedEvent:
    shown = type(value).__name__
    return MalformedEvent(
        f"{path}: expected {expected}, got {shown}", details={"field": path, "expected": expected}
    )


def _decode_str(value: object, path: str) -> object:
    if not isinstance(value, str):
        raise _fail(path, "a string", value)
    return value


def _decode_int(value: object, path: str) -> object:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(path, "an integer", value)
    return value


def _decode_float(value: object, path: str) -> object:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _fail(path, "a number", value)
    return float(value)


def _decode_bool(value: object, path: str) -> object:
    if not isinstance(value, bool):
        raise _fail(path, "a boolean", value)
    return value


def _decode_datetime(value: object, path: str) -> object:
    if not isinstance(value, str):
        raise _fail(path, "an ISO 8601 date-time", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(path, "an ISO 8601 date-time", value) from None
    if parsed.utcoffset() is None:
        raise MalformedEvent(f"{path}: date-time without an offset", details={"field": path})
    return parsed


def _enum_decoder(enum_type: type[enum.Enum]) -> _Decoder:
    def decode(value: object, path: str) -> object:
        try:
            return enum_type(value)
        except ValueError:
            raise MalformedEvent(
                f"{path}: {value!r} is not a {enum_type.__name__}", details={"field": path}
            ) from None

    return decode


def _optional_decoder(inner: _Decoder) -> _Decoder:
    def decode(value: object, path: str) -> object:
        return None if value is None else inner(value, path)

    return decode


def _sequence_decoder(inner: _Decoder, build: Callable[[Iterable[object]], object]) -> _Decoder:
    def decode(value: object, path: str) -> object:
        if not isinstance(value, list):
            raise _fail(path, "a list", value)
        return build(inner(item, f"{path}[{index}]") for index, item in enumerate(value))

    return decode


_SCALARS: Mapping[object, _Decoder] = MappingProxyType(
    {
        str: _decode_str,
        int: _decode_int,
        float: _decode_float,
        bool: _decode_bool,
        datetime: _decode_datetime,
    }
)


def _decoder_for(hint: object, where: str) -> _Decoder:
    """The decoder of one type hint; raises `EventTypeError` for anything else."""
    scalar = _SCALARS.get(hint)
    if scalar is not None:
        return scalar
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # a NewType
        return _decoder_for(supertype, where)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_decoder(hint)
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        others = [argument for argument in arguments if argument is not type(None)]
        if len(others) == 1 and len(arguments) == 2:
            return _optional_decoder(_decoder_for(others[0], where))
    elif origin is tuple and len(arguments) == 2 and arguments[1] is Ellipsis:
        return _sequence_decoder(_decoder_for(arguments[0], where), tuple)
    elif origin is frozenset and len(arguments) == 1:
        return _sequence_decoder(_decoder_for(arguments[0], where), frozenset)
    raise EventTypeError(f"{where}: cannot carry a field of type {hint!r}")


def _encode_value(value: object) -> object:
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_encode_value(item) for item in value]
    if isinstance(value, frozenset):
        return [_encode_value(item) for item in sorted(value)]
    raise EventTypeError(f"cannot encode a {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class _EventShape:
    event_type: type[Event]
    field_decoders: tuple[tuple[str, _Decoder], ...]
    required: frozenset[str]


def _shape_of(event_type: type[Event]) -> _EventShape:
    if not (isinstance(event_type, type) and issubclass(event_type, Event)):
        raise EventTypeError(f"{event_type!r} is not an Event class")
    if not is_dataclass(event_type) or not event_type.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise EventTypeError(f"{event_type.__name__} must be a frozen dataclass")
    hints = typing.get_type_hints(event_type)
    decoders = tuple(
        (field.name, _decoder_for(hints[field.name], f"{event_type.__name__}.{field.name}"))
        for field in fields(event_type)
    )
    required = frozenset(
        field.name
        for field in fields(event_type)
        if field.default is MISSING and field.default_factory is MISSING
    )
    return _EventShape(event_type, decoders, required)


class EventCodec:
    """Encodes and decodes the registered event types (`Event.kind` names them on the wire)."""

    __slots__ = ("_by_kind", "_by_type")

    def __init__(self, event_types: Iterable[type[Event]]) -> None:
        by_kind: dict[str, _EventShape] = {}
        for event_type in event_types:
            shape = _shape_of(event_type)
            existing = by_kind.get(event_type.kind)
            if existing is not None and existing.event_type is not event_type:
                raise EventTypeError(
                    f"{event_type.__name__} and {existing.event_type.__name__} "
                    f"share the kind {event_type.kind!r}"
                )
            by_kind[event_type.kind] = shape
        self._by_kind: Mapping[str, _EventShape] = MappingProxyType(by_kind)
        self._by_type: Mapping[type[Event], _EventShape] = MappingProxyType(
            {shape.event_type: shape for shape in by_kind.values()}
        )

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._by_kind)

    def encode(self, event: Event, *, node_id: str) -> bytes:
        """The wire form of `event` published by `node_id`."""
        shape = self._by_type.get(type(event))
        if shape is None:
            raise EventTypeError(f"{type(event).__name__} is not registered with the codec")
        body = {name: _encode_value(getattr(event, name)) for name, _ in shape.field_decoders}
        message = {"v": WIRE_VERSION, "node": node_id, "kind": event.kind, "event": body}
        return json.dumps(message, separators=(",", ":"), allow_nan=False).encode()

    def decode(self, data: bytes | str) -> Envelope:
        """The envelope in `data`; raises `MalformedEvent` for anything but a valid event."""
        try:
            message = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise MalformedEvent("not JSON") from None
        if not isinstance(message, dict):
            raise MalformedEvent("not a JSON object")
        if message.get("v") != WIRE_VERSION:
            raise MalformedEvent(
                f"unsupported wire version {message.get('v')!r}", details={"field": "v"}
            )
        node_id = message.get("node")
        if not isinstance(node_id, str) or not node_id:
            raise MalformedEvent("missing node id", details={"field": "node"})
        kind = message.get("kind")
        shape = self._by_kind.get(kind) if isinstance(kind, str) else None
        if shape is None:
            raise MalformedEvent(
                f"unknown event kind {kind!r}",
                error_id="unknown_event_kind",
                details={"field": "kind"},
            )
        body = message.get("event")
        if not isinstance(body, dict):
            raise MalformedEvent("missing event body", details={"field": "event"})
        expected = {name for name, _ in shape.field_decoders}
        unknown = sorted(set(body) - expected)
        if unknown:
            raise MalformedEvent(f"{kind}: unknown fields {unknown}", details={"field": unknown[0]})
        missing = sorted(shape.required - set(body))
        if missing:
            raise MalformedEvent(f"{kind}: missing fields {missing}", details={"field": missing[0]})
        values: dict[str, Any] = {
            name: decode(body[name], f"{kind}.{name}")
            for name, decode in shape.field_decoders
            if name in body
        }
        try:
            event = shape.event_type(**values)
        except ValidationFailed as error:
            raise MalformedEvent(f"{kind}: {error.message}") from None
        return Envelope(node_id, event)
