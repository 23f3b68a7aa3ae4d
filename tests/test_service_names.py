"""Every message names the API it talks to: with ``api: enterprise``, the Enterprise Program API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import pytest

from devtools.standin import AppStoreConnectStandIn, Fault

from .runner import KEY_ID, KeyMaterial, invoke, one_error, settings

SERVICE = "Enterprise Program API"


def enterprise_settings(key: KeyMaterial, url: str) -> Dict[str, str]:
    return settings(key, verify=None, api="enterprise", api_url=url)


FAULTS = {
    "401": Fault("unauthorized"),
    "403": Fault("apple-error", status=403, code="FORBIDDEN_ERROR"),
    "404": Fault("apple-error", status=404, code="NOT_FOUND"),
    "429": Fault("rate-limit", retry_after=0),
    "500": Fault("status", status=500),
    "proxy page": Fault("html-page", status=502, title="Bad Gateway"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_api_command_names_the_enterprise_api_in_every_error(
    tmp_path: Path, key: KeyMaterial, enterprise: AppStoreConnectStandIn, fault: str
) -> None:
    enterprise.inject(*[FAULTS[fault]] * 6)
    called = invoke("asc-token api", tmp_path, enterprise_settings(key, enterprise.url), ["/v1/bundleIds"])
    # Apple's error document on stdout, as gh prints it; a proxy's page never
    printed = called.json()["errors"][0]["status"] if called.stdout_bytes else "nothing"
    assert called.returncode == 1 and printed == ("nothing" if fault == "proxy page" else fault)
    message = one_error(called)
    assert SERVICE in message and "App Store Connect" not in message, called.log_lines


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"data": [], "links": {"next": 5}}, f"{SERVICE}'s links.next is not a usable URL"),
        ({"data": [], "links": {"next": "https://elsewhere.example/v1/bundleIds"}}, f"{SERVICE}'s links.next points at"),
        ({"data": {}, "links": {"next": "/v1/bundleIds?cursor=2"}}, "a page with links.next has no list"),
    ],
)  # fmt: skip
def test_the_api_commands_own_errors_on_github_name_no_other_api(
    tmp_path: Path, key: KeyMaterial, enterprise: AppStoreConnectStandIn, answer: Dict[str, object], said: str
) -> None:
    """The errors asc-token api words itself (not explain's answers to Apple), title included."""
    enterprise.inject(Fault("raw-json", status=200, detail=json.dumps(answer)))
    named = enterprise_settings(key, enterprise.url)
    called = invoke("asc-token api", tmp_path, named, ["--paginate", "/v1/bundleIds"], env={"GITHUB_ACTIONS": "true"})
    error = "\n".join(called.errors())
    assert called.returncode == 1 and called.stdout_bytes == b"" and said in one_error(called), called.log_lines
    assert error.startswith("::error title=") and "App Store Connect" not in error


def test_unreachable_names_the_enterprise_api(key: KeyMaterial, tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"
    called = invoke("asc-token api", tmp_path / "api", enterprise_settings(key, url), ["/v1/bundleIds"])
    run = invoke("asc-token", tmp_path, enterprise_settings(key, url), ["--print"])
    for message in (one_error(called), run.stderr):
        assert f"Could not reach {SERVICE} at" in message and "App Store Connect" not in message
    assert called.returncode == 1 and run.returncode == 1


def test_retries_and_the_action_name_it_too(
    tmp_path: Path, key: KeyMaterial, enterprise: AppStoreConnectStandIn
) -> None:
    enterprise.inject(Fault("status", status=503))
    result = invoke("action", tmp_path, settings(key, standin=enterprise, api="enterprise"))
    assert result.returncode == 0, result.log
    assert f"{SERVICE}: HTTP 503 on attempt 1" in result.stdout
    assert f"Minted a token for {SERVICE}, key {KEY_ID}" in result.stdout and result.summary.startswith(
        f"### {SERVICE} token"
    )
    enterprise.inject(Fault("unauthorized"), Fault("unauthorized"), Fault("unauthorized"))
    refused = invoke("action", tmp_path / "refused", settings(key, standin=enterprise, api="enterprise"))
    assert refused.returncode == 1 and f"{SERVICE} answered 401" in one_error(refused)
    assert f"title={SERVICE} rejected the request" in refused.stdout
    assert "App Store Connect" not in one_error(refused) + refused.summary.split("**")[1]
