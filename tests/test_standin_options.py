"""issue 29, item 8: `python3 dev.py standin` produces the faults docs/troubleshooting.md describes, on
127.0.0.1, and removes the throwaway key it wrote when it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import pytest

from .runner import PROCESS, ROOT, Run, invoke, posix_only


def _facts(text: str) -> Dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _serve(tmp_path: Path, options: Sequence[str]) -> Tuple[subprocess.Popen[bytes], Dict[str, str]]:
    output = tmp_path / "output"
    output.write_text("")
    env = {**os.environ, "GITHUB_OUTPUT": str(output), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "standin", "--seconds", "60", *options], env=env, cwd=str(ROOT)
    )
    deadline = time.monotonic() + 20
    while "key-file" not in _facts(output.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return server, _facts(output.read_text())


def _asc_token(workdir: Path, facts: Dict[str, str]) -> Run:
    """``asc-token`` (verifying) in a process, with the settings the stand-in wrote."""
    named = {
        "api-url": facts["url"],
        "key-id": facts["key-id"],
        "private-key-path": facts["key-file"],
        **({"issuer-id": facts["issuer-id"]} if facts["issuer-id"] else {"key-type": "individual"}),
    }
    return invoke("asc-token", workdir, named, [], mode=PROCESS)


ROWS: Dict[str, Tuple[List[str], int, str]] = {
    "apps": (["--apps", "7"], 0, "7 apps visible"),
    "individual": (["--individual"], 0, "checks passed"),
    "revoked": (["--revoked"], 1, "answered 401"),
    "clock skew": (["--clock-skew=-900"], 1, "the runner's clock is"),
    "5xx then fine": (["--server-errors", "1", "--server-status", "502"], 0, "checks passed"),
    "5xx throughout": (["--server-errors", "9"], 1, "answered 503"),
    "429": (["--rate-limited", "9", "--retry-after", "0"], 1, "answered 429"),
}


@pytest.mark.parametrize("row", sorted(ROWS))
def test_standin_option_reproduces_its_row(tmp_path: Path, row: str) -> None:
    options, status, said = ROWS[row]
    server, facts = _serve(tmp_path, options)
    try:
        assert facts.get("url", "").startswith("http://127.0.0.1:"), facts
        run = _asc_token(tmp_path / "cli", facts)
        assert run.returncode == status, run.stderr
        assert said in run.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)


@posix_only
def test_standin_removes_its_key_when_stopped(tmp_path: Path) -> None:
    for stop in (signal.SIGTERM, signal.SIGINT):
        server, facts = _serve(tmp_path, [])
        key_file = Path(facts["key-file"])
        assert key_file.name == f"AuthKey_{facts['key-id']}.p8" and key_file.exists()
        server.send_signal(stop)
        assert server.wait(timeout=10) == 0
        assert not key_file.exists() and not key_file.parent.exists()
