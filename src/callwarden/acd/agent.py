"""The agent state machine: one enum, immutable agents, and one transition function.

States (DESIGN.md "Names"): OFFLINE, AVAILABLE, RINGING, ON_CALL, WRAP_UP, BREAK (with a
reason). `transition(agent, event, now)` returns the agent after `event` at monotonic time
`now`, or raises `IllegalTransition`; the table `TRANSITIONS` lists every legal move, and
docs/acd.md draws it.

Ring no-answer: each `NoAnswer` counts a consecutive missed offer; when the count reaches the
queue's `max_no_answer`, the agent goes on BREAK with reason `missed` (and the count restarts),
so calls stop ringing an empty desk. Answering resets the count.

Pausing: a break or a sign-out is legal whenever the agent is not on a call; while RINGING it
abandons the offer (the owner of the offer withdraws it), which is not a missed offer.

Wrap-up: `EndCall(wrap_up_seconds)` enters WRAP_UP until `now + wrap_up_seconds` (straight to
AVAILABLE when zero). The operator may `ExtendWrapUp` while wrapping up, by at most `limit`
seconds in total for that call. The owner of the timers (the engine) sends `MakeAvailable`
when wrap-up is over.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from callwarden.acd.errors import IllegalTransition, UnknownBreakReason, WrapUpLimitReached
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId

__all__ = [
    "DEFAULT_BREAK_REASONS",
    "MISSED_REASON",
    "TRANSITIONS",
    "Agent",
    "AgentEvent",
    "AgentState",
    "Answer",
    "BreakReasons",
    "ChangeQueues",
    "EndCall",
    "ExtendWrapUp",
    "MakeAvailable",
    "NoAnswer",
    "Offer",
    "SignIn",
    "SignOut",
    "TakeBreak",
    "WithdrawOffer",
    "transition",
]

MISSED_REASON = "missed"
"""The break reason the system sets after too many unanswered offers."""

DEFAULT_BREAK_REASONS: tuple[str, ...] = ("lunch", "training", "meeting", "personal")


class AgentState(enum.Enum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    BREAK = "break"


@dataclass(frozen=True, slots=True)
class Agent:
    """An operator as the ACD sees them. Times are monotonic seconds.

    `idle_since` is when the agent last became AVAILABLE from another state than RINGING
    (signing in, the end of a break or of wrap-up): the longest-idle strategy ranks by it.
    `call_id`/`queue_id` name the call offered, in progress or being wrapped up.
    """

    user_id: UserId
    team_id: TeamId | None = None
    state: AgentState = AgentState.OFFLINE
    since: float = 0.0
    idle_since: float = 0.0
    break_reason: str | None = None
    queue_ids: frozenset[QueueId] = frozenset()
    call_id: CallId | None = None
    queue_id: QueueId | None = None
    missed_offers: int = 0
    calls_taken: int = 0
    call_started: float | None = None
    talk_seconds: float = 0.0
    wrap_up_until: float | None = None
    wrap_up_extended: float = 0.0

    def time_in_state(self, now: float) -> float:
        return max(0.0, now - self.since)

    @property
    def signed_in(self) -> bool:
        return self.state is not AgentState.OFFLINE


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignIn:
    queue_ids: frozenset[QueueId]


@dataclass(frozen=True, slots=True)
class SignOut:
    pass


@dataclass(frozen=True, slots=True)
class ChangeQueues:
    """Sign in to another set of queues without changing state."""

    queue_ids: frozenset[QueueId]


@dataclass(frozen=True, slots=True)
class MakeAvailable:
    """Back from a break, or wrap-up over (its timer, or the operator ending it early)."""


@dataclass(frozen=True, slots=True)
class TakeBreak:
    """Build it with `BreakReasons.take_break` so the reason is one of the configured ones."""

    reason: str


@dataclass(frozen=True, slots=True)
class Offer:
    call_id: CallId
    queue_id: QueueId


@dataclass(frozen=True, slots=True)
class Answer:
    pass


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """The offer rang out or was refused; `max_no_answer` is the queue's (0: never break)."""

    max_no_answer: int


@dataclass(frozen=True, slots=True)
class WithdrawOffer:
    """The offer ended through no fault of the agent (caller gone, another agent answered)."""


@dataclass(frozen=True, slots=True)
class EndCall:
    wrap_up_seconds: float


@dataclass(frozen=True, slots=True)
class ExtendWrapUp:
    seconds: float
    limit: float


AgentEvent = (
    SignIn
    | SignOut
    | ChangeQueues
    | MakeAvailable
    | TakeBreak
    | Offer
    | Answer
    | NoAnswer
    | WithdrawOffer
    | EndCall
    | ExtendWrapUp
)


class BreakReasons:
    """The configured break reasons (`missed` is always accepted: the system uses it)."""

    __slots__ = ("codes",)

    def __init__(self, codes: Iterable[str] = DEFAULT_BREAK_REASONS) -> None:
        cleaned = tuple(code.strip() for code in codes)
        if any(not code for code in cleaned):
            raise UnknownBreakReason("break reasons must not be empty")
        self.codes: tuple[str, ...] = tuple(dict.fromkeys((*cleaned, MISSED_REASON)))

    def take_break(self, reason: str) -> TakeBreak:
        if reason not in self.codes:
            raise UnknownBreakReason(
                f"unknown break reason {reason!r}",
                details={"reason": reason, "allowed": list(self.codes)},
            )
        return TakeBreak(reason)


# -- transitions --------------------------------------------------------------------------------

_AGENT_FIELDS = tuple(field.name for field in fields(Agent))
_new_object = object.__new__
_set_attribute = object.__setattr__


def _replace(agent: Agent, **changes: object) -> Agent:
    """`dataclasses.replace` for `Agent` (which has no `__post_init__`) without its generic
    overhead: a ring-all offer moves a whole tier of agents, so this is on the routing path."""
    new: Agent = _new_object(Agent)
    for name in _AGENT_FIELDS:
        _set_attribute(new, name, changes[name] if name in changes else getattr(agent, name))
    return new


def _offered(agent: Agent, event: Offer, now: float) -> Agent:
    """RINGING with `event`'s call: `_enter` spelled out field by field, at half its cost (a
    ring-all offer moves each agent of a tier; tests/acd/test_agent.py holds it to `_enter`)."""
    return Agent(
        agent.user_id,
        agent.team_id,
        AgentState.RINGING,
        now,
        agent.idle_since,
        agent.break_reason,
        agent.queue_ids,
        event.call_id,
        event.queue_id,
        agent.missed_offers,
        agent.calls_taken,
        agent.call_started,
        agent.talk_seconds,
        agent.wrap_up_until,
        agent.wrap_up_extended,
    )


def _enter(agent: Agent, state: AgentState, now: float, **changes: object) -> Agent:
    return _replace(agent, state=state, since=now, **changes)


def _becoming_available(agent: Agent, now: float) -> Agent:
    return _enter(
        agent,
        AgentState.AVAILABLE,
        now,
        idle_since=now,
        break_reason=None,
        call_id=None,
        queue_id=None,
        call_started=None,
        talk_seconds=0.0,
        wrap_up_until=None,
        wrap_up_extended=0.0,
    )


def _sign_in(agent: Agent, event: SignIn, now: float) -> Agent:
    return _replace(_becoming_available(agent, now), queue_ids=event.queue_ids, missed_offers=0)


def _sign_out(agent: Agent, now: float) -> Agent:
    return _enter(
        agent,
        AgentState.OFFLINE,
        now,
        break_reason=None,
        queue_ids=frozenset(),
        call_id=None,
        queue_id=None,
        call_started=None,
        talk_seconds=0.0,
        wrap_up_until=None,
        wrap_up_extended=0.0,
        missed_offers=0,
    )


def _take_break(agent: Agent, event: TakeBreak, now: float) -> Agent:
    if not event.reason:
        raise UnknownBreakReason("a break needs a reason")
    if agent.state is AgentState.BREAK:  # a change of reason keeps the time in state
        return _replace(agent, break_reason=event.reason)
    return _enter(
        agent,
        AgentState.BREAK,
        now,
        break_reason=event.reason,
        call_id=None,
        queue_id=None,
        call_started=None,
        talk_seconds=0.0,
        wrap_up_until=None,
        wrap_up_extended=0.0,
    )


def _answer(agent: Agent, now: float) -> Agent:
    return _enter(
        agent,
        AgentState.ON_CALL,
        now,
        missed_offers=0,
        calls_taken=agent.calls_taken + 1,
        call_started=now,
    )


def _no_answer(agent: Agent, event: NoAnswer, now: float) -> Agent:
    missed = agent.missed_offers + 1
    if event.max_no_answer > 0 and missed >= event.max_no_answer:
        return _enter(
            agent,
            AgentState.BREAK,
            now,
            break_reason=MISSED_REASON,
            missed_offers=0,
            call_id=None,
            queue_id=None,
        )
    return _enter(
        agent, AgentState.AVAILABLE, now, missed_offers=missed, call_id=None, queue_id=None
    )


def _end_call(agent: Agent, event: EndCall, now: float) -> Agent:
    if event.wrap_up_seconds < 0:
        raise IllegalTransition("wrap-up cannot be negative")
    talk = now - (agent.call_started if agent.call_started is not None else now)
    if event.wrap_up_seconds == 0:
        return _becoming_available(agent, now)
    return _enter(
        agent,
        AgentState.WRAP_UP,
        now,
        talk_seconds=talk,
        wrap_up_until=now + event.wrap_up_seconds,
        wrap_up_extended=0.0,
    )


def _extend_wrap_up(agent: Agent, event: ExtendWrapUp, now: float) -> Agent:
    if event.seconds <= 0:
        raise WrapUpLimitReached(
            "an extension must be positive", details={"seconds": event.seconds}
        )
    remaining = event.limit - agent.wrap_up_extended
    if event.seconds > remaining:
        raise WrapUpLimitReached(
            f"wrap-up can be extended by {max(remaining, 0.0):g} more seconds",
            details={"remaining_seconds": max(remaining, 0.0)},
        )
    until = agent.wrap_up_until if agent.wrap_up_until is not None else now
    return _replace(
        agent,
        wrap_up_until=until + event.seconds,
        wrap_up_extended=agent.wrap_up_extended + event.seconds,
    )


_S = AgentState
_SIGNED_IN = frozenset({_S.AVAILABLE, _S.RINGING, _S.ON_CALL, _S.WRAP_UP, _S.BREAK})

TRANSITIONS: Mapping[type[AgentEvent], frozenset[AgentState]] = MappingProxyType(
    {
        SignIn: frozenset({_S.OFFLINE}),
        SignOut: frozenset({_S.AVAILABLE, _S.RINGING, _S.WRAP_UP, _S.BREAK}),
        ChangeQueues: _SIGNED_IN,
        MakeAvailable: frozenset({_S.BREAK, _S.WRAP_UP}),
        TakeBreak: frozenset({_S.AVAILABLE, _S.RINGING, _S.WRAP_UP, _S.BREAK}),
        Offer: frozenset({_S.AVAILABLE}),
        Answer: frozenset({_S.RINGING}),
        NoAnswer: frozenset({_S.RINGING}),
        WithdrawOffer: frozenset({_S.RINGING}),
        EndCall: frozenset({_S.ON_CALL}),
        ExtendWrapUp: frozenset({_S.WRAP_UP}),
    }
)
"""For each event, the states it is legal in; anything else raises `IllegalTransition`."""


def transition(agent: Agent, event: AgentEvent, now: float) -> Agent:
    """The agent after `event` at monotonic time `now`; raises `IllegalTransition`."""
    if agent.state not in TRANSITIONS[type(event)]:
        raise IllegalTransition(
            f"agent {agent.user_id}: {type(event).__name__} is not allowed in state "
            f"{agent.state.value}",
            details={
                "agent": agent.user_id,
                "state": agent.state.value,
                "event": type(event).__name__,
            },
        )
    match event:
        case SignIn():
            return _sign_in(agent, event, now)
        case SignOut():
            return _sign_out(agent, now)
        case ChangeQueues():
            return _replace(agent, queue_ids=event.queue_ids)
        case MakeAvailable():
            return _becoming_available(agent, now)
        case TakeBreak():
            return _take_break(agent, event, now)
        case Offer():
            return _offered(agent, event, now)
        case Answer():
            return _answer(agent, now)
        case NoAnswer():
            return _no_answer(agent, event, now)
        case WithdrawOffer():
            return _enter(agent, AgentState.AVAILABLE, now, call_id=None, queue_id=None)
        case EndCall():
            return _end_call(agent, event, now)
        case ExtendWrapUp():
            return _extend_wrap_up(agent, event, now)
