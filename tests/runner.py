"""The one harness every test runs the product with: invoke() prepares what a CI agent gives a step (the
environment, the runner's files, the workspace), runs the action, ``asc-token`` or ``asc-token api``
in the mode a test asks for, and returns one Run; settings() builds their settings by action name.

Runs in a process are kept for one scenario per promise of the README and docs/, and for what only a
process has; everything else runs in this process (fast, with short retry timings), its streams
either fakes or, where what a caller captures is the point, the process's own file descriptors.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import io
import json
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
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    TextIO,
    Tuple,
    Union,
    cast,
)
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from asc_token import dispatch
from asc_token.inputs import COMPOSITE_MARKER
from asc_token.transport import RetryPolicy
from asc_token.world import Io
from devtools.runnerfiles import RunnerFiles
from devtools.standin import AppStoreConnectStandIn

from .offline_dns import no_dns_for_invalid

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "entrypoint.py"
KEY_ID = "ABCDE12345"
ISSUER_ID = "57246542-96fe-1a63-e053-0824d011072a"
ASC_TOKEN = shutil.which("asc-token", path=os.path.dirname(sys.executable)) or shutil.which("asc-token")
# Apple's OpenAPI documents, never committed: beside the checkout (or in $ASC_OPENAPI_DIR); what reads them skips without.
OPENAPI_DIR = Path(os.environ.get("ASC_OPENAPI_DIR") or ROOT.parent / "shared" / "reference" / "apple-openapi")
OPENAPI_MISSING = f"Apple's OpenAPI documents are not here ({OPENAPI_DIR})"
needs_openapi = pytest.mark.skipif(not (OPENAPI_DIR / "spec.json").is_file(), reason=OPENAPI_MISSING)


@functools.cache
def openapi_document(name: str = "spec.json") -> Dict[str, Any]:
    """One of Apple's OpenAPI documents in OPENAPI_DIR ("spec.json": App Store Connect's current), read once."""
    document: Dict[str, Any] = json.loads((OPENAPI_DIR / name).read_text(encoding="utf-8"))
    return document


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


class FakeTime:
    """``monotonic`` and ``sleep`` for one in-process run: time passes only when the command sleeps, so
    nothing waits."""

    def __init__(self, marks: bool = False) -> None:
        self.now = 0.0
        self.slept: List[float] = []
        self.marks = marks  # write "[slept N]" to stderr, so a test sees when the log's lines came

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.marks:
            print(f"[slept {seconds}]", file=sys.stderr, flush=True)


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


# --- the one harness: invoke(command, workdir, settings, args, mode=...) -> Run ---------------------

Command = Literal["action", "asc-token", "asc-token api", "asc-token upload"]
PROCESS: Literal["process"] = "process"
IN_PROCESS: Literal["in-process"] = "in-process"


@dataclass(frozen=True)
class OnFds:
    """The mode that runs in this process with stdout and stderr read back at file descriptors 1 and
    2 (pytest's capfd): what ``$(...)`` or ``2> err.log`` would hold, writes around the command's own
    streams and a tool's output included."""

    capfd: pytest.CaptureFixture[str]


# How a run is made. PROCESS: as a CI job starts it (entrypoint.py or the installed console script):
# kept for what only a process has (its exit status, the console script, interpreter start-up,
# closed or piped streams). IN_PROCESS: dispatch.main with fake streams and short retry timings.
# OnFds(capfd): dispatch.main on this process's own file descriptors.
Mode = Union[Literal["process", "in-process"], OnFds]

# What a runner, a workflow, a previous step or the tests' own launcher may have set: never a step's.
_NOT_A_STEPS = ("INPUT_", "GITHUB_", "RUNNER_", "ASC_", "APP_STORE_CONNECT_", "PLUGIN_", "ACT", "GIT_", "PYTHON",
                "VIRTUAL_ENV")  # fmt: skip
# What a CI job's shell has besides its settings, for the commands run with a bare environment.
BASIC_VARIABLES = ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR", "PIP_CERT", "SSL_CERT_FILE")


def scrubbed_env(only: Optional[Iterable[str]] = None) -> Dict[str, str]:
    """This machine's environment without anything a CI platform, a workflow or the test launcher
    set (INPUT_*, GITHUB_*, ASC_*, PYTHON*, ...); ``only``: just those of its variables."""
    if only is not None:
        wanted = set(only)
        return {name: value for name, value in os.environ.items() if name in wanted}
    return {name: value for name, value in os.environ.items() if not name.upper().startswith(_NOT_A_STEPS)}


def settings(
    key: KeyMaterial,
    *,
    standin: Optional[AppStoreConnectStandIn] = None,
    checks: Sequence[str] = (),
    **overrides: Optional[str],
) -> Dict[str, str]:
    """Settings by their action names ("key-id"), which invoke() passes as each front end reads them.

    A team key with ``verify: false`` (no network); with ``standin``, verified against it (its notary
    service too), ``checks`` one per line. Overrides by Python name (``api_url=`` sets ``api-url``) or
    by action name; ``None`` leaves a setting out (``verify=None``: the front end's default).
    """
    values: Dict[str, str] = {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false"}
    if standin is not None:
        del values["verify"]
        values.update({"api-url": standin.url, "notary-url": standin.url + "/notary/v2"})
    assert not isinstance(checks, str), "checks: a list of entries"
    if checks:
        values["checks"] = "\n".join(checks)
    for name, value in overrides.items():
        spelled = name.replace("_", "-")
        if value is None:
            values.pop(spelled, None)
        else:
            values[spelled] = value
    return values


def spelled_for(command: Command, named: Mapping[str, str], *, composite: bool = False) -> Dict[str, str]:
    """``named`` settings as ``command`` reads them: the container action's INPUT_KEY-ID (as the
    runner passes `with:`), the composite's INPUT_KEY_ID (as action.yml's step maps them, marked as
    such), the CLI's ASC_KEY_ID."""
    if command == "action" and not composite:
        return {f"INPUT_{name.upper()}": value for name, value in named.items()}
    spelled = {name.replace("-", "_").upper(): value for name, value in named.items()}
    if command == "action":
        return {**{f"INPUT_{name}": value for name, value in spelled.items()}, **dict([COMPOSITE_MARKER])}
    return {f"ASC_{name}": value for name, value in spelled.items()}


@dataclass
class Run:
    """What one run left: its exit code, streams, and (the action's) runner files."""

    returncode: int
    stdout: str  # as the runner or a shell reads it: UTF-8 (``asc-token api``: invalid bytes replaced)
    stderr: str
    workdir: Path
    stdout_bytes: bytes = b""  # what reached stdout, as bytes (``asc-token api`` writes bytes)
    log_lines: List[str] = field(default_factory=list)  # each logged message (in process: one print each)
    outputs: Dict[str, str] = field(default_factory=dict)  # GITHUB_OUTPUT of the action
    env_file: Dict[str, str] = field(default_factory=dict)  # GITHUB_ENV of the action
    summary: str = ""  # GITHUB_STEP_SUMMARY of the action
    path_file: List[str] = field(default_factory=list)  # GITHUB_PATH's lines (the composite action's)
    recorder: Path = Path()  # where the fake envman and buildkite-agent recorded their calls

    @property
    def log(self) -> str:
        return self.stdout + self.stderr

    def errors(self) -> List[str]:
        """The error lines, in either form: ``::error ...::message`` or ``error: message``."""
        return [line for line in self.log.splitlines() if line.startswith(("::error", "error: "))]

    def json(self) -> Any:
        return json.loads(self.stdout)

    def argv_log(self) -> str:
        path = self.recorder / "argv.log"
        return path.read_text() if path.exists() else ""

    def stdin_log(self) -> str:
        path = self.recorder / "stdin.log"
        return path.read_text() if path.exists() else ""


def one_error(run: Run, *, with_title: bool = False) -> str:
    """The message of the run's single error line (``::error title=...::message`` or ``error: message``):
    exactly one, no internal error, no traceback. ``with_title``: the whole line."""
    errors = run.errors()
    assert len(errors) == 1, run.log
    assert "Internal error" not in run.log and "Traceback" not in run.log, run.log
    line = errors[0]
    if with_title:
        return line
    return line.split("::", 2)[2] if line.startswith("::") else line[len("error: ") :]


# The lines that register a secret with the runner (GitHub's, Azure's): only the runner reads them, and hides it.
MASK_COMMANDS = ("::add-mask::", "##vso[task.setsecret]")


def assert_no_secrets(run: Run, secrets: Iterable[str], *, token: str = "", key: Optional[KeyMaterial] = None) -> None:
    """None of ``secrets`` anywhere the user can see: the log (bar the mask commands ``::add-mask::``
    and ``##vso[task.setsecret]``, which only the runner reads), each logged line, the summary,
    GITHUB_ENV, the fake tools' argv; and no traceback. ``token``, the run's own token, may be on
    stdout (where ``--print`` and some platforms' sinks put it), never on stderr or in an argv.
    ``key``: nor any word there that decodes (as base64) to a piece holding its private scalar."""
    shown = "\n".join(line for line in run.stdout.splitlines() if not line.startswith(MASK_COMMANDS))
    logged = "\n".join(
        line for line in [*run.stderr.splitlines(), *run.log_lines] if not line.startswith(MASK_COMMANDS)
    )
    visible = "\n".join([shown, logged, run.summary, *run.env_file.values(), run.argv_log()])
    for secret in secrets:
        if secret:
            assert secret not in visible, "a secret reached the log, summary, GITHUB_ENV or a tool's argv"
    if token:
        assert token not in logged + run.argv_log(), "the token reached stderr or a tool's argv"
    if key is not None:
        scalar = key.key.private_numbers().private_value.to_bytes(32, "big")
        for word in visible.replace("::", " ").replace("]", " ").split():
            try:
                decoded = base64.b64decode(word + "=" * (-len(word) % 4), validate=True)
            except (binascii.Error, ValueError):
                continue
            assert scalar not in decoded, "a captured stream holds the private key"
    assert "Traceback" not in run.log


@dataclass(frozen=True)
class _Step:
    """What the runner (or a CI job) prepared for one run."""

    command: Command
    env: Dict[str, str]
    workdir: Path
    cwd: Path
    files: Optional[RunnerFiles]  # the action's runner files
    recorder: Path

    def result(self, returncode: int, stdout: str, stderr: str, stdout_bytes: bytes, log_lines: List[str]) -> Run:
        files = self.files
        return Run(
            returncode=returncode,
            stdout=stdout,
            stderr=stderr,
            workdir=self.workdir,
            stdout_bytes=stdout_bytes,
            log_lines=log_lines,
            outputs=files.outputs() if files else {},
            env_file=files.exported() if files else {},
            summary=files.summary_text() if files else "",
            recorder=self.recorder,
        )


def recorder_of(workdir: Path) -> Path:
    """Where the fake envman and buildkite-agent of a CLI step in ``workdir`` record their calls
    (the harness's own folders sit beside the step's, which holds only what the command leaves)."""
    return workdir.parent / f"{workdir.name}.tools" / "recorder"


def _prepare(
    command: Command, workdir: Path, named: Mapping[str, str], env: Mapping[str, str], *, composite: bool, tools: bool
) -> _Step:
    """The action: this machine's scrubbed environment, the runner's files in ``workdir``, ``temp``
    (RUNNER_TEMP) and ``workspace`` (GITHUB_WORKSPACE, the working directory). The CLI: only PATH,
    HOME and the like, fake envman and buildkite-agent first on PATH (none at all unless ``tools``)
    from ``<workdir>.tools`` beside it, ``workdir`` as working directory. Then the settings, then ``env``."""
    workdir.mkdir(parents=True, exist_ok=True)
    recorder = recorder_of(workdir)
    if command == "action":
        files = RunnerFiles.create(workdir)
        (workdir / "temp").mkdir(exist_ok=True)
        (workdir / "workspace").mkdir(exist_ok=True)
        base = scrubbed_env()
        base.update(files.environment())
        base.update(
            GITHUB_ACTIONS="true",
            GITHUB_WORKSPACE=str(workdir / "workspace"),
            RUNNER_TEMP=str(workdir / "temp"),
            RUNNER_OS="Linux",
            CI="true",
        )
        step_env = {**base, **spelled_for(command, named, composite=composite), **env}
        return _Step(command, step_env, workdir, workdir / "workspace", files, recorder)
    assert not composite, "composite is a form of the action"
    bin_dir = recorder.parent / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    recorder.mkdir(exist_ok=True)
    base = scrubbed_env(only=BASIC_VARIABLES)
    if tools:
        for tool in ("envman", "buildkite-agent"):
            fake_tool(bin_dir, tool, recorder)
        base["PATH"] = f"{bin_dir}{os.pathsep}{base.get('PATH', '')}"
    else:
        base["PATH"] = str(bin_dir)
    return _Step(command, {**base, **spelled_for(command, named), **env}, workdir, workdir, None, recorder)


def invoke(
    command: Command,
    workdir: Path,
    named: Optional[Mapping[str, str]] = None,
    args: Optional[Sequence[str]] = None,
    *,
    mode: Mode = IN_PROCESS,
    env: Optional[Mapping[str, str]] = None,
    composite: bool = False,
    tools: bool = True,
    stdin: bytes = b"",
    cwd: Optional[Path] = None,
    policy: RetryPolicy = QUICK_RETRIES,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    container_probe: Callable[[], Tuple[bool, str]] = Io.container_probe,
    encoding: Optional[str] = None,
    stdout_device: Optional[io.RawIOBase] = None,
    python: str = sys.executable,
    isolated: bool = False,
    bash_line: str = "",
    stdout_path: Optional[Path] = None,
    stdout_fd: Optional[int] = None,
    preexec: Optional[Callable[[], None]] = None,
    while_running: Optional[Callable[[subprocess.Popen[bytes]], None]] = None,
    timeout: float = 90,
) -> Run:
    """``command`` ("action", "asc-token" or "asc-token api") as a CI step runs it, the way ``mode`` says.

    ``named``: settings by action name (see settings()), passed as ``command`` reads them (for the
    action INPUT_KEY-ID, or with ``composite`` INPUT_KEY_ID; for the CLI ASC_KEY_ID); ``env``: more
    variables, set last. ``args``: entrypoint.py's arguments, ``asc-token``'s (``--no-verify`` if
    None) or those after ``asc-token api``. ``tools=False``: no envman or buildkite-agent on PATH.
    ``stdin``: what the command reads; ``cwd``: the working directory (the workspace, or ``workdir``).

    In this process: ``policy`` (short retry timings), ``clock``, ``monotonic``, ``sleep``, ``container_probe``
    as Io takes them (and Io's session never looks up a ``.invalid`` name: tests/offline_dns.py); ``encoding``: (fake
    streams only) stdout and stderr are byte streams in that encoding, as a process's own are under
    such a locale or Windows code page; what reached them is read back as UTF-8, as the runner reads;
    ``stdout_device``: (fake streams only) stdout writes to that device (a full disk, say), unread.
    In a process: ``python`` and ``isolated`` (``-I``, as the composite action starts it: no PYTHON*
    variable applies) for the action; ``bash_line``, a bash command line that runs the CLI as ``"$@"``
    (``exec "$@" 2>&-``, ``"$@" | head -c 10``); ``stdout_path``: stdout goes to that file as it is
    written, so a test can look at it while the command runs; ``stdout_fd``: stdout is that file
    descriptor (``>/dev/full``, a broken pipe); ``preexec``: called in the child before it starts
    (resource limits, closing a descriptor); ``while_running``: called with the process while it
    runs (to signal it), before its output is read; ``timeout``.
    """
    step = _prepare(command, workdir, named or {}, env or {}, composite=composite, tools=tools)
    if command == "action":
        argv = list(args or ())
    elif command == "asc-token":
        argv = list(args if args is not None else ["--no-verify"])
    else:
        argv = [command.split()[1], *(args or ())]
    folder = cwd or step.cwd
    if mode == PROCESS:
        options = _ProcessOptions(python, isolated, bash_line, stdout_path, stdout_fd, preexec, while_running, timeout)
        return _in_a_process(step, argv, folder, stdin, options)
    in_a_process_only = (isolated, bash_line, stdout_path, stdout_fd is not None, preexec, while_running)
    assert not any(in_a_process_only) and python == sys.executable, "options of a process"

    def world(stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None) -> Io:
        return Io(
            env=step.env,
            clock=clock,
            monotonic=monotonic,
            sleep=sleep,
            session=no_dns_for_invalid,
            policy=policy,
            stdout=stdout,
            stderr=stderr,
            stdin=io.BytesIO(stdin),
            container_probe=container_probe,
        )

    if isinstance(mode, OnFds):
        assert encoding is None and stdout_device is None, "the file descriptors are the test process's"
        with _working_directory(folder):  # stdout, stderr: sys.stdout, sys.stderr, on the descriptors
            code, out, err = _read_fds(mode.capfd, lambda: _dispatch(step, argv, world()))
        return step.result(code, out, err, out.encode("utf-8", "surrogateescape"), err.splitlines())
    stdout: TextIO
    if stdout_device is None:
        stdout = io.TextIOWrapper(io.BytesIO(), encoding or "utf-8", write_through=True)
    else:  # buffered, as a process's own stdout on a file is
        stdout = io.TextIOWrapper(io.BufferedWriter(stdout_device), encoding or "utf-8")
    stderr: TextIO = LogLines() if encoding is None else io.TextIOWrapper(io.BytesIO(), encoding)
    with _working_directory(folder):
        code = _exit_code(lambda: _dispatch(step, argv, world(stdout, stderr)))
    raw = _written(stdout) if stdout_device is None else b""
    logged = stderr.getvalue() if isinstance(stderr, LogLines) else _written(stderr).decode("utf-8")
    lines = stderr.lines if isinstance(stderr, LogLines) else logged.splitlines()
    return step.result(code, _decoded(command, raw), logged, raw, lines)


def _dispatch(step: _Step, argv: List[str], fakes: Io) -> int:
    return dispatch.main(argv, force_cli=step.command != "action", io=fakes)


def _exit_code(run_command: Callable[[], int]) -> int:
    try:
        return run_command()
    except SystemExit as exit_:  # argparse's usage errors, as the console script turns them into exit codes
        return exit_.code if isinstance(exit_.code, int) else 1


def _written(stream: TextIO) -> bytes:
    """What reached a fake byte stream."""
    stream.flush()
    return cast(io.BytesIO, stream.buffer).getvalue()


def _decoded(command: Command, data: bytes) -> str:
    """Bytes as the runner reads them: UTF-8, strictly; ``asc-token api``'s stdout may hold any bytes."""
    return data.decode("utf-8", "replace" if command == "asc-token api" else "strict")


@dataclass(frozen=True)
class _ProcessOptions:
    python: str
    isolated: bool
    bash_line: str
    stdout_path: Optional[Path]
    stdout_fd: Optional[int]
    preexec: Optional[Callable[[], None]]
    while_running: Optional[Callable[[subprocess.Popen[bytes]], None]]
    timeout: float


def _in_a_process(step: _Step, argv: List[str], cwd: Path, stdin: bytes, options: _ProcessOptions) -> Run:
    if step.command == "action":
        assert not (options.bash_line or options.stdout_path), "options of the CLI"
        command = [options.python, *(["-I"] if options.isolated else []), str(ENTRYPOINT), *argv]
    else:
        assert options.python == sys.executable and not options.isolated, "options of the action"
        assert ASC_TOKEN is not None, "asc-token is not installed (python3 dev.py test installs it)"
        command = [ASC_TOKEN, *argv]
        if options.bash_line:
            command = [shutil.which("bash") or "bash", "-c", options.bash_line, "bash", *command]
    with contextlib.ExitStack() as stack:
        stdout: Any = subprocess.PIPE if options.stdout_fd is None else options.stdout_fd
        if options.stdout_path is not None:
            stdout = stack.enter_context(open(options.stdout_path, "wb"))
        process = stack.enter_context(
            subprocess.Popen(
                command,
                env=step.env,
                cwd=str(cwd),
                stdin=subprocess.PIPE,
                stdout=stdout,
                stderr=subprocess.PIPE,
                preexec_fn=options.preexec,
            )
        )
        if options.while_running is not None:
            options.while_running(process)
        try:
            out, err_bytes = process.communicate(stdin, timeout=options.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    raw = options.stdout_path.read_bytes() if options.stdout_path is not None else out or b""
    err = _as_text(err_bytes.decode("utf-8"))
    return step.result(process.returncode, _as_text(_decoded(step.command, raw)), err, raw, err.splitlines())


def _as_text(text: str) -> str:
    """Newlines as ``subprocess.run(text=True)`` gives them (universal newlines)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


@contextmanager
def _working_directory(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _read_fds(capfd: pytest.CaptureFixture[str], run_command: Callable[[], int]) -> Tuple[int, str, str]:
    """``run_command``'s exit code and what reached file descriptors 1 and 2 while it ran: its writes
    to sys.stdout and sys.stderr (pytest points them at the same files) and those of its children."""
    capfd.readouterr()  # what came before is not this run's
    code = _exit_code(run_command)
    sys.stdout.flush()
    sys.stderr.flush()
    captured = capfd.readouterr()
    return code, captured.out, captured.err


class LogLines(io.StringIO):
    """stderr that also keeps each logged message (one ``print`` each) as an item of ``lines``."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: List[str] = []

    def write(self, text: str) -> int:
        if text != "\n":
            self.lines.append(text[:-1] if text.endswith("\n") else text)
        return super().write(text)


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


def assert_token_masked_first(result: Run) -> None:
    """``::add-mask::<token>`` precedes every other line that mentions the token."""
    token = result.outputs["token"]
    lines = result.stdout.splitlines()
    mask_line = f"::add-mask::{token}"
    assert mask_line in lines, "the token was never registered with ::add-mask::"
    first_mention = next(i for i, line in enumerate(lines) if token in line)
    assert lines[first_mention] == mask_line
    assert token not in result.stderr


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
