"""The CDR of a queue call (written once, when the call task ends)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from callwarden.acd.queue import OverflowKind
from callwarden.domain.cdr import CdrLeg, Disposition, HangupSide, LegRole, NewCdr, RouteKind
from callwarden.telephony.call import monitor_cdr_legs

if TYPE_CHECKING:
    from callwarden.telephony.queue_call import QueueCall

__all__ = ["disposition", "queue_cdr"]


def disposition(call: QueueCall) -> Disposition:
    if call.answered_at is not None:
        return Disposition.ANSWERED
    if call.overflowed is not None and call.overflowed is not OverflowKind.QUEUE:
        return Disposition.NO_ANSWER  # out of the queues: a message, a user, voicemail
    if call.hangup_side is HangupSide.CALLER:
        return Disposition.CANCELLED
    if call.overflowed is not None:
        return Disposition.NO_ANSWER
    return Disposition.FAILED


def queue_cdr(call: QueueCall, ended: datetime) -> NewCdr:
    """The call's record, its legs (caller, operator if any) included."""
    caller = call.caller
    legs = tuple(
        CdrLeg(
            role=leg.role,
            sip_call_id=leg.dialog.call_id if leg.dialog else call.call_id,
            uri=leg.uri[:500],
            started_at=leg.started_at,
            answered_at=leg.answered_at,
            ended_at=max(leg.ended_at or ended, leg.answered_at or leg.started_at),
            sip_status=leg.sip_status,
            user_id=caller.user_id if leg.role is LegRole.CALLER else call.agent_id,
            trunk_id=caller.trunk_id if leg.role is LegRole.CALLER else None,
        )
        for leg in (call.inbound, call.agent_leg)
        if leg is not None
    ) + monitor_cdr_legs(call.monitor_legs, ended)
    return NewCdr(
        call_id=call.call_id,
        direction=caller.direction,
        caller=caller.label,
        callee=call.agent_label or call.queue.number,
        dialled_number=caller.dialled,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=max(ended, call.answered_at or call.started_at),
        disposition=disposition(call),
        route_kind=RouteKind.QUEUE,
        hangup_cause=(call.hangup_cause or "")[:200] or None,
        sip_status=call.final_status,
        hangup_side=call.hangup_side,
        caller_user_id=caller.user_id,
        callee_user_id=call.agent_id,
        queue_id=call.queue.id,
        trunk_id=caller.trunk_id,
        team_id=call.queue.team_id,
        legs=legs,
    )
