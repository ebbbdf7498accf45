"""The node's TLS identity: generated once and reused, configured pairs checked, strong TLS only."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from callwarden.config import ConfigError, load_settings
from callwarden.security.certificates import (
    GENERATED_CERTIFICATE,
    GENERATED_PRIVATE_KEY,
    CertificateError,
    TlsIdentity,
    load_or_create,
    server_context,
)

NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)


def test_first_start_generates_a_self_signed_pair_with_owner_only_key(tmp_path: Path) -> None:
    identity = load_or_create(tmp_path / "tls", hostnames=("localhost", "127.0.0.1"), now=NOW)
    assert identity.generated
    assert identity.certificate_path == tmp_path / "tls" / GENERATED_CERTIFICATE
    assert stat.S_IMODE(identity.private_key_path.stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate(identity.certificate_path.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    digest = certificate.fingerprint(hashes.SHA256()).hex().upper()
    assert identity.fingerprint_sha256.replace(":", "") == digest
    assert len(identity.fingerprint_sha256.split(":")) == 32


def test_later_starts_reuse_the_generated_certificate(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, now=NOW)
    second = load_or_create(tmp_path, now=NOW + datetime.timedelta(days=1))
    assert second == first


def test_a_half_written_pair_is_made_again(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, now=NOW)
    first.certificate_path.unlink()
    again = load_or_create(tmp_path, now=NOW)
    assert again.certificate_path.exists() and again.private_key_path.exists()
    assert again.fingerprint_sha256 != first.fingerprint_sha256


def _pair(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    certificate_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate_path, key_path


def test_a_configured_pair_is_used_as_is(tmp_path: Path) -> None:
    certificate, key = _pair(tmp_path, "cc.example.com")
    identity = load_or_create(tmp_path / "tls", certificate=certificate, private_key=key)
    assert identity == TlsIdentity(certificate, key, identity.fingerprint_sha256, generated=False)
    assert not (tmp_path / "tls" / GENERATED_PRIVATE_KEY).exists()


def test_a_key_of_another_certificate_is_refused_at_start(tmp_path: Path) -> None:
    certificate, _ = _pair(tmp_path, "one")
    _, other_key = _pair(tmp_path, "two")
    with pytest.raises(CertificateError, match="does not belong to tls_certificate"):
        load_or_create(tmp_path, certificate=certificate, private_key=other_key)


@pytest.mark.parametrize(
    ("certificate_text", "message"),
    [(None, "must be set together"), ("not a certificate", "tls_certificate")],
)
def test_bad_configuration_is_named(
    tmp_path: Path, certificate_text: str | None, message: str
) -> None:
    _, key = _pair(tmp_path, "one")
    certificate = None
    if certificate_text is not None:
        certificate = tmp_path / "bad.crt"
        certificate.write_text(certificate_text)
    with pytest.raises(CertificateError, match=message):
        load_or_create(tmp_path, certificate=certificate, private_key=key)


async def _handshake(identity: TlsIdentity, client: ssl.SSLContext) -> str | None:
    """The negotiated TLS version, or None when the server refused the handshake."""

    async def ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(
        ignore, "127.0.0.1", 0, ssl=server_context(identity), ssl_handshake_timeout=5
    )
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    except (ssl.SSLError, ConnectionError):
        return None
    finally:
        server.close()
    version = writer.get_extra_info("ssl_object").version()
    writer.close()
    return str(version)


def _client(identity: TlsIdentity) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=identity.certificate_path)
    context.check_hostname = False
    return context


async def test_tls_13_is_preferred(tmp_path: Path) -> None:
    identity = load_or_create(tmp_path, now=datetime.datetime.now(datetime.UTC))
    assert await _handshake(identity, _client(identity)) == "TLSv1.3"


async def test_tls_12_is_accepted_with_forward_secret_aead_suites_only(tmp_path: Path) -> None:
    identity = load_or_create(tmp_path, now=datetime.datetime.now(datetime.UTC))
    client = _client(identity)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    assert await _handshake(identity, client) == "TLSv1.2"
    cbc = _client(identity)
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA")  # not AEAD
    assert await _handshake(identity, cbc) is None


def test_the_server_offers_no_suite_without_forward_secrecy_or_below_tls_12(
    tmp_path: Path,
) -> None:
    context = server_context(load_or_create(tmp_path, now=NOW))
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    for cipher in context.get_ciphers():
        assert cipher["protocol"] == "TLSv1.3" or cipher["kea"] == "kx-ecdhe", cipher
        assert cipher["aead"], cipher


def test_settings_take_the_certificate_and_key_together_only() -> None:
    settings = load_settings(
        environ={
            "CALLWARDEN_SIP_TLS_PORT": "5061",
            "CALLWARDEN_TLS_CERTIFICATE": "/etc/callwarden/cert.pem",
            "CALLWARDEN_TLS_PRIVATE_KEY": "/etc/callwarden/key.pem",
        }
    )
    assert settings.sip_tls_port == 5061
    assert settings.tls_certificate == Path("/etc/callwarden/cert.pem")
    assert load_settings(environ={"CALLWARDEN_TLS_CERTIFICATE": ""}).tls_certificate is None
    with pytest.raises(ConfigError, match="must be set together"):
        load_settings(environ={"CALLWARDEN_TLS_CERTIFICATE": "/etc/callwarden/cert.pem"})
