"""SIP and absolute URIs (RFC 3261 19.1, 25.1; RFC 3986 for %-escaping).

``SipUri`` holds its components unescaped (``%40`` becomes ``@``; unescaping is never recursive, so
``%2541`` is ``%41``, RFC 4475 3.1.1.3) and re-escapes canonically in ``__str__``; two URIs that
differ only in escaping therefore compare equal (RFC 3261 19.1.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import unquote

from callwarden.sip.errors import SipParseError
from callwarden.sip.syntax import Params, find_param, remove_params, replace_params

_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
# Raw (escaped) component text: the allowed characters plus '%' for escapes.
_USER_RAW = re.compile(f"[{_UNRESERVED}&=+$,;?/%]+")
_PASSWORD_RAW = re.compile(f"[{_UNRESERVED}&=+$,%]*")
_PARAM_RAW = re.compile(f"[{_UNRESERVED}\\[\\]/:&+$%]+")
_HEADER_RAW = re.compile(f"[{_UNRESERVED}\\[\\]/?:+$%]*")
# Unescaped component text that needs no escaping on output (no '%').
_USER_SAFE = re.compile(f"[{_UNRESERVED}&=+$,;?/]+")
_PASSWORD_SAFE = re.compile(f"[{_UNRESERVED}&=+$,]*")
_PARAM_SAFE = re.compile(f"[{_UNRESERVED}\\[\\]/:&+$]*")
_HEADER_SAFE = re.compile(f"[{_UNRESERVED}\\[\\]/?:+$]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HOSTNAME = re.compile(r"[A-Za-z0-9_\-.]+")
_IPV6_REFERENCE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
# The common SIP URI (no escapes, password or headers), matched in one step; anything else takes
# the component-by-component path, which accepts the full grammar.
_PARAM_CHARS = f"{_UNRESERVED}\\[\\]/:&+$"
_FAST_SIP_URI = re.compile(
    f"([sS][iI][pP][sS]?):(?:([{_UNRESERVED}&=+$,;?/]+)@)?"
    r"([A-Za-z0-9_\-.]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?"
    f"((?:;[{_PARAM_CHARS}]+(?:=[{_PARAM_CHARS}]+)?)*)"
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# absoluteURI (RFC 2396): scheme ":" followed by uric characters (reserved / unreserved / escaped).
_OPAQUE = re.compile(f"[{_UNRESERVED};/?:@&=+$,%\\[\\]#]+")


_new_object = object.__new__


def _unescape(text: str, what: str) -> str:
    if "%" not in text:
        return text
    if _BAD_ESCAPE.search(text) is not None:
        raise SipParseError(f"malformed %-escape in URI {what}")
    return unquote(text, errors="surrogateescape")


def _escape(text: str, safe: re.Pattern[str]) -> str:
    if safe.fullmatch(text) is not None:
        return text
    out: list[str] = []
    for char in text:
        if safe.fullmatch(char) is not None:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogateescape"))
    return "".join(out)


def parse_host_port(text: str) -> tuple[str, int | None]:
    """``hostport`` (RFC 3261 25.1): a hostname, IPv4 address or bracketed IPv6 reference."""
    if text.startswith("["):
        close = text.find("]")
        host = text[: close + 1]
        rest = text[close + 1 :] if close > 0 else ""
        if close < 0 or _IPV6_REFERENCE.fullmatch(host) is None:
            raise SipParseError(f"malformed IPv6 reference {text[:60]!r}")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise SipParseError(f"malformed host {text[:60]!r}")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.partition(":")
        if _HOSTNAME.fullmatch(host) is None:
            raise SipParseError(f"malformed host {text[:60]!r}")
        if not colon:
            return host, None
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise SipParseError(f"malformed port {port_text[:20]!r}")
    port = int(port_text)
    if port > 65535:
        raise SipParseError(f"port out of range: {port}")
    return host, port


# The pattern of _FAST_SIP_URI, for embedding in the fast paths of other parsers; its five
# groups are the arguments of fast_sip_uri.
FAST_SIP_URI_PATTERN = _FAST_SIP_URI.pattern


def fast_sip_uri(
    scheme: str, user: str | None, host: str, port_text: str | None, param_text: str
) -> SipUri | None:
    """A SipUri from the groups of FAST_SIP_URI_PATTERN; None when the port is out of range
    (the general parser then reports it)."""
    port = None if port_text is None else int(port_text)
    if port is not None and port > 65535:
        return None
    # Built without the frozen-dataclass __init__ (one object.__setattr__ per field): this is the
    # hottest constructor of the stack. Same fields, same invariants.
    uri = _new_object(SipUri)
    fields = uri.__dict__
    fields["scheme"] = scheme.lower()
    fields["user"] = user
    fields["password"] = None
    fields["host"] = host
    fields["port"] = port
    fields["params"] = (
        tuple(
            [
                (name, value if equal else None)
                for name, equal, value in [
                    item.partition("=") for item in param_text[1:].split(";")
                ]
            ]
        )
        if param_text
        else ()
    )
    fields["headers"] = ()
    return uri


@dataclass(frozen=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 19.1.1) with unescaped components."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse SIP-URI / SIPS-URI (RFC 3261 25.1); raises SipParseError."""
        fast = _FAST_SIP_URI.fullmatch(text)
        if fast is not None:
            uri = fast_sip_uri(*fast.groups())
            if uri is not None:
                return uri
        return cls.parse_general(text)

    @classmethod
    def parse_general(cls, text: str) -> SipUri:
        """The full grammar, component by component; ``parse`` tries a fast path first."""
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips"):
            raise SipParseError(f"not a SIP URI: {text[:60]!r}")
        user: str | None = None
        password: str | None = None
        at = rest.find("@")
        if at >= 0:
            userinfo = rest[:at]
            rest = rest[at + 1 :]
            if "@" in rest:
                raise SipParseError("unescaped '@' in SIP URI")
            user_text, has_password, password_text = userinfo.partition(":")
            if _USER_RAW.fullmatch(user_text) is None:
                raise SipParseError(f"malformed user part in SIP URI {text[:60]!r}")
            user = _unescape(user_text, "user part")
            if has_password:
                if _PASSWORD_RAW.fullmatch(password_text) is None:
                    raise SipParseError("malformed password in SIP URI")
                password = _unescape(password_text, "password")
        rest, question, header_text = rest.partition("?")
        hostport, *param_items = rest.split(";")
        host, port = parse_host_port(hostport)
        params: list[tuple[str, str | None]] = []
        for item in param_items:
            name, equal, value = item.partition("=")
            if _PARAM_RAW.fullmatch(name) is None or (
                equal and _PARAM_RAW.fullmatch(value) is None
            ):
                raise SipParseError(f"malformed URI parameter {item[:40]!r}")
            params.append(
                (_unescape(name, "parameter"), _unescape(value, "parameter") if equal else None)
            )
        headers: list[tuple[str, str]] = []
        if question:
            for item in header_text.split("&"):
                name, equal, value = item.partition("=")
                if (
                    not equal
                    or not name
                    or _HEADER_RAW.fullmatch(name) is None
                    or _HEADER_RAW.fullmatch(value) is None
                ):
                    raise SipParseError(f"malformed URI header {item[:40]!r}")
                headers.append((_unescape(name, "header"), _unescape(value, "header")))
        return cls(scheme, user, password, host, port, tuple(params), tuple(headers))

    def _format(self) -> str:
        parts: list[str] = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_escape(self.user, _USER_SAFE))
            if self.password is not None:
                parts.append(":" + _escape(self.password, _PASSWORD_SAFE))
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        for name, value in self.params:
            parts.append(";" + _escape(name, _PARAM_SAFE))
            if value is not None:
                parts.append("=" + _escape(value, _PARAM_SAFE))
        if self.headers:
            parts.append(
                "?"
                + "&".join(
                    f"{_escape(name, _HEADER_SAFE)}={_escape(value, _HEADER_SAFE)}"
                    for name, value in self.headers
                )
            )
        return "".join(parts)

    def __str__(self) -> str:
        # Computed once per (immutable) instance; stored beside the fields like a
        # functools.cached_property, whose per-access lock costs more than the formatting.
        text: str | None = self.__dict__.get("_text")
        if text is None:
            text = self.__dict__["_text"] = self._format()
        return text

    def param(self, name: str) -> str | None:
        """Value of the URI parameter ``name`` (None when absent or valueless, e.g. ``lr``)."""
        return find_param(self.params, name)[1]

    def has_param(self, name: str) -> bool:
        """True when the URI carries parameter ``name`` (with or without a value)."""
        return find_param(self.params, name)[0]

    def with_params(self, **changes: str | None) -> SipUri:
        """A copy with the given parameters set (None: a valueless parameter such as ``lr``)."""
        return SipUri(
            self.scheme,
            self.user,
            self.password,
            self.host,
            self.port,
            replace_params(self.params, changes),
            self.headers,
        )

    def without_params(self, *names: str) -> SipUri:
        """A copy without the named parameters."""
        return SipUri(
            self.scheme,
            self.user,
            self.password,
            self.host,
            self.port,
            remove_params(self.params, names),
            self.headers,
        )


@dataclass(frozen=True)
class AbsoluteUri:
    """Any non-SIP URI (``tel:``, ``http:``, ``urn:``...): scheme plus opaque text (RFC 3261 25.1
    absoluteURI). Its scheme is lower-cased; the rest is kept verbatim."""

    scheme: str
    opaque: str

    @classmethod
    def parse(cls, text: str) -> AbsoluteUri:
        """Parse ``scheme ":" opaque``; raises SipParseError."""
        scheme, colon, opaque = text.partition(":")
        if not colon or _SCHEME.fullmatch(scheme) is None or _OPAQUE.fullmatch(opaque) is None:
            raise SipParseError(f"malformed URI {text[:60]!r}")
        if _BAD_ESCAPE.search(opaque) is not None:
            raise SipParseError(f"malformed %-escape in URI {text[:60]!r}")
        return cls(scheme.lower(), opaque)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri: TypeAlias = SipUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse a SIP/SIPS URI into :class:`SipUri`, any other scheme into :class:`AbsoluteUri`."""
    head = text[:5].lower()
    if head[:4] == "sip:" or head == "sips:":
        return SipUri.parse(text)
    return AbsoluteUri.parse(text)
