"""The node's TLS identity: a configured certificate, or a self-signed one made on first start.

SIP over TLS (RFC 3261 26.2, RFC 5630) listens only with a certificate. An operator configures
``tls_certificate`` and ``tls_private_key`` (PEM files, for example from their own CA or ACME);
with neither configured, :func:`load_or_create` makes an ECDSA P-256 self-signed certificate in
``<data_dir>/tls/`` once and reuses it afterwards, so a first start works and an administrator
can pin the printed SHA-256 fingerprint in their phones.

:func:`server_context` allows TLS 1.2 and 1.3 only, and on TLS 1.2 only forward-secret AEAD
suites (ECDHE with AES-GCM or ChaCha20-Poly1305); TLS 1.3 suites are all forward-secret.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "FORWARD_SECRET_TLS12_CIPHERS",
    "CertificateError",
    "TlsIdentity",
    "fingerprint",
    "load_or_create",
    "server_context",
]

logger = logging.getLogger(__name__)

GENERATED_CERTIFICATE = "node-certificate.pem"
GENERATED_PRIVATE_KEY = "node-private-key.pem"
_VALIDITY = datetime.timedelta(days=825)

FORWARD_SECRET_TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    )
)


class CertificateError(Exception):
    """The configured certificate or key cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class TlsIdentity:
    """Where the node's certificate and key are, and the certificate's fingerprint."""

    certificate_path: Path
    private_key_path: Path
    fingerprint_sha256: str
    """Colon-separated upper-case hex of SHA-256 over the DER certificate (as browsers show)."""
    generated: bool
    """True when callwarden made this certificate itself (self-signed)."""


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate, as ``AB:CD:...``."""
    return ":".join(f"{byte:02X}" for byte in certificate.fingerprint(hashes.SHA256()))


def load_or_create(
    directory: Path,
    *,
    certificate: Path | None = None,
    private_key: Path | None = None,
    hostnames: Sequence[str] = ("localhost",),
    now: datetime.datetime | None = None,
) -> TlsIdentity:
    """The configured certificate and key, or the generated one in ``directory``.

    Both or neither of ``certificate`` and ``private_key`` must be given. A configured pair is
    checked (the key matches the certificate) so a mistake fails at start-up, not at the first
    phone's handshake.
    """
    if (certificate is None) != (private_key is None):
        raise CertificateError("tls_certificate and tls_private_key must be set together")
    if certificate is not None and private_key is not None:
        loaded = _check_pair(certificate, private_key)
        return TlsIdentity(certificate, private_key, fingerprint(loaded), generated=False)
    certificate_path = directory / GENERATED_CERTIFICATE
    key_path = directory / GENERATED_PRIVATE_KEY
    if certificate_path.exists() and key_path.exists():
        loaded = _check_pair(certificate_path, key_path)
        return TlsIdentity(certificate_path, key_path, fingerprint(loaded), generated=True)
    # A start interrupted between the two writes leaves one file: make both again.
    certificate_path.unlink(missing_ok=True)
    key_path.unlink(missing_ok=True)
    made = _generate(
        certificate_path, key_path, hostnames, now or datetime.datetime.now(datetime.UTC)
    )
    identity = TlsIdentity(certificate_path, key_path, fingerprint(made), generated=True)
    logger.warning(
        "generated a self-signed TLS certificate %s (SHA-256 fingerprint %s); configure "
        "tls_certificate and tls_private_key for production",
        certificate_path,
        identity.fingerprint_sha256,
    )
    return identity


def server_context(identity: TlsIdentity) -> ssl.SSLContext:
    """A server-side context: TLS 1.2 minimum, forward-secret AEAD suites only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(FORWARD_SECRET_TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(identity.certificate_path, identity.private_key_path)
    except (OSError, ssl.SSLError) as error:
        raise CertificateError(f"{identity.certificate_path}: {error}") from error
    return context


def _check_pair(certificate_path: Path, key_path: Path) -> x509.Certificate:
    try:
        certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
    except (OSError, ValueError) as error:
        raise CertificateError(f"tls_certificate {certificate_path}: {error}") from error
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise CertificateError(f"tls_private_key {key_path}: {error}") from error
    public = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if (
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        != public
    ):
        raise CertificateError(
            f"tls_private_key {key_path} does not belong to tls_certificate {certificate_path}"
        )
    return certificate


def _generate(
    certificate_path: Path,
    key_path: Path,
    hostnames: Sequence[str],
    now: datetime.datetime,
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else "callwarden")]
    )
    alternatives: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alternatives.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only (0600), failing if it already exists."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
