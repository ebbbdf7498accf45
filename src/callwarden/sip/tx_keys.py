"""Transaction identifiers: branches, tags and the matching keys of RFC 3261 17.1.3 / 17.2.3."""

from __future__ import annotations

import hashlib
import secrets

from callwarden.sip.headers import Via
from callwarden.sip.message import SipRequest

__all__ = [
    "MAGIC_COOKIE",
    "ClientKey",
    "ServerKey",
    "client_key",
    "has_magic_cookie",
    "is_bare_cookie",
    "new_branch",
    "new_call_id",
    "new_tag",
    "rfc2543_server_key",
    "server_key",
]

MAGIC_COOKIE = "z9hG4bK"
"""Prefix of every RFC 3261 branch (8.1.1.7)."""

RFC2543_KEY_PREFIX = "rfc2543:"
"""Prefix of the synthetic branch of an RFC 2543 transaction key (it cannot be a real branch
of ours: those start with the magic cookie)."""

ClientKey = tuple[str, str]
"""(branch, CSeq method) - RFC 3261 17.1.3."""

ServerKey = tuple[str, str, int | None, str]
"""(branch, sent-by host, sent-by port, method; ACK counted as INVITE) - RFC 3261 17.2.3."""


def new_branch() -> str:
    """A fresh branch parameter, unique in space and time (RFC 3261 8.1.1.7)."""
    return MAGIC_COOKIE + secrets.token_hex(10)


def new_tag() -> str:
    """A From/To tag with at least 32 bits of randomness (RFC 3261 19.3)."""
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    """A globally unique Call-ID (RFC 3261 8.1.1.4)."""
    return f"{secrets.token_hex(12)}@{host}"


def has_magic_cookie(branch: str | None) -> bool:
    """True when the branch was built by an RFC 3261 element: the magic cookie followed by
    an identifier (a bare cookie identifies nothing, RFC 4475 3.2.1)."""
    return (
        branch is not None and len(branch) > len(MAGIC_COOKIE) and branch.startswith(MAGIC_COOKIE)
    )


def is_bare_cookie(branch: str | None) -> bool:
    """The magic cookie with no identifier after it: a broken RFC 3261 element (RFC 4475
    3.2.1), answered 400 rather than matched the RFC 2543 way."""
    return branch == MAGIC_COOKIE


def client_key(branch: str, method: str) -> ClientKey:
    """Key matching a response to a client transaction (RFC 3261 17.1.3)."""
    return (branch, method)


def server_key(via: Via, method: str) -> ServerKey | None:
    """Key matching a request to a server transaction (RFC 3261 17.2.3).

    ACK is keyed as INVITE so that it finds the INVITE transaction it acknowledges; CANCEL
    keeps its own method (it is a transaction of its own). Returns None for RFC 2543 style
    branches (no magic cookie, or nothing after it): see :func:`rfc2543_server_key`.
    """
    branch = via.branch
    if branch is None or not has_magic_cookie(branch):
        return None
    key_method = "INVITE" if method == "ACK" else method
    return (branch, via.host.lower(), via.port, key_method)


def rfc2543_server_key(request: SipRequest) -> ServerKey:
    """Key matching a request from an RFC 2543 element (no magic cookie) to a server
    transaction: the backward-compatible rule of RFC 3261 17.2.3.

    Request-URI, From tag, Call-ID, CSeq number and the top Via (transport, sent-by and
    whatever branch it has) must equal those of the request that created the transaction. The
    To tag is left out: within one CSeq number only the ACK of a non-2xx response carries one,
    and it must find the INVITE it acknowledges. ACK is keyed as INVITE, as in
    :func:`server_key`; CANCEL (same CSeq number) keeps its own method.
    """
    via = request.top_via
    identity = "\x00".join(
        (
            str(request.uri),
            request.from_.tag or "",
            request.call_id,
            str(request.cseq.number),
            via.transport.upper(),
            via.branch or "",
        )
    )
    digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    method = "INVITE" if request.method == "ACK" else request.method
    return (RFC2543_KEY_PREFIX + digest, via.host.lower(), via.port, method)
