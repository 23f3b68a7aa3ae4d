"""action.yml and upload/action.yml run by a home-made emulation of the runner, for what act cannot be given.

The action on a real runner (outputs, masking, key files, failures, parallel jobs, asc-token in
later steps) is tested under act in tests/test_act.py. Here: an interpreter chosen for python3
(3.9 like Xcode's, 3.8, none at all) and a tool cache that cannot be written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import yaml

from .composite import find_python, run_composite
from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial, one_error

PYTHON_39 = find_python("3.9")
PYTHON_38 = find_python("3.8")
ACTIONS = ("action.yml", "upload/action.yml")
START = ROOT / "scripts" / "start.sh"  # the probe and bootstrap call both actions run


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


@pytest.mark.parametrize("action_file", ACTIONS)
def test_composite_step_has_a_name(action_file: str) -> None:
    """Without a name, the runner shows the whole bash script as the step's title."""
    steps = yaml.safe_load((ROOT / action_file).read_text())["runs"]["steps"]
    assert all(step.get("name") for step in steps)


def test_both_actions_start_the_one_probe() -> None:
    """One copy of the probe and the bootstrap call: each action's step sources scripts/start.sh from its own
    folder (GITHUB_ACTION_PATH is upload/ for the upload step), the token step with no argument."""
    runs = {name: yaml.safe_load((ROOT / name).read_text())["runs"]["steps"][0]["run"].strip() for name in ACTIONS}
    assert runs == {
        "action.yml": '. "$GITHUB_ACTION_PATH/scripts/start.sh"',
        "upload/action.yml": '. "$GITHUB_ACTION_PATH/../scripts/start.sh" upload',
    }
    assert "sys.version_info" in START.read_text() and "bootstrap.py" in START.read_text()


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
    assert result.returncode == 0, result.log
    assert any("-py39-" in p.name for p in runtimes(tool_cache))
    outputs = result.outputs
    assert isinstance(outputs, dict)
    assert key.decode(outputs["token"])["aud"] == "appstoreconnect-v1"


def test_composite_explains_a_missing_python(tmp_path: Path, key: KeyMaterial, tool_cache: Path) -> None:
    result = run_composite(
        tmp_path / "run", {"private-key": key.pem, "key-id": KEY_ID}, tool_cache=tool_cache, path=bare_path(tmp_path)
    )
    assert result.returncode == 2  # a setting of the runner, nothing sent
    assert "::error title=Python not found::" in result.log


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
    assert result.returncode == 2
    error = one_error(result, with_title=True)
    assert error.startswith("::error title=Python too old::")
    assert "needs Python 3.9.2 or newer" in error
    version = subprocess.run(
        [str(PYTHON_38), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f"python3 ({tmp_path / 'bare-bin' / 'python3'}) is {version}" in error
    assert "not found" not in error


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
    assert result.returncode == 0, result.log
    runner_temp = tmp_path / "run" / "temp" / "asc-token-action"
    assert runner_temp.is_dir()
    # The group title says where the runtime went, that it is not kept, and why.
    group = next(line for line in result.log.splitlines() if line.startswith("::group::"))
    assert str(runner_temp) in group
    assert "for this job only" in group and "once per runner" not in group
    assert str(not_a_folder / "asc-token-action") in group


def test_group_title_says_the_tool_cache_keeps_it(golden_tool_cache: Path, golden_build_log: str) -> None:
    """The session's golden runtime was built by the composite step on an empty tool cache: its title."""
    group = next(line for line in golden_build_log.splitlines() if line.startswith("::group::"))
    assert str(golden_tool_cache / "asc-token-action") in group and "kept in the tool cache for later jobs" in group


# A python3 that runs the probe's own code under the identity it is given (version, platform, and
# sys.version, where a Windows build names its machine), and, started as the bootstrap, says so.
FAKE_PYTHON = """#!{python} -I
import sys, types
identity = types.SimpleNamespace(
    version_info={version_info!r}, version={version!r}, platform={platform!r},
    executable=sys.argv[0], stdout=sys.stdout, exit=sys.exit,
)
if "-c" in sys.argv:
    code = sys.argv[sys.argv.index("-c") + 1]
    sys.modules["sys"] = identity  # what the probe's `import sys` gets
    exec(code, {{}})
else:
    print("bootstrap started by " + identity.version.split()[0])
    print("bootstrap.py: " + sys.argv[sys.argv.index("-S") + 1])
    print("arguments: " + repr(sys.argv[sys.argv.index("-S") + 2:]))
"""
WINDOWS_ARM64 = "[MSC v.1929 64 bit (ARM64)]"
WINDOWS_X64 = "[MSC v.1929 64 bit (AMD64)]"
LINUX = "[GCC 12.2.0]"


def fake_python(tmp_path: Path, version: str, platform: str, build: str) -> Path:
    numbers = tuple(int(part) for part in version.split("."))
    program = tmp_path / f"fake-python-{version}"
    program.write_text(
        FAKE_PYTHON.format(
            python=sys.executable,
            version_info=(*numbers, "final", 0),
            version=f"{version} (main, Jan  1 2025, 00:00:00) {build}",
            platform=platform,
        )
    )
    program.chmod(0o755)
    return program


@pytest.mark.parametrize(
    ("version", "platform", "build", "title", "said"),
    [
        (
            "3.9.0",
            "linux",
            LINUX,
            "Python 3.9.0 and 3.9.1 not supported",
            "is 3.9.0, which cryptography no longer supports",
        ),
        (
            "3.9.1",
            "darwin",
            LINUX,
            "Python 3.9.0 and 3.9.1 not supported",
            "is 3.9.1, which cryptography no longer supports",
        ),
        ("3.9.13", "win32", WINDOWS_ARM64, "Python too old for Windows arm64", "is 3.9.13 on Windows arm64"),
        ("3.10.11", "win32", WINDOWS_ARM64, "Python too old for Windows arm64", "is 3.10.11 on Windows arm64"),
    ],
)
def test_probe_refuses_a_python_no_lock_can_serve(
    tmp_path: Path, key: KeyMaterial, tool_cache: Path, version: str, platform: str, build: str, title: str, said: str
) -> None:
    """No cryptography installs on 3.9.0/3.9.1, no cffi on Windows arm64 before 3.11: said before pip is tried."""
    python3 = fake_python(tmp_path, version, platform, build)
    result = run_composite(
        tmp_path / "run",
        {"private-key": key.pem, "key-id": KEY_ID},
        tool_cache=tool_cache,
        path=bare_path(tmp_path, python3=python3),
    )
    assert result.returncode == 2, result.log
    error = one_error(result, with_title=True)
    assert error.startswith(f"::error title={title}::"), error
    assert f"python3 ({tmp_path / 'bare-bin' / 'python3'}) {said}" in error
    assert "actions/setup-python" in error and "self-hosted runner" in error
    assert "bootstrap started" not in result.log


@pytest.mark.parametrize(
    ("version", "platform", "build"),
    [("3.9.2", "linux", LINUX), ("3.10.11", "win32", WINDOWS_X64), ("3.11.9", "win32", WINDOWS_ARM64)],
)
def test_probe_lets_in_a_python_the_lock_serves(
    tmp_path: Path, key: KeyMaterial, tool_cache: Path, version: str, platform: str, build: str
) -> None:
    python3 = fake_python(tmp_path, version, platform, build)
    result = run_composite(
        tmp_path / "run",
        {"private-key": key.pem, "key-id": KEY_ID},
        tool_cache=tool_cache,
        path=bare_path(tmp_path, python3=python3),
    )
    assert result.returncode == 0, result.log
    assert f"bootstrap started by {version}" in result.log


# What /usr/bin/python3 prints on a Mac without the Command Line Tools (it asks for them, exit 1).
APPLE_STUBS = {
    "never installed": (
        "xcode-select: note: No developer tools were found, requesting install.\n"
        "If developer tools are located at a non-default location on disk, use `sudo xcode-select --switch "
        "path/to/Xcode.app` to specify the Xcode that you wish to use for command line developer tools, and "
        "cancel the installation dialog.\nSee `man xcode-select' for more details.\n"
    ),
    "removed": (
        "xcrun: error: invalid active developer path (/Library/Developer/CommandLineTools), missing xcrun at: "
        "/Library/Developer/CommandLineTools/usr/bin/xcrun\n"
    ),
}


@pytest.mark.parametrize("tools", sorted(APPLE_STUBS))
def test_probe_names_apples_stub_without_command_line_tools(
    tmp_path: Path, key: KeyMaterial, tool_cache: Path, tools: str
) -> None:
    stub = tmp_path / "apple-python3-stub"
    stub.write_text(f"#!/bin/sh\ncat >&2 <<'END'\n{APPLE_STUBS[tools]}END\nexit 1\n")
    stub.chmod(0o755)
    result = run_composite(
        tmp_path / "run",
        {"private-key": key.pem, "key-id": KEY_ID},
        tool_cache=tool_cache,
        path=bare_path(tmp_path, python3=stub),
    )
    assert result.returncode == 2
    error = one_error(result, with_title=True)
    assert error.startswith("::error title=Xcode Command Line Tools missing::"), error
    assert f"python3 ({tmp_path / 'bare-bin' / 'python3'}) is Apple's stub" in error
    assert "`xcode-select --install`" in error and "actions/setup-python" in error


def test_every_title_of_the_probe_is_explained() -> None:
    """Each error title the probe can print has its row, with its fix, in docs/troubleshooting.md."""
    script = START.read_text()
    titles = set(re.findall(r'this_title="([^"]+)"', script)) | set(re.findall(r"title=([^:$]+)::", script))
    titles |= set(re.findall(r"title=\$\{title:-([^}]+)\}", script))
    assert len(titles) == 6, titles
    section = (ROOT / "docs" / "troubleshooting.md").read_text().split("## When the runtime cannot be set up")[1]
    for title in titles:
        assert f"| `{title}` |" in section, title


def test_the_upload_step_starts_the_same_bootstrap_with_its_argument(tmp_path: Path, tool_cache: Path) -> None:
    """upload/action.yml: the probe lets the Python in, and bootstrap.py (the repository's, one folder up
    from GITHUB_ACTION_PATH) starts entrypoint.py with `upload`."""
    python3 = fake_python(tmp_path, "3.12.1", "linux", LINUX)
    result = run_composite(
        tmp_path / "run",
        {"file": "App.ipa"},
        tool_cache=tool_cache,
        path=bare_path(tmp_path, python3=python3),
        action_file="upload/action.yml",
    )
    assert result.returncode == 0, result.log
    assert "bootstrap started by 3.12.1" in result.log
    started = next(line for line in result.log.splitlines() if line.startswith("bootstrap.py: "))
    assert Path(started[len("bootstrap.py: ") :]).resolve() == ROOT / "scripts" / "bootstrap.py"
    assert "arguments: ['upload']" in result.log


def test_the_upload_step_explains_a_missing_python_the_same_way(tmp_path: Path, tool_cache: Path) -> None:
    result = run_composite(
        tmp_path / "run",
        {"file": "App.ipa"},
        tool_cache=tool_cache,
        path=bare_path(tmp_path),
        action_file="upload/action.yml",
    )
    assert result.returncode == 2
    assert one_error(result, with_title=True).startswith("::error title=Python not found::")
