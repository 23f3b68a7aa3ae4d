"""Choose the front end: the GitHub action, ``asc-token`` or ``asc-token api``; errors to exit codes."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import List, Optional

from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED
from .transport import Io


def cli() -> int:
    """The ``asc-token`` command: always the CLI, even inside GitHub Actions."""
    return main(force_cli=True)


def main(argv: Optional[List[str]] = None, *, force_cli: bool = False, io: Optional[Io] = None) -> int:
    """entrypoint.py: the action when the runner starts it (GITHUB_ACTIONS, no arguments)."""
    if io is None:  # this is the process (an Io is passed by whoever owns the process, as tests do)
        no_core_dumps()
        no_borrowed_standard_streams()
        io = Io()
    args = sys.argv[1:] if argv is None else argv
    on_github = io.env.get("GITHUB_ACTIONS") == "true"
    try:
        if not force_cli and not args and on_github:
            from .action import run_action  # deferred: each front end imports only its own modules

            return run_action(io)
        if args[:1] == ["api"]:
            from .api_command import main as api_main

            return api_main(args[1:], io)
        from .token_command import main as token_main

        return token_main(args, io)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback, no secret
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


def no_core_dumps() -> None:
    """A core file of this process would hold the key: none is ever written (not on Windows)."""
    try:
        import resource
    except ImportError:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def no_borrowed_standard_streams() -> None:
    """A descriptor 0, 1 or 2 the caller closed (``2>&-``) is given the null device: otherwise the next
    file this process opens (the token file, a socket) would take its number, and a library writing
    to descriptor 2 would write into it. Python still sees the stream as closed (sys.stderr is None)."""
    while True:
        descriptor = os.open(os.devnull, os.O_RDWR)
        if descriptor > 2:
            os.close(descriptor)
            return
