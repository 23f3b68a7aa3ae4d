"""``asc-token upload FILE``: send an .ipa or .pkg to App Store Connect and, with ``--wait``, see it processed.

stdout carries one JSON document (the build upload's ID and state, the build's once known) whenever a
build upload was created, on failure too; progress and explanations go to stderr.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Sequence

from .cli import Parser, add_shared_flags, run_command
from .errors import EXIT_OK, EXIT_STATUSES
from .operations import DEFAULT_PARALLEL
from .settings import read_credentials, require_base_url
from .uploads import MAX_PARALLEL, UPLOAD_SETTINGS, UploadState, read_upload_request, run_upload

if TYPE_CHECKING:
    from .inputs import CliInputs
    from .platforms import Platform
    from .world import Io


def build_upload_parser() -> Parser:
    parser = Parser(
        prog="asc-token upload",
        description=(
            "Upload an .ipa or .pkg to App Store Connect with Apple's Build Uploads API (any OS, no Xcode or "
            "Transporter), and with --wait, wait until Apple has processed it. Version, build number, bundle "
            "ID and platform come from the IPA's Info.plist unless given. Credentials: as for asc-token."
        ),
        epilog=EXIT_STATUSES + " 130/143: interrupted; an upload not yet committed is deleted first.",
        allow_abbrev=False,
    )
    parser.add_argument("file", metavar="FILE", help="the .ipa or .pkg to upload")
    parser.add_argument("--bundle-id", help="the app's bundle ID (default: CFBundleIdentifier; needed for a .pkg)")
    parser.add_argument("--app-id", help="the app's Apple ID (numeric): skips looking the app up by bundle ID")
    parser.add_argument("--version", help="CFBundleShortVersionString (default: the IPA's; needed for a .pkg)")
    parser.add_argument("--build-number", help="CFBundleVersion (default: the IPA's; needed for a .pkg)")
    parser.add_argument(
        "--platform", help="IOS, MAC_OS, TV_OS or VISION_OS (default: from the IPA's DTPlatformName; MAC_OS for a .pkg)"
    )
    parser.add_argument(
        "--wait", action="store_true", help="wait until Apple has processed the build (VALID), not only received it"
    )
    parser.add_argument("--wait-timeout", help="how long --wait waits: 3600, 90s, 30m, 2h (default 60m)")
    parser.add_argument("--parallel", help=f"parts sent at once, 1 to {MAX_PARALLEL} (default {DEFAULT_PARALLEL})")
    add_shared_flags(parser, ci_platform_flag="--ci-platform")
    return parser


def main(argv: Sequence[str], io: Io) -> int:
    return run_command(build_upload_parser(), argv, io, _upload, extra_settings=UPLOAD_SETTINGS)


def _upload(args: argparse.Namespace, inputs: CliInputs, io: Io, platform: Platform) -> int:
    for line in inputs.disagreements():
        platform.log(line)
    credentials = read_credentials(inputs)
    require_base_url(inputs, "api-url", credentials.api_url, credentials.api.url)
    request = read_upload_request(inputs, credentials.api)
    for note in request.notes:
        platform.log(note)
    from .caller import open_caller

    caller = open_caller(credentials, inputs, io, platform, printing=True)
    state = UploadState()
    try:
        run_upload(request, caller, io, state)
    finally:
        if state.build_upload_id:  # what exists at Apple, on failure and interrupt too
            io.out().write(json.dumps(state.document(), indent=2) + "\n")
            io.out().flush()
    return EXIT_OK
