"""The token front end: ``mint -> check -> deliver``, for the action's step (its platform is
:class:`platforms.Action`) and for ``asc-token`` on every CI system.

``asc-token`` logs to stderr; the token reaches stdout only with ``--print``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING, List, Sequence, Tuple

from . import __version__
from .caller import open_caller
from .checks import DEFAULT_NOTARY_URL
from .cli import Parser, add_shared_flags, run_command
from .errors import EXIT_OK, EXIT_STATUSES, AscTokenError, DeliveryError
from .keys import to_pkcs8_pem
from .platforms import Action
from .preflight import run_checks
from .records import Outcome
from .redact import shown
from .secret_files import output_path, write_key_files, write_secret_file
from .settings import read_settings
from .tokens import TokenSource

if TYPE_CHECKING:
    from .inputs import CliInputs
    from .platforms import Platform
    from .records import Credentials, Naming, Settings
    from .world import Io


def build_parser() -> Parser:
    parser = Parser(
        prog="asc-token",
        description="Mint an App Store Connect API token (ES256 JWT) and check that it works.",
        epilog=(
            "The key's contents come from ASC_PRIVATE_KEY or ASC_PRIVATE_KEY_B64 (never a flag: argv is "
            "public). To call the API itself: asc-token api [-X METHOD] PATH [--paginate] [--input FILE|-] "
            "[-H NAME:VALUE] [--output-file FILE|-] [--include]; see asc-token api --help. " + EXIT_STATUSES
        ),
        allow_abbrev=False,  # `--private=<key>` must not silently become --private-key
    )
    parser.add_argument("--version", action="version", version=f"asc-token {__version__}")
    add_shared_flags(parser)
    parser.add_argument(
        "--verify",
        action="store_const",
        const="true",
        help="run the --check list (default: apps, one cheap GET that proves the credentials; env: ASC_VERIFY)",
    )
    parser.add_argument(
        "--no-verify", dest="verify", action="store_const", const="false", help="send no request at all"
    )
    parser.add_argument(
        "--check",
        dest="checks",
        action="append",
        metavar="CHECK",
        help="what to prove before the build: apps (default), app:<bundle-id>, testflight, provisioning, "
        "xcode-cloud, notary; repeatable (env: ASC_CHECKS, one per line)",
    )
    parser.add_argument(
        "--notary-url", help=f"notary service base URL (default {DEFAULT_NOTARY_URL}; env: ASC_NOTARY_URL)"
    )
    parser.add_argument(
        "--print", dest="print_token", action="store_true", help="write the token, and only it, to stdout"
    )
    parser.add_argument("--output-file", help="write the token to this file, mode 0600; - is stdout, as --print")
    return parser


def main(argv: Sequence[str], io: Io) -> int:
    return run_command(build_parser(), argv, io, _mint, api_hint=True)


def run_action(io: Io) -> int:
    """The action's step (GITHUB_ACTIONS, no arguments): the same flow, with the step as its platform."""
    action = Action(io.env, stdout=io.out(), stderr=io.err())
    try:
        settings = read_settings(action.inputs, delivery=True)
        outcome, _ = deliver_token(settings, action.inputs, io, action, printing=False)
    except AscTokenError as error:
        action.report_error(error)
        return error.exit_code
    action.log(status_line(settings.credentials, outcome, action.inputs.assignment("verify", "false")))
    return EXIT_OK


def deliver_token(
    settings: Settings, naming: Naming, io: Io, platform: Platform, *, printing: bool
) -> Tuple[Outcome, List[str]]:
    """mint -> check -> deliver, for every front end: the outcome, and where the platform put the token."""
    platform.check_delivery(settings)
    # keep_first: the checks prove the very token handed on
    caller = open_caller(settings.credentials, naming, io, platform, printing=printing, keep_first=True)
    assert isinstance(caller.tokens, TokenSource)  # open_caller signs with the key
    minted = caller.tokens.first  # masked before anything else is written that could carry it
    folder, key_files = platform.key_files_folder(settings), None
    if folder is not None:
        key_files = write_key_files(folder, to_pkcs8_pem(caller.tokens.key), settings.credentials, io)
    results = run_checks(settings.preflight, caller) if settings.preflight.verify else ()
    apps = next((result for result in results if result.check.name == "apps"), None)
    # Any check that passed proved the credentials; without `apps` its rate limit is the latest.
    facts = apps.facts if apps is not None else next((r.facts for r in reversed(results) if r.facts), None)
    if apps is None and facts is not None:
        facts = replace(facts, app_count=None)  # only the apps check counts apps
    outcome = Outcome(minted, verification=facts, key_files=key_files, checks=results)
    return outcome, platform.deliver(settings, outcome, printing=printing)


def status_line(credentials: Credentials, outcome: Outcome, verify_off: str) -> str:
    """The one line that says what was minted and what was proved (``verify_off``: `verify: false` as the
    user writes it)."""
    checked = f"not verified ({verify_off})"
    if outcome.checks:
        checked = "checks passed: " + ", ".join(check.check.entry for check in outcome.checks)
    result = outcome.verification
    if result is not None:
        apps = f"{result.app_count} apps visible, " if result.app_count is not None else ""  # a total was reported
        left = result.rate_limit_remaining
        checked += (
            f" ({apps}{f'{left} requests left this hour' if left is not None else 'the rate limit was not reported'})"
        )
    return (
        f"Minted a token for {credentials.api.service}, key {credentials.key_id} ({credentials.key_type}), "
        f"expires {outcome.minted.expires_at_iso}; {checked}."
    )


def _mint(args: argparse.Namespace, inputs: CliInputs, io: Io, platform: Platform) -> int:
    log = platform.log
    to_stdout = args.output_file == "-"  # as in asc-token api: - is stdout, never a file named -
    printing = bool(args.print_token) or to_stdout
    log(f"asc-token {__version__} on {platform.name}; settings: {', '.join(inputs.sources()) or 'none'}")
    for line in inputs.disagreements():
        log(line)
    settings = read_settings(inputs)
    # The token file's path; one that could be key material is refused before anything is created.
    output_file = None if to_stdout else args.output_file or platform.token_file()
    if output_file:
        setting = "--output-file" if args.output_file else "PLUGIN_OUTPUT_FILE"
        output_file = output_path(output_file, setting, ".asc-token")
    outcome, done = deliver_token(settings, inputs, io, platform, printing=printing)
    if output_file:
        try:
            write_secret_file(output_file, outcome.minted.token + "\n")
        except OSError as exc:
            raise DeliveryError(
                f"The token file {shown(output_file, path=True)} could not be written "
                f"({exc.strerror or type(exc).__name__}): give --output-file a file path in a folder "
                "this step can write."
            ) from None
        done.append(f"token file {shown(output_file, path=True)} (mode 0600)")
    if printing:
        io.out().write(outcome.minted.token + "\n")  # a stdout that cannot be written: exit 1 (dispatch)
        io.out().flush()
        done.append("stdout (--print)" if args.print_token else "stdout (--output-file -)")
    log(status_line(settings.credentials, outcome, inputs.assignment("verify", "false")))
    if done:
        log("Token delivered to: " + "; ".join(done))
    else:
        log("The token was not handed on: add --print (TOKEN=$(asc-token --print)) or --output-file PATH.")
    return EXIT_OK
