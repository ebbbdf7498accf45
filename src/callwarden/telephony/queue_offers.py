"""Ringing operators for a queue call, and connecting the one who answers (part of
`QueueCall`, kept apart by concern: see `queue_call.py` for the whole).

For each offer of the ACD every registered phone of the operator is INVITEd on a new RTP
endpoint of the call's bridge (`agent_offer`); the first 200 wins: the ACD is told, the other
phones are CANCELled, the endpoint joins the bridge as `operator`, the players leave and the
bridge goes to the `normal` matrix. Answers nobody wants any more are ACKed and hung up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
from typing import TYPE_CHECKING

from callwarden.domain.cdr import LegRole
from callwarden.domain.ids import UserId
from callwarden.media.control import MediaError
from callwarden.sip.dialog import Dialog
from callwarden.sip.errors import SipError
from callwarden.sip.message import SipResponse
from callwarden.sip.sdp import (
    DEFAULT_CODECS,
    NegotiatedMedia,
    build_offer,
    offer_crypto,
    parse_answer,
)
from callwarden.sip.session_description import SessionDescription
from callwarden.telephony.agent_offer import AgentOffer, agent_invite, start_attempt
from callwarden.telephony.call import Leg, OutboundResponse
from callwarden.telephony.outbound import Attempt
from callwarden.telephony.queue_events import QueueCallState
from callwarden.telephony.remote_media import apply_remote

if TYPE_CHECKING:
    from callwarden.telephony.queue_call import QueueCall

__all__ = [
    "answered",
    "bye_dialog",
    "drop_offer",
    "on_response",
    "ring_agent",
]

logger = logging.getLogger(__name__)


async def ring_agent(call: QueueCall, agent_id: UserId, *, direct: bool) -> None:
    """Ring every registered phone of `agent_id` (`direct`: an overflow to a user, outside
    the ACD, for the node's ring timeout); no phone: the offer fails at once."""
    if call.state is not QueueCallState.WAITING or agent_id in call._offers:
        return
    targets = call.distributor.agent_targets(agent_id, call.caller)
    if not targets:
        logger.info("queue call %s: agent %s has no registered phone", call.call_id, agent_id)
        await offer_failed(call, agent_id, direct=direct)
        return
    media, services = call.services.media, call.services
    assert call.bridge_id is not None
    srtp = any(target.srtp for target in targets)  # one agent: all TLS with SRTP, or none
    local = await media.create_endpoint(bridge_id=call.bridge_id, srtp=srtp)
    first = targets[0]
    leg = Leg(
        LegRole.CALLEE,
        local,
        first.latch_host,
        str(first.request_uri),
        call.now,
        srtp=srtp,
        require_srtp=srtp,
    )
    sdp_offer = build_offer(
        local_address=services.sdp_address,
        local_port=local.rtp_port,
        session_id=leg.session_id,
        session_version=leg.session_version,
        codecs=DEFAULT_CODECS,
        crypto=offer_crypto() if srtp else (),
    )
    offer = AgentOffer(agent_id, leg, sdp_offer, direct=direct)
    call._offers[agent_id] = offer
    body = bytes(sdp_offer)
    for target in targets:
        contact = call._contact(target.destination.transport)
        invite = agent_invite(
            target,
            body,
            contact=contact,
            allow=services.allow,
            user_agent=services.user_agent,
            call_id_host=services.sdp_address,
        )
        attempt = start_attempt(
            services.layer, target, invite, contact, partial(on_sip_response, call)
        )
        offer.attempts.append(attempt)
        call._by_attempt[attempt] = offer
    if direct:
        call.timers.set("direct-ring", services.ring_timeout)


def on_sip_response(
    call: QueueCall, attempt: Attempt, response: SipResponse, dialog: Dialog | None
) -> None:
    """From the SIP stack: record finals; answers nobody wants are hung up at once."""
    if response.status >= 200:
        attempt.final_status = response.status
    offer = call._by_attempt.get(attempt)
    wanted = offer is not None and not offer.withdrawn and call.state is QueueCallState.WAITING
    if 200 <= response.status < 300 and dialog is not None and not wanted:
        bye_dialog(call, dialog)
        return
    if call.state is not QueueCallState.ENDED:
        call.post(OutboundResponse(attempt, response, dialog))


def bye_dialog(call: QueueCall, dialog: Dialog) -> None:
    try:
        bye = dialog.create_request("BYE")
    except SipError:
        return
    dialog.terminate()
    call.services.send_bye(bye, dialog.next_hop())


async def on_response(
    call: QueueCall, attempt: Attempt, response: SipResponse, dialog: Dialog | None
) -> None:
    offer = call._by_attempt.get(attempt)
    status = response.status
    if offer is None or offer.withdrawn or status < 200:
        return
    if status < 300:
        assert dialog is not None
        if offer.answered or call.state is not QueueCallState.WAITING:
            bye_dialog(call, dialog)
            return
        await answered(call, offer, attempt, dialog, response)
        return
    if offer.pending or offer.answered:
        return
    logger.info("queue call %s: agent %s refused (%d)", call.call_id, offer.agent_id, status)
    drop_offer(call, offer)
    await offer_failed(call, offer.agent_id, direct=offer.direct)


async def offer_failed(call: QueueCall, agent_id: UserId, *, direct: bool) -> None:
    if direct:
        await call._message_then_hang_up("overflow user unavailable")
    else:
        await call._report(call.distributor.offer_failed(call.call_id, agent_id))


def drop_offer(call: QueueCall, offer: AgentOffer) -> None:
    """Stop ringing (CANCEL what is pending) and forget the offer; its endpoint goes in
    the background."""
    offer.withdrawn = True
    offer.cancel_pending()
    call._offers.pop(offer.agent_id, None)
    for attempt in offer.attempts:
        call._by_attempt.pop(attempt, None)
    if offer.direct:
        call.timers.cancel("direct-ring")
    if offer.leg is not call.agent_leg:
        endpoint = offer.leg.endpoint_id
        asyncio.get_running_loop().create_task(close_endpoint(call, endpoint))


async def close_endpoint(call: QueueCall, endpoint_id: str) -> None:
    with contextlib.suppress(MediaError):  # already gone with the bridge
        await call.services.media.close_endpoint(endpoint_id)


async def answered(
    call: QueueCall, offer: AgentOffer, attempt: Attempt, dialog: Dialog, response: SipResponse
) -> None:
    leg = offer.leg
    offer.answered = True
    offer.cancel_pending(keep=attempt)
    leg.dialog = dialog
    leg.uri = str(attempt.target.request_uri)
    leg.latch_host = attempt.target.latch_host
    leg.sip_status = response.status
    try:
        negotiated = parse_answer(offer.sdp_offer, SessionDescription.parse(response.body))
    except SipError as error:
        logger.info("queue call %s: agent SDP unusable: %s", call.call_id, error)
        bye_dialog(call, dialog)
        drop_offer(call, offer)
        await offer_failed(call, offer.agent_id, direct=offer.direct)
        return
    if not offer.direct and not await call._report(
        call.distributor.offer_answered(call.call_id, offer.agent_id)
    ):
        bye_dialog(call, dialog)
        drop_offer(call, offer)
        return
    call._offers.pop(offer.agent_id, None)
    call.timers.cancel("direct-ring")
    call.announcer.stop()
    call.agent_leg, call.agent_id = leg, offer.agent_id
    call.agent_label = attempt.target.label
    call.services.register_dialog(dialog, call, leg)
    call._transition(QueueCallState.CONNECTED)
    await connect(call, leg, negotiated)
    logger.info("queue call %s: answered by agent %s", call.call_id, offer.agent_id)
    await record(call, leg, offer.agent_id)


async def record(call: QueueCall, leg: Leg, agent_id: UserId) -> None:
    """Tell the recording control the operator is connected (the queue's policy decides)."""
    if call._recordings is None or call.bridge_id is None:
        return
    label = call.caller.label
    await call._recordings.call_connected(
        call_id=call.call_id,
        bridge_id=call.bridge_id,
        policy=call.queue.recording,
        direction=call.caller.direction,
        operator_id=agent_id,
        operator_endpoint=leg.endpoint_id,
        queue_id=call.queue.id,
        team_id=call.queue.team_id,
        caller_number=label if label.lstrip("+").isdigit() else None,
    )


async def connect(call: QueueCall, leg: Leg, negotiated: NegotiatedMedia) -> None:
    """The operator's endpoint joins the bridge; the players leave; normal matrix."""
    media, bridge = call.services.media, call.bridge_id
    assert bridge is not None and call.audio is not None
    await apply_remote(media, leg, negotiated)
    await media.enable(leg.endpoint_id, latch=leg.latch_host is not None, latch_host=leg.latch_host)
    await media.add_to_bridge(bridge, leg.endpoint_id, "operator")
    await call.audio.stop()
    await media.set_mode(bridge, "normal")
    leg.answered_at = call.answered_at = call.now
