"""Typed SIP errors that carry their wire meaning (status code and reason phrase).

A :class:`SipError` raised anywhere in the stack maps to exactly one response (RFC 3261 8.2, 21):
the layer that owns the request turns it into that response, adding ``error.headers``
(e.g. ``Unsupported`` for 420, ``Accept`` for 415).
"""

from __future__ import annotations

_REASON_PHRASES: dict[int, str] = {
    # RFC 3261 21.1 - 21.6 plus the extensions a B2BUA meets in practice.
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    428: "Use Identity Header",
    429: "Provide Referrer Identity",
    433: "Anonymity Disallowed",
    436: "Bad Identity-Info",
    437: "Unsupported Certificate",
    438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded",
    469: "Bad Info Package",
    470: "Consent Needed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
    608: "Rejected",
}

_CLASS_PHRASES: dict[int, str] = {
    1: "Provisional",
    2: "Success",
    3: "Redirection",
    4: "Client Error",
    5: "Server Error",
    6: "Global Failure",
}


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status`` (RFC 3261 21); a class phrase for unknown codes."""
    phrase = _REASON_PHRASES.get(status)
    if phrase is not None:
        return phrase
    return _CLASS_PHRASES.get(status // 100, "Unknown")


class SipError(Exception):
    """An error with a SIP status: raising it means "answer the request with this response".

    ``headers`` are extra header fields the response must carry (RFC 3261 8.2.2.3: ``Unsupported``
    with a 420; 8.2.3: ``Accept`` with a 415).
    """

    def __init__(
        self,
        message: str,
        status: int = 400,
        reason: str | None = None,
        *,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason if reason is not None else reason_phrase(status)
        self.headers = headers


class SipParseError(SipError):
    """Malformed input (RFC 3261 7, 25): 400 by default, 505 for an unknown SIP version,
    513 for a message larger than the configured limits."""


class BadExtensionError(SipError):
    """420 Bad Extension (RFC 3261 8.2.2.3): ``unsupported`` lists the option tags to put into
    the response's ``Unsupported`` header (also present in ``headers``)."""

    def __init__(self, unsupported: tuple[str, ...]) -> None:
        super().__init__(
            "unsupported extension: " + ", ".join(unsupported),
            420,
            headers=tuple(("Unsupported", tag) for tag in unsupported),
        )
        self.unsupported = unsupported
