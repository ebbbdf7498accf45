"""The SIP application: the transaction user that answers every request reaching the node.

Out-of-dialog requests: REGISTER to the registrar, INVITE to the B2BUA (authenticated, routed
by the dial plan), OPTIONS answered (keepalive), other methods refused (405/501). In-dialog
requests and ACKs go to the call owning the dialog; requests for unknown dialogs get 481.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from callwarden.domain.cdr import CallDirection, NewCdr, RouteKind
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import Trunk, User
from callwarden.media.control import MediaControl, MediaEvent, RtpTimeoutEvent
from callwarden.sip.addressing import Destination, Source, TransportName
from callwarden.sip.dialog import Dialog, DialogId, DialogTable
from callwarden.sip.errors import SipError
from callwarden.sip.message import SipRequest, make_error_response, make_response
from callwarden.sip.server_transaction import InviteServerTransaction, ServerTransaction
from callwarden.sip.transaction import TransactionLayer
from callwarden.sip.transport import SipTransport
from callwarden.sip.tx_keys import new_tag
from callwarden.sip.uri import SipUri
from callwarden.sip.validation import check_request
from callwarden.telephony.acd_bridge import QueueCalls
from callwarden.telephony.call import (
    Call,
    CallRecording,
    Hangup,
    InboundCancel,
    InDialogRequest,
    Leg,
)
from callwarden.telephony.call_context import CallerInfo, OutboundTarget
from callwarden.telephony.call_task import CallTask, DialogOwner
from callwarden.telephony.dialplan import (
    Rejected,
    Route,
    ToFeature,
    ToQueue,
    ToTrunk,
    ToUser,
    is_dial_string,
    route_from_trunk,
    route_from_user,
)
from callwarden.telephony.features import FeatureCodes
from callwarden.telephony.flows import flow_destination
from callwarden.telephony.media_policy import MediaPolicy
from callwarden.telephony.registrar import Registrar
from callwarden.telephony.sip_auth import FromTrunk, FromUser, Refused, SipAuthGuard
from callwarden.telephony.toll_guard import CallLease, TollGuard

logger = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"
_KNOWN_UNSUPPORTED = frozenset(
    {"MESSAGE", "SUBSCRIBE", "NOTIFY", "REFER", "INFO", "PUBLISH", "UPDATE", "PRACK"}
)


@dataclass(frozen=True, slots=True)
class ApplicationSettings:
    sdp_address: str
    ring_timeout: float = 60.0
    user_agent: str = "callwarden"
    max_calls: int = 10_000
    trunk_realms: Mapping[str, str] = field(default_factory=dict)
    """Trunk name -> the only digest realm answered for it (`Settings.trunk_realms`)."""


class SipApplication:
    """Implements the transaction layer's TransactionUser and the calls' CallServices."""

    allow = ALLOW

    def __init__(
        self,
        *,
        settings: ApplicationSettings,
        transport: SipTransport,
        media: MediaControl,
        registrar: Registrar,
        guard: SipAuthGuard,
        directory: Callable[[], DirectorySnapshot],
        write_cdr: Callable[[NewCdr], None],
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        queues: QueueCalls | None = None,
        features: FeatureCodes | None = None,
        toll: TollGuard | None = None,
        recording: CallRecording | None = None,
        media_policy: MediaPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.media_policy = media_policy if media_policy is not None else MediaPolicy()
        self.transport = transport
        self.media = media
        self.registrar = registrar
        self.guard = guard
        self._directory = directory
        self._write_cdr = write_cdr
        self._wall_clock = wall_clock
        self._queues = queues
        self._features = features if features is not None else FeatureCodes()
        self._toll = toll
        self._recording = recording
        self._leases: dict[CallTask, CallLease] = {}
        self.sdp_address = settings.sdp_address
        self.ring_timeout = settings.ring_timeout
        self.user_agent = settings.user_agent
        self._layer: TransactionLayer | None = None
        self._contact_uris: dict[TransportName, SipUri] = {}
        self._dialogs = DialogTable()
        self._owners: dict[DialogId, tuple[DialogOwner, Leg]] = {}
        self._calls_by_tx: dict[int, CallTask] = {}
        self._tasks: dict[CallTask, asyncio.Task[None]] = {}
        self._ended_listeners: list[Callable[[CallTask], None]] = []
        self._unsubscribe = media.subscribe(self._on_media_event)

    def bind(self, layer: TransactionLayer) -> None:
        """Attach the transaction layer this application is the user of."""
        self._layer = layer

    @property
    def layer(self) -> TransactionLayer:
        if self._layer is None:
            raise RuntimeError("SipApplication used before bind()")
        return self._layer

    def now(self) -> datetime:
        return self._wall_clock()

    @property
    def active_calls(self) -> int:
        return len(self._tasks)

    def calls(self) -> list[CallTask]:
        """The calls running now (for monitoring to find a call by id or operator)."""
        return list(self._tasks)

    def on_call_ended(self, listener: Callable[[CallTask], None]) -> None:
        """Call `listener(call)` when a call's task has finished (its legs are hung up)."""
        self._ended_listeners.append(listener)

    # ---- TransactionUser ----------------------------------------------------------------------

    def on_request(self, request: SipRequest, server_tx: ServerTransaction) -> None:
        method = request.method
        try:
            if method in _KNOWN_UNSUPPORTED and request.to.tag is None:
                self._respond(server_tx, 405, allow=True)
                return
            if method not in ("INVITE", "BYE", "OPTIONS", "REGISTER", "INFO", "UPDATE"):
                self._respond(server_tx, 501, allow=True)
                return
            check_request(request)
            if request.to.tag is not None:
                self._on_in_dialog(request, server_tx)
            elif method == "INVITE":
                assert isinstance(server_tx, InviteServerTransaction)
                self._on_invite(request, server_tx)
            elif method == "REGISTER":
                self._on_register(request, server_tx)
            elif method == "OPTIONS":
                self._respond(server_tx, 200, allow=True, accept=True)
            else:
                self._respond(server_tx, 481)
        except SipError as error:
            if not server_tx.is_terminated and server_tx.last_response is None:
                server_tx.respond(make_error_response(request, error, to_tag=new_tag()))

    def _respond(
        self, tx: ServerTransaction, status: int, *, allow: bool = False, accept: bool = False
    ) -> None:
        response = make_response(tx.request, status, to_tag=new_tag())
        if allow:
            response.headers.add("Allow", ALLOW)
        if accept:
            response.headers.add("Accept", "application/sdp")
        tx.respond(response)

    def on_ack(self, request: SipRequest, source: Source) -> None:
        dialog = self._dialogs.find_for_request(request)
        owner = None if dialog is None else self._owners.get(dialog.id)
        if owner is not None:
            owner[0].on_ack(request)

    def on_cancel(self, server_tx: InviteServerTransaction) -> None:
        call = self._calls_by_tx.get(id(server_tx))
        if call is not None:
            call.post(InboundCancel())
        elif server_tx.last_response is None or server_tx.last_response.status < 200:
            server_tx.respond(make_response(server_tx.request, 487, to_tag=new_tag()))

    # ---- in-dialog ----------------------------------------------------------------------------

    def _on_in_dialog(self, request: SipRequest, server_tx: ServerTransaction) -> None:
        dialog = self._dialogs.match_request(request)  # 481 / 500 as SipError
        owner = self._owners.get(dialog.id)
        if owner is None:
            raise SipError("dialog without a call", 481)
        owner[0].post(InDialogRequest(owner[1], request, server_tx))

    # ---- REGISTER -----------------------------------------------------------------------------

    def _on_register(self, request: SipRequest, server_tx: ServerTransaction) -> None:
        aor = request.to.uri
        if not isinstance(aor, SipUri) or not aor.user:
            raise SipError("the address of record must be a sip or sips URI with a user", 400)
        identity = self.guard.identify(
            request, server_tx.source, self._directory(), allow_trunks=False
        )
        if isinstance(identity, Refused):
            server_tx.respond(identity.response)
            return
        assert isinstance(identity, FromUser)
        refusal = self.media_policy.check_register(
            identity.user, server_tx.source, self._directory()
        )
        if refusal is not None:
            server_tx.respond(
                make_response(request, refusal.status, refusal.reason, to_tag=new_tag())
            )
            return
        response = self.registrar.register(request, server_tx.source, identity.user.username)
        server_tx.respond(response)
        registered = response.status == 200 and self.registrar.bindings(identity.user.username)
        if self._queues is not None and registered:
            self._queues.phone_registered(identity.user)

    # ---- INVITE -------------------------------------------------------------------------------

    def _on_invite(self, request: SipRequest, server_tx: InviteServerTransaction) -> None:
        if request.max_forwards == 0:
            raise SipError("Max-Forwards exhausted", 483)
        uri = request.uri
        if not isinstance(uri, SipUri):
            raise SipError("unsupported Request-URI scheme", 416)
        directory = self._directory()
        identity = self.guard.identify(request, server_tx.source, directory, allow_trunks=True)
        if isinstance(identity, Refused):
            server_tx.respond(identity.response)
            return
        if isinstance(identity, FromUser):
            denied = self.media_policy.check_invite(
                identity.user, server_tx.source, request.body, directory
            )
            if denied is not None:
                raise SipError(denied.why, denied.status, denied.reason)
        if len(self._tasks) >= self.settings.max_calls:
            raise SipError("too many calls", 503, headers=(("Retry-After", "5"),))
        number = uri.user or ""
        source = server_tx.source
        if isinstance(identity, FromTrunk):
            route = route_from_trunk(directory, identity.trunk, number)
            caller = self._trunk_caller(request, source, identity.trunk, number, route)
        else:
            codes = self._features.codes
            route = route_from_user(directory, identity.user, number, feature_codes=codes)
            caller = self._user_caller(request, source, identity.user, number, route)
        if isinstance(route, Rejected):
            logger.info(
                "call %s from %s to %r refused: %d %s",
                request.call_id,
                caller.label,
                number,
                route.status,
                route.reason,
            )
            refusal = SipError(route.reason, route.status, route.reason)
            if route.status == 403 and self._toll is not None:
                self._toll.refused(caller, refusal)  # outside the allow-list: admins see it
            raise refusal
        toll = self._toll
        lease = None if toll is None else toll.admit(caller, route, request.call_id)
        try:
            call = self._start_call(server_tx, identity, route, caller)
        except BaseException:
            if toll is not None and lease is not None:
                toll.release(lease)
            raise
        if lease is not None:
            self._leases[call] = lease
        self._calls_by_tx[id(server_tx)] = call
        task = asyncio.get_running_loop().create_task(call.run(), name=f"call {call.call_id}")
        self._tasks[call] = task

    def _start_call(
        self,
        server_tx: InviteServerTransaction,
        identity: FromTrunk | FromUser,
        route: Route,
        caller: CallerInfo,
    ) -> CallTask:
        call: CallTask
        if isinstance(route, ToFeature) and isinstance(identity, FromUser):
            call = self._features.handler(route.code).start_call(
                self, server_tx, caller, identity.user, route, on_finished=self._on_call_finished
            )
        elif isinstance(route, ToQueue) and self._queues is not None:
            call = self._queues.start_call(
                self, server_tx, caller, route.queue, on_finished=self._on_call_finished
            )
        else:
            targets = self._targets(route, caller)
            call = Call(
                self,
                server_tx,
                caller,
                targets,
                on_finished=self._on_call_finished,
                recording=self._recording,
            )
        return call

    def _user_caller(
        self, request: SipRequest, source: Source, user: User, number: str, route: Route
    ) -> CallerInfo:
        contact = request.contacts[0].uri if request.contacts else None
        return CallerInfo(
            direction=CallDirection.OUTBOUND
            if isinstance(route, ToTrunk)
            else CallDirection.INTERNAL,
            label=user.extension or user.username,
            dialled=number,
            flow=flow_destination(contact, source, symmetric=request.top_via.has_rport),
            latch_host=source.remote_host,
            user_id=user.id,
            team_id=user.team_id,
            sdes=source.transport == "TLS",
            require_srtp=self.media_policy.requires_srtp(user, self._directory()),
        )

    def _trunk_caller(
        self, request: SipRequest, source: Source, trunk: Trunk, number: str, route: Route
    ) -> CallerInfo:
        calling = request.from_.uri
        calling_number = calling.user if isinstance(calling, SipUri) else None
        contact = request.contacts[0].uri if request.contacts else None
        return CallerInfo(
            direction=CallDirection.INBOUND,
            label=calling_number
            if calling_number and is_dial_string(calling_number)
            else "anonymous",
            dialled=number,
            flow=flow_destination(contact, source, symmetric=request.top_via.has_rport),
            latch_host=None,
            trunk_id=trunk.id,
            sdes=source.transport == "TLS",
        )

    def _targets(self, route: Route, caller: CallerInfo) -> list[OutboundTarget]:
        """Where the call goes: every registered phone of a user (they ring in parallel), or
        the trunk."""
        here = self.sdp_address
        from_address = f"<sip:{caller.label}@{here}>"
        if isinstance(route, ToUser):
            user = route.user
            directory = self._directory()
            policy = self.media_policy
            bindings = [
                binding
                for binding in self.registrar.bindings(user.username)
                if policy.may_reach(user, binding.destination.transport, directory)
            ]
            if not bindings:
                raise SipError(f"{user.username} has no registered phone", 480)
            srtp = policy.requires_srtp(user, directory)
            label = user.extension or user.username
            return [
                OutboundTarget(
                    request_uri=binding.contact,
                    destination=binding.destination,
                    from_address=from_address,
                    to_address=f"<sip:{label}@{here}>",
                    label=label,
                    route_kind=RouteKind.EXTENSION,
                    flow=binding.destination,
                    latch_host=binding.destination.host,
                    user_id=user.id,
                    srtp=srtp,
                )
                for binding in bindings
            ]
        if isinstance(route, ToTrunk):
            trunk = route.trunk
            transport: TransportName = "TCP" if trunk.transport.value == "tcp" else "UDP"
            params: tuple[tuple[str, str | None], ...] = (
                (("transport", "tcp"),) if transport == "TCP" else ()
            )
            uri = SipUri("sip", route.number, None, trunk.host, trunk.port, params, ())
            credentials = (
                (trunk.username, trunk.password)
                if trunk.username is not None and trunk.password is not None
                else None
            )
            return [
                OutboundTarget(
                    request_uri=uri,
                    destination=Destination(transport, trunk.host, trunk.port),
                    from_address=from_address,
                    to_address=f"<sip:{route.number}@{trunk.host}>",
                    label=route.number,
                    route_kind=RouteKind.TRUNK,
                    flow=None,
                    latch_host=None,
                    trunk_id=trunk.id,
                    trunk_credentials=credentials,
                    trunk_realm=self.settings.trunk_realms.get(trunk.name),
                )
            ]
        if isinstance(route, ToFeature):
            raise SipError(f"feature {route.code} is not served here", 404)
        assert isinstance(route, ToQueue)
        raise SipError(f"queue {route.queue.name} is not served yet", 480)

    def _on_call_finished(self, call: CallTask) -> None:
        self._tasks.pop(call, None)
        self._calls_by_tx.pop(id(call.invite_tx), None)
        lease = self._leases.pop(call, None)
        if lease is not None and self._toll is not None:
            self._toll.release(lease)
        for listener in self._ended_listeners:
            listener(call)

    def _on_media_event(self, event: MediaEvent) -> None:
        if not isinstance(event, RtpTimeoutEvent):
            return
        for call in self._tasks:
            for leg in (call.inbound, call.outbound):
                if leg is not None and leg.endpoint_id == event.endpoint_id:
                    call.post(Hangup("media timeout"))
                    return

    # ---- CallServices -------------------------------------------------------------------------

    def contact_uri(self, transport: TransportName) -> SipUri:
        uri = self._contact_uris.get(transport)
        if uri is None:  # the same for every call: made (and formatted) once per transport
            uri = self._contact_uris[transport] = self.transport.contact_uri(transport)
        return uri

    def send_bye(self, request: SipRequest, destination: Destination) -> None:
        self.layer.send_request(request, destination, lambda _response: None)

    def register_dialog(self, dialog: Dialog, call: DialogOwner, leg: Leg) -> None:
        self._dialogs.add(dialog)
        self._owners[dialog.id] = (call, leg)

    def unregister_dialog(self, dialog: Dialog) -> None:
        self._dialogs.remove(dialog)
        self._owners.pop(dialog.id, None)

    def write_cdr(self, cdr: NewCdr) -> None:
        self._write_cdr(cdr)

    # ---- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        """End every call (BYE both legs) and wait for their tasks."""
        self._unsubscribe()
        for call in list(self._tasks):
            call.post(Hangup("shutdown"))
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
