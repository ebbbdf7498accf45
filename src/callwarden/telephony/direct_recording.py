"""Recording of direct calls (not queue calls): extension to extension, an operator's outbound
call through a trunk, an inbound call routed straight to a user.

The policy is the users' (`recording` on a user in provisioning), else their team's, else the
nearest ancestor team's, else `none` (`direct_call_policy`). A call between two users takes the
stricter of their two policies (`all` over `on_demand` over `none`): a call is recorded when
either side's policy says so. The recorded operator (whose call it is, for the pause permission,
the search and the retention) is the side whose policy that is, the callee on a tie (a trunk
is never one): the rule is `callwarden.telephony.call_sides`, which monitoring follows too (the
operator a supervisor whispers to and replaces on a takeover). That side joins the call's
bridge as `operator` and the far party as `customer` (`bridge_roles`, asked by the call before
its legs join the bridge), so the recorded operator is always on the `operator` track: the
callee of an extension-to-extension call, the caller of an operator's own outbound call (to a
trunk, or to a colleague whose policy records less).
The number kept with the recording (sealed, searchable) is the far party's: an outside caller's,
or the number an operator dialled through a trunk.

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
from callwarden.domain.models import RecordingPolicy
from callwarden.telephony.call_sides import (
    DirectCallSides,
    direct_call_policy,
    direct_call_sides,
    stricter,
    user_of,
)
from callwarden.telephony.recording_control import RecordingControl

if TYPE_CHECKING:
    from callwarden.telephony.call import Call

__all__ = [
    "DirectCallRecording",
    "DirectCallSides",
    "direct_call_policy",
    "direct_call_sides",
    "stricter",
]

logger = logging.getLogger(__name__)


class DirectCallRecording:
    """The B2BUA calls' side of the recording control (built in the composition root)."""

    def __init__(
        self, control: RecordingControl, directory: Callable[[], DirectorySnapshot]
    ) -> None:
        self._control = control
        self._directory = directory

    def bridge_roles(self, call: Call) -> tuple[str, str]:
        """The bridge roles of the call's (caller, callee) legs, decided before it rings (the
        first target's user stands for the callee: a call's targets are one user's phones)."""
        sides = direct_call_sides(self._directory(), call.caller.user_id, call.targets[0].user_id)
        return sides.bridge_roles

    async def answered(self, call: Call) -> None:
        """Hand the answered call to the recording control under its users' policy."""
        if call.bridge_id is None or call.inbound is None or call.outbound is None:
            return
        snapshot = self._directory()
        sides = direct_call_sides(snapshot, call.caller.user_id, call.target.user_id)
        policy, operator = sides.policy, sides.operator
        if policy is RecordingPolicy.NONE:
            return
        endpoint = (call.inbound if sides.operator_is_caller else call.outbound).endpoint_id
        logger.info("call %s: direct call recorded by policy %s", call.call_id, policy.value)
        await self._control.call_connected(
            call_id=call.call_id,
            bridge_id=call.bridge_id,
            policy=policy,
            direction=call.caller.direction,
            operator_id=None if operator is None else operator.id,
            operator_endpoint=endpoint,
            team_id=None if operator is None else operator.team_id,
            caller_number=_far_number(snapshot, call, sides),
        )

    async def ended(self, call: Call) -> None:
        """Stop the call's recording before its bridge goes."""
        await self._control.call_ended(call.call_id)


def _far_number(snapshot: DirectorySnapshot, call: Call, sides: DirectCallSides) -> str | None:
    """The customer's number kept (sealed) with the recording: the number an operator dialled
    through a trunk, or an outside caller's; None between two users."""
    if sides.operator_is_caller:
        return call.target.label if call.target.trunk_id is not None else None
    return call.caller.label if user_of(snapshot, call.caller.user_id) is None else None
