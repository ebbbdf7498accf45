"""Who sent a request: a configured trunk (by source address) or a user proven by digest.

Every request that would create a call or a binding goes through `SipAuthGuard.identify`.
Unknown users and wrong passwords get the same challenge (no user enumeration); failures are
counted per source address and, past the threshold, the address is refused for a while and
logged. Disabled users cannot authenticate at all (their HA1 is not offered to the check).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import SipDigestAlgorithm, Trunk, User
from callwarden.sip.addressing import Source
from callwarden.sip.digest import AuthFailure, DigestAuthenticator
from callwarden.sip.message import SipRequest, SipResponse, make_response
from callwarden.sip.tx_keys import new_tag
from callwarden.telephony.account_guard import AccountGuard
from callwarden.telephony.throttle import FailureThrottle

logger = logging.getLogger(__name__)

_ALGORITHMS = {"MD5": SipDigestAlgorithm.MD5, "SHA-256": SipDigestAlgorithm.SHA256}


@dataclass(frozen=True, slots=True)
class FromTrunk:
    trunk: Trunk


@dataclass(frozen=True, slots=True)
class FromUser:
    user: User


@dataclass(frozen=True, slots=True)
class Refused:
    """Answer the request with `response` (a challenge or a refusal) and go no further."""

    response: SipResponse


Identity = FromTrunk | FromUser | Refused


def trunk_for_source(directory: DirectorySnapshot, source: Source) -> Trunk | None:
    """The enabled trunk the request came from: its configured host, and over UDP also its
    configured port (carriers send UDP from their signalling port; over TCP the source port
    is an ephemeral one). Anything else must authenticate as a user."""
    for trunk in directory.trunks:
        if not trunk.enabled or trunk.host != source.remote_host:
            continue
        if source.transport != "UDP" or trunk.port == source.remote_port:
            return trunk
    return None


class SipAuthGuard:
    """`per_account` counts failures per (source address, claimed user): a phone with a wrong
    password stops being checked for a while. `per_address` counts every failure from one
    address, with a higher threshold: a scanner cycling through user names. `on_failure`
    hears of every failed authentication (the source guard counts them toward a ban);
    `per_user` counts failures on one account from every address it was never used from
    (guessing from many addresses, `account_guard`)."""

    def __init__(
        self,
        authenticator: DigestAuthenticator,
        *,
        per_account: FailureThrottle,
        per_address: FailureThrottle,
        on_failure: Callable[[Source], None] | None = None,
        per_user: AccountGuard | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._per_account = per_account
        self._per_address = per_address
        self._on_failure = on_failure
        self._per_user = per_user

    def _refuse(
        self, request: SipRequest, source: Source, why: str, claimed: str | None
    ) -> Refused:
        """403 without a challenge; still an offence for the source guard."""
        self._report_failure(source)
        logger.warning(
            "refused %s for %r from %s: %s (call %s)",
            request.method,
            claimed,
            source.remote_host,
            why,
            request.call_id,
        )
        return Refused(make_response(request, 403, "Forbidden", to_tag=new_tag()))

    def _report_failure(self, source: Source) -> None:
        """A failed attempt, or one refused because its address or account is throttled
        (guessing on regardless): the source guard counts it toward a ban."""
        if self._on_failure is not None:
            self._on_failure(source)

    @property
    def realm(self) -> str:
        return self._authenticator.realm

    def identify(
        self,
        request: SipRequest,
        source: Source,
        directory: DirectorySnapshot,
        *,
        allow_trunks: bool,
    ) -> Identity:
        """Trunk by address (when `allow_trunks`), else a digest-authenticated enabled user.

        REGISTER is challenged with 401/WWW-Authenticate, everything else with
        407/Proxy-Authenticate (RFC 3261 22.2, 22.3).
        """
        if allow_trunks:
            trunk = trunk_for_source(directory, source)
            if trunk is not None:
                return FromTrunk(trunk)
        address = source.remote_host
        if self._per_address.is_blocked(address):
            return self._refuse(request, source, "throttled address", None)
        as_registrar = request.method == "REGISTER"
        header = "Authorization" if as_registrar else "Proxy-Authorization"
        realm = self._authenticator.realm

        def lookup_ha1(username: str, algorithm: str) -> str | None:
            user = directory.user_by_username(username)
            credentials = None if user is None else user.sip_credentials_for(realm)
            if credentials is None:
                return None
            return credentials.ha1(_ALGORITHMS[algorithm.upper().removesuffix("-SESS")])

        result = self._authenticator.verify(
            request.method,
            request.headers.get_all(header),
            lookup_ha1,
            request_uri=str(request.uri),
            source=address,
        )
        claimed = result.claimed_username
        account = f"{address} {claimed}"
        if claimed is not None and self._per_account.is_blocked(account):
            return self._refuse(request, source, "throttled address", claimed)
        per_user = self._per_user
        if claimed is not None and per_user is not None and per_user.is_blocked(claimed, address):
            return self._refuse(request, source, "account under guessing, new address", claimed)
        if result.ok and result.username is not None:
            user = directory.user_by_username(result.username)
            if user is not None and user.enabled:
                self._per_account.record_success(account)
                if per_user is not None:
                    per_user.record_success(result.username, address)
                return FromUser(user)
        if result.failure not in (None, AuthFailure.NO_CREDENTIALS):
            logger.warning(
                "SIP authentication failed from %s:%d for %r: %s (%s, call %s)",
                address,
                source.remote_port,
                result.claimed_username,
                result.reason,
                request.method,
                request.call_id,
            )
            self._report_failure(source)
            if claimed is not None and per_user is not None:
                per_user.record_failure(claimed, address)
            blocked_account = self._per_account.record_failure(account)
            blocked_address = self._per_address.record_failure(address)
            if blocked_account or blocked_address:
                return Refused(make_response(request, 403, "Forbidden", to_tag=new_tag()))
        status = 401 if as_registrar else 407
        challenge = make_response(request, status, to_tag=new_tag())
        name = "WWW-Authenticate" if as_registrar else "Proxy-Authenticate"
        for value in self._authenticator.challenge_headers(stale=result.stale, source=address):
            challenge.headers.add(name, value)
        return Refused(challenge)
