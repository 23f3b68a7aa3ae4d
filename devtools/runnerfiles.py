"""The runner's file commands, for the demo and the tests: GITHUB_OUTPUT, GITHUB_ENV and
GITHUB_STEP_SUMMARY made empty before a step, and read back after it the way the runner reads them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Union


@dataclass(frozen=True)
class RunnerFiles:
    """The three files the runner hands a step, by their paths on this machine."""

    output: Path
    env: Path
    summary: Path

    @classmethod
    def create(
        cls,
        folder: Union[str, Path],
        *,
        output: str = "output.txt",
        env: str = "env.txt",
        summary: str = "summary.md",
    ) -> RunnerFiles:
        """Empty files in ``folder`` (the container runner calls them set_output, set_env, step_summary)."""
        base = Path(folder)
        base.mkdir(parents=True, exist_ok=True)
        files = cls(base / output, base / env, base / summary)
        for path in (files.output, files.env, files.summary):
            path.write_text("", encoding="utf-8")
        return files

    def environment(self) -> Dict[str, str]:
        """The variables a step sees them by."""
        return {
            "GITHUB_OUTPUT": str(self.output),
            "GITHUB_ENV": str(self.env),
            "GITHUB_STEP_SUMMARY": str(self.summary),
        }

    def outputs(self) -> Dict[str, str]:
        return parse_file_command(self.output.read_text(encoding="utf-8"))

    def exported(self) -> Dict[str, str]:
        return parse_file_command(self.env.read_text(encoding="utf-8"))

    def summary_text(self) -> str:
        return self.summary.read_text(encoding="utf-8")


def parse_file_command(text: str) -> Dict[str, str]:
    """``name=value`` lines and ``name<<DELIMITER`` heredocs, as the runner's FileCommandManager."""
    values: Dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        heredoc = line.find("<<")
        equals = line.find("=")
        if heredoc > 0 and (equals < 0 or heredoc < equals):
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            body = []
            while index < len(lines) and lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            if index >= len(lines):
                raise ValueError(f"Matching delimiter not found '{delimiter}'")
            index += 1
            values[name] = "\n".join(body)
        elif equals > 0:
            values[line[:equals]] = line[equals + 1 :]
        else:
            raise ValueError(f"Invalid format '{line}'")
    return values
