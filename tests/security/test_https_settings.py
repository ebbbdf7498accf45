"""HTTPS by default for the web application, plain HTTP only when asked for on loopback: the
settings, the command line's refusal, and which certificate the node serves."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from callwarden.app import _tls_identity
from callwarden.cli import main
from callwarden.config import ConfigError, Settings, load_settings
from callwarden.security.certificates import GENERATED_CERTIFICATE
from callwarden.web.headers import SecurityHeadersMiddleware


@pytest.mark.parametrize("bind", ["0.0.0.0", "192.0.2.10", "::", "2001:db8::1"])
def test_plain_http_on_a_non_loopback_bind_is_refused(bind: str) -> None:
    with pytest.raises(ConfigError, match=f"allowed only with a loopback bind .* not {bind};"):
        load_settings(overrides={"bind": bind, "http_plaintext": True}, environ={})


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "::1"])
def test_plain_http_on_loopback_is_allowed_when_asked_for(bind: str) -> None:
    environ = {"CALLWARDEN_HTTP_PLAINTEXT": "true", "CALLWARDEN_BIND": bind}
    assert load_settings(environ=environ).http_plaintext
    assert not load_settings(environ={"CALLWARDEN_BIND": bind}).http_plaintext


def test_the_command_refuses_to_start_plain_http_on_a_public_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--data-dir", str(tmp_path), "--bind", "0.0.0.0", "--http-plaintext"])
    assert code == 2
    error = capsys.readouterr().err
    assert "http_plaintext serves the web application unencrypted" in error
    assert not (tmp_path / "tls").exists() and not (tmp_path / "callwarden.db").exists()


def test_https_uses_the_generated_certificate_of_the_data_directory(tmp_path: Path) -> None:
    identity = _tls_identity(Settings(data_dir=tmp_path))
    assert identity is not None and identity.generated
    assert identity.certificate_path == tmp_path / "tls" / GENERATED_CERTIFICATE
    # SIP over TLS and HTTPS share it, and a later start reuses it
    again = _tls_identity(Settings(data_dir=tmp_path, sip_tls_port=5061, http_plaintext=True))
    assert again is not None and again.fingerprint_sha256 == identity.fingerprint_sha256


def test_no_certificate_when_nothing_listens_with_tls(tmp_path: Path) -> None:
    assert _tls_identity(Settings(data_dir=tmp_path, http_plaintext=True)) is None
    assert not (tmp_path / "tls").exists()


async def _answer(base_url: str) -> httpx.Headers:
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    app.add_middleware(SecurityHeadersMiddleware)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        return (await client.get("/")).headers


async def test_hsts_is_sent_over_https_only() -> None:
    assert (await _answer("https://cc.example"))["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in await _answer("http://127.0.0.1")  # RFC 6797 7.2
