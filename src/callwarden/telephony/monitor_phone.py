"""Monitoring dialled from a phone: `*91` + extension listens, `*92` whispers, `*93` barges
(configurable, `MonitoringCodes`), into that operator's current call.

`MonitorFeatures` is the feature handler the dial plan's extension point hands these codes to.
Each dialled code becomes a `DialledMonitoring` call task: it finds the operator by extension
and their current call, asks the monitoring service (the same policy check, refusal audit and
reason rule as the API), and then answers the supervisor's INVITE as a `MonitorSession`. A
refusal reads the same whether the extension is unknown, the operator has no call or the call
belongs to another team: 404; a visible call in a mode the supervisor may not use: 403.

A phone cannot type a reason: the audit entry records the dialled code and the phone's address
as the reason (`phone_reason`), so the entry says exactly how the session was asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from callwarden.domain.errors import Conflict, DomainError, Forbidden, NotFound
from callwarden.domain.models import User
from callwarden.sip.message import SipRequest
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.telephony.call import CallEvent, InboundCancel, Leg
from callwarden.telephony.call_context import CallerInfo
from callwarden.telephony.call_task import AnsweredHereTask, CallTask
from callwarden.telephony.dialplan import ToFeature
from callwarden.telephony.feature_codes import MonitoringCodes
from callwarden.telephony.monitor_session import MonitorSession
from callwarden.telephony.monitoring import ACTION_OF, Asker, MonitoringService
from callwarden.telephony.queue_call import QueueCallServices

logger = logging.getLogger(__name__)

__all__ = ["DialledMonitoring", "MonitorFeatures", "phone_reason"]


def phone_reason(feature: ToFeature, source: str) -> str:
    return f"dialled {feature.code}{feature.argument} from a registered phone at {source}"


class DialledMonitoring(AnsweredHereTask):
    """One dialled monitoring code, run as a call task of the SIP application."""

    def __init__(
        self,
        service: MonitoringService,
        invite_tx: InviteServerTransaction,
        user: User,
        feature: ToFeature,
        on_finished: Callable[[CallTask], None],
    ) -> None:
        super().__init__(invite_tx, on_finished)
        self._service = service
        self._user = user
        self._feature = feature
        self._session: MonitorSession | None = None
        self._cancelled = False

    @property
    def inbound(self) -> Leg | None:
        return None if self._session is None else self._session.leg

    def post(self, event: CallEvent) -> None:
        if self._session is not None:
            self._session.post(event)
        elif isinstance(event, InboundCancel):
            self._cancelled = True

    def on_ack(self, request: SipRequest) -> None:
        if self._session is not None:
            self._session.on_ack(request)

    async def run(self) -> None:
        try:
            session = await self._admit()
            if session is not None:
                self._session = session
                await session.run()
        finally:
            self._on_finished(self)

    async def _admit(self) -> MonitorSession | None:
        service, feature = self._service, self._feature
        mode = service.codes.mode_of(feature.code)
        source = self._invite_tx.source.remote_host
        directory = service.directory()
        user = directory.user(self._user.id)
        if user is None or not user.enabled:
            self._respond_error(403)
            return None
        asker = Asker(user, directory.principal_for(user), source, "phone")
        operator = directory.user_by_extension(feature.argument) if feature.argument else None
        call = None if operator is None else service.live_calls.of_operator(operator.id)
        call_id = call.call_id if call is not None else f"extension {feature.argument[:16]}"
        try:
            call = await service.admit(asker, call_id, mode)
            if self._cancelled:
                self._respond_error(487)
                return None
            session = service.dialled_session(
                asker, call, mode, phone_reason(feature, source), self._invite_tx
            )
            await service.record_start(session, ACTION_OF[mode])
        except NotFound:
            self._respond_error(404)
            return None
        except Forbidden:
            self._respond_error(403)
            return None
        except Conflict:
            self._respond_error(486, "Busy Here")
            return None
        except DomainError as error:
            logger.info("monitoring code from %s refused: %s", user.username, error)
            self._respond_error(503)
            return None
        return session


class MonitorFeatures:
    """The feature handler for the monitoring codes (register it in `FeatureCodes`, then
    `bind` the service: the service needs the SIP application, which needs the handler)."""

    def __init__(self, codes: MonitoringCodes) -> None:
        self._codes = codes
        self._service: MonitoringService | None = None

    def bind(self, service: MonitoringService) -> None:
        self._service = service

    @property
    def monitoring_codes(self) -> MonitoringCodes:
        return self._codes

    @property
    def codes(self) -> Iterable[str]:
        return self._codes.codes

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
        if self._service is None:
            raise RuntimeError("MonitorFeatures used before bind()")
        return DialledMonitoring(self._service, invite_tx, user, feature, on_finished)
