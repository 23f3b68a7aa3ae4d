"""Preflight checks against the local stand-in: each passes with one request, each gap is named.

entrypoint.py runs the passing checks; the gaps of docs/preflight.md run the same step in this
process, stdout and stderr read at the file descriptors (OnFds)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Tuple
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from asc_token.caller import Caller
from asc_token.checks import CHECKS, DEFAULT_NOTARY_URL, Check, Preflight
from asc_token.errors import ChecksFailedError
from asc_token.explain import Asked, explain_reply
from asc_token.inputs import GitHubInputs
from asc_token.preflight import run_checks
from asc_token.records import CheckResult, Credentials, KeySource, TokenRequest
from asc_token.report import check_rows
from asc_token.tokens import TokenSource
from asc_token.transport import Reply, Transport
from devtools.standin import DEMO_BUNDLE_ID, AppStoreConnectStandIn, Fault

from .runner import (
    ISSUER_ID,
    KEY_ID,
    PROCESS,
    KeyMaterial,
    OnFds,
    Run,
    assert_no_secrets,
    assert_token_masked_first,
    invoke,
    one_error,
    settings,
)

PATHS = {
    "apps": "/v1/apps?limit=1",
    f"app:{DEMO_BUNDLE_ID}": f"/v1/apps?filter[bundleId]={DEMO_BUNDLE_ID}&limit=1",
    "testflight": "/v1/builds?limit=1",
    "provisioning": "/v1/bundleIds?limit=1",
    "xcode-cloud": "/v1/ciProducts?limit=1",
    "notary": "/notary/v2/submissions?limit=1",
}


def sent(api: AppStoreConnectStandIn) -> List[Tuple[str, str]]:
    """What the stand-in received, with the query decoded (requests sends [ ] as %5B %5D)."""
    return [(unquote(path), outcome) for path, outcome in api.requests]


def summary_row(result: Run, entry: str) -> str:
    rows = [line for line in result.summary.splitlines() if line.startswith(f"| `{entry}` |")]
    assert len(rows) == 1, result.summary
    return rows[0]


# --- each check passes, with exactly one request ----------------------------------------------


def test_every_check_passes_with_one_request_each(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """docs/preflight.md: the checks table, the app-id/app-name outputs and one summary row per check."""
    result = invoke("action", tmp_path, settings(key, standin=api, checks=list(PATHS)), mode=PROCESS)
    assert result.returncode == 0, result.log
    assert sent(api) == [(path, "200") for path in PATHS.values()]
    assert result.outputs["app-id"] == "1000000000"
    assert result.outputs["app-name"] == "Demo App"
    assert result.outputs["app-count"] == "3"
    assert "| check | result | what it means for the job |" in result.summary
    for entry in PATHS:
        assert "✅ passed" in summary_row(result, entry)
    assert "notarytool will accept the key" in summary_row(result, "notary")
    assert "app-id 1000000000 (Demo App)" in summary_row(result, f"app:{DEMO_BUNDLE_ID}")
    assert_token_masked_first(result)
    assert_no_secrets(result, key.secret_fragments())


@pytest.mark.parametrize("entry", list(PATHS))
def test_each_check_alone_is_one_request(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, entry: str
) -> None:
    result = invoke("action", tmp_path, settings(key, standin=api, checks=[entry]))
    assert result.returncode == 0, result.stdout
    assert sent(api) == [(PATHS[entry], "200")]
    assert key.decode(result.outputs["token"])["iss"] == ISSUER_ID
    assert "✅ passed" in summary_row(result, entry)


def test_default_is_the_apps_check(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    result = invoke("action", tmp_path, settings(key, standin=api))
    assert result.returncode == 0, result.stdout
    assert api.requests == [("/v1/apps?limit=1", "200")]
    assert "app-id" not in result.outputs


def test_verify_false_skips_every_check(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    result = invoke("action", tmp_path, settings(key, standin=api, checks=["testflight", "notary"], verify="false"))
    assert result.returncode == 0, result.stdout
    assert api.requests == []
    assert "| check |" not in result.summary


# --- a role that lacks what a check needs ------------------------------------------------------


def test_role_without_notary_fails_naming_notary(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    """docs/preflight.md: a 403 names the check, what it needs and the role; every check still runs."""
    api.register(KEY_ID, key.key.public_key(), ISSUER_ID, resources={"apps", "builds"})
    result = invoke(
        "action", tmp_path, settings(key, standin=api, checks=["apps", "notary", "testflight"]), mode=OnFds(capfd)
    )
    assert result.returncode == 1
    line = one_error(result, with_title=True)
    assert "Check notary failed" in line and "403 FORBIDDEN_ERROR" in line
    assert "notarytool needs" in line and "notarize software" in line and f"give key {KEY_ID} " in line
    assert "take notary out of `checks`" in line
    assert [outcome for _, outcome in api.requests] == ["200", "403", "200"]  # all ran, in order
    assert "✅ passed" in summary_row(result, "apps") and "✅ passed" in summary_row(result, "testflight")
    assert "❌ 403 FORBIDDEN\\_ERROR" in summary_row(result, "notary")
    assert "notarytool submit will fail" in summary_row(result, "notary")
    assert "token" not in result.outputs
    assert_no_secrets(result, key.secret_fragments())


def test_every_failed_check_is_named_in_one_error(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.register(KEY_ID, key.key.public_key(), ISSUER_ID, resources={"apps"})
    result = invoke(
        "action", tmp_path, settings(key, standin=api, checks=["apps", "testflight", "provisioning", "notary"])
    )
    assert result.returncode == 1
    line = one_error(result, with_title=True)
    assert "3 of 4 checks failed (testflight, provisioning, notary)" in line
    assert len(api.requests) == 4
    details = result.stdout
    for entry, role in (("testflight", "Developer, App Manager or Admin"), ("provisioning", "the Admin role")):
        lines = [text for text in details.splitlines() if text.startswith(f"{entry}: ")]
        assert len(lines) == 1 and role in lines[0], details
    assert "Preflight checks failed" in result.summary
    for entry in ("testflight", "provisioning", "notary"):
        assert "❌ 403" in summary_row(result, entry)


def test_401_stops_the_other_checks(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    values = settings(key, standin=api, checks=["apps", "testflight"], issuer_id="11111111-2222-3333-4444-555555555555")
    result = invoke("action", tmp_path, values)
    assert result.returncode == 1
    assert "401 NOT_AUTHORIZED" in one_error(result, with_title=True)
    assert all(path == "/v1/apps?limit=1" for path, _ in api.requests)  # testflight never sent
    assert "not run" in summary_row(result, "testflight")


def test_checks_on_an_unreachable_host_are_not_sent_twice(tmp_path: Path, key: KeyMaterial) -> None:
    values = settings(key, verify=None, api_url="http://127.0.0.1:9", checks=["apps", "testflight"])
    result = invoke("action", tmp_path, values)
    assert result.returncode == 1
    line = one_error(result, with_title=True)
    assert "Check apps failed" in line and "connection was refused" in line and "`api-url`" in line
    assert "⏭️ not run" in summary_row(result, "testflight") and "127.0.0.1:9 could not be reached" in result.summary


def test_each_check_has_the_retries_of_verification(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(Fault("status", status=503))
    result = invoke("action", tmp_path, settings(key, standin=api, checks=["testflight", "notary"]))
    assert result.returncode == 0, result.stdout
    api.inject(Fault("status", status=401))  # Apple's occasional 401 to a valid token
    again = invoke("action", tmp_path / "again", settings(key, standin=api, checks=["notary"]))
    assert again.returncode == 0, again.stdout
    assert "signing a new token and retrying" in again.stdout
    assert [outcome for _, outcome in api.requests] == ["503", "200", "200", "401", "200"]


# --- individual keys: refused before any request -----------------------------------------------


def test_individual_key_with_provisioning_is_refused_before_any_request(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    """docs/preflight.md: Apple does not let individual keys use provisioning endpoints or notarytool."""
    api.register(KEY_ID, key.key.public_key(), None)
    values = settings(key, standin=api, checks=["apps", "provisioning"], key_type="individual")
    del values["issuer-id"]
    result = invoke("action", tmp_path, values, mode=OnFds(capfd))
    assert result.returncode == 2
    line = one_error(result, with_title=True)
    assert "`checks` entry provisioning needs a team key" in line and "`key-type` is individual" in line
    assert "use a team key" in line
    assert api.requests == []
    assert "token" not in result.outputs


def test_individual_key_with_notary_is_refused(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    result = invoke("action", tmp_path, settings(key, standin=api, checks=["notary"], key_type="individual"))
    assert result.returncode == 2
    assert "`checks` entry notary needs a team key" in one_error(result, with_title=True) and "notarytool" in one_error(
        result, with_title=True
    )
    assert api.requests == []


def test_individual_key_may_run_the_other_checks(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.register(KEY_ID, key.key.public_key(), None)
    result = invoke(
        "action", tmp_path, settings(key, standin=api, checks=["apps", "testflight"], key_type="individual")
    )
    assert result.returncode == 0, result.stdout
    assert len(api.requests) == 2


# --- app:<bundle-id> ----------------------------------------------------------------------------


def test_app_found_gives_app_id_and_name(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    result = invoke("action", tmp_path, settings(key, standin=api, checks=["app:com.example.demo.watch"]))
    assert result.returncode == 0, result.stdout
    assert result.outputs["app-id"] == "1000000001"
    assert result.outputs["app-name"] == "Demo App Watch"
    assert sent(api) == [("/v1/apps?filter[bundleId]=com.example.demo.watch&limit=1", "200")]


def test_an_app_without_an_id_never_gives_app_id_none(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """Apple's answer is read as given: an app whose `id` is null gives an empty app-id, not "None"."""
    app = {"type": "apps", "id": None, "attributes": {"bundleId": "com.example.demo", "name": "Demo App"}}
    api.inject(Fault("raw-json", status=200, detail=json.dumps({"data": [app], "links": {}})))
    result = invoke("action", tmp_path, settings(key, standin=api, checks=["app:com.example.demo"]))
    logged = [line for line in result.log_lines if "add-mask" not in line]  # masks are base64, any letters
    assert result.outputs.get("app-id", "") == "" and "None" not in " ".join(logged) + result.summary, logged


def test_app_not_found_says_how_to_check(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    result = invoke("action", tmp_path, settings(key, standin=api, checks=["app:com.example.missing"]))
    assert result.returncode == 1
    line = one_error(result, with_title=True)
    assert "The key's team has no app with bundle ID com.example.missing" in line
    causes = result.stdout[result.stdout.index("Likely causes") :]
    assert "another team" in causes and "typo" in causes and "not created" in causes
    assert "app-id" not in result.outputs
    assert len(api.requests) == 1
    assert "❌ no such app" in summary_row(result, "app:com.example.missing")


def test_more_than_one_matching_app_is_a_failure(key: KeyMaterial) -> None:
    body = (
        b'{"data": [{"type": "apps", "id": "1", "attributes": {"name": "A", "bundleId": "com.example.app"}}],'
        b' "meta": {"paging": {"total": 2, "limit": 1}}}'
    )
    with pytest.raises(ChecksFailedError) as raised:
        _run_with_answer([Check("app", "com.example.app")], 200, body)
    assert "2 apps matched bundle ID com.example.app" in raised.value.message


def test_only_one_app_entry(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    result = invoke("action", tmp_path, settings(key, standin=api, checks=["app:com.example.a", "app:com.example.b"]))
    assert result.returncode == 2
    assert "more than one app: entry" in one_error(result, with_title=True)
    assert api.requests == []


# --- agreements ---------------------------------------------------------------------------------


def test_expired_agreement_is_explained(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    """docs/preflight.md: the Account Holder must accept the agreement; no key change helps."""
    api.inject(Fault("agreements"))
    result = invoke("action", tmp_path, settings(key, standin=api, checks=["testflight", "apps"]), mode=OnFds(capfd))
    assert result.returncode == 1
    line = one_error(result, with_title=True)
    assert "403 FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED" in line
    assert "Account Holder must accept the latest agreement in App Store Connect > Business" in line
    assert "no change to the key or the settings will help" in line
    assert api.requests == [("/v1/builds?limit=1", "403")]  # nothing else can pass until it is accepted
    assert "not run" in summary_row(result, "apps")


# --- bad entries: one error naming `checks` and the entry, no request ----------------------------


@pytest.mark.parametrize(
    ("entry", "must_say"),
    [
        ("xcodecloud", ["`checks` entry 'xcodecloud' is not a check", "did you mean xcode-cloud?"]),
        ("deploy", ["`checks` entry 'deploy' is not a check", "app:<bundle-id>"]),
        ("app:", ["`checks` entry 'app:' has no bundle ID"]),
        ("app", ["`checks` entry 'app' has no bundle ID", "app:com.example.app"]),
        ("testflight:com.example.app", ["`checks` entry 'testflight:com.example.app' is not a check"]),
        ("app:com example", ["`checks` entry 'app:com example' is not a bundle ID", "reverse-DNS"]),
        ("app:com.example.app/", ["is not a bundle ID"]),
        ("app:demo", ["`checks` entry 'app:demo' is not a bundle ID"]),
        ("app:com.example.*", ["has a wildcard", "only for registering App IDs"]),
    ],
)
def test_bad_entries_are_refused_before_any_request(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, entry: str, must_say: List[str]
) -> None:
    result = invoke("action", tmp_path, settings(key, standin=api, checks=["apps", entry]))
    assert result.returncode == 2
    line = one_error(result, with_title=True)
    for phrase in must_say:
        assert phrase in line, line
    assert api.requests == []
    assert "token" not in result.outputs


def test_entries_are_trimmed_lowercased_and_deduplicated(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    result = invoke(
        "action",
        tmp_path,
        settings(key, standin=api, checks=["  TestFlight ", "", "testflight", "app: com.example.demo"]),
    )
    assert result.returncode == 0, result.stdout
    assert [path for path, _ in sent(api)] == [PATHS["testflight"], PATHS[f"app:{DEMO_BUNDLE_ID}"]]


def test_notary_url_is_validated_like_api_url(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    values = settings(key, standin=api, checks=["notary"], notary_url="http://notary.example.com/notary/v2")
    result = invoke("action", tmp_path, values)
    assert result.returncode == 2
    assert one_error(result, with_title=True).endswith(
        "`notary-url` uses plain http:// to a host that is not this machine, so it is refused (it would receive "
        f"the bearer token): leave it unset for {DEFAULT_NOTARY_URL}."
    )  # the reason once
    assert api.requests == []


def test_unreachable_notary_names_notary_url_and_the_api_checks_still_run(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    result = invoke(
        "action",
        tmp_path,
        settings(key, standin=api, checks=["notary", "apps"], notary_url="http://127.0.0.1:9/notary/v2"),
    )
    assert result.returncode == 1
    line = one_error(result, with_title=True)
    assert "Check notary failed" in line and "connection was refused" in line and "`notary-url`" in line
    assert api.requests == [("/v1/apps?limit=1", "200")]


def test_notary_plain_text_401_is_apple_not_a_proxy() -> None:
    """The notary service answers a key it does not accept in plain text: explained as a 401."""
    reply = Reply(401, {"content-type": "text/plain"}, b"Unauthenticated")
    request = Asked("https://appstoreconnect.apple.com/notary/v2/submissions", "team", setting="notary-url")
    error = explain_reply(reply, request, GitHubInputs({}), time.time)
    assert "answered 401" in error.message and "did not accept the credentials" in error.message


# --- scope: a check the scope does not cover gets its own unscoped token -----------------------


def test_scope_not_covering_a_check_uses_a_separate_token_for_it(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    scope = "GET /v1/builds?limit=1"
    result = invoke("action", tmp_path, settings(key, standin=api, checks=["testflight", "notary"], scope=scope))
    assert result.returncode == 0, result.stdout
    assert key.decode(result.outputs["token"])["scope"] == [scope]
    assert "checking notary with a separate unscoped 120-second token" in result.stdout
    assert "checking testflight" not in result.stdout  # the scoped token covers it
    masks = [line for line in result.stdout.splitlines() if line.startswith("::add-mask::ey")]
    assert len(masks) == 2


# --- the CLI: --check (repeatable), ASC_CHECKS, --notary-url -----------------------------------


def test_cli_check_flags(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    args = ["--api-url", api.url, "--notary-url", api.url + "/notary/v2", "--check", "testflight", "--check", "notary"]
    run = invoke("asc-token", tmp_path, settings(key, verify=None), [*args, "--print"])
    assert run.returncode == 0, run.stderr
    assert [path for path, _ in sent(api)] == [PATHS["testflight"], PATHS["notary"]]
    assert run.stdout.count("\n") == 1  # the token, and only it
    assert "Check notary: passed" in run.stderr


def test_cli_checks_from_the_environment(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    named = settings(key, verify=None, checks=["apps", "xcode-cloud"])
    run = invoke("asc-token", tmp_path, named, ["--api-url", api.url, "--print"])
    assert run.returncode == 0, run.stderr
    assert [path for path, _ in sent(api)] == [PATHS["apps"], PATHS["xcode-cloud"]]


def test_plugin_settings_name_the_checks(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    env = {"PLUGIN_CHECKS": "notary", "PLUGIN_NOTARY_URL": api.url + "/notary/v2"}
    run = invoke("asc-token", tmp_path, settings(key, verify=None), ["--api-url", api.url, "--print"], env=env)
    assert run.returncode == 0, run.stderr
    assert sent(api) == [(PATHS["notary"], "200")]


def test_cli_bad_check_names_the_flag(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    run = invoke("asc-token", tmp_path, settings(key, verify=None), ["--api-url", api.url, "--check", "notarise"])
    assert run.returncode == 2
    assert "--check entry 'notarise' is not a check (did you mean notary?)" in run.stderr
    run = invoke("asc-token", tmp_path, settings(key, verify=None, checks=["bogus"]), ["--api-url", api.url])
    assert "ASC_CHECKS entry 'bogus' is not a check" in run.stderr
    assert api.requests == []


# --- the table itself ---------------------------------------------------------------------------


def test_the_table_states_each_check_once() -> None:
    assert list(CHECKS) == ["apps", "app", "testflight", "provisioning", "xcode-cloud", "notary"]
    for spec in CHECKS.values():
        assert spec.path.startswith("/") and "limit=1" in spec.path
        assert spec.proves and spec.if_missing and spec.grant
    refused = {name for name, spec in CHECKS.items() if spec.individual_keys_cannot_use}
    assert refused == {"provisioning", "notary"}  # Apple: provisioning endpoints and notarytool
    assert "Admin or App Manager" not in " ".join(spec.grant for spec in CHECKS.values())


def test_summary_cells_cannot_break_the_table() -> None:
    row = check_rows([CheckResult(Check("apps"), True, "passed", "name | <b>bold</b>")])[-1]
    assert row == "| `apps` | ✅ passed | name \\| \\<b\\>bold\\</b\\> |"


def _run_with_answer(checks: List[Check], status: int, body: bytes) -> None:
    class Answer:
        status_code = status
        headers: ClassVar[Dict[str, str]] = {"content-type": "application/json"}
        content = body

    class Session:
        def request(self, method: str, url: str, **kwargs: Any) -> Answer:
            return Answer()

    credentials = Credentials(KEY_ID, ISSUER_ID, "team", 1200, (), KeySource("`private-key`", contents="unused"))
    tokens = TokenSource(ec.generate_private_key(ec.SECP256R1()), TokenRequest(KEY_ID, ISSUER_ID), time.time, print)
    caller = Caller(credentials, GitHubInputs({}), tokens, Transport(session=Session()), time.time, lambda line: None)
    run_checks(Preflight(checks=tuple(checks)), caller)


def test_rate_limit_without_the_apps_check(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """Any check that passed proves the credentials and reads the rate limit; only `apps` counts apps."""
    result = invoke("action", tmp_path, settings(key, standin=api, checks=[f"app:{DEMO_BUNDLE_ID}"]))
    assert result.returncode == 0, result.log
    assert result.outputs["app-id"] == "1000000000" and result.outputs["rate-limit-remaining"].isdigit()
    assert "app-count" not in result.outputs
    assert "Rate limit" in result.summary and "credentials accepted" in result.summary


def test_the_cli_in_a_later_github_step_adds_no_summary_section(tmp_path: Path, key: KeyMaterial) -> None:
    """`TOKEN=$(asc-token --print)` in a polling loop sets the step outputs, but writes no job
    summary section and no second log line per call."""
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text("")
    summary.write_text("")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    run = invoke("asc-token", tmp_path, settings(key, verify=None), ["--print", "--no-verify"], env=env)
    assert run.returncode == 0, run.stderr
    assert "token<<" in output.read_text() and summary.read_text() == ""
    assert run.stderr.count("Minted") == 1
