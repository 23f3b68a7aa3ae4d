"""``asc-token``: the same minting, checks and messages for every CI system.

Logs go to stderr; the token reaches stdout only with ``--print``.
"""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

from . import __version__
from .checks import DEFAULT_NOTARY_URL, read_preflight
from .config import read_credentials
from .errors import EXIT_OK, EXIT_STATUSES, DeliveryError
from .flags import CliInputs, Parser, add_shared_flags, run_command
from .flow import run_flow
from .platforms import Platform
from .redact import shown
from .secret_files import output_path, write_secret_file
from .transport import Io


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


def _mint(args: argparse.Namespace, inputs: CliInputs, io: Io, platform: Platform, log: Callable[[str], None]) -> int:
    to_stdout = args.output_file == "-"  # as in asc-token api: - is stdout, never a file named -
    printing = bool(args.print_token) or to_stdout
    log(f"asc-token {__version__} on {platform.name}; settings: {', '.join(inputs.sources()) or 'none'}")
    for line in inputs.disagreements():
        log(line)
    credentials = read_credentials(inputs)
    preflight = read_preflight(inputs, credentials)
    # The token file's path; one that could be key material is refused before anything is created.
    output_file = None if to_stdout else args.output_file or platform.token_file()
    if output_file:
        setting = "--output-file" if args.output_file else "PLUGIN_OUTPUT_FILE"
        output_file = output_path(output_file, setting, ".asc-token")
    platform.check_delivery()
    outcome = run_flow(
        credentials,
        preflight,
        inputs,
        io,
        log=log,
        mask=lambda secret: platform.mask(secret, printing=printing),
        mask_key=platform.key_mask(printing=printing),
        workspace=platform.workspace(),
    )
    done = platform.deliver(credentials, outcome, inputs, printing=printing)
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
    minted = outcome.minted
    if printing:
        io.out().write(minted.token + "\n")  # a stdout that cannot be written: exit 1 (dispatch)
        io.out().flush()
        done.append("stdout (--print)" if args.print_token else "stdout (--output-file -)")
    result = outcome.verification
    if result is not None:
        apps = f"{result.app_count} apps visible, " if result.app_count is not None else ""  # a total was reported
        left = result.rate_limit_remaining
        limit = f"{left} requests left this hour" if left is not None else "the rate limit was not reported"
        checked = f"verified ({apps}{limit})"
    elif outcome.checks:
        checked = "checks passed: " + ", ".join(check.check.entry for check in outcome.checks)
    else:
        checked = "not verified"
    log(f"Minted a token for key {credentials.key_id}, expires {minted.expires_at_iso}; {checked}.")
    if done:
        log("Token delivered to: " + "; ".join(done))
    else:
        log("The token was not handed on: add --print (TOKEN=$(asc-token --print)) or --output-file PATH.")
    return EXIT_OK
