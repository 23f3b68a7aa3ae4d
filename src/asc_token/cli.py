"""The command-line harness both commands share: argparse that never quotes a value, the shared flags,
and :func:`run_command` (arguments, log, CI platform, settings, errors reported the platform's way)."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, NoReturn, Optional, Sequence, TextIO

from .apis import APP_STORE_CONNECT, ENTERPRISE
from .errors import EXIT_USAGE, AscTokenError, InputError
from .inputs import ENV_SOURCES, CliInputs
from .platforms import PLATFORM_NAMES, Platform, platform_for
from .redact import may_be_secret

if TYPE_CHECKING:
    from .world import Io


class Parser(argparse.ArgumentParser):
    """argparse on the command's own streams, never quoting an offending value."""

    out: Optional[TextIO] = None
    err: Optional[TextIO] = None
    ci_platform_flag = "--platform"  # as add_shared_flags named it

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            stream: TextIO = (self.err or sys.stderr) if file is sys.stderr else (self.out or sys.stdout)
            stream.write(message)
            stream.flush()

    def error(self, message: str) -> NoReturn:
        # argparse's own messages quote the offending value (`ignored explicit argument '-----BEGIN...'`):
        # a key pasted as an argument must not reach the log, so only the argument's name is kept.
        self.usage_error(_without_values(message))

    def usage_error(self, message: str) -> NoReturn:
        """A usage error of this program's own, whose ``message`` quotes no value: exit status 2."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# argparse's reasons that name arguments only; any other reason may hold a value and is replaced.
_REASONS_WITHOUT_VALUES = ("expected ", "not allowed with argument ")
_MESSAGES_WITHOUT_VALUES = ("the following arguments are required: ", "one of the arguments ")


def _without_values(message: str) -> str:
    """An argparse usage error with no argument value in it: "argument NAME: ..." keeps NAME."""
    if message.startswith(_MESSAGES_WITHOUT_VALUES):
        return message
    if not message.startswith("argument "):  # unrecognized or ambiguous options quote what was given
        return "invalid arguments (values are not shown: they may be secrets); see --help"
    name, _, reason = message[len("argument ") :].partition(": ")
    if reason.startswith(_REASONS_WITHOUT_VALUES):
        return message
    if reason.startswith("ignored explicit argument"):
        return f"argument {name} takes no value (what was given is not shown: it may be a secret)"
    return f"argument {name}: invalid value (not shown: it may be a secret)"


def add_shared_flags(parser: Parser, *, ci_platform_flag: str = "--platform") -> None:
    """The flags every command reads: the credentials, and which API, at which URL, on which CI platform
    (``--ci-platform`` for ``upload``, whose ``--platform`` is Apple's)."""
    parser.ci_platform_flag = ci_platform_flag
    parser.add_argument("--key-id", help="10-character key ID (env: ASC_KEY_ID)")
    parser.add_argument("--issuer-id", help="issuer UUID, for team keys (env: ASC_ISSUER_ID)")
    parser.add_argument(
        "--private-key-path",
        help="path of the AuthKey_<KEYID>.p8 file (env: ASC_PRIVATE_KEY_PATH; the key's contents: ASC_PRIVATE_KEY)",
    )
    parser.add_argument("--private-key", help=argparse.SUPPRESS)  # refused: argv is public
    parser.add_argument(
        "--api-key-json-path",
        help="fastlane's API key JSON (key_id, issuer_id, key, duration, in_house): the settings not given "
        "otherwise (env: APP_STORE_CONNECT_API_KEY_PATH)",
    )
    parser.add_argument("--key-type", help="team (default) or individual (env: ASC_KEY_TYPE)")
    parser.add_argument(
        "--expires-in",
        help="token lifetime: seconds or 90s, 20m, 2h, 180d (default 1200); beyond 20 minutes only "
        "with a --scope of GETs on resources that allow long-lived tokens (env: ASC_EXPIRES_IN)",
    )
    parser.add_argument(
        "--scope", action="append", help="METHOD /path the token may call; repeatable (env: ASC_SCOPE, one per line)"
    )
    parser.add_argument(
        "--api", help=f"app-store-connect (default) or enterprise, the {ENTERPRISE.service} (env: ASC_API)"
    )
    parser.add_argument(
        "--api-url", help=f"API base URL (default: the chosen API's own, {APP_STORE_CONNECT.url}; env: ASC_API_URL)"
    )
    parser.add_argument(
        ci_platform_flag,
        dest="ci_platform",
        metavar="NAME",
        help=f"CI platform: {', '.join(PLATFORM_NAMES)} (default: detected)",
    )


def flag_settings(args: argparse.Namespace) -> Dict[str, Optional[str]]:
    """The settings this command has flags for, by name (a repeated flag's values one a line); the key is refused."""
    if args.private_key is not None:
        raise InputError(
            "--private-key on the command line is refused, because every process on the "
            "machine can read argv: put the key in ASC_PRIVATE_KEY (from a secret) or a file "
            "and pass --private-key-path."
        )
    parsed = {name.replace("_", "-"): value for name, value in vars(args).items()}
    return {
        name: "\n".join(value) if isinstance(value, list) else value
        for name, value in parsed.items()
        if name in ENV_SOURCES
    }


Command = Callable[[argparse.Namespace, CliInputs, "Io", Platform], int]


def run_command(
    parser: Parser,
    argv: Sequence[str],
    io: Io,
    command: Command,
    *,
    api_hint: bool = False,
    extra_settings: Sequence[str] = (),
) -> int:
    """An :class:`AscTokenError` the command raises is reported the platform's way: its exit status is returned."""
    parser.out, parser.err = io.out(), io.err()
    args, extras = parser.parse_known_args(list(argv))
    if extras:  # named by their option names only: a value may be a secret
        names = {extra.split("=", 1)[0] for extra in extras if extra.startswith("-")}
        options = sorted(name for name in names if not may_be_secret(name))
        named = f": {', '.join(options)}" if options else ""
        hint = "put api first to call the API (asc-token api PATH); " if api_hint and "api" in extras else ""
        parser.usage_error(
            f"unrecognised arguments{named} (values are not shown: they may be secrets); {hint}see --help"
        )
    if args.ci_platform is not None and args.ci_platform not in PLATFORM_NAMES:
        parser.usage_error(f"{parser.ci_platform_flag} must be one of {', '.join(PLATFORM_NAMES)}")
    # Logs go to stderr: stdout may be a `$(...)` that must hold nothing but the answer.
    log = functools.partial(print, file=io.err(), flush=True)
    platform = platform_for(io.env, args.ci_platform)(io.env, log=log, stdout=io.out(), stderr=io.err())
    try:
        flags = flag_settings(args)
        # A command reads the environment names of the settings it has flags for, and no other; its own
        # settings (upload's FILE, --version ...) are flags only.
        given = {name: getattr(args, name.replace("-", "_")) for name in extra_settings}
        own = {name: ("true" if value else None) if isinstance(value, bool) else value for name, value in given.items()}
        return command(args, CliInputs({**flags, **own}, io.env, reads=[*flags, *own]), io, platform)
    except AscTokenError as error:
        platform.report_error(error)
        return error.exit_code
