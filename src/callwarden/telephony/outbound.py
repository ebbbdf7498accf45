"""The outbound side of a call: one INVITE per target (a user's phones ring in parallel, the
first to answer wins), the choice of the failure to report, and the single authenticated retry
toward a trunk that challenges us.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from callwarden.sip.dialog import Dialog
from callwarden.sip.digest import (
    DigestChallenge,
    DigestError,
    answer_challenge,
    parse_challenge,
    select_challenge,
)
from callwarden.sip.errors import SipParseError
from callwarden.sip.invite_usage import InviteClientUsage
from callwarden.sip.message import SipRequest, SipResponse
from callwarden.telephony.call_context import OutboundTarget

logger = logging.getLogger(__name__)

# RFC 3261 16.7 step 6 in spirit: when every fork failed, tell the caller the most telling.
_FAILURE_PREFERENCE = (486, 600, 603, 404, 480, 487)


@dataclass(eq=False)
class Attempt:
    """One outbound INVITE of a call (one target)."""

    target: OutboundTarget
    usage: InviteClientUsage
    final_status: int | None = None
    dialog: Dialog | None = None
    retried_with_credentials: bool = False
    provisional: bool = field(default=False)

    @property
    def invite(self) -> SipRequest:
        return self.usage.invite

    @property
    def pending(self) -> bool:
        return self.final_status is None


def best_failure(statuses: list[int]) -> int:
    """The final status for the caller when every attempt failed."""
    for preferred in _FAILURE_PREFERENCE:
        if preferred in statuses:
            return preferred
    return statuses[-1] if statuses else 480


def relayed_failure(status: int) -> int:
    """The status the caller gets for the callee's final failure: answers that only concern
    the hop behind us (authentication, extensions, redirects) are not passed on."""
    if status in (401, 407, 420, 421, 423, 494):
        return 503
    if 300 <= status < 400 or status == 408:
        return 480
    if status == 503:
        return 500
    return status


def authenticated_retry(
    invite: SipRequest,
    response: SipResponse,
    credentials: tuple[str, str],
    *,
    realm: str | None = None,
) -> SipRequest | None:
    """The INVITE again with credentials answering the challenge in `response` (RFC 3261
    22.2), or None when the challenge cannot be answered: none we support, or none for
    `realm` when the trunk has one configured (never sign for a realm that is not the
    trunk's)."""
    header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
    values = response.headers.get_all(header)
    challenge = select_challenge(values, realm=realm)
    if challenge is None:
        logger.warning(
            "%d challenge to call %s not answered: realms %s offered, %s",
            response.status,
            invite.call_id,
            _realms(values),
            "none usable" if realm is None else f"the trunk's realm is {realm!r}",
        )
        return None
    username, password = credentials
    try:
        authorization = answer_challenge(
            challenge, "INVITE", str(invite.uri), username, password, cnonce=secrets.token_hex(8)
        )
    except (DigestError, SipParseError, ValueError) as error:
        logger.warning("cannot answer the challenge (call %s): %s", invite.call_id, error)
        return None
    retry = SipRequest("INVITE", invite.uri, invite.headers.copy(), invite.body)
    retry.headers.remove("Via")
    retry.headers.set("CSeq", f"{invite.cseq.number + 1} INVITE")
    retry.headers.set(
        "Authorization" if response.status == 401 else "Proxy-Authorization", authorization
    )
    return retry


def _realms(values: list[str]) -> list[str]:
    """The realms named by challenge header values, for a log line (unparseable ones as ?)."""
    realms: list[str] = []
    for value in values:
        try:
            challenge = parse_challenge(value)
        except SipParseError:
            realms.append("?")
            continue
        realms.append(challenge.realm if isinstance(challenge, DigestChallenge) else "?")
    return realms
