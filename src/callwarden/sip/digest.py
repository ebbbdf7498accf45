"""HTTP Digest authentication for SIP (RFC 3261 22.4, RFC 7616, RFC 8760), sans-IO.

Server side: :class:`NonceManager` issues stateless nonces bound to time, realm and the
requester's address,
:class:`DigestAuthenticator` builds the challenges (SHA-256 first, then MD5) and verifies
credentials against stored HA1 values, never plain passwords. Client side:
:func:`answer_challenge` answers a trunk's challenge. Header values are parsed by
:func:`parse_challenge` and :func:`parse_credentials` (in :mod:`callwarden.sip.digest_headers`,
re-exported here); another scheme gives :class:`NotDigest`, which must never count as
authenticated (RFC 4475 3.3.7).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from callwarden.sip.digest_headers import (
    MAX_HEADER_LENGTH,
    DigestChallenge,
    DigestCredentials,
    NotDigest,
    parse_challenge,
    parse_credentials,
)
from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.uri import parse_uri

__all__ = [
    "MAX_HEADER_LENGTH",
    "AuthFailure",
    "AuthResult",
    "AuthStatus",
    "DigestAuthenticator",
    "DigestChallenge",
    "DigestCredentials",
    "DigestError",
    "NonceManager",
    "NonceStatus",
    "NotDigest",
    "UnsupportedAlgorithm",
    "answer_challenge",
    "compute_ha1",
    "parse_challenge",
    "parse_credentials",
    "select_challenge",
]

_HASHES = MappingProxyType({"MD5": "md5", "SHA-256": "sha256"})
_NONCE_RE = re.compile(r"[A-Za-z0-9_\-]{64}")


class DigestError(SipError):
    """A digest operation that cannot be carried out (unsupported algorithm or qop, or a
    challenge that is not Digest)."""


class UnsupportedAlgorithm(DigestError):  # noqa: N818 - reads as a result, like NoCommonCodec
    """An algorithm other than MD5, SHA-256 and their -sess variants (RFC 7616 3.2)."""


def _base_algorithm(algorithm: str) -> tuple[str, bool]:
    """("SHA-256", True) for "sha-256-sess"; raises :class:`UnsupportedAlgorithm`."""
    name = algorithm.upper()
    session = name.endswith("-SESS")
    base = name[: -len("-SESS")] if session else name
    if base not in _HASHES:
        raise UnsupportedAlgorithm(f"unsupported digest algorithm {algorithm[:40]!r}")
    return base, session


def _hash(algorithm: str, text: str) -> str:
    return hashlib.new(_HASHES[algorithm], text.encode("utf-8")).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    """HA1 = H(username ":" realm ":" password) (RFC 7616 3.4.2) as lowercase hex, for
    ``algorithm`` "MD5" or "SHA-256"; this is what is stored instead of the SIP password."""
    base, session = _base_algorithm(algorithm)
    if session:
        raise UnsupportedAlgorithm("a stored HA1 is computed for MD5 or SHA-256, not -sess")
    return _hash(base, f"{username}:{realm}:{password}")


def _response(
    algorithm: str,
    ha1: str,
    *,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str,
    cnonce: str,
) -> str:
    """The request-digest of RFC 7616 3.4.1 (RFC 2617 3.2.2.1 when there is no qop)."""
    base, session = _base_algorithm(algorithm)
    if session:
        ha1 = _hash(base, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _hash(base, f"{method}:{uri}")
    if qop is None:
        return _hash(base, f"{ha1}:{nonce}:{ha2}")
    return _hash(base, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --------------------------------------------------------------------------- nonces


class NonceStatus(enum.Enum):
    VALID = "valid"
    STALE = "stale"  # authentic but expired (or its history forgotten): re-challenge, stale=true
    INVALID = "invalid"  # forged, for another realm, from the future, or a replayed count


@dataclass
class _NonceCounts:
    """The nonce counts seen for one nonce, within a sliding window (RFC 7616 3.4 nc)."""

    issued: float
    highest: int = 0
    seen: set[int] = field(default_factory=set)

    def accept(self, nc: int, window: int) -> bool:
        if nc < 1 or nc <= self.highest - window or nc in self.seen:
            return False
        self.seen.add(nc)
        if nc > self.highest:
            self.highest = nc
            self.seen = {count for count in self.seen if count > nc - window}
        return True


_STAMP = struct.Struct(">Q")
_SALT_BYTES = 8
_NONCE_LENGTH = 64  # base64 of 8 (milliseconds) + 8 (salt) + 32 (HMAC-SHA256) bytes
_FUTURE_TOLERANCE = 5.0


class NonceManager:
    """Stateless nonces (RFC 7616 5.4, 5.5): ``base64url(time || salt || HMAC-SHA256(secret,
    time || salt || realm || source))``, so any node sharing ``secret`` can check them without
    storage. ``source`` is the host (not the port) the challenge was sent to: a nonce captured
    on the way and answered from another address is not ours (INVALID, so challenged again),
    while a phone whose NAT picks a new port keeps its nonce.

    ``clock`` should be wall-clock seconds (``time.time``) so nonces survive a restart. Replays
    are bounded by :meth:`record_use`: the counts of the ``max_tracked`` most recently used
    nonces are remembered (LRU); a nonce whose history was evicted is reported stale, so its
    owner simply gets a fresh one.
    """

    def __init__(
        self,
        secret: bytes,
        clock: Callable[[], float],
        lifetime: float = 300,
        *,
        max_tracked: int = 4096,
        nc_window: int = 32,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret needs at least 16 bytes")
        self._secret = secret
        self._clock = clock
        self._lifetime = lifetime
        self._max_tracked = max_tracked
        self._nc_window = nc_window
        self._random_bytes = random_bytes
        self._counts: OrderedDict[str, _NonceCounts] = OrderedDict()
        self._forgotten_until = -1.0  # issue time of the newest nonce whose history was evicted

    def _mac(self, stamp: bytes, salt: bytes, realm: str, source: str) -> bytes:
        named = realm.encode("utf-8")
        # The realm's length first: ("ab", "c") and ("a", "bc") must not sign alike.
        message = stamp + salt + len(named).to_bytes(4, "big") + named + source.encode("utf-8")
        return hmac.new(self._secret, message, "sha256").digest()

    def issue(self, realm: str, *, source: str) -> str:
        """A fresh nonce for a challenge sent to host ``source``."""
        stamp = _STAMP.pack(max(0, int(self._clock() * 1000)))
        salt = self._random_bytes(_SALT_BYTES)
        token = stamp + salt + self._mac(stamp, salt, realm, source)
        return base64.urlsafe_b64encode(token).decode("ascii")

    def _issued_at(self, nonce: str, realm: str, source: str) -> float | None:
        if len(nonce) != _NONCE_LENGTH or not _NONCE_RE.fullmatch(nonce):
            return None
        try:
            token = base64.urlsafe_b64decode(nonce)
        except (binascii.Error, ValueError):
            return None
        stamp, salt, mac = token[:8], token[8 : 8 + _SALT_BYTES], token[8 + _SALT_BYTES :]
        if not hmac.compare_digest(mac, self._mac(stamp, salt, realm, source)):
            return None
        issued: int = _STAMP.unpack(stamp)[0]
        return issued / 1000

    def verify(self, nonce: str, realm: str, *, source: str) -> NonceStatus:
        """VALID, STALE (ours but expired) or INVALID (not made by us for ``realm`` and host
        ``source``, or from the future)."""
        issued = self._issued_at(nonce, realm, source)
        now = self._clock()
        if issued is None or issued > now + _FUTURE_TOLERANCE:
            return NonceStatus.INVALID
        if now - issued > self._lifetime:
            return NonceStatus.STALE
        return NonceStatus.VALID

    def record_use(self, nonce: str, realm: str, nc: int, *, source: str) -> NonceStatus:
        """Record nonce count ``nc`` for a nonce that :meth:`verify` found valid, after the
        response was verified: INVALID for a count already used (a replay)."""
        counts = self._counts.get(nonce)
        if counts is None:
            issued = self._issued_at(nonce, realm, source)
            if issued is None:
                return NonceStatus.INVALID
            if issued <= self._forgotten_until:
                return NonceStatus.STALE
            counts = self._counts[nonce] = _NonceCounts(issued)
            while len(self._counts) > self._max_tracked:
                _, evicted = self._counts.popitem(last=False)
                self._forgotten_until = max(self._forgotten_until, evicted.issued)
        else:
            self._counts.move_to_end(nonce)
        return NonceStatus.VALID if counts.accept(nc, self._nc_window) else NonceStatus.INVALID


# --------------------------------------------------------------------------- server side


class AuthStatus(enum.Enum):
    OK = "ok"
    STALE = "stale"  # right password, expired nonce: challenge again with stale=true
    FAILED = "failed"  # challenge again; count towards throttling unless NO_CREDENTIALS


class AuthFailure(enum.Enum):
    NO_CREDENTIALS = "no credentials"
    NOT_DIGEST = "not a Digest scheme"
    MALFORMED = "malformed credentials"
    REALM_MISMATCH = "realm does not match"
    UNSUPPORTED = "unsupported algorithm or qop"
    OPAQUE_MISMATCH = "opaque does not match"
    URI_MISMATCH = "uri does not match the Request-URI"
    INVALID_NONCE = "invalid nonce"
    BAD_CREDENTIALS = "unknown user or wrong password"
    REPLAY = "nonce count already used"


@dataclass(frozen=True)
class AuthResult:
    """The outcome of :meth:`DigestAuthenticator.verify`.

    ``username`` is set only when authenticated; ``claimed_username`` is whatever the
    credentials said (for logs and throttling, never for authorization).
    """

    status: AuthStatus
    username: str | None = None
    failure: AuthFailure | None = None
    claimed_username: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is AuthStatus.OK

    @property
    def stale(self) -> bool:
        return self.status is AuthStatus.STALE

    @property
    def reason(self) -> str:
        return self.failure.value if self.failure is not None else self.status.value


def _failed(failure: AuthFailure, claimed: str | None = None) -> AuthResult:
    return AuthResult(AuthStatus.FAILED, failure=failure, claimed_username=claimed)


def _same_uri(digest_uri: str, request_uri: str) -> bool:
    """RFC 7616 3.4.6: the digest-uri must name the Request-URI; compared as parsed URIs."""
    if digest_uri == request_uri:
        return True
    try:
        return str(parse_uri(digest_uri)) == str(parse_uri(request_uri))
    except SipParseError:
        return False


class DigestAuthenticator:
    """Server side of RFC 3261 22.4 with RFC 7616/8760 algorithms, for one realm.

    Unknown users and wrong passwords get the same result and the same work: the response is
    computed against a random dummy HA1 and compared in constant time, so neither the outcome
    nor its timing tells whether a user exists (ASVS V6.3.8). Clients must use qop=auth.
    """

    def __init__(
        self,
        realm: str,
        nonces: NonceManager,
        *,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
    ) -> None:
        for algorithm in algorithms:
            _base_algorithm(algorithm)
        self.realm = realm
        self._nonces = nonces
        self._algorithms = tuple(algorithms)
        self._accepted = frozenset(algorithm.upper() for algorithm in algorithms)
        # Constant per realm: clients echo it (RFC 7616 3.3), so it survives restarts.
        self._opaque = hashlib.sha256(f"callwarden opaque {realm}".encode()).hexdigest()[:32]
        self._dummy_ha1 = {base: _hash(base, secrets.token_hex(16)) for base in _HASHES}

    def challenge_headers(self, stale: bool = False, *, source: str) -> list[str]:
        """One ``WWW-Authenticate``/``Proxy-Authenticate`` value per algorithm, the preferred
        (SHA-256) first (RFC 8760 2.4, RFC 7616 3.7), sharing one fresh nonce bound to the
        host ``source`` the challenge goes to."""
        nonce = self._nonces.issue(self.realm, source=source)
        return [
            str(
                DigestChallenge(
                    realm=self.realm,
                    nonce=nonce,
                    algorithm=algorithm,
                    qop=("auth",),
                    opaque=self._opaque,
                    stale=stale,
                )
            )
            for algorithm in self._algorithms
        ]

    def verify(
        self,
        method: str,
        credentials_header: str | Sequence[str] | None,
        lookup_ha1: Callable[[str, str], str | None],
        *,
        request_uri: str,
        source: str,
    ) -> AuthResult:
        """Check the ``Authorization``/``Proxy-Authorization`` value(s) of a request (RFC 7616
        3.4.1-3.4.6). ``lookup_ha1(username, "MD5" | "SHA-256")`` returns the stored HA1 or
        None; ``request_uri`` is the request's Request-URI; ``source`` the host it came from
        (a nonce issued to another host is INVALID_NONCE)."""
        if isinstance(credentials_header, str):
            values: Sequence[str] = (credentials_header,)
        else:
            values = credentials_header or ()
        if not values:
            return _failed(AuthFailure.NO_CREDENTIALS)
        failure = AuthFailure.NOT_DIGEST
        for value in values:
            try:
                credentials = parse_credentials(value)
            except SipParseError:
                failure = AuthFailure.MALFORMED
                continue
            if isinstance(credentials, NotDigest):
                continue
            if credentials.realm != self.realm:
                failure = AuthFailure.REALM_MISMATCH
                continue
            return self._verify(method, request_uri, credentials, lookup_ha1, source)
        return _failed(failure)

    def _verify(
        self,
        method: str,
        request_uri: str,
        credentials: DigestCredentials,
        lookup_ha1: Callable[[str, str], str | None],
        source: str,
    ) -> AuthResult:
        claimed = credentials.username
        algorithm = credentials.algorithm or "MD5"
        qop = credentials.qop
        if algorithm.upper() not in self._accepted or qop is None or qop.lower() != "auth":
            return _failed(AuthFailure.UNSUPPORTED, claimed)
        if credentials.opaque != self._opaque:
            return _failed(AuthFailure.OPAQUE_MISMATCH, claimed)
        if not _same_uri(credentials.uri, request_uri):
            return _failed(AuthFailure.URI_MISMATCH, claimed)
        nonce_status = self._nonces.verify(credentials.nonce, self.realm, source=source)
        if nonce_status is NonceStatus.INVALID:
            return _failed(AuthFailure.INVALID_NONCE, claimed)
        base, _ = _base_algorithm(algorithm)
        stored = lookup_ha1(claimed, base)
        expected = _response(
            algorithm,
            stored if stored is not None else self._dummy_ha1[base],
            method=method,
            uri=credentials.uri,
            nonce=credentials.nonce,
            qop=qop,
            nc=credentials.nc or "",
            cnonce=credentials.cnonce or "",
        )
        matches = hmac.compare_digest(
            expected.encode("ascii"), credentials.response.lower().encode("utf-8")
        )
        if stored is None or not matches:
            return _failed(AuthFailure.BAD_CREDENTIALS, claimed)
        if nonce_status is NonceStatus.STALE:
            return AuthResult(AuthStatus.STALE, claimed_username=claimed)
        nc = credentials.nonce_count or 0
        use = self._nonces.record_use(credentials.nonce, self.realm, nc, source=source)
        if use is NonceStatus.STALE:
            return AuthResult(AuthStatus.STALE, claimed_username=claimed)
        if use is NonceStatus.INVALID:
            return _failed(AuthFailure.REPLAY, claimed)
        return AuthResult(AuthStatus.OK, username=claimed, claimed_username=claimed)


# --------------------------------------------------------------------------- client side

_CLIENT_PREFERENCE = ("SHA-256", "MD5", "SHA-256-SESS", "MD5-SESS")


def _usable(challenge: DigestChallenge) -> bool:
    algorithm = (challenge.algorithm or "MD5").upper()
    qop = [option.lower() for option in challenge.qop]
    return algorithm in _CLIENT_PREFERENCE and (not qop or "auth" in qop)


def select_challenge(values: Sequence[str], *, realm: str | None = None) -> str | None:
    """Of several ``WWW-Authenticate``/``Proxy-Authenticate`` values, the one to answer: the
    strongest algorithm we support (RFC 7616 3.7, RFC 8760 2.4), only for ``realm`` if given
    (never answer a foreign realm: the "SIP digest leak"). None when none is usable."""
    usable: list[tuple[int, str]] = []
    for value in values:
        try:
            challenge = parse_challenge(value)
        except SipParseError:
            continue
        if isinstance(challenge, NotDigest) or not _usable(challenge):
            continue
        if realm is not None and challenge.realm != realm:
            continue
        rank = _CLIENT_PREFERENCE.index((challenge.algorithm or "MD5").upper())
        usable.append((rank, value))
    return min(usable)[1] if usable else None


def answer_challenge(
    challenge_header: str,
    method: str,
    uri: str,
    username: str,
    password: str,
    *,
    cnonce: str,
    nc: int = 1,
) -> str:
    """An ``Authorization``/``Proxy-Authorization`` value answering ``challenge_header``
    (RFC 7616 3.4, RFC 3261 22.4): qop=auth when offered, RFC 2069 style when no qop is.
    Raises :class:`DigestError` for a non-Digest challenge or one offering only auth-int,
    :class:`UnsupportedAlgorithm` for an unknown algorithm, SipParseError when malformed."""
    challenge = parse_challenge(challenge_header)
    if isinstance(challenge, NotDigest):
        raise DigestError(f"cannot answer a {challenge.scheme[:40]} challenge: not Digest")
    algorithm = challenge.algorithm or "MD5"
    base, session = _base_algorithm(algorithm)
    if not _usable(challenge):
        raise DigestError("challenge offers no qop we support (auth)")
    if not 1 <= nc <= 0xFFFFFFFF:
        raise ValueError("nonce count out of range")
    qop = "auth" if challenge.qop else None
    nc_text = f"{nc:08x}"
    response = _response(
        algorithm,
        compute_ha1(username, challenge.realm, password, base),
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
    )
    credentials = DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        cnonce=cnonce if qop is not None or session else None,
        opaque=challenge.opaque,
        qop=qop,
        nc=nc_text if qop is not None else None,
    )
    return str(credentials)
