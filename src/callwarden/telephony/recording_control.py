"""When a call is recorded, and who may pause it: the telephony side of the recorder.

A queue call reports here when its operator is connected (`call_connected`) and when it ends
(`call_ended`). The queue's `recording` policy decides: `all` starts recording at once (the
bridge's customer and operator tracks, supervisors' own tracks when they join), `on_demand`
waits for `start` (the API), `none` never records. An on-demand recording may also be stopped (with
a reason) and started again; one the policy requires (`all`) may not.

Pause and resume (PCI DSS: card data must not be recorded), each checked by the policy:

- the operator of the call with `recordings.pause_own` (their own call): from the web API, or
  from their phone with DTMF feature codes, by default ``*1`` to pause and ``*2`` to resume
  (settings `recording_pause_code`, `recording_resume_code`); the customer's keys never count;
- a supervisor who may listen to the call (`monitor.listen` covering it), or the API with
  such a principal.

A pause is confirmed by the media process before it counts; one that cannot be confirmed stops
the recording (fail closed, see `Recorder.pause`). A pause with no resume ends after
`pause_timeout_seconds` (the recording resumes: a forgotten pause must not silently leave the
rest of the call unrecorded); the end of the call ends a pause. Start, stop, pause and resume
are audited, with the reason given.

When a recording stops, the monitoring sessions on the call while it ran (who, when, which
modes; `callwarden.telephony.recording_monitoring`) go into its manifest.
DTMF digits are never logged, audited or kept: the code matcher holds at most the few keys of
a code being typed, and forgets them after `code_timeout_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from callwarden.acd.clock import Clock, TimerHandle
from callwarden.bus.protocol import EventBus
from callwarden.domain.cdr import CallDirection
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import Forbidden, InvalidState, NotFound, ValidationFailed
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId
from callwarden.domain.models import RecordingPolicy
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Decision, Principal, Resource, ResourceKind, authorize
from callwarden.media.control import DtmfEvent, MediaControl, MediaEvent
from callwarden.recording.recorder import ActiveRecording, CallFacts, Recorder
from callwarden.security.audit_model import AuditActor, AuditEvent, AuditOutcome
from callwarden.telephony.recording_monitoring import MonitoringLog

logger = logging.getLogger(__name__)

PAUSE_PERMISSIONS = (Permission.RECORDING_PAUSE_OWN, Permission.MONITOR_LISTEN)
"""Either lets a principal pause and resume a call's recording (own call / supervised call)."""


class PauseNotConfirmed(InvalidState):
    """The media process did not confirm a pause: the recording was stopped (fail closed)."""

    default_error_id = "pause_not_confirmed"


class RecordingRequired(InvalidState):
    """The call's policy records it all: it may be paused, not stopped."""

    default_error_id = "recording_required_by_policy"


@dataclass(frozen=True, slots=True)
class RecordingControlSettings:
    pause_code: str = "*1"
    resume_code: str = "*2"
    pause_timeout_seconds: float = 300.0
    code_timeout_seconds: float = 3.0


class CodeMatcher:
    """Recognises the pause and resume codes in one phone's key presses (RFC 4733 digits).

    Keeps only a prefix of a code being typed; a key that continues no code starts over."""

    def __init__(self, codes: dict[str, str], timeout: float) -> None:
        self._codes = codes
        self._timeout = timeout
        self._typed = ""
        self._last = float("-inf")

    def press(self, digit: str, now: float) -> str | None:
        """The action whose code this key completes, or None."""
        typed = self._typed if now - self._last <= self._timeout else ""
        self._last = now
        for candidate in (typed + digit, digit):
            action = self._codes.get(candidate)
            if action is not None:
                self._typed = ""
                return action
            if any(code.startswith(candidate) for code in self._codes):
                self._typed = candidate
                return None
        self._typed = ""
        return None


@dataclass(eq=False)
class RecordedCall:
    """A call that is or may be recorded."""

    facts: CallFacts
    bridge_id: str
    policy: RecordingPolicy
    operator_endpoint: str | None
    matcher: CodeMatcher
    active: ActiveRecording | None = None
    pause_timer: TimerHandle | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass(frozen=True)
class RecordingState:
    """What the API says of a call's recording: `not_recording` (on demand, not started, or
    stopped), `recording` or `paused`; the current recording's id and pauses."""

    call_id: CallId
    policy: RecordingPolicy
    state: str
    recording_id: str | None
    pauses: tuple[tuple[datetime, datetime | None], ...]
    failure: str | None

    @classmethod
    def of(cls, call: RecordedCall) -> RecordingState:
        active = call.active
        if active is None or active.stopped:
            return cls(call.facts.call_id, call.policy, "not_recording", None, (), None)
        return cls(
            call.facts.call_id,
            call.policy,
            "paused" if active.paused else "recording",
            active.recording_id,
            tuple(active.pauses),
            active.failure,
        )


class RecordingControl:
    """Recording of this node's calls by policy, with pause and resume by the permitted."""

    def __init__(
        self,
        *,
        recorder: Recorder,
        media: MediaControl,
        directory: Callable[[], DirectorySnapshot],
        settings: RecordingControlSettings,
        clock: Clock,
        audit: Callable[[AuditEvent], object] | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self._recorder = recorder
        self._clock = clock
        self._directory = directory
        self.settings = settings
        self._audit = audit
        self._calls: dict[CallId, RecordedCall] = {}
        self._by_endpoint: dict[str, RecordedCall] = {}
        self._unsubscribe = media.subscribe(self._on_media_event)
        self._monitoring = None if bus is None else MonitoringLog(bus, self._calls.__contains__)

    def recorded_call(self, call_id: CallId) -> RecordedCall | None:
        return self._calls.get(call_id)

    def state_of(self, call_id: CallId, principal: Principal) -> RecordingState:
        """The recording state of a call its operator or a supervisor of it may control."""
        return RecordingState.of(self._authorized(call_id, principal))

    # --- from the calls ---------------------------------------------------------------------

    async def call_connected(
        self,
        *,
        call_id: CallId,
        bridge_id: str,
        policy: RecordingPolicy,
        direction: CallDirection,
        operator_id: UserId | None,
        operator_endpoint: str | None,
        queue_id: QueueId | None = None,
        team_id: TeamId | None = None,
        caller_number: str | None = None,
    ) -> None:
        """The operator is connected: record now if the policy says `all`."""
        if policy is RecordingPolicy.NONE:
            return
        facts = CallFacts(
            call_id=call_id,
            direction=direction,
            queue_id=queue_id,
            team_id=team_id,
            operator_id=operator_id,
            caller_number=caller_number,
        )
        codes = {self.settings.pause_code: "pause", self.settings.resume_code: "resume"}
        call = RecordedCall(
            facts,
            bridge_id,
            policy,
            operator_endpoint,
            CodeMatcher(codes, self.settings.code_timeout_seconds),
        )
        self._calls[call_id] = call
        if self._monitoring is not None:
            self._monitoring.absorb_pending()
        if operator_endpoint is not None:
            self._by_endpoint[operator_endpoint] = call
        if policy is RecordingPolicy.ALL:
            async with call.lock:
                call.active = await self._recorder.start(bridge_id, facts)

    async def call_ended(self, call_id: CallId) -> None:
        """Stop the call's recording (ending a pause) before its bridge goes."""
        if self._monitoring is not None:  # while the call is still known: its sessions count
            self._monitoring.absorb_pending()
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        if call.operator_endpoint is not None:
            self._by_endpoint.pop(call.operator_endpoint, None)
        self._cancel_timer(call)
        for task in list(call.tasks):
            await asyncio.gather(task, return_exceptions=True)
        async with call.lock:
            if call.active is not None:
                await self._stop_active(call)
        if self._monitoring is not None:
            self._monitoring.forget(call_id)

    async def _stop_active(self, call: RecordedCall) -> None:
        """Stop the call's recording, with the monitoring sessions it saw (under the lock)."""
        active = call.active
        assert active is not None
        call.active = None
        sessions: list[Mapping[str, object]] = []
        if self._monitoring is not None:
            until = self._recorder.now()
            sessions = self._monitoring.entries(call.facts.call_id, active.started_at, until)
        await self._recorder.stop(active, monitoring_sessions=sessions)

    # --- on demand, pause, resume (API, supervisor, DTMF) ------------------------------------

    async def start(
        self, call_id: CallId, principal: Principal, *, reason: str | None = None
    ) -> ActiveRecording:
        """Record an on-demand call (its operator or a supervisor of it)."""
        call = self._authorized(call_id, principal)
        async with call.lock:
            if call.active is not None and not call.active.stopped:
                return call.active
            active = await self._recorder.start(call.bridge_id, call.facts)
            if active is None:
                raise InvalidState(
                    f"recording of call {call_id} could not start",
                    error_id="recording_not_started",
                )
            call.active = active
            self._audit_event("recording.start", principal, call, reason=reason)
            return active

    async def stop(self, call_id: CallId, principal: Principal, *, reason: str | None) -> None:
        """Stop an on-demand recording (a reason is required); `start` may record again."""
        call = self._authorized(call_id, principal)
        if call.policy is not RecordingPolicy.ON_DEMAND:
            raise RecordingRequired(
                f"call {call_id} is recorded by policy: it may be paused, not stopped"
            )
        if reason is None or not reason.strip():
            raise ValidationFailed(
                "reason: stopping a recording needs a reason",
                details={
                    "field": "reason",
                    "problems": [{"field": "reason", "problem": "required"}],
                },
            )
        async with call.lock:
            self._running(call)
            self._cancel_timer(call)
            self._audit_event("recording.stop", principal, call, reason=reason)
            await self._stop_active(call)

    async def pause(
        self, call_id: CallId, principal: Principal, *, by: str, reason: str | None = None
    ) -> bool:
        """Pause the call's recording; False when the pause could not be confirmed."""
        call = self._authorized(call_id, principal)
        return await self._pause(call, principal, by, reason)

    async def resume(
        self, call_id: CallId, principal: Principal, *, by: str, reason: str | None = None
    ) -> None:
        call = self._authorized(call_id, principal)
        await self._resume(call, principal, by, reason)

    async def _pause(
        self, call: RecordedCall, principal: Principal | None, by: str, reason: str | None = None
    ) -> bool:
        async with call.lock:
            active = self._running(call)
            confirmed = await self._recorder.pause(active, by=by)
            self._audit_event(
                "recording.pause", principal, call, confirmed=confirmed, by=by, reason=reason
            )
            if confirmed:
                self._cancel_timer(call)
                call.pause_timer = self._clock.call_later(
                    self.settings.pause_timeout_seconds, lambda: self._pause_timed_out(call)
                )
            return confirmed

    async def _resume(
        self, call: RecordedCall, principal: Principal | None, by: str, reason: str | None = None
    ) -> None:
        async with call.lock:
            active = self._running(call)
            self._cancel_timer(call)
            await self._recorder.resume(active, by=by)
            self._audit_event("recording.resume", principal, call, by=by, reason=reason)

    def _running(self, call: RecordedCall) -> ActiveRecording:
        active = call.active
        if active is None or active.stopped:
            raise InvalidState(
                f"call {call.facts.call_id} is not being recorded", error_id="not_recording"
            )
        return active

    def _authorized(self, call_id: CallId, principal: Principal) -> RecordedCall:
        call = self._calls.get(call_id)
        not_found = NotFound(f"call {call_id} not found", error_id="call_not_found")
        if call is None:
            raise not_found
        resource = Resource.of(
            ResourceKind.CALL, owner=call.facts.operator_id, team=call.facts.team_id
        )
        decisions = [authorize(principal, p, resource) for p in PAUSE_PERMISSIONS]
        if any(decision.allowed for decision in decisions):
            return call
        if all(decision is Decision.DENY_NOT_FOUND for decision in decisions):
            raise not_found
        raise Forbidden(f"may not control the recording of call {call_id}")

    # --- DTMF and timers ----------------------------------------------------------------------

    def _on_media_event(self, event: MediaEvent) -> None:
        if not isinstance(event, DtmfEvent):
            return
        call = self._by_endpoint.get(event.endpoint_id)
        if call is None or call.active is None:
            return  # the customer's keys, or an unrecorded call: never acted on, never kept
        action = call.matcher.press(event.digit, self._clock.now())
        if action is not None:
            self._spawn(call, self._feature_code(call, action))

    async def _feature_code(self, call: RecordedCall, action: str) -> None:
        operator_id = call.facts.operator_id
        snapshot = self._directory()
        user = snapshot.user(operator_id) if operator_id is not None else None
        principal = snapshot.principal_for(user) if user is not None else None
        resource = Resource.of(ResourceKind.CALL, owner=operator_id, team=call.facts.team_id)
        if (
            principal is None
            or not authorize(principal, Permission.RECORDING_PAUSE_OWN, resource).allowed
        ):
            logger.info("call %s: recording feature code refused", call.facts.call_id)
            self._audit_event(f"recording.{action}", principal, call, refused=True, by="dtmf")
            return
        try:
            if action == "pause":
                await self._pause(call, principal, "dtmf")
            else:
                await self._resume(call, principal, "dtmf")
        except InvalidState as error:
            logger.info("call %s: recording %s by DTMF: %s", call.facts.call_id, action, error)

    def _pause_timed_out(self, call: RecordedCall) -> None:
        call.pause_timer = None
        logger.warning("call %s: recording pause timed out; resuming", call.facts.call_id)
        self._spawn(call, self._resume(call, None, "timeout"))

    def _cancel_timer(self, call: RecordedCall) -> None:
        if call.pause_timer is not None:
            call.pause_timer.cancel()
            call.pause_timer = None

    def _spawn(self, call: RecordedCall, work: object) -> None:
        assert asyncio.iscoroutine(work)
        task = asyncio.get_running_loop().create_task(work)
        call.tasks.add(task)
        task.add_done_callback(call.tasks.discard)

    # --- audit --------------------------------------------------------------------------------

    def _audit_event(
        self,
        action: str,
        principal: Principal | None,
        call: RecordedCall,
        *,
        confirmed: bool = True,
        refused: bool = False,
        by: str = "api",
        reason: str | None = None,
    ) -> None:
        if self._audit is None:
            return
        actor = AuditActor.system()
        if principal is not None:
            user = self._directory().user(principal.user_id)
            name = user.username if user is not None else str(principal.user_id)
            actor = AuditActor.user(principal.user_id, name)
        outcome = AuditOutcome.DENIED if refused else AuditOutcome.SUCCESS
        if not confirmed:
            outcome = AuditOutcome.FAILED
        active = call.active
        self._audit(
            AuditEvent(
                action=action,
                actor=actor,
                outcome=outcome,
                object_kind="recording",
                object_id=active.recording_id if active is not None else None,
                reason=reason,
                details={"call_id": str(call.facts.call_id), "by": by},
            )
        )

    async def close(self) -> None:
        """Stop every recording (calls normally end first)."""
        self._unsubscribe()
        for call_id in list(self._calls):
            await self.call_ended(call_id)
        if self._monitoring is not None:
            self._monitoring.close()
