"""Answering a queue caller at once: a bridge, the caller's RTP endpoint in it as `customer`,
the hold audio started before the 200 (OK) goes out, and the INVITE usage that waits for the
ACK (RFC 3261 13.3.1.4).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from callwarden.domain.cdr import LegRole
from callwarden.media.control import MediaError
from callwarden.sip.dialog import Dialog
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.headers import NameAddress
from callwarden.sip.invite_usage import InviteServerUsage
from callwarden.sip.message import make_response
from callwarden.sip.sdp import DEFAULT_CODECS, negotiate_answer
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.sip.session_description import SessionDescription
from callwarden.sip.tx_keys import new_tag
from callwarden.telephony.agent_offer import SDP
from callwarden.telephony.call import Hangup, Leg, offers_srtp
from callwarden.telephony.call_context import CallerInfo
from callwarden.telephony.call_task import CallTask
from callwarden.telephony.queue_events import QueueCallOver, QueueCallServices
from callwarden.telephony.remote_media import apply_remote

logger = logging.getLogger(__name__)

__all__ = ["AnsweredCaller", "answer_caller"]


@dataclass(frozen=True, slots=True)
class AnsweredCaller:
    bridge_id: str
    leg: Leg
    usage: InviteServerUsage


async def answer_caller(
    services: QueueCallServices,
    call: CallTask,
    invite_tx: InviteServerTransaction,
    caller: CallerInfo,
    *,
    fail: Callable[[int, str | None], None],
    start_audio: Callable[[str, Leg], Awaitable[None]],
) -> AnsweredCaller:
    """Answer `invite_tx` with 200 and our SDP; `fail(status, reason)` answers it with an
    error instead (then `QueueCallOver` is raised). `start_audio(bridge_id, leg)` starts what
    the caller hears before their endpoint is enabled."""
    invite = invite_tx.request
    if invite.content_type != SDP or not invite.body:
        fail(488, "Offer Required")
        raise QueueCallOver
    try:
        offer = SessionDescription.parse(invite.body)
    except SipParseError as error:
        logger.info("queue call %s: bad SDP offer: %s", call.call_id, error)
        fail(400, "Bad SDP")
        raise QueueCallOver from None
    media = services.media
    bridge_id: str | None = None
    try:
        bridge_id = await media.create_bridge()
        srtp = caller.sdes and offers_srtp(offer)
        local = await media.create_endpoint(bridge_id=bridge_id, srtp=srtp)
    except (MediaError, OSError) as error:
        logger.error("queue call %s: no media endpoint: %s", call.call_id, error)
        fail(503, None)
        if bridge_id is not None:
            await media.close_bridge(bridge_id)
        raise QueueCallOver from None
    leg = Leg(
        LegRole.CALLER,
        local,
        caller.latch_host,
        str(invite.from_.uri),
        services.now(),
        srtp=srtp,
        require_srtp=caller.require_srtp,
    )
    try:
        answer, negotiated = negotiate_answer(
            offer,
            DEFAULT_CODECS,
            local_address=services.sdp_address,
            local_port=local.rtp_port,
            session_id=leg.session_id,
            session_version=leg.session_version,
            accept_sdes=srtp,
            require_srtp=caller.require_srtp,
        )
    except SipError as error:
        fail(error.status, error.reason)
        await media.close_bridge(bridge_id)
        await media.close_endpoint(local.endpoint_id)
        raise QueueCallOver from None
    leg.answer = bytes(answer)
    await apply_remote(media, leg, negotiated)
    await media.add_to_bridge(bridge_id, local.endpoint_id, "customer")
    await start_audio(bridge_id, leg)
    await media.enable(
        local.endpoint_id, latch=leg.latch_host is not None, latch_host=leg.latch_host
    )
    contact = NameAddress(None, services.contact_uri(invite_tx.source.transport), ())
    ok = make_response(invite, 200, to_tag=new_tag())
    ok.headers.add("Contact", str(contact))
    ok.headers.add("Allow", services.allow)
    ok.headers.add("Content-Type", SDP)
    ok.body = leg.answer
    leg.dialog = Dialog.as_uas(invite, ok, local_contact=contact, flow=caller.flow)
    leg.sip_status = 200
    leg.answered_at = services.now()
    services.register_dialog(leg.dialog, call, leg)
    usage = InviteServerUsage(
        services.layer,
        invite_tx,
        leg.dialog,
        on_ack_timeout=lambda _dialog: call.post(Hangup("no ACK from the caller")),
    )
    usage.answer(ok)
    return AnsweredCaller(bridge_id, leg, usage)
