"""The web tests' ACD with one north queue (operator, supervisor as agents) and one south queue
(stranger), served by the application of `env`, so that a test puts an operator on a call and
into wrap-up the way the telephony layer does (`call_arrived`, `offer_answered`,
`call_ended`)."""

from __future__ import annotations

import dataclasses

from callwarden.acd.engine import AcdEngine
from callwarden.bus.in_process import InProcessBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId, TeamId
from callwarden.domain.models import Queue, QueueMember
from callwarden.web.app import create_app
from web.support import Env, build_acd

NORTH_QUEUE, SOUTH_QUEUE = QueueId(81), QueueId(82)


def _team(env: Env, name: str) -> TeamId:
    return next(team.id for team in env.snapshot.teams if team.name == name)


async def serve_acd(env: Env) -> AcdEngine:
    """Starts an ACD with the two queues and serves `env.app` over it."""
    members = {
        NORTH_QUEUE: ("north", ("operator", "supervisor")),
        SOUTH_QUEUE: ("south", ("stranger",)),
    }
    queues = [
        Queue(
            id=queue_id,
            name=f"q{queue_id}",
            display_name=f"Queue {queue_id}",
            number=f"8{queue_id}",
            team_id=_team(env, team),
            members=tuple(QueueMember(env.user(name).id) for name in names),
        )
        for queue_id, (team, names) in members.items()
    ]
    snapshot = env.snapshot
    with_queues = DirectorySnapshot(
        teams=snapshot.teams, roles=snapshot.roles, users=snapshot.users, queues=queues
    )
    engine = build_acd(with_queues, InProcessBus())
    await engine.start()
    env.app = create_app(dataclasses.replace(env.services, acd=lambda: engine))
    env.acd = engine
    return engine


async def connect(
    env: Env, engine: AcdEngine, username: str, call_id: str, queue_id: QueueId, caller: str
) -> None:
    """`username` signs in, is offered `call_id` from `caller` and answers it."""
    agent_id = env.user(username).id
    await engine.sign_in(agent_id, [queue_id])
    await engine.call_arrived(CallId(call_id), queue_id, caller=caller)
    await engine.settled()
    await engine.offer_answered(CallId(call_id), agent_id)
    await engine.settled()
