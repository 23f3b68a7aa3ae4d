"""The GitHub Actions edge: inputs from ``INPUT_*``, workflow commands and file commands."""

from __future__ import annotations

import os
from typing import Mapping, MutableMapping

from actions_toolkit.command import issue_command
from actions_toolkit.file_command import prepare_key_value_message


class GitHubInputs:
    """Reads inputs the way the runner passes them: ``INPUT_KEY-ID``, hyphens kept.

    The underscore form (``INPUT_KEY_ID``) is accepted too, for tools that cannot set a hyphen.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str) -> str:
        upper = name.replace(" ", "_").upper()
        value = self._env.get(f"INPUT_{upper}")
        if value is None or value == "":
            value = self._env.get(f"INPUT_{upper.replace('-', '_')}", "")
        return value

    def label(self, name: str) -> str:
        return f"`{name}`"


class GitHubCommands:
    """Writes workflow commands on stdout and file commands to the runner's files."""

    def __init__(self, env: MutableMapping[str, str]) -> None:
        self._env = env

    def mask(self, secret: str) -> None:
        # ::add-mask:: works line by line: a multi-line secret needs one command per line.
        for line in secret.splitlines():
            if line.strip():
                issue_command("add-mask", {}, line.strip())

    def info(self, message: str) -> None:
        print(message, flush=True)

    def warning(self, message: str, title: str = "") -> None:
        issue_command("warning", {"title": title} if title else {}, message)

    def notice(self, message: str, title: str = "") -> None:
        issue_command("notice", {"title": title} if title else {}, message)

    def error(self, message: str, title: str = "") -> None:
        issue_command("error", {"title": title} if title else {}, message)

    def set_output(self, name: str, value: str) -> bool:
        return self._file_command("OUTPUT", name, value)

    def export_variable(self, name: str, value: str) -> bool:
        return self._file_command("ENV", name, value)

    def append_summary(self, markdown: str) -> None:
        path = self._env.get("GITHUB_STEP_SUMMARY")
        if path:
            with open(path, "a", encoding="utf-8") as stream:
                stream.write(markdown.rstrip("\n") + "\n")

    def _file_command(self, command: str, name: str, value: str) -> bool:
        path = self._env.get(f"GITHUB_{command}")
        if not path:
            return False
        # A random heredoc delimiter (the toolkit's), so a value can never inject another line.
        with open(path, "a", encoding="utf-8", newline="") as stream:
            stream.write(prepare_key_value_message(name, value) + os.linesep)
        return True
