"""The image run the way the runner runs a container step: its mounts, INPUT_* env with hyphens,
container paths in GITHUB_OUTPUT, /github/workspace as the working directory.

Skipped with the reason where no Docker engine runs; `.ci/run` starts one and sets
ASC_REQUIRE_DOCKER=1, which turns the skip into a failure. ASC_TEST_IMAGE names an image that is
already built (the release workflow tests the very image it then pushes) instead of building one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from devtools.runnerfiles import RunnerFiles

from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial, Run, one_error, settings, spelled_for, standin_running

# One tag per checkout: worktrees testing side by side on one engine never run each other's image.
IMAGE = "asc-token-action:test-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
DOCKER = shutil.which("docker") or "docker"  # absolute: a test passes a hostile PATH through


SIZE_BUDGET = 30_000_000  # bytes the image may add to its base (Docker's MB, as `docker images` shows)


def _docker_problem() -> Optional[str]:
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    probe = subprocess.run([DOCKER, "info"], capture_output=True, text=True, check=False, timeout=60)
    if probe.returncode != 0:
        return "no Docker engine is running (source ../shared/ci/docker-env.sh to start one)"
    if not os.environ.get("BASE_IMAGE") and not os.environ.get("ASC_TEST_IMAGE"):
        return "BASE_IMAGE is not set (source ../shared/ci/docker-env.sh to build a local base image)"
    return None


def _docker_out(*args: str) -> str:
    completed = subprocess.run([DOCKER, *args], capture_output=True, text=True, check=False, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    problem = _docker_problem()
    if problem:
        if os.environ.get("ASC_REQUIRE_DOCKER") == "1":
            pytest.fail(f"container tests are required here but {problem}")
        pytest.skip(problem)
    prebuilt = os.environ.get("ASC_TEST_IMAGE")
    if prebuilt:
        _docker_out("image", "inspect", prebuilt)  # present locally: never pulled behind our back
        yield prebuilt
        return
    build = subprocess.run(
        [
            DOCKER,
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={os.environ['BASE_IMAGE']}",
            "-t",
            IMAGE,
            ".",
        ],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    yield IMAGE


def run_container(
    image: str,
    host: Path,
    inputs: Dict[str, str],
    *,
    extra_env: Optional[Dict[str, str]] = None,
    args: Optional[List[str]] = None,
    entrypoint: Optional[str] = None,
) -> Run:
    """What the runner does for `uses: docker://...`: the same mounts, names and env."""
    mounts = {
        "_github_home": "/github/home",
        "_github_workflow": "/github/workflow",
        "_runner_file_commands": "/github/file_commands",
        "workspace": "/github/workspace",
    }
    for folder in mounts:
        (host / folder).mkdir(parents=True, exist_ok=True)
    # The runner's file commands, by the names the runner gives them in the mounted folder.
    files = RunnerFiles.create(
        host / "_runner_file_commands", output="set_output", env="set_env", summary="step_summary"
    )
    container_env = {
        "HOME": "/github/home",
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_OUTPUT": "/github/file_commands/set_output",
        "GITHUB_ENV": "/github/file_commands/set_env",
        "GITHUB_STEP_SUMMARY": "/github/file_commands/step_summary",
        "RUNNER_TEMP": "/home/runner/work/_temp",  # the host path: not mounted into containers
        "RUNNER_OS": "Linux",
    }
    container_env.update(spelled_for("action", inputs))
    container_env.update(extra_env or {})
    command = [DOCKER, "run", "--rm", "--network", "host", "--workdir", "/github/workspace"]
    for name in container_env:
        command += ["-e", name]  # values come from our environment, as the runner passes them
    for folder, target in mounts.items():
        command += ["-v", f"{host / folder}:{target}"]
    if entrypoint:
        command += ["--entrypoint", entrypoint]
    command.append(image)
    command += args or []
    process_env = {**os.environ, **container_env}
    completed = subprocess.run(command, env=process_env, capture_output=True, text=True, check=False, timeout=120)
    return Run(
        completed.returncode, completed.stdout, completed.stderr, host,
        outputs=files.outputs(), env_file=files.exported(), summary=files.summary_text(),
    )  # fmt: skip


def test_mints_with_several_key_forms(image: str, tmp_path: Path, key: KeyMaterial) -> None:
    for form, text in {"pem": key.pem, "base64": key.base64_of_file, "escaped": key.pem.replace("\n", "\\n")}.items():
        run = run_container(image, tmp_path / form, settings(key, private_key=text))
        assert run.returncode == 0, run.stdout + run.stderr
        token = run.outputs["token"]
        assert key.decode(token)["iss"] == ISSUER_ID
        lines = run.stdout.splitlines()
        assert lines.index(f"::add-mask::{token}") == min(i for i, line in enumerate(lines) if token in line)
        assert "Traceback" not in run.stderr


def test_key_file_in_the_workspace_and_hostile_path_home(image: str, tmp_path: Path, key: KeyMaterial) -> None:
    (tmp_path / "workspace").mkdir(parents=True)
    (tmp_path / "workspace" / "AuthKey.p8").write_text(key.sec1)
    run = run_container(
        image,
        tmp_path,
        settings(key, private_key=None, private_key_path="AuthKey.p8"),
        extra_env={"PATH": "/nonexistent", "HOME": "/nonexistent", "PYTHONPATH": "/github/workspace/evil"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert key.decode(run.outputs["token"])["iss"] == ISSUER_ID


def test_bad_key_gives_one_error(image: str, tmp_path: Path, key: KeyMaterial) -> None:
    run = run_container(image, tmp_path, settings(key, private_key="not a key", verify=None))
    assert run.returncode == 2  # a bad setting, before any request
    assert "`private-key`" in one_error(run, with_title=True)
    assert "token" not in run.outputs


def test_verifies_against_the_standin(image: str, tmp_path: Path, key: KeyMaterial) -> None:
    with standin_running() as api:
        api.register(KEY_ID, key.key.public_key(), ISSUER_ID)
        run = run_container(image, tmp_path, settings(key, standin=api))
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.outputs["app-count"] == "3"
        assert "credentials accepted" in run.summary
        wrong = run_container(image, tmp_path / "wrong", settings(key, standin=api, issuer_id=str(uuid.uuid4())))
        assert wrong.returncode == 1
        assert "401 NOT_AUTHORIZED" in wrong.stdout


def test_cli_mode_for_other_platforms(image: str, tmp_path: Path, key: KeyMaterial) -> None:
    """GitLab and friends: no GITHUB_ACTIONS, settings from the environment, --print."""
    run = run_container(
        image,
        tmp_path,
        {},
        extra_env={**spelled_for("asc-token", settings(key, verify=None)), "GITHUB_ACTIONS": "", "GITLAB_CI": "true"},
        args=["--print", "--no-verify"],
    )
    assert run.returncode == 0, run.stderr
    assert key.decode(run.stdout.strip())["iss"] == ISSUER_ID
    assert "on gitlab" in run.stderr


def test_write_key_files_is_refused_in_a_container(image: str, tmp_path: Path, key: KeyMaterial) -> None:
    run = run_container(
        image,
        tmp_path,
        settings(key, write_key_files="true"),
    )
    assert run.returncode == 1
    assert "RUNNER_TEMP" in run.stdout and "composite action" in run.stdout


def test_asc_token_command_in_the_image(image: str, tmp_path: Path, key: KeyMaterial) -> None:
    """A GitLab job `image:` runs `asc-token` from PATH; it is the CLI even with GITHUB_ACTIONS set."""
    run = run_container(
        image,
        tmp_path,
        {},
        extra_env=spelled_for("asc-token", settings(key, private_key=key.base64_of_file)),
        args=["--output-file", "/github/workspace/token"],
        entrypoint="asc-token",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    token = (tmp_path / "workspace" / "token").read_text().strip()
    assert key.decode(token)["iss"] == ISSUER_ID
    # Workflow commands on stderr (the runner reads both streams): stdout stays for $(...).
    assert run.stdout == ""
    masks = [line for line in run.stderr.splitlines() if line.startswith("::add-mask::")]
    assert masks == [f"::add-mask::{token}"]  # the key never on a stream the user can capture
    assert not any(line in run.stderr for line in key.pem.splitlines()[1:-1])


def test_the_image_runs_the_installed_package(image: str) -> None:
    """The package is installed from its wheel (no source tree), `asc-token` on PATH is its console
    script with the venv's interpreter in isolated mode, and the version is the package's."""
    probe = (
        "import importlib.metadata as m, json, os, shutil, asc_token;"
        "d = m.distribution('asc-token-action');"
        "script = os.path.realpath(shutil.which('asc-token'));"
        "print(json.dumps({'version': d.version, 'module': asc_token.__file__, 'script': script,"
        " 'shebang': open(script).readline().strip(),"
        " 'entry': [e.value for e in d.entry_points if e.name == 'asc-token'],"
        " 'src': os.path.exists('/opt/asc-token-action/src')}))"
    )
    facts = json.loads(
        _docker_out("run", "--rm", "--entrypoint", "/opt/asc-token-action/venv/bin/python", image, "-I", "-c", probe)
    )
    assert facts["entry"] == ["asc_token.dispatch:cli"]
    assert facts["module"].startswith("/opt/asc-token-action/venv/lib/") and not facts["src"]
    assert facts["script"] == "/opt/asc-token-action/venv/bin/asc-token"
    assert facts["shebang"] == "#!/opt/asc-token-action/venv/bin/python -I"
    version = _docker_out("run", "--rm", "--entrypoint", "asc-token", image, "--version").strip()
    assert version == f"asc-token {facts['version']}"


def test_image_size_budget(image: str) -> None:
    """At most SIZE_BUDGET over the base image (the issue's budget), measured as docker reports it."""
    base = os.environ.get("BASE_IMAGE")
    if not base or subprocess.run([DOCKER, "image", "inspect", base], capture_output=True, check=False).returncode:
        pytest.skip("the base image is not in the local engine to compare with")
    sizes = [int(_docker_out("image", "inspect", "--format", "{{.Size}}", name)) for name in (base, image)]
    assert sizes[1] - sizes[0] <= SIZE_BUDGET, f"the image adds {(sizes[1] - sizes[0]) / 1e6:.1f} MB to {base}"


def test_api_command_in_the_image(image: str, tmp_path: Path, key: KeyMaterial) -> None:
    """`asc-token api`: `docker run IMAGE api PATH`, and `asc-token api` in a job using the image."""
    with standin_running() as api:
        api.register(KEY_ID, key.key.public_key(), ISSUER_ID)
        api.app_count = 5
        env = spelled_for("asc-token", settings(key, verify=None, api_url=api.url))
        run = run_container(image, tmp_path, {}, extra_env=env, args=["api", "/v1/apps?limit=2", "--paginate"])
        assert run.returncode == 0, run.stderr
        assert len(json.loads(run.stdout)["data"]) == 5  # stdout: the merged JSON only
        assert [outcome for _, outcome in api.requests] == ["200"] * 3
        token = api.tokens_seen()[0]
        assert f"::add-mask::{token}" in run.stderr.splitlines()  # on GitHub: masked, on stderr
        assert token not in run.stdout
        on_path = run_container(
            image, tmp_path / "path", {}, extra_env={**env, "GITHUB_ACTIONS": ""},
            args=["api", "/v1/nothingHere"], entrypoint="asc-token",
        )  # fmt: skip
        assert on_path.returncode == 1 and json.loads(on_path.stdout)["errors"][0]["status"] == "404"  # as gh
        assert "404 NOT_FOUND" in on_path.stderr


def test_key_files_refused_in_the_image_under_act(image: str, key: KeyMaterial) -> None:
    """act starts a container step with RUNNER_TEMP=/tmp, which exists in the container but is
    its own: writing there would succeed and leave later steps without the key."""
    env = {"GITHUB_ACTIONS": "true", "ACT": "true", "RUNNER_TEMP": "/tmp"}
    env.update(spelled_for("action", settings(key, write_key_files="true")))
    command = ["docker", "run", "--rm", "--network", "none"]
    for name in env:
        command += ["-e", name]  # values from the environment, never in argv
    completed = subprocess.run(
        [*command, image], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=120
    )
    run = Run(completed.returncode, completed.stdout, completed.stderr, Path())
    assert run.returncode == 1, run.log
    error = one_error(run, with_title=True)
    assert "container image" in error and "composite action" in error
