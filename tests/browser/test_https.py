"""The pages over HTTPS in Debian's Chromium, as a node serves them: the certificate is trusted
by its pinned key only (another self-signed certificate is refused), answers carry HSTS, the
session cookie is Secure, and the TLS is what the node's context allows (TLS 1.2 minimum,
forward-secret suites).
"""

from __future__ import annotations

import socket
import ssl
import urllib.request
import warnings
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from browser.conftest import NewPage
from browser.site import Site, certificate, serve
from browser.test_pages import WAIT_MS, sign_in_with_password
from tls_pin import client_context

HSTS = "max-age=31536000"
# An alert from the server, or the server hanging up mid-handshake (not the client refusing to
# send what it was told to: that would be NO_PROTOCOLS_AVAILABLE or NO_CIPHERS_AVAILABLE).
REFUSED_BY_THE_SERVER = "ALERT_PROTOCOL_VERSION|ALERT_HANDSHAKE_FAILURE|UNEXPECTED_EOF"


def test_pages_come_over_https_with_hsts_and_a_secure_session_cookie(
    site: Site, new_page: NewPage
) -> None:
    assert site.base_url.startswith("https://127.0.0.1:")
    page = new_page()
    response = page.goto(site.url("/sign-in"))
    assert response is not None and response.ok
    assert response.headers["strict-transport-security"] == HSTS
    details = response.security_details()
    assert details is not None and details.get("protocol") in ("TLS 1.3", "TLS 1.2"), details
    sign_in_with_password(page, site, "operator", "/desk")
    expect(page).to_have_url(site.url("/desk"), timeout=WAIT_MS)
    expect(page.locator("body")).to_have_attribute("data-live", "connected", timeout=WAIT_MS)
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    session = cookies["__Host-callwarden_session"]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"
    # the page's own API calls get HSTS too
    status, hsts = page.evaluate(
        """async () => {
            const answer = await fetch("/api/v1/agents/me");
            return [answer.status, answer.headers.get("strict-transport-security")];
        }"""
    )
    assert (status, hsts) == (200, HSTS)


def test_another_self_signed_certificate_is_refused(tmp_path: Path, new_page: NewPage) -> None:
    """The browser trusts the pinned key, not any certificate: a site with a certificate of
    its own fails to load."""
    other = certificate(tmp_path / "other-tls")
    with serve(tmp_path, other) as impostor:
        page = new_page()
        with pytest.raises(PlaywrightError, match="ERR_CERT"):
            page.goto(impostor.url("/sign-in"))


def _handshake(port: int, context: ssl.SSLContext) -> tuple[str | None, str | None]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        cipher = tls.cipher()
        return tls.version(), None if cipher is None else cipher[0]


def test_tls_is_1_2_or_later_with_forward_secret_suites_only(site: Site) -> None:
    port = int(site.base_url.rsplit(":", 1)[1])
    certificate_path = site.certificate
    old = client_context(certificate_path)
    with warnings.catch_warnings():  # a TLS 1.1 client, on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError, match=REFUSED_BY_THE_SERVER):
        _handshake(port, old)
    # TLS 1.2 offering only suites without forward secrecy or without AEAD: no common suite
    weak = client_context(certificate_path)
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA:AES128-SHA")
    with pytest.raises(ssl.SSLError, match=REFUSED_BY_THE_SERVER):
        _handshake(port, weak)
    tls12 = client_context(certificate_path)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher = _handshake(port, tls12)
    assert version == "TLSv1.2" and cipher is not None and cipher.startswith("ECDHE-"), cipher
    assert _handshake(port, client_context(certificate_path))[0] == "TLSv1.3"
    # and a client verifying against the certificate (no checks turned off) gets HSTS
    request = urllib.request.Request(site.url("/healthz"))
    with urllib.request.urlopen(request, context=client_context(certificate_path)) as answer:
        assert answer.headers["Strict-Transport-Security"] == HSTS
