"""The telephony side of the ACD: `QueueCalls` is the engine's `AcdCallHandler` (it rings
operators' phones for the engine's offers) and the queue calls' `Distributor` (it reports
arrivals, answers, failures and ends to the engine).

The engine calls `offer_call`, `withdraw_offer` and `overflow_call` from its own task and must
not be blocked: each becomes an event on the queue call's own queue. Reports go the other way
as awaited engine commands from the call's task.

Auto sign-in (`auto_sign_in`, setting `acd_auto_sign_in`, off by default): a queue member
whose phone registers while they are offline is signed in to all their queues as available.
Meant for the demo and tests; in production operators sign in from the web or their phone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from callwarden.acd.agent import AgentState
from callwarden.acd.clock import Clock
from callwarden.acd.engine import AcdEngine
from callwarden.acd.queue import OverflowAction
from callwarden.domain.cdr import RouteKind
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import DomainError
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import Queue, User
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.telephony.call_context import CallerInfo, OutboundTarget
from callwarden.telephony.media_policy import MediaPolicy
from callwarden.telephony.prompts import Prompts
from callwarden.telephony.queue_call import QueueCall
from callwarden.telephony.queue_events import (
    OfferAgent,
    Overflow,
    QueueCallServices,
    WithdrawAgent,
)
from callwarden.telephony.recording_control import RecordingControl
from callwarden.telephony.registrar import Registrar

logger = logging.getLogger(__name__)


class QueueCalls:
    """Queue calls of one node and their link to the node's `AcdEngine` (`bind`)."""

    def __init__(
        self,
        *,
        registrar: Registrar,
        directory: Callable[[], DirectorySnapshot],
        sdp_address: str,
        clock: Clock,
        prompts: Prompts | None = None,
        auto_sign_in: bool = False,
        recordings: RecordingControl | None = None,
        media_policy: MediaPolicy | None = None,
    ) -> None:
        """`prompts`: the announcement files (None: no announcements, tone hold music);
        `recordings`: records the calls by their queue's policy (None: nothing recorded)."""
        self._registrar = registrar
        self._recordings = recordings
        self._media_policy = media_policy if media_policy is not None else MediaPolicy()
        self._clock = clock
        self._prompts = prompts
        self._directory = directory
        self._sdp_address = sdp_address
        self.auto_sign_in = auto_sign_in
        self._engine: AcdEngine | None = None
        self._calls: dict[CallId, QueueCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def bind(self, engine: AcdEngine) -> None:
        """The engine whose handler this is (built with `calls=self`)."""
        self._engine = engine

    @property
    def engine(self) -> AcdEngine:
        if self._engine is None:
            raise RuntimeError("QueueCalls used before bind()")
        return self._engine

    def start_call(
        self,
        services: QueueCallServices,
        invite_tx: InviteServerTransaction,
        caller: CallerInfo,
        queue: Queue,
        *,
        on_finished: Callable[[QueueCall], None],
    ) -> QueueCall:
        """A queue call for a routed INVITE (the caller runs its `run()` as a task)."""

        def finished(call: QueueCall) -> None:
            if self._calls.get(call.call_id) is call:
                del self._calls[call.call_id]
            on_finished(call)

        call = QueueCall(
            services,
            self,
            invite_tx,
            caller,
            queue,
            clock=self._clock,
            prompts=self._prompts,
            on_finished=finished,
            recordings=self._recordings,
        )
        self._calls[call.call_id] = call
        return call

    # ---- AcdCallHandler (from the engine's task: post, never block) ----------------------------

    def offer_call(self, call_id: CallId, agent_id: UserId, queue_id: QueueId) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            call.post(OfferAgent(agent_id))

    def withdraw_offer(self, call_id: CallId, agent_id: UserId) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            call.post(WithdrawAgent(agent_id))

    def overflow_call(self, call_id: CallId, queue_id: QueueId, action: OverflowAction) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            call.post(Overflow(queue_id, action))

    # ---- Distributor (from the queue calls' tasks) -----------------------------------------

    async def call_arrived(self, call: QueueCall) -> int:
        return await self.engine.call_arrived(
            call.call_id, call.queue.id, caller=call.caller.label, priority=call.priority
        )

    async def offer_answered(self, call_id: CallId, agent_id: UserId) -> None:
        await self.engine.offer_answered(call_id, agent_id)

    async def offer_failed(self, call_id: CallId, agent_id: UserId) -> None:
        await self.engine.offer_failed(call_id, agent_id)

    async def call_ended(self, call_id: CallId) -> None:
        await self.engine.call_ended(call_id)

    def position(self, call_id: CallId) -> tuple[int, float] | None:
        """The call's position and expected wait (`AcdEngine.expected_wait`), None when the
        ACD no longer has it waiting."""
        try:
            return self.engine.position(call_id), self.engine.expected_wait(call_id)
        except DomainError:
            return None

    def agent_targets(self, agent_id: UserId, caller: CallerInfo) -> list[OutboundTarget]:
        """Every registered phone of the agent (they ring in parallel); an agent who must
        encrypt (media policy) only on phones registered over TLS, offered SRTP."""
        directory = self._directory()
        user = directory.user(agent_id)
        if user is None or not user.enabled:
            return []
        here = self._sdp_address
        label = user.extension or user.username
        policy = self._media_policy
        srtp = policy.requires_srtp(user, directory)
        return [
            OutboundTarget(
                request_uri=binding.contact,
                destination=binding.destination,
                from_address=f"<sip:{caller.label}@{here}>",
                to_address=f"<sip:{label}@{here}>",
                label=label,
                route_kind=RouteKind.QUEUE,
                flow=binding.destination,
                latch_host=binding.destination.host,
                user_id=user.id,
                srtp=srtp,
            )
            for binding in self._registrar.bindings(user.username)
            if policy.may_reach(user, binding.destination.transport, directory)
        ]

    # ---- agents ------------------------------------------------------------------------------

    def phone_registered(self, user: User) -> None:
        """A phone of `user` registered: with auto sign-in, sign an offline member in."""
        if not self.auto_sign_in or self._engine is None:
            return
        try:
            agent = self._engine.agent(user.id)
        except DomainError:
            return  # not a queue member
        if agent.state is AgentState.OFFLINE:
            self._spawn(self._sign_in(user.id))

    async def _sign_in(self, agent_id: UserId) -> None:
        try:
            await self.engine.sign_in(agent_id, changed_by=agent_id)
        except DomainError as error:
            logger.info("auto sign-in of agent %s refused: %s", agent_id, error)

    def _spawn(self, work: object) -> None:
        assert asyncio.iscoroutine(work)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
