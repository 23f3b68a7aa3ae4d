"""``asc-token api`` against the local stand-in: the installed command as a CI step runs it, and
its pieces in-process (the token reuse rule, PATH resolution, page merging, the output)."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import jwt
import pytest

from asc_token import api_command
from asc_token.caller import Caller
from asc_token.errors import ApiError, InputError
from asc_token.inputs import CliInputs
from asc_token.paging import MAX_PAGES, Pages, next_page, render
from asc_token.records import Credentials, KeySource, MintedToken, TokenRequest
from asc_token.tokens import TokenSource, needs_new_token
from asc_token.transport import Reply
from asc_token.urls import resolve
from devtools.standin import ONE_TIME_CODES_ID, AppStoreConnectStandIn, Fault

from .runner import (
    ASC_TOKEN,
    ISSUER_ID,
    KEY_ID,
    PROCESS,
    QUICK_RETRIES,
    ROOT,
    FixedToken,
    KeyMaterial,
    OnFds,
    assert_no_secrets,
    invoke,
    needs_cli,
    scrubbed_env,
    settings,
    spelled_for,
)
from .test_devtools_standin import standin_get, vendor_targets

# --- scenarios: the installed command against the stand-in ------------------------------------
# The command's console script runs as a process for pagination, the token's lifetime, a missing
# setting (exit 2) and the token command beside it; the other scenarios run the same step in this
# process with stdout and stderr read at the file descriptors (OnFds).


@needs_cli
def test_paginate_450_items_in_pages_of_200(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.app_count = 450
    # ASC_VERIFY is the token command's: api ignores it, even a value it would refuse
    run = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api, verify="maybe"),
        ["/v1/apps?limit=200", "--paginate"],
        mode=PROCESS,
    )
    assert run.returncode == 0, run.stderr
    document = run.json()  # stdout is exactly one JSON document
    ids = [item["id"] for item in document["data"]]
    assert len(ids) == 450 and len(set(ids)) == 450
    assert ids == sorted(ids)  # in order, page after page
    assert "next" not in document["links"]
    assert document["meta"]["paging"]["total"] == 450
    assert [outcome for _, outcome in api.requests] == ["200"] * 3
    assert api.requests[0][0] == "/v1/apps?limit=200" and "cursor=" in api.requests[2][0]
    assert len(api.tokens_seen()) == 1  # a 20-minute token serves every page
    assert run.stderr == ""  # nothing to say on success
    assert_no_secrets(run, [*key.secret_fragments(), *api.tokens_seen()])


@needs_cli
def test_pages_slower_than_the_token_lifetime(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.app_count, api.response_delay_seconds = 6, 0.8  # 3 pages, 0.8 s each: over twice the 1 s lifetime
    started = time.monotonic()
    run = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api, expires_in="1"),
        ["/v1/apps?limit=2", "--paginate"],
        mode=PROCESS,
    )
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started > 2
    assert len(run.json()["data"]) == 6
    assert [outcome for _, outcome in api.requests] == ["200"] * 3  # never an expired token, never a 401
    tokens = api.tokens_seen()
    assert len(tokens) > 1
    for token in tokens:
        claims = key.decode(token, verify_exp=False)
        assert claims["exp"] - claims["iat"] == 1
    assert_no_secrets(run, [*key.secret_fragments(), *api.tokens_seen()])


@pytest.mark.parametrize("spurious", [1, 2])
def test_spurious_401_is_retried_with_a_fresh_token(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, spurious: int
) -> None:
    """In-process on the quick retry policy (tests/runner.py QUICK_RETRIES), as every retry test here."""
    api.inject(*[Fault("unauthorized")] * spurious)
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps"])
    assert called.returncode == 0, called.log_lines
    assert "401 on attempt 1; signing a new token and retrying" in called.log_lines[0]
    assert [outcome for _, outcome in api.requests] == ["401"] * spurious + ["200"]
    assert len(api.tokens_seen()) == spurious + 1
    assert len(called.json()["data"]) == 3
    assert_no_secrets(called, [*key.secret_fragments(), *api.tokens_seen()])


def test_persistent_401_is_explained(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.register(KEY_ID, key.key.public_key(), "11111111-2222-3333-4444-555555555555")
    started = time.monotonic()
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps"])
    assert called.returncode == 1 and called.json()["errors"][0]["code"] == "NOT_AUTHORIZED"  # Apple's, as gh prints it
    assert time.monotonic() - started < QUICK_RETRIES.total_seconds + 1
    text = "\n".join(called.log_lines)
    assert "401 NOT_AUTHORIZED 3 times, each with a freshly signed token" in text
    assert "ASC_ISSUER_ID is not the issuer" in text
    assert_no_secrets(called, [*key.secret_fragments(), *api.tokens_seen()])


def test_404_is_explained_on_stderr(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    run = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/nothingHere"], mode=OnFds(capfd))
    assert run.returncode == 1
    assert json.loads(run.stdout)["errors"][0]["status"] == "404"  # Apple's document, as gh api prints it
    assert f"error: App Store Connect answered 404 NOT_FOUND to GET {api.url}/v1/nothingHere" in run.stderr
    assert "check PATH" in run.stderr
    assert "404 NOT_FOUND: The specified resource does not exist" in run.stderr  # Apple's own words, below
    assert_no_secrets(run, [*key.secret_fragments(), *api.tokens_seen()])


def test_post_with_input_file_then_patch_then_delete(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    body = {"data": {"type": "bundleIds", "attributes": {"identifier": "com.example.new", "name": "New",
                                                          "platform": "IOS"}}}  # fmt: skip
    (tmp_path / "bundle.json").write_text(json.dumps(body))
    created = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        ["--input", "bundle.json", "/v1/bundleIds"],
        mode=OnFds(capfd),
    )
    assert created.returncode == 0, created.stderr
    resource = created.json()["data"]
    assert resource["type"] == "bundleIds" and resource["attributes"]["identifier"] == "com.example.new"
    assert api.calls[-1].method == "POST" and json.loads(api.calls[-1].body) == body  # POST: the default with --input

    change = {"data": {"type": "bundleIds", "id": resource["id"], "attributes": {"name": "Renamed"}}}
    # The console script in a process of its own: --input - reads that process's real stdin.
    patched = invoke(
        "asc-token api", tmp_path, settings(key, standin=api),
        ["--method", "patch", f"/v1/bundleIds/{resource['id']}", "--input", "-"], mode=PROCESS,
        stdin=json.dumps(change).encode(),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    assert patched.json()["data"]["attributes"]["name"] == "Renamed"

    deleted = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        ["-X", "DELETE", f"/v1/bundleIds/{resource['id']}"],
        mode=OnFds(capfd),
    )
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == ""  # 204 No Content: nothing to print
    assert [(call.method, call.outcome) for call in api.calls] == [("POST", "201"), ("PATCH", "200"),
                                                                   ("DELETE", "204")]  # fmt: skip
    assert_no_secrets(created, [*key.secret_fragments(), *api.tokens_seen()])


def test_409_names_what_apple_points_at(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "incomplete.json").write_text('{"data": {"type": "bundleIds", "attributes": {"identifier": "x"}}}')
    run = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        ["-X", "POST", "/v1/bundleIds", "--input", "incomplete.json"],
        mode=OnFds(capfd),
    )
    assert run.returncode == 1
    assert json.loads(run.stdout)["errors"][0]["status"] == "409"  # Apple's document on stdout, as gh prints it
    # Word for word the example in docs/api.md, but for the stand-in's URL
    example = doc_section(API_DOC).split("```text\n", 1)[1].split("```", 1)[0]
    shown = [line.strip() for line in example.strip().splitlines()]
    logged = run.stderr.replace(api.url, "https://api.appstoreconnect.apple.com").splitlines()
    assert logged == shown


def test_an_answer_that_is_not_json_is_summarised(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    api.inject(Fault("html", status=200))
    run = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps"], mode=OnFds(capfd))
    assert run.returncode == 1
    assert run.stdout == ""
    assert "answered 200 with a text/html body of" in run.stderr and "<html>" not in run.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--method", "PUT", "/v1/apps"], "--method must be one of GET, POST, PATCH, DELETE"),
        (["-X", "", "/v1/apps"], "--method must be one of GET, POST, PATCH, DELETE"),  # an unset $METHOD
        (["https://api.example.com/v1/apps"], "PATH 'https://api.example.com/v1/apps' is not on the API host"),
        (["--input", "missing.json", "-X", "POST", "/v1/bundleIds"], "--input file 'missing.json' does not exist"),
        (["--input", "not-json.txt", "-X", "POST", "/v1/bundleIds"], "--input file 'not-json.txt' is not JSON"),
        (["--input", "body.json", "-X", "GET", "/v1/apps"], "--input sends a request body, which GET does not take"),
        (["-X", "POST", "--paginate", "/v1/bundleIds"], "--paginate follows links.next"),
        (["/v1/apps", "--expires-in", "3000"], "--expires-in is 3000 seconds (50 min), longer than 20 minutes"),
        (["/v1/apps", "--scope", "GET /v1/builds"], "--scope does not allow GET /v1/apps"),
        (["/v1/apps", "--verbose"], "unrecognised arguments: --verbose"),
    ],
)
def test_bad_input_exit_2_and_nothing_sent(
    tmp_path: Path,
    key: KeyMaterial,
    api: AppStoreConnectStandIn,
    args: List[str],
    named: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "not-json.txt").write_text("name=value\n")
    (tmp_path / "body.json").write_text("{}")
    run = invoke("asc-token api", tmp_path, settings(key, standin=api), args, mode=OnFds(capfd))
    assert run.returncode == 2, run.stderr
    assert named in run.stderr
    assert run.stdout == ""
    assert api.requests == []
    assert "Traceback" not in run.stderr


@needs_cli
def test_a_missing_setting_is_exit_2(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    run = invoke("asc-token api", tmp_path, settings(key, standin=api, issuer_id=None), ["/v1/apps"], mode=PROCESS)
    assert run.returncode == 2
    assert "error: --issuer-id (or ASC_ISSUER_ID) is empty" in run.stderr
    assert api.requests == []


def test_include_puts_headers_on_stderr_and_low_quota_is_noted(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    api.hourly_limit = 50
    run = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        ["--include", f"{api.url}/v1/apps/1000000001"],
        mode=OnFds(capfd),
    )  # a full URL
    assert run.returncode == 0, run.stderr
    assert run.json()["data"]["attributes"]["bundleId"] == "com.example.demo.watch"
    assert run.stderr.startswith("HTTP 200 OK\n")
    assert "content-type: application/json" in run.stderr
    assert f"49 of 50 requests left this hour for key {KEY_ID}" in run.stderr
    assert_no_secrets(run, [*key.secret_fragments(), *api.tokens_seen()])


def test_github_masks_each_token_on_stderr(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    api.inject(Fault("unauthorized"))
    named, env = settings(key, standin=api), {"GITHUB_ACTIONS": "true"}
    run = invoke("asc-token api", tmp_path, named, ["/v1/apps"], mode=OnFds(capfd), env=env)
    assert run.returncode == 0, run.stderr
    masked = {line[len("::add-mask::") :] for line in run.stderr.splitlines() if line.startswith("::add-mask::")}
    assert set(api.tokens_seen()) <= masked
    run.json()


@needs_cli
def test_token_command_unchanged_and_help_mentions_api(tmp_path: Path, key: KeyMaterial) -> None:
    helped = invoke("asc-token", tmp_path, None, ["--help"], mode=PROCESS, timeout=60)
    assert helped.returncode == 0 and "asc-token api" in helped.stdout
    named = settings(key, verify=None)
    minted = invoke("asc-token", tmp_path, named, ["--print", "--no-verify"], mode=PROCESS, timeout=60)
    assert minted.returncode == 0, minted.stderr
    assert key.decode(minted.stdout.strip())["iss"] == ISSUER_ID
    misplaced = invoke("asc-token", tmp_path, named, ["--no-verify", "api", "/v1/apps"], mode=PROCESS, timeout=60)
    assert misplaced.returncode == 2 and "put api first" in misplaced.stderr


# --- the examples of docs/api.md and the README's long-job recipe, run as written ---------------

README = ROOT / "README.md"
API_DOC = ROOT / "docs" / "api.md"
needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="the examples use jq, which is not installed")


def doc_section(doc: Path, heading: Optional[str] = None) -> str:
    """From `heading` to the next second-level heading, or the whole file."""
    text = doc.read_text(encoding="utf-8")
    if heading is None:
        return text
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def bash(script: str, env: Dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """As a workflow's `shell: bash` runs a step."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env=env, cwd=str(cwd), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def shell_env(extra: Dict[str, str], *bin_dirs: Path) -> Dict[str, str]:
    assert ASC_TOKEN is not None
    path = os.pathsep.join([*map(str, bin_dirs), os.path.dirname(ASC_TOKEN), os.environ.get("PATH", "")])
    return {**scrubbed_env(only=("HOME", "LANG", "TMPDIR")), **extra, "PATH": path}


@needs_cli
@needs_jq
def test_readme_examples(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    examples = doc_section(API_DOC).split("```sh\n")[2].split("```", 1)[0]
    assert "--paginate > apps.json" in examples and "--input -" in examples
    done = bash(examples, shell_env(spelled_for("asc-token api", settings(key, standin=api))), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "apps.json").read_text())["meta"]["paging"]["total"] == 3
    lines = done.stdout.splitlines()
    assert lines[:3] == ["com.example.demo", "com.example.demo.watch", "com.example.demo.mac"]
    assert json.loads(lines[3])["data"]["attributes"]["name"] == "Example App" and len(lines) == 4  # PATCH's answer
    assert [(call.method, call.outcome) for call in api.calls] == [("GET", "200"), ("POST", "201"), ("PATCH", "200"),
                                                                   ("DELETE", "204")]  # fmt: skip
    assert json.loads(api.calls[2].body)["data"]["attributes"]["name"] == "Example App"
    assert api.bundle_ids == {}


@needs_cli
def test_metrics_and_report_examples(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """docs/api.md's metrics and report example, run as written: no curl, no hand-minted token."""
    examples = doc_section(API_DOC).split("```sh\n")[3].split("```", 1)[0]
    assert "--output-file report.gz" in examples and "asc-token --print --no-verify)` and curl" not in doc_section(
        API_DOC
    )
    env = {**spelled_for("asc-token api", settings(key, standin=api)), "APP_ID": "1000000000"}
    done = bash(examples, shell_env(env), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["productData"]
    assert done.stdout.splitlines()[0].startswith("Provider\t")  # the report's first lines, gunzipped
    assert stat.S_IMODE((tmp_path / "report.gz").stat().st_mode) == 0o600
    assert [outcome for _, outcome in api.requests] == ["200", "200"]


@needs_cli
@needs_jq
def test_long_job_pattern(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """The README's long-job recipe: the action exports the settings, a later step polls with asc-token api."""
    import yaml

    workflow = doc_section(README, "### Long jobs").split("```yaml\n", 1)[1].split("```", 1)[0]
    steps = yaml.safe_load(workflow)["steps"]
    action = {name: value for name, value in steps[0]["with"].items() if "${{" not in str(value)}
    assert action == {"write-key-files": True, "export-env": True}
    named = settings(key, verify=None, api_url=api.url, write_key_files="true", export_env="true")
    setup = invoke("action", tmp_path / "action", named, mode=PROCESS)
    assert setup.returncode == 0, setup.log
    exported = setup.env_file
    assert {"ASC_PRIVATE_KEY_PATH", "ASC_KEY_ID", "ASC_ISSUER_ID", "ASC_KEY_TYPE", "ASC_API_URL"} <= set(exported)

    poll = next(step for step in steps if step.get("name") == "Wait for processing (up to an hour)")
    assert poll["shell"] == "bash"
    step_env = {name: str(value) for name, value in poll["env"].items()}
    step_env["BUILD_NUMBER"] = "42"  # ${{ github.run_number }}
    api.add_build(step_env["APP_ID"], "42", processing_polls=2)
    api.add_build(step_env["APP_ID"], "41", processing_polls=0)  # an older build: filtered out
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    (fake_bin / "sleep").write_text(f'#!/bin/sh\necho "$1" >> "{tmp_path}/slept"\n')  # an hour in no time
    (fake_bin / "sleep").chmod(0o755)
    before = len(api.calls)
    done = bash(poll["run"], shell_env({**exported, **step_env}, fake_bin), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "build 42: PROCESSING (check 1)", "build 42: PROCESSING (check 2)", "build 42: VALID (check 3)",
    ]  # fmt: skip
    assert (tmp_path / "slept").read_text().split() == ["60", "60"]
    polls = api.calls[before:]
    assert [call.outcome for call in polls] == ["200"] * 3
    assert len({call.token for call in polls}) == 3  # every call signed its own token
    for call in polls:
        assert key.decode(call.token)["iss"] == ISSUER_ID
    # A setting to fix stops the loop at once (exit 2), where a refusal would be asked again.
    broken = bash(poll["run"], shell_env({**exported, **step_env, "ASC_KEY_ID": "bad"}, fake_bin), tmp_path)
    assert broken.returncode == 2 and "check 1" not in broken.stdout, broken.stdout + broken.stderr
    assert "ASC_KEY_ID" in broken.stderr and (tmp_path / "slept").read_text().split() == ["60", "60"]


# --- in-process: the pieces --------------------------------------------------------------------


def test_get_is_retried_after_a_5xx_but_post_is_not_resent(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(Fault("status", status=500))
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps"])
    assert called.returncode == 0 and [outcome for _, outcome in api.requests] == ["500", "200"]
    api.inject(Fault("status", status=500))
    body = b'{"data": {"type": "bundleIds", "attributes": {"identifier": "a.b", "name": "A", "platform": "IOS"}}}'
    called = invoke(
        "asc-token api", tmp_path, settings(key, standin=api), ["--input", "-", "/v1/bundleIds"], stdin=body
    )
    assert called.returncode == 1 and called.json()["errors"][0]["status"] == "500"
    assert [outcome for _, outcome in api.requests][2:] == ["500"]  # sent once: it may have been carried out
    assert any("answered 500" in line for line in called.log_lines)


def test_post_is_retried_after_a_429(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.inject(Fault("rate-limit", retry_after=0))
    body = b'{"data": {"type": "bundleIds", "attributes": {"identifier": "a.c", "name": "A", "platform": "IOS"}}}'
    called = invoke(
        "asc-token api", tmp_path, settings(key, standin=api), ["--input", "-", "/v1/bundleIds"], stdin=body
    )
    assert called.returncode == 0, called.stdout_bytes
    assert [outcome for _, outcome in api.requests] == ["429", "201"]


def test_enterprise_program_api(tmp_path: Path, key: KeyMaterial, enterprise: AppStoreConnectStandIn) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, standin=enterprise, api="enterprise"), ["/v1/bundleIds"])
    assert called.returncode == 0
    assert called.json()["data"][0]["attributes"]["identifier"] == "com.example.inhouse"
    claims = jwt.decode(enterprise.tokens_seen()[0], key.key.public_key(), algorithms=["ES256"],
                        audience="apple-developer-enterprise-v1")  # fmt: skip
    assert claims["iss"] == ISSUER_ID


def test_403_names_the_role_not_the_verification(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.register(KEY_ID, key.key.public_key(), ISSUER_ID, role_allows_apps=False)
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps"])
    assert called.returncode == 1 and called.json()["errors"][0]["code"] == "FORBIDDEN_ERROR"
    assert f"answered 403 FORBIDDEN_ERROR to GET {api.url}/v1/apps" in called.log_lines[0]
    assert "give the key in ASC_KEY_ID a role that may" in called.log_lines[0] and "verify" not in "".join(
        called.log_lines
    )


@pytest.mark.parametrize(
    ("args", "consequence"),
    [
        (["/v1/apps"], "Nothing was printed"),
        (["-X", "DELETE", "/v1/bundleIds/X"], "may or may not have carried out the DELETE"),
    ],
)
def test_unreachable_says_what_it_means_for_the_request(
    tmp_path: Path, key: KeyMaterial, args: List[str], consequence: str
) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, verify=None, api_url="http://127.0.0.1:9"), args)
    assert called.returncode == 1 and called.stdout_bytes == b""
    assert "the connection was refused" in called.log_lines[0]
    assert consequence in called.log_lines[1] and "verify" not in "".join(called.log_lines)


def test_stdout_is_only_the_json(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.app_count = 5
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps?limit=2", "--paginate"])
    assert called.returncode == 0
    assert (
        called.stdout_bytes.endswith(b"}\n") and called.stdout_bytes.count(b"\n") == 1
    )  # one compact line for a pipe or file
    assert [item["id"] for item in called.json()["data"]] == [str(1000000000 + n) for n in range(5)]
    assert called.log_lines == []


@pytest.mark.parametrize(
    ("remaining", "lifetime", "reuse"),
    [
        (None, 1200, False),  # nothing signed yet
        (1170, 1200, True),  # a fresh 20-minute token
        (241, 1200, True),
        (239, 1200, False),  # a fifth of 1200 s is the margin
        (61, 120, True),
        (59, 120, False),  # 60 s is the least margin
        (3, 3, False),  # a short lifetime is signed afresh for every request
        (45, 60, False),
        (0, 1200, False),
        (-5, 1200, False),
    ],
)
def test_needs_new_token(remaining: Optional[int], lifetime: int, reuse: bool) -> None:
    now = 1_000_000.0
    current = None if remaining is None else MintedToken("t", int(now) - 30, int(now) + remaining)
    assert needs_new_token(current, now, lifetime) is (not reuse)


def test_token_source_reuses_then_resigns_and_masks_first(key: KeyMaterial) -> None:
    now = [1_000_000.0]
    masked: List[str] = []
    tokens = TokenSource(key.key, TokenRequest(KEY_ID, ISSUER_ID, 1200), lambda: now[0], masked.append)
    first = tokens.bearer()
    assert masked == [first]
    now[0] += 900  # 270 s of 1170 left: still more than a fifth of the lifetime
    assert tokens.bearer() == first
    assert tokens.bearer(after_401=True) != first  # after a 401: always a new one
    second = tokens.bearer()
    now[0] += 1000  # 140 s left: under the margin
    third = tokens.bearer()
    assert third != second and masked == [first, second, third] and tokens.signed == 3
    claims = key.decode(third, verify_exp=False)
    assert claims["exp"] - claims["iat"] == 1200


API = "https://api.appstoreconnect.apple.com"


@pytest.mark.parametrize(
    ("target", "url"),
    [
        ("/v1/apps", f"{API}/v1/apps"),
        ("v1/apps?limit=1", f"{API}/v1/apps?limit=1"),
        ("/v1/apps?filter[bundleId]=com.example.app", f"{API}/v1/apps?filter[bundleId]=com.example.app"),
        ("/v1/apps?x=https://evil.example/", f"{API}/v1/apps?x=https://evil.example/"),
        ("//evil.example/v1/apps", f"{API}/evil.example/v1/apps"),
        (f"{API}/v1/apps?cursor=AB", f"{API}/v1/apps?cursor=AB"),
        ("HTTPS://API.APPSTORECONNECT.APPLE.COM:443/v1/apps", "HTTPS://API.APPSTORECONNECT.APPLE.COM:443/v1/apps"),
    ],
)
def test_resolve_keeps_requests_on_the_api_host(target: str, url: str) -> None:
    assert resolve(target, API, "PATH", CliInputs({}, {})) == url


@pytest.mark.parametrize(
    "target",
    [
        "https://api.example.com/v1/apps",
        "http://api.appstoreconnect.apple.com/v1/apps",
        "https://api.appstoreconnect.apple.com:8443/v1/apps",
        "https://api.appstoreconnect.apple.com.evil.example/v1/apps",
        "https://user@evil.example/v1/apps",
        "https://[::1/v1/apps",
    ],
)
def test_resolve_refuses_other_hosts(target: str) -> None:
    with pytest.raises(InputError, match=r"is not on the API host|has a user name or password"):
        resolve(target, API, "PATH", CliInputs({}, {}))


def test_links_next_on_another_host_stops_the_pagination() -> None:
    credentials = Credentials(KEY_ID, ISSUER_ID, "team", 1200, (), KeySource("ASC_PRIVATE_KEY", contents="x"), API)
    caller = Caller(credentials, CliInputs({}, {}), None, None, time.time, print)  # type: ignore[arg-type]
    page = {"data": [], "links": {"next": "https://evil.example/v1/apps?cursor=x"}}
    with pytest.raises(ApiError, match="points at another host"):
        next_page(page, API + "/v1/apps", caller)
    assert next_page({"data": [], "links": {"self": "x"}}, API, caller) is None
    not_a_list = {"data": {"id": "1"}, "links": {"next": f"{API}/x"}}
    with pytest.raises(ApiError, match="no list of resources"):  # never a silent stop after one page
        next_page(not_a_list, API, caller)
    with pytest.raises(ApiError, match="not a usable URL"):
        next_page({"data": [], "links": {"next": 5}}, API, caller)


def merged(pages: List[Any], indent: bool = False) -> bytes:
    spool = Pages()
    for page in pages:
        spool.add(json.loads(json.dumps(page)))  # a copy, as each page is parsed afresh
    written = io.BytesIO()
    spool.write_to(written, indent=indent)
    spool.close()
    return written.getvalue()


def test_pages_keep_order_and_drop_duplicate_included() -> None:
    app = {"type": "apps", "id": "1"}
    pages = [
        {"data": [{"id": "b1"}, {"id": "b2"}], "included": [app], "links": {"self": "s", "next": "n1"},
         "meta": {"paging": {"total": 3}}},
        {"data": [{"id": "b3"}], "included": [app, {"type": "apps", "id": "2"}], "links": {"self": "n1"}},
    ]  # fmt: skip
    document = json.loads(merged(pages))
    assert list(document) == ["data", "included", "links", "meta"]  # the first page's order
    assert [item["id"] for item in document["data"]] == ["b1", "b2", "b3"]
    assert document["included"] == [app, {"type": "apps", "id": "2"}]
    assert document["links"] == {"self": "s"} and document["meta"] == {"paging": {"total": 3}}
    assert "included" not in json.loads(merged([{"data": [1]}, {"data": [2]}]))
    later = json.loads(merged([{"data": [1], "links": {}}, {"data": [], "included": [app]}]))
    assert later == {"data": [1], "links": {}, "included": [app]}  # first seen on a later page: at the end


@pytest.mark.parametrize("indent", [False, True])
def test_spooled_pages_are_written_as_render_writes_the_document(indent: bool) -> None:
    """Byte for byte what render() gives for the same merged document, compact and indented."""
    odd = {"type": "apps", "id": "2", "attributes": {"name": "##vso[x] é \u2028 ::error::", "list": [], "o": {}}}
    meta = {"paging": {"limit": 1, "nested": {"a": [1, 2]}}}
    pages: List[Any] = [
        {"data": [{"type": "apps", "id": "1"}], "meta": meta,
         "links": {"self": "s", "next": "n"}},
        {"data": [odd, "plain", 3, None], "links": {"self": "n", "next": "m"}},
        {"data": [], "links": {"self": "m"}},
    ]  # fmt: skip
    expected = {"data": [{"type": "apps", "id": "1"}, odd, "plain", 3, None],
                "meta": meta, "links": {"self": "s"}}  # fmt: skip
    assert merged(pages, indent) == render(expected, indent=indent)
    assert merged(pages[:1], indent) == render(pages[0], indent=indent)  # one page: as it came
    assert merged([{"data": []}, {"data": []}], indent) == render({"data": []}, indent=indent)


@pytest.mark.parametrize("indent", [False, True])
def test_render_breaks_azure_logging_commands_but_keeps_the_value(indent: bool) -> None:
    document = {"data": [{"attributes": {"name": "##vso[task.setvariable variable=X]1 ### ::error::x é"}}]}
    text = render(document, indent=indent).decode("utf-8")
    assert "##" not in text
    assert json.loads(text) == document
    assert text.count("\n") == (9 if indent else 1)  # indented for a terminal, one line otherwise


def test_include_headers_are_quoted() -> None:
    reply = Reply(200, {"x-evil": "::error::x\n##vso[task.setvariable]"}, b"{}")
    described = api_command.describe_reply(reply)
    assert described.startswith("HTTP 200 OK\n")
    assert "::error" not in described and "##vso" not in described


# --- Apple's API as its OpenAPI document describes it (media types, reports, links, facts, limits) -


@pytest.mark.parametrize("paginate", [False, True])
def test_vendor_json_answers_without_data_are_printed(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, paginate: bool
) -> None:
    """The metrics and diagnostic logs: vendor +json types, no `data`; only a multi-page --paginate needs it."""
    for target, media_type in vendor_targets(api, key):
        called = invoke(
            "asc-token api", tmp_path, settings(key, standin=api), [target, *(["--paginate"] if paginate else [])]
        )
        assert called.returncode == 0, called.log_lines
        document = called.json()
        assert "data" not in document and document == standin_get(api, key, target, media_type).json()
        assert called.log_lines == []


def test_an_accept_given_with_h_is_sent(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    called = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        ["-H", "accept: application/json", "/v1/apps/1000000000/perfPowerMetrics"],
    )
    assert called.returncode == 1 and called.json()["errors"][0]["code"] == "NOT_ACCEPTABLE"
    assert "answered 406 NOT_ACCEPTABLE" in called.log_lines[0]  # the stand-in holds Accept to RFC 9110
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["-H", "Accept: application/vnd.apple.xcode-metrics+json", "/v1/apps/1000000000/perfPowerMetrics",
                   "--header", "X-Extra: 1"])  # fmt: skip
    assert called.returncode == 0 and called.json()["version"]


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJl", "-H/--header Authorization is refused"),
        ("host: evil.example", "-H/--header Host is refused"),
        ("eyJhbGciOiJFUzI1NiIsImtpZCI6IkFCQyJ9.eyJpc3MiOiJ4In0.c2ln", "-H/--header takes NAME:VALUE"),
        ("Bad Name: x", "-H/--header takes NAME:VALUE"),
        ("X-Secret: a\rInjected: 1", "X-Secret's value holds a line break"),
        ("X-App: Rocket 🚀 ロケット", "X-App's value holds characters an HTTP header cannot carry"),
    ],
)
def test_bad_headers_are_refused_and_never_echoed(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, header: str, named: str
) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["-H", header, "/v1/apps"])
    assert called.returncode == 2 and called.stdout_bytes == b"" and api.requests == []
    assert named in called.log_lines[0]
    value = header.partition(":")[2].strip() or header
    assert value not in "\n".join(called.log_lines)


REPORT = "/v1/salesReports?filter[frequency]=DAILY&filter[reportSubType]=SUMMARY&filter[reportType]=SALES&filter[vendorNumber]=85000000"


def test_a_report_is_written_to_the_output_file(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.report_size_bytes = 6 * 1024 * 1024  # larger than the 4 MB cap on JSON: streamed, not read
    expected = standin_get(api, key, REPORT).content  # made once, before the quick policy's timeouts run
    target = tmp_path / "report.gz"
    target.write_bytes(b"an older report")
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [REPORT, "--output-file", str(target)])
    assert called.returncode == 0, called.log_lines
    assert called.stdout_bytes == b""
    written = target.read_bytes()
    assert len(written) >= api.report_size_bytes and written == expected
    assert gzip.decompress(written).startswith(b"Provider\t")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(tmp_path.iterdir()) == [target]  # no temporary file left
    assert (
        len(called.log_lines) == 1
        and called.log_lines[0].startswith(f"Wrote {len(written)} bytes to '")
        and "0600" in called.log_lines[0]
    )


def test_a_report_on_stdout_with_output_file_dash(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [REPORT, "--output-file", "-"])
    assert called.returncode == 0, called.log_lines
    assert called.stdout_bytes == standin_get(api, key, REPORT).content and gzip.decompress(called.stdout_bytes)


def test_csv_codes_go_to_the_output_file_or_stdout_and_are_never_printed_without_it(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    codes = f"/v1/subscriptionOfferCodeOneTimeUseCodes/{ONE_TIME_CODES_ID}/values"
    target = tmp_path / "codes.csv"
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [codes, "--output-file", str(target)])
    assert called.returncode == 0 and called.stdout_bytes == b"", called.log_lines
    assert target.read_text().splitlines()[:2] == ["CODE00000000", "CODE00000001"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [codes, "--output-file", "-"])
    assert called.returncode == 0 and called.stdout_bytes == target.read_bytes()
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [codes])
    assert (
        called.returncode == 1
        and called.stdout_bytes == b""
        and "text/csv body" in called.log_lines[0]
        and "give --output-file FILE" in called.log_lines[0]
    )


def test_a_report_without_output_file_is_refused(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [REPORT])
    assert called.returncode == 1 and called.stdout_bytes == b""
    assert "answered 200 to GET" in called.log_lines[0] and "application/a-gzip body" in called.log_lines[0]
    assert "give --output-file FILE" in called.log_lines[0] and "--output-file -" in called.log_lines[0]
    assert "##vso[" in called.log_lines[1]  # why: stdout is the log on CI


@pytest.mark.parametrize(
    ("args", "fault"),
    [
        (["/v1/salesReports?filter[frequency]=DAILY"], None),  # a 400: the filters Apple requires are missing
        ([REPORT], Fault("html", status=200)),  # a portal's page is explained, never saved
        (["/v1/nothingHere"], None),
    ],
)
def test_a_failed_download_leaves_no_file(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, args: List[str], fault: Optional[Fault]
) -> None:
    if fault is not None:
        api.inject(fault)
    called = invoke(
        "asc-token api", tmp_path, settings(key, standin=api), [*args, "--output-file", str(tmp_path / "report.gz")]
    )
    assert called.returncode == 1 and called.stdout_bytes == b""
    assert list(tmp_path.iterdir()) == []


def test_missing_folders_of_the_output_file_are_made_as_for_the_token_file(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    target = tmp_path / "reports" / "2026" / "r.gz"
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [REPORT, "--output-file", str(target)])
    assert called.returncode == 0 and called.stdout_bytes == b"" and target.read_bytes()[:2] == b"\x1f\x8b"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    api.inject(Fault("html", status=200))  # a failed download leaves no folder it made behind
    called = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        [REPORT, "--output-file", str(tmp_path / "other" / "deeper" / "r.gz")],
    )
    assert called.returncode == 1 and sorted(path.name for path in tmp_path.iterdir()) == ["reports"]


def test_an_output_file_that_cannot_be_written_is_exit_2(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    (tmp_path / "a-file").write_text("")  # a folder that cannot be made
    called = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        [REPORT, "--output-file", str(tmp_path / "a-file" / "r.gz")],
    )
    assert called.returncode == 2 and "cannot be written" in called.log_lines[0] and api.requests == []
    pasted = "MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg/report.gz"
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [REPORT, "--output-file", pasted])
    assert (
        called.returncode == 2
        and "looks like a key or token" in called.log_lines[0]
        and pasted[:20] not in called.log_lines[0]
    )


@pytest.mark.parametrize("output", [["--output-file", "report.gz"], ["--output-file", "-"], []])
def test_paginate_on_an_answer_that_is_not_json_says_what_is_wrong(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, output: List[str]
) -> None:
    """Not "give --output-file FILE" when it was given: --paginate is what cannot take a report."""
    args = [REPORT, "--paginate", *[str(tmp_path / arg) if arg.endswith(".gz") else arg for arg in output]]
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), args)
    assert called.returncode == 1 and called.stdout_bytes == b"" and list(tmp_path.iterdir()) == []
    assert (
        "which is not JSON, and --paginate merges JSON pages" in called.log_lines[0]
        and "drop --paginate" in called.log_lines[0]
    )
    assert ("give --output-file FILE" in called.log_lines[0]) is (output == [])


def test_json_to_an_output_file(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.app_count = 5
    called = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        ["/v1/apps?limit=2", "--paginate", "--output-file", str(tmp_path / "a.json")],
    )
    assert called.returncode == 0 and called.stdout_bytes == b""
    assert len(json.loads((tmp_path / "a.json").read_text())["data"]) == 5


@pytest.mark.parametrize("form", ["absolute", "absolute-path", "path-relative", "query-relative"])
def test_relative_links_next_are_resolved_against_the_page(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, form: str
) -> None:
    """links.next is a uri-reference: each form the stand-in writes is resolved as RFC 3986 says."""
    api.app_count, api.next_link_form = 450, form
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps?limit=200", "--paginate"])
    assert called.returncode == 0, called.log_lines
    assert [item["id"] for item in called.json()["data"]] == [str(1000000000 + n) for n in range(450)]
    assert [path.split("&cursor=")[0] for path, _ in api.requests] == ["/v1/apps?limit=200"] * 3


def test_path_joins_the_api_url_with_its_prefix_and_links_next_the_page() -> None:
    naming = CliInputs({}, {})
    proxy = "https://gateway.example/asc"
    assert resolve("/v1/apps?limit=1", proxy, "PATH", naming) == f"{proxy}/v1/apps?limit=1"
    page = f"{proxy}/v1/apps?limit=1"
    assert resolve("?cursor=X", proxy, "links.next", naming, page_url=page) == f"{proxy}/v1/apps?cursor=X"
    assert resolve("apps?cursor=X", proxy, "links.next", naming, page_url=page) == f"{proxy}/v1/apps?cursor=X"
    assert resolve("/asc/v1/apps?cursor=X", proxy, "links.next", naming, page_url=page) == f"{proxy}/v1/apps?cursor=X"
    with pytest.raises(InputError):
        resolve("//evil.example/v1/apps", proxy, "links.next", naming, page_url=page)  # held to the API's origin


def test_missing_paging_total_and_rate_limit_are_missing(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.app_count, api.paging_total, api.rate_limit_header, api.hourly_limit = 5, False, False, 3
    called = invoke(
        "asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps?limit=2", "--paginate", "--include"]
    )
    assert called.returncode == 0
    assert called.json()["meta"] == {"paging": {"limit": 2}}  # as Apple sent it: no total made up
    assert "None" not in "\n".join(called.log_lines) and "x-rate-limit" not in "\n".join(called.log_lines)
    assert not any("requests left" in line for line in called.log_lines)


def test_a_long_export_reports_progress_and_prints_only_when_complete(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.app_count = 25
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps?limit=2", "--paginate"])
    assert called.returncode == 0 and len(called.json()["data"]) == 25
    assert len(called.log_lines) == 1 and re.fullmatch(
        r"App Store Connect: 10 pages, 20 items, \d+ s so far\.", called.log_lines[0]
    )
    api.inject(*[Fault("delay", seconds=0.0)] * 11, Fault("status", status=404))  # page 12 of 13 fails
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps?limit=2", "--paginate"])
    # nothing of the 11 pages before it, and not the error document either: a half export is no answer
    assert called.returncode == 1 and called.stdout_bytes == b""
    assert "answered 404" in "\n".join(called.log_lines)


# --- run_call's guards, on scripted pages (a transport that answers from a list) ---------------


class ScriptedTransport:
    """Transport.send's contract, answering each request with the next scripted reply."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.urls: List[str] = []

    def send(self, method: str, url: str, tokens: Any, **_: Any) -> Reply:
        self.urls.append(url)
        return self.replies.pop(0)


def page(next_link: Optional[str], data: Any = None) -> Reply:
    links = {"self": "x", **({"next": next_link} if next_link else {})}
    body = {"data": [{"type": "apps", "id": "1"}] if data is None else data, "links": links}
    return Reply(200, {"content-type": "application/json"}, json.dumps(body).encode())


def run_scripted(*replies: Reply, max_pages: int = MAX_PAGES) -> ScriptedTransport:
    transport = ScriptedTransport(*replies)
    credentials = Credentials(KEY_ID, ISSUER_ID, "team", 1200, (), KeySource("ASC_PRIVATE_KEY", contents="x"), API)
    call = api_command.ApiCall("GET", "/v1/apps", None, paginate=True, include=False)
    tokens, naming = FixedToken("t"), CliInputs({}, {})
    caller = Caller(credentials, naming, tokens, transport, time.time, print)  # type: ignore[arg-type]
    api_command.run_call(call, f"{API}/v1/apps", caller, max_pages=max_pages)
    return transport


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        ([page(f"{API}/v1/apps?c=2"), page(f"{API}/v1/apps")], "links.next pointed back at a page already fetched"),
        ([page("?c=2"), page("?c=3"), page("?c=2")], "links.next pointed back at a page already fetched"),
        ([page("?c=2"), page(None, data={"type": "apps", "id": "2"})], "page 2 has no list of resources"),
        ([page("?c=2"), Reply(200, {"content-type": "application/json"}, b'{"data": [', truncated=True)],
         "larger than 4 MB and was cut off"),
    ],
)  # fmt: skip
def test_run_call_guards(replies: List[Reply], reason: str) -> None:
    with pytest.raises(ApiError, match=reason) as raised:
        run_scripted(*replies)
    assert "Nothing was printed" in (raised.value.details or "")


def test_run_call_stops_at_max_pages() -> None:
    with pytest.raises(ApiError, match="more than 3 pages"):
        run_scripted(*[page(f"?c={n}") for n in range(2, 6)], max_pages=3)
    done = run_scripted(page("?c=2"), page("?c=3"), page(None), max_pages=3)
    assert done.urls == [f"{API}/v1/apps", f"{API}/v1/apps?c=2", f"{API}/v1/apps?c=3"]
