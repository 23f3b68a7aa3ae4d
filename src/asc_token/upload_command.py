"""``asc-token upload FILE``: send an .ipa or .pkg to App Store Connect and, with ``--wait``, see it processed.

stdout carries one JSON document (the build upload's ID and state, the build's once known) whenever a
build upload was created, on failure too; progress and explanations go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, List, Mapping, Optional, Sequence, Tuple

from .cli import Parser, add_shared_flags, run_command
from .errors import EXIT_OK, EXIT_STATUSES, AscTokenError, KeyMissingError
from .operations import DEFAULT_PARALLEL
from .settings import read_credentials, require_base_url
from .uploads import MAX_PARALLEL, UPLOAD_SETTINGS, UploadState, read_upload_request, run_upload

if TYPE_CHECKING:
    from .caller import Caller
    from .github import GitHubCommands
    from .inputs import CliInputs
    from .platforms import Platform
    from .uploads import UploadRequest
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


# --- the GitHub step: upload/action.yml (entrypoint.py upload, on GitHub Actions, with no FILE) --------------

# The upload step's inputs (upload/action.yml); every other setting is read from nowhere.
ACTION_INPUTS = (
    "file",
    "wait",
    "wait-timeout",
    "bundle-id",
    "app-id",
    "version",
    "build-number",
    "platform",
    "private-key",
    "private-key-path",
    "key-id",
    "issuer-id",
    "key-type",
    "api-url",
)
# Settings an earlier asc-token-action step exported with export-env (ASC_KEY_ID, ASC_PRIVATE_KEY_PATH ...):
# used where the step's own input is empty. `api` has no input here: only ASC_API says it.
EXPORTED_SETTINGS = ("private-key", "private-key-path", "key-id", "issuer-id", "key-type", "api-url", "api")
ACTION_DEFAULTS = {"wait": "true"}  # as upload/action.yml's defaults, for a step started without them
KEY_SETTINGS = ("private-key", "private-key-path")
EXPORT_ENV_HINT = (
    " Or run asc-token-action with `write-key-files: true` and `export-env: true` earlier in this job: this step "
    "then uses the key file and IDs it exported."
)
# The messages the upload shares with `asc-token upload` name its flags; the step names its inputs.
_UPLOAD_FLAG = re.compile(r"(?<![\w-])--(bundle-id|app-id|version|build-number|platform|wait-timeout)(?![\w-])")


def input_names(text: str) -> str:
    """A message of the upload flow with each of its flags named as the step's input (`--version` -> `version`)."""
    return _UPLOAD_FLAG.sub(r"`\1`", text)


class UploadActionInputs:
    """The upload step's settings: its inputs as the token step reads them (INPUT_*, inputs.GitHubInputs),
    and, for a key input left empty, what an earlier asc-token-action step exported with `export-env`
    (read as ``asc-token`` reads the environment, inputs.CliInputs), named by that variable. The key is one
    setting: contents or a path given as inputs keep the exported path out. ``file`` is relative to the
    workspace."""

    on_github = True

    def __init__(self, env: Mapping[str, str], log: Callable[[str], None]) -> None:
        from .inputs import CliInputs, GitHubInputs

        self._inputs = GitHubInputs(env, log)
        self._exported = CliInputs({}, env, reads=EXPORTED_SETTINGS)
        self._workspace = env.get("GITHUB_WORKSPACE", "")
        key_given = any(self._given(name) for name in KEY_SETTINGS)
        self.from_exported = {
            name
            for name in EXPORTED_SETTINGS
            if not self._given(name) and self._exported.get(name).strip() and not (key_given and name in KEY_SETTINGS)
        }

    def _given(self, name: str) -> bool:
        return name in ACTION_INPUTS and bool(self._inputs.get(name).strip())

    def get(self, name: str) -> str:
        if name in self.from_exported:
            return self._exported.get(name)
        if name not in ACTION_INPUTS:
            return ""
        value = self._inputs.get(name)
        if name == "file" and value.strip() and self._workspace:
            return os.path.join(self._workspace, value.strip())  # an absolute path stays as it is
        return value if value.strip() else ACTION_DEFAULTS.get(name, value)

    def label(self, name: str) -> str:
        return self._exported.label(name) if name in self.from_exported else f"`{name}`"

    def assignment(self, name: str, value: str) -> str:
        return f"{self.label(name)}={value}" if name in self.from_exported else f"`{name}: {value}`"

    def sources(self) -> List[str]:
        """The settings taken from an earlier step's exports, for the log (never a value)."""
        return [f"{name} from {self._exported.label(name)}" for name in sorted(self.from_exported)]


@dataclass
class ActionReport:
    """What the step's outputs and summary say, as far as the step got."""

    started: float
    state: UploadState = field(default_factory=UploadState)
    request: Optional[UploadRequest] = None
    elapsed: float = 0.0


def run_upload_action(io: Io) -> int:
    """upload/action.yml's step: the upload flow with the step's inputs; outputs, a job summary, and a failure
    annotated (``::error title=...::``) and summarised. Workflow commands go to stdout, which only the runner
    reads; the key and each token are masked there (``::add-mask::``) before anything could carry them."""
    from .github import GitHubCommands, check_runner_file
    from .platforms import Action

    action = Action(io.env, stdout=io.out(), stderr=io.err())
    commands = GitHubCommands(io.env, stream=io.out())
    report = ActionReport(started=io.monotonic())
    try:
        inputs = UploadActionInputs(io.env, action.log)
        if inputs.from_exported:
            action.log("Settings from an earlier step's export-env: " + ", ".join(inputs.sources()) + ".")
        for variable in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):  # before anything is created
            check_runner_file(io.env, variable)
        try:
            credentials = read_credentials(inputs)
        except KeyMissingError as error:
            raise KeyMissingError(error.message + EXPORT_ENV_HINT, details=error.details, title=error.title) from None
        require_base_url(inputs, "api-url", credentials.api_url, credentials.api.url)
        report.request = read_upload_request(inputs, credentials.api)
        for note in report.request.notes:
            action.log(input_names(note))
        from .caller import open_caller

        caller = open_caller(credentials, inputs, io, action, printing=False)
        run_upload(report.request, caller, io, report.state)
        if not report.request.wait:
            _read_upload_state(caller, report.state)
    except AscTokenError as error:
        commands.command("error", input_names(error.message), title=error.title)
        if error.details:
            commands.info(input_names(error.details))
        with contextlib.suppress(AscTokenError):  # a runner file may be what failed
            _publish_upload(commands, report, io, error=error)
        return error.exit_code
    except BaseException:  # an interrupt: what exists at Apple is still said
        with contextlib.suppress(AscTokenError):
            _publish_upload(commands, report, io, interrupted=True)
        raise
    try:
        _publish_upload(commands, report, io)
    except AscTokenError as error:
        commands.command("error", error.message, title=error.title)
        return error.exit_code
    state = report.state
    action.log(
        f"Uploaded: build upload {state.build_upload_id} {state.upload_state or 'created'}"
        + (f", build {state.build_id} {state.processing_state}" if state.build_id else "")
        + "."
    )
    return EXIT_OK


def _read_upload_state(caller: Caller, state: UploadState) -> None:
    """The build upload's state once more (without `wait` the last one read is its creation's): best effort,
    the upload is done whatever this request gets."""
    from .uploads import Apple, read_build_upload

    with contextlib.suppress(AscTokenError):
        read_build_upload(Apple(caller), state)


def _publish_upload(
    commands: GitHubCommands,
    report: ActionReport,
    io: Io,
    *,
    error: Optional[Exception] = None,
    interrupted: bool = False,
) -> None:
    """The step's outputs (whatever exists at Apple) and its job summary."""
    report.elapsed = io.monotonic() - report.started
    state = report.state
    outputs = {
        "build-upload-id": state.build_upload_id,
        "build-id": state.build_id,
        "upload-state": state.upload_state,
        "processing-state": state.processing_state,
    }
    for name, value in outputs.items():
        if value:
            commands.set_output(name, value)
    for warning in state.warnings:  # Apple's words (made safe for a log), shown on the run's page too
        commands.command("warning", warning, title="App Store Connect warning")
    commands.append_summary(upload_summary(report, error, interrupted=interrupted))


def upload_summary(report: ActionReport, error: Optional[Exception], *, interrupted: bool = False) -> str:
    """The job summary: the file, the build, the time, the states, Apple's warnings, and a failure's reason."""
    from .lifetimes import describe_duration
    from .report import details_markdown, markdown_own, markdown_text

    state, request = report.state, report.request
    lines = ["### App Store Connect build upload", ""]
    rows: List[Tuple[str, str]] = []
    if request is not None:
        build = request.build
        megabytes = build.file.size / (1024 * 1024)
        rows += [
            ("File", f"{markdown_text(build.file.file_name)} ({megabytes:.1f} MiB, {build.file.size} bytes)"),
            ("Version", markdown_text(build.version)),
            ("Build number", markdown_text(build.build_number)),
            ("Platform", markdown_text(build.platform)),
        ]
    rows.append(("Time", describe_duration(report.elapsed)))
    if state.build_upload_id:
        deleted = " (deleted)" if state.deleted else ""
        upload_state = markdown_text(state.upload_state or "unknown")
        rows.append(("Build upload", f"`{markdown_text(state.build_upload_id)}` {upload_state}{deleted}"))
        rows.append(("File delivery", markdown_text(state.delivery_state or "not committed")))
    if state.build_id:
        rows.append(
            ("Build", f"`{markdown_text(state.build_id)}` {markdown_text(state.processing_state or 'unknown')}")
        )
    lines += ["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    if state.warnings:
        lines += ["", "**Apple's warnings**", "", *(f"- {markdown_text(warning)}" for warning in state.warnings)]
    if isinstance(error, AscTokenError):
        lines += ["", f"**{markdown_text(error.title)}**", "", markdown_own(input_names(error.message))]
        if error.details:
            lines += ["", details_markdown(input_names(error.details))]
    elif interrupted:
        if state.committed:
            what = "the file was committed before, so Apple goes on processing it."
        elif state.deleted:
            what = "the build upload was deleted, so a re-run with the same build number is not refused."
        else:
            what = "no build upload was left behind." if not state.build_upload_id else "see the log for the cleanup."
        lines += ["", f"**Interrupted**: the step was cancelled; {what}"]
    return "\n".join(lines) + "\n"
