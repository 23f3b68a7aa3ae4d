"""scripts/bootstrap.py: what it finds in a tool cache runs only if it is exactly what it built.

Builds take seconds, so the lock's wheels are downloaded once into a local wheelhouse that pip is
pointed at (PIP_NO_INDEX and PIP_FIND_LINKS, settings bootstrap keeps), one runtime is built per
session and copied (mtimes kept) into each test's tool cache, and only tests about building build.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from .composite import run_composite
from .conftest import copy_of
from .runner import ISSUER_ID, ROOT, KeyMaterial, Run, one_error, scrubbed_env, settings, spelled_for

BOOTSTRAP = ROOT / "scripts" / "bootstrap.py"
NAME = "asc-token-action"
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
# The interpreter the composite step finds as python3, which every build here runs on.
PYTHON3 = subprocess.run(
    ["python3", "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, check=True
).stdout.strip()
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX ownership and mode bits")


def load_bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootstrap_under_test", BOOTSTRAP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runtimes(tool_cache: Path) -> List[Path]:
    folder = tool_cache / NAME
    return [p for p in folder.iterdir() if not p.name.startswith(("bin-", "."))] if folder.is_dir() else []


def builds(log: str) -> List[str]:
    return [line for line in log.splitlines() if line.startswith("::group::") and "installing" in line]


def site_packages(runtime: Path) -> Path:
    return next((runtime / "lib").glob("python3.*/site-packages"))


def lock_names() -> Set[str]:
    names = set()
    for line in (ROOT / "requirements" / "runtime.lock").read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#") and "==" in line:
            names.add(line.split("==")[0].strip().lower().replace("_", "-"))
    return names


def installed_names(runtime: Path) -> Set[str]:
    return {p.name.split("-")[0].lower().replace("_", "-") for p in site_packages(runtime).glob("*.dist-info")}


@pytest.fixture
def built(golden_tool_cache: Path) -> Path:
    """A tool cache holding one runtime, built the action's way (once per session; copy it to change it)."""
    assert len(runtimes(golden_tool_cache)) == 1
    return golden_tool_cache


def test_a_copied_runtime_is_reused_as_it_is(
    built: Path, tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str]
) -> None:
    """No false alarm: an intact runtime runs without a rebuild."""
    tool_cache = copy_of(built, tmp_path)
    result = run_composite(tmp_path / "run", settings(key), tool_cache=tool_cache, extra_env=wheels)
    assert result.returncode == 0, result.log
    assert builds(result.log) == []
    assert "not using the runtime" not in result.log


# -- a stale runtime is rebuilt, once; racing jobs keep each other's work ------------------


def test_runtime_whose_python_is_gone_is_rebuilt_once(tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str]) -> None:
    """The interpreter that built the venv moved away (pyenv or Xcode update): rebuilt, not broken for good."""
    moved = tmp_path / "old-python"
    moved.mkdir()
    (moved / "python3").symlink_to(PYTHON3)
    tool_cache = tmp_path / "toolcache"
    first = run_composite(tmp_path / "first", settings(key), tool_cache=tool_cache, path_prefix=moved, extra_env=wheels)
    assert first.returncode == 0, first.log
    (runtime,) = runtimes(tool_cache)
    assert str(moved) in os.readlink(runtime / "bin" / "python3")  # built on the interpreter that goes away
    shutil.rmtree(moved)
    leftover = tool_cache / NAME / f".{runtime.name}.killed-job.tmp"  # a build that died half-way
    (leftover / "lib").mkdir(parents=True)

    second = run_composite(tmp_path / "second", settings(key), tool_cache=tool_cache, extra_env=wheels)
    log = second.log
    assert second.returncode == 0, log
    why = [line for line in log.splitlines() if line.startswith("asc-token-action: not using the runtime")]
    assert len(why) == 1 and "the Python it was built with is gone" in why[0] and str(moved) in why[0], log
    assert len(builds(log)) == 1
    assert "FileNotFoundError" not in log
    assert not leftover.exists()

    third = run_composite(tmp_path / "third", settings(key), tool_cache=tool_cache, extra_env=wheels)
    assert third.returncode == 0, third.log
    assert builds(third.log) == [] and "not using" not in third.log


# Job B decided the runtime was missing; anything it removes is removed only after job A has put its
# runtime in place: the interleaving that made `rmtree` after a failed marker check delete A's work.
RACING_JOB = r"""
import importlib.util, os, shutil, sys, time
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("bootstrap", path)
bootstrap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bootstrap)
target = os.path.join(os.environ["RUNNER_TOOL_CACHE"], "asc-token-action", bootstrap.runtime_key())

def in_place():
    return any(os.path.exists(os.path.join(target, name)) for name in (".asc-token-complete", ".asc-token-manifest"))

def late(function):
    def wrapper(victim, *args, **kwargs):
        if os.path.abspath(victim) == target:
            deadline = time.monotonic() + 120
            while not in_place() and time.monotonic() < deadline:
                time.sleep(0.01)
        return function(victim, *args, **kwargs)
    return wrapper

shutil.rmtree = late(shutil.rmtree)
os.rename = late(os.rename)
sys.argv = [path]
sys.exit(bootstrap.main([]))
"""


def runner_env(workdir: Path, tool_cache: Path, key: KeyMaterial, wheels: Dict[str, str]) -> Dict[str, str]:
    workdir.mkdir(parents=True)
    (workdir / "temp").mkdir()
    files = {
        name: workdir / name.lower() for name in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")
    }
    for path in files.values():
        path.write_text("")
    env = scrubbed_env()
    env.update({name: str(path) for name, path in files.items()})
    env.update(spelled_for("action", settings(key), composite=True))  # as action.yml's step passes them
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(workdir),
        RUNNER_TEMP=str(workdir / "temp"),
        RUNNER_TOOL_CACHE=str(tool_cache),
    )
    env.update(wheels)
    return env


def test_racing_jobs_never_remove_each_others_runtime(tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str]) -> None:
    tool_cache = tmp_path / "toolcache"
    job_a = subprocess.Popen(
        [PYTHON3, "-I", str(BOOTSTRAP)],
        env=runner_env(tmp_path / "a", tool_cache, key, wheels),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert job_a.stdout is not None
    first_line = job_a.stdout.readline()  # A is building (and holds the cache) once it says so
    assert first_line.startswith("::group::"), first_line
    job_b = subprocess.Popen(
        [PYTHON3, "-I", "-c", RACING_JOB, str(BOOTSTRAP)],
        env=runner_env(tmp_path / "b", tool_cache, key, wheels),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log_a = first_line + job_a.communicate(timeout=300)[0]
    log_b = job_b.communicate(timeout=300)[0]
    assert job_a.returncode == 0, log_a
    assert job_b.returncode == 0, log_b
    assert builds(log_b) == [], log_b  # B waited and used A's runtime
    assert "waiting for another job" in log_b
    (runtime,) = runtimes(tool_cache)
    assert load_bootstrap().check_runtime(str(runtime), runtime.name)[0] == "usable"


# -- the cache must not run what it finds ----------------------------------------------------


def plant_pth(runtime: Path, marker: Path) -> None:
    (site_packages(runtime) / "zzz-planted.pth").write_text(f"import os; open({str(marker)!r}, 'w').close()\n")


def replace_python(runtime: Path, marker: Path) -> None:
    python = runtime / "bin" / "python"
    real = os.path.realpath(python)
    python.unlink()
    python.write_text(f'#!/bin/sh\n: > {marker}\nexec {real} "$@"\n')
    python.chmod(0o755)


# Bytecode for jwt/__init__.py stamped with the source's size and mtime, as Python checks it (PEP 552).
PLANT_PYC = r"""
import importlib.util, marshal, os, sys
source, marker = sys.argv[1], sys.argv[2]
info = os.stat(source)
code = compile("open(%r, 'w').close()\n" % marker + open(source).read(), source, "exec")
header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little")
header += (int(info.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + (info.st_size & 0xFFFFFFFF).to_bytes(4, "little")
os.makedirs(os.path.dirname(importlib.util.cache_from_source(source)), exist_ok=True)
with open(importlib.util.cache_from_source(source), "wb") as stream:
    stream.write(header + marshal.dumps(code))
"""


def plant_pyc(runtime: Path, marker: Path) -> None:
    source = site_packages(runtime) / "jwt" / "__init__.py"
    subprocess.run([str(runtime / "bin" / "python"), "-I", "-c", PLANT_PYC, str(source), str(marker)], check=True)


@posix_only
@pytest.mark.parametrize("plant", [plant_pth, replace_python, plant_pyc], ids=["pth", "bin-python", "pyc"])
def test_planted_runtime_is_not_run_and_is_rebuilt(
    built: Path, tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str], plant: object
) -> None:
    tool_cache = copy_of(built, tmp_path)
    (runtime,) = runtimes(tool_cache)
    marker = tmp_path / "planted-code-ran"
    assert callable(plant)
    plant(runtime, marker)
    result = run_composite(tmp_path / "run", settings(key), tool_cache=tool_cache, extra_env=wheels)
    log = result.log
    assert result.returncode == 0, log
    assert not marker.exists(), "the planted code ran"
    assert f"not using the runtime in {runtime}" in log
    assert len(builds(log)) == 1
    assert not (site_packages(runtime) / "zzz-planted.pth").exists()
    assert (runtime / "bin" / "python").is_symlink()
    assert load_bootstrap().check_runtime(str(runtime), runtime.name)[0] == "usable"


@posix_only
@pytest.mark.parametrize("where", ["cache folder", "runtime folder", "tool cache above it"])
def test_folder_writable_by_others_is_refused(
    built: Path, tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str], where: str
) -> None:
    tool_cache = copy_of(built, tmp_path)
    (runtime,) = runtimes(tool_cache)
    marker = tmp_path / "planted-code-ran"
    plant_pth(runtime, marker)  # what another user could have put there
    folder = {"cache folder": tool_cache / NAME, "runtime folder": runtime, "tool cache above it": tool_cache}[where]
    folder.chmod(0o777 if where == "tool cache above it" else 0o775)
    result = run_composite(tmp_path / "run", settings(key), tool_cache=tool_cache, extra_env=wheels)
    log = result.log
    assert result.returncode == 0, log
    assert not marker.exists(), "code from a folder others can write ran"
    assert len(builds(log)) == 1
    if where == "runtime folder":  # ours to replace: rebuilt in place, private again
        assert f"{runtime} is writable by other users" in log
        assert stat.S_IMODE(runtime.stat().st_mode) & 0o022 == 0
    else:  # not ours to fix: passed over for RUNNER_TEMP, and the title says why
        (title,) = builds(log)
        assert str(tmp_path / "run" / "temp" / NAME) in title and "for this job only" in title
        assert f"{folder} is writable by other users" in title


@posix_only
@pytest.mark.skipif(not ROOT_USER, reason="needs root to give a folder to another user")
def test_runtime_of_another_user_is_neither_run_nor_removed(
    built: Path, tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str]
) -> None:
    tool_cache = copy_of(built, tmp_path)
    (runtime,) = runtimes(tool_cache)
    marker = tmp_path / "planted-code-ran"
    plant_pth(runtime, marker)
    for folder, _, files in os.walk(runtime):
        for path in [folder, *(os.path.join(folder, name) for name in files)]:
            os.lchown(path, 65534, 65534)
    result = run_composite(tmp_path / "run", settings(key), tool_cache=tool_cache, extra_env=wheels)
    log = result.log
    assert result.returncode == 0, log
    assert not marker.exists()
    assert runtime.stat().st_uid == 65534  # still there: someone else's to remove
    (title,) = builds(log)
    assert "for this job only" in title and "belongs to another user" in title


def test_pip_variables_of_the_job_change_nothing(tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str]) -> None:
    """PIP_TARGET, PIP_PREFIX, PIP_ROOT, PIP_CONSTRAINT, PIP_REQUIREMENT ... are not pip's orders here."""
    elsewhere = {name: tmp_path / name for name in ("target", "prefix", "root", "src")}
    constraint = tmp_path / "constraint.txt"
    constraint.write_text("cryptography==0.1\n")
    requirement = tmp_path / "requirement.txt"
    requirement.write_text("six\n")
    job_env = {
        "PIP_TARGET": str(elsewhere["target"]),
        "PIP_PREFIX": str(elsewhere["prefix"]),
        "PIP_ROOT": str(elsewhere["root"]),
        "PIP_SRC": str(elsewhere["src"]),
        "PIP_CONSTRAINT": str(constraint),
        "PIP_REQUIREMENT": str(requirement),
        "PIP_USER": "1",
        "PIP_DRY_RUN": "1",
        "PIP_NO_BINARY": ":all:",
        "PIP_REQUIRE_VIRTUALENV": "1",
    }
    tool_cache = tmp_path / "toolcache"
    result = run_composite(tmp_path / "run", settings(key), tool_cache=tool_cache, extra_env={**wheels, **job_env})
    assert result.returncode == 0, result.log
    for folder in elsewhere.values():
        assert not folder.exists() or not any(folder.iterdir())
    (runtime,) = runtimes(tool_cache)
    installed = installed_names(runtime)
    assert "cryptography" in installed and installed <= lock_names()  # no six, all from the lock


def test_venv_and_pip_get_no_inputs_and_only_where_to_download_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mirrors, certificates and proxies still apply; nothing that says what or where to install."""
    keep = {
        "PIP_INDEX_URL": "https://mirror.invalid/simple",
        "PIP_EXTRA_INDEX_URL": "https://other.invalid/simple",
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
        "PIP_PROXY": "http://127.0.0.1:9",
        "PIP_TRUSTED_HOST": "mirror.invalid",
    }
    drop = ["PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_CONSTRAINT", "PIP_REQUIREMENT", "PIP_USER", "PIP_EDITABLE"]
    for name, value in keep.items():
        monkeypatch.setenv(name, value)
    for name in drop:
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/tmp/planted-pip.conf")
    monkeypatch.setenv("INPUT_PRIVATE_KEY", "the key")
    monkeypatch.setenv("INPUT_KEY_ID", "ABCDE12345")
    env: Dict[str, str] = load_bootstrap().build_environment()
    assert "PIP_CONFIG_FILE" not in env  # a job's config file could say anything
    assert not [name for name in env if name.startswith("INPUT_")]  # venv and pip never see the key
    for name, value in keep.items():
        assert env[name] == value
    for name in drop:
        assert name not in env


# -- fast checks of the rules themselves -----------------------------------------------------------


@pytest.fixture
def bootstrap() -> Iterator[ModuleType]:
    yield load_bootstrap()


@posix_only
def test_ancestors_writable_by_others_are_refused_unless_sticky(tmp_path: Path, bootstrap: ModuleType) -> None:
    shared = tmp_path / "shared"
    (shared / "cache").mkdir(parents=True)
    shared.chmod(0o777)
    assert "writable by other users" in bootstrap.ancestors_problem(str(shared / "cache"))
    shared.chmod(0o1777)  # like /tmp: only an entry's owner may rename it
    assert bootstrap.ancestors_problem(str(shared / "cache")) is None
    shared.chmod(0o755)
    link = tmp_path / "link"
    link.symlink_to(shared)
    shared.chmod(0o777)  # reached through a symbolic link: the real folder is checked too
    assert "writable by other users" in bootstrap.ancestors_problem(str(link / "cache"))


@posix_only
def test_bytecode_is_recorded_and_no_other_is_allowed(built: Path, tmp_path: Path, bootstrap: ModuleType) -> None:
    """Every module has bytecode from the build (so a run writes none), and bytecode it did not build is a difference."""
    tool_cache = copy_of(built, tmp_path)
    (runtime,) = runtimes(tool_cache)
    package = site_packages(runtime) / "jwt"
    tag = sys.implementation.cache_tag
    manifest = (runtime / ".asc-token-manifest").read_text()
    sources = list(site_packages(runtime).rglob("*.py"))
    bytecode = [os.path.relpath(importlib.util.cache_from_source(str(p)), runtime) for p in sources]
    assert len(sources) > 100 and all(f"\t{path}\n" in manifest for path in bytecode)
    (package / "__pycache__" / f"api_jwt.{tag}.opt-1.pyc").write_bytes(b"")
    verdict, why = bootstrap.check_runtime(str(runtime), runtime.name)
    assert verdict == "stale" and f"unexpected file lib/python3.{sys.version_info[1]}" in why and "opt-1.pyc" in why
    (package / "__pycache__" / f"api_jwt.{tag}.opt-1.pyc").unlink()
    assert bootstrap.check_runtime(str(runtime), runtime.name)[0] == "usable"
    (runtime / "bin" / "__pycache__").mkdir()
    assert bootstrap.check_runtime(str(runtime), runtime.name) == (
        "stale",
        "it has an unexpected folder bin/__pycache__",
    )


def test_warm_check_is_fast(built: Path, bootstrap: ModuleType) -> None:
    """The whole check of an intact runtime stays a small part of a warm start (~100 ms)."""
    (runtime,) = runtimes(built)
    started = time.perf_counter()
    for _ in range(5):
        assert bootstrap.check_runtime(str(runtime), runtime.name)[0] == "usable"
    assert (time.perf_counter() - started) / 5 < 0.05


# -- the job's pip configuration cannot add to the cached runtime ----------------------------------


def planted_wheel(folder: Path, marker: Path) -> Path:
    """A wheel whose .pth would run in every later start of the runtime."""
    import base64
    import hashlib
    import zipfile

    files = {
        "zzz_planted.pth": f"import os; open({str(marker)!r}, 'w').close()\n",
        "zzz_planted-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: zzz-planted\nVersion: 1.0\n",
        "zzz_planted-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record += f"{name},sha256={digest},{len(text.encode())}\n"
    files["zzz_planted-1.0.dist-info/RECORD"] = record + "zzz_planted-1.0.dist-info/RECORD,,\n"
    wheel = folder / "zzz_planted-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


@pytest.mark.parametrize("chosen_by", ["XDG_CONFIG_HOME", "HOME", "XDG_CONFIG_DIRS"])
def test_pip_configuration_of_the_job_cannot_add_to_the_runtime(
    tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str], chosen_by: str
) -> None:
    """A pip.conf the job points pip at says `[install] requirement=`: the build fails, naming it."""
    import hashlib

    marker = tmp_path / "planted-code-ran"
    wheel = planted_wheel(tmp_path, marker)
    requirements = tmp_path / "planted-requirements.txt"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    requirements.write_text(f"zzz-planted @ {wheel.as_uri()} --hash=sha256:{digest}\n")
    folder = tmp_path / "job-config"
    config = {"XDG_CONFIG_HOME": folder, "HOME": folder / ".config", "XDG_CONFIG_DIRS": folder}[chosen_by]
    (config / "pip").mkdir(parents=True)
    (config / "pip" / "pip.conf").write_text(f"[install]\nrequirement = {requirements}\n")
    tool_cache = tmp_path / "toolcache"
    result = run_composite(
        tmp_path / "run", settings(key), tool_cache=tool_cache, extra_env={**wheels, chosen_by: str(folder)}
    )
    log = result.log
    assert result.returncode == 1, log
    assert not marker.exists(), "the planted package ran"
    (error,) = [line for line in log.splitlines() if line.startswith("::error")]
    assert error.startswith("::error title=asc-token-action setup failed::")
    assert "pip installed zzz-planted==1.0, which requirements/runtime.lock does not hold" in error
    assert "`requirement`" in error and chosen_by in error
    assert runtimes(tool_cache) == []  # nothing half-built is kept, so no later job runs it
    assert "Traceback" not in log and "BEGIN PRIVATE KEY" not in log


def test_python_executable_of_the_job_is_not_run(
    built: Path, tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str]
) -> None:
    """PYTHONEXECUTABLE names sys.executable despite -E and -I: the step must not exec what it names.

    A warm cache is enough: the impostor writes its marker the moment anything execs it, and had
    the step's Python taken its name, the runtime's key (which names the interpreter) would differ
    and the build would run it as well.
    """
    marker = tmp_path / "impostor-ran"
    impostor = tmp_path / "impostor"
    impostor.write_text(f'#!/bin/sh\nenv > {marker}\nexec {PYTHON3} "$@"\n')
    impostor.chmod(0o755)
    env = {**wheels, "PYTHONEXECUTABLE": str(impostor)}
    result = run_composite(tmp_path / "run", settings(key), tool_cache=copy_of(built, tmp_path), extra_env=env)
    assert result.returncode == 0, result.log
    assert not marker.exists(), "the program PYTHONEXECUTABLE names ran with the key in its environment"
    assert builds(result.log) == []  # the step ran on the interpreter that built the runtime
    outputs = result.outputs
    assert isinstance(outputs, dict)
    assert key.decode(outputs["token"])["iss"] == ISSUER_ID


def test_relative_tool_cache_is_passed_over(tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str]) -> None:
    """A relative RUNNER_TOOL_CACHE would name a folder in the workspace and a relative GITHUB_PATH entry."""
    result = run_composite(tmp_path / "run", settings(key), tool_cache=Path("relative-cache"), extra_env=wheels)
    log = result.log
    assert result.returncode == 0, log
    entries = result.path_file
    assert isinstance(entries, list) and entries and all(os.path.isabs(entry) for entry in entries), entries
    (title,) = builds(log)
    assert str(tmp_path / "run" / "temp" / NAME) in title and "for this job only" in title
    assert "RUNNER_TOOL_CACHE is not an absolute path (relative-cache)" in title
    assert not (tmp_path / "run" / "workspace" / "relative-cache").exists()


# -- the lock's markers, evaluated as pip's packaging does -----------------------------------------


def lock_markers() -> List[str]:
    markers = set()
    for lock in ("runtime.lock", "dev.lock"):  # the dev lock's markers are of the same kinds
        lines = (ROOT / "requirements" / lock).read_text().splitlines()
        markers |= {line.rstrip(" \\").partition(";")[2].strip() for line in lines if line[:1].isalnum()}
    return sorted(markers)


# Precedence, parentheses and quoting as uv writes them, beyond what today's locks hold.
MARKER_SHAPES = [
    "os_name == 'nt' or python_version < '3.10' and sys_platform == 'linux'",
    "(os_name == 'nt' or python_version < '3.10') and sys_platform == 'linux'",
    "((platform_machine == 'ARM64') and (sys_platform == 'win32'))",
    "platform_machine != 'ARM64' or sys_platform != 'win32'",
    "(platform_machine != 'ARM64' and platform_machine != 'x86_64') or (platform_machine == 'ARM64' and "
    "sys_platform == 'darwin') or (platform_machine == 'x86_64' and sys_platform == 'win32') or "
    "(sys_platform != 'darwin' and sys_platform != 'win32')",
    'platform_system == "Darwin" and platform_machine == "x86_64"',
    "python_full_version >= '3.9.2' and python_full_version < '3.11' or implementation_name == 'pypy'",
    "platform_system == 'Windows' and python_version >= '3.11'",
    "sys_platform == 'android' or sys_platform == 'linux'",  # `and` at the start of a value is no join
]

# (sys_platform, platform_system, platform_machine, os_name) of the runners docs/runtime.md names.
RUNNER_PLATFORMS = [
    ("linux", "Linux", "x86_64", "posix"),
    ("linux", "Linux", "aarch64", "posix"),
    ("darwin", "Darwin", "arm64", "posix"),
    ("darwin", "Darwin", "x86_64", "posix"),
    ("win32", "Windows", "AMD64", "nt"),
    ("win32", "Windows", "ARM64", "nt"),
]


@pytest.mark.parametrize("runner_platform", RUNNER_PLATFORMS, ids=lambda p: f"{p[0]}-{p[2]}")
@pytest.mark.parametrize(
    "version", ["3.9.0", "3.9.2", "3.10.0rc1", "3.10.0", "3.10.13", "3.11.0b4", "3.11.7", "3.13.0", "3.14.0a1"]
)
@pytest.mark.parametrize("implementation", ["CPython", "PyPy"])
def test_lock_markers_are_read_as_packaging_reads_them(
    bootstrap: ModuleType, version: str, implementation: str, runner_platform: Tuple[str, str, str, str]
) -> None:
    from packaging.markers import Marker

    sys_platform, platform_system, platform_machine, os_name = runner_platform
    environment = {
        **bootstrap.marker_environment(),
        "python_full_version": version,
        "python_version": ".".join(version.split(".")[:2]),
        "implementation_name": implementation.lower(),
        "platform_python_implementation": implementation,
        "sys_platform": sys_platform,
        "platform_system": platform_system,
        "platform_machine": platform_machine,
        "os_name": os_name,
    }
    markers = lock_markers() + MARKER_SHAPES
    assert len(markers) > 10
    assert any(" or " in marker and "(" in marker for marker in lock_markers())  # what the new lock needs
    for marker in markers:
        expected = Marker(marker).evaluate(environment) if marker else True
        assert bootstrap.marker_applies(marker, environment) == expected, (marker, version, runner_platform)


def test_the_marker_environment_is_what_packaging_reports_here(bootstrap: ModuleType) -> None:
    from packaging.markers import default_environment

    reference = {name: str(value) for name, value in default_environment().items()}
    assert {name: reference[name] for name in bootstrap.marker_environment()} == bootstrap.marker_environment()


@pytest.mark.parametrize(
    "marker",
    [
        "extra == 'socks'",
        "python_version ~= '3.9'",
        "python_version === '3.9'",
        "os_name in 'nt posix'",
        "'nt' == os_name",
        "python_version < '3.10' or",
        "and python_version < '3.10'",
        "(os_name == 'nt'",
        "os_name == 'nt')",
        "()",
        "os_name == 'nt' (sys_platform == 'win32')",
        "os_name == 'nt' xor sys_platform == 'linux'",
        "os_name == 'nt' or platform_release == '1'",  # a variable it does not know, in a branch that would not count
        "sys_platform < 'win32'",
        "os_name == 'nt\"",
    ],
)
def test_a_marker_it_cannot_read_fails_the_build(bootstrap: ModuleType, marker: str) -> None:
    with pytest.raises(bootstrap.SetupError, match=r"cannot evaluate|compares") as raised:
        bootstrap.marker_applies(marker, bootstrap.marker_environment())
    assert "compares" in raised.value.message or marker in raised.value.message


def test_a_distribution_pip_left_out_fails_the_build(tmp_path: Path, bootstrap: ModuleType) -> None:
    wanted = sorted(bootstrap.locked_distributions(bootstrap.marker_environment()))
    for pin in wanted[1:]:
        name, _, version = pin.partition("==")
        (tmp_path / f"{name.replace('-', '_')}-{version}.dist-info").mkdir()
    with pytest.raises(bootstrap.SetupError) as raised:
        bootstrap.check_installed(str(tmp_path), set())
    assert f"pip did not install {wanted[0]}" in raised.value.message and "pip installed" not in raised.value.message
    (tmp_path / "easy-install.pth").write_text("/somewhere/else\n")
    with pytest.raises(bootstrap.SetupError, match=r"pip installed easy-install\.pth, which"):
        bootstrap.check_installed(str(tmp_path), set())


# -- verdicts, not message text --------------------------------------------------------------------


@posix_only
def test_verdicts_of_check_runtime(tmp_path: Path, bootstrap: ModuleType) -> None:
    target = tmp_path / "runtime"
    assert bootstrap.check_runtime(str(target), "key")[0] == "missing"
    target.mkdir()
    assert bootstrap.check_runtime(str(target), "key") == ("stale", "it is incomplete (no manifest)")
    target.chmod(0o775)
    assert bootstrap.check_runtime(str(target), "key") == ("stale", f"{target} is writable by other users")
    if ROOT_USER:
        os.chown(target, 65534, 65534)
        verdict, why = bootstrap.check_runtime(str(target), "key")
        assert verdict == "foreign" and "belongs to another user (uid 65534)" in why


@posix_only
def test_no_core_dumps_from_the_bootstrap_and_what_it_starts() -> None:
    """It holds the key in its environment, as does the runtime it execs (limits survive exec)."""
    script = (
        "import importlib.util, resource, sys\n"
        "spec = importlib.util.spec_from_file_location('b', sys.argv[1]); b = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(b); b.forbid_core_dumps()\n"
        "print(resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    shell = 'ulimit -c "$(ulimit -H -c)"; exec "$0" -I -c "$1" "$2"'
    completed = subprocess.run(
        ["bash", "-c", shell, PYTHON3, script, str(BOOTSTRAP)], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "(0, 0)"


# -- a failed pip says what failed -----------------------------------------------------------------

PYTHON3_VERSION = subprocess.run(
    [PYTHON3, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True
).stdout.strip()


def wheelhouse_copy(wheels: Dict[str, str], tmp_path: Path) -> Path:
    """The session's wheelhouse, to change: pip reads it as its only index."""
    if not wheels:
        pytest.skip("the lock's wheels could not be downloaded")
    house = tmp_path / "wheelhouse"
    shutil.copytree(wheels["PIP_FIND_LINKS"], house)
    return house


def setup_error(result: Run) -> str:
    error = one_error(result, with_title=True)
    assert error.startswith("::error title=asc-token-action setup failed::"), error
    assert "BEGIN PRIVATE KEY" not in result.log
    return error


def test_no_wheel_for_this_runner_is_named_without_pypi_advice(
    tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str]
) -> None:
    """The index answered, with cryptography for Windows arm64 only: no 'check that the runner can reach PyPI'."""
    house = wheelhouse_copy(wheels, tmp_path)
    (version,) = {wheel.name.split("-")[1] for wheel in house.glob("cryptography-*.whl")}
    for wheel in house.glob("cryptography-*.whl"):
        wheel.unlink()
    (house / f"cryptography-{version}-cp311-abi3-win_arm64.whl").write_bytes(b"for another runner")
    tool_cache = tmp_path / "toolcache"
    result = run_composite(
        tmp_path / "run",
        settings(key),
        tool_cache=tool_cache,
        extra_env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(house)},
    )
    assert result.returncode == 2, result.log  # a runner to change, nothing sent
    error = setup_error(result)
    assert f"no wheel of cryptography=={version} for this runner" in error
    assert f"({sys.platform} {os.uname().machine.lower()}, Python {PYTHON3_VERSION})" in error
    assert "docs/runtime.md#supported-runners" in error
    assert "PyPI" not in error and "PIP_INDEX_URL" not in error
    assert runtimes(tool_cache) == [] and not [p for p in (tool_cache / NAME).iterdir() if p.name.endswith(".tmp")]


def test_a_wheel_that_does_not_match_its_hash_is_named(
    tmp_path: Path, key: KeyMaterial, wheels: Dict[str, str]
) -> None:
    """A mirror served other bytes under a locked wheel's name: said so, and nothing installed."""
    house = wheelhouse_copy(wheels, tmp_path)
    (wheel,) = house.glob("certifi-*.whl")
    wheel.write_bytes(b"other bytes")
    tool_cache = tmp_path / "toolcache"
    result = run_composite(
        tmp_path / "run",
        settings(key),
        tool_cache=tool_cache,
        extra_env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(house)},
    )
    assert result.returncode == 1, result.log
    error = setup_error(result)
    assert f"the file pip downloaded for certifi=={wheel.name.split('-')[1]} does not match its hash" in error
    assert "a mirror or a proxy served other bytes" in error and "reach PyPI" not in error
    assert runtimes(tool_cache) == []


def test_an_index_not_reached_is_said_with_the_mirror_advice(
    tmp_path: Path, key: KeyMaterial, closed_port: int
) -> None:
    nowhere = f"http://127.0.0.1:{closed_port}/simple/"
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    network = {
        "PIP_INDEX_URL": nowhere,
        "PIP_EXTRA_INDEX_URL": nowhere,  # over this machine's pip.conf, as PIP_FIND_LINKS is
        "PIP_FIND_LINKS": str(empty),
        "PIP_RETRIES": "1",
        "PIP_TIMEOUT": "5",
    }
    result = run_composite(tmp_path / "run", settings(key), tool_cache=tmp_path / "toolcache", extra_env=network)
    assert result.returncode == 1, result.log
    error = setup_error(result)
    assert "pip could not download from the package index (the connection was refused)" in error
    assert "check that the runner can reach PyPI, or set PIP_INDEX_URL to your mirror" in error
    assert "no wheel of" not in error


# -- the last resort is checked like the rest, and the runtime again right before it starts --------


@pytest.fixture
def shared_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder any local user may write in, not sticky: what is made in it can be renamed by anyone."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    yield shared
    shared.chmod(0o755)


def new_temp_folders() -> Set[str]:
    return {str(p) for p in Path("/tmp").glob(f"{NAME}-*")}


@posix_only
def test_last_resort_is_built_only_where_no_one_else_can_rename_it(
    shared_folder: Path, key: KeyMaterial, wheels: Dict[str, str]
) -> None:
    """Tool cache, RUNNER_TEMP and TMPDIR all under a 0777 folder: not built in TMPDIR, but in /tmp (sticky)."""
    tmpdir = shared_folder / "tmp"
    tmpdir.mkdir(mode=0o700)
    before = new_temp_folders()
    result = run_composite(
        shared_folder / "run",
        settings(key),
        tool_cache=shared_folder / "toolcache",
        extra_env={**wheels, "TMPDIR": str(tmpdir)},
    )
    made = sorted(new_temp_folders() - before)
    try:
        log = result.log
        assert result.returncode == 0, log
        assert list(tmpdir.iterdir()) == [], "built in TMPDIR, under a folder anyone can write"
        (title,) = builds(log)
        assert "for this run only" in title and f"{shared_folder} is writable by other users" in title
        (folder,) = made
        assert f" into {folder}/" in title
    finally:
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


@posix_only
def test_no_safe_folder_at_all_is_refused_naming_them(shared_folder: Path, bootstrap: ModuleType) -> None:
    """Where every temporary folder is under one anyone can write, nothing is built (exit 2: a setting)."""
    passed_over = ["/cache is writable by other users"]
    temp = shared_folder / "tmp"
    temp.mkdir()
    with pytest.raises(bootstrap.SetupError) as refused:
        bootstrap.private_temp_folder_in([str(temp), str(shared_folder / "missing")], passed_over)
    assert refused.value.exit_code == 2
    message = refused.value.message
    assert f"{shared_folder} is writable by other users" in message and "/cache is writable" in message
    assert "Set RUNNER_TEMP (or TMPDIR) to a folder only this user can write" in message
    assert list(temp.iterdir()) == []
    private = shared_folder.parent / "private"
    private.mkdir(mode=0o700)
    made = Path(bootstrap.private_temp_folder_in([str(temp), str(private)], []))
    assert made.parent == private and stat.S_IMODE(made.stat().st_mode) == 0o700


@posix_only
def test_a_runtime_changed_after_its_check_is_not_started(built: Path, tmp_path: Path, bootstrap: ModuleType) -> None:
    """run() checks the runtime once more right before exec: a file swapped in since is refused, not run."""
    tool_cache = copy_of(built, tmp_path)
    (runtime,) = runtimes(tool_cache)
    marker = tmp_path / "planted-code-ran"
    plant_pth(runtime, marker)
    with pytest.raises(bootstrap.SetupError) as refused:
        bootstrap.run(str(runtime), runtime.name, [])
    assert "changed after it was checked (it has an unexpected file" in refused.value.message
    assert not marker.exists()


# -- a cancelled build ends in one line, with nothing half-built left ------------------------------


@pytest.fixture
def silent_index() -> Iterator[Tuple[str, threading.Event]]:
    """A package index on 127.0.0.1 that accepts connections and never answers, and an event set once pip connects."""
    connected = threading.Event()
    held: List[socket.socket] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)

    def accept() -> None:
        while not stopped.is_set():
            try:
                held.append(server.accept()[0])
                connected.set()
            except OSError:
                continue

    stopped = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/simple/", connected
    stopped.set()
    thread.join(timeout=5)
    for connection in [*held, server]:
        connection.close()


@posix_only
@pytest.mark.parametrize(("sent", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_build_stopped_by_a_signal_ends_in_one_line_and_leaves_nothing(
    tmp_path: Path, key: KeyMaterial, silent_index: Tuple[str, threading.Event], sent: int, status: int
) -> None:
    index, connected = silent_index
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    network = {"PIP_INDEX_URL": index, "PIP_EXTRA_INDEX_URL": index, "PIP_FIND_LINKS": str(empty)}
    tool_cache = tmp_path / "toolcache"
    job = subprocess.Popen(
        [PYTHON3, "-I", "-S", str(BOOTSTRAP)],
        env=runner_env(tmp_path / "job", tool_cache, key, network),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert connected.wait(timeout=120), "pip never asked the index"
        job.send_signal(sent)
        stdout, stderr = job.communicate(timeout=60)
    finally:
        job.kill()
    assert job.returncode == status, stdout + stderr
    assert "Traceback" not in stdout + stderr and stderr == ""
    name = "SIGINT" if sent == signal.SIGINT else "SIGTERM"
    assert stdout.splitlines()[-2:] == [
        "::endgroup::",
        f"asc-token-action: stopped by {name} while preparing the runtime; nothing half-built was kept.",
    ]
    assert runtimes(tool_cache) == [] and [p.name for p in (tool_cache / NAME).iterdir()] == []


def test_every_setup_failure_is_explained(bootstrap: ModuleType) -> None:
    """Each message a failed build can give starts as a row of docs/troubleshooting.md says it does."""
    section = (ROOT / "docs" / "troubleshooting.md").read_text().split("## When the runtime cannot be set up")[1]
    section = section.split("\n## ")[0]
    templates = ["PIP_NO_WHEEL", "PIP_UNREACHABLE", "PIP_HASH_MISMATCH", "NO_SAFE_FOLDER", "CHANGED_BEFORE_START"]
    for name in [*templates, "NO_VENV"]:
        opening = getattr(bootstrap, name).split("{")[0].split(":")[0].strip()
        assert f"| `{opening}" in section, name
    assert bootstrap.INTERRUPTED.format(signal="SIGINT") in section


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection "
            "broken by 'NameResolutionError(\"<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to resolve "
            "'pypi.org' ([Errno -3] Temporary failure in name resolution)\")': /simple/actions-toolkit/",
            "its name did not resolve",
        ),
        (
            "WARNING: Retrying (Retry(total=4)) after connection broken by 'SSLError(SSLCertVerificationError(1, "
            "'[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate "
            "chain (_ssl.c:1006)'))': /simple/actions-toolkit/",
            "its TLS certificate is not trusted here",
        ),
        (
            "WARNING: Retrying (Retry(total=4)) after connection broken by 'ProxyError('Cannot connect to proxy.', "
            "NewConnectionError('<urllib3.connection.HTTPSConnection object>: Failed to establish a new connection: "
            "[Errno 111] Connection refused'))': /simple/actions-toolkit/",
            "the proxy failed",
        ),
        (
            "WARNING: Retrying (Retry(total=4)) after connection broken by 'ConnectTimeoutError(<urllib3.connection."
            "HTTPSConnection object>, 'Connection to pypi.org timed out. (connect timeout=15)')': /simple/certifi/",
            "it timed out",
        ),
    ],
)
def test_pip_output_of_an_index_not_reached_is_read_as_such(bootstrap: ModuleType, line: str, reason: str) -> None:
    """pip ends these with 'No matching distribution found': the index was not reached, and that is what is said."""
    output = (
        f"{line}\nERROR: Could not find a version that satisfies the requirement actions-toolkit==0.1.15 (from "
        "versions: none)\nERROR: No matching distribution found for actions-toolkit==0.1.15\n"
    )
    failure = bootstrap.pip_failure(output, 1, output)
    assert failure.exit_code == 1
    assert failure.message.startswith(f"pip could not download from the package index ({reason}): check that")
