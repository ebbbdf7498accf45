"""Voicemail-style overflow: the caller leaves a message, recorded and sealed like any call.

After the queue's maximum wait (`Queue.overflow` = `voicemail`) the caller hears the cue, a
1 kHz tone for one second ("speak after the tone"), then silence while their own track is
recorded by the recorder (`RecordingControl.call_connected` with the `all` policy: a message is
asked for, so it is kept whatever the queue's policy for conversations). The recording has no
operator; it carries the call id, the queue, the queue's team and the caller's number (sealed),
so the recordings pages find it by queue like any other. It ends when the caller hangs up or
after `MAX_MESSAGE_SECONDS` (then the node hangs up). The CDR says `no_answer`, cause
`overflow: voicemail`.

A node without a recorder (`QueueCalls(recordings=None)`) cannot take messages: the caller
hears the closing message and is hung up, as for `hangup`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callwarden.domain.models import RecordingPolicy

if TYPE_CHECKING:
    from callwarden.telephony.queue_call import QueueCall
    from callwarden.telephony.recording_control import RecordingControl

__all__ = ["CUE_HZ", "CUE_SECONDS", "MAX_MESSAGE_SECONDS", "start_message"]

CUE_HZ = (1000.0,)
CUE_SECONDS = 1.0
MAX_MESSAGE_SECONDS = 120.0
CUE_TIMER = "voicemail-cue"
LIMIT_TIMER = "voicemail-limit"


async def start_message(recordings: RecordingControl, call: QueueCall) -> None:
    """Record what the caller says from now on (the players must have left the bridge)."""
    assert call.bridge_id is not None
    label = call.caller.label
    await recordings.call_connected(
        call_id=call.call_id,
        bridge_id=call.bridge_id,
        policy=RecordingPolicy.ALL,
        direction=call.caller.direction,
        operator_id=None,
        operator_endpoint=None,
        queue_id=call.queue.id,
        team_id=call.queue.team_id,
        caller_number=label if label.lstrip("+").isdigit() else None,
    )
