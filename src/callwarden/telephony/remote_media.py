"""Telling the media engine what a leg's peer negotiated, and answering a re-INVITE on one leg
(hold, unhold, a new address: RFC 3264 8), for calls other than the two-party `Call`.
"""

from __future__ import annotations

import logging

from callwarden.media.control import MediaControl
from callwarden.sip.errors import SipError
from callwarden.sip.message import SipRequest, make_response
from callwarden.sip.sdp import DEFAULT_CODECS, NegotiatedMedia, negotiate_answer
from callwarden.sip.server_transaction import ServerTransaction
from callwarden.sip.session_description import SessionDescription
from callwarden.telephony.call import Leg, srtp_keys

logger = logging.getLogger(__name__)

SDP = "application/sdp"


def remote_direction(negotiated: NegotiatedMedia) -> str:
    """What the remote side does, as the media engine wants it (ours mirrored)."""
    return {"sendonly": "recvonly", "recvonly": "sendonly"}.get(
        negotiated.direction, negotiated.direction
    )


async def apply_remote(media: MediaControl, leg: Leg, negotiated: NegotiatedMedia) -> None:
    leg.sdes = negotiated.srtp
    await media.set_remote(
        leg.endpoint_id,
        host=negotiated.remote_address,
        port=negotiated.remote_port,
        payload_type=negotiated.payload_type,
        encoding=negotiated.encoding,
        dtmf_payload_type=negotiated.dtmf_payload_type,
        direction=remote_direction(negotiated),
        srtp=srtp_keys(negotiated),
    )


async def reinvite_answer(
    media: MediaControl, sdp_address: str, leg: Leg, request: SipRequest, tx: ServerTransaction
) -> None:
    """Answer a re-INVITE on `leg` (RFC 3264 8): a new answer for a new offer, else the last."""
    dialog = leg.dialog
    if dialog is None:
        tx.respond(make_response(request, 481))
        return
    dialog.refresh_target(request)
    if request.body:
        try:
            answer, negotiated = negotiate_answer(
                SessionDescription.parse(request.body),
                DEFAULT_CODECS,
                local_address=sdp_address,
                local_port=leg.media.rtp_port,
                session_id=leg.session_id,
                session_version=leg.session_version + 1,
                accept_sdes=leg.srtp,
                require_srtp=leg.require_srtp,
                current=leg.sdes,
            )
        except SipError as error:
            tx.respond(make_response(request, error.status, error.reason))
            return
        leg.session_version += 1
        leg.answer = bytes(answer)
        await apply_remote(media, leg, negotiated)
        logger.info("leg %s %s", leg.uri, "on hold" if negotiated.is_hold else "active")
    ok = make_response(request, 200)
    ok.headers.add("Contact", str(dialog.local_contact))
    ok.headers.add("Content-Type", SDP)
    ok.body = leg.answer
    tx.respond(ok)
