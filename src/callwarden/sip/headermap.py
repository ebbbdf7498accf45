"""The ordered header multimap of a SIP message (RFC 3261 7.3).

Names are case-insensitive and compact forms are expanded (7.3.3); known names are stored in
their canonical spelling. Header fields whose grammar is a comma-separated list (7.3.1) are split
into one entry per value, respecting quotes and '<>'; the others (Authorization, WWW-Authenticate,
Date, unknown extension headers...) are kept whole because their values may contain commas.
Values stay raw text: structured parsing happens lazily in the message properties, whose results
are cached here per header field and dropped when that header field changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar, cast

from callwarden.sip.syntax import TOKEN, split_commas

_T = TypeVar("_T")

_CANONICAL_NAMES = (
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Accept-Resource-Priority",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Diversion",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "History-Info",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Breadth",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Remote-Party-ID",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Resource-Priority",
    "Retry-After",
    "Route",
    "RSeq",
    "Security-Client",
    "Security-Server",
    "Security-Verify",
    "Server",
    "Service-Route",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
)

# RFC 3261 7.3.3 and the IANA SIP parameters registry.
_COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

MULTI_VALUED = frozenset(
    name.lower()
    for name in (
        "Accept",
        "Accept-Contact",
        "Accept-Encoding",
        "Accept-Language",
        "Accept-Resource-Priority",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Diversion",
        "Error-Info",
        "History-Info",
        "In-Reply-To",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Path",
        "Privacy",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Reject-Contact",
        "Require",
        "Resource-Priority",
        "Route",
        "Security-Client",
        "Security-Server",
        "Security-Verify",
        "Service-Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    )
)


def _build_name_table() -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for name in _CANONICAL_NAMES:
        entry = (name.lower(), name)
        table[name] = entry
        table[name.lower()] = entry
    for short, name in _COMPACT_FORMS.items():
        table[short] = table[short.upper()] = (name.lower(), name)
    return table


# Multi-valued headers the parser may leave unsplit until read: option-tag and media-range lists.
# Address lists (Via, Contact, Route...) are always split at once: the stack reads them anyway.
LAZY_LISTS = MULTI_VALUED - {
    "via",
    "contact",
    "route",
    "record-route",
    "path",
    "service-route",
}

HEADER_NAMES = _build_name_table()
_MISSING = object()


def canonical_name(name: str) -> tuple[str, str]:
    """(lookup key, spelling) for a header name: compact forms expanded, known names canonical,
    unknown names kept as written. Raises ValueError for a name that is not a token."""
    entry = HEADER_NAMES.get(name)
    if entry is not None:
        return entry
    entry = HEADER_NAMES.get(name.lower())
    if entry is not None:
        return entry
    if TOKEN.fullmatch(name) is None:
        raise ValueError(f"header name is not a token: {name!r}")
    return name.lower(), name


def _check_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("header value contains CR or LF")
    return value.strip(" \t")


class Headers:
    """Ordered multimap of header fields (RFC 3261 7.3): one entry per value.

    The parser may hand over token lists (``Allow: INVITE, ACK``) unsplit; they are split the
    first time anything looks at them, so a message whose lists nobody reads never pays for it.
    """

    __slots__ = ("_cache", "_entries", "_index", "_unsplit")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._entries: list[tuple[str, str, str]] = []
        self._cache: dict[str, object] = {}
        self._index: dict[str, list[str]] | None = None
        self._unsplit = False
        for name, value in items:
            self.add(name, value)

    @classmethod
    def from_entries(
        cls,
        entries: list[tuple[str, str, str]],
        index: dict[str, list[str]] | None = None,
        *,
        unsplit: bool = False,
    ) -> Headers:
        """Adopt already-validated ``(key, name, value)`` entries (used by the parser).

        ``index`` maps each key to its values in order, when the caller has it at hand;
        ``unsplit`` says that values of :data:`LAZY_LISTS` keys may still hold comma lists
        (without quotes or '<', so splitting them cannot fail)."""
        headers = cls.__new__(cls)
        headers._entries = entries
        headers._cache = {}
        headers._index = index
        headers._unsplit = unsplit
        return headers

    def _split_lists(self) -> None:
        entries: list[tuple[str, str, str]] = []
        for entry in self._entries:
            if entry[0] in LAZY_LISTS and "," in entry[2]:
                entries.extend([(entry[0], entry[1], item) for item in split_commas(entry[2])])
            else:
                entries.append(entry)
        self._entries = entries
        self._index = None
        self._unsplit = False

    def _changed(self, key: str, values: list[str] | None) -> None:
        """Header ``key`` now has ``values`` (None: none left): drop what was parsed from it and
        keep the lookup index current. Index lists are replaced, never changed in place, since
        :meth:`values_of` hands them out."""
        self._cache.pop(key, None)
        index = self._index
        if index is not None:
            if values:
                index[key] = values
            else:
                index.pop(key, None)

    def values_of(self, key: str) -> Sequence[str]:
        """The values under a lookup key (lower-case full name) - the internal list itself, for
        read-only use by the message properties."""
        if self._unsplit and key in LAZY_LISTS:
            self._split_lists()
        index = self._index
        if index is None:
            index = {}
            for entry in self._entries:
                values = index.get(entry[0])
                if values is None:
                    index[entry[0]] = [entry[2]]
                else:
                    values.append(entry[2])
            self._index = index
        return index.get(key, ())

    def _values(self, name: str, value: str) -> tuple[str, str, list[str]]:
        key, spelling = canonical_name(name)
        value = _check_value(value)
        if key in MULTI_VALUED and "," in value:
            return key, spelling, split_commas(value)
        return key, spelling, [value]

    def get(self, name: str) -> str | None:
        """The first value of ``name``, or None."""
        values = self.values_of(canonical_name(name)[0])
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        return list(self.values_of(canonical_name(name)[0]))

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` with ``value`` (at the first one's position)."""
        key, spelling, values = self._values(name, value)
        new = [(key, spelling, item) for item in values]
        entries = self.entries()
        for index, entry in enumerate(entries):
            if entry[0] == key:
                rest = [other for other in entries[index + 1 :] if other[0] != key]
                self._entries = entries[:index] + new + rest
                break
        else:
            entries.extend(new)
        self._changed(key, values)

    def add(self, name: str, value: str) -> None:
        """Append ``value`` after every existing header field."""
        key, spelling, values = self._values(name, value)
        self.entries().extend((key, spelling, item) for item in values)
        if self._index is not None:
            values = [*self._index.get(key, ()), *values]
        self._changed(key, values)

    def prepend(self, name: str, value: str) -> None:
        """Insert ``value`` before the first value of ``name`` (at the top when there is none),
        as a proxy adds its Via (RFC 3261 16.6 step 8)."""
        key, spelling, values = self._values(name, value)
        entries = self.entries()
        index = next((i for i, entry in enumerate(entries) if entry[0] == key), 0)
        entries[index:index] = [(key, spelling, item) for item in values]
        if self._index is not None:
            values = [*values, *self._index.get(key, ())]
        self._changed(key, values)

    def remove(self, name: str) -> None:
        """Remove every value of ``name`` (no error when absent)."""
        key = canonical_name(name)[0]
        self._entries = [entry for entry in self.entries() if entry[0] != key]
        self._changed(key, None)

    def remove_first(self, name: str) -> str | None:
        """Remove and return the first value of ``name`` (a proxy popping its Route or a UAC
        its top Via, RFC 3261 16.4, 18.1.2); None when absent."""
        key = canonical_name(name)[0]
        entries = self.entries()
        for index, entry in enumerate(entries):
            if entry[0] == key:
                del entries[index]
                rest = self._index.get(key, ()) if self._index is not None else ()
                self._changed(key, list(rest[1:]))
                return entry[2]
        return None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = canonical_name(name)[0]
        if self._index is not None or (self._unsplit and key in LAZY_LISTS):
            return bool(self.values_of(key))
        # No index yet (a message being built): a scan is cheaper than building one.
        return any(entry[0] == key for entry in self._entries)

    def items(self) -> list[tuple[str, str]]:
        """``(name, value)`` pairs in order, one per value."""
        return [(entry[1], entry[2]) for entry in self.entries()]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items())

    def __len__(self) -> int:
        return len(self.entries())

    def copy(self) -> Headers:
        """An independent copy (parsed values are immutable, so the cache is shared safely)."""
        headers = Headers.from_entries(list(self.entries()))
        headers._cache = dict(self._cache)
        return headers

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [entry[0::2] for entry in self.entries()] == [
            entry[0::2] for entry in other.entries()
        ]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def release_parsed(self) -> None:
        """Forget the parsed values and the lookup index; the next read rebuilds what it needs.

        For messages kept only to be matched or sent again (a transaction lingering for Timer
        J, L or M): the raw entries stay, the dozens of small objects parsed from them go."""
        self._cache = {}
        self._index = None

    def cached(self, key: str, build: Callable[[Headers], _T]) -> _T:
        """``build(self)``, computed once until header field ``key`` changes (``key`` is the
        lookup key of the one header field ``build`` reads, e.g. ``"via"``)."""
        value = self._cache.get(key, _MISSING)
        if value is _MISSING:
            value = self._cache[key] = build(self)
        return cast(_T, value)

    def entries(self) -> list[tuple[str, str, str]]:
        """The ``(lookup key, name, value)`` entries, one per value (the list itself: read-only
        for callers outside this class)."""
        if self._unsplit:
            self._split_lists()
        return self._entries
