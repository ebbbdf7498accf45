"""The key ring: per-recording data keys, wrapped by key-encryption keys (KEK).

Every recording is sealed with its own 32-byte data key (:func:`new_data_key`), which is never
written to disk unwrapped: what is stored (by the recording repository) is the
:class:`WrappedKey`, the data key encrypted by a KEK. Destroying the wrapped key destroys the
recording (crypto-shredding).

A :class:`KeyEncryptionService` wraps and unwraps; an external KMS plugs in by implementing it.
The default, :class:`FileKeyRing`, keeps its KEKs as files of 32 random bytes under
``<data_dir>/keys/recording/`` (directory 0700, files 0600), named ``kek-0001.key``,
``kek-0002.key``...; the newest one wraps new keys. :meth:`FileKeyRing.rotate` adds a KEK;
the older ones still unwrap, and :func:`rewrap` moves a wrapped key to the newest KEK.

Wrapping is AES-256-GCM with a fresh 96-bit nonce; the associated data binds the KEK id and
the recording id, so a wrapped key copied onto another recording does not unwrap.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callwarden.recording.errors import KeyUnavailable

logger = logging.getLogger(__name__)

DATA_KEY_BYTES = 32
KEK_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"^kek-(\d{4,})$")
_WRAP_AAD_PREFIX = b"callwarden/recording-data-key/v1\x00"


def new_data_key() -> bytes:
    """A fresh random 256-bit data key for one recording."""
    return secrets.token_bytes(DATA_KEY_BYTES)


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted by the KEK ``key_id``: ``blob`` is nonce + ciphertext + tag."""

    key_id: str
    blob: bytes

    def encode(self) -> str:
        """A text form for a database column: ``<key_id>:<base64 blob>``."""
        return f"{self.key_id}:{base64.b64encode(self.blob).decode('ascii')}"

    @classmethod
    def decode(cls, text: str) -> WrappedKey:
        """Parse :meth:`encode`'s form; raises ``ValueError`` naming what is wrong."""
        key_id, separator, encoded = text.partition(":")
        if not separator or not key_id or not encoded:
            raise ValueError("wrapped key must look like '<key_id>:<base64>'")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"wrapped key is not valid base64: {exc}") from None
        return cls(key_id, blob)


class KeyEncryptionService(Protocol):
    """Wraps and unwraps data keys (the file key ring, or an external KMS)."""

    def current_key_id(self) -> str:
        """The id of the KEK that wraps new data keys."""
        ...

    def wrap(self, data_key: bytes, recording_id: str) -> WrappedKey:
        """Encrypt ``data_key`` for ``recording_id`` with the current KEK."""
        ...

    def unwrap(self, wrapped: WrappedKey, recording_id: str) -> bytes:
        """The data key; raises :class:`KeyUnavailable` if it cannot be recovered."""
        ...


def _aad(key_id: str, recording_id: str) -> bytes:
    return _WRAP_AAD_PREFIX + key_id.encode() + b"\x00" + recording_id.encode()


def wrap_with(kek: bytes, key_id: str, data_key: bytes, recording_id: str) -> WrappedKey:
    """AES-256-GCM-wrap ``data_key`` under ``kek`` (for KEK implementations)."""
    if len(data_key) != DATA_KEY_BYTES:
        raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes, got {len(data_key)}")
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(kek).encrypt(nonce, data_key, _aad(key_id, recording_id))
    return WrappedKey(key_id, nonce + sealed)


def unwrap_with(kek: bytes, wrapped: WrappedKey, recording_id: str) -> bytes:
    """Reverse :func:`wrap_with`; raises :class:`KeyUnavailable` if authentication fails."""
    nonce, sealed = wrapped.blob[:NONCE_BYTES], wrapped.blob[NONCE_BYTES:]
    try:
        return AESGCM(kek).decrypt(nonce, sealed, _aad(wrapped.key_id, recording_id))
    except (InvalidTag, ValueError):
        raise KeyUnavailable(
            f"data key of recording {recording_id} does not unwrap with {wrapped.key_id}"
        ) from None


class FileKeyRing:
    """KEKs as files under ``directory`` (``<data_dir>/keys/recording``); created on demand."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> FileKeyRing:
        return cls(data_dir / "keys" / "recording")

    def key_ids(self) -> list[str]:
        """Every KEK id on disk, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob("kek-*.key"):
            match = _KEY_ID.match(path.stem)
            if match:
                found.append((int(match.group(1)), path.stem))
        return [key_id for _, key_id in sorted(found)]

    def current_key_id(self) -> str:
        ids = self.key_ids()
        return ids[-1] if ids else self.rotate()

    def rotate(self) -> str:
        """Add a new KEK, which wraps every new data key from now on; returns its id."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        ids = self.key_ids()
        number = int(ids[-1].removeprefix("kek-")) + 1 if ids else 1
        key_id = f"kek-{number:04d}"
        path = self._path(key_id)
        # O_EXCL: two processes rotating at once cannot overwrite each other's key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEK_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        logger.info("recording key ring: new key-encryption key %s", key_id)
        return key_id

    def wrap(self, data_key: bytes, recording_id: str) -> WrappedKey:
        key_id = self.current_key_id()
        return wrap_with(self._read(key_id), key_id, data_key, recording_id)

    def unwrap(self, wrapped: WrappedKey, recording_id: str) -> bytes:
        return unwrap_with(self._read(wrapped.key_id), wrapped, recording_id)

    def _path(self, key_id: str) -> Path:
        if not _KEY_ID.match(key_id):
            raise KeyUnavailable(f"not a key-encryption key id: {key_id!r}")
        return self.directory / f"{key_id}.key"

    def _read(self, key_id: str) -> bytes:
        path = self._path(key_id)
        try:
            kek = path.read_bytes()
        except FileNotFoundError:
            raise KeyUnavailable(f"key-encryption key {key_id} is not in the key ring") from None
        if len(kek) != KEK_BYTES:
            raise KeyUnavailable(f"key-encryption key {key_id} is damaged ({len(kek)} bytes)")
        return kek


def rewrap(
    service: KeyEncryptionService,
    wrapped: WrappedKey,
    recording_id: str,
    *,
    source: KeyEncryptionService | None = None,
) -> WrappedKey:
    """The same data key wrapped by ``service``'s current KEK (unchanged if it already is).

    ``source`` unwraps when the key moves between services (the file key ring to a KMS).
    """
    if source is None and wrapped.key_id == service.current_key_id():
        return wrapped
    data_key = (source or service).unwrap(wrapped, recording_id)
    return service.wrap(data_key, recording_id)
