"""A takeover on a direct (non-queue) call replaces the monitored operator's leg and keeps the
customer's, whichever side of the call the operator is on.

Who the operator is comes from the one rule the recording uses (`telephony.call_sides`): the
callee of an inbound call or of an extension-to-extension call, the caller of an operator's own
outbound call through a trunk or to a colleague whose policy records less. A real B2BUA `Call`
(its legs' dialogs stand-ins that only count BYEs) is seen by monitoring (`view_of`) with the
operator on the leg the recording puts on the operator track, and a `ReleaseOperator` for that
endpoint hangs up that leg alone; the monitoring service asks for exactly that endpoint.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from callwarden.domain.cdr import CallDirection, LegRole, RouteKind
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import TrunkId, UserId
from callwarden.domain.models import RecordingPolicy
from callwarden.media.control import EndpointId, LocalMedia
from callwarden.sip.addressing import Destination
from callwarden.sip.message import SipRequest
from callwarden.sip.uri import SipUri
from callwarden.telephony.call import Call, CallState, Hangup, Leg, ReleaseOperator
from callwarden.telephony.call_context import CallerInfo, OutboundTarget
from callwarden.telephony.call_sides import direct_call_sides
from callwarden.telephony.feature_codes import MonitorMode
from callwarden.telephony.monitored_call import view_of
from callwarden.telephony.monitoring import Asker
from monitoring_rig import USERS, Rig, answer_invite, build_rig, settle

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
ALICE, BOB = UserId(1), UserId(2)
CARRIER = TrunkId(1)
CALLER_ENDPOINT, CALLEE_ENDPOINT = "endpoint-caller", "endpoint-callee"


class CountingDialog:
    """A leg's dialog as far as a BYE goes: which leg was sent one."""

    def __init__(self, leg: str) -> None:
        self.leg = leg

    def create_request(self, method: str) -> str:
        return f"{method} to the {self.leg}"

    def terminate(self) -> None:
        pass

    def next_hop(self) -> str:
        return self.leg


class Services:
    def __init__(self) -> None:
        self.byes: list[str] = []

    def now(self) -> datetime:
        return T0

    def send_bye(self, request: str, destination: str) -> None:
        self.byes.append(destination)


def with_policies(base: DirectorySnapshot, **policies: RecordingPolicy) -> DirectorySnapshot:
    """The telephony tests' center with direct-call recording policies on users by name."""
    users = [
        dataclasses.replace(user, recording=policies.get(user.username, user.recording))
        for user in base.users
    ]
    return DirectorySnapshot(
        teams=base.teams, roles=base.roles, users=users, trunks=base.trunks, queues=base.queues
    )


def _user_target(user_id: UserId) -> OutboundTarget:
    return OutboundTarget(
        request_uri=SipUri.parse("sip:callee@192.0.2.50:5062"),
        destination=Destination("UDP", "192.0.2.50", 5062),
        from_address="<sip:caller@192.0.2.1>",
        to_address="<sip:callee@192.0.2.1>",
        label="callee",
        route_kind=RouteKind.EXTENSION,
        flow=None,
        latch_host=None,
        user_id=user_id,
    )


TRUNK_TARGET = OutboundTarget(
    request_uri=SipUri.parse("sip:0298765432@192.0.2.10"),
    destination=Destination("UDP", "192.0.2.10", 5060),
    from_address="<sip:1001@192.0.2.1>",
    to_address="<sip:0298765432@192.0.2.10>",
    label="0298765432",
    route_kind=RouteKind.TRUNK,
    flow=None,
    latch_host=None,
    trunk_id=CARRIER,
)


def _caller(user_id: UserId | None) -> CallerInfo:
    if user_id is None:  # a customer through the carrier's trunk
        return CallerInfo(
            CallDirection.INBOUND, "0612345678", "0312345601", None, None, trunk_id=CARRIER
        )
    return CallerInfo(CallDirection.INTERNAL, "1001", "1002", None, None, user_id=user_id)


def answered_call(
    services: Services, invite: SipRequest, caller_id: UserId | None, target: OutboundTarget
) -> Call:
    """A real B2BUA call in its talking state, both legs up (their media endpoints named)."""
    call = Call(
        services,  # type: ignore[arg-type]
        SimpleNamespace(request=invite),  # type: ignore[arg-type]
        _caller(caller_id),
        [target],
        on_finished=lambda _call: None,
    )

    def leg(role: LegRole, endpoint: str, side: str) -> Leg:
        media = LocalMedia(EndpointId(endpoint), "192.0.2.1", 30000, 30001)
        made = Leg(role=role, media=media, latch_host=None, uri=side, started_at=T0)
        made.dialog = CountingDialog(side)  # type: ignore[assignment]
        return made

    call.inbound = leg(LegRole.CALLER, CALLER_ENDPOINT, "caller")
    call.outbound = leg(LegRole.CALLEE, CALLEE_ENDPOINT, "callee")
    call.bridge_id = "bridge-1"
    call.state = CallState.ANSWERED
    return call


CASES = [
    # (name, policies, caller, target, operator, the operator's side)
    ("a customer through the trunk calls alice", {}, None, _user_target(ALICE), ALICE, "callee"),
    ("alice's own outbound call through the trunk", {}, ALICE, TRUNK_TARGET, ALICE, "caller"),
    ("alice calls bob, a tie: the callee", {}, ALICE, _user_target(BOB), BOB, "callee"),
    (
        "alice, recorded, calls bob, who is not: alice's own outbound call",
        {"alice": RecordingPolicy.ALL},
        ALICE,
        _user_target(BOB),
        ALICE,
        "caller",
    ),
]


@pytest.mark.parametrize(
    ("policies", "caller_id", "target", "operator_id", "side"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_a_takeover_hangs_up_the_operators_leg_and_keeps_the_customer(
    directory: DirectorySnapshot,
    build_request: Callable[..., SipRequest],
    policies: dict[str, RecordingPolicy],
    caller_id: UserId | None,
    target: OutboundTarget,
    operator_id: UserId,
    side: str,
) -> None:
    snapshot = with_policies(directory, **policies)
    services = Services()
    invite = build_request("INVITE", call_id="takeover-1@192.0.2.20")
    call = answered_call(services, invite, caller_id, target)
    view = view_of(call, snapshot)
    assert view is not None and view.operator_id == operator_id
    operator, customer = (
        (CALLER_ENDPOINT, CALLEE_ENDPOINT)
        if side == "caller"
        else (CALLEE_ENDPOINT, CALLER_ENDPOINT)
    )
    assert (view.operator_endpoint, view.customer_endpoint) == (operator, customer)
    # The same side the recording puts on the operator track.
    roles = direct_call_sides(snapshot, caller_id, target.user_id).bridge_roles
    assert dict(zip((CALLER_ENDPOINT, CALLEE_ENDPOINT), roles, strict=True))[operator] == "operator"

    talking = asyncio.create_task(call._talking())
    call.post(ReleaseOperator("taken over by bob", view.operator_endpoint))
    for _ in range(5):
        await asyncio.sleep(0)
    assert services.byes == [side]  # the operator's leg alone
    customer_leg = call.outbound if side == "caller" else call.inbound
    assert customer_leg is not None and customer_leg.ended_at is None
    assert call.state is CallState.ANSWERED  # the customer is still on the call
    assert view_of(call, snapshot) is not None
    assert view_of(call, snapshot).operator_endpoint is None  # type: ignore[union-attr]
    call.post(Hangup("the supervisor hung up"))
    await asyncio.wait_for(talking, 5)
    assert services.byes == [side, "callee" if side == "caller" else "caller"]


async def test_a_release_for_an_operator_already_gone_hangs_up_nobody(
    build_request: Callable[..., SipRequest],
) -> None:
    services = Services()
    call = answered_call(services, build_request("INVITE"), ALICE, TRUNK_TARGET)
    talking = asyncio.create_task(call._talking())
    call.post(ReleaseOperator("taken over by bob", None))
    call.post(ReleaseOperator("taken over by bob", "endpoint-of-another-call"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert services.byes == [] and call.state is CallState.ANSWERED
    call.post(Hangup("end"))
    await asyncio.wait_for(talking, 5)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    built = build_rig()
    yield built
    await built.service.close()


async def test_the_takeover_names_the_monitored_operators_endpoint(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    rig.register_phone("north_sup")
    user = USERS["north_sup"]
    asker = Asker(user, rig.directory.principal_for(user), "192.0.2.5", "api")
    await rig.service.start(asker, call.call_id, MonitorMode.TAKEOVER, "QA-1")
    await settle()
    answer_invite(rig, rig.services.wire.requests("INVITE")[-1])
    await settle()
    released = [e for e in call.task.events if isinstance(e, ReleaseOperator)]  # type: ignore[attr-defined]
    assert [e.operator_endpoint for e in released] == [call.operator_endpoint]
    assert call.operator_endpoint not in rig.media.hearing(call.bridge_id, call.customer_endpoint)
