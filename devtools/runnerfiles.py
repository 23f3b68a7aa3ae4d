"""Read GITHUB_OUTPUT / GITHUB_ENV the way the runner does (for the demo and the tests)."""

from __future__ import annotations

from typing import Dict


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
