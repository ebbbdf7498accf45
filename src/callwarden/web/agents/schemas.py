"""Request and response models of the agent routes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from callwarden.acd.agent import Agent
from callwarden.domain.models import User
from callwarden.web.schemas import RequestModel, ResponseModel

ReasonCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
"""A break reason code as configured (`lunch`, `training`): lower-case, at most 40 characters."""


class AgentView(ResponseModel):
    """An agent as the ACD sees them now; `queue_ids` are the queues signed in to."""

    user_id: int
    username: str
    team_id: int | None
    state: str
    break_reason: str | None
    queue_ids: list[int]
    time_in_state_seconds: float
    calls_taken: int

    @classmethod
    def of(cls, user: User, agent: Agent, now: float) -> AgentView:
        return cls(
            user_id=user.id,
            username=user.username,
            team_id=agent.team_id if agent.team_id is not None else user.team_id,
            state=agent.state.value,
            break_reason=agent.break_reason,
            queue_ids=sorted(agent.queue_ids),
            time_in_state_seconds=round(agent.time_in_state(now), 3),
            calls_taken=agent.calls_taken,
        )


class AgentList(ResponseModel):
    items: list[AgentView]


class AgentListQuery(BaseModel):
    """`team`: only the agents of that team (which the caller must watch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


AgentListParameters = Annotated[AgentListQuery, Query()]


def _reason_matches_state(state: str, reason: str | None) -> None:
    if state == "break" and reason is None:
        raise ValueError("a break needs a reason")
    if state != "break" and reason is not None:
        raise ValueError("only a break takes a reason")


class OwnStateChange(RequestModel):
    """`available` (signing in to every own queue when offline), `break` with a configured
    reason code, or `offline` (sign out)."""

    state: Literal["available", "break", "offline"]
    reason: ReasonCode | None = None

    @model_validator(mode="after")
    def _reason(self) -> OwnStateChange:
        _reason_matches_state(self.state, self.reason)
        return self


class ForcedStateChange(RequestModel):
    """What a supervisor may do to an operator of their team: a break or a sign-out."""

    state: Literal["break", "offline"]
    reason: ReasonCode | None = None

    @model_validator(mode="after")
    def _reason(self) -> ForcedStateChange:
        _reason_matches_state(self.state, self.reason)
        return self
