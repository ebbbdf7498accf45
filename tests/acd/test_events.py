"""The fast builders of `AgentStateChanged` and `CallOffered` make exactly the events their
constructors make: every field, equal, immutable, and with a working `resource()`."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime

import pytest

from callwarden.acd.agent import AgentState
from callwarden.acd.events import (
    AgentStateChanged,
    CallOffered,
    agent_state_changed,
    call_offered,
)
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId
from callwarden.domain.policy import ResourceKind

AT = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)


def field_names(cls: type) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


@pytest.mark.parametrize(
    ("builder", "cls"), [(agent_state_changed, AgentStateChanged), (call_offered, CallOffered)]
)
def test_a_builder_takes_every_field_of_its_event(builder: object, cls: type) -> None:
    assert callable(builder)
    assert set(inspect.signature(builder).parameters) == field_names(cls)


def test_agent_state_changed_equals_the_constructors_event() -> None:
    values: dict[str, object] = {
        "at": AT,
        "team_id": TeamId(2),
        "user_id": UserId(7),
        "state": AgentState.RINGING,
        "previous": AgentState.AVAILABLE,
        "reason": None,
        "queue_ids": (QueueId(1), QueueId(3)),
        "call_id": CallId("c1"),
        "seconds_in_previous": 4.5,
        "idle_seconds": 12.0,
        "calls_taken": 3,
        "missed_offers": 1,
        "changed_by": None,
        "node_id": "node-a",
    }
    fast = agent_state_changed(**values)  # type: ignore[arg-type]
    assert type(fast) is AgentStateChanged
    built = AgentStateChanged(**values)  # type: ignore[arg-type]
    assert fast == built
    assert dataclasses.asdict(fast) == values
    assert fast.resource() == built.resource()
    assert fast.resource().kind is ResourceKind.AGENT
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.state = AgentState.OFFLINE  # type: ignore[misc]


def test_call_offered_equals_the_constructors_event() -> None:
    values: dict[str, object] = {
        "at": AT,
        "team_id": TeamId(1),
        "user_id": UserId(7),
        "call_id": CallId("c1"),
        "queue_id": QueueId(4),
    }
    fast = call_offered(**values)  # type: ignore[arg-type]
    built = CallOffered(**values)  # type: ignore[arg-type]
    assert fast == built
    assert fast.kind == "acd.call_offered"
    assert fast.resource() == built.resource()
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.user_id = UserId(8)  # type: ignore[misc]
