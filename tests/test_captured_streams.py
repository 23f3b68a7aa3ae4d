"""What a user can capture (``2> err.log``, ``2>&1 | tee``, ``$(...)``) never holds the key.

The action step registers every form of the key with ``::add-mask::`` on its own stdout, which
only the runner reads. The CLI's streams are the user's: there the key is never written, in any
encoding, not even line by line; only a newly minted token is registered, as it must be.
"""

from __future__ import annotations

import base64
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from cryptography.hazmat.primitives import serialization

from asc_token.platforms import PLATFORM_NAMES, platform_for
from devtools.standin import AppStoreConnectStandIn, Fault

from .runner import (
    ISSUER_ID,
    PROCESS,
    KeyMaterial,
    OnFds,
    assert_no_secrets,
    detection_env,
    invoke,
    needs_cli,
    recorder_of,
    settings,
)


@needs_cli
@pytest.mark.parametrize(
    ("platform_env", "args"),
    [
        ({"GITHUB_ACTIONS": "true"}, ["api", "/v1/apps"]),
        ({"GITHUB_ACTIONS": "true"}, ["--print"]),
        ({"GITHUB_ACTIONS": "true"}, []),
        ({"TF_BUILD": "True"}, ["--print"]),
        ({"TF_BUILD": "True"}, ["api", "/v1/apps"]),
        ({"TF_BUILD": "True"}, []),
    ],
)
def test_cli_streams_never_carry_the_key(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, platform_env: Dict[str, str], args: List[str]
) -> None:
    run = invoke("asc-token", tmp_path, settings(key, standin=api), args, mode=PROCESS, env=platform_env)
    assert run.returncode == 0, run.stderr
    assert_no_secrets(run, key.secret_fragments(), key=key)
    masks = [line for line in (run.stdout + run.stderr).splitlines() if "add-mask::" in line or "setsecret]" in line]
    # Only the token is registered (a newly minted secret), and only where a mask command is not the caller's $(...).
    assert all(line.split("::add-mask::")[-1].split("]")[-1].startswith("eyJ") for line in masks), masks
    assert len(masks) <= 1


def test_the_action_still_masks_every_form_of_the_key(tmp_path: Path, key: KeyMaterial) -> None:
    """The step's own stdout is read by the runner only: there every form is registered first."""
    result = invoke("action", tmp_path, settings(key))
    masked = [
        line.split("::add-mask::", 1)[1] for line in result.stdout.splitlines() if line.startswith("::add-mask::")
    ]
    body = [line for line in key.pem.splitlines() if not line.startswith("-----")]
    assert set(body) <= set(masked) and "".join(body) in masked


# --- core dumps ------------------------------------------------------------------------------------


@needs_cli
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/limits")
def test_no_core_file_can_hold_the_key(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """Started with ``ulimit -c unlimited``, a request in flight still has no core file to leave behind."""
    api.inject(Fault("delay", seconds=5))
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    # A child started at 0 would pass whatever the command does (in-process runs never lower it).
    assert hard != 0, "this test process may not write core files, so the test cannot tell"

    def unlimited_cores() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

    limits = ""

    def quit_once_started(process: subprocess.Popen[bytes]) -> None:
        nonlocal limits
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and " 0 " not in core_limit(limits):
            time.sleep(0.05)  # until the command has started (it is then waiting for the answer)
            limits = Path(f"/proc/{process.pid}/limits").read_text()
        process.send_signal(signal.SIGQUIT)

    invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps"], mode=PROCESS, env=dict(os.environ),
           preexec=unlimited_cores, while_running=quit_once_started, timeout=10)  # fmt: skip
    assert core_limit(limits).split()[4:6] == ["0", "0"], limits
    assert not list(tmp_path.glob("core*"))


def core_limit(limits: str) -> str:
    return next((line for line in limits.splitlines() if line.startswith("Max core file size")), "")


# --- --print gives the token, and only it, on stdout ------------------------------------------


def test_every_platform_has_detection_env(tmp_path: Path) -> None:
    for name in PLATFORM_NAMES:
        assert platform_for(detection_env(name, tmp_path)).name == name


# In this process, read at the file descriptors: what a caller's $(...) and 2> would hold (the
# installed command's own streams are test_cli_streams_never_carry_the_key's and test_scenario_platforms').
@pytest.mark.parametrize("platform", PLATFORM_NAMES)
def test_print_stdout_is_exactly_the_token(
    tmp_path: Path, key: KeyMaterial, platform: str, capfd: pytest.CaptureFixture[str]
) -> None:
    env = {**detection_env(platform, tmp_path), "GITHUB_OUTPUT": str(tmp_path / "out")}
    run = invoke("asc-token", tmp_path, settings(key), ["--print", "--no-verify"], mode=OnFds(capfd), env=env)
    assert run.returncode == 0, run.stderr
    token = run.stdout[:-1]
    assert run.stdout == token + "\n"
    assert key.decode(token)["iss"] == ISSUER_ID
    if platform == "github":  # still masked: the runner reads workflow commands on stderr too
        assert f"::add-mask::{token}" in run.stderr.splitlines()


@pytest.mark.parametrize("platform", PLATFORM_NAMES)
def test_print_stdout_is_empty_on_error(
    tmp_path: Path, key: KeyMaterial, platform: str, capfd: pytest.CaptureFixture[str]
) -> None:
    named, env = settings(key, key_id="short"), detection_env(platform, tmp_path)
    run = invoke("asc-token", tmp_path, named, ["--print", "--no-verify"], mode=OnFds(capfd), env=env)
    assert run.returncode == 2
    assert run.stdout == ""
    assert "ASC_KEY_ID" in run.stderr and "Traceback" not in run.stderr


# --- Azure and Buildkite know the token before the first request ------------------------------


@needs_cli
@pytest.mark.parametrize("platform", ["azure", "buildkite"])
def test_token_is_registered_for_masking_before_the_request(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, platform: str
) -> None:
    stdout_path = tmp_path / "stdout.txt"
    recorder = recorder_of(tmp_path)

    def registered() -> str:
        if platform == "azure":
            text = stdout_path.read_text() if stdout_path.exists() else ""
            return "\n".join(line for line in text.splitlines() if line.startswith("##vso[task.setsecret]"))
        log = recorder / "stdin.log"
        return log.read_text() if log.exists() else ""

    known_at_request: List[bool] = []
    # The moment the server holds the token: the platform's masking must know it already.
    api.on_token = lambda token: known_at_request.append(token in registered())
    named, env = settings(key, verify=None), detection_env(platform, tmp_path)
    run = invoke("asc-token", tmp_path, named, ["--api-url", api.url], mode=PROCESS, env=env, stdout_path=stdout_path)
    assert run.returncode == 0, run.stderr
    assert known_at_request == [True]


# --- every form of the key is masked before anything is printed ------------------------------


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
def test_every_form_is_masked_first(
    tmp_path: Path, key: KeyMaterial, form: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """In this process, read at the file descriptors (entrypoint.py itself runs in test_scenario_key_forms)."""
    given, extra = key_forms(key)[form]
    result = invoke("action", tmp_path, settings(key, private_key=given), mode=OnFds(capfd))
    assert result.returncode == 0, result.log
    lines = result.stdout.splitlines()
    first_other = next(i for i, line in enumerate(lines) if not line.startswith("::add-mask::"))
    masked = {line[len("::add-mask::") :] for line in lines[:first_other]}
    pkcs8, sec1 = pem_body(key.pem), pem_body(key.sec1)
    expected = {*pkcs8, *sec1, "".join(pkcs8), "".join(sec1), *extra}
    assert expected <= masked, sorted(expected - masked)
    assert result.outputs["token"] in masked
    assert_no_secrets(result, sorted(expected))
