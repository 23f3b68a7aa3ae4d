"""The GitHub Actions edge: inputs from ``INPUT_*``, workflow commands and file commands."""

from __future__ import annotations

import os
import sys
from typing import Mapping, Optional, TextIO

from actions_toolkit.command import Command
from actions_toolkit.file_command import prepare_key_value_message

# The composite action maps every input to INPUT_<NAME_WITH_UNDERSCORES>, always all of them.
_COMPOSITE_MARKER = "INPUT_KEY_ID"


class GitHubInputs:
    """Reads inputs the way this action receives them, and names them as a workflow does.

    The composite action passes ``INPUT_KEY_ID`` (underscores); a container action gets the
    runner's own ``INPUT_KEY-ID`` (hyphens). Only one form is read: under the composite, a
    job-level ``INPUT_API-URL`` must not override the step's ``with:``.
    """

    on_github = True

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._composite = _COMPOSITE_MARKER in env

    def get(self, name: str) -> str:
        upper = name.replace(" ", "_").upper()
        if self._composite:
            return self._env.get(f"INPUT_{upper.replace('-', '_')}", "")
        return self._env.get(f"INPUT_{upper}", "")

    def label(self, name: str) -> str:
        return f"`{name}`"

    def assignment(self, name: str, value: str) -> str:
        return f"`{name}: {value}`"


class GitHubCommands:
    """Workflow commands on a stream the runner reads (stdout for the action, stderr for the CLI,
    whose stdout may be captured by ``$(...)``), and file commands to the runner's files.
    The runner reads commands from both streams."""

    def __init__(self, env: Mapping[str, str], stream: Optional[TextIO] = None) -> None:
        self._env = env
        self._stream = stream

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def mask(self, secret: str) -> None:
        # ::add-mask:: works line by line: a multi-line secret needs one command per line.
        for line in secret.splitlines():
            if line.strip():
                self._command("add-mask", line.strip())

    def info(self, message: str) -> None:
        self.stream.write(message + "\n")
        self.stream.flush()

    def warning(self, message: str, title: str = "") -> None:
        self._command("warning", message, title)

    def notice(self, message: str, title: str = "") -> None:
        self._command("notice", message, title)

    def error(self, message: str, title: str = "") -> None:
        self._command("error", message, title)

    def set_output(self, name: str, value: str) -> bool:
        return self._file_command("OUTPUT", name, value)

    def export_variable(self, name: str, value: str) -> bool:
        return self._file_command("ENV", name, value)

    def append_summary(self, markdown: str) -> None:
        path = self._env.get("GITHUB_STEP_SUMMARY")
        if path:
            with open(path, "a", encoding="utf-8") as stream:
                stream.write(markdown.rstrip("\n") + "\n")

    def _command(self, name: str, message: str, title: str = "") -> None:
        # The toolkit escapes %, CR and LF in the message and the title: one line, one command.
        self.stream.write(str(Command(name, {"title": title} if title else {}, message)) + os.linesep)
        self.stream.flush()

    def _file_command(self, command: str, name: str, value: str) -> bool:
        path = self._env.get(f"GITHUB_{command}")
        if not path:
            return False
        # A random heredoc delimiter (the toolkit's), so a value can never inject another line.
        with open(path, "a", encoding="utf-8", newline="") as stream:
            stream.write(prepare_key_value_message(name, value) + os.linesep)
        return True
