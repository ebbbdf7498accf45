"""A live call as monitoring sees it: its bridge, which endpoint is the customer and which the
operator, who the operator is, and the call as the policy sees it.

Only answered calls with an operator are monitorable: a queue call once an agent has answered
(the agent is the operator), and a two-party call between one of our users and a customer or
colleague. In a two-party call the operator is the one the call's recording calls its operator
(`callwarden.telephony.call_sides`): the callee of an extension-to-extension call, the caller
of an operator's own outbound call (to a trunk, or to a colleague whose policy records less),
and the far party is the customer. The roles of the hearing matrix come from this, never from
the order in which the legs were built, so a whisper can only ever reach the operator, and a
takeover replaces the operator's leg whichever side of the call it is.

The call as a policy resource (`ResourceKind.CALL`) is owned by the users on it and belongs to
the operator's team and the queue's team (or the caller's team for a call between colleagues):
a supervisor of one of those teams may monitor it, nobody else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, TeamId, UserId
from callwarden.domain.policy import Resource, ResourceKind
from callwarden.telephony.call import Call, CallEvent, CallState, Leg
from callwarden.telephony.call_sides import direct_call_sides
from callwarden.telephony.call_task import CallTask
from callwarden.telephony.queue_call import QueueCall, QueueCallState

__all__ = ["CallFinder", "CallView", "LiveCalls", "MonitoredTask"]


class MonitoredTask(Protocol):
    """What monitoring needs of a call's task: post it events (release the operator, hang
    up) and add the supervisors' legs to its CDR."""

    monitor_legs: list[tuple[Leg, UserId]]

    def post(self, event: CallEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class CallView:
    """One monitorable call now. `operator_endpoint` is None once the operator has left."""

    call_id: CallId
    task: MonitoredTask
    bridge_id: str
    customer_endpoint: str
    operator_endpoint: str | None
    operator_id: UserId
    resource: Resource

    @property
    def monitor_legs(self) -> list[tuple[Leg, UserId]]:
        return self.task.monitor_legs


def _live(leg: Leg | None) -> str | None:
    return None if leg is None or leg.ended_at is not None else leg.endpoint_id


def _resource(
    snapshot: DirectorySnapshot, owners: Iterable[UserId | None], teams: Iterable[TeamId | None]
) -> Resource:
    owner_ids = frozenset(owner for owner in owners if owner is not None)
    team_ids = {team for team in teams if team is not None}
    for owner in owner_ids:
        user = snapshot.user(owner)
        if user is not None and user.team_id is not None:
            team_ids.add(user.team_id)
    return Resource(ResourceKind.CALL, owner_ids, frozenset(team_ids))


def _queue_view(call: QueueCall, snapshot: DirectorySnapshot) -> CallView | None:
    inbound, bridge = call.inbound, call.bridge_id
    if call.state is not QueueCallState.CONNECTED or call.agent_id is None:
        return None
    if inbound is None or bridge is None or call.agent_leg is None:
        return None
    owners = (call.agent_id, call.caller.user_id)
    return CallView(
        call_id=call.call_id,
        task=call,
        bridge_id=bridge,
        customer_endpoint=inbound.endpoint_id,
        operator_endpoint=_live(call.agent_leg),
        operator_id=call.agent_id,
        resource=_resource(snapshot, owners, (call.queue.team_id, call.caller.team_id)),
    )


def _call_view(call: Call, snapshot: DirectorySnapshot) -> CallView | None:
    inbound, outbound, bridge = call.inbound, call.outbound, call.bridge_id
    if call.state is not CallState.ANSWERED or inbound is None or outbound is None:
        return None
    if bridge is None:
        return None
    target = call.target
    sides = direct_call_sides(snapshot, call.caller.user_id, target.user_id)
    if sides.operator is None:
        return None
    operator_id = sides.operator.id
    operator_leg, customer_leg = (
        (inbound, outbound) if sides.operator_is_caller else (outbound, inbound)
    )
    return CallView(
        call_id=call.call_id,
        task=call,
        bridge_id=bridge,
        customer_endpoint=customer_leg.endpoint_id,
        operator_endpoint=_live(operator_leg),
        operator_id=operator_id,
        resource=_resource(snapshot, (call.caller.user_id, target.user_id), (call.caller.team_id,)),
    )


def view_of(task: CallTask, snapshot: DirectorySnapshot) -> CallView | None:
    """The monitorable view of a running call task, or None (not answered, no operator, or not
    a call at all, e.g. a monitoring session or another feature code)."""
    if isinstance(task, QueueCall):
        return _queue_view(task, snapshot)
    if isinstance(task, Call):
        return _call_view(task, snapshot)
    return None


class CallFinder(Protocol):
    """Finds monitorable calls (`LiveCalls` over the node's running calls)."""

    def find(self, call_id: str) -> CallView | None: ...

    def of_operator(self, operator_id: UserId) -> CallView | None: ...


class LiveCalls:
    """Finds monitorable calls among the node's running call tasks."""

    def __init__(
        self,
        calls: Callable[[], Iterable[CallTask]],
        directory: Callable[[], DirectorySnapshot],
    ) -> None:
        self._calls = calls
        self._directory = directory

    def find(self, call_id: str) -> CallView | None:
        snapshot = self._directory()
        for task in self._calls():
            if task.call_id == call_id:
                return view_of(task, snapshot)
        return None

    def of_operator(self, operator_id: UserId) -> CallView | None:
        """The operator's current call (the most recent one if, oddly, several)."""
        snapshot = self._directory()
        found = None
        for task in self._calls():
            view = view_of(task, snapshot)
            if view is not None and view.operator_id == operator_id:
                found = view
        return found

    def all(self) -> list[CallView]:
        snapshot = self._directory()
        views = (view_of(task, snapshot) for task in self._calls())
        return [view for view in views if view is not None]
