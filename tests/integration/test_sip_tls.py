"""SIP over TLS on a real node: the generated certificate, its logged fingerprint, and OPTIONS."""

from __future__ import annotations

import re
import secrets
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from node import LOOPBACK, free_port, start_node

PROVISIONING = """
teams: [{name: support}]
users:
  - {username: alice, role: operator, team: support, extension: "1001",
     sip_password: alice-sip-secret-1}
"""


def _options_over_tls(port: int, cafile: Path) -> str:
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = False  # the generated certificate names localhost and 127.0.0.1
    branch = "z9hG4bK" + secrets.token_hex(8)
    with (
        socket.create_connection((LOOPBACK, port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        local = tls.getsockname()[1]
        tls.sendall(
            (
                f"OPTIONS sips:{LOOPBACK}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/TLS {LOOPBACK}:{local};branch={branch};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"To: <sips:{LOOPBACK}:{port}>\r\n"
                f"From: <sips:probe@{LOOPBACK}>;tag=probe\r\n"
                f"Call-ID: {secrets.token_hex(8)}@probe\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = tls.recv(4096)
            if not chunk:
                break
            response += chunk
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    return response.split(b"\r\n", 1)[0].decode()


@pytest.mark.integration
def test_a_node_with_a_tls_port_answers_over_tls_with_its_generated_certificate(
    tmp_path: Path,
) -> None:
    tls_port = free_port()
    node = start_node(tmp_path, PROVISIONING, extra_env={"CALLWARDEN_SIP_TLS_PORT": str(tls_port)})
    try:
        certificate_path = node.data_dir / "tls" / "node-certificate.pem"
        assert _options_over_tls(tls_port, certificate_path) == "SIP/2.0 200 OK"
        certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
        printed = re.search(r"SHA-256 fingerprint ([0-9A-F:]{95})", node.log())
        assert printed is not None, node.log()
        assert printed[1].replace(":", "") == certificate.fingerprint(hashes.SHA256()).hex().upper()
    finally:
        assert node.stop() == 0, node.log()
