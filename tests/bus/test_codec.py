"""The JSON codec: golden bytes, round trips of every ACD event, exact errors for bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta, timezone

import pytest

from callwarden.acd.agent import AgentState
from callwarden.acd.events import (
    ACD_EVENT_TYPES,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallHandled,
    CallOffered,
    CallOverflowed,
    CallQueued,
)
from callwarden.acd.queue import OverflowKind
from callwarden.bus import Event, EventCodec, EventTypeError, MalformedEvent
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId

from .events import T0, Colour, Everything, Ping

CODEC = EventCodec((*ACD_EVENT_TYPES, Ping, Everything))
CALL, QUEUE, TEAM, AGENT = CallId("c-1"), QueueId(3), TeamId(2), UserId(7)
EVERYTHING = Everything(
    at=T0,
    call_id=CALL,
    count=3,
    ratio=0.25,
    flag=True,
    colour=Colour.BLUE,
    when=T0.astimezone(timezone(timedelta(hours=2))),
    maybe=QueueId(4),
    queues=(QueueId(1), QueueId(2)),
    tags=frozenset({"b", "a"}),
    team_id=TEAM,
)


def test_golden_bytes() -> None:
    assert CODEC.encode(EVERYTHING, node_id="node-a") == (
        b'{"v":1,"node":"node-a","kind":"test.everything","event":{"at":"2025-03-03T08:00:00+00:00",'
        b'"team_id":2,"user_id":null,"call_id":"c-1","count":3,"ratio":0.25,"flag":true,'
        b'"colour":"blue","when":"2025-03-03T10:00:00+02:00","maybe":4,"queues":[1,2],'
        b'"tags":["a","b"]}}'
    )
    envelope = CODEC.decode(CODEC.encode(EVERYTHING, node_id="node-a"))
    assert (envelope.node_id, envelope.event) == ("node-a", EVERYTHING)
    assert envelope.event.when.utcoffset() == timedelta(hours=2)  # type: ignore[attr-defined]


ACD_SAMPLES: list[Event] = [
    AgentStateChanged(
        at=T0,
        team_id=TEAM,
        user_id=AGENT,
        state=AgentState.BREAK,
        previous=AgentState.AVAILABLE,
        reason="lunch",
        queue_ids=(QUEUE,),
        seconds_in_previous=12.5,
        calls_taken=4,
        node_id="n1",
    ),
    CallQueued(at=T0, team_id=TEAM, call_id=CALL, queue_id=QUEUE, priority=2, position=3),
    CallOffered(at=T0, team_id=TEAM, user_id=AGENT, call_id=CALL, queue_id=QUEUE),
    CallAnswered(
        at=T0, team_id=TEAM, user_id=AGENT, call_id=CALL, queue_id=QUEUE, waited_seconds=9.0
    ),
    CallAbandoned(at=T0, team_id=TEAM, call_id=CALL, queue_id=QUEUE, waited_seconds=30.0),
    CallOverflowed(
        at=T0,
        team_id=TEAM,
        call_id=CALL,
        queue_id=QUEUE,
        waited_seconds=120.0,
        action=OverflowKind.USER,
        target_user_id=UserId(9),
    ),
    CallEnded(at=T0, team_id=TEAM, user_id=AGENT, call_id=CALL, queue_id=QUEUE, talk_seconds=61.0),
    CallHandled(
        at=T0,
        team_id=TEAM,
        user_id=AGENT,
        call_id=CALL,
        queue_id=QUEUE,
        talk_seconds=61.0,
        wrap_up_seconds=10.0,
    ),
]


def test_the_samples_cover_every_acd_event_type() -> None:
    assert {type(event) for event in ACD_SAMPLES} == set(ACD_EVENT_TYPES)


@pytest.mark.parametrize("event", ACD_SAMPLES, ids=lambda event: event.kind)
def test_every_acd_event_survives_the_wire(event: Event) -> None:
    assert CODEC.decode(CODEC.encode(event, node_id="n")).event == event


def good() -> dict[str, object]:
    return {"v": 1, "node": "n", "kind": "test.ping", "event": {"at": "2025-03-03T08:00:00+00:00"}}


def with_event(**fields: object) -> dict[str, object]:
    message = good()
    message["event"] = {"at": "2025-03-03T08:00:00+00:00", **fields}
    return message


MALFORMED = [
    (b"\xff\xfe", "not JSON"),
    (b"{", "not JSON"),
    (b"[1]", "not a JSON object"),
    ({**good(), "v": 2}, "unsupported wire version 2"),
    ({**good(), "node": ""}, "missing node id"),
    ({**good(), "kind": "test.pong"}, "unknown event kind 'test.pong'"),
    ({**good(), "event": []}, "missing event body"),
    (with_event(number="7"), "test.ping.number: expected an integer, got str"),
    (with_event(number=True), "test.ping.number: expected an integer, got bool"),
    (with_event(team_id=1.5), "test.ping.team_id: expected an integer, got float"),
    (with_event(colour="red"), "test.ping: unknown fields ['colour']"),
    ({**good(), "event": {}}, "test.ping: missing fields ['at']"),
    (
        {**good(), "event": {"at": "yesterday"}},
        "test.ping.at: expected an ISO 8601 date-time, got str",
    ),
    (
        {**good(), "event": {"at": "2025-03-03T08:00:00"}},
        "test.ping.at: date-time without an offset",
    ),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
def test_malformed_messages_are_refused_with_the_reason(
    data: bytes | dict[str, object], message: str
) -> None:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(MalformedEvent) as caught:
        CODEC.decode(raw)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("colour", "green", "test.everything.colour: 'green' is not a Colour"),
        ("queues", [1, "2"], "test.everything.queues[1]: expected an integer, got str"),
        ("queues", 1, "test.everything.queues: expected a list, got int"),
        ("ratio", "0.5", "test.everything.ratio: expected a number, got str"),
        ("flag", 1, "test.everything.flag: expected a boolean, got int"),
    ],
)
def test_every_field_is_checked_against_its_type(field: str, value: object, message: str) -> None:
    encoded = json.loads(CODEC.encode(EVERYTHING, node_id="n"))
    encoded["event"][field] = value
    with pytest.raises(MalformedEvent) as caught:
        CODEC.decode(json.dumps(encoded))
    assert caught.value.message == message
    assert caught.value.error_id == "malformed_event"


def test_an_unknown_kind_has_its_own_error_id() -> None:
    with pytest.raises(MalformedEvent) as caught:
        CODEC.decode(b'{"v":1,"node":"n","kind":"x","event":{}}')
    assert caught.value.error_id == "unknown_event_kind"


@dataclass(frozen=True, kw_only=True)
class WithList(Event):
    kind = "test.with_list"
    items: list[int]


@dataclass(frozen=True, kw_only=True)
class PingAgain(Event):
    kind = "test.ping"


def test_event_types_the_codec_cannot_carry_fail_at_construction() -> None:
    with pytest.raises(
        EventTypeError, match=r"WithList.items: cannot carry a field of type list\[int\]"
    ):
        EventCodec([WithList])
    with pytest.raises(EventTypeError, match=r"share the kind 'test\.ping'"):
        EventCodec([Ping, PingAgain])
    with pytest.raises(EventTypeError, match="is not an Event class"):
        EventCodec([Colour])  # type: ignore[list-item]
    with pytest.raises(EventTypeError, match="not registered"):
        EventCodec([Ping]).encode(EVERYTHING, node_id="n")
