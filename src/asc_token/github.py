"""The GitHub Actions edge: workflow commands, file commands, and the outputs and variables the token
is handed on in (the inputs are read by inputs.GitHubInputs)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Dict, Mapping, Optional, TextIO

from actions_toolkit.command import Command
from actions_toolkit.file_command import prepare_key_value_message

from .errors import DeliveryError, InputError
from .redact import shown

if TYPE_CHECKING:
    from .records import Credentials, Delivery, Outcome


def check_runner_file(env: Mapping[str, str], variable: str, who: str = "the runner", each: str = "step") -> None:
    """A file named by ``variable`` that this step appends to (GITHUB_OUTPUT, CircleCI's BASH_ENV): a
    folder, or a file in a folder that does not exist, is refused before anything is sent, as a setting."""
    path = env.get(variable, "")
    if not path:
        return
    if os.path.isdir(path):
        problem = "a folder, not a file"
    elif not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        problem = "a file in a folder that does not exist"
    else:
        return
    raise InputError(
        f"{variable} names {shown(path, path=True)}, {problem}: {who} sets it to a file for each {each}: unset it, "
        "or point it at a file in a folder that exists."
    )


def append_to_runner_file(env: Mapping[str, str], variable: str, text: str, newline: Optional[str] = "") -> None:
    """``text`` appended to the file ``variable`` names; a write that fails (a full disk) names the variable."""
    path = env[variable]
    try:
        with open(path, "a", encoding="utf-8", newline=newline) as stream:
            stream.write(text)
    except OSError as exc:
        raise DeliveryError(
            f"{variable} ({shown(path, path=True)}) could not be written ({exc.strerror or type(exc).__name__}): "
            "free space on the runner's disk, then re-run."
        ) from None


class GitHubCommands:
    """Workflow commands on a stream the runner reads (stdout for the action, stderr for the CLI,
    whose stdout may be captured by ``$(...)``), and file commands to the runner's files.
    The runner reads commands from both streams."""

    def __init__(self, env: Mapping[str, str], stream: Optional[TextIO] = None) -> None:
        self._env = env
        self.stream = stream or sys.stdout

    def mask(self, secret: str) -> None:
        # ::add-mask:: works line by line: a multi-line secret needs one command per line.
        for line in secret.splitlines():
            if line.strip():
                self.command("add-mask", line.strip())

    def info(self, message: str) -> None:
        self.stream.write(message + "\n")
        self.stream.flush()

    def set_output(self, name: str, value: str) -> bool:
        return self._file_command("OUTPUT", name, value)

    def export_variable(self, name: str, value: str) -> bool:
        return self._file_command("ENV", name, value)

    def append_summary(self, markdown: str) -> None:
        if self._env.get("GITHUB_STEP_SUMMARY"):
            append_to_runner_file(self._env, "GITHUB_STEP_SUMMARY", markdown.rstrip("\n") + "\n", newline=None)

    def command(self, name: str, message: str, title: str = "") -> None:
        """A workflow command (``error``, ``warning``, ``notice``, ``add-mask``) on :attr:`stream`."""
        # The toolkit escapes %, CR and LF in the message and the title: one line, one command.
        self.stream.write(str(Command(name, {"title": title} if title else {}, message)) + os.linesep)
        self.stream.flush()

    def _file_command(self, command: str, name: str, value: str) -> bool:
        if not self._env.get(f"GITHUB_{command}"):
            return False
        # A random heredoc delimiter (the toolkit's), so a value can never inject another line.
        append_to_runner_file(self._env, f"GITHUB_{command}", prepare_key_value_message(name, value) + os.linesep)
        return True


def publish(gh: GitHubCommands, credentials: Credentials, delivery: Delivery, outcome: Outcome) -> bool:
    """Step outputs and exported variables; False when there is no GITHUB_OUTPUT."""
    minted = outcome.minted
    if not gh.set_output("token", minted.token):
        return False
    gh.set_output("expires-at", minted.expires_at_iso)
    result = outcome.verification
    if result is not None and result.app_count is not None:
        gh.set_output("app-count", str(result.app_count))
    if result is not None and result.rate_limit_remaining is not None:
        gh.set_output("rate-limit-remaining", str(result.rate_limit_remaining))
    for check in outcome.checks:
        if check.app_id:  # only an `app:<bundle-id>` check that found exactly one app
            gh.set_output("app-id", check.app_id)
            gh.set_output("app-name", check.app_name)
    files = outcome.key_files
    if files is not None:
        gh.set_output("key-path", files.key_path)
        gh.set_output("api-key-json-path", files.api_key_json_path)
    if files is not None and delivery.export_env:
        exported: Dict[str, str] = {
            "API_PRIVATE_KEYS_DIR": files.directory,
            "APP_STORE_CONNECT_API_KEY_PATH": files.api_key_json_path,
            "ASC_KEY_ID": credentials.key_id,
            "ASC_PRIVATE_KEY_PATH": files.key_path,
            # With these, `asc-token --print` and `asc-token api` in later steps need no setup.
            "ASC_KEY_TYPE": credentials.key_type,
            "ASC_API_URL": credentials.api_url,
            "ASC_API": credentials.api.name,
        }
        if credentials.issuer_id is not None:
            exported["ASC_ISSUER_ID"] = credentials.issuer_id
        for name, value in exported.items():
            gh.export_variable(name, value)
    if delivery.export_token:
        gh.export_variable("ASC_TOKEN", minted.token)
    return True
