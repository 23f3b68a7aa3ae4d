"""``python3 dev.py demo``, the README's first command: the action twice and the upload step, as it promises."""

from __future__ import annotations

import re
import subprocess
import sys

from .runner import ROOT


def test_the_demo_shows_the_action_the_401_and_an_upload() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devtools.demo"], cwd=str(ROOT), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shown = done.stdout
    assert re.findall(r"^=== (\d)\. .*: exit code (\d)$", shown, flags=re.M) == [("1", "0"), ("2", "1"), ("3", "0")]
    assert "401" in shown and "issuer" in shown, "the wrong issuer is explained"
    assert re.search(r"^processing-state = VALID$", shown, flags=re.M), "the upload step's outputs"
    assert "### App Store Connect build upload" in shown, "the upload step's job summary"
    assert "PRIVATE KEY" not in shown and "::add-mask::" not in shown
    assert not re.search(r"^token = eyJ[\w-]+\.[\w-]+\.[\w-]+$", shown, flags=re.M), "the token is shown cut short"
    assert shown.rstrip().endswith("and the upload was processed.")
