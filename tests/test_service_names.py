"""Every message names the API it talks to: with ``api: enterprise``, the Enterprise Program API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from devtools.standin import APPLE_ENTERPRISE_AUDIENCE, AppStoreConnectStandIn, Fault

from .conftest import cli_env, verify_inputs
from .runner import (
    ISSUER_ID,
    KEY_ID,
    KeyMaterial,
    call_api_in_process,
    run_action_in_process,
    run_cli_in_process,
    standin_running,
)

SERVICE = "Enterprise Program API"


@pytest.fixture
def enterprise(key: KeyMaterial) -> Iterator[AppStoreConnectStandIn]:
    with standin_running(audience=APPLE_ENTERPRISE_AUDIENCE) as standin:
        standin.register(KEY_ID, key.key.public_key(), ISSUER_ID)
        yield standin


def env(key: KeyMaterial, url: str) -> Dict[str, str]:
    return cli_env(key, ASC_API="enterprise", ASC_API_URL=url)


FAULTS = {
    "401": Fault("unauthorized"),
    "403": Fault("apple-error", status=403, code="FORBIDDEN_ERROR"),
    "404": Fault("apple-error", status=404, code="NOT_FOUND"),
    "429": Fault("rate-limit", retry_after=0),
    "500": Fault("status", status=500),
    "proxy page": Fault("html-page", status=502, title="Bad Gateway"),
}


def errors_of(log: List[str]) -> str:
    return "\n".join(line for line in log if line.startswith(("error:", "::error")))


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_api_command_names_the_enterprise_api_in_every_error(
    key: KeyMaterial, enterprise: AppStoreConnectStandIn, fault: str
) -> None:
    enterprise.inject(*[FAULTS[fault]] * 6)
    code, out, logged = call_api_in_process(env(key, enterprise.url), ["/v1/bundleIds"])
    assert code == 1 and out == b""
    message = errors_of(logged)
    assert SERVICE in message and "App Store Connect" not in message, logged


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"data": [], "links": {"next": 5}}, f"{SERVICE}'s links.next is not a usable URL"),
        ({"data": [], "links": {"next": "https://elsewhere.example/v1/bundleIds"}}, f"{SERVICE}'s links.next points at"),
        ({"data": {}, "links": {"next": "/v1/bundleIds?cursor=2"}}, "a page with links.next has no list"),
    ],
)  # fmt: skip
def test_the_api_commands_own_errors_on_github_name_no_other_api(
    key: KeyMaterial, enterprise: AppStoreConnectStandIn, answer: Dict[str, object], said: str
) -> None:
    """The errors asc-token api words itself (not explain's answers to Apple), title included."""
    enterprise.inject(Fault("raw-json", status=200, detail=json.dumps(answer)))
    on_github = {**env(key, enterprise.url), "GITHUB_ACTIONS": "true"}
    code, out, logged = call_api_in_process(on_github, ["--paginate", "/v1/bundleIds"])
    error = errors_of(logged)
    assert code == 1 and out == b"" and error.startswith("::error title=") and said in error, logged
    assert "App Store Connect" not in error


def test_unreachable_names_the_enterprise_api(key: KeyMaterial, tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"
    code, _, logged = call_api_in_process(env(key, url), ["/v1/bundleIds"])
    run = run_cli_in_process(tmp_path, env(key, url), ["--print"])
    for message in (errors_of(logged), run.stderr):
        assert f"Could not reach {SERVICE} at" in message and "App Store Connect" not in message
    assert code == 1 and run.returncode == 1


def test_retries_and_the_action_name_it_too(
    tmp_path: Path, key: KeyMaterial, enterprise: AppStoreConnectStandIn
) -> None:
    enterprise.inject(Fault("status", status=503))
    result = run_action_in_process(tmp_path, verify_inputs(key, enterprise, api="enterprise"))
    assert result.returncode == 0, result.log
    assert f"{SERVICE}: HTTP 503 on attempt 1" in result.stdout
    assert f"Minted a token for {SERVICE}, key {KEY_ID}" in result.stdout and result.summary.startswith(
        f"### {SERVICE} token"
    )
    enterprise.inject(Fault("unauthorized"), Fault("unauthorized"), Fault("unauthorized"))
    refused = run_action_in_process(tmp_path / "refused", verify_inputs(key, enterprise, api="enterprise"))
    assert refused.returncode == 1 and f"{SERVICE} answered 401" in refused.error_message()
    assert f"title={SERVICE} rejected the request" in refused.stdout
    assert "App Store Connect" not in refused.error_message() + refused.summary.split("**")[1]
