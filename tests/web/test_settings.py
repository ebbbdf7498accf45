"""The node setting the web layer reads: `allowed_origins`."""

from __future__ import annotations

import pytest

from callwarden.config import ConfigError, load_settings


def test_allowed_origins_come_from_a_list_or_a_comma_separated_variable() -> None:
    from_file = load_settings(
        overrides={"allowed_origins": ["https://cc.example.com", "http://127.0.0.1:8080"]},
        environ={},
    )
    assert from_file.allowed_origins == ("https://cc.example.com", "http://127.0.0.1:8080")
    from_environment = load_settings(
        environ={"CALLWARDEN_ALLOWED_ORIGINS": "https://a.example, https://b.example:8443"}
    )
    assert from_environment.allowed_origins == ("https://a.example", "https://b.example:8443")
    assert load_settings(environ={}).allowed_origins == ()


@pytest.mark.parametrize(
    "origin", ["cc.example.com", "https://cc.example.com/", "ftp://cc.example.com", "https://"]
)
def test_an_origin_is_a_scheme_and_a_host_only(origin: str) -> None:
    with pytest.raises(ConfigError, match="allowed_origins"):
        load_settings(overrides={"allowed_origins": [origin]}, environ={})
