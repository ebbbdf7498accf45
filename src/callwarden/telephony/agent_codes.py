"""Agent feature codes: an operator changes their own ACD state from their phone.

By default (`AgentCodes`, from the node's settings):

| code | what |
|---|---|
| `*51` | sign in to all own queues (available) |
| `*52` | sign out |
| `*53` | break, for the first configured reason; `*53` + digit N: the N-th reason |
| `*54` | available again (from a break or wrap-up; signs an offline agent in) |

The same rules as the web (`/api/v1/agents/me`): the caller needs `agent_state.change_own`
on their own agent (`authorize`), the change goes to the node's `AcdEngine` with
`changed_by` = the caller, and it is audited as `agent.state.change` (before, after, the
phone's address, source `phone`); asking for the state one is already in changes nothing and
records nothing. A refused code is audited as denied.

The phone hears the outcome: a change (or nothing to change) is answered with 200 and a short
confirmation tone (two 880 Hz beeps), then BYE; a refusal gets a SIP error with the reason as
its phrase (403 not allowed or not now, 404 not a queue member or no such break reason, 503
no ACD). These calls write no CDR: nobody is called.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from callwarden.acd.agent import Agent, AgentState
from callwarden.acd.clock import Clock
from callwarden.acd.engine import AcdEngine
from callwarden.acd.errors import EngineNotRunning, UnknownAgent
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import DomainError, JsonValue, NotFound
from callwarden.domain.models import User
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Resource, ResourceKind, authorize
from callwarden.media.control import MediaError
from callwarden.security.audit_model import AuditAction, AuditActor, AuditEvent, AuditOutcome
from callwarden.sip.dialog import DialogState
from callwarden.sip.message import SipRequest, make_response
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.telephony.call import CallEvent, Hangup, InDialogRequest, Leg
from callwarden.telephony.call_context import CallerInfo
from callwarden.telephony.call_task import AnsweredHereTask, CallTask
from callwarden.telephony.dialplan import ToFeature
from callwarden.telephony.features import check_feature_code
from callwarden.telephony.queue_answer import AnsweredCaller, answer_caller
from callwarden.telephony.queue_events import QueueCallOver, QueueCallServices, TimerDue
from callwarden.telephony.queue_timers import CallTimers

logger = logging.getLogger(__name__)

__all__ = ["CONFIRM_TONE_HZ", "AgentCodes", "AgentFeatures", "DialledAgentCode"]

CONFIRM_TONE_HZ = 880.0
CONFIRM_CADENCE = (0.2, 0.15)
CONFIRM_SECONDS = 0.7
SOURCE = "phone"


@dataclass(frozen=True, slots=True)
class AgentCodes:
    sign_in: str = "*51"
    sign_out: str = "*52"
    take_break: str = "*53"
    available: str = "*54"

    def __post_init__(self) -> None:
        codes = self.codes
        for code in codes:
            check_feature_code(code)
        if len(set(codes)) != len(codes):
            raise ValueError(f"agent codes must differ: {', '.join(codes)}")

    @property
    def codes(self) -> tuple[str, ...]:
        return (self.sign_in, self.sign_out, self.take_break, self.available)


class AuditSink(Protocol):
    async def append(self, event: AuditEvent) -> object: ...


class Refused(Exception):  # noqa: N818 - carries the SIP answer of a refused code
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _summary(agent: Agent) -> dict[str, JsonValue]:
    return {
        "state": agent.state.value,
        "break_reason": agent.break_reason,
        "queue_ids": [int(queue_id) for queue_id in sorted(agent.queue_ids)],
    }


class AgentFeatures:
    """The feature handler of the agent codes (bind the engine before calls arrive)."""

    def __init__(
        self,
        codes: AgentCodes,
        *,
        clock: Clock,
        directory: Callable[[], DirectorySnapshot],
        audit: AuditSink,
    ) -> None:
        self.agent_codes = codes
        self._clock = clock
        self._directory = directory
        self._audit = audit
        self._engine: AcdEngine | None = None

    def bind(self, engine: AcdEngine) -> None:
        self._engine = engine

    @property
    def codes(self) -> Iterable[str]:
        return self.agent_codes.codes

    def start_call(
        self,
        services: QueueCallServices,
        invite_tx: InviteServerTransaction,
        caller: CallerInfo,
        user: User,
        feature: ToFeature,
        *,
        on_finished: Callable[[CallTask], None],
    ) -> CallTask:
        return DialledAgentCode(self, services, invite_tx, caller, user, feature, on_finished)

    # ---- the change itself -------------------------------------------------------------------

    async def change(self, user: User, feature: ToFeature, source: str) -> Agent:
        """Carry out the code for `user` (audited); `Refused` says why not."""
        principal = self._directory().principal_for(user)
        resource = Resource.of(ResourceKind.AGENT, owner=user.id, team=user.team_id)
        if not authorize(principal, Permission.AGENT_STATE_OWN, resource).allowed:
            await self._record(user, source, None, None, feature)
            raise Refused(403, "Agent State Change Not Allowed")
        engine = self._engine
        if engine is None:
            raise Refused(503, "No ACD")
        try:
            before = engine.agent(user.id)
        except UnknownAgent:
            raise Refused(404, "Not A Queue Member") from None
        try:
            after = await self._apply(engine, before, feature)
        except EngineNotRunning:
            raise Refused(503, "No ACD") from None
        except NotFound as error:
            raise Refused(404, _phrase(error)) from None
        except DomainError as error:
            raise Refused(403, _phrase(error)) from None
        if after is not before:
            await self._record(user, source, before, after, feature)
        return after

    async def _apply(self, engine: AcdEngine, before: Agent, feature: ToFeature) -> Agent:
        """The agent after the code (`before` itself when there was nothing to change)."""
        codes, agent_id, state = self.agent_codes, before.user_id, before.state
        if feature.code == codes.take_break:
            reason = self._reason(engine, feature.argument)
            if state is AgentState.BREAK and before.break_reason == reason:
                return before
            return await engine.take_break(agent_id, reason, changed_by=agent_id)
        if feature.argument:
            raise Refused(404, "Not Found")
        if feature.code == codes.sign_in:
            if state is not AgentState.OFFLINE:
                return before
            return await engine.sign_in(agent_id, changed_by=agent_id)
        if feature.code == codes.sign_out:
            if state is AgentState.OFFLINE:
                return before
            return await engine.sign_out(agent_id, changed_by=agent_id)
        if state is AgentState.AVAILABLE:
            return before
        if state is AgentState.OFFLINE:
            return await engine.sign_in(agent_id, changed_by=agent_id)
        return await engine.make_available(agent_id, changed_by=agent_id)

    @staticmethod
    def _reason(engine: AcdEngine, argument: str) -> str:
        """The break reason a digit picks (none: the first configured reason)."""
        reasons = [reason for reason in engine.break_reasons if reason != "missed"]
        if not argument:
            return reasons[0] if reasons else "missed"
        if len(argument) == 1 and argument.isdigit() and 1 <= int(argument) <= len(reasons):
            return reasons[int(argument) - 1]
        raise Refused(404, "Unknown Break Reason")

    async def _record(
        self,
        user: User,
        source: str,
        before: Agent | None,
        after: Agent | None,
        feature: ToFeature,
    ) -> None:
        details: dict[str, JsonValue] = {"source": SOURCE, "code": feature.code}
        if feature.argument:
            details["argument"] = feature.argument
        if before is not None and after is not None:
            details["before"] = _summary(before)
            details["after"] = _summary(after)
        event = AuditEvent(
            action=AuditAction.AGENT_STATE_CHANGE,
            actor=AuditActor.user(user.id, user.username),
            outcome=AuditOutcome.SUCCESS if after is not None else AuditOutcome.DENIED,
            object_kind=ResourceKind.AGENT.value,
            object_id=int(user.id),
            source_address=source,
            details=details,
        )
        try:
            await self._audit.append(event)
        except Exception as error:  # the change stands; losing its entry is logged loudly
            logger.error(
                "audit of agent code %s by %s lost: %s", feature.code, user.username, error
            )

    @property
    def clock(self) -> Clock:
        return self._clock


def _phrase(error: DomainError) -> str:
    """A SIP reason phrase from a domain error (printable ASCII, short)."""
    text = "".join(ch for ch in str(error) if 32 <= ord(ch) < 127)
    return text[:80] or "Forbidden"


class DialledAgentCode(AnsweredHereTask):
    """One dialled agent code, run as a call task of the SIP application."""

    def __init__(
        self,
        features: AgentFeatures,
        services: QueueCallServices,
        invite_tx: InviteServerTransaction,
        caller: CallerInfo,
        user: User,
        feature: ToFeature,
        on_finished: Callable[[CallTask], None],
    ) -> None:
        super().__init__(invite_tx, on_finished)
        self._features = features
        self._services = services
        self._caller = caller
        self._user = user
        self._feature = feature
        self._events: asyncio.Queue[CallEvent | TimerDue] = asyncio.Queue()
        self._timers = CallTimers(features.clock, self._events.put_nowait)
        self._answered: AnsweredCaller | None = None
        self.outcome: Agent | Refused | None = None

    @property
    def inbound(self) -> Leg | None:
        return None if self._answered is None else self._answered.leg

    def post(self, event: CallEvent) -> None:
        self._events.put_nowait(event)

    def on_ack(self, request: SipRequest) -> None:
        if self._answered is not None:
            self._answered.usage.receive_ack(request)

    def _fail(self, status: int, reason: str | None) -> None:
        self._respond_error(status, reason)

    async def run(self) -> None:
        source = self._invite_tx.source.remote_host
        try:
            try:
                self.outcome = await self._features.change(self._user, self._feature, source)
            except Refused as refused:
                self.outcome = refused
                logger.info(
                    "agent code %s by %s refused: %d %s",
                    self._feature.code,
                    self._user.username,
                    refused.status,
                    refused.reason,
                )
                self._fail(refused.status, refused.reason)
                return
            self._answered = await answer_caller(
                self._services,
                self,
                self._invite_tx,
                self._caller,
                fail=self._fail,
                start_audio=self._confirm_tone,
            )
            self._timers.set("done", CONFIRM_SECONDS)
            await self._until_done()
        except QueueCallOver:
            pass
        except Exception:
            logger.exception("agent code %s by %s failed", self._feature.code, self._user.username)
            self._fail(500, None)
        finally:
            await self._finish()

    async def _confirm_tone(self, bridge_id: str, leg: Leg) -> None:
        media = self._services.media
        player = await media.add_tone(bridge_id, (CONFIRM_TONE_HZ,), cadence=CONFIRM_CADENCE)
        await media.set_hearing(bridge_id, leg.endpoint_id, frozenset({player}))

    async def _until_done(self) -> None:
        answered = self._answered
        assert answered is not None
        while True:
            event = await self._events.get()
            if isinstance(event, TimerDue):
                if self._timers.take(event):
                    break
            elif isinstance(event, InDialogRequest):
                request, tx = event.request, event.transaction
                tx.respond(make_response(request, 200))
                if request.method == "BYE" and answered.leg.dialog is not None:
                    answered.leg.dialog.terminate()
                    return
            elif isinstance(event, Hangup):
                break
        dialog = answered.leg.dialog
        if dialog is not None and dialog.state is not DialogState.TERMINATED:
            bye = dialog.create_request("BYE")
            dialog.terminate()
            self._services.send_bye(bye, dialog.next_hop())

    async def _finish(self) -> None:
        self._timers.cancel_all()
        answered = self._answered
        if answered is not None:
            answered.usage.stop()
            answered.usage.on_ack_timeout = None
            if answered.leg.dialog is not None:
                self._services.unregister_dialog(answered.leg.dialog)
            try:
                await self._services.media.close_bridge(answered.bridge_id)
                await self._services.media.close_endpoint(answered.leg.endpoint_id)
            except MediaError:
                logger.exception("agent code %s: releasing media", self._feature.code)
        self._on_finished(self)
