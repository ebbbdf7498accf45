"""Who the operator of a direct call (not a queue call) is: one rule for recording and
monitoring.

The direct-call recording policy is the users' (`recording` on a user in provisioning), else
their team's, else the nearest ancestor team's, else `none` (`direct_call_policy`). A call
between two users takes the stricter of their two policies (`all` over `on_demand` over
`none`). The call's operator (whose call it is: the recorded operator, the one a supervisor
monitors, whispers to and replaces on a takeover) is the side whose policy that is, the callee
on a tie (a trunk is never one): the callee of an extension-to-extension call, the caller of an
operator's own outbound call (to a trunk, or to a colleague whose policy records less). The
other side is the customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import TeamId, UserId
from callwarden.domain.models import RecordingPolicy, User

__all__ = ["DirectCallSides", "direct_call_policy", "direct_call_sides", "stricter", "user_of"]

_STRICTNESS = {RecordingPolicy.NONE: 0, RecordingPolicy.ON_DEMAND: 1, RecordingPolicy.ALL: 2}


def direct_call_policy(snapshot: DirectorySnapshot, user: User | None) -> RecordingPolicy:
    """The direct-call recording policy of `user`: their own, else the nearest team's up the
    team tree, else `none` (also for no user: a trunk)."""
    if user is None:
        return RecordingPolicy.NONE
    if user.recording is not None:
        return user.recording
    team_id = user.team_id
    seen: set[TeamId] = set()
    while team_id is not None and team_id not in seen:
        seen.add(team_id)
        team = snapshot.team(team_id)
        if team is None:
            break
        if team.recording is not None:
            return team.recording
        team_id = team.parent_id
    return RecordingPolicy.NONE


def stricter(first: RecordingPolicy, second: RecordingPolicy) -> RecordingPolicy:
    return first if _STRICTNESS[first] >= _STRICTNESS[second] else second


@dataclass(frozen=True, slots=True)
class DirectCallSides:
    """Who the operator of a direct call is: the side whose policy applies (the callee on a
    tie or when neither records; the caller when the callee is a trunk)."""

    policy: RecordingPolicy
    operator: User | None
    operator_is_caller: bool

    @property
    def bridge_roles(self) -> tuple[str, str]:
        """The bridge roles of (caller, callee): the operator's side is `operator`."""
        return ("operator", "customer") if self.operator_is_caller else ("customer", "operator")


def direct_call_sides(
    snapshot: DirectorySnapshot, caller_id: UserId | None, callee_id: UserId | None
) -> DirectCallSides:
    """The policy of a call between `caller_id` and `callee_id` (None: a trunk) and its
    operator's side."""
    caller, callee = user_of(snapshot, caller_id), user_of(snapshot, callee_id)
    caller_policy = direct_call_policy(snapshot, caller)
    callee_policy = direct_call_policy(snapshot, callee)
    policy = stricter(callee_policy, caller_policy)
    if callee is not None and callee_policy is policy:
        return DirectCallSides(policy, callee, operator_is_caller=False)
    return DirectCallSides(policy, caller, operator_is_caller=caller is not None)


def user_of(snapshot: DirectorySnapshot, user_id: UserId | None) -> User | None:
    return None if user_id is None else snapshot.user(user_id)
