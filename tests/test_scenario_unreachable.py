"""App Store Connect out of reach, through the action: a DNS failure, a TLS failure and a refused
connection each give one error that says which and names the URL (the token is not handed on)."""

from __future__ import annotations

from pathlib import Path

from devtools.standin import AppStoreConnectStandIn

from .runner import KeyMaterial, assert_no_secrets, invoke, one_error, settings


def _unreachable(tmp_path: Path, key: KeyMaterial, url: str) -> str:
    result = invoke("action", tmp_path, settings(key, verify=None, api_url=url))
    assert result.returncode == 1
    message = one_error(result)
    assert f"Could not reach App Store Connect at {url}/v1/apps?limit=1" in message
    assert "token" not in result.outputs
    assert "`verify: false`" in result.stdout  # how to skip the check on a runner without access
    assert_no_secrets(result, key.secret_fragments())
    return message


def test_dns_failure(tmp_path: Path, key: KeyMaterial) -> None:
    """In this process, whose session never looks up a .invalid name (tests/offline_dns.py)."""
    message = _unreachable(tmp_path, key, "https://api.asc.invalid")
    assert "the host name could not be resolved (DNS)" in message and "`api-url`" in message


def test_tls_failure(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """https:// to a server that speaks plain HTTP: the handshake fails, as behind a broken proxy."""
    message = _unreachable(tmp_path, key, api.url.replace("http://", "https://"))
    assert "the TLS handshake failed" in message and "REQUESTS_CA_BUNDLE" in message


def test_refused_connection(tmp_path: Path, key: KeyMaterial, closed_port: int) -> None:
    message = _unreachable(tmp_path, key, f"http://127.0.0.1:{closed_port}")
    assert "the connection was refused" in message and "`api-url`" in message
