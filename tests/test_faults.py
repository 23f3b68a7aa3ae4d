"""Faults that are not bugs (a full disk, a closed or broken stdout, a garbled answer, a runner file
that is a folder, SIGTERM): each is one line naming its cause and the fix, exit 1 (failed, no answer)
or 2 (a setting to fix), never the internal error's 3 or a traceback; and nothing is left half-written."""

from __future__ import annotations

import errno
import io
import os
import resource
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest

from asc_token import errors
from asc_token.records import Credentials, KeySource
from asc_token.secret_files import FOLDER_NAME, PendingFile, interruptions_held, write_key_files
from asc_token.world import Io
from devtools.standin import AppStoreConnectStandIn, Fault

from .runner import PROCESS, KeyMaterial, invoke, needs_cli, one_error, posix_only, settings
from .test_api_command import REPORT
from .test_devtools_standin import standin_get

# --- half-written files ----------------------------------------------------------------------


def test_a_retried_download_holds_only_the_retry(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """The first answer is cut off halfway through its body and retried: the file is the second answer
    byte for byte, not the first half followed by the whole."""
    api.report_size_bytes = 256 * 1024
    expected = standin_get(api, key, REPORT).content
    api.requests.clear()
    api.inject(Fault("cut"))
    target = tmp_path / "report.gz"
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [REPORT, "--output-file", str(target)])
    assert called.returncode == 0 and called.stdout_bytes == b"", called.log_lines
    assert len(api.requests) == 2  # cut, then answered whole
    assert target.read_bytes() == expected
    assert sorted(tmp_path.iterdir()) == [target]


# --- stdout that cannot be written -------------------------------------------------------------


def _broken_pipe() -> int:
    """The write end of a pipe whose reader has already gone: the first write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@needs_cli
@posix_only
@pytest.mark.parametrize("stdout", ["/dev/full", "closed", "broken pipe"])
def test_print_to_a_stdout_that_cannot_be_written_is_exit_1(tmp_path: Path, key: KeyMaterial, stdout: str) -> None:
    """`asc-token --print >/dev/full`, `>&-` and `| true`: exit 1, said in one line (a broken pipe quietly,
    as `| head` expects), never the internal error, a traceback or the interpreter's "Exception ignored"."""
    target: Optional[int] = None
    closing: Optional[Callable[[], None]] = None
    if stdout == "/dev/full":
        if not os.path.exists("/dev/full"):
            pytest.skip("no /dev/full here (macOS)")
        target = os.open("/dev/full", os.O_WRONLY)
    elif stdout == "broken pipe":
        target = _broken_pipe()
    else:
        closing = lambda: os.close(1)  # noqa: E731 - in the child, after its streams are set up
    try:
        done = invoke("asc-token", tmp_path, settings(key), ["--no-verify", "--print"], mode=PROCESS,
                      stdout_fd=target, preexec=closing, timeout=60)  # fmt: skip
    finally:
        if target is not None:
            os.close(target)
    assert done.returncode == errors.EXIT_FAILED, done.stderr
    for unwanted in ("Internal error", "Traceback", "Exception ignored"):
        assert unwanted not in done.stderr
    if stdout == "broken pipe":
        assert done.errors() == []
    else:
        assert one_error(done).startswith("stdout could not be written ("), done.stderr
    assert not any(fragment in done.stderr for fragment in key.secret_fragments())


@needs_cli
@posix_only
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_download_leaves_no_file_and_no_folder(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, signum: int
) -> None:
    """Cancelled while the answer is awaited (a job cancelled: SIGTERM; Ctrl-C: SIGINT), the temporary
    file and the folders made for --output-file are removed, and the exit status says which signal."""
    api.inject(Fault("delay", seconds=5))
    target = tmp_path / "reports" / "2026" / "r.gz"

    def signalled_during_the_download(process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not list(target.parent.glob(".tmp-*")):
            time.sleep(0.02)  # until the temporary file is there: the request is then in flight
        assert list(target.parent.glob(".tmp-*")), "the command never got as far as the download"
        process.send_signal(signum)

    args = [REPORT, "--output-file", str(target)]
    done = invoke("asc-token api", tmp_path, settings(key, standin=api), args, mode=PROCESS,
                  while_running=signalled_during_the_download, timeout=10)  # fmt: skip
    assert done.returncode == (errors.EXIT_TERMINATED if signum == signal.SIGTERM else errors.EXIT_INTERRUPTED)
    assert list(tmp_path.iterdir()) == [], "a temporary file or a folder made for it was left"
    assert "Traceback" not in done.stderr and "Internal error" not in done.stderr


class _StoppedError(Exception):
    pass


def _stop(signum: int, frame: Any) -> None:
    """A signal handler that raises, as the product's own do."""
    raise _StoppedError


class _InterruptedError(KeyboardInterrupt):
    """As SIGINT's KeyboardInterrupt and SIGTERM's Terminated are."""


@posix_only
def test_an_interrupt_waits_until_a_file_and_its_record_are_made(tmp_path: Path) -> None:
    """The window the signal test above can only hit by chance: a signal between the temporary file's
    creation and the code that would discard it waits until both exist, so the discard finds the file."""

    made: List[PendingFile] = []
    earlier = signal.signal(signal.SIGTERM, _stop)
    try:
        with pytest.raises(_StoppedError), interruptions_held():
            os.kill(os.getpid(), signal.SIGTERM)  # arrives now, is raised only after the block
            made.append(PendingFile(str(tmp_path / "reports" / "2026" / "r.gz"), make_folder=True))
    finally:
        signal.signal(signal.SIGTERM, earlier)
    assert len(made) == 1, "the file and its record were made before the signal was raised"
    made[0].discard()
    assert list(tmp_path.iterdir()) == [], "the discard removed the file and the folders made for it"


@posix_only
def test_an_ignored_interrupt_held_with_another_hides_neither(tmp_path: Path) -> None:
    """A step started with SIGINT ignored (a background job of a script) gets SIGINT, then SIGTERM, while a
    file is made: the ignored one stays ignored, and SIGTERM still reaches its handler."""

    earlier = (signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, _stop))
    try:
        with pytest.raises(_StoppedError), interruptions_held():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            (tmp_path / "made").write_bytes(b"")
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) is _stop
    finally:
        signal.signal(signal.SIGINT, earlier[0])
        signal.signal(signal.SIGTERM, earlier[1])


class _KeySignalling(str):
    """A key whose bytes, as they are written, bring a SIGTERM: the signal comes while the key files are made."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        os.kill(os.getpid(), signal.SIGTERM)
        return str(self).encode(encoding, errors)


@posix_only
def test_an_interrupt_while_the_json_cannot_be_written_leaves_no_key(tmp_path: Path) -> None:
    """The key is written, the fastlane JSON cannot be (a folder has its name), and a SIGTERM came meanwhile:
    the key is removed before the signal is raised, so a tool never finds a key without its JSON."""

    credentials = Credentials("ABC123DEFG", "issuer", "team", 1200, (), KeySource("ASC_PRIVATE_KEY", contents="x"))
    folder = tmp_path / FOLDER_NAME
    folder.mkdir(mode=0o700)
    (folder / "fastlane_api_key_ABC123DEFG.json").mkdir()  # the rename over it fails
    quiet = Io(env={}, container_probe=lambda: (False, ""))  # not the container action, wherever tests run
    earlier = signal.signal(signal.SIGTERM, _stop)
    try:
        with pytest.raises(_StoppedError):
            write_key_files(str(tmp_path), _KeySignalling("-----BEGIN PRIVATE KEY-----\n"), credentials, quiet)
    finally:
        signal.signal(signal.SIGTERM, earlier)
    assert not (folder / "AuthKey_ABC123DEFG.p8").exists(), "a key without its JSON"


@posix_only
def test_signals_at_any_moment_leave_every_handler_as_it_was() -> None:
    """Signals sent as fast as they go while blocks are held: one that comes while the handlers are swapped
    or put back must never leave the holding one installed (every later signal would then be lost)."""

    armed = [False]

    def stop(signum: int, frame: Any) -> None:
        if armed[0]:  # once per block: a second exception could only escape this test's own except
            armed[0] = False
            raise _InterruptedError

    done = threading.Event()

    def pester() -> None:
        while not done.is_set():
            os.kill(os.getpid(), signal.SIGINT if time.monotonic_ns() % 2 else signal.SIGTERM)
            time.sleep(0.00002)

    earlier = (signal.signal(signal.SIGINT, stop), signal.signal(signal.SIGTERM, stop))
    sender = threading.Thread(target=pester)
    left_held = 0
    try:
        sender.start()
        deadline = time.monotonic() + 1  # before the fix, a handler was left swapped within 0.1 s
        while time.monotonic() < deadline and not left_held:
            try:
                armed[0] = True
                with interruptions_held():
                    pass
                armed[0] = False
            except _InterruptedError:
                pass
            if signal.getsignal(signal.SIGINT) is not stop or signal.getsignal(signal.SIGTERM) is not stop:
                left_held += 1
    finally:
        armed[0] = False
        done.set()
        sender.join()
        signal.signal(signal.SIGINT, earlier[0])
        signal.signal(signal.SIGTERM, earlier[1])
    assert left_held == 0, "a handler was left swapped"


@pytest.mark.parametrize(("status", "body"), [(204, ""), (200, ""), (200, "null")])
def test_an_answer_without_content_empties_the_output_file(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, status: int, body: str
) -> None:
    """A 204, an empty body or a JSON null prints nothing; --output-file then holds what stdout would:
    nothing. The older file there would otherwise be read as this answer."""
    target = tmp_path / "answer.json"
    target.write_text('{"data": "an earlier answer"}')
    api.inject(Fault("raw-json", status=status, detail=body))
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps", "--output-file", str(target)])
    assert called.returncode == 0 and called.stdout_bytes == b"", called.log_lines
    assert target.read_bytes() == b"" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert called.log_lines == [f"Wrote 0 bytes to '{target}' (mode 0600) (the answer had no content)."]
    assert sorted(tmp_path.iterdir()) == [target]


# --- a full disk: the output file, the spool in TMPDIR ----------------------------------------


def _file_size_limit(size: int) -> Callable[[], None]:
    """In the child: files may grow to ``size`` bytes, and a write past it fails with EFBIG ("File too
    large"), as on a full disk (Python ignores SIGXFSZ); pipes, and so stdout and stderr, are not limited."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return limit


FULL_DISK_CASES = {
    "token file": (["--no-verify", "--output-file", "out/token"], "The token file 'out/token' could not be written"),
    "report file": (["api", REPORT, "--output-file", "out/r.gz"], "--output-file 'out/r.gz' could not be written"),
    "report for stdout": (
        ["api", REPORT, "--output-file", "-"],
        "The answer could not be held in the temporary folder",
    ),
    "pages": (["api", "/v1/apps?limit=200", "--paginate"], "The pages could not be held in the temporary folder"),
}


@needs_cli
@posix_only
@pytest.mark.parametrize("case", sorted(FULL_DISK_CASES))
def test_a_full_disk_is_exit_1_naming_the_file_and_leaves_nothing(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, case: str
) -> None:
    """Each file asc-token writes, on a disk that fills up: one error naming it (the spool by its folder,
    TMPDIR), exit 1, nothing on stdout, and no temporary file or folder left behind."""
    args, said = FULL_DISK_CASES[case]
    api.report_size_bytes, api.app_count, api.app_size_bytes = 256 * 1024, 450, 1024
    spool = tmp_path / "spool"
    spool.mkdir()
    limit = _file_size_limit(64 * 1024 if args[0] == "api" else 100)
    done = invoke("asc-token", tmp_path, settings(key, standin=api), args, mode=PROCESS,
                  env={"TMPDIR": str(spool)}, preexec=limit, timeout=60)  # fmt: skip
    assert done.returncode == errors.EXIT_FAILED, done.stderr
    assert done.stdout == ""
    failure = one_error(done)
    assert said in failure and "(File too large)" in failure, done.stderr
    if "temporary folder" in said:
        assert f"'{spool}'" in failure and "TMPDIR" in failure
    assert sorted(path.name for path in tmp_path.iterdir()) == ["spool"]  # no out/, no .tmp-* file
    assert list(spool.iterdir()) == []


class FullDevice(io.RawIOBase):
    """A stdout on a full disk, as /dev/full is: every write fails with ENOSPC while ``full``."""

    full = True

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(data)


@pytest.mark.parametrize(
    "args",
    [
        ["api", "/v1/apps"],
        ["api", REPORT, "--output-file", "-"],
        ["--help"],
        ["--no-verify", "--platform", "azure"],  # Azure's logging commands go to stdout
    ],
)
def test_a_full_stdout_is_exit_1(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, args: List[str]
) -> None:
    """`asc-token ... >/dev/full`: one error naming stdout, exit 1; never the internal error."""
    device = FullDevice()
    run = invoke("asc-token", tmp_path, settings(key, standin=api), args, stdout_device=device)
    assert run.returncode == errors.EXIT_FAILED
    assert one_error(run).startswith("stdout could not be written (No space left on device): it is closed")
    device.full = False  # the buffered bytes can go now, when the stream is collected


# --- settings that name nothing usable: exit 2, naming the variable, before anything is sent ----


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
@pytest.mark.parametrize("command", ["asc-token --verify", "asc-token api"])
def test_a_ca_bundle_that_does_not_exist_is_a_setting_to_fix(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, variable: str, command: str
) -> None:
    named, env = settings(key, standin=api), {variable: str(tmp_path / "no-such-ca.pem")}
    if command == "asc-token api":
        called = invoke("asc-token api", tmp_path, named, ["/v1/apps"], env=env)
        code, said = called.returncode, "\n".join(called.log_lines)
    else:
        run = invoke("asc-token", tmp_path, named, ["--verify"], env=env)
        code, said = run.returncode, run.stderr
    assert code == errors.EXIT_USAGE, said
    assert f"error: {variable} names '{tmp_path / 'no-such-ca.pem'}', which does not exist" in said
    assert api.requests == [] and "Internal error" not in said


@pytest.mark.parametrize("command", ["asc-token --verify", "asc-token api"])
def test_a_body_not_in_its_content_encoding_is_a_bad_answer(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, command: str
) -> None:
    """A 200 that says `Content-Encoding: gzip` over a body that is not gzip: exit 1, said as the answer's fault."""
    garbled = Fault("raw-json", status=200, detail='{"data": []}', headers=(("Content-Encoding", "gzip"),))
    api.inject(garbled)
    if command == "asc-token api":
        called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps"])
        code, said = called.returncode, "\n".join(called.log_lines)
        assert called.stdout_bytes == b""
    else:
        run = invoke("asc-token", tmp_path, settings(key, standin=api), ["--verify", "--print"])
        code, said = run.returncode, run.stderr
    assert code == errors.EXIT_FAILED, said
    assert f"App Store Connect at {api.url}/v1/apps" in said
    assert "sent an answer that could not be read: its body is not in the Content-Encoding" in said
    assert "Internal error" not in said and len(api.requests) == 1  # not retried: the same bytes would come


RUNNER_FILES = {  # (front end, variable): what detects the platform whose file it is
    ("action", "GITHUB_OUTPUT"): {},
    ("action", "GITHUB_STEP_SUMMARY"): {},
    ("asc-token", "GITHUB_OUTPUT"): {"GITHUB_ACTIONS": "true"},
    ("asc-token", "BASH_ENV"): {"CIRCLECI": "true"},
}


@pytest.mark.parametrize("problem", ["a folder", "in a missing folder"])
@pytest.mark.parametrize(("front_end", "variable"), sorted(RUNNER_FILES))
def test_a_runner_file_that_cannot_be_a_file_is_a_setting_to_fix(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, front_end: str, variable: str, problem: str
) -> None:
    """GITHUB_OUTPUT, GITHUB_STEP_SUMMARY or CircleCI's BASH_ENV naming a folder, or a file in a folder that is
    not there: exit 2 naming the variable, before the token is minted or anything is sent."""
    folder = tmp_path / "runner-files"
    folder.mkdir()
    path = folder if problem == "a folder" else folder / "missing" / "file"
    said_problem = "a folder, not a file" if problem == "a folder" else "a file in a folder that does not exist"
    if front_end == "action":
        result = invoke("action", tmp_path, settings(key, standin=api), env={variable: str(path)})
        code, said = result.returncode, one_error(result)
    else:
        env = {**RUNNER_FILES[front_end, variable], variable: str(path)}
        run = invoke("asc-token", tmp_path, settings(key, standin=api), ["--verify"], env=env)
        code, said = run.returncode, run.stderr
    assert code == errors.EXIT_USAGE, said
    assert f"{variable} names '{path}', {said_problem}" in said
    assert api.requests == [] and "Internal error" not in said and "Traceback" not in said


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here (macOS)")
@pytest.mark.parametrize(("front_end", "variable"), sorted(RUNNER_FILES))
def test_a_runner_file_that_cannot_be_written_is_exit_1_naming_it(
    tmp_path: Path, key: KeyMaterial, front_end: str, variable: str
) -> None:
    """The runner's file on a full disk (/dev/full): the token was minted but not handed on, exit 1, one error."""
    if front_end == "action":
        result = invoke("action", tmp_path, settings(key), env={variable: "/dev/full"})
        code, said = result.returncode, one_error(result)
    else:
        env = {**RUNNER_FILES[front_end, variable], variable: "/dev/full"}
        run = invoke("asc-token", tmp_path, settings(key, verify=None), ["--no-verify"], env=env)
        code, said = run.returncode, run.stderr
    assert code == errors.EXIT_FAILED, said
    assert f"{variable} ('/dev/full') could not be written (No space left on device)" in said
    assert "Internal error" not in said and "Traceback" not in said
