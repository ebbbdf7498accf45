"""Syntax of Digest challenges and credentials (RFC 7616 3.3, 3.4; RFC 3261 25.1), sans-IO.

:func:`parse_challenge` reads a ``WWW-Authenticate``/``Proxy-Authenticate`` value,
:func:`parse_credentials` an ``Authorization``/``Proxy-Authorization`` value; both give
:class:`NotDigest` for another scheme and raise :class:`SipParseError` for malformed input
(unterminated or bad quoting, duplicate or missing parameters, control characters, oversize).
Unknown parameters are kept and written back. The hashing, nonces and verification are in
:mod:`callwarden.sip.digest`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from callwarden.sip.errors import SipParseError

MAX_HEADER_LENGTH = 8192
"""Longest challenge or credentials value parsed; real ones are a few hundred characters."""

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_SPACE = " \t\r\n"
_SPACES_RE = re.compile(r"[ \t\r\n]*")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORD_RE = re.compile(r"[^ \t\r\n]*")
_NAME_RE = re.compile(r"[^= \t\r\n,]*")
_VALUE_RE = re.compile(r"[^ \t\r\n,]*")
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)  # one character per step: linear
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True)
class NotDigest:
    """A challenge or credentials value of another scheme (e.g. ``Basic``, or RFC 4475's
    ``NoOneKnowsThisScheme``): never authenticated, answered with a fresh Digest challenge."""

    scheme: str


Param = tuple[str, str, bool]
"""(lowercase name, value, written quoted) of an auth-param kept as received."""


def _parse_params(text: str) -> tuple[str, dict[str, Param]] | NotDigest:
    """Split ``<scheme> <name>=<token or quoted-string>, ...`` (RFC 3261 25.1, RFC 7235 2.1)."""
    if len(text) > MAX_HEADER_LENGTH:
        raise SipParseError(f"Digest header longer than {MAX_HEADER_LENGTH} characters")
    if _CONTROL_RE.search(text):
        raise SipParseError("Digest header: control character")
    text = text.strip(_SPACE)
    scheme = text[: _match_end(_WORD_RE, text, 0)]
    if not _TOKEN_RE.fullmatch(scheme):
        raise SipParseError("authentication header: scheme is not a token")
    if scheme.lower() != "digest":
        return NotDigest(scheme)
    params: dict[str, Param] = {}
    position = len(scheme)
    while True:
        position = _skip_space(text, position)
        name_end = _match_end(_NAME_RE, text, position)
        name = text[position:name_end].lower()
        if not _TOKEN_RE.fullmatch(name):
            raise SipParseError("Digest header: parameter name is not a token")
        position = _skip_space(text, name_end)
        if position >= len(text) or text[position] != "=":
            raise SipParseError(f"Digest header: parameter '{name[:40]}' has no value")
        value, quoted, position = _parse_value(text, _skip_space(text, position + 1))
        if name in params:
            raise SipParseError(f"Digest header: duplicate parameter '{name[:40]}'")
        params[name] = (name, value, quoted)
        position = _skip_space(text, position)
        if position >= len(text):
            return scheme, params
        if text[position] != ",":
            raise SipParseError("Digest header: expected ',' between parameters")
        position += 1


def _match_end(pattern: re.Pattern[str], text: str, position: int) -> int:
    """Where a run of ``pattern`` (which may match nothing) starting at ``position`` ends."""
    match = pattern.match(text, position)
    return position if match is None else match.end()


def _skip_space(text: str, position: int) -> int:
    return _match_end(_SPACES_RE, text, position)


def _parse_value(text: str, position: int) -> tuple[str, bool, int]:
    """A token or a quoted-string with backslash escapes (RFC 3261 25.1 quoted-pair)."""
    if text.startswith('"', position):
        quoted = _QUOTED_RE.match(text, position)
        if quoted is None:
            raise SipParseError("Digest header: unterminated quoted string")
        return _ESCAPE_RE.sub(r"\1", quoted.group(1)), True, quoted.end()
    end = _match_end(_VALUE_RE, text, position)
    value = text[position:end]
    if not _TOKEN_RE.fullmatch(value):
        raise SipParseError("Digest header: parameter value is neither token nor quoted string")
    return value, False, end


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format(params: Sequence[Param]) -> str:
    """Write the parameters; a value that is not a token is quoted whatever its kind."""
    return "Digest " + ", ".join(
        f"{name}={_quote(value) if quoted or not _TOKEN_RE.fullmatch(value) else value}"
        for name, value, quoted in params
    )


def _known(params: dict[str, Param], names: Sequence[str]) -> tuple[Param, ...]:
    return tuple(param for name, param in params.items() if name not in names)


@dataclass(frozen=True)
class DigestChallenge:
    """A ``WWW-Authenticate``/``Proxy-Authenticate`` Digest value (RFC 7616 3.3)."""

    realm: str
    nonce: str
    algorithm: str | None = None
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None
    other_params: tuple[Param, ...] = ()

    _NAMES = ("realm", "domain", "nonce", "opaque", "stale", "algorithm", "qop")

    def __str__(self) -> str:
        params: list[Param] = [("realm", self.realm, True)]
        if self.domain is not None:
            params.append(("domain", self.domain, True))
        params.append(("nonce", self.nonce, True))
        if self.opaque is not None:
            params.append(("opaque", self.opaque, True))
        if self.algorithm is not None:
            params.append(("algorithm", self.algorithm, False))
        if self.qop:
            params.append(("qop", ",".join(self.qop), True))
        if self.stale:
            params.append(("stale", "true", False))
        return _format([*params, *self.other_params])


@dataclass(frozen=True)
class DigestCredentials:
    """An ``Authorization``/``Proxy-Authorization`` Digest value (RFC 7616 3.4).

    ``nc`` keeps the eight hex digits as sent, since they enter the response hash as text.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None
    other_params: tuple[Param, ...] = ()

    _NAMES = ("username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "opaque")
    _NAMES_WITH_QOP = (*_NAMES, "qop", "nc")

    @property
    def nonce_count(self) -> int | None:
        return None if self.nc is None else int(self.nc, 16)

    def __str__(self) -> str:
        params: list[Param] = [
            ("username", self.username, True),
            ("realm", self.realm, True),
            ("nonce", self.nonce, True),
            ("uri", self.uri, True),
            ("response", self.response, True),
        ]
        if self.algorithm is not None:
            params.append(("algorithm", self.algorithm, False))
        if self.cnonce is not None:
            params.append(("cnonce", self.cnonce, True))
        if self.opaque is not None:
            params.append(("opaque", self.opaque, True))
        if self.qop is not None:
            params.append(("qop", self.qop, False))
        if self.nc is not None:
            params.append(("nc", self.nc, False))
        return _format([*params, *self.other_params])


def _required(params: dict[str, Param], name: str, kind: str) -> str:
    if name not in params:
        raise SipParseError(f"Digest {kind}: missing '{name}'")
    return params[name][1]


def _optional(params: dict[str, Param], name: str) -> str | None:
    param = params.get(name)
    return None if param is None else param[1]


def parse_challenge(text: str) -> DigestChallenge | NotDigest:
    """Parse a ``WWW-Authenticate``/``Proxy-Authenticate`` value; raises SipParseError."""
    parsed = _parse_params(text)
    if isinstance(parsed, NotDigest):
        return parsed
    _, params = parsed
    qop = _optional(params, "qop")
    stale = _optional(params, "stale")
    return DigestChallenge(
        realm=_required(params, "realm", "challenge"),
        nonce=_required(params, "nonce", "challenge"),
        algorithm=_optional(params, "algorithm"),
        qop=tuple(item.strip() for item in qop.split(",") if item.strip()) if qop else (),
        opaque=_optional(params, "opaque"),
        stale=stale is not None and stale.lower() == "true",
        domain=_optional(params, "domain"),
        other_params=_known(params, DigestChallenge._NAMES),
    )


def parse_credentials(text: str) -> DigestCredentials | NotDigest:
    """Parse an ``Authorization``/``Proxy-Authorization`` value; raises SipParseError."""
    parsed = _parse_params(text)
    if isinstance(parsed, NotDigest):
        return parsed
    _, params = parsed
    qop = _optional(params, "qop")
    nc = _optional(params, "nc")
    if nc is not None and not _NC_RE.fullmatch(nc):
        raise SipParseError("Digest credentials: nc must be 8 hex digits")
    if qop is not None and (nc is None or "cnonce" not in params):
        raise SipParseError("Digest credentials: qop requires nc and cnonce")
    return DigestCredentials(
        username=_required(params, "username", "credentials"),
        realm=_required(params, "realm", "credentials"),
        nonce=_required(params, "nonce", "credentials"),
        uri=_required(params, "uri", "credentials"),
        response=_required(params, "response", "credentials"),
        algorithm=_optional(params, "algorithm"),
        cnonce=_optional(params, "cnonce"),
        opaque=_optional(params, "opaque"),
        qop=qop,
        nc=nc,
        other_params=_known(params, DigestCredentials._NAMES_WITH_QOP),
    )
