"""Trusting a node's self-signed certificate from tests, by pinning it rather than by turning
certificate checks off.

Python clients verify against the certificate itself (`client_context`: it is its own CA, with
the host name checked). Chromium is told to accept exactly this public key
(`chromium_pin_arguments`: `--ignore-certificate-errors-spki-list` takes base64 SHA-256 hashes
of SubjectPublicKeyInfo, the form of RFC 7469 pins); any other certificate still fails.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def spki_pin(certificate: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate."""
    loaded = x509.load_pem_x509_certificate(certificate.read_bytes())
    spki = loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def chromium_pin_arguments(certificate: Path) -> list[str]:
    return [f"--ignore-certificate-errors-spki-list={spki_pin(certificate)}"]


def client_context(certificate: Path) -> ssl.SSLContext:
    """Verifies the server against `certificate` only, host name included."""
    return ssl.create_default_context(cafile=str(certificate))
