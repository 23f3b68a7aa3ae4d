"""The installed ``asc-token`` on each CI platform: the token reaches the platform's sink,
verifies with the public key, and never appears in any subprocess's argv or the log.

What is refused about the token file, and the expiry handed on beside the token, run the same step
in this process with its streams read at the file descriptors (OnFds): no interpreter start each.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from devtools.runnerfiles import parse_file_command
from devtools.standin import AppStoreConnectStandIn

from .conftest import OTHER_ISSUER
from .runner import ISSUER_ID, KEY_ID, PROCESS, KeyMaterial, OnFds, assert_no_secrets, invoke, needs_cli, settings

pytestmark = needs_cli


def test_print_gives_only_the_token_on_stdout(tmp_path: Path, key: KeyMaterial) -> None:
    run = invoke(
        "asc-token", tmp_path, settings(key), ["--print", "--no-verify"], mode=PROCESS, env={"GITLAB_CI": "true"}
    )
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    assert run.stdout == token + "\n"
    assert key.decode(token)["iss"] == ISSUER_ID
    assert "on gitlab" in run.stderr
    assert "dotenv" in run.stderr  # the warning that GitLab does not mask dotenv variables
    assert "private-key from ASC_PRIVATE_KEY" in run.stderr  # names of the sources, never values
    assert_no_secrets(run, key.secret_fragments(), token=token)


def test_output_file_is_0600(tmp_path: Path, key: KeyMaterial) -> None:
    target = tmp_path / "out" / "token"
    run = invoke(
        "asc-token",
        tmp_path,
        settings(key),
        ["--no-verify", "--output-file", str(target)],
        mode=PROCESS,
        env={"JENKINS_URL": "https://ci.example"},
    )
    assert run.returncode == 0, run.stderr
    token = target.read_text().strip()
    assert key.decode(token)["iss"] == ISSUER_ID
    if os.name != "nt":
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert run.stdout == ""
    assert_no_secrets(run, key.secret_fragments(), token=token)


@pytest.mark.parametrize("platform", [{"GITHUB_ACTIONS": "true"}, {"TF_BUILD": "True"}, {}])
def test_output_file_dash_is_stdout_as_in_asc_token_api(
    tmp_path: Path, key: KeyMaterial, platform: Dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    """One meaning for -: stdout, as --print (masked on stderr, nothing else on stdout); never a file named -."""
    run = invoke(
        "asc-token", tmp_path, settings(key), ["--no-verify", "--output-file", "-"], mode=OnFds(capfd), env=platform
    )
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    assert run.stdout == token + "\n" and key.decode(token)["iss"] == ISSUER_ID
    assert not (tmp_path / "-").exists() and "stdout (--output-file -)" in run.stderr
    assert_no_secrets(run, key.secret_fragments(), token=token)


def test_azure_secret_variable(tmp_path: Path, key: KeyMaterial) -> None:
    run = invoke("asc-token", tmp_path, settings(key), mode=PROCESS, env={"TF_BUILD": "True"})
    assert run.returncode == 0, run.stderr
    prefix = "##vso[task.setvariable variable=ASC_TOKEN;issecret=true]"
    lines = [line for line in run.stdout.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1
    token = lines[0][len(prefix) :]
    assert key.decode(token)["iss"] == ISSUER_ID
    assert_no_secrets(run, key.secret_fragments(), token=token)


def test_circleci_bash_env(tmp_path: Path, key: KeyMaterial) -> None:
    bash_env = tmp_path / "bash_env"
    bash_env.write_text("export EXISTING=1\n")
    run = invoke(
        "asc-token", tmp_path, settings(key), mode=PROCESS, env={"CIRCLECI": "true", "BASH_ENV": str(bash_env)}
    )
    assert run.returncode == 0, run.stderr
    sourced = subprocess.run(
        ["bash", "-c", f'source "{bash_env}"; printf "%s" "$ASC_TOKEN"'], capture_output=True, text=True, check=True
    ).stdout
    assert key.decode(sourced)["iss"] == ISSUER_ID
    assert "export EXISTING=1" in bash_env.read_text()
    assert sourced not in run.stdout
    assert_no_secrets(run, key.secret_fragments(), token=sourced)


def test_bitrise_envman_sensitive_on_stdin(tmp_path: Path, key: KeyMaterial) -> None:
    run = invoke("asc-token", tmp_path, settings(key), mode=PROCESS, env={"BITRISE_IO": "true"})
    assert run.returncode == 0, run.stderr
    assert "envman add --key ASC_TOKEN --sensitive" in run.argv_log()
    token = run.stdin_log().splitlines()[0]
    assert key.decode(token)["iss"] == ISSUER_ID
    assert token not in run.stdout
    assert_no_secrets(run, key.secret_fragments(), token=token)


def test_buildkite_redactor_then_file(tmp_path: Path, key: KeyMaterial) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    run = invoke(
        "asc-token",
        tmp_path,
        settings(key),
        mode=PROCESS,
        env={"BUILDKITE": "true", "BUILDKITE_BUILD_CHECKOUT_PATH": str(checkout)},
    )
    assert run.returncode == 0, run.stderr
    # Every secret (the key's forms, then the token) reaches the redactor on stdin, before any request.
    assert set(run.argv_log().splitlines()) == {"buildkite-agent redactor add"}
    redacted = run.stdin_log().split()
    written = (checkout / ".asc-token").read_text().strip()
    assert redacted[-1] == written
    assert all(line in redacted for line in key.pem.splitlines()[1:-1])
    assert key.decode(written)["iss"] == ISSUER_ID
    assert_no_secrets(run, key.secret_fragments(), token=written)


@pytest.mark.parametrize("flavour", ["woodpecker", "drone"])
def test_plugin_settings_and_token_file(tmp_path: Path, key: KeyMaterial, flavour: str) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    markers = {"woodpecker": {"CI": "woodpecker", "CI_WORKSPACE": str(workspace)},
               "drone": {"DRONE": "true", "DRONE_WORKSPACE": str(workspace)}}[flavour]  # fmt: skip
    env = {**markers, "PLUGIN_PRIVATE_KEY": key.base64_of_file, "PLUGIN_KEY_ID": KEY_ID,
           "PLUGIN_ISSUER_ID": ISSUER_ID, "PLUGIN_VERIFY": "false"}  # fmt: skip
    run = invoke("asc-token", tmp_path, None, [], mode=PROCESS, env=env)
    assert run.returncode == 0, run.stderr
    token_file = workspace / ".asc-token"
    token = token_file.read_text().strip()
    assert key.decode(token)["iss"] == ISSUER_ID
    if os.name != "nt":
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "key-id from PLUGIN_KEY_ID" in run.stderr
    assert_no_secrets(run, key.secret_fragments(), token=token)


def test_github_actions_cli_masks_then_outputs(tmp_path: Path, key: KeyMaterial) -> None:
    output = tmp_path / "output"
    output.write_text("")
    run = invoke(
        "asc-token", tmp_path, settings(key), mode=PROCESS, env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output)}
    )
    assert run.returncode == 0, run.stderr
    token = parse_file_command(output.read_text())["token"]
    # Workflow commands go to stderr, which the runner reads too: stdout stays free for $(...).
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert lines.index(f"::add-mask::{token}") == min(i for i, line in enumerate(lines) if token in line)
    assert key.decode(token)["iss"] == ISSUER_ID
    assert_no_secrets(run, key.secret_fragments(), token=token)


def test_verify_against_the_standin(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    run = invoke("asc-token", tmp_path, settings(key, verify=None), ["--print", "--api-url", api.url], mode=PROCESS)
    assert run.returncode == 0, run.stderr
    assert "checks passed: apps (3 apps visible, 3599 requests left this hour)" in run.stderr
    # The 401 in process, where the retries can be quick; the message is the same.
    api.register(KEY_ID, key.key.public_key(), OTHER_ISSUER)
    failed = invoke("asc-token", tmp_path, settings(key, verify=None), ["--print", "--api-url", api.url])
    assert failed.returncode == 1
    assert "401 NOT_AUTHORIZED" in failed.stderr and "ASC_ISSUER_ID is not the issuer" in failed.stderr
    assert failed.stdout == ""


def test_bitbucket_pipe_writes_the_token_file(tmp_path: Path, key: KeyMaterial) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    run = invoke(
        "asc-token",
        tmp_path,
        settings(key),
        mode=PROCESS,
        env={"BITBUCKET_BUILD_NUMBER": "7", "BITBUCKET_CLONE_DIR": str(clone)},
    )
    assert run.returncode == 0, run.stderr
    token = (clone / ".asc-token").read_text().strip()
    assert key.decode(token)["iss"] == ISSUER_ID
    assert run.stdout == ""
    assert_no_secrets(run, key.secret_fragments(), token=token)


def test_generic_without_a_sink_says_how_to_get_the_token(tmp_path: Path, key: KeyMaterial) -> None:
    run = invoke("asc-token", tmp_path, settings(key), mode=PROCESS)
    assert run.returncode == 0, run.stderr
    assert "on generic" in run.stderr and "add --print" in run.stderr
    assert run.stdout == ""


# --- the token file's path is a user value: never echoed when it may be a key, nothing made of it ---


@pytest.mark.parametrize("form", ["pem", "base64", "escaped"])
@pytest.mark.parametrize("setting", ["--output-file", "PLUGIN_OUTPUT_FILE"])
def test_a_key_pasted_as_the_token_file_is_refused_and_not_echoed(
    tmp_path: Path, key: KeyMaterial, form: str, setting: str, capfd: pytest.CaptureFixture[str]
) -> None:
    pasted = {"pem": key.pem, "base64": key.base64_of_file, "escaped": key.pem.replace("\n", "\\n")}[form]
    env: Dict[str, str] = {}
    args = ["--no-verify"]
    if setting == "PLUGIN_OUTPUT_FILE":
        env.update(CI="woodpecker", PLUGIN_OUTPUT_FILE=pasted)
    else:
        env.update(GITHUB_ACTIONS="true")  # the error is an annotation there, which GitHub shows unmasked
        args += ["--output-file", pasted]
    before = sorted(path.name for path in tmp_path.iterdir())
    run = invoke("asc-token", tmp_path, settings(key), args, mode=OnFds(capfd), env=env)
    assert run.returncode == 2, run.stderr
    assert "looks like a key or token, not a file path" in run.stderr
    assert ("::error" in run.stderr) is (setting == "--output-file") and "Traceback" not in run.stderr
    for fragment in [*key.secret_fragments(), pasted[:30], pasted[-30:]]:
        assert fragment not in run.stdout + run.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # no file, no folder named after it


def test_an_ordinary_token_file_path_is_named(
    tmp_path: Path, key: KeyMaterial, capfd: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "tokens" / "asc.jwt"
    run = invoke("asc-token", tmp_path, settings(key), ["--no-verify", "--output-file", str(target)], mode=OnFds(capfd))
    assert run.returncode == 0 and "asc.jwt" in run.stderr, run.stderr


def test_the_expiry_is_handed_on_beside_the_token(
    tmp_path: Path, key: KeyMaterial, capfd: pytest.CaptureFixture[str]
) -> None:
    """ASC_TOKEN_EXPIRES_AT on Azure, CircleCI and Bitrise: a later step can tell when to mint again."""
    azure = invoke("asc-token", tmp_path / "azure", settings(key), mode=OnFds(capfd), env={"TF_BUILD": "True"})
    expiry = [line.rsplit("]", 1)[1] for line in azure.stdout.splitlines() if "variable=ASC_TOKEN_EXPIRES_AT]" in line]
    bash_env = tmp_path / "bash_env"
    invoke(
        "asc-token",
        tmp_path / "circleci",
        settings(key),
        mode=OnFds(capfd),
        env={"CIRCLECI": "true", "BASH_ENV": str(bash_env)},
    )
    sourced = subprocess.run(
        ["bash", "-c", f'source "{bash_env}"; printf "%s" "$ASC_TOKEN_EXPIRES_AT"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    bitrise = invoke("asc-token", tmp_path / "bitrise", settings(key), mode=OnFds(capfd), env={"BITRISE_IO": "true"})
    assert "envman add --key ASC_TOKEN_EXPIRES_AT" in bitrise.argv_log()
    handed = [*expiry, sourced, bitrise.stdin_log().splitlines()[1]]
    assert len(handed) == 3, azure.stdout
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value) for value in handed), handed


@pytest.mark.skipif(os.name == "nt", reason="POSIX special files")
@pytest.mark.parametrize("args", [["--no-verify"], ["api", "/v1/apps"]])
def test_a_special_file_is_never_replaced_by_the_token_file(
    tmp_path: Path, key: KeyMaterial, args: List[str], capfd: pytest.CaptureFixture[str]
) -> None:
    """/dev/stdout, a pipe or a link would be renamed over with a file holding the secret: refused, exit 2."""
    fifo, link = tmp_path / "pipe", tmp_path / "link"
    os.mkfifo(fifo)
    link.symlink_to(tmp_path / "elsewhere")
    for target in (str(fifo), str(link), "/dev/null"):
        named = settings(key, api_url="http://127.0.0.1:9")
        run = invoke("asc-token", tmp_path, named, [*args, "--output-file", target], mode=OnFds(capfd))
        assert run.returncode == 2 and "exists and is not a regular file" in run.stderr, run.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
