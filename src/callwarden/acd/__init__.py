"""The automatic call distributor: agent states, queues, routing strategies, wrap-up and live
statistics (docs/acd.md). It knows no SIP: `AcdEngine` tells its owner (`AcdCallHandler`,
the telephony layer) which call to offer to whom. Imports `domain`, `bus` and `store` only.
"""

from callwarden.acd.agent import (
    DEFAULT_BREAK_REASONS,
    MISSED_REASON,
    Agent,
    AgentState,
    BreakReasons,
    transition,
)
from callwarden.acd.clock import Clock, TimerHandle, WallClock
from callwarden.acd.engine import AcdEngine
from callwarden.acd.errors import (
    AgentEngagedElsewhere,
    DuplicateCall,
    EngineNotRunning,
    IllegalTransition,
    NotAMember,
    OfferNotPending,
    UnknownAgent,
    UnknownBreakReason,
    UnknownCall,
    UnknownQueue,
    WrapUpLimitReached,
)
from callwarden.acd.events import ACD_EVENT_TYPES
from callwarden.acd.queue import OverflowAction, OverflowKind, WaitingCall
from callwarden.acd.routing import CallNeeds, MemberStatus, rank_members
from callwarden.acd.runtime import CallPhase
from callwarden.acd.settings import AcdCallHandler, AcdSettings
from callwarden.acd.statistics import (
    CenterFigures,
    Figures,
    StatisticsAccumulator,
    compute_statistics,
)

__all__ = [
    "ACD_EVENT_TYPES",
    "DEFAULT_BREAK_REASONS",
    "MISSED_REASON",
    "AcdCallHandler",
    "AcdEngine",
    "AcdSettings",
    "Agent",
    "AgentEngagedElsewhere",
    "AgentState",
    "BreakReasons",
    "CallNeeds",
    "CallPhase",
    "CenterFigures",
    "Clock",
    "DuplicateCall",
    "EngineNotRunning",
    "Figures",
    "IllegalTransition",
    "MemberStatus",
    "NotAMember",
    "OfferNotPending",
    "OverflowAction",
    "OverflowKind",
    "StatisticsAccumulator",
    "TimerHandle",
    "UnknownAgent",
    "UnknownBreakReason",
    "UnknownCall",
    "UnknownQueue",
    "WaitingCall",
    "WallClock",
    "WrapUpLimitReached",
    "compute_statistics",
    "rank_members",
    "transition",
]
