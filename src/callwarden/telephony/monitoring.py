"""Live monitoring: listen, whisper, barge and take over, as changes of a call's hearing matrix.

`MonitoringService` is the one place that decides and records: every start, mode switch and end
asks the policy (`authorize`, team scope, one permission per mode: `monitor.listen`,
`monitor.whisper`, `monitor.barge`, `monitor.takeover`), is audited (a refusal too, with the
decision), and is published on the bus (`monitoring_events`). A call the principal may not see
reads as not found whatever the way in (API, feature code, a guessed id).

A started session is a `MonitorSession` (the supervisor's own leg in the call's bridge). The
matrix of a call is worked out from all its sessions at once (`media.matrix.monitored`) and
replaced in one media command, so a switch takes effect on the next 20 ms frame, and the
customer's own hearing (the operator, and a barging supervisor) never goes through a state
where it hears a whisper. Taking over cuts the operator out of the matrix first, then tells
the call to release the operator's leg (the ACD starts their wrap-up), whichever side of the
call the operator is on (`monitored_call`: on an operator's own outbound call, the caller's
leg), so the customer stays with the supervisor. Ending a session
removes only the supervisor; after a takeover the supervisor is the customer's party, and the
call ends when they hang up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from callwarden.bus.event import of_kinds
from callwarden.bus.protocol import EventBus
from callwarden.bus.subscription import Subscription
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import Conflict, DomainError
from callwarden.domain.models import User
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Decision, authorize, not_found, raise_for
from callwarden.media.control import DtmfEvent, MediaError, MediaEvent, RtpTimeoutEvent
from callwarden.media.matrix import Mode, monitored
from callwarden.recording.capture_events import RecordingPaused, RecordingResumed
from callwarden.security.audit_model import (
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuditUnavailable,
    require_reason,
)
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.telephony.call import Hangup, ReleaseOperator
from callwarden.telephony.call_context import OutboundTarget
from callwarden.telephony.call_task import CallTask
from callwarden.telephony.feature_codes import Leave, MonitoringCodes, MonitorMode, SwitchTo
from callwarden.telephony.monitor_session import MonitorServices, MonitorSession
from callwarden.telephony.monitored_call import CallFinder, CallView
from callwarden.telephony.monitoring_audit import ended_event, started_event, switched_event
from callwarden.telephony.monitoring_events import (
    MonitoringEnded,
    MonitoringEvent,
    MonitoringStarted,
    MonitoringSwitched,
    OperatorMonitored,
)
from callwarden.telephony.monitoring_policy import (
    ACTION_OF,
    MATRIX_MODE,
    PERMISSION_OF,
    Asker,
    AuditSink,
    TeamTransparency,
    Transparency,
    phone_targets,
    what,
)

logger = logging.getLogger(__name__)

NOTICE_HZ = (1400.0,)
"""The operator's "you are monitored" tone (a tone policy): 1,400 Hz, half a second."""
NOTICE_DBFS = -20.0
NOTICE_SECONDS = 0.5

__all__ = [
    "ACTION_OF",
    "Asker",
    "AuditSink",
    "MonitoringService",
    "TeamTransparency",
    "phone_targets",
]


class MonitoringService:
    """The node's monitoring sessions; built in the composition root, `close()` at shutdown."""

    def __init__(
        self,
        *,
        services: MonitorServices,
        live_calls: CallFinder,
        targets: Callable[[User], list[OutboundTarget]],
        directory: Callable[[], DirectorySnapshot],
        audit: AuditSink,
        bus: EventBus,
        transparency: Transparency,
        codes: MonitoringCodes | None = None,
        notice_seconds: float = NOTICE_SECONDS,
    ) -> None:
        self.services = services
        self.live_calls = live_calls
        self._targets = targets
        self._directory = directory
        self._audit = audit
        self._bus = bus
        self._transparency = transparency
        self.codes = codes or MonitoringCodes()
        self._notice_seconds = notice_seconds
        #: The operator-only notice tone playing in a call's bridge (its participant id).
        self._notices: dict[str, str] = {}
        self.sessions: dict[str, MonitorSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._released: set[str] = set()
        self._paused: set[str] = set()
        # Subscribed from the start, read from the first call that ends or the first act of
        # monitoring (a task needs the running loop): no pause is missed in between.
        self._pause_feed = bus.subscribe(of_kinds(RecordingPaused, RecordingResumed))
        self._following = False
        self._unsubscribe = services.media.subscribe(self._on_media_event)

    def follow_pauses(self) -> None:
        """Start reading the recorder's card-data pauses (idempotent; on the running loop)."""
        if not self._following:
            self._following = True
            self._spawn_work(self._follow_pauses(self._pause_feed))

    async def _follow_pauses(self, feed: Subscription) -> None:
        """While a call's recording is paused (card data), no supervisor hears the customer."""
        async for event in feed:
            if not isinstance(event, RecordingPaused | RecordingResumed):
                continue
            if isinstance(event, RecordingPaused):
                self._paused.add(event.call_id)
            else:
                self._paused.discard(event.call_id)
            sessions = self._of_call(event.call_id)
            if sessions:
                with contextlib.suppress(MediaError):
                    await self.apply_matrix(sessions[0].call)

    # ---- asking ------------------------------------------------------------------------------

    async def _refuse(
        self, asker: Asker, permission: Permission, call_id: str, decision: Decision
    ) -> None:
        """Audit a refusal, then raise what it reads as (not found, or forbidden)."""
        event = AuditEvent(
            action=AuditAction.PERMISSION_DENIED,
            actor=asker.actor,
            outcome=AuditOutcome.DENIED,
            object_kind="call",
            object_id=call_id[:255],
            source_address=asker.source_address,
            details={"decision": decision.value, "permission": permission.value, "via": asker.via},
        )
        try:
            await self._audit.append(event)
        except AuditUnavailable as error:
            logger.error("audit of a refused monitoring by %s lost: %s", asker.user.username, error)
        raise_for(decision, what(call_id))

    async def admit(self, asker: Asker, call_id: str, mode: MonitorMode) -> CallView:
        """The call, if `asker` may monitor it in `mode` (else audited, and NotFound/Forbidden)."""
        permission = PERMISSION_OF[mode]
        call = self.live_calls.find(call_id)
        if call is None:
            # Nothing to see, but an attempt on a missing call is recorded like one on a hidden
            # call (both read as not found).
            await self._refuse(asker, permission, call_id, Decision.DENY_NOT_FOUND)
            raise not_found(what(call_id))
        decision = authorize(asker.principal, permission, call.resource)
        if not decision.allowed:
            await self._refuse(asker, permission, call_id, decision)
        if asker.user.id in call.resource.owner_ids:
            raise Conflict("one cannot monitor a call one is on", error_id="monitoring_own_call")
        if any(s.supervisor.id == asker.user.id for s in self._of_call(call.call_id)):
            raise Conflict("already monitoring this call", error_id="monitoring_already")
        return call

    def _of_call(self, call_id: str) -> list[MonitorSession]:
        return [s for s in self.sessions.values() if s.call.call_id == call_id]

    # ---- starting ----------------------------------------------------------------------------

    async def start(
        self, asker: Asker, call_id: str, mode: MonitorMode, reason: str | None
    ) -> MonitorSession:
        """Start monitoring from the API: ring the supervisor's own registered phones."""
        action = ACTION_OF[mode]
        normalised = require_reason(action, reason)
        assert normalised is not None
        call = await self.admit(asker, call_id, mode)
        targets = self._targets(asker.user)
        if not targets:
            raise Conflict(
                "you have no registered phone to monitor with", error_id="monitoring_no_phone"
            )
        session = self._session(asker, call, mode, normalised)
        session.targets = targets
        await self.record_start(session, action)
        self._spawn(session)
        return session

    def dialled_session(
        self,
        asker: Asker,
        call: CallView,
        mode: MonitorMode,
        reason: str,
        invite_tx: InviteServerTransaction,
    ) -> MonitorSession:
        """A session answering the supervisor's own INVITE (a dialled feature code); the
        dialled call task runs it."""
        session = self._session(asker, call, mode, reason)
        session.phone_invite = invite_tx
        return session

    async def record_start(self, session: MonitorSession, action: str) -> None:
        """Audit the start before any audio flows; no entry, no session."""
        try:
            await self._audit.append(started_event(session, action))
        except AuditUnavailable:
            self.sessions.pop(session.id, None)
            raise

    def directory(self) -> DirectorySnapshot:
        return self._directory()

    def _session(
        self, asker: Asker, call: CallView, mode: MonitorMode, reason: str
    ) -> MonitorSession:
        self.follow_pauses()
        session = MonitorSession(
            services=self.services,
            host=self,
            call=call,
            supervisor=asker.user,
            mode=mode,
            reason=reason,
            via=asker.via,
            source_address=asker.source_address,
            operator_notified=self._transparency.operator_notified(call),
        )
        self.sessions[session.id] = session
        return session

    def _spawn(self, session: MonitorSession) -> None:
        task = asyncio.get_running_loop().create_task(
            session.run(), name=f"monitoring {session.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- the session host --------------------------------------------------------------------

    async def session_joined(self, session: MonitorSession) -> None:
        await self.apply_matrix(session.call)
        if session.mode is MonitorMode.TAKEOVER:
            await self._release_operator(session)
        elif self._transparency.operator_tone(session.call):
            await self._notice(session.call)
        self._publish(session, MonitoringStarted)
        self._tell_operator(session, monitored=True)

    def _tell_operator(self, session: MonitorSession, *, monitored: bool) -> None:
        """The operator's own notice, when their team's policy says they are told."""
        if not session.operator_notified:
            return
        call = session.call
        others = [s for s in self._of_call(call.call_id) if s.joined and s is not session]
        if not monitored and others:
            return  # still monitored by someone else
        operator = self._directory().user(call.operator_id)
        self._bus.publish(
            OperatorMonitored(
                at=self.services.now(),
                team_id=None if operator is None else operator.team_id,
                user_id=call.operator_id,
                call_id=call.call_id,
                monitored=monitored,
            )
        )

    async def _notice(self, call: CallView) -> None:
        """A short tone that only the operator hears (the team's transparency policy)."""
        if call.call_id in self._notices or call.operator_endpoint is None:
            return
        media = self.services.media
        player = await media.add_tone(
            call.bridge_id, NOTICE_HZ, level_dbfs=NOTICE_DBFS, role="notice"
        )
        self._notices[call.call_id] = player
        await self.apply_matrix(call)
        self._spawn_work(self._end_notice(call, player))

    async def _end_notice(self, call: CallView, player: str) -> None:
        await asyncio.sleep(self._notice_seconds)
        if self._notices.get(call.call_id) == player:
            del self._notices[call.call_id]
        with contextlib.suppress(MediaError):  # the call may have ended meanwhile
            await self.services.media.remove_from_bridge(call.bridge_id, player)

    async def session_ended(self, session: MonitorSession) -> None:
        self.sessions.pop(session.id, None)
        call = session.call
        if session.joined_at is None:
            return
        took_over = call.call_id in self._released and not any(
            s.mode is MonitorMode.TAKEOVER for s in self._of_call(call.call_id)
        )
        if took_over:
            # The supervisor was the customer's party: the call ends with them.
            call.task.post(Hangup("the supervisor who took the call over hung up"))
        else:
            with contextlib.suppress(MediaError):  # the call's bridge may be gone already
                await self.apply_matrix(call)
        self._publish(session, MonitoringEnded, cause=session.end_cause or "ended")
        self._tell_operator(session, monitored=False)
        await self._audit_quietly(ended_event(session))

    async def apply_matrix(self, call: CallView) -> None:
        """Give the call's bridge the matrix of all its joined sessions (one command)."""
        roles = {call.customer_endpoint: "customer"}
        if call.operator_endpoint is not None and call.call_id not in self._released:
            roles[call.operator_endpoint] = "operator"
        modes: dict[str, Mode] = {}
        for session in self._of_call(call.call_id):
            endpoint = session.endpoint_id
            if session.joined and endpoint is not None:
                roles[endpoint] = "supervisor"
                modes[endpoint] = MATRIX_MODE[session.mode]
        matrix = monitored(roles, modes)
        notice = self._notices.get(call.call_id)
        operator = call.operator_endpoint
        if notice is not None and operator in matrix:
            matrix[operator] = matrix[operator] | {notice}  # the customer never hears it
        if call.call_id in self._paused:  # card data: the customer reaches no supervisor
            for supervisor in modes:
                matrix[supervisor] = matrix[supervisor] - {call.customer_endpoint}
        await self.services.media.set_matrix(call.bridge_id, matrix)

    async def _release_operator(self, session: MonitorSession) -> None:
        call = session.call
        if call.call_id in self._released:
            return
        self._released.add(call.call_id)
        await self.apply_matrix(call)
        if call.operator_endpoint is not None:
            with contextlib.suppress(MediaError):
                # The operator's phone stops sending once released: that is no media timeout.
                await self.services.media.set_rtp_timeout(call.operator_endpoint, None)
        cause = f"taken over by {session.supervisor.username}"
        call.task.post(ReleaseOperator(cause, call.operator_endpoint))

    def _publish(self, session: MonitorSession, kind: type[MonitoringEvent], **extra: str) -> None:
        call = session.call
        operator = self._directory().user(call.operator_id)
        self._bus.publish(
            kind(
                at=self.services.now(),
                team_id=None if operator is None else operator.team_id,
                user_id=call.operator_id,
                monitoring_id=session.id,
                call_id=call.call_id,
                supervisor_id=session.supervisor.id,
                mode=session.mode.value,
                via=session.via,
                operator_notified=session.operator_notified,
                **extra,
            )
        )

    async def _audit_quietly(self, event: AuditEvent) -> None:
        try:
            await self._audit.append(event)
        except AuditUnavailable as error:
            logger.error("audit entry %s lost: %s", event.action, error)

    # ---- switching and ending ----------------------------------------------------------------

    def session_of(self, monitoring_id: str) -> MonitorSession | None:
        return self.sessions.get(monitoring_id)

    async def switch(self, asker: Asker, session: MonitorSession, mode: MonitorMode) -> None:
        """Change a session's mode (the policy decides per mode; audited; published)."""
        if session.ended_at is not None:
            raise not_found(f"monitoring {session.id}")
        if session.supervisor.id != asker.user.id:
            raise Conflict(
                "only the supervisor on the session can switch its mode",
                error_id="monitoring_not_yours",
            )
        if mode is session.mode:
            return
        call = session.call
        permission = PERMISSION_OF[mode]
        decision = authorize(asker.principal, permission, call.resource)
        if not decision.allowed:
            await self._refuse(asker, permission, call.call_id, decision)
        if session.mode is MonitorMode.TAKEOVER:
            raise Conflict(
                "the call was taken over: the operator has left", error_id="monitoring_taken_over"
            )
        previous = session.mode
        session.mode = mode
        session.changes.append((self.services.now(), mode))
        await self._audit.append(switched_event(asker, session, previous))
        if session.joined:
            await self.apply_matrix(call)
            if mode is MonitorMode.TAKEOVER:
                await self._release_operator(session)
            self._publish(session, MonitoringSwitched, previous=previous.value)

    def end(self, session: MonitorSession, cause: str) -> None:
        """Take the supervisor out (BYE to their phone); the call goes on."""
        session.post(Hangup(cause))

    # ---- feature codes and DTMF --------------------------------------------------------------

    def _on_media_event(self, event: MediaEvent) -> None:
        if not isinstance(event, DtmfEvent | RtpTimeoutEvent):
            return
        for session in list(self.sessions.values()):
            if session.endpoint_id != event.endpoint_id:
                continue
            if isinstance(event, RtpTimeoutEvent):
                self.end(session, "media timeout")
            elif isinstance(event, DtmfEvent):
                self._on_digit(session, event.digit)
            return

    def _on_digit(self, session: MonitorSession, digit: str) -> None:
        action = self.codes.action_of(digit)
        if isinstance(action, Leave):
            self.end(session, "supervisor pressed *")
        elif isinstance(action, SwitchTo) and session.joined:
            asker = self._phone_asker(session)
            if asker is not None:
                self._spawn_work(self._switch_quietly(asker, session, action.mode))

    def _phone_asker(self, session: MonitorSession) -> Asker | None:
        user = self._directory().user(session.supervisor.id)
        if user is None or not user.enabled:
            return None
        principal = self._directory().principal_for(user)
        return Asker(user, principal, session.source_address, "phone")

    async def _switch_quietly(
        self, asker: Asker, session: MonitorSession, mode: MonitorMode
    ) -> None:
        try:
            await self.switch(asker, session, mode)
        except DomainError as error:
            logger.info("monitoring %s: key for %s refused: %s", session.id, mode.value, error)

    def _spawn_work(self, work: object) -> None:
        assert asyncio.iscoroutine(work)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_call_ended(self, task: CallTask) -> None:
        """A call finished: its supervisors are hung up (listener of the SIP application)."""
        self.follow_pauses()
        self._released.discard(task.call_id)
        self._paused.discard(task.call_id)
        for session in self._of_call(task.call_id):
            self.end(session, "the call ended")

    # ---- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        self._unsubscribe()
        self._pause_feed.close()
        for session in list(self.sessions.values()):
            self.end(session, "shutdown")
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
