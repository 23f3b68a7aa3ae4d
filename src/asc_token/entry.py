"""Choose the front end: the GitHub action, or the ``asc-token`` command everywhere else."""

from __future__ import annotations

import os
import sys
from typing import List, Optional


def cli() -> int:
    """The ``asc-token`` command: always the CLI, even inside GitHub Actions."""
    return main(force_cli=True)


def main(argv: Optional[List[str]] = None, *, force_cli: bool = False) -> int:
    """entrypoint.py: the action when the runner starts it (GITHUB_ACTIONS, no arguments)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        if not force_cli and not args and os.environ.get("GITHUB_ACTIONS") == "true":
            from .action import run_action

            return run_action()
        from .cli import main as cli_main

        return cli_main(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback, no secret
        # The exception's text could quote an input, so only its type is shown; on stderr, because
        # stdout may be a `$(asc-token --print)` (the runner reads workflow commands from both).
        print(
            f"::error title=Internal error::asc-token-action hit an unexpected {type(exc).__name__}; "
            "this is a bug in the action, not in your secrets: please open an issue with this "
            "line and the runner's OS.",
            file=sys.stderr,
            flush=True,
        )
        return 3  # not 2: `asc-token api` promises that 2 means nothing was sent
