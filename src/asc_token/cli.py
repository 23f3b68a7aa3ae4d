"""``asc-token``: the same minting, checks and messages for every CI system.

Settings come from flags first, then from the environment names users already have (the asc
CLI's, fastlane's, codemagic's, and Woodpecker/Drone plugin settings). Logs go to stderr; the
token reaches stdout only with ``--print``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, List, Mapping, NoReturn, Optional, Sequence, Tuple

from . import __version__
from .config import DEFAULT_API_URL, DEFAULT_NOTARY_URL, read_settings
from .errors import AscTokenError, DeliveryError, InputError
from .files import write_secret_file
from .flow import Collaborators, run_flow
from .platforms import PLATFORM_NAMES, platform_for
from .transport import Transport

# First match wins. Plugin settings come first: they are set for this step only.
ENV_SOURCES: Dict[str, Tuple[str, ...]] = {
    "private-key-path": ("PLUGIN_PRIVATE_KEY_PATH", "ASC_PRIVATE_KEY_PATH", "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH"),
    "private-key": (
        "PLUGIN_PRIVATE_KEY",
        "ASC_PRIVATE_KEY",
        "ASC_PRIVATE_KEY_B64",
        "APP_STORE_CONNECT_API_KEY_KEY",
        "APP_STORE_CONNECT_PRIVATE_KEY",
    ),
    "key-id": ("PLUGIN_KEY_ID", "ASC_KEY_ID", "APP_STORE_CONNECT_API_KEY_KEY_ID", "APP_STORE_CONNECT_KEY_IDENTIFIER"),
    "issuer-id": (
        "PLUGIN_ISSUER_ID",
        "ASC_ISSUER_ID",
        "APP_STORE_CONNECT_API_KEY_ISSUER_ID",
        "APP_STORE_CONNECT_ISSUER_ID",
    ),
    "key-type": ("PLUGIN_KEY_TYPE", "ASC_KEY_TYPE"),
    "expires-in": ("PLUGIN_EXPIRES_IN", "ASC_EXPIRES_IN"),
    "scope": ("PLUGIN_SCOPE", "ASC_SCOPE"),
    "verify": ("PLUGIN_VERIFY", "ASC_VERIFY"),
    "api-url": ("PLUGIN_API_URL", "ASC_API_URL"),
    "checks": ("PLUGIN_CHECKS", "ASC_CHECKS"),
    "notary-url": ("PLUGIN_NOTARY_URL", "ASC_NOTARY_URL"),
    "api": ("PLUGIN_API", "ASC_API"),
}
# Settings whose flag is spelled differently from the setting: `--check` is given once per check.
_FLAG_SPELLING = {"checks": "--check"}
# One key source for the whole chain: a path and contents from different tools are not a conflict.
_KEY_ORDER = (
    ("private-key-path", "PLUGIN_PRIVATE_KEY_PATH"),
    ("private-key", "PLUGIN_PRIVATE_KEY"),
    ("private-key-path", "ASC_PRIVATE_KEY_PATH"),
    ("private-key", "ASC_PRIVATE_KEY"),
    ("private-key", "ASC_PRIVATE_KEY_B64"),
    ("private-key-path", "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH"),
    ("private-key", "APP_STORE_CONNECT_API_KEY_KEY"),
    ("private-key", "APP_STORE_CONNECT_PRIVATE_KEY"),
)


class CliInputs:
    """An InputReader over parsed flags and the environment, remembering which name was used."""

    on_github = False  # configured by flags and variables, never by a workflow's `with:`

    def __init__(self, flags: Mapping[str, Optional[str]], env: Mapping[str, str]) -> None:
        self._values: Dict[str, str] = {}
        self._labels: Dict[str, str] = {}
        for name, value in flags.items():
            if value is not None:
                flag = "--no-verify" if (name, value) == ("verify", "false") else _FLAG_SPELLING.get(name, f"--{name}")
                self._values[name], self._labels[name] = value, flag
        if "private-key-path" not in self._values:
            for name, variable in _KEY_ORDER:
                if env.get(variable, "").strip():
                    self._values[name], self._labels[name] = env[variable], variable
                    break
        for name, variables in ENV_SOURCES.items():
            if name in self._values or name.startswith("private-key"):
                continue
            for variable in variables:
                if env.get(variable, "").strip():
                    self._values[name], self._labels[name] = env[variable], variable
                    break

    def get(self, name: str) -> str:
        return self._values.get(name, "")

    def label(self, name: str) -> str:
        if name in self._labels:
            return self._labels[name]
        names = ENV_SOURCES.get(name, ())
        variable = names[1] if len(names) > 1 else (names[0] if names else "")
        if name not in _FLAGS:  # the key's contents: never a flag (argv is public)
            return variable or name
        return _FLAG_SPELLING.get(name, f"--{name}") + (f" (or {variable})" if variable else "")

    def assignment(self, name: str, value: str) -> str:
        used = self._labels.get(name, "")
        if used and not used.startswith("--"):
            return f"{used}={value}"
        if name == "verify":
            return "--verify" if value == "true" else "--no-verify"
        if name in _FLAGS:
            return f"{_FLAG_SPELLING.get(name, '--' + name)} {value}"
        names = ENV_SOURCES.get(name, ())
        return f"{names[1] if len(names) > 1 else name}={value}"

    def sources(self) -> List[str]:
        return [f"{name} from {label}" for name, label in sorted(self._labels.items())]


_FLAGS = (
    *("key-id", "issuer-id", "private-key-path", "key-type", "expires-in", "scope", "verify", "api-url"),
    *("checks", "notary-url", "api"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse quotes offending values; a key pasted as an argument must not reach the log.
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """The credential flags every command reads (``asc-token`` and ``asc-token api``)."""
    parser.add_argument("--key-id", help="10-character key ID (env: ASC_KEY_ID)")
    parser.add_argument("--issuer-id", help="issuer UUID, for team keys (env: ASC_ISSUER_ID)")
    parser.add_argument("--private-key-path", help="path of the AuthKey_<KEYID>.p8 file (env: ASC_PRIVATE_KEY_PATH)")
    parser.add_argument("--private-key", help=argparse.SUPPRESS)  # refused: argv is public
    parser.add_argument("--key-type", help="team (default) or individual")
    parser.add_argument(
        "--expires-in",
        help="token lifetime: seconds or 90s, 20m, 2h, 180d (default 1200); beyond 20 minutes only "
        "with a --scope of GETs on resources that allow long-lived tokens (env: ASC_EXPIRES_IN)",
    )
    parser.add_argument("--scope", action="append", help="METHOD /path the token may call; repeatable")


def add_platform_flags(parser: argparse.ArgumentParser) -> None:
    """Which API, at which URL, on which CI platform: every command reads them too."""
    parser.add_argument(
        "--api", help="app-store-connect (default) or enterprise, the Enterprise Program API (env: ASC_API)"
    )
    parser.add_argument("--api-url", help=f"API base URL (default: the chosen API's own, {DEFAULT_API_URL})")
    parser.add_argument(
        "--platform", metavar="NAME", help=f"CI platform: {', '.join(PLATFORM_NAMES)} (default: detected)"
    )


def settings_flags(args: argparse.Namespace) -> Dict[str, Optional[str]]:
    """The parsed settings flags by setting name; refuses the key on the command line."""
    if args.private_key is not None:
        raise InputError(
            "--private-key on the command line is refused, because every process on the "
            "machine can read argv: put the key in ASC_PRIVATE_KEY (from a secret) or a file "
            "and pass --private-key-path."
        )
    return {
        "key-id": args.key_id,
        "issuer-id": args.issuer_id,
        "private-key-path": args.private_key_path,
        "key-type": args.key_type,
        "expires-in": args.expires_in,
        "scope": "\n".join(args.scope) if args.scope else None,
        "api-url": args.api_url,
        "api": args.api,
        # The token command's own; `asc-token api` has none of them.
        "verify": getattr(args, "verify", None),
        "checks": "\n".join(args.check) if getattr(args, "check", None) else None,
        "notary-url": getattr(args, "notary_url", None),
    }


def refuse_extras(parser: argparse.ArgumentParser, extras: Sequence[str], hint: str = "") -> None:
    """Unknown arguments named by their option names only: a value may be a secret."""
    if extras:
        options = sorted({extra.split("=", 1)[0] for extra in extras if extra.startswith("-") and len(extra) < 60})
        named = f": {', '.join(options)}" if options else ""
        parser.error(f"unrecognised arguments{named} (values are not shown: they may be secrets); {hint}see --help")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="asc-token",
        description="Mint an App Store Connect API token (ES256 JWT) and check that it works.",
        epilog=(
            "To call the API itself: asc-token api [--method GET|POST|PATCH|DELETE] PATH "
            "[--paginate] [--input FILE|-] [--include]; see asc-token api --help."
        ),
        allow_abbrev=False,  # `--private=<key>` must not silently become --private-key
    )
    parser.add_argument("--version", action="version", version=f"asc-token {__version__}")
    add_settings_flags(parser)
    parser.add_argument(
        "--verify",
        dest="verify",
        action="store_const",
        const="true",
        help="run the --check list (default: apps, one cheap GET that proves the credentials)",
    )
    parser.add_argument(
        "--no-verify", dest="verify", action="store_const", const="false", help="send no request at all"
    )
    parser.add_argument(
        "--check",
        action="append",
        metavar="CHECK",
        help="what to prove before the build: apps (default), app:<bundle-id>, testflight, provisioning, "
        "xcode-cloud, notary; repeatable (env: ASC_CHECKS, one per line)",
    )
    parser.add_argument("--notary-url", help=f"notary service base URL (default {DEFAULT_NOTARY_URL})")
    parser.add_argument(
        "--print", dest="print_token", action="store_true", help="write the token, and only it, to stdout"
    )
    parser.add_argument("--output-file", help="write the token to this file, mode 0600")
    add_platform_flags(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None, env: Optional[Mapping[str, str]] = None) -> int:
    environ = dict(os.environ if env is None else env)
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["api"]:
        from .apicommand import main as api_main  # its own parser; the token command is unchanged

        return api_main(arguments[1:], environ)
    parser = build_parser()
    args, extras = parser.parse_known_args(arguments)
    refuse_extras(parser, extras, "put api first to call the API (asc-token api PATH); " if "api" in extras else "")
    if args.platform is not None and args.platform not in PLATFORM_NAMES:
        parser.error(f"--platform must be one of {', '.join(PLATFORM_NAMES)}")
    platform = platform_for(environ, args.platform)(environ, log=_log)
    printing = bool(args.print_token)
    try:
        inputs = CliInputs(settings_flags(args), environ)
        _log(f"asc-token {__version__} on {platform.name}; settings: {', '.join(inputs.sources()) or 'none'}")
        settings = read_settings(inputs)
        edge = Collaborators(
            clock=time.time,
            mask=lambda secret: platform.mask(secret, printing=printing),
            log=_log,
            transport=Transport(log=_log),
        )
        outcome = run_flow(settings, inputs, edge, workspace=platform.workspace(), temp_dir=None)
        done = platform.deliver(settings, outcome, inputs, printing=printing)
        output_file = args.output_file or platform.token_file()
        if output_file:
            _write_token_file(output_file, outcome.minted.token)
            done.append(f"token file {output_file} (mode 0600)")
    except AscTokenError as error:
        platform.report_error(error)
        return 1
    minted = outcome.minted
    if printing:
        sys.stdout.write(minted.token + "\n")
        sys.stdout.flush()
        done.append("stdout (--print)")
    result = outcome.verification
    if result is not None:
        apps = f"{result.app_count} apps visible, " if result.app_count is not None else ""  # enterprise: none
        checked = f"verified ({apps}{result.rate_limit_remaining} requests left this hour)"
    elif outcome.checks:
        checked = "checks passed: " + ", ".join(check.check.entry for check in outcome.checks)
    else:
        checked = "not verified"
    _log(f"Minted a token for key {settings.key_id}, expires {minted.expires_at_iso}; {checked}.")
    if done:
        _log("Token delivered to: " + "; ".join(done))
    else:
        _log("The token was not handed on: add --print (TOKEN=$(asc-token --print)) or --output-file PATH.")
    return 0


def _write_token_file(path: str, token: str) -> None:
    try:
        write_secret_file(path, token + "\n")
    except OSError as exc:
        raise DeliveryError(
            f"The token file {path!r} could not be written ({exc.strerror or type(exc).__name__}): "
            "give --output-file a file path in a folder this step can write."
        ) from None


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
