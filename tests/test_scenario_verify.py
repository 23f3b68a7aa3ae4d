"""The /v1/apps check against the local stand-in: every answer Apple can give, explained."""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar, Dict, List

import pytest

from asc_token.caller import Caller
from asc_token.checks import Preflight
from asc_token.inputs import GitHubInputs
from asc_token.preflight import run_checks
from asc_token.records import Credentials, KeySource, VerificationResult
from asc_token.transport import RetryPolicy, Transport
from devtools.standin import AppStoreConnectStandIn, Fault

from .conftest import OTHER_ISSUER
from .runner import (
    ISSUER_ID,
    KEY_ID,
    PROCESS,
    QUICK_RETRIES,
    FixedToken,
    KeyMaterial,
    OnFds,
    assert_no_secrets,
    assert_token_masked_first,
    invoke,
    one_error,
    rendered,
    settings,
)


def test_success(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    result = invoke("action", tmp_path, settings(key, standin=api), mode=PROCESS)
    assert result.returncode == 0, result.log
    assert result.outputs["app-count"] == "3"
    assert result.outputs["rate-limit-remaining"] == "3599"
    assert key.decode(result.outputs["token"])["iss"] == ISSUER_ID
    assert api.requests == [("/v1/apps?limit=1", "200")]
    assert "credentials accepted" in result.summary and "3599 of 3600" in result.summary
    assert_token_masked_first(result)
    assert_no_secrets(result, key.secret_fragments())


def test_facts_apple_leaves_out_stay_missing(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """meta.paging.total and X-Rate-Limit are optional: no app-count, no "None", "not reported"."""
    api.paging_total, api.rate_limit_header = False, False
    result = invoke("action", tmp_path, settings(key, standin=api))
    assert result.returncode == 0, result.log
    assert result.outputs.get("app-count", "") == "" and result.outputs.get("rate-limit-remaining", "") == ""
    assert "| Rate limit | not reported |" in result.summary
    shown = result.log + result.summary + "\n".join(result.outputs.values())
    assert "None" not in shown and "apps visible" not in shown
    cli = invoke("asc-token", tmp_path / "cli", settings(key, verify=None, api_url=api.url), ["--print"])
    assert cli.returncode == 0, cli.stderr
    assert "checks passed: apps (the rate limit was not reported)" in cli.stderr and "None" not in cli.stderr


def test_401_wrong_issuer(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """The failure table's 401 row (docs/troubleshooting.md); the real retry timings are the next test's."""
    result = invoke("action", tmp_path, settings(key, standin=api, issuer_id=OTHER_ISSUER))
    assert result.returncode == 1
    line = one_error(result, with_title=True)
    assert "401 NOT_AUTHORIZED" in line and "`issuer-id` is not the issuer" in line
    causes = result.stdout[result.stdout.index("Likely causes") :]
    order = ["`issuer-id`", "`key-id` does not match", "revoked", "individual key", "clock"]
    positions = [causes.index(cause) for cause in order]
    assert positions == sorted(positions)
    # Apple sometimes answers 401 to a valid token once: two more tries, each with a fresh token.
    assert len(api.requests) == 3
    assert "3 times, each with a freshly signed token" in line
    assert "Likely causes" in result.summary
    assert "token" not in result.outputs
    assert_no_secrets(result, key.secret_fragments())
    # The summary renders the program's own code spans as code and names the key by its ID.
    html = rendered(result.summary)
    assert f"most often <code>issuer-id</code> is not the issuer of key {KEY_ID} " in html
    assert "\\`" not in result.summary.split("Likely causes")[0]


def test_403_role(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    """In this process, read at the file descriptors (test_success starts entrypoint.py)."""
    api.register(KEY_ID, key.key.public_key(), ISSUER_ID, role_allows_apps=False)
    result = invoke("action", tmp_path, settings(key, standin=api), mode=OnFds(capfd))
    assert result.returncode == 1
    assert "403 FORBIDDEN_ERROR" in one_error(result, with_title=True) and "role" in one_error(result, with_title=True)
    assert len(api.requests) == 1


def test_500_then_503_then_success(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.inject(Fault("status", status=500), Fault("status", status=503))
    result = invoke("action", tmp_path, settings(key, standin=api))
    assert result.returncode == 0, result.log
    assert [outcome for _, outcome in api.requests] == ["500", "503", "200"]
    assert "after 3 attempts" in result.summary
    assert "retrying in" in result.stdout


def test_429_honours_retry_after(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.inject(Fault("rate-limit", retry_after=1))
    slept: List[float] = []
    result = invoke("action", tmp_path, settings(key, standin=api), policy=RetryPolicy(), sleep=slept.append)
    assert result.returncode == 0, result.log
    assert slept == [1.0]  # waited as Apple asked
    assert "HTTP 429 on attempt 1; retrying in 1.0 s" in result.stdout
    assert [outcome for _, outcome in api.requests] == ["429", "200"]


def test_retry_after_is_capped(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.inject(Fault("rate-limit", retry_after=3600))
    slept: List[float] = []
    token = _token(key)
    result = _verify(token, api.url, Transport(sleep=slept.append))
    assert result.rate_limit_remaining is not None  # verified, after waiting
    assert slept == [RetryPolicy().retry_after_cap]


def test_reset_then_success(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """Through the runner with the real backoff: the failure table's retries row."""
    api.inject(Fault("reset"))
    result = invoke("action", tmp_path, settings(key, standin=api), mode=PROCESS)
    assert result.returncode == 0, result.log
    assert "connection reset on attempt 1" in result.stdout
    assert [outcome for _, outcome in api.requests] == ["reset", "200"]


def test_persistent_503_ends_within_the_budget(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """With the real policy and a simulated clock: bounded attempts, never past 60 s."""
    api.inject(*[Fault("status", status=503)] * 20)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(Exception) as raised:
        _verify(_token(key), api.url, Transport(monotonic=lambda: now[0], sleep=sleep))
    assert "503" in str(raised.value) and "system-status" in str(raised.value)
    assert 2 <= len(api.requests) <= RetryPolicy().max_attempts
    assert now[0] <= 60


def test_persistent_503_through_the_action(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """With the real policy on Io's simulated clock: its waits are counted, not waited."""
    api.inject(*[Fault("status", status=503)] * 20)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    started = time.monotonic()
    result = invoke(
        "action", tmp_path, settings(key, standin=api), policy=RetryPolicy(), monotonic=lambda: now[0], sleep=sleep
    )
    assert time.monotonic() - started < QUICK_RETRIES.total_seconds  # no real waiting
    assert 0 < now[0] <= RetryPolicy().total_seconds and 2 <= len(api.requests) <= RetryPolicy().max_attempts
    assert result.returncode == 1
    assert "App Store Connect answered 503 after" in one_error(result, with_title=True)


def test_html_502_is_summarised_not_dumped(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.inject(*[Fault("html", status=502)] * 20)
    result = invoke("action", tmp_path, settings(key, standin=api))
    assert result.returncode == 1
    assert "<html>" not in result.stdout and "<body>" not in result.summary
    assert "text/html body of" in result.stdout and '"502 Bad Gateway"' in result.stdout


def test_hanging_server_times_out_in_bounded_time(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(*[Fault("delay", seconds=3)] * 5)
    policy = RetryPolicy(backoff_base=0.05, connect_timeout=0.3, read_timeout=0.3, total_seconds=1.5)
    started = time.monotonic()
    result = invoke("action", tmp_path, settings(key, standin=api), policy=policy)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < policy.total_seconds + 1.5
    line = one_error(result, with_title=True)
    assert "timed out" in line and api.url in line


def test_server_clock_40_minutes_behind(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.clock_offset_seconds = -40 * 60
    result = invoke("action", tmp_path, settings(key, standin=api))
    assert result.returncode == 1
    assert "the runner's clock is 40 min ahead of App Store Connect's" in one_error(result, with_title=True)


def test_scope_not_covering_apps_verifies_with_a_separate_token(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    scope = "GET /v1/apps?filter[platform]=IOS"
    result = invoke("action", tmp_path, settings(key, standin=api, scope=scope))
    assert result.returncode == 0, result.log
    token = result.outputs["token"]
    assert key.decode(token)["scope"] == [scope]
    # the stand-in would have refused the scoped token for /v1/apps?limit=1
    assert api.check_token(f"Bearer {token}", "GET", "/v1/apps?limit=1")[0] == 401
    masks = [line for line in result.stdout.splitlines() if line.startswith("::add-mask::ey")]
    assert len(masks) == 2  # the verification token is masked too
    assert "separate unscoped token" in result.summary


def test_unreachable_url(tmp_path: Path, key: KeyMaterial, closed_port: int) -> None:
    """Through the runner: the failure table's refused/DNS/TLS/timeout row (the others: test_scenario_unreachable)."""
    url = f"http://127.0.0.1:{closed_port}"
    result = invoke("action", tmp_path, settings(key, verify=None, api_url=url), mode=PROCESS)
    assert result.returncode == 1
    line = one_error(result, with_title=True)
    assert "connection was refused" in line and f"{url}/v1/apps?limit=1" in line
    assert "Traceback" not in result.log


def test_user_agent_and_timeouts_are_sent(key: KeyMaterial) -> None:
    seen: Dict[str, object] = {}

    class Recorder:
        def request(self, method: str, url: str, **kwargs: object) -> object:
            seen.update(kwargs, url=url, method=method)

            class Ok:
                status_code = 200
                headers: ClassVar[Dict[str, str]] = {}
                content = b'{"data": [], "meta": {"paging": {"total": 0}}}'

            return Ok()

    _verify("tok", "https://example.invalid", Transport(session=Recorder()))
    headers = seen["headers"]
    assert isinstance(headers, dict) and headers["User-Agent"].startswith("asc-token-action/")
    assert headers["Authorization"] == "Bearer tok"
    assert seen["timeout"] == (10.0, 20.0)


def _verify(token: str, url: str, transport: Transport) -> VerificationResult:
    """The `apps` check alone, as the action runs it by default."""
    credentials = Credentials(KEY_ID, ISSUER_ID, "team", 1200, (), KeySource("`private-key`", contents="x"), url)
    caller = Caller(credentials, GitHubInputs({}), FixedToken(token), transport, time.time, print)
    results = run_checks(Preflight(), caller)
    assert results[0].facts is not None
    return results[0].facts


def _token(key: KeyMaterial) -> str:
    from asc_token.records import TokenRequest
    from asc_token.tokens import mint

    return mint(key.key, TokenRequest(KEY_ID, ISSUER_ID), clock=time.time).token


@pytest.mark.parametrize("spurious", [1, 2])
def test_spurious_401s_are_retried_with_fresh_tokens(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, spurious: int
) -> None:
    """Apple sometimes answers 401 to a valid token; fastlane and codemagic re-sign and retry."""
    api.inject(*[Fault("unauthorized")] * spurious)
    result = invoke("action", tmp_path, settings(key, standin=api))
    assert result.returncode == 0, result.log
    assert [outcome for _, outcome in api.requests] == ["401"] * spurious + ["200"]
    assert "401 on attempt 1; signing a new token and retrying" in result.stdout
    if spurious == 2:
        assert "401 on attempt 2; signing a new token and retrying" in result.stdout
    tokens = api.tokens_seen()
    assert len(tokens) == spurious + 1  # every retry carried a newly signed token
    for token in tokens:
        assert key.decode(token)["iss"] == ISSUER_ID
    masks = {line[len("::add-mask::") :] for line in result.stdout.splitlines() if line.startswith("::add-mask::")}
    assert set(tokens) <= masks  # each fresh token was masked before it was sent
    assert result.outputs["app-count"] == "3"
    assert_no_secrets(result, key.secret_fragments())


def test_persistent_401_is_reported_within_20_seconds(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(*[Fault("unauthorized")] * 10)
    started = time.monotonic()
    result = invoke("action", tmp_path, settings(key, standin=api), mode=PROCESS)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 20
    assert [outcome for _, outcome in api.requests] == ["401"] * 3
    line = one_error(result, with_title=True)
    assert "401 NOT_AUTHORIZED 3 times, each with a freshly signed token" in line
    assert "`issuer-id` is not the issuer" in line  # explained exactly as a single 401 is
    assert_no_secrets(result, key.secret_fragments())


@pytest.mark.parametrize("lifetime", [20, 3])
def test_short_lifetimes_are_valid_when_signed(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, lifetime: int, capfd: pytest.CaptureFixture[str]
) -> None:
    before = int(time.time())
    result = invoke("action", tmp_path, settings(key, standin=api, expires_in=str(lifetime)), mode=OnFds(capfd))
    assert result.returncode == 0, result.log
    assert api.requests == [("/v1/apps?limit=1", "200")]  # the stand-in accepted it first time
    claims = key.decode(result.outputs["token"], verify_exp=False)
    issued, expires = claims["iat"], claims["exp"]
    assert isinstance(issued, int) and isinstance(expires, int)
    assert expires - issued == lifetime
    assert issued >= before - lifetime // 4  # backdated by at most a quarter of the lifetime
    assert expires > before  # valid when signed


def test_a_skewed_runner_clock_gets_a_summary_row(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """Accepted, but Apple's Date is 10 minutes ahead: the summary says so before tokens start failing."""
    api.clock_offset_seconds = 600
    result = invoke("action", tmp_path, settings(key, standin=api))
    assert result.returncode == 0, result.log
    assert "| Clock | ⚠️ runner differs from Apple by 10 min |" in result.summary


def test_without_github_output_the_action_warns_and_still_reports(tmp_path: Path, key: KeyMaterial) -> None:
    result = invoke("action", tmp_path, settings(key), env={"GITHUB_OUTPUT": ""})
    assert result.returncode == 0, result.log
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 1 and "GITHUB_OUTPUT is not set" in warnings[0]
    assert f"Minted a token for App Store Connect, key {KEY_ID} (team)" in result.stdout
    assert result.summary.startswith("### App Store Connect token")
