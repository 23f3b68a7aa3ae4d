"""Where the bearer token may go: only the API's origin, decided by the parse the sender connects with.

Every request here goes to stand-ins on 127.0.0.1. A second stand-in plays the other host (or a
proxy): it must never see a request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List
from urllib.parse import urlsplit

import pytest

from asc_token.urls import base_url_problem, origin, proxy_for, target_problem
from asc_token.urls import base_url_problem as api_url_problem
from devtools.standin import AppStoreConnectStandIn

from .conftest import Proxy
from .runner import ISSUER_ID, PROCESS, KeyMaterial, invoke, one_error, settings, standin_running


@pytest.fixture
def other() -> Iterator[AppStoreConnectStandIn]:
    """Another host on this machine, which must never receive anything."""
    with standin_running() as standin:
        yield standin


def port(standin: AppStoreConnectStandIn) -> int:
    return int(urlsplit(standin.url).port or 0)


def sent_to(standin: AppStoreConnectStandIn) -> List[str]:
    return [path for path, _ in standin.requests]


# --- PATH ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{other}\\@127.0.0.1:{api}/v1/apps",  # urlsplit: host api; urllib3: host other
        "http://127.0.0.1:{other}\\\\@127.0.0.1:{api}/v1/apps",
        "http://127.0.0.1:{api}\\@127.0.0.1:{other}/v1/apps",
        "http://user:pw@127.0.0.1:{api}/v1/apps",  # would be sent with Basic auth instead of the token
        "http://user@127.0.0.1:{api}/v1/apps",
        "http://127.0.0.1:{other}/v1/apps",
        "http://localhost:{other}/v1/apps",
    ],
)
def test_path_to_another_host_is_refused_before_anything_is_sent(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, other: AppStoreConnectStandIn, template: str
) -> None:
    path = template.format(api=port(api), other=port(other))
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [path])
    assert called.returncode == 2 and called.stdout_bytes == b"", called.log_lines
    assert sent_to(api) == [] and sent_to(other) == []
    assert any("refused before anything is sent" in line for line in called.log_lines)


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{other}\\@127.0.0.1:{api}/v1/apps?cursor=2",
        "http://user:pw@127.0.0.1:{api}/v1/apps?cursor=2",
        "//127.0.0.1:{other}/v1/apps?cursor=2",  # a network-path reference
        "http://127.0.0.1:{other}/v1/apps?cursor=2",
    ],
)
def test_links_next_to_another_host_stops_the_export(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, other: AppStoreConnectStandIn, template: str
) -> None:
    api.app_count = 3
    api.next_link_override = template.format(api=port(api), other=port(other))
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps?limit=1", "--paginate"])
    assert called.returncode == 1 and called.stdout_bytes == b"", called.log_lines
    assert sent_to(other) == [] and len(sent_to(api)) == 1
    assert any("links.next" in line for line in called.log_lines)


@pytest.mark.parametrize("form", ["path-relative", "query-relative", "absolute-path", "absolute"])
def test_relative_links_next_are_resolved_against_the_page(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, form: str
) -> None:
    api.app_count, api.next_link_form = 5, form
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps?limit=2", "--paginate"])
    assert called.returncode == 0, called.log_lines
    assert len(called.json()["data"]) == 5 and len(sent_to(api)) == 3


# --- the parse itself ----------------------------------------------------------------------------

API = "https://api.appstoreconnect.apple.com"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"{API}/v1/apps", ""),
        ("HTTPS://API.APPSTORECONNECT.APPLE.COM:443/v1/apps", ""),
        ("https://api.appstoreconnect.apple.com\\@evil.example/v1/apps", "backslashes"),
        ("https://evil.example\\@api.appstoreconnect.apple.com/v1/apps", "backslashes"),
        ("https://user:pw@api.appstoreconnect.apple.com/v1/apps", "user name or password"),
        ("https://api.appstoreconnect.apple.com.evil.example/v1/apps", "not on the API host"),
        ("https://api.appstoreconnect.apple.com:8443/v1/apps", "not on the API host"),
        ("http://api.appstoreconnect.apple.com/v1/apps", "not on the API host"),
        ("https://[::1/v1/apps", "not on the API host"),
    ],
)
def test_target_problem(url: str, problem: str) -> None:
    found = target_problem(url, API)
    assert (problem in found) if problem else found == ""


def test_origin_is_the_one_urllib3_connects_to() -> None:
    # urlsplit reads this host as b; requests and urllib3 connect to a (the attack's whole point).
    assert origin("http://127.0.0.1:1\\@127.0.0.1:2/") is None  # a backslash is never a usable URL
    assert origin("https://EXAMPLE.com/x") == ("https", "example.com", 443)
    assert origin("http://[::1]:8080/") == ("http", "[::1]", 8080)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://api.example.com", ""),
        ("https://api.example.com/prefix", ""),
        ("http://127.0.0.1:8080", ""),
        ("http://[::1]:8080", ""),
        ("http://localhost", ""),
        ("http://api.example.com", "plain http://"),
        ("ftp://api.example.com", "https://"),
        ("https://api.example.com/?q=1", "without ?query"),
        ("https://u:p@api.example.com", "user name or password"),
        ("https://a\\b.example", "backslashes"),
        ("https://a..b", "valid host name"),
    ],
)
def test_base_url_problem(url: str, problem: str) -> None:
    found = base_url_problem(url)
    assert (problem in found) if problem else found == ""


# --- the environment does not redirect the token -------------------------------------------------


def test_http_proxy_never_sees_a_loopback_request(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, other: AppStoreConnectStandIn
) -> None:
    """requests' own environment handling would send a loopback http:// request, token included, to the proxy."""
    proxy = f"http://127.0.0.1:{port(other)}"
    env = {"http_proxy": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "ALL_PROXY": proxy}
    run = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps"], mode=PROCESS, env=env)
    assert run.returncode == 0, run.stderr
    assert sent_to(other) == [] and sent_to(api) == ["/v1/apps"]


def test_netrc_never_replaces_the_bearer_token(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password secret\n")
    netrc.chmod(0o600)
    env = {"NETRC": str(netrc), "HOME": str(tmp_path)}
    for args in (["api", "/v1/apps"], ["--print"]):
        run = invoke("asc-token", tmp_path, settings(key, standin=api), args, mode=PROCESS, env=env)
        assert run.returncode == 0, run.stderr
    seen = api.tokens_seen()
    assert len(seen) == 2 and all(key.decode(token)["iss"] == ISSUER_ID for token in seen)


@pytest.mark.parametrize(
    ("url", "env", "proxy"),
    [
        (f"{API}/v1/apps", {"HTTPS_PROXY": "http://proxy:3128"}, "http://proxy:3128"),
        (f"{API}/v1/apps", {"https_proxy": "http://proxy:3128"}, "http://proxy:3128"),
        (f"{API}/v1/apps", {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".apple.com"}, None),
        (f"{API}/v1/apps", {"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "api.appstoreconnect.apple.com"}, None),
        (f"{API}/v1/apps", {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "*"}, None),
        (
            f"{API}/v1/apps",
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "example.com,notapple.com"},
            "http://proxy:3128",
        ),
        (f"{API}/v1/apps", {"HTTP_PROXY": "http://proxy:3128"}, None),  # for http:// only, which goes nowhere
        ("https://127.0.0.1:8443/v1/apps", {"HTTPS_PROXY": "http://proxy:3128"}, None),
        ("http://127.0.0.1:8080/v1/apps", {"HTTPS_PROXY": "http://proxy:3128", "HTTP_PROXY": "http://p:1"}, None),
    ],
)
def test_proxy_for(url: str, env: Dict[str, str], proxy: str) -> None:
    assert proxy_for(url, env) == proxy


# --- plain http:// only to this machine ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://api.appstoreconnect.apple.com", ""),
        ("http://127.0.0.1:8080", ""),
        ("http://127.1.2.3", ""),
        ("http://localhost:9", ""),
        ("http://[::1]:9", ""),
        ("http://api.appstoreconnect.apple.com", "plain http://"),
        ("http://10.0.0.1", "plain http://"),
        ("http://localhost.example", "plain http://"),
        ("http://127.0.0.1.nip.io", "plain http://"),
        ("https://user:secret@api.example", "user name or password"),
        ("https://user@api.example", "user name or password"),
        ("https://api.example/\r\nX-Injected: 1", "control characters"),
        ("https://api.example/\x00", "control characters"),
        ("https://api.example /v1", "spaces"),
        ("https:///v1", "no host"),
        ("http://", "no host"),
        ("https://api.example:port", "not a valid URL"),
        ("ftp://api.example", "must start with https://"),
        ("https://api.example/?x=1", "without ?query"),
        # Hosts the HTTP stack cannot use: refused as a setting, never an "Internal error".
        ("https://" + "a" * 64 + ".example", "valid host name"),
        ("https://a..b", "valid host name"),
        ("https://\\evil.invalid", "backslashes"),
    ],
)
def test_api_url_problem(url: str, problem: str) -> None:
    found = api_url_problem(url)
    assert (problem in found and found) if problem else found == "", found


def test_http_api_url_is_refused_before_any_request(tmp_path: Path, key: KeyMaterial) -> None:
    result = invoke("action", tmp_path, settings(key, verify="true", api_url="http://api.example"))
    assert result.returncode == 2
    message = one_error(result)
    assert "`api-url`" in message and "plain http://" in message
    assert "token" not in result.outputs


@pytest.mark.parametrize("name", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_the_ca_bundle_settings_users_are_told_to_use_still_apply(tmp_path: Path, name: str) -> None:
    """Behind an intercepting proxy the runner's CA bundle is honoured, though requests reads no environment."""
    from asc_token.transport import default_session

    bundle = tmp_path / "corporate-ca.pem"
    bundle.write_text("")
    session: Any = default_session({name: str(bundle)})
    unset: Any = default_session({})
    assert session.verify == str(bundle) and session.trust_env is False and unset.verify is True


def test_a_socks_proxy_is_a_setting_to_fix(tmp_path: Path, key: KeyMaterial) -> None:
    named = settings(key, verify=None, api_url="https://api.appstoreconnect.apple.com")
    called = invoke("asc-token api", tmp_path, named, ["/v1/apps"], env={"HTTPS_PROXY": "socks5://127.0.0.1:1"})
    logged = called.log_lines
    assert called.returncode == 2, logged
    assert any("HTTPS_PROXY must be an http:// or https:// proxy URL" in line for line in logged), logged


@pytest.mark.parametrize(
    "header", ["Content-Length: 5", "Transfer-Encoding: chunked", "Connection: close", "Expect: 100-continue"]
)
def test_headers_that_frame_the_message_are_refused(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, header: str
) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps", "-H", header])
    assert called.returncode == 2 and sent_to(api) == [] and "frames the message itself" in called.log_lines[-1]


@pytest.mark.parametrize("args", [["api", "/v1/apps"], ["--print", "--verify"]])
def test_a_proxy_that_wants_credentials_is_said_once_not_retried_as_a_reset(
    tmp_path: Path, key: KeyMaterial, proxy_wanting_credentials: Proxy, args: List[str]
) -> None:
    named = settings(key, verify=None, api_url="https://api.example.invalid")
    run = invoke("asc-token", tmp_path, named, args, env={"HTTPS_PROXY": proxy_wanting_credentials.url})
    assert run.returncode == 1 and run.stdout == "", run.stderr
    assert proxy_wanting_credentials.connects == [b"CONNECT api.example.invalid:443 HTTP/1.0"]
    assert "407 Proxy Authentication Required" in run.stderr and "reset" not in run.stderr
    assert "USER:PASSWORD@" in run.stderr and "HTTPS_PROXY" in run.stderr
