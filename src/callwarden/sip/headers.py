"""Structured header field values: Via, name-addr (From, To, Contact, Route...), CSeq.

Grammar from RFC 3261 25.1 (sections 20.10, 20.16, 20.20, 20.42); LWS is accepted wherever the
grammar allows it (around ';', '=', '/', ':'), and output is always canonical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from callwarden.sip.errors import SipParseError
from callwarden.sip.syntax import (
    TOKEN,
    TOKEN_CHARS,
    Params,
    find_param,
    format_params,
    parse_generic_params,
    parse_param_text,
    parse_uint,
    quote,
    remove_params,
    replace_params,
    skip_quoted,
    split_params,
    unquote,
)
from callwarden.sip.uri import (
    FAST_SIP_URI_PATTERN,
    SipUri,
    Uri,
    fast_sip_uri,
    parse_host_port,
    parse_uri,
)

_LWS = " \t"
# sent-protocol LWS sent-by (RFC 3261 20.42); SWS around '/' and ':'.
_VIA_HEAD = re.compile(
    f"SIP[ \\t]*/[ \\t]*2\\.0[ \\t]*/[ \\t]*([{TOKEN_CHARS}]+)[ \\t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[^ \t:\[\]]+)(?:[ \t]*:[ \t]*([^ \t]*))?[ \t]*",
    re.IGNORECASE,
)
# Fast paths for the everyday shapes; anything else takes the general path below.
_FAST_VIA = re.compile(
    f"SIP/2\\.0/([{TOKEN_CHARS}]+) "
    r"([A-Za-z0-9_\-.]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?(;.*)?"
)
_FAST_NAME_ADDR = re.compile(
    f'(?:"([^"\\\\]*)" ?|([{TOKEN_CHARS}]+(?: [{TOKEN_CHARS}]+)*) ?)?<{FAST_SIP_URI_PATTERN}>(;.*)?'
)
_FAST_CSEQ = re.compile(f"([0-9]{{1,10}}) ([{TOKEN_CHARS}]+)")
_new_object = object.__new__
_DISPLAY_TOKENS = re.compile(f"[{TOKEN_CHARS}]+(?:[ \\t]+[{TOKEN_CHARS}]+)*")
_MAX_CSEQ = 2**32 - 1


@dataclass(frozen=True)
class Via:
    """One Via header field value (RFC 3261 20.42): ``SIP/2.0/<transport> host[:port];params``.

    ``transport`` is upper-cased; ``params`` keep their values as written (``rport`` may be
    valueless, RFC 3581)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one via-parm; raises SipParseError."""
        fast = _FAST_VIA.fullmatch(text)
        if fast is not None:
            transport, host, port_text, param_text = fast.groups()
            port = None if port_text is None else int(port_text)
            if port is None or port <= 65535:
                via = _new_object(cls)  # hot path: skip the frozen __init__, same fields
                fields = via.__dict__
                fields["transport"] = transport.upper()
                fields["host"] = host
                fields["port"] = port
                fields["params"] = parse_param_text(param_text) if param_text else ()
                return via
        return cls.parse_general(text)

    @classmethod
    def parse_general(cls, text: str) -> Via:
        """The full grammar (LWS anywhere it is allowed); ``parse`` tries a fast path first."""
        head, *param_items = split_params(text.strip(_LWS))
        match = _VIA_HEAD.fullmatch(head)
        if match is None:
            raise SipParseError(f"malformed Via {text.strip(_LWS)[:80]!r}")
        transport, host_text, port_text = match.groups()
        hostport = host_text if port_text is None else f"{host_text}:{port_text}"
        host, port = parse_host_port(hostport)
        return cls(transport.upper(), host, port, parse_generic_params(param_items))

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        """Value of the parameter ``name`` (None when absent or valueless)."""
        return find_param(self.params, name)[1]

    @property
    def branch(self) -> str | None:
        """The branch parameter (RFC 3261 8.1.1.7)."""
        return find_param(self.params, "branch")[1]

    @property
    def received(self) -> str | None:
        """The received parameter (RFC 3261 18.2.1)."""
        return find_param(self.params, "received")[1]

    @property
    def has_rport(self) -> bool:
        """True when the rport parameter is present, with or without value (RFC 3581 4)."""
        return find_param(self.params, "rport")[0]

    @property
    def rport(self) -> int | None:
        """The rport value filled in by a server (RFC 3581 4); None when absent or empty."""
        value = find_param(self.params, "rport")[1]
        if value is None:
            return None
        return parse_uint(value, "rport", 65535)

    def with_params(self, **changes: str | None) -> Via:
        """A copy with the given parameters set (None: valueless, e.g. ``rport``)."""
        return Via(self.transport, self.host, self.port, replace_params(self.params, changes))

    def without_params(self, *names: str) -> Via:
        """A copy without the named parameters."""
        return Via(self.transport, self.host, self.port, remove_params(self.params, names))


@dataclass(frozen=True)
class NameAddress:
    """A name-addr or addr-spec with header parameters (RFC 3261 20.10, 20.20, 20.39 ...).

    ``display_name`` is the decoded text (quoted-pairs resolved); ``params`` are the header
    parameters after the URI (``tag``, ``expires``, ``q``...), values kept as written. An addr-spec
    without '<>' may not carry ',', ';' or '?' in its URI (RFC 3261 20): the parameters after it
    belong to the header (RFC 4475 3.3.12), and a '?' is rejected (3.1.2.13)."""

    display_name: str | None
    uri: Uri
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> NameAddress:
        """Parse ``( name-addr / addr-spec ) *( SEMI param )``; raises SipParseError."""
        fast = _FAST_NAME_ADDR.fullmatch(text)
        if fast is not None:
            quoted, words, scheme, user, host, port, uri_params, param_text = fast.groups()
            uri = fast_sip_uri(scheme, user, host, port, uri_params)
            if uri is not None:
                address = _new_object(cls)  # hot path: skip the frozen __init__, same fields
                fields = address.__dict__
                fields["display_name"] = quoted if quoted is not None else words
                fields["uri"] = uri
                fields["params"] = parse_param_text(param_text) if param_text else ()
                return address
        return cls.parse_general(text)

    @classmethod
    def parse_general(cls, text: str) -> NameAddress:
        """The full grammar; ``parse`` tries a fast path for the everyday shapes first."""
        text = text.strip(_LWS)
        if not text:
            raise SipParseError("empty address")
        display_name: str | None = None
        if text[0] == '"':
            end = skip_quoted(text, 0)
            display_name = unquote(text[:end])
            rest = text[end:].lstrip(_LWS)
            if not rest.startswith("<"):
                raise SipParseError("quoted display name not followed by '<'")
            return cls._parse_bracketed(display_name, rest)
        less = text.find("<")
        if less >= 0 and ";" not in text[:less] and '"' not in text[:less]:
            words = text[:less].strip(_LWS)
            if words:
                if _DISPLAY_TOKENS.fullmatch(words) is None:
                    raise SipParseError(f"malformed display name {words[:60]!r}")
                display_name = words
            return cls._parse_bracketed(display_name, text[less:])
        uri_text, *param_items = split_params(text)
        uri_text = uri_text.rstrip(_LWS)
        if "?" in uri_text or "," in uri_text:
            raise SipParseError("URI with '?' or ',' must be enclosed in '<>'")
        return cls(None, parse_uri(uri_text), parse_generic_params(param_items))

    @classmethod
    def _parse_bracketed(cls, display_name: str | None, text: str) -> NameAddress:
        greater = text.find(">")
        if greater < 0:
            raise SipParseError("unterminated '<' in address")
        uri = parse_uri(text[1:greater])
        rest = text[greater + 1 :].lstrip(_LWS)
        if not rest:
            return cls(display_name, uri, ())
        if rest[0] != ";":
            raise SipParseError(f"unexpected text after address: {rest[:40]!r}")
        return cls(display_name, uri, parse_generic_params(split_params(rest[1:])))

    def _format(self) -> str:
        display = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{display}<{self.uri}>{format_params(self.params)}"

    def __str__(self) -> str:
        # Computed once per (immutable) instance; stored beside the fields like a
        # functools.cached_property, whose per-access lock costs more than the formatting.
        text: str | None = self.__dict__.get("_text")
        if text is None:
            text = self.__dict__["_text"] = self._format()
        return text

    def param(self, name: str) -> str | None:
        """Value of the header parameter ``name`` (None when absent or valueless)."""
        return find_param(self.params, name)[1]

    @property
    def tag(self) -> str | None:
        """The tag parameter (RFC 3261 19.3)."""
        return find_param(self.params, "tag")[1]

    def with_tag(self, tag: str) -> NameAddress:
        """A copy carrying ``tag`` (replacing any tag present); the tag must be a token."""
        if TOKEN.fullmatch(tag) is None:
            raise ValueError(f"tag is not a token: {tag!r}")
        return NameAddress(self.display_name, self.uri, replace_params(self.params, {"tag": tag}))

    def with_params(self, **changes: str | None) -> NameAddress:
        """A copy with the given header parameters set."""
        return NameAddress(self.display_name, self.uri, replace_params(self.params, changes))

    @property
    def sip_uri(self) -> SipUri:
        """The URI when it is a SIP/SIPS URI; SipParseError (400) otherwise."""
        if isinstance(self.uri, SipUri):
            return self.uri
        raise SipParseError(f"not a SIP URI: {self.uri}")


@dataclass(frozen=True)
class CSeq:
    """The CSeq header (RFC 3261 20.16): a 32-bit sequence number and a method."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse ``1*DIGIT LWS Method``; the number must be below 2**32 (RFC 4475 3.1.2.4)."""
        fast = _FAST_CSEQ.fullmatch(text)
        if fast is not None:
            number = int(fast.group(1))
            if number <= _MAX_CSEQ:
                return cls(number, fast.group(2))
        parts = text.split()
        if len(parts) != 2 or TOKEN.fullmatch(parts[1]) is None:
            raise SipParseError(f"malformed CSeq {text.strip()[:60]!r}")
        return cls(parse_uint(parts[0], "CSeq number", _MAX_CSEQ), parts[1])

    def __str__(self) -> str:
        return f"{self.number} {self.method}"
