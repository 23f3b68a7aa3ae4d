"""Choose the front end: the GitHub action (the token step, or the upload step: ``upload`` and no FILE),
``asc-token``, ``asc-token api`` or ``asc-token upload``; errors to exit codes."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any, List, Optional

from .errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED
from .world import Io


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that every cleanup an interrupt runs (a download's
    temporary file and the folders it made) runs for it too."""


def cli() -> int:
    """The ``asc-token`` command: always the CLI, even inside GitHub Actions."""
    return main(force_cli=True)


def main(argv: Optional[List[str]] = None, *, force_cli: bool = False, io: Optional[Io] = None) -> int:
    """entrypoint.py: the action when the runner starts it (GITHUB_ACTIONS, no arguments)."""
    owns_process = io is None  # an Io is passed by whoever owns the process, as tests do
    if io is None:
        no_core_dumps()
        no_borrowed_standard_streams()
        terminate_as_interrupt()
        io = Io()
    try:
        return _run(sys.argv[1:] if argv is None else argv, force_cli, io)
    finally:
        if owns_process:
            settle_stdout()


def _run(args: List[str], force_cli: bool, io: Io) -> int:
    on_github = io.env.get("GITHUB_ACTIONS") == "true"
    try:
        if not force_cli and not args and on_github:
            from .token_command import run_action  # deferred: each front end imports only its own modules

            return run_action(io)
        if not force_cli and args == ["upload"] and on_github:  # upload/action.yml's step: inputs, no FILE
            from .upload_command import run_upload_action

            return run_upload_action(io)
        if args[:1] == ["upload"]:
            from .upload_command import main as upload_main

            return upload_main(args[1:], io)
        if args[:1] == ["api"]:
            from .api_command import main as api_main

            return api_main(args[1:], io)
        from .token_command import main as token_main

        return token_main(args, io)
    except Terminated:
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `asc-token --print | head -c 0`: the reader left; nothing to say, nowhere to say it
        return EXIT_FAILED
    except OSError as exc:
        if not cannot_write(io.out()):
            return internal_error(exc, io, on_github)
        # The one place for a stdout that cannot be written (a full disk, closed): the token, an answer, --help.
        prefix = "::error title=Could not write to stdout::" if on_github else "error: "
        print(
            f"{prefix}stdout could not be written ({exc.strerror or type(exc).__name__}): it is closed, full or "
            "gone, and what reached it may be incomplete; send stdout to a file or pipe that can be written.",
            file=io.err(),
            flush=True,
        )
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback, no secret
        return internal_error(exc, io, on_github)


def internal_error(exc: Exception, io: Io, on_github: bool) -> int:
    # The exception's text could quote an input, so only its type is shown; on stderr, because
    # stdout may be a `$(asc-token --print)` (the runner reads workflow commands from both).
    prefix = "::error title=Internal error::" if on_github else "error: Internal error: "
    print(
        f"{prefix}asc-token-action hit an unexpected {type(exc).__name__}; "
        "this is a bug in the action, not in your secrets: please open an issue with this "
        "line and the runner's OS.",
        file=io.err(),
        flush=True,
    )
    return EXIT_INTERNAL


def cannot_write(stream: Any) -> bool:
    """Whether ``stream`` has failed: a failed write leaves its bytes buffered, so flushing fails again."""
    try:
        stream.flush()
    except (OSError, ValueError):  # ValueError: closed
        return True
    return False


def no_core_dumps() -> None:
    """A core file of this process would hold the key: none is ever written (not on Windows)."""
    try:
        import resource
    except ImportError:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def terminate_as_interrupt() -> None:
    """SIGTERM raises :class:`Terminated` (exit 143) instead of ending the process where it stands."""

    def terminated(signum: int, frame: Any) -> None:
        raise Terminated

    with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread
        signal.signal(signal.SIGTERM, terminated)


def settle_stdout() -> None:
    """A write to stdout that failed (a broken pipe, a full disk) leaves its bytes buffered, and the
    interpreter would try them again at exit, print "Exception ignored" and exit 120: they are
    flushed here, or stdout is pointed at the null device (the bytes, the token too, go nowhere)."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        with contextlib.suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)


def no_borrowed_standard_streams() -> None:
    """A descriptor 0, 1 or 2 the caller closed (``2>&-``) is given the null device: otherwise the next
    file this process opens (the token file, a socket) would take its number, and a library writing
    to descriptor 2 would write into it. Python still sees the stream as closed (sys.stderr is None)."""
    while True:
        descriptor = os.open(os.devnull, os.O_RDWR)
        if descriptor > 2:
            os.close(descriptor)
            return
