"""Customers' numbers in the recordings catalogue: sealed, and findable by exact match only.

A recording's caller number is stored as AES-256-GCM ciphertext (bound to the column by its
associated data) and as an HMAC-SHA256 of the normalised number, so a search for one exact
number is an index lookup and the table holds no number in clear. Both keys are derived
(HKDF-SHA256) from one 32-byte secret, which the composition root loads from the key
directory; whoever reads the database alone learns no number.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callwarden.domain.errors import ValidationFailed

SECRET_LENGTH = 32
SECRET_FILE = "recording-numbers.key"  # noqa: S105 (a file name)
NONCE_LENGTH = 12
ASSOCIATED_DATA = b"callwarden recordings.caller_number v1"
_FORMATTING = re.compile(r"[\s().\-/]")
_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")


class NumberCorrupted(ValidationFailed):
    """A sealed number did not open (wrong key or altered bytes)."""

    default_error_id = "number_corrupted"


class NumberProtector(Protocol):
    """Seals, opens and digests callers' numbers for the recordings table."""

    def seal(self, number: str) -> bytes: ...

    def open(self, sealed: bytes) -> str: ...

    def digest(self, number: str) -> str: ...


def normalise_number(number: str) -> str:
    """Digits (and `*`, `#`) with an optional leading `+`; spaces, dots, dashes, slashes and
    brackets dropped: `+49 (30) 123-45` -> `+493012345`."""
    text = _FORMATTING.sub("", number.strip())
    if not _NUMBER.fullmatch(text):
        raise ValidationFailed(f"not a phone number: {number!r}", details={"field": "number"})
    return text


def load_or_create_secret(path: Path) -> bytes:
    """The 32-byte secret in `path`, made (0600, directory 0700) if the file does not exist."""
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        secret = secrets.token_bytes(SECRET_LENGTH)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return load_or_create_secret(path)
        try:
            os.write(descriptor, secret)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    if len(secret) != SECRET_LENGTH:
        raise ValueError(f"{path} does not hold a {SECRET_LENGTH}-byte secret")
    return secret


def catalogue_secret(data_dir: Path) -> bytes:
    """The node's catalogue secret: `<data_dir>/keys/recording-numbers.key` (the keys of sealed
    numbers and of playback links are derived from it; every node sharing a database needs the
    same file)."""
    return load_or_create_secret(data_dir / "keys" / SECRET_FILE)


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class SealedNumbers:
    """The `NumberProtector` of a node: AES-256-GCM and HMAC-SHA256 keys derived from `secret`."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != SECRET_LENGTH:
            raise ValueError(f"the number secret must be {SECRET_LENGTH} bytes")
        self._aead = AESGCM(_derive(secret, b"callwarden number seal"))
        self._mac_key = _derive(secret, b"callwarden number search")

    def seal(self, number: str) -> bytes:
        nonce = os.urandom(NONCE_LENGTH)
        return nonce + self._aead.encrypt(nonce, number.encode(), ASSOCIATED_DATA)

    def open(self, sealed: bytes) -> str:
        try:
            plain = self._aead.decrypt(
                sealed[:NONCE_LENGTH], sealed[NONCE_LENGTH:], ASSOCIATED_DATA
            )
        except InvalidTag:
            raise NumberCorrupted("a sealed caller number does not open") from None
        return plain.decode()

    def digest(self, number: str) -> str:
        normalised = normalise_number(number)
        return hmac.new(self._mac_key, normalised.encode(), hashlib.sha256).hexdigest()
