"""SDES: SRTP keys in SDP (RFC 4568), sans-IO.

``a=crypto:<tag> <crypto-suite> inline:<key||salt>[|<lifetime>] [<session-params>]``

:meth:`CryptoAttribute.parse` reads one attribute value and raises :class:`CryptoError` (488
Not Acceptable Here) naming what is wrong; :func:`parse_offered` reads every ``a=crypto`` of
an m= line, refusing duplicate tags (RFC 4568 6.1: a tag is unique within the m= line), and
:func:`choose_crypto` picks the first one we support, in the offerer's order of preference
(RFC 4568 7.1.1). We support the two suites of RFC 3711 and RFC 7714 that every SRTP stack
has: ``AES_CM_128_HMAC_SHA1_80`` and ``AEAD_AES_128_GCM``. An attribute with an MKI, more
than one key or session parameters is not supported (RFC 4568 6.3: an answerer rejects
attributes with parameters it does not understand) and is passed over like an unknown suite.

SDES puts the keys into the signalling: it is safe only when the signalling is encrypted, so
the callers of this module (``sip.sdp``) accept it over TLS only.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from callwarden.sip.errors import SipError

__all__ = [
    "SAVP",
    "CryptoAttribute",
    "CryptoError",
    "CryptoSuite",
    "choose_crypto",
    "new_crypto",
    "parse_offered",
]

SAVP = "RTP/SAVP"
"""The SRTP profile of the m= line (RFC 3711 12)."""

_TAG_RE = re.compile(r"[0-9]{1,9}")
_SUITE_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# lifetime: a decimal number or 2^n (RFC 4568 9.2); MKI: value:length
_LIFETIME_RE = re.compile(r"(?:[0-9]{1,20}|2\^[0-9]{1,2})")
_MKI_RE = re.compile(r"[0-9]{1,9}:[0-9]{1,3}")
#: RFC 3711 9.2: no more than 2^48 SRTP packets with one master key (2^31 for SRTCP).
_MAX_LIFETIME = 2**48


class CryptoError(SipError):
    """An ``a=crypto`` attribute we cannot accept: 488 Not Acceptable Here (RFC 4568 7.1.2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 488)


class CryptoSuite(enum.Enum):
    """The SRTP crypto suites we speak, by their SDES names (RFC 4568 6.2, RFC 7714 12)."""

    AES_CM_128_HMAC_SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
    AEAD_AES_128_GCM = "AEAD_AES_128_GCM"

    @property
    def key_length(self) -> int:
        """Bytes of master key plus master salt in ``inline:`` (RFC 3711 8.2, RFC 7714 12)."""
        return 30 if self is CryptoSuite.AES_CM_128_HMAC_SHA1_80 else 28

    @classmethod
    def named(cls, name: str) -> CryptoSuite | None:
        try:
            return cls(name)
        except ValueError:
            return None


@dataclass(frozen=True)
class CryptoAttribute:
    """One ``a=crypto`` value. ``key`` is master key followed by master salt (the ``inline:``
    value decoded); it is kept out of ``repr`` so that it never reaches a log line."""

    tag: int
    suite: str
    key: bytes = field(repr=False)
    lifetime: str | None = None
    mki: str | None = None
    extra_keys: int = 0
    session_params: tuple[str, ...] = ()

    @property
    def supported_suite(self) -> CryptoSuite | None:
        """The suite when we support it and everything else in the attribute, else None."""
        if self.mki is not None or self.extra_keys or self.session_params:
            return None
        return CryptoSuite.named(self.suite)

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        """Read ``<tag> <suite> <key-params> [<session-params>]`` (RFC 4568 9.1)."""
        parts = value.split()
        if len(parts) < 3:
            raise CryptoError(f"a=crypto needs a tag, a suite and key parameters: {value!r}")
        tag_text, suite, key_params, *session_params = parts
        if _TAG_RE.fullmatch(tag_text) is None:
            raise CryptoError(f"a=crypto tag is not a number of 1 to 9 digits: {tag_text!r}")
        tag = int(tag_text)
        if tag == 0:
            raise CryptoError("a=crypto tag 0 is not allowed")
        if _SUITE_RE.fullmatch(suite) is None:
            raise CryptoError(f"a=crypto suite is not a suite name: {suite!r}")
        keys = key_params.split(";")
        key, lifetime, mki = _parse_key_param(keys[0])
        for other in keys[1:]:
            _parse_key_param(other)
        known = CryptoSuite.named(suite)
        if known is not None and len(key) != known.key_length:
            raise CryptoError(
                f"a=crypto {suite} key is {len(key)} bytes, it must be {known.key_length}"
            )
        return cls(tag, suite, key, lifetime, mki, len(keys) - 1, tuple(session_params))

    def __str__(self) -> str:
        text = f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"
        if self.lifetime is not None:
            text += f"|{self.lifetime}"
        if self.mki is not None:
            text += f"|{self.mki}"
        return " ".join((text, *self.session_params))


def _parse_key_param(text: str) -> tuple[bytes, str | None, str | None]:
    """``inline:<base64>[|lifetime][|MKI:length]`` (RFC 4568 6.1, 9.2)."""
    method, _, info = text.partition(":")
    if method != "inline" or not info:
        raise CryptoError(f"a=crypto key method must be inline: {text!r}")
    key_text, *rest = info.split("|")
    if _BASE64_RE.fullmatch(key_text) is None:
        raise CryptoError("a=crypto key is not base64")
    try:
        key = base64.b64decode(key_text, validate=True)
    except binascii.Error:
        raise CryptoError("a=crypto key is not valid base64") from None
    if not key:
        raise CryptoError("a=crypto key is empty")
    lifetime = mki = None
    for item in rest:
        if mki is None and lifetime is None and _LIFETIME_RE.fullmatch(item):
            lifetime = item
            value = 2 ** int(item[2:]) if item.startswith("2^") else int(item)
            if not 0 < value <= _MAX_LIFETIME:
                raise CryptoError(f"a=crypto key lifetime out of range: {item}")
        elif mki is None and _MKI_RE.fullmatch(item):
            mki = item
        else:
            raise CryptoError(f"a=crypto key parameter not understood: {item!r}")
    return key, lifetime, mki


def parse_offered(values: Sequence[str]) -> list[CryptoAttribute]:
    """Every ``a=crypto`` of one m= line, in order; a malformed one or a repeated tag is 488."""
    attributes = [CryptoAttribute.parse(value) for value in values]
    tags = [attribute.tag for attribute in attributes]
    if len(set(tags)) != len(tags):
        raise CryptoError("a=crypto tags repeat within the m= line")
    return attributes


def choose_crypto(offered: Sequence[CryptoAttribute]) -> CryptoAttribute | None:
    """The first offered attribute we support (RFC 4568 7.1.1: the offer's order is its
    preference), or None when there is none."""
    return next((attribute for attribute in offered if attribute.supported_suite), None)


def new_crypto(
    tag: int, suite: CryptoSuite, random_bytes: Callable[[int], bytes] = os.urandom
) -> CryptoAttribute:
    """Our own attribute with a fresh master key and salt (RFC 4568 6.1: each direction has its
    own key; never reuse the offerer's)."""
    return CryptoAttribute(tag, suite.value, random_bytes(suite.key_length))
