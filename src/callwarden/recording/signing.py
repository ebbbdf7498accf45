"""The node's Ed25519 signing key, for recording manifests.

The private key lives in ``<data_dir>/keys/node-signing.key`` (PKCS#8 PEM, created on first use
with mode 0600); :meth:`NodeSigningKey.public_key_pem` exports the public half (SubjectPublicKeyInfo
PEM), which a third party uses with ``openssl pkeyutl -verify -pubin -rawin`` or python
``cryptography`` to check a manifest. Signatures are raw 64-byte Ed25519 signatures (RFC 8032).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

logger = logging.getLogger(__name__)

SIGNATURE_BYTES = 64


class NodeSigningKey:
    """An Ed25519 key pair that signs manifests."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key

    @classmethod
    def generate(cls) -> NodeSigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> NodeSigningKey:
        return cls.load_or_create(data_dir / "keys" / "node-signing.key")

    @classmethod
    def load_or_create(cls, path: Path) -> NodeSigningKey:
        """Load the key at ``path``, creating it (0600, directory 0700) if it does not exist."""
        try:
            return cls(_load(path.read_bytes(), path))
        except FileNotFoundError:
            pass
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return cls(_load(path.read_bytes(), path))
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        logger.info("created the node signing key %s", path)
        return cls(key)

    def sign(self, data: bytes) -> bytes:
        return self._private_key.sign(data)

    def public_key(self) -> Ed25519PublicKey:
        return self._private_key.public_key()

    def public_key_pem(self) -> bytes:
        return public_key_pem(self.public_key())


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Parse a PEM public key; ``ValueError`` if it is not an Ed25519 key."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def signature_valid(public_key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _load(pem: bytes, path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key
