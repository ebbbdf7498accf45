"""Typed identifiers, so a team id can never be passed where a user id is expected.

Configuration objects (teams, roles, users, trunks, queues) and call detail records have
integer surrogate keys assigned by the store. A call is identified by a string that the
telephony layer chooses (the Call-ID of the call's first leg).
"""

from __future__ import annotations

from typing import NewType

TeamId = NewType("TeamId", int)
RoleId = NewType("RoleId", int)
UserId = NewType("UserId", int)
TrunkId = NewType("TrunkId", int)
QueueId = NewType("QueueId", int)
CdrId = NewType("CdrId", int)

CallId = NewType("CallId", str)
RecordingId = NewType("RecordingId", str)
