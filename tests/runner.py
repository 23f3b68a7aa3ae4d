"""The one fake runner for every test: it prepares what a CI agent gives a step (the environment,
the runner's files, the workspace), runs the action or ``asc-token`` either as a subprocess (as the
runner does) or in this process (fast, with short retry timings), and reads back what it wrote.

Subprocess runs are kept for one scenario per promise of the README and docs/; everything else runs in process.
In process, a step's streams are either fakes (run_action_in_process, run_cli_in_process) or, where what
a caller captures is the point, the process's own file descriptors read back through capfd (the *_on_fds runs).
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, TextIO, Tuple, cast
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from asc_token import dispatch
from asc_token.checks import Preflight
from asc_token.inputs import COMPOSITE_MARKER
from asc_token.records import Credentials, Delivery, InputReader
from asc_token.settings import read_credentials, read_delivery, read_preflight
from asc_token.transport import RetryPolicy
from asc_token.world import Io
from devtools.runnerfiles import RunnerFiles
from devtools.standin import AppStoreConnectStandIn

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "entrypoint.py"
KEY_ID = "ABCDE12345"
ISSUER_ID = "57246542-96fe-1a63-e053-0824d011072a"
ASC_TOKEN = shutil.which("asc-token", path=os.path.dirname(sys.executable)) or shutil.which("asc-token")

# Every retry path in a fraction of a second: in-process runs use this instead of the real policy.
QUICK_RETRIES = RetryPolicy(
    backoff_base=0.05,
    backoff_cap=0.2,
    retry_after_cap=0.5,
    connect_timeout=1,
    read_timeout=1,
    total_seconds=3,
    unauthorized_backoff=0.02,
)
_RUNNER_PREFIXES = ("INPUT_", "GITHUB_", "RUNNER_", "ASC_", "APP_STORE_CONNECT_", "PLUGIN_")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    outputs: Dict[str, str]
    env_file: Dict[str, str]
    summary: str
    workdir: Path

    @property
    def log(self) -> str:
        return self.stdout + self.stderr

    def errors(self) -> List[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]

    def error_message(self) -> str:
        """The one ``::error`` annotation's text, without the command."""
        errors = self.errors()
        assert len(errors) == 1, self.stdout
        return errors[0].split("::", 2)[2]


@dataclass
class FixedToken:
    """Bearer tokens that are always the same string (a transport test needs no key)."""

    token: str
    asked: int = 0

    def bearer(self, *, after_401: bool = False) -> str:
        self.asked += 1
        return self.token

    def unscoped(self, lifetime: int) -> FixedToken:
        return self


@dataclass(frozen=True)
class Settings:
    """Everything the action reads, in one value for table tests: ``settings.key_id``, ``.verify``."""

    credentials: Credentials
    preflight: Preflight
    delivery: Delivery

    def __getattr__(self, name: str) -> Any:
        for part in (self.credentials, self.preflight, self.delivery):
            if hasattr(part, name):
                return getattr(part, name)
        raise AttributeError(name)


def read_settings(inputs: InputReader) -> Settings:
    """The action's three readers, in the order it calls them."""
    credentials = read_credentials(inputs)
    return Settings(credentials, read_preflight(inputs, credentials), read_delivery(inputs))


@dataclass
class KeyMaterial:
    key: ec.EllipticCurvePrivateKey
    pem: str = field(init=False)

    def __post_init__(self) -> None:
        self.pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def sec1(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()

    @property
    def base64_of_file(self) -> str:
        return base64.b64encode(self.pem.encode()).decode()

    def secret_fragments(self) -> List[str]:
        """Every piece of the key that must never appear in a log."""
        body = [line for line in self.pem.splitlines() if not line.startswith("-----")]
        return [*body, "".join(body), self.base64_of_file[:40]]

    def decode(self, token: str, **options: bool) -> Dict[str, Any]:
        return jwt.decode(
            token,
            self.key.public_key(),
            algorithms=["ES256"],
            audience="appstoreconnect-v1",
            options=cast(Any, {"verify_iat": False, **options}),
        )


@dataclass(frozen=True)
class Step:
    """What the runner prepared for one step of the action."""

    env: Dict[str, str]
    files: RunnerFiles
    workdir: Path

    @property
    def workspace(self) -> Path:
        return self.workdir / "workspace"

    def result(self, returncode: int, stdout: str, stderr: str) -> Result:
        return Result(
            returncode=returncode,
            stdout=stdout,
            stderr=stderr,
            outputs=self.files.outputs(),
            env_file=self.files.exported(),
            summary=self.files.summary_text(),
            workdir=self.workdir,
        )


def prepare_step(workdir: Path, inputs: Mapping[str, str], extra_env: Optional[Mapping[str, str]] = None) -> Step:
    """Inputs by their action names ("key-id"), passed as the runner passes them: INPUT_KEY-ID.

    ``workdir`` gets the runner's files, ``temp`` (RUNNER_TEMP) and ``workspace`` (GITHUB_WORKSPACE).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    files = RunnerFiles.create(workdir)
    (workdir / "temp").mkdir(exist_ok=True)
    (workdir / "workspace").mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(_RUNNER_PREFIXES)}
    env.update(files.environment())
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(workdir / "workspace"),
        RUNNER_TEMP=str(workdir / "temp"),
        RUNNER_OS="Linux",
        CI="true",
    )
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    env.update(extra_env or {})
    return Step(env, files, workdir)


def run_entrypoint(
    workdir: Path,
    inputs: Mapping[str, str],
    *,
    extra_env: Optional[Mapping[str, str]] = None,
    args: Iterable[str] = (),
    python: str = sys.executable,
    isolated: bool = False,
    timeout: float = 90,
) -> Result:
    """entrypoint.py as the runner starts it: a process with INPUT_* variables, in the workspace
    (``isolated``: with ``-I``, as the composite action starts it, so no PYTHON* variable applies)."""
    step = prepare_step(workdir, inputs, extra_env)
    completed = subprocess.run(
        [python, *(["-I"] if isolated else []), str(ENTRYPOINT), *args],
        env=step.env,
        cwd=str(step.workspace),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return step.result(completed.returncode, completed.stdout, completed.stderr)


def run_action_in_process(
    workdir: Path,
    inputs: Mapping[str, str],
    *,
    extra_env: Optional[Mapping[str, str]] = None,
    policy: RetryPolicy = QUICK_RETRIES,
    sleep: Optional[Callable[[float], None]] = None,
    clock: Callable[[], float] = time.time,
    encoding: Optional[str] = None,
) -> Result:
    """The same step through the action's entry in this process, with the retry timings shortened.

    ``encoding``: stdout and stderr are byte streams in that encoding, as a process's own are under
    such a locale or Windows code page; what reached them is read back as UTF-8, as the runner reads."""
    step = prepare_step(workdir, inputs, extra_env)
    stdout, stderr = (io.StringIO() if encoding is None else io.TextIOWrapper(io.BytesIO(), encoding) for _ in "12")
    fakes = Io(env=step.env, clock=clock, policy=policy, stdout=stdout, stderr=stderr, sleep=sleep or time.sleep)
    code = dispatch.main([], io=fakes)
    return step.result(code, _written(stdout), _written(stderr))


def _written(stream: TextIO) -> str:
    """A text stream's contents; a byte stream's decoded as UTF-8 (strictly: the runner's reading)."""
    if isinstance(stream, io.StringIO):
        return stream.getvalue()
    stream.flush()
    return cast(io.BytesIO, stream.buffer).getvalue().decode("utf-8")


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    recorder: Path

    def argv_log(self) -> str:
        path = self.recorder / "argv.log"
        return path.read_text() if path.exists() else ""

    def stdin_log(self) -> str:
        path = self.recorder / "stdin.log"
        return path.read_text() if path.exists() else ""


def fake_tool(bin_dir: Path, name: str, recorder: Path) -> None:
    """A stand-in for envman / buildkite-agent that records its argv and stdin."""
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "{name} $*" >> "{recorder}/argv.log"\n'
        f'cat >> "{recorder}/stdin.log"\n'
        f'echo >> "{recorder}/stdin.log"\n'
    )
    script.chmod(0o755)


def _cli_step_env(workdir: Path, env: Mapping[str, str], *, tools: bool) -> Tuple[Dict[str, str], Path]:
    """What run_cli gives the command: only ``env`` (plus PATH, HOME and the like), fake envman and
    buildkite-agent first on PATH unless ``tools`` is False; and the folder they record into."""
    bin_dir = workdir / "bin"
    recorder = workdir / "recorder"
    bin_dir.mkdir(parents=True, exist_ok=True)
    recorder.mkdir(exist_ok=True)
    if tools:
        for tool in ("envman", "buildkite-agent"):
            fake_tool(bin_dir, tool, recorder)
    base = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR", "PIP_CERT", "SSL_CERT_FILE")
    }
    base["PATH"] = f"{bin_dir}{os.pathsep}{base.get('PATH', '')}" if tools else str(bin_dir)
    base.update(env)
    return base, recorder


def run_cli(
    workdir: Path,
    env: Mapping[str, str],
    args: Optional[Sequence[str]] = None,
    *,
    tools: bool = True,
    stdout_path: Optional[Path] = None,
    bash_line: str = "",
) -> CliRun:
    """The installed ``asc-token`` as a CI job runs it: only the variables given (plus PATH, HOME and
    the like), fake envman and buildkite-agent first on PATH; ``--no-verify`` unless ``args`` say otherwise.

    ``tools=False``: PATH holds no envman or buildkite-agent at all. ``stdout_path``: stdout goes to
    that file as it is written, so a test can look at it while the command runs. ``bash_line``: a bash
    command line that runs the command as ``"$@"`` (``exec "$@" 2>&-``, ``"$@" | head -c 10``).
    """
    base, recorder = _cli_step_env(workdir, env, tools=tools)
    assert ASC_TOKEN is not None, "asc-token is not installed (python3 dev.py test installs it)"
    argv = [ASC_TOKEN, *(args if args is not None else ["--no-verify"])]
    if bash_line:
        argv = [shutil.which("bash") or "bash", "-c", bash_line, "bash", *argv]
    if stdout_path is None:
        completed = subprocess.run(
            argv, env=base, cwd=str(workdir), capture_output=True, text=True, timeout=60, check=False
        )
        return CliRun(completed.returncode, completed.stdout, completed.stderr, recorder)
    with open(stdout_path, "w", encoding="utf-8") as stdout:
        done = subprocess.run(
            argv, env=base, cwd=str(workdir), stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60, check=False
        )
    return CliRun(done.returncode, stdout_path.read_text(), done.stderr, recorder)


@contextmanager
def _working_directory(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _read_fds(capfd: pytest.CaptureFixture[str], run: Callable[[], int]) -> Tuple[int, str, str]:
    """``run``'s exit code and what reached file descriptors 1 and 2 while it ran: its writes to
    sys.stdout and sys.stderr (pytest points them at the same files) and those of its children."""
    capfd.readouterr()  # what came before is not this run's
    try:
        code = run()
    except SystemExit as exit_:  # argparse's usage errors, as the console script turns them into exit codes
        code = exit_.code if isinstance(exit_.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def command_on_fds(
    capfd: pytest.CaptureFixture[str],
    workdir: Path,
    env: Mapping[str, str],
    argv: Sequence[str],
    *,
    stdin: bytes = b"",
    policy: RetryPolicy = QUICK_RETRIES,
) -> Tuple[int, str, str]:
    """``asc-token ARGV`` without starting an interpreter: exactly ``env``, ``workdir`` as working
    directory, and what reached file descriptors 1 and 2, so a write that goes around the command's
    streams (or a tool's output) is seen as ``$(...)`` or ``2> err.log`` would see it. The exit code.

    For what a real process adds (its exit status, the console script, interpreter start-up) keep run_cli.
    """
    fakes = Io(env=dict(env), policy=policy, stdin=io.BytesIO(stdin))  # stdout, stderr: sys.stdout, sys.stderr
    with _working_directory(workdir):
        return _read_fds(capfd, lambda: dispatch.main(list(argv), force_cli=True, io=fakes))


def run_cli_on_fds(
    capfd: pytest.CaptureFixture[str],
    workdir: Path,
    env: Mapping[str, str],
    args: Optional[Sequence[str]] = None,
    *,
    tools: bool = True,
    policy: RetryPolicy = QUICK_RETRIES,
) -> CliRun:
    """run_cli's step (the same environment, fake tools and working directory) as command_on_fds runs it."""
    base, recorder = _cli_step_env(workdir, env, tools=tools)
    argv = args if args is not None else ["--no-verify"]
    return CliRun(*command_on_fds(capfd, workdir, base, argv, policy=policy), recorder)


def run_entrypoint_on_fds(
    capfd: pytest.CaptureFixture[str],
    workdir: Path,
    inputs: Mapping[str, str],
    *,
    extra_env: Optional[Mapping[str, str]] = None,
    policy: RetryPolicy = QUICK_RETRIES,
) -> Result:
    """run_entrypoint's step without starting an interpreter: the runner's environment and files,
    the workspace as working directory, stdout and stderr read at the file descriptors."""
    step = prepare_step(workdir, inputs, extra_env)
    fakes = Io(env=step.env, policy=policy, stdin=io.BytesIO(b""))
    with _working_directory(step.workspace):
        code, out, err = _read_fds(capfd, lambda: dispatch.main([], io=fakes))
    return step.result(code, out, err)


def run_cli_in_process(
    workdir: Path,
    env: Mapping[str, str],
    args: Optional[Sequence[str]] = None,
    *,
    policy: RetryPolicy = QUICK_RETRIES,
    stdin: bytes = b"",
) -> CliRun:
    """``asc-token`` with exactly ``env`` as the environment, in this process; usage errors give exit code 2."""
    workdir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = text_stream(), io.StringIO()
    fakes = Io(env=dict(env), policy=policy, stdout=stdout, stderr=stderr, stdin=io.BytesIO(stdin))
    try:
        code = dispatch.main(list(args if args is not None else ["--no-verify"]), force_cli=True, io=fakes)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    stdout.flush()
    return CliRun(code, cast(io.BytesIO, stdout.buffer).getvalue().decode(), stderr.getvalue(), workdir / "recorder")


class LogLines(io.StringIO):
    """stderr that also keeps each logged message (one ``print`` each) as an item of ``lines``."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: List[str] = []

    def write(self, text: str) -> int:
        if text != "\n":
            self.lines.append(text[:-1] if text.endswith("\n") else text)
        return super().write(text)


def call_api_in_process(
    env: Mapping[str, str], args: Sequence[str], *, stdin: bytes = b"", policy: RetryPolicy = QUICK_RETRIES
) -> tuple[int, bytes, List[str]]:
    """``asc-token api ARGS`` in this process: its exit code, the bytes on stdout, each log message."""
    stdout, stderr = text_stream(), LogLines()
    fakes = Io(env=dict(env), policy=policy, stdout=stdout, stderr=stderr, stdin=io.BytesIO(stdin))
    try:
        code = dispatch.main(["api", *args], force_cli=True, io=fakes)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    stdout.flush()
    return code, cast(io.BytesIO, stdout.buffer).getvalue(), stderr.lines


def text_stream() -> io.TextIOWrapper:
    """A stdout with a binary ``buffer`` beneath, as a process has (``asc-token api`` writes bytes)."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)


@contextmanager
def standin_running(**options: Any) -> Iterator[AppStoreConnectStandIn]:
    """The App Store Connect stand-in on 127.0.0.1 (``options`` as AppStoreConnectStandIn takes them),
    stopped without the server's poll wait: every test's stand-in starts here, never with ``with
    AppStoreConnectStandIn()``, whose stop waits up to 0.5 s."""
    standin = AppStoreConnectStandIn(**options).start()
    try:
        yield standin
    finally:
        _stop_without_waiting(standin)


def _stop_without_waiting(standin: AppStoreConnectStandIn) -> None:
    """The server notices a stop only when its select() returns, every 0.5 s; a connection makes it
    return at once. Poke it (a bounded number of times) until it has stopped."""
    parts = urlsplit(standin.url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    stopped = threading.Event()

    def poke() -> None:
        for _ in range(100):
            if stopped.wait(0.01):
                return
            try:
                socket.create_connection(address, timeout=0.5).close()
            except OSError:
                return

    waker = threading.Thread(target=poke, daemon=True)
    waker.start()
    standin.stop()
    stopped.set()
    waker.join(timeout=2)


def assert_token_masked_first(result: Result) -> None:
    """``::add-mask::<token>`` precedes every other line that mentions the token."""
    token = result.outputs["token"]
    lines = result.stdout.splitlines()
    mask_line = f"::add-mask::{token}"
    assert mask_line in lines, "the token was never registered with ::add-mask::"
    first_mention = next(i for i, line in enumerate(lines) if token in line)
    assert lines[first_mention] == mask_line
    assert token not in result.stderr


def assert_no_secrets(result: Result, secrets: Iterable[str]) -> None:
    """No key material anywhere the user can see: log lines (bar ::add-mask::), summary, env file."""
    visible = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("::add-mask::"))
    visible += result.stderr + result.summary + "\n".join(result.env_file.values())
    for secret in secrets:
        if secret:
            assert secret not in visible, "a secret reached the log, summary or GITHUB_ENV"
    assert "Traceback" not in result.log


def rendered(markdown: str) -> str:
    """A job summary as HTML, the way GitHub renders its Markdown (CommonMark with tables)."""
    import pytest

    markdown_it = pytest.importorskip("markdown_it")
    return str(markdown_it.MarkdownIt("commonmark").enable("table").render(markdown))


def random_issuer() -> str:
    return str(uuid.uuid4())


# --- shared by the suites that try what an attacker or an unlucky user would ---------------------

needs_cli = pytest.mark.skipif(ASC_TOKEN is None, reason="asc-token is not installed (python3 dev.py test installs it)")
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions and symlinks")
HOSTILE = (
    "bad\n::warning::pwned\r::error::pwned %0A::notice::pwned ##vso[task.setvariable variable=X]1 "
    "![i](http://127.0.0.1:9/x.png) [l](http://127.0.0.1:9/) <img src=x> | cell ```"
)


def action_inputs(key: KeyMaterial, **extra: str) -> Dict[str, str]:
    return {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false", **extra}


def run_step(
    tmp_path: Path, inputs: Dict[str, str], *, composite: bool = False, env: Optional[Dict[str, str]] = None
) -> Result:
    """The action without a subprocess: the container form (INPUT_KEY-ID) unless ``composite``."""
    spelled = {f"INPUT_{name.replace('-', '_').upper()}": value for name, value in inputs.items()} if composite else {}
    spelled.update([COMPOSITE_MARKER] if composite else [])
    extra = {"RUNNER_TEMP": str(tmp_path), **spelled, **(env or {})}
    return run_action_in_process(tmp_path, {} if composite else inputs, extra_env=extra, policy=QUICK_RETRIES)


def one_error(result: Result) -> str:
    """Exactly one ::error line, nothing unexpected, no traceback; the message."""
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("::error")]
    assert len(errors) == 1, result.log
    assert "Internal error" not in result.log and "Traceback" not in result.log
    return errors[0].split("::", 2)[2]


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
