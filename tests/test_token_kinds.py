"""Every token Apple accepts: six-month scoped GET tokens, and the Enterprise Program API.

The stand-in states Apple's lifetime rule itself (devtools/standin.py); these tests hold the
product's rule (asc_token/lifetimes.py) against it, and every token is decoded with the public key.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import jwt
import pytest

from asc_token.apis import APP_STORE_CONNECT, ENTERPRISE
from asc_token.errors import InputError
from asc_token.inputs import CliInputs, GitHubInputs
from asc_token.lifetimes import lifetime_refusal, long_lived_resource
from asc_token.records import Settings, iso8601
from asc_token.report import markdown_own
from asc_token.settings import parse_lifetime, read_settings
from devtools.standin import APPLE_ENTERPRISE_AUDIENCE, AppStoreConnectStandIn

from .runner import (
    ISSUER_ID,
    KEY_ID,
    PROCESS,
    KeyMaterial,
    OnFds,
    assert_no_secrets,
    assert_token_masked_first,
    invoke,
    needs_cli,
    one_error,
    settings,
    spelled_for,
    standin_running,
)

SIX_MONTHS = 15_552_000
ENTERPRISE_AUDIENCE = "apple-developer-enterprise-v1"
WARNING = "store it as a secret"


def call(api: AppStoreConnectStandIn, path: str, token: str) -> int:
    """One GET to the stand-in with ``token``, as a dashboard would make it; the status."""
    request = urllib.request.Request(api.url + path, headers={"Authorization": f"Bearer {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never a proxy
    try:
        with opener.open(request, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def claims_of(key: KeyMaterial, token: str, audience: str = APP_STORE_CONNECT.audience) -> Dict[str, object]:
    return dict(jwt.decode(token, key.key.public_key(), algorithms=["ES256"], audience=audience))


def lifetime_of(claims: Dict[str, object]) -> int:
    exp, iat = claims["exp"], claims["iat"]
    assert isinstance(exp, int) and isinstance(iat, int)
    return exp - iat


# --- six-month tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("lifetime", ["15552000", "180d"])
def test_a_180_day_token_for_xcode_cloud(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, lifetime: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """In this process, read at the file descriptors (test_an_enterprise_key starts entrypoint.py)."""
    named = settings(key, standin=api, expires_in=lifetime, scope="GET /v1/ciProducts", write_key_files="true")
    result = invoke("action", tmp_path, named, mode=OnFds(capfd))
    assert result.returncode == 0, result.log
    token = result.outputs["token"]
    claims = claims_of(key, token)
    assert lifetime_of(claims) == SIX_MONTHS
    assert claims["scope"] == ["GET /v1/ciProducts"]
    assert result.outputs["expires-at"] == iso8601(int(str(claims["exp"])))
    # Apple's rule, as the stand-in states it: accepted for the request it is scoped to, nothing else.
    assert call(api, "/v1/ciProducts", token) == 200
    assert call(api, "/v1/apps?limit=1", token) == 401
    # Verification went with its own short unscoped token: the stand-in refuses a long unscoped one.
    assert api.requests[0] == ("/v1/apps?limit=1", "200")
    assert "separate unscoped 120-second token" in result.stdout
    assert "180 days" in result.summary and WARNING in result.summary and "rotate" in result.summary
    fastlane = json.loads(Path(result.outputs["api-key-json-path"]).read_text())
    assert fastlane["duration"] == 1200 and fastlane["in_house"] is False  # fastlane signs its own tokens
    assert_token_masked_first(result)
    assert_no_secrets(result, key.secret_fragments())


def test_20m_gives_1200_seconds_and_no_warning(
    tmp_path: Path, key: KeyMaterial, capfd: pytest.CaptureFixture[str]
) -> None:
    result = invoke("action", tmp_path, settings(key, expires_in="20m"), mode=OnFds(capfd))
    assert result.returncode == 0, result.log
    assert lifetime_of(claims_of(key, result.outputs["token"])) == 1200
    assert WARNING not in result.summary


@pytest.mark.parametrize(
    ("extra", "must_say"),
    [
        ({"expires-in": "3600"}, ["`expires-in` is 3600 seconds (1 h)", "`scope` of GET requests", "1200"]),
        (
            {"expires-in": "3600", "scope": "GET /v1/apps"},
            ["entry 'GET /v1/apps' reads 'apps', which does not", "Build Actions", "Xcode Versions", "Metrics"],
        ),
        (
            {"expires-in": "1h", "scope": "GET /v1/ciProducts\nPOST /v1/ciBuildRuns"},
            ["every `scope` entry is a GET, and 'POST /v1/ciBuildRuns' is not"],
        ),
        ({"expires-in": "181d", "scope": "GET /v1/ciProducts"}, ["181 days", "six months", "180d"]),
        ({"expires-in": "2h", "api": "enterprise"}, ["Enterprise Program API", "`api: enterprise`", "20 minutes"]),
    ],
    ids=["no-scope", "apps", "post", "181d", "enterprise"],
)
def test_lifetimes_apple_refuses(
    tmp_path: Path, key: KeyMaterial, extra: Dict[str, str], must_say: List[str], capfd: pytest.CaptureFixture[str]
) -> None:
    result = invoke("action", tmp_path, {**settings(key), **extra}, mode=OnFds(capfd))
    assert result.returncode == 2 and "token" not in result.outputs, result.log
    message = one_error(result)
    for phrase in must_say:
        assert phrase in message, message
    assert markdown_own(message) in result.summary
    assert_no_secrets(result, key.secret_fragments())


# --- the Enterprise Program API ------------------------------------------------------------------


def test_an_enterprise_key(tmp_path: Path, key: KeyMaterial, enterprise: AppStoreConnectStandIn) -> None:
    named = settings(key, standin=enterprise, api="enterprise", write_key_files="true")
    result = invoke("action", tmp_path, named, mode=PROCESS)
    assert result.returncode == 0, result.log
    token = result.outputs["token"]
    claims = claims_of(key, token, audience=ENTERPRISE_AUDIENCE)
    assert claims["aud"] == ENTERPRISE_AUDIENCE and claims["iss"] == ISSUER_ID
    assert lifetime_of(claims) == 1200
    # Verified with the request the Enterprise Program API serves (it has no /v1/apps).
    assert enterprise.requests == [("/v1/bundleIds?limit=1", "200")]
    assert "app-count" not in result.outputs and result.outputs["rate-limit-remaining"] == "3599"
    assert "credentials accepted" in result.summary and "apps visible" not in result.summary
    assert "can list bundle IDs (Enterprise Program API)" in result.summary  # not "can list apps"
    assert result.summary.startswith("### Enterprise Program API token")
    fastlane = json.loads(Path(result.outputs["api-key-json-path"]).read_text())
    assert fastlane["in_house"] is True and fastlane["issuer_id"] == ISSUER_ID
    assert_token_masked_first(result)
    assert_no_secrets(result, key.secret_fragments())


@needs_cli
def test_the_cli_takes_the_same(
    tmp_path: Path,
    key: KeyMaterial,
    api: AppStoreConnectStandIn,
    enterprise: AppStoreConnectStandIn,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The six-month token from the installed command; the other settings on fds in this process."""
    for run in ("long", "long-env", "flags", "verified", "refused"):
        (tmp_path / run).mkdir()
    long = invoke(
        "asc-token",
        tmp_path / "long",
        settings(key, verify=None),
        ["--expires-in", "180d", "--scope", "GET /v1/ciProducts", "--print", "--api-url", api.url],
        mode=PROCESS,
    )
    assert long.returncode == 0, long.stderr
    assert lifetime_of(claims_of(key, long.stdout.strip())) == SIX_MONTHS
    assert "separate unscoped 120-second token" in long.stderr and api.requests == [("/v1/apps?limit=1", "200")]
    long_env = invoke(
        "asc-token",
        tmp_path / "long-env",
        settings(key, verify=None, expires_in="180d", scope="GET /v1/ciProducts"),
        ["--print", "--no-verify"],
        mode=OnFds(capfd),
    )
    assert long_env.returncode == 0, long_env.stderr
    assert lifetime_of(claims_of(key, long_env.stdout.strip())) == SIX_MONTHS
    flags = invoke(
        "asc-token",
        tmp_path / "flags",
        settings(key, verify=None),
        ["--print", "--no-verify", "--expires-in", "20m", "--api", "enterprise"],
        mode=OnFds(capfd),
    )
    assert flags.returncode == 0, flags.stderr
    assert lifetime_of(claims_of(key, flags.stdout.strip(), audience=ENTERPRISE_AUDIENCE)) == 1200
    verified = invoke(
        "asc-token",
        tmp_path / "verified",
        settings(key, verify=None, api="enterprise"),
        ["--print", "--api-url", enterprise.url],
        mode=OnFds(capfd),
    )
    assert verified.returncode == 0, verified.stderr
    assert "checks passed: apps (3599 requests left this hour)" in verified.stderr
    refused = invoke(
        "asc-token", tmp_path / "refused", settings(key, verify=None, expires_in="2h"), ["--print", "--no-verify"],
        mode=OnFds(capfd),
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stdout == ""
    assert "ASC_EXPIRES_IN is 7200 seconds (2 h)" in refused.stderr and "ASC_SCOPE" in refused.stderr


# --- parsing and the rule, in-process -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("1", 1), ("90", 90), ("90s", 90), ("20m", 1200), ("1200", 1200), ("1200s", 1200),
        ("2h", 7200), ("180d", SIX_MONTHS), ("15552000", SIX_MONTHS), ("0", 0), ("007", 7),
        ("999999999", 999_999_999),
        ("", None), ("²", None), ("٣", None), ("1.5", None), ("-5", None), ("+5", None), ("1e3", None),
        ("0x10", None), ("20M", None), ("20 m", None), ("20min", None), ("2w", None), ("d", None),
        ("1234567890", None), ("1" * 5000, None),
    ],
)  # fmt: skip
def test_parse_lifetime(raw: str, seconds: Optional[int]) -> None:
    assert parse_lifetime(raw) == seconds


def read_inputs(**values: str) -> Settings:
    """What the action reads from these inputs (by action name), beside a key ID and issuer."""
    named = {"private-key": "unused here", "key-id": KEY_ID, "issuer-id": ISSUER_ID, **values}
    return read_settings(GitHubInputs(spelled_for("action", named)), delivery=True)


@pytest.mark.parametrize(
    ("values", "seconds"),
    [
        ({}, 1200),
        ({"expires-in": " 20m "}, 1200),
        ({"expires-in": "90s"}, 90),
        ({"expires-in": "2h", "scope": "GET /v1/ciWorkflows/abc/buildRuns"}, 7200),
        ({"expires-in": "180d", "scope": "GET /v1/apps/1/perfPowerMetrics\nGET /v1/diagnosticSignatures/9/logs"}, SIX_MONTHS),
        ({"expires-in": "1200", "api": "enterprise"}, 1200),
    ],
)  # fmt: skip
def test_expires_in_setting(values: Dict[str, str], seconds: int) -> None:
    assert read_inputs(**values).credentials.expires_in == seconds


@pytest.mark.parametrize("raw", ["²", "0", "20M", "1.5"])
def test_expires_in_that_is_no_lifetime(raw: str) -> None:
    with pytest.raises(InputError, match="`expires-in` must be a lifetime in seconds"):
        read_inputs(**{"expires-in": raw})


def test_enterprise_is_refused_for_its_20_minutes_before_six_months() -> None:
    with pytest.raises(InputError, match="Enterprise Program API"):
        read_inputs(api="enterprise", **{"expires-in": "181d", "scope": "GET /v1/ciProducts"})


@pytest.mark.parametrize("entry", ["testflight", "app: com.example.app", "notary", "xcode-cloud"])
def test_enterprise_runs_only_its_own_check(entry: str) -> None:
    with pytest.raises(InputError) as refused:
        read_inputs(api="enterprise", checks=f"apps\n{entry}")
    assert str(refused.value).startswith(f"`checks` entry {entry.replace(' ', '')} reads the App Store Connect API")
    assert "`api: enterprise` selects the Enterprise Program API: there only apps runs" in str(refused.value)
    # verify: false sends no request, so no entry is refused for the API it would read
    assert read_inputs(api="enterprise", checks=entry, verify="false").preflight.checks


def test_plugin_api_setting() -> None:
    assert CliInputs({}, {"PLUGIN_API": "enterprise", "ASC_API": "app-store-connect"}).get("api") == "enterprise"
    assert CliInputs({"api": "enterprise"}, {}).label("api") == "--api"


def test_api_setting_and_its_url() -> None:
    default = read_inputs().credentials
    assert default.api is APP_STORE_CONNECT and default.api_url == "https://api.appstoreconnect.apple.com"
    chosen = read_inputs(api="Enterprise").credentials
    assert chosen.api is ENTERPRISE and chosen.api_url == "https://api.enterprise.developer.apple.com"
    assert (
        read_inputs(api="enterprise", **{"api-url": "http://127.0.0.1:9/"}).credentials.api_url == "http://127.0.0.1:9"
    )
    with pytest.raises(InputError, match="`api` must be app-store-connect or enterprise"):
        read_inputs(api="enterprise-v1")


LONG_LIVED = [
    ("/v1/ciBuildActions/1", "Build Actions"),
    ("/v1/ciBuildActions/1/artifacts", "Build Actions"),
    ("/v1/ciBuildRuns/1/actions", "Build Runs"),
    ("/v1/scmGitReferences/1", "Git References"),
    ("/v1/ciIssues/1", "Issues"),
    ("/v1/ciMacOsVersions", "macOS Versions"),
    ("/v1/ciProducts", "Products"),
    ("/v1/ciProducts?limit=5", "Products"),
    ("/v1/ciProducts/1/workflows", "Products"),
    ("/v1/ciProducts/1/relationships/workflows", "Products"),
    ("/v1/apps/1/ciProduct", "Products"),
    ("/v1/apps/1/relationships/ciProduct", "Products"),  # the linkage of the same resource
    ("/v1/scmProviders/1/repositories", "Providers"),
    ("/v1/scmPullRequests/1", "Pull Requests"),
    ("/v1/scmRepositories/1/gitReferences", "Repositories"),
    ("/v1/ciTestResults/1", "Test Results"),
    ("/v1/ciWorkflows/1", "Workflows"),
    ("/v1/ciXcodeVersions/1/macOsVersions", "Xcode Versions"),
    ("/v1/apps/1/perfPowerMetrics", "Power and Performance Metrics and Logs"),
    ("/v1/builds/1/perfPowerMetrics", "Power and Performance Metrics and Logs"),
    ("/v1/builds/1/diagnosticSignatures", "Power and Performance Metrics and Logs"),
    ("/v1/builds/1/relationships/diagnosticSignatures", "Power and Performance Metrics and Logs"),
    ("/v1/diagnosticSignatures/1/logs", "Power and Performance Metrics and Logs"),
]
SHORT_LIVED = [
    "/v1/apps", "/v1/apps/1", "/v1/apps/1/customerReviews", "/v1/builds", "/v1/ciArtifacts/1",
    "/v1/diagnosticSignatures/1", "/v1/apps/1/perfPowerMetrics/2", "/v2/ciProducts", "/v1//ciProducts",
    "/v1/ciproducts", "/v1/../v1/ciProducts", "/v1", "v1/ciProducts", "/v1/bundleIds",
    "/v1/apps/1/relationships/perfPowerMetrics", "/v1/apps/1/relationships/builds", "/v1/relationships/ciProduct",
]  # fmt: skip


@pytest.mark.parametrize(("path", "name"), LONG_LIVED)
def test_resources_that_allow_long_lived_tokens(path: str, name: str) -> None:
    assert long_lived_resource(path) == name


@pytest.mark.parametrize("path", SHORT_LIVED)
def test_resources_that_do_not(path: str) -> None:
    assert long_lived_resource(path) is None


def hand_made(key: KeyMaterial, lifetime: int, scope: Optional[Sequence[str]], audience: str) -> str:
    """A token signed here with PyJWT alone, so that the stand-in is tested without asc_token."""
    now = int(time.time()) - 10
    claims: Dict[str, object] = {"aud": audience, "iss": ISSUER_ID, "iat": now, "exp": now + lifetime}
    if scope is not None:
        claims["scope"] = list(scope)
    return jwt.encode(claims, key.key, algorithm="ES256", headers={"kid": KEY_ID, "typ": "JWT"})


@pytest.mark.parametrize(
    ("lifetime", "scope", "status"),
    [
        (SIX_MONTHS, ["GET /v1/ciProducts"], 200),
        (SIX_MONTHS + 1, ["GET /v1/ciProducts"], 401),
        (3600, None, 401),
        (3600, ["GET /v1/ciProducts", "POST /v1/ciBuildRuns"], 401),
        (3600, ["GET /v1/ciProducts", "GET /v1/apps"], 401),
        (1200, None, 200),
    ],
)
def test_the_standin_states_apples_rule_itself(
    key: KeyMaterial, api: AppStoreConnectStandIn, lifetime: int, scope: Optional[List[str]], status: int
) -> None:
    token = hand_made(key, lifetime, scope, "appstoreconnect-v1")
    assert api.check_token(f"Bearer {token}", "GET", "/v1/ciProducts")[0] == status


@pytest.mark.parametrize("path", [path for path, _ in LONG_LIVED] + SHORT_LIVED[:7] + SHORT_LIVED[-3:])
def test_the_product_and_the_standin_agree(key: KeyMaterial, api: AppStoreConnectStandIn, path: str) -> None:
    scope = [f"GET {path}"]
    token = hand_made(key, 3600, scope, "appstoreconnect-v1")
    accepted = api.check_token(f"Bearer {token}", "GET", path)[0] == 200
    assert accepted is (lifetime_refusal(3600, scope, APP_STORE_CONNECT) is None)


def test_the_enterprise_standin_has_no_long_lived_list(key: KeyMaterial, enterprise: AppStoreConnectStandIn) -> None:
    long = hand_made(key, 3600, ["GET /v1/ciProducts"], ENTERPRISE_AUDIENCE)
    assert enterprise.check_token(f"Bearer {long}", "GET", "/v1/ciProducts")[0] == 401
    short = hand_made(key, 1200, None, ENTERPRISE_AUDIENCE)
    assert enterprise.check_token(f"Bearer {short}", "GET", "/v1/bundleIds")[0] == 200
    wrong_audience = hand_made(key, 1200, None, "appstoreconnect-v1")
    assert enterprise.check_token(f"Bearer {wrong_audience}", "GET", "/v1/bundleIds")[0] == 401


def test_enterprise_runs_only_the_apps_check() -> None:
    """The preflight checks read App Store Connect resources the Enterprise API does not serve."""
    named = {"key-id": KEY_ID, "issuer-id": ISSUER_ID, "private-key": "x", "api": "enterprise",
             "checks": "apps\ntestflight"}  # fmt: skip
    reader = GitHubInputs(spelled_for("action", named))
    with pytest.raises(InputError) as refused:
        read_settings(reader)
    assert "`checks` entry testflight" in refused.value.message and "`api: enterprise`" in refused.value.message


def test_an_enterprise_refusal_names_that_api(tmp_path: Path, key: KeyMaterial) -> None:
    """A 403 from the Enterprise Program API names it and what its read needs, not App Store Connect's apps."""
    with standin_running(audience=APPLE_ENTERPRISE_AUDIENCE) as standin:
        standin.register(KEY_ID, key.key.public_key(), ISSUER_ID, resources=())
        result = invoke("action", tmp_path, settings(key, standin=standin, api="enterprise"))
    assert result.returncode == 1
    (error,) = result.errors()
    assert "Enterprise Program API answered 403" in error, result.stdout
    assert "may not list bundle IDs" in error and "list apps" not in error
