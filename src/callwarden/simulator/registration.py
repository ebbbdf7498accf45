"""Keeping a simulated phone registered (RFC 3261 10.2) with digest authentication (22.4,
RFC 7616/8760), like a softphone does.

:class:`Registration` sends REGISTER, answers the registrar's 401 challenge once per attempt,
refreshes before the granted expiry (10.2.4) and, when the registrar cannot be reached or
refuses, tries again with a growing delay (2 s doubling to 30 s), so a simulator started
together with its node registers as soon as the node listens.
"""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Callable

from callwarden.simulator.settings import OperatorAccount
from callwarden.simulator.user_agent import UserAgent
from callwarden.sip.clock import TimerHandle
from callwarden.sip.digest import DigestError, answer_challenge, select_challenge
from callwarden.sip.errors import SipParseError
from callwarden.sip.message import Headers, SipRequest, SipResponse
from callwarden.sip.tx_keys import new_call_id, new_tag
from callwarden.sip.uri import SipUri

__all__ = ["Registration", "RegistrationState"]

logger = logging.getLogger(__name__)

RETRY_FIRST = 2.0
RETRY_MAX = 30.0


class RegistrationState(enum.Enum):
    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"


class Registration:
    """Keeps ``account`` registered at the node through ``agent``."""

    def __init__(
        self,
        agent: UserAgent,
        account: OperatorAccount,
        *,
        realm: str,
        expires: int,
        on_change: Callable[[Registration], None] | None = None,
    ) -> None:
        self.agent = agent
        self.account = account
        self.realm = realm
        self.expires = expires
        self.on_change = on_change
        self.state = RegistrationState.UNREGISTERED
        self._call_id = new_call_id(agent.host)
        self._from_tag = new_tag()
        self._cseq = 0
        self._timer: TimerHandle | None = None
        self._retry = RETRY_FIRST
        self._answered_challenge = False
        self._closed = False

    @property
    def registered(self) -> bool:
        return self.state is RegistrationState.REGISTERED

    def start(self) -> None:
        self._send(None)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _request_uri(self) -> SipUri:
        node = self.agent.node
        return SipUri("sip", None, None, node.host, node.port, (), ())

    def _send(self, authorization: str | None) -> None:
        if self._closed:
            return
        if authorization is None:
            self._answered_challenge = False
        self._cseq += 1
        agent = self.agent
        username = self.account.username
        aor = f"<sip:{username}@{agent.node.host}>"
        headers = Headers()
        headers.add("Max-Forwards", "70")
        headers.add("From", f"{aor};tag={self._from_tag}")
        headers.add("To", aor)
        headers.add("Call-ID", self._call_id)
        headers.add("CSeq", f"{self._cseq} REGISTER")
        headers.add("Contact", str(agent.contact()))
        headers.add("Expires", str(self.expires))
        headers.add("User-Agent", agent.user_agent)
        if authorization is not None:
            headers.add("Authorization", authorization)
        request = SipRequest("REGISTER", self._request_uri(), headers)
        if self.state is RegistrationState.UNREGISTERED:
            self._set_state(RegistrationState.REGISTERING)
        agent.layer.send_request(request, agent.node, self._on_response)

    def _on_response(self, response: SipResponse) -> None:
        status = response.status
        if status < 200 or self._closed:
            return
        if status == 401 and not self._answered_challenge:
            authorization = self._authorization(response)
            if authorization is not None:
                self._answered_challenge = True
                self._send(authorization)
                return
        if 200 <= status < 300:
            self._retry = RETRY_FIRST
            granted = self._granted_expires(response)
            self._set_state(RegistrationState.REGISTERED)
            self._schedule(max(granted * 0.5, granted - 60.0))
            return
        logger.warning(
            "%s: REGISTER answered %d %s; trying again in %.0f s",
            self.account.username,
            status,
            response.reason,
            self._retry,
        )
        self._set_state(RegistrationState.UNREGISTERED)
        self._schedule(self._retry)
        self._retry = min(self._retry * 2, RETRY_MAX)

    def _authorization(self, response: SipResponse) -> str | None:
        """Answer the registrar's challenge in our realm (never a foreign one: RFC 3261 22.4)."""
        challenge = select_challenge(response.headers.get_all("WWW-Authenticate"), realm=self.realm)
        if challenge is None:
            logger.warning("%s: no usable challenge in the 401", self.account.username)
            return None
        try:
            return answer_challenge(
                challenge,
                "REGISTER",
                str(self._request_uri()),
                self.account.username,
                self.account.sip_password,
                cnonce=secrets.token_hex(8),
            )
        except (DigestError, SipParseError) as error:
            logger.warning("%s: cannot answer the challenge: %s", self.account.username, error)
            return None

    def _granted_expires(self, response: SipResponse) -> float:
        """The expiry the registrar granted our Contact (10.2.4), else Expires, else ours."""
        ours = str(self.agent.contact().uri)
        try:
            for contact in response.contacts:
                value = contact.param("expires")
                if str(contact.uri) == ours and value is not None and value.isdigit():
                    return float(value)
            if response.expires is not None:
                return float(response.expires)
        except SipParseError:
            pass
        return float(self.expires)

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.agent.clock.call_later(delay, self._refresh)

    def _refresh(self) -> None:
        self._timer = None
        self._send(None)

    def _set_state(self, state: RegistrationState) -> None:
        if state is self.state:
            return
        self.state = state
        if state is RegistrationState.REGISTERED:
            logger.info(
                "%s registered from %s:%d", self.account.username, self.agent.host, self.agent.port
            )
        if self.on_change is not None:
            self.on_change(self)
