"""``asc-token api`` against the local stand-in: the installed command as a CI step runs it, and
its pieces in-process (the token reuse rule, PATH resolution, page merging, the output)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import jwt
import pytest

from asc_token import api_command
from asc_token.api_command import Pages, next_page, render, resolve
from asc_token.config import Credentials
from asc_token.credentials import TokenSource, needs_new_token
from asc_token.errors import ApiError, InputError
from asc_token.flags import CliInputs
from asc_token.keys import KeySource
from asc_token.minting import MintedToken, TokenRequest
from asc_token.transport import Reply
from devtools.standin import AppStoreConnectStandIn, Fault

from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial, call_api_in_process

ASC_TOKEN = shutil.which("asc-token", path=os.path.dirname(sys.executable)) or shutil.which("asc-token")
needs_command = pytest.mark.skipif(
    ASC_TOKEN is None, reason="asc-token is not installed (python3 dev.py test installs it)"
)

class Run:
    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


def api_env(key: KeyMaterial, api: AppStoreConnectStandIn, **extra: str) -> Dict[str, str]:
    return {"ASC_PRIVATE_KEY": key.pem, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID, "ASC_API_URL": api.url,
            **extra}  # fmt: skip


def run_api(tmp_path: Path, env: Dict[str, str], args: List[str], stdin: Optional[str] = None) -> Run:
    """``asc-token api ARGS`` as a CI step runs it: the installed console script, a clean environment."""
    base = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR")}
    assert ASC_TOKEN is not None
    completed = subprocess.run(
        [ASC_TOKEN, "api", *args],
        env={**base, **env},
        cwd=str(tmp_path),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    return Run(completed)


def assert_clean(run: Run, api: AppStoreConnectStandIn, key: KeyMaterial) -> None:
    """No token that was sent, and no piece of the key, in stdout or stderr; no traceback."""
    for token in api.tokens_seen():
        assert token not in run.stdout and token not in run.stderr
    for fragment in key.secret_fragments():
        assert fragment not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr


# --- scenarios: the installed command against the stand-in ------------------------------------


@needs_command
def test_paginate_450_items_in_pages_of_200(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.app_count = 450
    # ASC_VERIFY is the token command's: api ignores it, even a value it would refuse
    run = run_api(tmp_path, api_env(key, api, ASC_VERIFY="maybe"), ["/v1/apps?limit=200", "--paginate"])
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
    assert_clean(run, api, key)


@needs_command
def test_pages_slower_than_the_token_lifetime(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.app_count, api.response_delay_seconds = 6, 2.0  # 3 pages, 2 s each: twice the 3 s lifetime
    started = time.monotonic()
    run = run_api(tmp_path, api_env(key, api, ASC_EXPIRES_IN="3"), ["/v1/apps?limit=2", "--paginate"])
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started > 3
    assert len(run.json()["data"]) == 6
    assert [outcome for _, outcome in api.requests] == ["200"] * 3  # never an expired token, never a 401
    tokens = api.tokens_seen()
    assert len(tokens) > 1
    for token in tokens:
        claims = key.decode(token, verify_exp=False)
        assert claims["exp"] - claims["iat"] == 3
    assert_clean(run, api, key)


@needs_command
@pytest.mark.parametrize("spurious", [1, 2])
def test_spurious_401_is_retried_with_a_fresh_token(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, spurious: int
) -> None:
    api.inject(*[Fault("unauthorized")] * spurious)
    run = run_api(tmp_path, api_env(key, api), ["/v1/apps"])
    assert run.returncode == 0, run.stderr
    assert "401 on attempt 1; signing a new token and retrying" in run.stderr
    assert [outcome for _, outcome in api.requests] == ["401"] * spurious + ["200"]
    assert len(api.tokens_seen()) == spurious + 1
    assert len(run.json()["data"]) == 3
    assert_clean(run, api, key)


@needs_command
def test_persistent_401_is_explained(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.register(KEY_ID, key.key.public_key(), "11111111-2222-3333-4444-555555555555")
    started = time.monotonic()
    run = run_api(tmp_path, api_env(key, api), ["/v1/apps"])
    assert run.returncode == 1
    assert time.monotonic() - started < 20
    assert run.stdout == ""
    assert "401 NOT_AUTHORIZED 3 times, each with a freshly signed token" in run.stderr
    assert "ASC_ISSUER_ID is not the issuer" in run.stderr
    assert_clean(run, api, key)


@needs_command
def test_404_is_explained_on_stderr(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    run = run_api(tmp_path, api_env(key, api), ["/v1/nothingHere"])
    assert run.returncode == 1
    assert run.stdout == ""
    assert f"error: App Store Connect answered 404 NOT_FOUND to GET {api.url}/v1/nothingHere" in run.stderr
    assert "check PATH" in run.stderr
    assert "404 NOT_FOUND: The specified resource does not exist" in run.stderr  # Apple's own words, below
    assert_clean(run, api, key)


@needs_command
def test_post_with_input_file_then_patch_then_delete(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    body = {"data": {"type": "bundleIds", "attributes": {"identifier": "com.example.new", "name": "New",
                                                          "platform": "IOS"}}}  # fmt: skip
    (tmp_path / "bundle.json").write_text(json.dumps(body))
    created = run_api(tmp_path, api_env(key, api), ["--input", "bundle.json", "/v1/bundleIds"])
    assert created.returncode == 0, created.stderr
    resource = created.json()["data"]
    assert resource["type"] == "bundleIds" and resource["attributes"]["identifier"] == "com.example.new"
    assert api.calls[-1].method == "POST" and json.loads(api.calls[-1].body) == body  # POST: the default with --input

    change = {"data": {"type": "bundleIds", "id": resource["id"], "attributes": {"name": "Renamed"}}}
    patched = run_api(
        tmp_path, api_env(key, api), ["--method", "patch", f"/v1/bundleIds/{resource['id']}", "--input", "-"],
        stdin=json.dumps(change),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    assert patched.json()["data"]["attributes"]["name"] == "Renamed"

    deleted = run_api(tmp_path, api_env(key, api), ["-X", "DELETE", f"/v1/bundleIds/{resource['id']}"])
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == ""  # 204 No Content: nothing to print
    assert [(call.method, call.outcome) for call in api.calls] == [("POST", "201"), ("PATCH", "200"),
                                                                   ("DELETE", "204")]  # fmt: skip
    assert_clean(created, api, key)


@needs_command
def test_409_names_what_apple_points_at(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    (tmp_path / "incomplete.json").write_text('{"data": {"type": "bundleIds", "attributes": {"identifier": "x"}}}')
    run = run_api(tmp_path, api_env(key, api), ["-X", "POST", "/v1/bundleIds", "--input", "incomplete.json"])
    assert run.returncode == 1
    assert run.stdout == ""
    # Word for word the example in docs/api.md, but for the stand-in's URL
    example = doc_section(API_DOC).split("```text\n", 1)[1].split("```", 1)[0]
    shown = [line.strip() for line in example.strip().splitlines()]
    logged = run.stderr.replace(api.url, "https://api.appstoreconnect.apple.com").splitlines()
    assert logged == shown


@needs_command
def test_an_answer_that_is_not_json_is_summarised(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(Fault("html", status=200))
    run = run_api(tmp_path, api_env(key, api), ["/v1/apps"])
    assert run.returncode == 1
    assert run.stdout == ""
    assert "answered 200 with a text/html body of" in run.stderr and "<html>" not in run.stderr


@needs_command
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
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, args: List[str], named: str
) -> None:
    (tmp_path / "not-json.txt").write_text("name=value\n")
    (tmp_path / "body.json").write_text("{}")
    run = run_api(tmp_path, api_env(key, api), args)
    assert run.returncode == 2, run.stderr
    assert named in run.stderr
    assert run.stdout == ""
    assert api.requests == []
    assert "Traceback" not in run.stderr


@needs_command
def test_a_missing_setting_is_exit_2(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    env = api_env(key, api)
    del env["ASC_ISSUER_ID"]
    run = run_api(tmp_path, env, ["/v1/apps"])
    assert run.returncode == 2
    assert "error: --issuer-id (or ASC_ISSUER_ID) is empty" in run.stderr
    assert api.requests == []


@needs_command
def test_include_puts_headers_on_stderr_and_low_quota_is_noted(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.hourly_limit = 50
    run = run_api(tmp_path, api_env(key, api), ["--include", f"{api.url}/v1/apps/1000000001"])  # a full URL
    assert run.returncode == 0, run.stderr
    assert run.json()["data"]["attributes"]["bundleId"] == "com.example.demo.watch"
    assert run.stderr.startswith("HTTP 200 OK\n")
    assert "content-type: application/json" in run.stderr
    assert f"49 of 50 requests left this hour for key {KEY_ID}" in run.stderr
    assert_clean(run, api, key)


@needs_command
def test_github_masks_each_token_on_stderr(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.inject(Fault("unauthorized"))
    run = run_api(tmp_path, {**api_env(key, api), "GITHUB_ACTIONS": "true"}, ["/v1/apps"])
    assert run.returncode == 0, run.stderr
    masked = {line[len("::add-mask::") :] for line in run.stderr.splitlines() if line.startswith("::add-mask::")}
    assert set(api.tokens_seen()) <= masked
    run.json()


@needs_command
def test_token_command_unchanged_and_help_mentions_api(tmp_path: Path, key: KeyMaterial) -> None:
    assert ASC_TOKEN is not None
    helped = subprocess.run([ASC_TOKEN, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert helped.returncode == 0 and "asc-token api" in helped.stdout
    env = {"ASC_PRIVATE_KEY": key.pem, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID, "PATH": os.environ["PATH"]}
    minted = subprocess.run(
        [ASC_TOKEN, "--print", "--no-verify"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert minted.returncode == 0, minted.stderr
    assert key.decode(minted.stdout.strip())["iss"] == ISSUER_ID
    misplaced = subprocess.run(
        [ASC_TOKEN, "--no-verify", "api", "/v1/apps"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
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
    base = {key: value for key, value in os.environ.items() if key in ("HOME", "LANG", "TMPDIR")}
    return {**base, **extra, "PATH": path}


@needs_command
@needs_jq
def test_readme_examples(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    examples = doc_section(API_DOC).split("```sh\n")[2].split("```", 1)[0]
    assert "--paginate > apps.json" in examples and "--input -" in examples
    done = bash(examples, shell_env(api_env(key, api)), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "apps.json").read_text())["meta"]["paging"]["total"] == 3
    lines = done.stdout.splitlines()
    assert lines[:3] == ["com.example.demo", "com.example.demo.watch", "com.example.demo.mac"]
    assert json.loads(lines[3])["data"]["attributes"]["name"] == "Example App" and len(lines) == 4  # PATCH's answer
    assert [(call.method, call.outcome) for call in api.calls] == [("GET", "200"), ("POST", "201"), ("PATCH", "200"),
                                                                   ("DELETE", "204")]  # fmt: skip
    assert json.loads(api.calls[2].body)["data"]["attributes"]["name"] == "Example App"
    assert api.bundle_ids == {}


@needs_command
@needs_jq
def test_long_job_pattern(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """The README's long-job recipe: the action exports the settings, a later step polls with asc-token api."""
    import yaml

    from .runner import run_entrypoint

    workflow = doc_section(README, "### Long jobs").split("```yaml\n", 1)[1].split("```", 1)[0]
    steps = yaml.safe_load(workflow)["steps"]
    action = {name: value for name, value in steps[0]["with"].items() if "${{" not in str(value)}
    assert action == {"write-key-files": True, "export-env": True}
    setup = run_entrypoint(
        tmp_path / "action",
        {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "api-url": api.url,
         "write-key-files": "true", "export-env": "true"},
    )  # fmt: skip
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


# --- in-process: the pieces --------------------------------------------------------------------


def call_in_process(
    api: AppStoreConnectStandIn, key: KeyMaterial, args: List[str], stdin: bytes = b""
) -> tuple[int, bytes, List[str]]:
    env = {"ASC_PRIVATE_KEY": key.pem, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID, "ASC_API_URL": api.url}
    return call_api_in_process(env, args, stdin=stdin)


def test_get_is_retried_after_a_5xx_but_post_is_not_resent(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.inject(Fault("status", status=500))
    code, out, _ = call_in_process(api, key, ["/v1/apps"])
    assert code == 0 and [outcome for _, outcome in api.requests] == ["500", "200"]
    api.inject(Fault("status", status=500))
    body = b'{"data": {"type": "bundleIds", "attributes": {"identifier": "a.b", "name": "A", "platform": "IOS"}}}'
    code, out, logged = call_in_process(api, key, ["--input", "-", "/v1/bundleIds"], stdin=body)
    assert code == 1 and out == b""
    assert [outcome for _, outcome in api.requests][2:] == ["500"]  # sent once: it may have been carried out
    assert any("answered 500" in line for line in logged)


def test_post_is_retried_after_a_429(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.inject(Fault("rate-limit", retry_after=0))
    body = b'{"data": {"type": "bundleIds", "attributes": {"identifier": "a.c", "name": "A", "platform": "IOS"}}}'
    code, out, _ = call_in_process(api, key, ["--input", "-", "/v1/bundleIds"], stdin=body)
    assert code == 0, out
    assert [outcome for _, outcome in api.requests] == ["429", "201"]


def test_enterprise_program_api(key: KeyMaterial) -> None:
    from devtools.standin import APPLE_ENTERPRISE_AUDIENCE

    with AppStoreConnectStandIn(audience=APPLE_ENTERPRISE_AUDIENCE) as enterprise:
        enterprise.register(KEY_ID, key.key.public_key(), ISSUER_ID)
        env = {"ASC_PRIVATE_KEY": key.pem, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID,
               "ASC_API_URL": enterprise.url, "ASC_API": "enterprise"}  # fmt: skip
        code, out, _ = call_api_in_process(env, ["/v1/bundleIds"])
        assert code == 0
        assert json.loads(out)["data"][0]["attributes"]["identifier"] == "com.example.inhouse"
        claims = jwt.decode(enterprise.tokens_seen()[0], key.key.public_key(), algorithms=["ES256"],
                            audience="apple-developer-enterprise-v1")  # fmt: skip
        assert claims["iss"] == ISSUER_ID


def test_403_names_the_role_not_the_verification(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.register(KEY_ID, key.key.public_key(), ISSUER_ID, role_allows_apps=False)
    code, out, logged = call_in_process(api, key, ["/v1/apps"])
    assert code == 1 and out == b""
    assert f"answered 403 FORBIDDEN_ERROR to GET {api.url}/v1/apps" in logged[0]
    assert "give the key in ASC_KEY_ID a role that may" in logged[0] and "verify" not in "".join(logged)


@pytest.mark.parametrize(
    ("args", "consequence"),
    [
        (["/v1/apps"], "Nothing was printed"),
        (["-X", "DELETE", "/v1/bundleIds/X"], "may or may not have carried out the DELETE"),
    ],
)
def test_unreachable_says_what_it_means_for_the_request(key: KeyMaterial, args: List[str], consequence: str) -> None:
    env = {"ASC_PRIVATE_KEY": key.pem, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID,
           "ASC_API_URL": "http://127.0.0.1:9"}  # fmt: skip
    code, out, logged = call_api_in_process(env, args)
    assert code == 1 and out == b""
    assert "the connection was refused" in logged[0]
    assert consequence in logged[1] and "verify" not in "".join(logged)


def test_stdout_is_only_the_json(key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    api.app_count = 5
    code, out, logged = call_in_process(api, key, ["/v1/apps?limit=2", "--paginate"])
    assert code == 0
    assert out.endswith(b"}\n") and out.count(b"\n") == 1  # one compact line for a pipe or file
    assert [item["id"] for item in json.loads(out)["data"]] == [str(1000000000 + n) for n in range(5)]
    assert logged == []


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
    naming = CliInputs({}, {})
    credentials = Credentials(KEY_ID, ISSUER_ID, "team", 1200, (), KeySource("ASC_PRIVATE_KEY", contents="x"), API)
    page = {"data": [], "links": {"next": "https://evil.example/v1/apps?cursor=x"}}
    with pytest.raises(ApiError, match="points at another host"):
        next_page(page, API + "/v1/apps", credentials, naming)
    assert next_page({"data": [], "links": {"self": "x"}}, API, credentials, naming) is None
    not_a_list = {"data": {"id": "1"}, "links": {"next": f"{API}/x"}}
    assert next_page(not_a_list, API, credentials, naming) is None


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
    pages = [
        {"data": [{"type": "apps", "id": "1"}], "meta": {"paging": {"limit": 1, "nested": {"a": [1, 2]}}},
         "links": {"self": "s", "next": "n"}},
        {"data": [odd, "plain", 3, None], "links": {"self": "n", "next": "m"}},
        {"data": [], "links": {"self": "m"}},
    ]  # fmt: skip
    expected = {"data": [{"type": "apps", "id": "1"}, odd, "plain", 3, None],
                "meta": pages[0]["meta"], "links": {"self": "s"}}  # fmt: skip
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
