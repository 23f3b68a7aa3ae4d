"""action.yml run the runner's way: env-mapped inputs, bash, the cached pinned venv."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from .composite import run_composite
from .runner import ISSUER_ID, KEY_ID, KeyMaterial

PYENV_39 = Path("/root/.pyenv/versions/3.9.18/bin/python3.9")


@pytest.fixture(scope="module")
def tool_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("toolcache")


def test_composite_mints_and_maps_outputs(tmp_path: Path, key: KeyMaterial, tool_cache: Path) -> None:
    result = run_composite(
        tmp_path,
        {"private-key": key.pem.replace("\n", "\\n"), "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false"},
        tool_cache=tool_cache,
    )
    assert result["returncode"] == 0, result["log"]
    outputs = result["outputs"]
    assert isinstance(outputs, dict)
    assert key.decode(outputs["token"])["iss"] == ISSUER_ID
    assert outputs["expires-at"].endswith("Z")
    venvs = list((tool_cache / "asc-token-action").iterdir())
    assert len(venvs) == 1 and "-py3" in venvs[0].name  # keyed by lock hash, OS, machine, Python
    assert not (venvs[0] / "bin" / "pip").exists()  # only the pinned wheels, no pip


def test_composite_reports_bad_input_without_traceback(tmp_path: Path, key: KeyMaterial, tool_cache: Path) -> None:
    marker = tmp_path / "pwned"
    result = run_composite(
        tmp_path,
        {"private-key": key.pem, "key-id": f"$(touch {marker})'\"", "issuer-id": ISSUER_ID, "verify": "false"},
        tool_cache=tool_cache,
    )
    assert result["returncode"] == 1
    assert "::error title=Invalid input::`key-id` must be 10 characters" in str(result["log"])
    assert "Traceback" not in str(result["log"])
    assert not marker.exists()


@pytest.mark.skipif(not PYENV_39.exists(), reason="no Python 3.9 on this machine")
def test_composite_on_python_39_like_xcode(tmp_path: Path, key: KeyMaterial, tool_cache: Path) -> None:
    """A self-hosted Mac may only have Xcode's python3 3.9: the lock must install and run there."""
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python3").symlink_to(PYENV_39)
    result = run_composite(
        tmp_path / "run",
        {"private-key": key.base64_of_file, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false"},
        tool_cache=tool_cache,
        path_prefix=shim,
    )
    assert result["returncode"] == 0, result["log"]
    assert any(p.name.endswith("-py39") for p in (tool_cache / "asc-token-action").iterdir())
    outputs = result["outputs"]
    assert isinstance(outputs, dict)
    assert key.decode(outputs["token"])["aud"] == "appstoreconnect-v1"


def test_composite_explains_a_missing_python(
    tmp_path: Path, key: KeyMaterial, tool_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "nopython"
    empty.mkdir()
    for tool in ("bash", "env", "cat"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, empty / tool)
    monkeypatch.setenv("PATH", str(empty))
    result = run_composite(tmp_path / "run", {"private-key": key.pem, "key-id": KEY_ID}, tool_cache=tool_cache)
    assert result["returncode"] == 1
    assert "Python not found" in str(result["log"])


def test_unwritable_tool_cache_falls_back_to_runner_temp(tmp_path: Path, key: KeyMaterial) -> None:
    not_a_folder = tmp_path / "toolcache-is-a-file"
    not_a_folder.write_text("")
    result = run_composite(
        tmp_path / "run",
        {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false"},
        tool_cache=not_a_folder,
    )
    assert result["returncode"] == 0, result["log"]
    assert (tmp_path / "run" / "temp" / "asc-token-action").is_dir()
