"""The registrar (RFC 3261 10.3): bindings of a user's phones, kept in memory.

A user may have several phones registered at once (up to `max_bindings`). Each binding
remembers where the REGISTER physically came from: a phone behind home NAT that asked for
symmetric routing (RFC 3581 `rport`) over UDP, or any phone over TCP, is reached at that
source (the NAT's public address, the same TCP connection); other phones at their Contact.
Bindings expire on the injected clock.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass

from callwarden.sip.addressing import Destination, Source
from callwarden.sip.clock import Clock
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.message import SipRequest, SipResponse, make_response
from callwarden.sip.tx_keys import new_tag
from callwarden.sip.uri import SipUri
from callwarden.telephony.contact_address import reachable_destination
from callwarden.telephony.flows import flow_destination

logger = logging.getLogger(__name__)

_LOCAL_EXPIRES = 10 * 365 * 86400.0
"""A contact held by the node lasts until it is unbound."""


def reflected_destination(destination: Destination, source: Source) -> bool:
    """Whether a binding would make us send requests somewhere its REGISTER did not come from
    and no phone can be: a loopback address (unless the phone is on this host), an unspecified,
    multicast, broadcast or link-local one (SECURITY-NOTES T14: reflection). Private
    addresses are ordinary LAN phones; host names are resolved when used."""
    try:
        address = ipaddress.ip_address(destination.host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # [::ffff:127.0.0.1] is 127.0.0.1
    if address.is_loopback:
        try:
            return not ipaddress.ip_address(source.remote_host).is_loopback
        except ValueError:
            return True
    return (
        address.is_unspecified
        or address.is_multicast
        or address.is_link_local
        or address == ipaddress.IPv4Address("255.255.255.255")
        or (address.is_reserved and address.version == 4)  # 240.0.0.0/4
    )


@dataclass(frozen=True, slots=True)
class RegistrarSettings:
    default_expires: int = 3600
    max_expires: int = 3600
    min_expires: int = 60
    max_bindings: int = 10


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered phone of a user (RFC 3261 10.3 step 7)."""

    contact: SipUri
    destination: Destination
    expires_at: float
    call_id: str
    cseq: int


class Registrar:
    def __init__(self, clock: Clock, settings: RegistrarSettings | None = None) -> None:
        self._clock = clock
        self.settings = settings or RegistrarSettings()
        self._bindings: dict[str, list[Binding]] = {}

    def bindings(self, username: str) -> list[Binding]:
        """The live bindings of `username`, most recently registered first."""
        current = self._live(username)
        return sorted(current, key=lambda binding: binding.expires_at, reverse=True)

    def retain_users(self, allowed: Callable[[str], bool]) -> list[str]:
        """Drop every binding of users for whom `allowed` is false (disabled or deleted);
        returns their names. Their phones are refused from then on by the guard."""
        dropped = [name for name in self._bindings if not allowed(name)]
        for name in dropped:
            del self._bindings[name]
            logger.info("unregistered every phone of %s: the user is disabled or gone", name)
        return dropped

    def remove_user(self, username: str) -> int:
        """Drop every binding of `username` (user disabled); returns how many there were."""
        return len(self._bindings.pop(username, []))

    def bind_local(self, username: str, contact: SipUri, destination: Destination) -> None:
        """A contact the node itself holds for `username` (a browser phone, reached over
        loopback): bound without a REGISTER, until `unbind_local` (or the user is disabled)."""
        current = [binding for binding in self._live(username) if binding.contact != contact]
        expires_at = self._clock.now() + _LOCAL_EXPIRES
        current.append(Binding(contact, destination, expires_at, call_id="local", cseq=0))
        self._bindings[username] = current
        logger.info("%s is reachable at %s (in the node)", username, contact)

    def unbind_local(self, username: str, contact: SipUri) -> None:
        current = [binding for binding in self._live(username) if binding.contact != contact]
        if current:
            self._bindings[username] = current
        else:
            self._bindings.pop(username, None)

    def binding_count(self) -> int:
        return sum(len(self._live(name)) for name in list(self._bindings))

    def _live(self, username: str) -> list[Binding]:
        bindings = self._bindings.get(username)
        if not bindings:
            return []
        now = self._clock.now()
        alive = [binding for binding in bindings if binding.expires_at > now]
        if len(alive) != len(bindings):
            if alive:
                self._bindings[username] = alive
            else:
                del self._bindings[username]
        return alive

    def register(self, request: SipRequest, source: Source, username: str) -> SipResponse:
        """Apply an authenticated REGISTER for `username`; the response to send.

        Every response carries a To tag: the registrar is a UAS (RFC 3261 8.2.6.2, 10.3)."""
        to_tag = new_tag()
        aor = request.to.uri
        if not isinstance(aor, SipUri) or aor.user != username:
            return make_response(request, 403, "Forbidden", to_tag=to_tag)
        try:
            return self._update(request, source, username, to_tag)
        except SipError as error:
            response = make_response(request, error.status, error.reason, to_tag=to_tag)
            if error.status == 423:
                response.headers.set("Min-Expires", str(self.settings.min_expires))
            return response

    def _expires(self, request: SipRequest, param: str | None) -> int:
        settings = self.settings
        if param is not None:
            if not param.isdigit() or len(param) > 10:
                raise SipParseError(f"malformed Contact expires {param[:20]!r}")
            requested = int(param)
        elif request.expires is not None:
            requested = request.expires
        else:
            requested = settings.default_expires
        if 0 < requested < settings.min_expires:
            raise SipError("registration interval too brief", 423)
        return min(requested, settings.max_expires)

    def _update(
        self, request: SipRequest, source: Source, username: str, to_tag: str
    ) -> SipResponse:
        now = self._clock.now()
        call_id = request.call_id
        cseq = request.cseq.number
        if request.is_wildcard_contact:
            if request.expires != 0 or len(request.headers.get_all("Contact")) != 1:
                raise SipParseError("Contact: * needs Expires: 0 and no other Contact")
            for binding in self._live(username):  # RFC 3261 10.3 step 6
                if binding.call_id == call_id and binding.cseq >= cseq:
                    raise SipError("CSeq out of order for this binding", 500)
            self._bindings.pop(username, None)
            logger.info("unregistered all phones of %s from %s", username, source.remote_host)
            return make_response(request, 200, to_tag=to_tag)
        current = {str(binding.contact): binding for binding in self._live(username)}
        symmetric = request.top_via.has_rport
        for contact in request.contacts:
            uri = contact.uri
            if not isinstance(uri, SipUri):
                raise SipError("Contact must be a sip or sips URI", 400)
            key = str(uri)
            previous = current.get(key)
            if previous is not None and previous.call_id == call_id and previous.cseq >= cseq:
                raise SipError("CSeq out of order for this binding", 500)
            expires = self._expires(request, contact.param("expires"))
            if expires == 0:
                current.pop(key, None)
                continue
            destination = flow_destination(uri, source, symmetric=symmetric)
            if reflected_destination(destination, source):
                logger.warning(
                    "REGISTER for %s from %s refused: Contact %s is not a phone's address",
                    username,
                    source.remote_host,
                    destination.host,
                )
                raise SipError("Contact address not allowed", 403)
            reachable = reachable_destination(destination, source)
            if reachable != destination:
                logger.info(
                    "REGISTER for %s from %s: private Contact %s reached at %s:%d instead",
                    username,
                    source.remote_host,
                    destination.host,
                    reachable.host,
                    reachable.port,
                )
                destination = reachable
            current[key] = Binding(
                contact=uri,
                destination=destination,
                expires_at=now + expires,
                call_id=call_id,
                cseq=cseq,
            )
        if len(current) > self.settings.max_bindings:
            raise SipError("too many registered phones for this user", 403)
        if current:
            self._bindings[username] = list(current.values())
        else:
            self._bindings.pop(username, None)
        response = make_response(request, 200, to_tag=to_tag)
        for binding in self.bindings(username):
            remaining = max(0, int(binding.expires_at - now))
            response.headers.add("Contact", f"<{binding.contact}>;expires={remaining}")
        logger.info(
            "%s has %d registered phone(s) (from %s:%d)",
            username,
            len(current),
            source.remote_host,
            source.remote_port,
        )
        return response
