"""Recording of direct calls (not queue calls): extension to extension, an operator's outbound
call through a trunk, an inbound call routed straight to a user.

The policy is the users' (`recording` on a user in provisioning), else their team's, else the
nearest ancestor team's, else `none` (`direct_call_policy`). A call between two users takes the
stricter of their two policies (`all` over `on_demand` over `none`): a call is recorded when
either side's policy says so. The recorded operator (whose call it is, for the pause permission,
the search and the retention) is the side whose policy that is, the callee on a tie (a trunk
is never one). The tracks are the bridge's: `customer` is the caller, `operator` the callee.

`DirectCallRecording` is what the B2BUA call (`callwarden.telephony.call.Call`) calls when it is
answered and when it ends; it hands the call to `RecordingControl` like a queue call, so pause,
resume (API, DTMF codes of the recorded operator), on-demand start and stop, the pause timeout
and the manifest work the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import TeamId, UserId
from callwarden.domain.models import RecordingPolicy, User
from callwarden.telephony.recording_control import RecordingControl

if TYPE_CHECKING:
    from callwarden.telephony.call import Call

logger = logging.getLogger(__name__)

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


class DirectCallRecording:
    """The B2BUA calls' side of the recording control (built in the composition root)."""

    def __init__(
        self, control: RecordingControl, directory: Callable[[], DirectorySnapshot]
    ) -> None:
        self._control = control
        self._directory = directory

    async def answered(self, call: Call) -> None:
        """Hand the answered call to the recording control under its users' policy."""
        if call.bridge_id is None or call.inbound is None or call.outbound is None:
            return
        snapshot = self._directory()
        caller = _user(snapshot, call.caller.user_id)
        callee = _user(snapshot, call.target.user_id)
        caller_policy = direct_call_policy(snapshot, caller)
        callee_policy = direct_call_policy(snapshot, callee)
        policy = stricter(callee_policy, caller_policy)
        if policy is RecordingPolicy.NONE:
            return
        operator, endpoint = (
            (callee, call.outbound.endpoint_id)
            if callee is not None and callee_policy is policy
            else (caller, call.inbound.endpoint_id)
        )
        logger.info("call %s: direct call recorded by policy %s", call.call_id, policy.value)
        await self._control.call_connected(
            call_id=call.call_id,
            bridge_id=call.bridge_id,
            policy=policy,
            direction=call.caller.direction,
            operator_id=None if operator is None else operator.id,
            operator_endpoint=endpoint,
            team_id=None if operator is None else operator.team_id,
            caller_number=call.caller.label if caller is None else None,
        )

    async def ended(self, call: Call) -> None:
        """Stop the call's recording before its bridge goes."""
        await self._control.call_ended(call.call_id)


def _user(snapshot: DirectorySnapshot, user_id: UserId | None) -> User | None:
    return None if user_id is None else snapshot.user(user_id)
