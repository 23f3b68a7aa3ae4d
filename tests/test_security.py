"""Issue 10 (and issue 14 item 2): each reproduction of the attack pass, as a regression test.

Every item is tried the way an attacker or an unlucky user would: hostile answers from a local
stand-in (127.0.0.1 only), keys pasted into the wrong setting, symlinks in a temporary
RUNNER_TEMP. In-process where the item is about our code, through ``entrypoint.py`` or the
``asc-token`` script where it is about what the runner or a shell sees.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import stat
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, TypeVar

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from asc_token import secret_files
from asc_token.errors import AscTokenError, KeyFilesError, NotAppleError, WrongKeyTypeError
from asc_token.explain import Asked, explain_reply, summarise_body
from asc_token.github import COMPOSITE_MARKER, GitHubInputs
from asc_token.keys import load_private_key
from asc_token.platforms import PLATFORM_NAMES, platform_for
from asc_token.redact import quote_foreign
from asc_token.report import markdown_text, summary_markdown
from asc_token.transport import NoAnswerError, Reply, RetryPolicy, Transport, parse_rate_limit
from asc_token.urls import base_url_problem as api_url_problem
from devtools.standin import AppStoreConnectStandIn, Fault

from .runner import (
    ASC_TOKEN,
    ISSUER_ID,
    KEY_ID,
    ROOT,
    FixedToken,
    KeyMaterial,
    Result,
    assert_no_secrets,
    rendered,
    run_action_in_process,
    run_cli,
    run_entrypoint,
)

needs_cli = pytest.mark.skipif(ASC_TOKEN is None, reason="asc-token is not installed (python3 dev.py test installs it)")
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions and symlinks")

FAST = RetryPolicy(
    backoff_base=0.05, backoff_cap=0.2, retry_after_cap=0.5, connect_timeout=1, read_timeout=1, total_seconds=3
)
# Text a hostile server (or proxy) puts where we might print it: workflow commands on a new line
# or after a carriage return, Azure logging commands, and Markdown that would act in a summary.
HOSTILE = (
    "bad\n::warning::pwned\r::error::pwned %0A::notice::pwned ##vso[task.setvariable variable=X]1 "
    "![i](http://127.0.0.1:9/x.png) [l](http://127.0.0.1:9/) <img src=x> | cell ```"
)


# --- helpers ------------------------------------------------------------------------------------


def action_inputs(key: KeyMaterial, **extra: str) -> Dict[str, str]:
    return {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false", **extra}


def run_in_process(
    tmp_path: Path, inputs: Dict[str, str], *, composite: bool = False, env: Optional[Dict[str, str]] = None
) -> Result:
    """The action without a subprocess: the container form (INPUT_KEY-ID) unless ``composite``."""
    spelled = {f"INPUT_{name.replace('-', '_').upper()}": value for name, value in inputs.items()} if composite else {}
    spelled.update([COMPOSITE_MARKER] if composite else [])
    extra = {"RUNNER_TEMP": str(tmp_path), **spelled, **(env or {})}
    return run_action_in_process(tmp_path, {} if composite else inputs, extra_env=extra, policy=FAST)


def one_error(result: Result) -> str:
    """Exactly one ::error line, nothing unexpected, no traceback; the message."""
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("::error")]
    assert len(errors) == 1, result.log
    assert "Internal error" not in result.log and "Traceback" not in result.log
    return errors[0].split("::", 2)[2]


def asc_env(key: KeyMaterial) -> Dict[str, str]:
    return {"ASC_PRIVATE_KEY": key.pem, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID}


def detection_env(platform: str, tmp_path: Path) -> Dict[str, str]:
    """What each CI platform sets, so that asc-token detects it (and has somewhere to deliver)."""
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    bash_env = tmp_path / "bash_env"
    bash_env.touch()
    return {
        "github": {"GITHUB_ACTIONS": "true"},
        "azure": {"TF_BUILD": "True"},
        "circleci": {"CIRCLECI": "true", "BASH_ENV": str(bash_env)},
        "bitrise": {"BITRISE_IO": "true"},
        "buildkite": {"BUILDKITE": "true", "BUILDKITE_BUILD_CHECKOUT_PATH": str(workspace)},
        "gitlab": {"GITLAB_CI": "true"},
        "woodpecker": {"CI": "woodpecker", "CI_WORKSPACE": str(workspace)},
        "drone": {"DRONE": "true", "DRONE_WORKSPACE": str(workspace)},
        "jenkins": {"JENKINS_URL": "https://ci.example"},
        "bitbucket": {"BITBUCKET_BUILD_NUMBER": "7", "BITBUCKET_CLONE_DIR": str(workspace)},
        "generic": {},
    }[platform]


def raw_key_b64(key: KeyMaterial) -> str:
    """A whole P-256 private key as 44 base64 characters: the fragment most worth hiding."""
    return base64.b64encode(key.key.private_numbers().private_value.to_bytes(32, "big")).decode()


def foreign_lines_are_inert(log: str, *, azure: bool = False) -> None:
    """No line acts as a workflow command but ours, and no ##vso[ command appears but ours."""
    ours = ("::add-mask::", "::error title=")
    for line in log.splitlines():  # splitlines: \r and friends start a line too
        assert not line.startswith("::") or line.startswith(ours), line
        if azure:
            assert not line.startswith("##") or line.startswith(("##vso[task.setsecret]", "##[error]")), line
    assert "pwned" in log  # the hostile text was shown (escaped), so the test exercised it
    vso = [m.start() for m in re.finditer(re.escape("##vso["), log)]
    assert all(log.startswith("##vso[task.setsecret]", at) for at in vso), "a foreign ##vso[ command"


# --- 1: --print gives the token, and only it, on stdout ------------------------------------------


def test_every_platform_has_detection_env(tmp_path: Path) -> None:
    for name in PLATFORM_NAMES:
        assert platform_for(detection_env(name, tmp_path)).name == name


@needs_cli
@pytest.mark.parametrize("platform", PLATFORM_NAMES)
def test_print_stdout_is_exactly_the_token(tmp_path: Path, key: KeyMaterial, platform: str) -> None:
    env = {**asc_env(key), **detection_env(platform, tmp_path), "GITHUB_OUTPUT": str(tmp_path / "out")}
    run = run_cli(tmp_path, env, ["--print", "--no-verify"])
    assert run.returncode == 0, run.stderr
    token = run.stdout[:-1]
    assert run.stdout == token + "\n"
    assert key.decode(token)["iss"] == ISSUER_ID
    if platform == "github":  # still masked: the runner reads workflow commands on stderr too
        assert f"::add-mask::{token}" in run.stderr.splitlines()


@needs_cli
@pytest.mark.parametrize("platform", PLATFORM_NAMES)
def test_print_stdout_is_empty_on_error(tmp_path: Path, key: KeyMaterial, platform: str) -> None:
    env = {**asc_env(key), **detection_env(platform, tmp_path), "ASC_KEY_ID": "short"}
    run = run_cli(tmp_path, env, ["--print", "--no-verify"])
    assert run.returncode == 2
    assert run.stdout == ""
    assert "ASC_KEY_ID" in run.stderr and "Traceback" not in run.stderr


# --- 2: a key pasted into a path setting is never echoed -----------------------------------------


@pytest.mark.parametrize("form", ["pem", "base64"])
def test_key_in_private_key_path_input(tmp_path: Path, key: KeyMaterial, form: str) -> None:
    pasted = key.pem if form == "pem" else key.base64_of_file
    result = run_entrypoint(tmp_path, {**action_inputs(key, **{"private-key": "", "private-key-path": pasted})})
    assert result.returncode == 2
    message = one_error(result)
    assert "`private-key-path` holds what looks like the key itself" in message
    assert_no_secrets(result, [*key.secret_fragments(), key.base64_of_file])


@needs_cli
@pytest.mark.parametrize(
    "variable", ["ASC_PRIVATE_KEY_PATH", "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH", "PLUGIN_PRIVATE_KEY_PATH"]
)
@pytest.mark.parametrize("form", ["pem", "base64"])
def test_key_in_path_variable(tmp_path: Path, key: KeyMaterial, variable: str, form: str) -> None:
    pasted = key.pem if form == "pem" else key.base64_of_file
    env = {variable: pasted, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID, "GITLAB_CI": "true"}
    run = run_cli(tmp_path, env, ["--print", "--no-verify"])
    assert run.returncode == 2 and run.stdout == ""
    assert f"{variable} holds what looks like the key itself" in run.stderr
    for fragment in [*key.secret_fragments(), key.base64_of_file]:
        assert fragment not in run.stderr
    assert "Traceback" not in run.stderr


def test_overlong_path_is_not_quoted(tmp_path: Path, key: KeyMaterial) -> None:
    path = "some.dir/" * 556  # 5,004 characters: ENAMETOOLONG, and not shaped like a key
    result = run_in_process(tmp_path, action_inputs(key, **{"private-key": "", "private-key-path": path}))
    assert result.returncode == 2
    message = one_error(result)
    assert "cannot be opened as a file" in message and "not shown" in message
    assert "some.dir/some.dir" not in result.stdout + result.summary


@pytest.mark.parametrize("setting", ["key-id", "issuer-id", "key-type", "expires-in", "verify", "write-key-files"])
def test_key_fragment_in_another_input_is_not_echoed(tmp_path: Path, key: KeyMaterial, setting: str) -> None:
    fragment = raw_key_b64(key)
    assert len(fragment) == 44
    result = run_in_process(tmp_path, action_inputs(key, **{setting: fragment}))
    assert result.returncode == 2
    one_error(result)
    for shown in (fragment, fragment.lower(), fragment[:24]):
        assert shown not in result.stdout + result.summary


# --- 3: API answers cannot inject commands or Markdown -------------------------------------------


def hostile_answers() -> Dict[str, Fault]:
    return {
        "detail": Fault("apple-error", status=403, code="FORBIDDEN_ERROR", title="Forbidden", detail=HOSTILE),
        "title": Fault("apple-error", status=403, code="FORBIDDEN_ERROR", title=HOSTILE, detail="x"),
        "code": Fault("apple-error", status=403, code=HOSTILE, title="t", detail="d"),
        "html title": Fault("html-page", status=403, title=HOSTILE, detail=HOSTILE),
    }


@pytest.mark.parametrize("where", sorted(hostile_answers()))
def test_injection_through_the_action(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, where: str
) -> None:
    api.inject(hostile_answers()[where])
    result = run_entrypoint(tmp_path, action_inputs(key, verify="true", **{"api-url": api.url}))
    assert result.returncode == 1
    one_error(result)
    foreign_lines_are_inert(result.log)
    assert_markdown_inert(result.summary)
    assert "credentials accepted" not in result.summary


@needs_cli
@pytest.mark.parametrize("platform", ["github", "azure"])
@pytest.mark.parametrize("where", sorted(hostile_answers()))
def test_injection_through_the_cli(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, platform: str, where: str
) -> None:
    api.inject(hostile_answers()[where])
    run = run_cli(tmp_path, {**asc_env(key), **detection_env(platform, tmp_path)}, ["--api-url", api.url])
    assert run.returncode == 1
    assert run.stdout.count("##vso[task.setvariable") == 0 and "Traceback" not in run.stderr
    foreign_lines_are_inert(run.stdout + run.stderr, azure=platform == "azure")


def assert_markdown_inert(summary: str) -> None:
    """Whatever foreign text the summary holds, it renders as text: no image, link or HTML."""
    html = rendered(summary)
    for tag in ("<img", "<a ", "<script", "<details"):
        assert tag not in html, html
    # Every row of a table has as many cells as its header, however the text looks.
    header_cells = 0
    for line in summary.splitlines():
        cells = len(re.findall(r"(?<!\\)\|", line)) if line.startswith("|") else 0
        header_cells = header_cells or cells
        assert cells in (0, header_cells), line
        header_cells = header_cells if cells else 0


def test_summary_escapes_markdown_in_message_scope_and_details() -> None:
    from asc_token.config import Credentials
    from asc_token.keys import KeySource

    settings = Credentials(
        key_id=KEY_ID,
        issuer_id=ISSUER_ID,
        key_type="team",
        expires_in=1200,
        scope=("GET /v1/apps?x=![i](http://127.0.0.1:9/x.png)|<b>|`", "GET /v1/builds"),
        key=KeySource("`private-key`", contents="x"),
    )
    details = "Apple said:\n```\n## not a heading\n````\n<img src=x>\n```````"
    error = AscTokenError(f"The server said {HOSTILE}.", details=details)
    summary = summary_markdown(settings, None, None, error, GitHubInputs({}))
    assert_markdown_inert(summary)
    fence = "`" * 8  # one longer than the longest backtick run in the details
    lines = summary.splitlines()
    opened = lines.index(fence)
    assert lines[opened + 1 : opened + 1 + len(details.splitlines())] == details.splitlines()
    assert lines[opened + 1 + len(details.splitlines())] == fence
    html = rendered(summary)
    assert "&lt;img src=x&gt;" in html and "pwned" in html  # shown, as text
    assert html.count("<tr>") == 5  # header, key ID, key type, scope, result: no row added by text


def test_summary_renders_its_own_code_spans_and_escapes_foreign_text() -> None:
    said = quote_foreign(f"{HOSTILE} `<img src=x>` `[l](http://127.0.0.1:9/)`")
    error = AscTokenError(f"Set `key-id` to the Key ID; the server said {said}; or set `verify: false`.")
    summary = summary_markdown(None, None, None, error, GitHubInputs({}))
    assert_markdown_inert(summary)
    html = rendered(summary)
    assert "<code>key-id</code>" in html and "<code>verify: false</code>" in html
    assert html.count("<code>") == 2  # the server's backticks became quotes: no code span of its own
    assert "&lt;img src=x&gt;" in html and "pwned" in html


@pytest.mark.parametrize(
    "message",
    ["`key-id` and ` <img src=x> ` `", "a ``` b `![i](http://127.0.0.1:9/x.png)` c ` | d", "\\`x` ` <b>`y"],
)
def test_summary_stays_inert_whatever_backticks_a_message_holds(message: str) -> None:
    """Foreign text that reached a message without quote_foreign can pair a backtick: still text or code."""
    summary = summary_markdown(None, None, None, AscTokenError(message), GitHubInputs({}))
    assert_markdown_inert(summary)
    assert "<b>" not in rendered(summary)


def test_markdown_text_escapes_what_acts() -> None:
    assert markdown_text("a|b") == "a\\|b"
    assert markdown_text("![x](y) <b> `c` *d* _e_ [f] &amp; ~g~ #h") == (
        "\\!\\[x\\](y) \\<b\\> \\`c\\` \\*d\\* \\_e\\_ \\[f\\] \\&amp; \\~g\\~ \\#h"
    )
    assert markdown_text("one\ntwo\r\nthree") == "one two three"  # one line: a table cell stays one
    assert markdown_text("a\\") == "a\\\\"


# --- 5: plain http:// only to this machine ---------------------------------------------------


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
    result = run_in_process(tmp_path, action_inputs(key, verify="true", **{"api-url": "http://api.example"}))
    assert result.returncode == 2
    message = one_error(result)
    assert "`api-url`" in message and "plain http://" in message
    assert "token" not in result.outputs


# --- 6: a redirect or an HTML page is never "verified" -------------------------------------------


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (Fault("redirect", status=302, location="https://login.example/portal"), "redirect (302)"),
        (Fault("html-page", status=200, title="Hotel Wi-Fi: sign in"), "page title"),
    ],
)
def test_redirect_or_html_is_a_failure(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, fault: Fault, says: str
) -> None:
    api.inject(fault)
    result = run_in_process(tmp_path, action_inputs(key, verify="true", **{"api-url": api.url}))
    assert result.returncode == 1
    message = one_error(result)
    assert says in message and "`api-url`" in message
    assert "credentials accepted" not in result.summary and "token" not in result.outputs
    assert "Something between the runner and App Store Connect answered" in result.summary
    assert api.requests == [("/v1/apps?limit=1", f"{fault.kind} {fault.status}")]


def test_html_200_explained_as_not_apple() -> None:
    reply = Reply(200, {"content-type": "text/html"}, b"<html><title>Captive portal</title></html>")
    error = explain_reply(reply, Asked("https://api.example/v1/apps", "team"), GitHubInputs({}), time.time)
    assert isinstance(error, NotAppleError)
    assert 'page title "Captive portal"' in error.message


# --- 7: Azure and Buildkite know the token before the first request ------------------------------


@needs_cli
@pytest.mark.parametrize("platform", ["azure", "buildkite"])
def test_token_is_registered_for_masking_before_the_request(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stdout_path = tmp_path / "stdout.txt"
    recorder = tmp_path / "recorder"

    def registered() -> str:
        if platform == "azure":
            text = stdout_path.read_text() if stdout_path.exists() else ""
            return "\n".join(line for line in text.splitlines() if line.startswith("##vso[task.setsecret]"))
        log = recorder / "stdin.log"
        return log.read_text() if log.exists() else ""

    known_at_request: List[bool] = []
    check_token = api.check_token

    def observing(authorization: str, method: str, path: str) -> Tuple[int, str, str]:
        # The moment the server holds the token: the platform's masking must know it already.
        known_at_request.append(authorization.split(" ", 1)[-1] in registered())
        return check_token(authorization, method, path)

    monkeypatch.setattr(api, "check_token", observing)
    env = {**asc_env(key), **detection_env(platform, tmp_path)}
    run = run_cli(tmp_path, env, ["--api-url", api.url], stdout_path=stdout_path)
    assert run.returncode == 0, run.stderr
    assert known_at_request == [True]


# --- 8: the composite reads INPUT_KEY_ID, the container INPUT_KEY-ID, never both -----------------


def test_composite_ignores_a_job_level_hyphen_input() -> None:
    env = {"INPUT_KEY_ID": KEY_ID, "INPUT_API_URL": "https://api.appstoreconnect.apple.com"}
    env.update([COMPOSITE_MARKER])
    env["INPUT_API-URL"] = "http://127.0.0.1:9"  # a job-level `env:` entry, not the step's `with:`
    env["INPUT_ISSUER_ID"] = ""  # an input left empty in `with:` stays empty...
    env["INPUT_ISSUER-ID"] = "11111111-2222-3333-4444-555555555555"  # ...whatever the job sets
    inputs = GitHubInputs(env)
    assert inputs.get("api-url") == "https://api.appstoreconnect.apple.com"
    assert inputs.get("key-id") == KEY_ID
    assert inputs.get("issuer-id") == ""


def test_container_ignores_an_underscore_input() -> None:
    env = {"INPUT_KEY-ID": KEY_ID, "INPUT_API-URL": "", "INPUT_API_URL": "http://127.0.0.1:9"}
    inputs = GitHubInputs(env)
    assert inputs.get("api-url") == ""
    assert inputs.get("key-id") == KEY_ID


def test_container_ignores_a_job_level_underscore_key_id() -> None:
    """A job's `env: INPUT_KEY_ID` once switched the container's reader to underscores: the job beat `with:`."""
    logged: List[str] = []
    inputs = GitHubInputs(
        {"INPUT_KEY-ID": KEY_ID, "INPUT_KEY_ID": "ZZZZZ99999", "INPUT_ISSUER_ID": ISSUER_ID}, logged.append
    )
    assert inputs.get("key-id") == KEY_ID
    assert inputs.get("issuer-id") == ""  # only the runner's form of `with:` counts
    assert inputs.get("key-id") == KEY_ID  # said once per setting
    assert logged == [
        f"`key-id`: INPUT_KEY-ID ('{KEY_ID}') is used; INPUT_KEY_ID ('ZZZZZ99999') is also set, to a different "
        "value, and ignored (this action reads the step's `with:` as INPUT_KEY-ID; INPUT_KEY_ID comes from an `env:`).",
        f"`issuer-id`: INPUT_ISSUER-ID (empty) is used; INPUT_ISSUER_ID ('{ISSUER_ID}') is also set, to a different "
        "value, and ignored (this action reads the step's `with:` as INPUT_ISSUER-ID; INPUT_ISSUER_ID comes from an "
        "`env:`).",
    ]


def test_the_composite_says_so_in_its_own_step_env() -> None:
    step = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"][0]
    name, value = COMPOSITE_MARKER
    assert step["env"][name] == value
    assert all(not key.startswith("INPUT_") or "-" not in key for key in step["env"])


def test_the_action_logs_an_ignored_job_level_input(tmp_path: Path, key: KeyMaterial) -> None:
    inputs = {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false"}
    result = run_in_process(tmp_path, inputs, env={"INPUT_KEY_ID": "ZZZZZ99999"})
    assert result.returncode == 0, result.log
    assert jwt.get_unverified_header(result.outputs["token"])["kid"] == KEY_ID
    assert "INPUT_KEY_ID ('ZZZZZ99999') is also set, to a different value, and ignored" in result.stdout
    assert_no_secrets(result, key.secret_fragments())


def test_the_composite_logs_an_ignored_job_level_input(tmp_path: Path, key: KeyMaterial) -> None:
    inputs = {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false"}
    result = run_in_process(tmp_path, inputs, composite=True, env={"INPUT_KEY-ID": "ZZZZZ99999"})
    assert result.returncode == 0, result.log
    assert jwt.get_unverified_header(result.outputs["token"])["kid"] == KEY_ID
    assert "INPUT_KEY-ID ('ZZZZZ99999') is also set" in result.stdout


# --- 9: the key folder is a real folder that only this user can write ----------------------------


def write_files(base: Path, key: KeyMaterial) -> secret_files.KeyFiles:
    return secret_files.write_key_files(base_dir=str(base), key_pem=key.pem, key_id=KEY_ID, issuer_id=None, duration=60)


@posix_only
def test_key_folder_is_created_private(tmp_path: Path, key: KeyMaterial) -> None:
    files = write_files(tmp_path, key)
    assert stat.S_IMODE(os.lstat(files.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(files.key_path).st_mode) == 0o600


@posix_only
@pytest.mark.parametrize("target", ["folder", "dangling"])
def test_symlinked_key_folder_is_refused(tmp_path: Path, key: KeyMaterial, target: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    if target == "folder":
        elsewhere.mkdir(mode=0o755)
    temp = tmp_path / "temp"
    temp.mkdir()
    (temp / "private_keys").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(KeyFilesError, match="is a symbolic link"):
        write_files(temp, key)
    if target == "folder":
        assert list(elsewhere.iterdir()) == []
        assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755  # not chmod-ed through the link
    else:
        assert not elsewhere.exists()


@posix_only
def test_symlinked_key_folder_through_the_action(tmp_path: Path, key: KeyMaterial) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "temp").mkdir()
    (tmp_path / "temp" / "private_keys").symlink_to(elsewhere, target_is_directory=True)
    result = run_entrypoint(tmp_path, action_inputs(key, **{"write-key-files": "true"}))
    assert result.returncode == 1
    assert "symbolic link" in one_error(result)
    assert list(elsewhere.iterdir()) == [] and "key-path" not in result.outputs


@posix_only
def test_foreign_owned_key_folder_is_refused(tmp_path: Path, key: KeyMaterial, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "private_keys").mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: os.lstat(tmp_path).st_uid + 1)  # as seen by another user
    with pytest.raises(KeyFilesError, match="belongs to another user"):
        write_files(tmp_path, key)


@posix_only
def test_writable_by_others_key_folder_is_refused(tmp_path: Path, key: KeyMaterial) -> None:
    folder = tmp_path / "private_keys"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(KeyFilesError, match="can be written by other users"):
        write_files(tmp_path, key)
    assert list(folder.iterdir()) == []


# --- 10: bounded time and size, whatever the server sends -----------------------------------------


T = TypeVar("T")


def quick(work: Callable[[], T]) -> T:
    start = time.monotonic()
    result = work()
    assert time.monotonic() - start < 2, "linear work on 1 MB took too long"
    return result


def test_title_spam_is_summarised_quickly() -> None:
    for body in (b"<title" * 180_000, b"<title>" + b"a" * 1_000_000, b"<TITLE>x</title" * 70_000):
        reply = Reply(502, {"content-type": "text/html"}, body)
        summary = quick(functools.partial(summarise_body, reply))
        assert isinstance(summary, str) and len(summary) < 300


def test_rate_limit_header_spam_is_parsed_quickly() -> None:
    for header in ("user-hour-lim:" + "1" * 1_000_000, ";" * 1_000_000, "user-hour-rem:1;" * 70_000, "a:" * 500_000):
        assert quick(functools.partial(parse_rate_limit, header)) in ((None, None), (None, 1))


def test_trickled_body_ends_at_the_deadline(api: AppStoreConnectStandIn) -> None:
    api.inject(*[Fault("trickle", seconds=0.2)] * 3)
    policy = RetryPolicy(total_seconds=2, connect_timeout=1, read_timeout=1, backoff_base=0.05, backoff_cap=0.1)
    start = time.monotonic()
    with pytest.raises(NoAnswerError) as raised:
        Transport(policy=policy).send("GET", api.url + "/v1/apps?limit=1", FixedToken("token"))
    assert raised.value.kind == "timeout"
    assert time.monotonic() - start < policy.total_seconds + 1.5


@pytest.mark.parametrize("megabytes", [1, 5])
def test_huge_detail_stays_out_of_log_and_summary(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, megabytes: int
) -> None:
    api.inject(
        Fault("apple-error", status=403, code="FORBIDDEN_ERROR", title="t", detail="DDDD " * ((megabytes << 20) // 5))
    )
    result = run_in_process(tmp_path, action_inputs(key, verify="true", **{"api-url": api.url}))
    assert result.returncode == 1
    one_error(result)
    assert len(result.summary) < 100_000 and len(result.stdout) < 100_000
    assert "DDDD" in result.summary or "body of 4194304+ bytes" in result.summary


# --- 11: no "Internal error" from any input ---------------------------------------------------


@pytest.mark.parametrize("value", ["²", "9" * 5000, "١٢٠"])
def test_expires_in_that_is_not_ascii_digits(tmp_path: Path, key: KeyMaterial, value: str) -> None:
    result = run_in_process(tmp_path, action_inputs(key, **{"expires-in": value}))
    assert result.returncode == 2
    assert "`expires-in` must be" in one_error(result)


def test_retry_after_that_is_not_ascii_digits(api: AppStoreConnectStandIn, key: KeyMaterial) -> None:
    transport = Transport(policy=FAST)
    for value in ("²", "9" * 5000, "-1", "1e9", ""):
        assert transport._retry_after(Reply(429, {"retry-after": value}, b"")) is None
    assert transport._retry_after(Reply(429, {"retry-after": "3600"}, b"")) == FAST.retry_after_cap
    api.inject(
        Fault("apple-error", status=429, code="RATE_LIMIT_EXCEEDED", headers=(("Retry-After", "²"),)),
        Fault("apple-error", status=404, code="NOT_FOUND"),
    )
    reply = transport.send("GET", api.url + "/v1/apps?limit=1", FixedToken("not checked"))
    assert (reply.status, reply.attempts) == (404, 2)  # retried after its own backoff, then answered


def _okp_pkcs8_pem(oid: bytes, length: int) -> str:
    """A PKCS#8 Ed448/X448 key whose private key has the wrong length (OpenSSL: InternalError)."""

    def tlv(tag: int, content: bytes) -> bytes:
        return bytes([tag, len(content)]) + content

    der = tlv(0x30, tlv(0x02, b"\x00") + tlv(0x30, oid) + tlv(0x04, tlv(0x04, b"\x01" * length)))
    return "-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der).decode() + "\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(("name", "oid"), [("Ed448", b"\x06\x03\x2b\x65\x71"), ("X448", b"\x06\x03\x2b\x65\x6f")])
@pytest.mark.parametrize("length", [1, 32, 100])
def test_edwards_key_of_wrong_length(name: str, oid: bytes, length: int) -> None:
    with pytest.raises(WrongKeyTypeError, match=f"is an {name} key"):
        load_private_key(_okp_pkcs8_pem(oid, length), input_label="`private-key`")


def test_edwards_key_through_the_action(tmp_path: Path, key: KeyMaterial) -> None:
    pem = _okp_pkcs8_pem(b"\x06\x03\x2b\x65\x71", 32)
    result = run_in_process(tmp_path, action_inputs(key, **{"private-key": pem}))
    assert result.returncode == 2
    assert "`private-key` is an Ed448 key" in one_error(result)


def test_read_only_runner_temp(tmp_path: Path, key: KeyMaterial, monkeypatch: pytest.MonkeyPatch) -> None:
    real_mkdir = os.mkdir

    def refuse(path: str, mode: int = 0o777) -> None:
        if os.path.basename(os.fspath(path)) != "private_keys":
            return real_mkdir(path, mode)  # the test harness's own folders
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "mkdir", refuse)  # a read-only RUNNER_TEMP, even for root
    result = run_in_process(tmp_path, action_inputs(key, **{"write-key-files": "true"}))
    assert result.returncode == 1
    assert "could not create" in one_error(result) and "Permission denied" in result.stdout


@posix_only
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_runner_temp_for_real(tmp_path: Path, key: KeyMaterial) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    temp.chmod(0o500)
    try:
        result = run_entrypoint(tmp_path, action_inputs(key, **{"write-key-files": "true"}))
    finally:
        temp.chmod(0o700)
    assert result.returncode == 1
    assert "could not create" in one_error(result)


def test_key_folder_exists_as_a_file(tmp_path: Path, key: KeyMaterial) -> None:
    (tmp_path / "private_keys").write_text("not a folder")
    result = run_in_process(tmp_path, action_inputs(key, **{"write-key-files": "true"}))
    assert result.returncode == 1
    assert "is not a folder" in one_error(result)
    assert (tmp_path / "private_keys").read_text() == "not a folder"


def test_key_files_are_both_written_or_neither(
    tmp_path: Path, key: KeyMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = secret_files.write_secret_file

    def fail_on_json(path: str, content: str) -> None:
        if path.endswith(".json"):
            raise OSError(28, "No space left on device", path)
        real(path, content)

    monkeypatch.setattr(secret_files, "write_secret_file", fail_on_json)
    result = run_in_process(tmp_path, action_inputs(key, **{"write-key-files": "true"}))
    assert result.returncode == 1
    assert "No space left on device" in one_error(result)
    assert list((tmp_path / "private_keys").iterdir()) == []


@needs_cli
def test_output_file_is_a_folder(tmp_path: Path, key: KeyMaterial) -> None:
    (tmp_path / "folder").mkdir()
    run = run_cli(tmp_path, asc_env(key), ["--no-verify", "--output-file", str(tmp_path / "folder")])
    assert run.returncode == 1 and run.stdout == ""
    assert "error: The token file" in run.stderr and "--output-file" in run.stderr
    assert "Internal error" not in run.stderr and "Traceback" not in run.stderr


@needs_cli
@pytest.mark.parametrize(("platform", "tool"), [("buildkite", "buildkite-agent"), ("bitrise", "envman")])
def test_platform_tool_is_missing(tmp_path: Path, key: KeyMaterial, platform: str, tool: str) -> None:
    run = run_cli(tmp_path, {**asc_env(key), **detection_env(platform, tmp_path)}, ["--no-verify"], tools=False)
    assert run.returncode == 1 and run.stdout == ""
    assert f"{tool} was not found on PATH" in run.stderr
    assert "Internal error" not in run.stderr and "Traceback" not in run.stderr


# --- 12: argparse never echoes an argument's value ------------------------------------------------


@needs_cli
@pytest.mark.parametrize("form", ["pem", "base64"])
@pytest.mark.parametrize("how", ["--private={}", "--private-key-path-typo={}", "{}"])
def test_unknown_argument_values_are_not_echoed(tmp_path: Path, key: KeyMaterial, form: str, how: str) -> None:
    pasted = key.pem if form == "pem" else key.base64_of_file
    run = run_cli(tmp_path, asc_env(key), ["--print", how.format(pasted)])
    assert run.returncode == 2 and run.stdout == ""
    assert "unrecognised arguments" in run.stderr
    for fragment in [*key.secret_fragments(), pasted[:40]]:
        assert fragment not in run.stderr


@needs_cli
def test_unknown_argument_is_named_without_its_value(tmp_path: Path, key: KeyMaterial) -> None:
    run = run_cli(tmp_path, asc_env(key), ["--print", "--bogus=hunter2", "stray-value"])
    assert run.returncode == 2 and run.stdout == ""
    assert "unrecognised arguments: --bogus" in run.stderr
    assert "hunter2" not in run.stderr and "stray-value" not in run.stderr


# --- 13: every form of the key is masked before anything is printed ------------------------------


def pem_body(pem: str) -> List[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def key_forms(key: KeyMaterial) -> Dict[str, Tuple[str, List[str]]]:
    """Each form a user pastes, with the forms of it that must be masked besides both PEM bodies."""
    escaped = key.pem.replace("\n", "\\n")
    sec1_b64 = base64.b64encode(key.sec1.encode()).decode()
    der = key.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    der_b64 = base64.b64encode(der).decode()
    return {
        "pkcs8": (key.pem, []),
        "sec1": (key.sec1, []),
        "base64 of the file": (key.base64_of_file, [key.base64_of_file]),
        "base64 of sec1": (sec1_b64, [sec1_b64]),
        "base64 of DER": (der_b64, [der_b64]),
        "escaped one line": (escaped, [escaped]),
    }


@pytest.mark.parametrize(
    "form", ["pkcs8", "sec1", "base64 of the file", "base64 of sec1", "base64 of DER", "escaped one line"]
)
def test_every_form_is_masked_first(tmp_path: Path, key: KeyMaterial, form: str) -> None:
    given, extra = key_forms(key)[form]
    result = run_entrypoint(tmp_path, action_inputs(key, **{"private-key": given}))
    assert result.returncode == 0, result.log
    lines = result.stdout.splitlines()
    first_other = next(i for i, line in enumerate(lines) if not line.startswith("::add-mask::"))
    masked = {line[len("::add-mask::") :] for line in lines[:first_other]}
    pkcs8, sec1 = pem_body(key.pem), pem_body(key.sec1)
    expected = {*pkcs8, *sec1, "".join(pkcs8), "".join(sec1), *extra}
    assert expected <= masked, sorted(expected - masked)
    assert result.outputs["token"] in masked
    assert_no_secrets(result, sorted(expected))


# --- issue 14 item 2: key files from the container image would be lost --------------------------


@pytest.mark.parametrize(
    ("env", "in_container", "code_path", "refused"),
    [
        # GitHub's container step: the host's RUNNER_TEMP (not mounted) or act's own /tmp.
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/home/runner/work/_temp"}, True, "/opt/asc-token-action/src/asc_token/secret_files.py", True),
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/tmp"}, True, "/opt/asc-token-action/src/asc_token/secret_files.py", True),
        # The composite action in a `container:` job: the job container's mounted temp.
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/__w/_temp"}, True, "/__w/_actions/org/asc-token-action/v1/src/asc_token/secret_files.py", False),
        # The composite under act: everything runs in the job container, /tmp included.
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/tmp"}, True, "/var/run/act/actions/org-asc-token-action@v1/src/asc_token/secret_files.py", False),
        # The image's own code as a `run:` step in a `container:` job that uses the image.
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/__w/_temp"}, True, "/opt/asc-token-action/src/asc_token/secret_files.py", False),
        # A runner on the host, and the image outside GitHub.
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/home/runner/work/_temp"}, False, "/home/runner/work/_actions/x/src/asc_token/secret_files.py", False),
        ({"RUNNER_TEMP": "/tmp"}, True, "/opt/asc-token-action/src/asc_token/secret_files.py", False),
    ],
)  # fmt: skip
def test_is_container_action(env: Dict[str, str], in_container: bool, code_path: str, refused: bool) -> None:
    assert secret_files.is_container_action(env, in_container=in_container, code_path=code_path) is refused


def test_key_files_refused_in_the_container_image(
    tmp_path: Path, key: KeyMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    # act: RUNNER_TEMP exists inside the container, so writing would "succeed" into a lost folder.
    monkeypatch.setattr(secret_files, "_CODE_PATH", secret_files.IMAGE_HOME + "src/asc_token/secret_files.py")
    monkeypatch.setattr(secret_files, "_in_container", lambda: True)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = run_in_process(tmp_path, action_inputs(key, **{"write-key-files": "true", "export-env": "true"}))
    assert result.returncode == 1
    message = one_error(result)
    assert "container image" in message and "composite action" in message
    assert not (tmp_path / "private_keys").exists() and result.env_file == {}


@needs_cli
def test_malformed_api_url_host_is_a_setting_error_not_a_crash(tmp_path: Path, key: KeyMaterial) -> None:
    for args in (["--api-url", "https://" + "a" * 64 + ".example"], ["api", "--api-url", "https://a..b", "/v1/apps"]):
        run = run_cli(tmp_path, asc_env(key), args)
        assert run.returncode in (1, 2) and "Internal error" not in run.stderr, run.stderr
        assert "does not have a valid host name" in run.stderr


def test_an_unexpected_error_is_one_line_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug is reported on stderr without a traceback, and not with `asc-token api`'s 2 ("nothing was sent")."""
    from asc_token import dispatch, token_command

    def broken(argv: object = None, io: object = None) -> int:
        raise RuntimeError("a message that could quote an input")

    monkeypatch.setattr(token_command, "main", broken)
    assert dispatch.main(["--version"], force_cli=True) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("::error title=Internal error::") and "RuntimeError" in captured.err
    assert "could quote an input" not in captured.err and "Traceback" not in captured.err


def test_a_short_key_piece_in_the_path_setting_is_not_echoed(tmp_path: Path, key: KeyMaterial) -> None:
    piece = key.pem.splitlines()[1][:36]
    result = run_in_process(tmp_path, action_inputs(key, **{"private-key": "", "private-key-path": piece}))
    assert result.returncode == 2
    assert piece not in result.log and piece not in result.summary
