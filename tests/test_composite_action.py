"""action.yml run by a home-made emulation of the runner, for what act cannot be given.

The action on a real runner (outputs, masking, key files, failures, parallel jobs, asc-token in
later steps) is tested under act in tests/test_act.py. Here: an interpreter chosen for python3
(3.9 like Xcode's, 3.8, none at all) and a tool cache that cannot be written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import yaml

from .composite import find_python, run_composite
from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial

PYTHON_39 = find_python("3.9")
PYTHON_38 = find_python("3.8")


@pytest.fixture(scope="module")
def tool_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("toolcache")


def runtimes(tool_cache: Path) -> List[Path]:
    """The runtimes in a tool cache (launcher folders are bin-*)."""
    return [p for p in (tool_cache / "asc-token-action").iterdir() if not p.name.startswith("bin-")]


def bare_path(tmp_path: Path, **pythons: Path) -> str:
    """A PATH with bash and a few tools, and only the given interpreters (name -> executable)."""
    folder = tmp_path / "bare-bin"
    folder.mkdir()
    for tool in ("bash", "env", "cat"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, folder / tool)
    for name, executable in pythons.items():
        os.symlink(executable, folder / name)
    return str(folder)


def test_composite_step_has_a_name() -> None:
    """Without a name, the runner shows the whole bash script as the step's title."""
    steps = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"]
    assert all(step.get("name") for step in steps)


@pytest.mark.skipif(PYTHON_39 is None, reason="no Python 3.9 on PATH or in pyenv")
def test_composite_on_python_39_like_xcode(tmp_path: Path, key: KeyMaterial, tool_cache: Path) -> None:
    """A self-hosted Mac may only have Xcode's python3 3.9: the lock must install and run there."""
    assert PYTHON_39 is not None
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python3").symlink_to(PYTHON_39)
    result = run_composite(
        tmp_path / "run",
        {"private-key": key.base64_of_file, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false"},
        tool_cache=tool_cache,
        path_prefix=shim,
    )
    assert result["returncode"] == 0, result["log"]
    assert any("-py39-" in p.name for p in runtimes(tool_cache))
    outputs = result["outputs"]
    assert isinstance(outputs, dict)
    assert key.decode(outputs["token"])["aud"] == "appstoreconnect-v1"


def test_composite_explains_a_missing_python(tmp_path: Path, key: KeyMaterial, tool_cache: Path) -> None:
    result = run_composite(
        tmp_path / "run", {"private-key": key.pem, "key-id": KEY_ID}, tool_cache=tool_cache, path=bare_path(tmp_path)
    )
    assert result["returncode"] == 2  # a setting of the runner, nothing sent
    assert "::error title=Python not found::" in str(result["log"])


@pytest.mark.skipif(PYTHON_38 is None, reason="no Python 3.8 on PATH or in pyenv")
def test_composite_names_a_python_that_is_too_old(tmp_path: Path, key: KeyMaterial, tool_cache: Path) -> None:
    """Python 3.8 found: the error says which version was found where, and what is needed."""
    assert PYTHON_38 is not None
    result = run_composite(
        tmp_path / "run",
        {"private-key": key.pem, "key-id": KEY_ID},
        tool_cache=tool_cache,
        path=bare_path(tmp_path, python3=PYTHON_38),
    )
    log = str(result["log"])
    assert result["returncode"] == 2
    errors = [line for line in log.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, log
    assert errors[0].startswith("::error title=Python too old::")
    assert "needs Python 3.9 or newer" in errors[0]
    version = subprocess.run(
        [str(PYTHON_38), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f"python3 ({tmp_path / 'bare-bin' / 'python3'}) is {version}" in errors[0]
    assert "not found" not in errors[0]


def test_unwritable_tool_cache_falls_back_to_runner_temp(
    tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str]
) -> None:
    not_a_folder = tmp_path / "toolcache-is-a-file"
    not_a_folder.write_text("")
    result = run_composite(
        tmp_path / "run",
        {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false"},
        tool_cache=not_a_folder,
        extra_env=wheels,
    )
    assert result["returncode"] == 0, result["log"]
    runner_temp = tmp_path / "run" / "temp" / "asc-token-action"
    assert runner_temp.is_dir()
    # The group title says where the runtime went, that it is not kept, and why.
    group = next(line for line in str(result["log"]).splitlines() if line.startswith("::group::"))
    assert str(runner_temp) in group
    assert "for this job only" in group and "once per runner" not in group
    assert str(not_a_folder / "asc-token-action") in group


def test_group_title_says_the_tool_cache_keeps_it(golden_tool_cache: Path, golden_build_log: str) -> None:
    """The session's golden runtime was built by the composite step on an empty tool cache: its title."""
    group = next(line for line in golden_build_log.splitlines() if line.startswith("::group::"))
    assert str(golden_tool_cache / "asc-token-action") in group and "kept in the tool cache for later jobs" in group
