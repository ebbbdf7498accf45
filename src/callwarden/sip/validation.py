"""The application-level request checks of a UAS (RFC 3261 8.2.2 - 8.2.3), in the RFC's order.

``parse_message`` already guarantees syntax and the mandatory header fields; ``check_request``
decides whether this element can process the request at all, raising a :class:`SipError` whose
status, reason and extra header fields form the response (RFC 4475 3.3.2 - 3.3.6, 3.3.15).
"""

from __future__ import annotations

from callwarden.sip.errors import BadExtensionError, SipError
from callwarden.sip.message import SipRequest

# Methods whose bodies carry session descriptions (RFC 3261 13, RFC 3262, RFC 3311).
_OFFER_ANSWER_METHODS = frozenset({"INVITE", "UPDATE", "PRACK"})
# Require / Proxy-Require "MUST be ignored" in these (RFC 3261 8.2.2.3); ACK gets no response.
_NO_EXTENSION_CHECK = frozenset({"ACK", "CANCEL"})
_SDP_RANGES = frozenset({("application", "sdp"), ("application", "*"), ("*", "*")})


def _option_tags(request: SipRequest, name: str) -> list[str]:
    return [tag for tag in request.headers.get_all(name) if tag]


def check_request(
    request: SipRequest,
    *,
    supported_extensions: frozenset[str] = frozenset(),
    supported_schemes: frozenset[str] = frozenset({"sip", "sips"}),
    supported_content_types: frozenset[str] = frozenset({"application/sdp"}),
) -> None:
    """Raise the SipError a UAS answers with, or return when the request may be processed.

    In order: 416 Request-URI scheme not in ``supported_schemes`` (8.2.2.1); 420 option tags in
    Require/Proxy-Require not in ``supported_extensions``, with ``Unsupported`` (8.2.2.3; the
    element is a B2BUA, so it is the proxy for Proxy-Require as well); 415 for a body of an
    offer/answer request whose Content-Type is not in ``supported_content_types`` or whose
    Content-Encoding is not identity, with ``Accept``/``Accept-Encoding`` (8.2.3); 406 when an
    INVITE's Accept excludes ``application/sdp`` (RFC 4475 3.3.15).
    """
    if request.uri.scheme not in supported_schemes:
        raise SipError(f"unsupported Request-URI scheme {request.uri.scheme!r}", 416)
    if request.method not in _NO_EXTENSION_CHECK:
        unknown = [
            tag
            for tag in _option_tags(request, "Require") + _option_tags(request, "Proxy-Require")
            if tag.lower() not in supported_extensions
        ]
        if unknown:
            raise BadExtensionError(tuple(dict.fromkeys(unknown)))
    if request.method not in _OFFER_ANSWER_METHODS:
        return
    if request.body:
        _check_content(request, supported_content_types)
    if request.method == "INVITE":
        _check_accept(request)


def _check_content(request: SipRequest, supported_content_types: frozenset[str]) -> None:
    accept = tuple(("Accept", media_type) for media_type in sorted(supported_content_types))
    content_type = request.content_type
    if content_type is None:
        raise SipError("body without Content-Type", 400)
    if content_type not in supported_content_types:
        raise SipError(f"unsupported Content-Type {content_type!r}", 415, headers=accept)
    for encoding in request.headers.get_all("Content-Encoding"):
        if encoding and encoding.lower() != "identity":
            raise SipError(
                f"unsupported Content-Encoding {encoding[:40]!r}",
                415,
                headers=(("Accept-Encoding", "identity"),),
            )


def _check_accept(request: SipRequest) -> None:
    """406 unless a response can carry application/sdp (RFC 3261 20.1, RFC 4475 3.3.15)."""
    ranges = [value for value in request.headers.get_all("Accept") if value]
    if not ranges:
        return  # absent Accept means application/sdp (RFC 3261 20.1)
    for media_range in ranges:
        kind, _, subtype = media_range.partition(";")[0].lower().partition("/")
        if (kind.strip(" \t"), subtype.strip(" \t")) in _SDP_RANGES:
            return
    raise SipError("Accept does not include application/sdp", 406)
