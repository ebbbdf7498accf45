"""Small secrets sealed at rest with AES-256-GCM (NIST SP 800-38D), under one key file.

Used for the TOTP seeds: a copy of the database alone (a backup, a stolen file, a read-only SQL
injection) does not yield them; the key file lives in the data directory, readable by the node's
user only. It stands in until the recording key ring exists; its format leaves room for that:

    sealed = version (1 byte, 0x01) || nonce (12 random bytes) || ciphertext || tag (16 bytes)

The caller passes associated data naming what the secret belongs to (e.g. "totp:42"), so a
sealed value copied into another user's row does not open.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

logger = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = b"\x01"


class SecretBoxError(Exception):
    """A sealed value does not open (wrong key, altered bytes, other owner) or a bad key file."""


class SecretBox:
    """Seal and open short secrets with one 256-bit key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretBoxError(f"the key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    @classmethod
    def generate(cls) -> SecretBox:
        """A box with a fresh random key that is kept nowhere (for tests and throw-away data)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_key_file(cls, path: Path) -> SecretBox:
        """The box whose key is in `path`; a missing file is created (mode 0600) with a new key."""
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(_read_key_file(path))
        with os.fdopen(descriptor, "wb") as key_file:
            key_file.write(secrets.token_bytes(KEY_BYTES))
        logger.info("created secret key file %s", path)
        return cls(_read_key_file(path))

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return FORMAT_VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[:1] != FORMAT_VERSION:
            raise SecretBoxError("sealed value is malformed or of an unknown version")
        nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise SecretBoxError("sealed value does not open with this key and owner") from None


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("secret key file %s is readable by others than its owner", path)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise SecretBoxError(f"key file {path} must hold exactly {KEY_BYTES} bytes")
    return key
