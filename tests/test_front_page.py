"""issue 29, item 9: workflow commands only on a runner (GITHUB_ACTIONS alone decides, never a terminal),
and the README says how to run asc-token from a clone before the first release."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .runner import ROOT, scrubbed_env
from .test_bootstrap import load_bootstrap


def test_groups_only_where_github_actions_says_a_runner_reads_them() -> None:
    bootstrap = load_bootstrap()
    assert bootstrap.on_actions_runner({"GITHUB_ACTIONS": "true"})
    assert not bootstrap.on_actions_runner({})  # a terminal, dev.py's own runtime build
    assert not bootstrap.on_actions_runner({"GITHUB_ACTIONS": "false", "CI": "true", "TERM": "xterm"})


def test_readme_says_how_to_run_from_a_clone() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    clone = readme.split("### From a clone", 1)[1].split("\n## ", 1)[0]
    assert "pip install ." in clone and ".venv/bin/asc-token" in clone
    assert "before it, the package is not on\nPyPI" in readme


@pytest.mark.parametrize(("actions", "line"), [("true", "::error title=Title::what"), ("", "error: Title: what")])
def test_a_bootstrap_failure_is_a_workflow_command_only_on_a_runner(actions: str, line: str) -> None:
    script = "import sys; sys.path.insert(0, sys.argv[1]); import bootstrap; bootstrap.fail('Title', 'what')"
    env = {**scrubbed_env(), "GITHUB_ACTIONS": actions}
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "scripts")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stdout.splitlines() == [line]
