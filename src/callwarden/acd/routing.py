"""Routing strategies: pure functions ranking a queue's available members for one call.

`rank_members(queue, members, call, ...)` gets the members that could take a call now (the
engine passes only AVAILABLE agents signed in to the queue) and returns them in the order to
try. The same rules hold for every strategy:

1. **Eligibility.** A member whose `skill_level` is below the required level (the queue's
   `required_skill_level` or the call's `required_skill`, whichever is higher) is left out.
2. **Penalty tiers.** Members are tried by ascending `penalty`: a member of tier 1 is only
   reached when nobody of tier 0 is left (for ring-all: tier 0 rings first, alone).
3. **Tried last.** Members are ranked first by how often this call was already offered to
   them (`tried`), so a no-answer moves the call on to everyone else before the same desk
   rings again.
4. **Within a tier**, the strategy decides; ties break by the member's place in the queue:

- `longest_idle`: earliest `idle_since` first;
- `round_robin`: the member after the one offered last (`round_robin_after`, a position in
  the queue's member list, kept by the engine between decisions), wrapping around;
- `fewest_calls`: fewest `calls_taken` (today), then longest idle;
- `ring_all`: every member of the first tier at once (`ring_together` tells the engine);
- `skills`: highest `skill_level` first, then longest idle.

Ordering of *waiting calls* (priority, then arrival) belongs to `callwarden.acd.queue`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from callwarden.domain.ids import UserId
from callwarden.domain.models import Queue, QueueStrategy

__all__ = ["CallNeeds", "MemberStatus", "first_tier", "rank_members", "ring_together"]


class MemberStatus(NamedTuple):
    """An available member of a queue, with what the strategies look at (a named tuple: the
    engine builds one per available member per decision, so it must be cheap)."""

    user_id: UserId
    position: int
    """Index of the member in `Queue.members` (the configured order)."""
    penalty: int = 0
    skill_level: int = 1
    idle_since: float = 0.0
    calls_taken: int = 0


@dataclass(frozen=True, slots=True)
class CallNeeds:
    """What a waiting call asks of the agent who takes it."""

    priority: int = 0
    required_skill: int = 0


_SortKey = Callable[[MemberStatus], tuple[float, ...]]


def _longest_idle(member: MemberStatus) -> tuple[float, ...]:
    return (member.idle_since, member.position)


def _fewest_calls(member: MemberStatus) -> tuple[float, ...]:
    return (member.calls_taken, member.idle_since, member.position)


def _skills(member: MemberStatus) -> tuple[float, ...]:
    return (-member.skill_level, member.idle_since, member.position)


def _in_order(member: MemberStatus) -> tuple[float, ...]:
    return (member.position,)


def _round_robin(after: int | None) -> _SortKey:
    if after is None:
        return _in_order

    def key(member: MemberStatus) -> tuple[float, ...]:
        return (member.position <= after, member.position)

    return key


def rank_members(
    queue: Queue,
    members: Iterable[MemberStatus],
    call: CallNeeds = CallNeeds(),
    *,
    round_robin_after: int | None = None,
    tried: Mapping[UserId, int] | None = None,
) -> tuple[MemberStatus, ...]:
    """The eligible `members`, in the order `queue.strategy` offers them `call`."""
    required = max(queue.required_skill_level, call.required_skill)
    strategy = queue.strategy
    if strategy is QueueStrategy.ROUND_ROBIN:
        within = _round_robin(round_robin_after)
    elif strategy is QueueStrategy.FEWEST_CALLS:
        within = _fewest_calls
    elif strategy is QueueStrategy.SKILLS:
        within = _skills
    elif strategy is QueueStrategy.RING_ALL:
        within = _in_order
    else:
        within = _longest_idle
    eligible = [member for member in members if member.skill_level >= required]
    if tried:
        eligible.sort(key=lambda m: (tried.get(m.user_id, 0), m.penalty, *within(m)))
    else:
        eligible.sort(key=lambda m: (m.penalty, *within(m)))
    return tuple(eligible)


def ring_together(queue: Queue) -> bool:
    """Whether the engine offers a call to the whole first tier at once (ring-all)."""
    return queue.strategy is QueueStrategy.RING_ALL


def first_tier(ranked: Sequence[MemberStatus]) -> tuple[MemberStatus, ...]:
    """The leading members sharing the first one's penalty: what ring-all
    rings together."""
    if not ranked:
        return ()
    penalty = ranked[0].penalty
    tier = []
    for member in ranked:
        if member.penalty != penalty:
            break
        tier.append(member)
    return tuple(tier)
