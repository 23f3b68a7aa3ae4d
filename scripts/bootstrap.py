#!/usr/bin/env python3
"""Run entrypoint.py with the pinned runtime, preparing it once per runner and Python.

Standard library only: this is what the composite action and the demo run with the runner's own
python3 (3.9 or newer). The runtime is a venv created without pip, holding exactly the wheels of
requirements/runtime.lock (installed --no-deps --require-hashes --only-binary), cached under
RUNNER_TOOL_CACHE keyed by the lock's hash, the OS, the machine and the Python version. A warm
run costs one hash of the lock and one process start.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from typing import List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK = os.path.join(ROOT, "requirements", "runtime.lock")
ENTRYPOINT = os.path.join(ROOT, "entrypoint.py")
MARKER = ".asc-token-complete"


def cache_root() -> str:
    base = (
        os.environ.get("RUNNER_TOOL_CACHE")
        or os.environ.get("XDG_CACHE_HOME")
        or os.path.join(os.path.expanduser("~"), ".cache")
    )
    return os.path.join(base, "asc-token-action")


def runtime_key() -> str:
    with open(LOCK, "rb") as stream:
        lock_hash = hashlib.sha256(stream.read()).hexdigest()[:16]
    version = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return f"{lock_hash}-{sys.platform}-{platform.machine().lower()}-{version}"


def venv_python(venv: str) -> str:
    if os.name == "nt":
        return os.path.join(venv, "Scripts", "python.exe")
    return os.path.join(venv, "bin", "python")


def site_packages(venv: str) -> str:
    if os.name == "nt":
        return os.path.join(venv, "Lib", "site-packages")
    return os.path.join(venv, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")


def pip_args() -> List[str]:
    return [
        "install", "--no-deps", "--require-hashes", "--only-binary", ":all:",
        "--disable-pip-version-check", "--no-input", "--quiet", "--no-warn-script-location",
        "-r", LOCK,
    ]  # fmt: skip


def build_runtime(target: str, key: str) -> Optional[str]:
    """Create the venv at ``target`` (atomically); returns an error message or None."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = f"{target}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    have_pip = importlib.util.find_spec("pip") is not None
    # Without pip the venv is created in ~50 ms; the runner's own pip fills it with --target.
    venv_cmd = [sys.executable, "-m", "venv"] + ([] if not have_pip else ["--without-pip"]) + [staging]
    steps = [venv_cmd]
    if have_pip:
        steps.append([sys.executable, "-m", "pip", *pip_args(), "--target", site_packages(staging)])
    else:
        steps.append([venv_python(staging), "-m", "pip", *pip_args()])
    for command in steps:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
            return f"`{' '.join(command[:4])} ...` failed with exit code {completed.returncode}:\n{tail}"
    with open(os.path.join(staging, MARKER), "w", encoding="utf-8") as stream:
        stream.write(key + "\n")
    try:
        os.replace(staging, target)
    except OSError:
        # Another job on this self-hosted runner finished first: use theirs.
        shutil.rmtree(staging, ignore_errors=True)
    return None


def writable_cache_root() -> str:
    """RUNNER_TOOL_CACHE when it can be written (self-hosted runners may lock it down), else temp."""
    for root in (
        cache_root(),
        os.path.join(os.environ.get("RUNNER_TEMP") or tempfile.gettempdir(), "asc-token-action"),
    ):
        try:
            os.makedirs(root, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=root, prefix=".probe-")  # noqa: SIM115 - closed at once
            probe.close()
            return root
        except OSError:
            continue
    return cache_root()


def ensure_runtime() -> str:
    key = runtime_key()
    target = os.path.join(writable_cache_root(), key)
    if not os.path.exists(os.path.join(target, MARKER)):
        shutil.rmtree(target, ignore_errors=True)  # a half-built leftover from a killed job
        print(
            f"::group::asc-token-action: installing pinned dependencies for Python {platform.python_version()} (once per runner)",
            flush=True,
        )
        error = build_runtime(target, key)
        print("::endgroup::", flush=True)
        if error:
            print(
                "::error title=asc-token-action setup failed::Installing the pinned dependencies from "
                "requirements/runtime.lock failed: check that the runner can reach PyPI (or set "
                "PIP_INDEX_URL to your mirror) and uses Python 3.9 or newer.",
                flush=True,
            )
            print(error, flush=True)
            sys.exit(1)
    return venv_python(target)


def main(argv: List[str]) -> int:
    if sys.version_info < (3, 9):  # noqa: UP036 - the runner's python3 may be anything
        print(
            f"::error title=Python too old::asc-token-action needs Python 3.9 or newer, and {sys.executable} is {platform.python_version()}: add actions/setup-python before this step."
        )
        return 1
    try:
        python = ensure_runtime()
        # -I: a PYTHONPATH or user site-packages in the job's environment cannot inject modules.
        return subprocess.call([python, "-I", ENTRYPOINT, *argv])
    except OSError as exc:
        print(
            "::error title=asc-token-action setup failed::Preparing the runtime failed "
            f"({type(exc).__name__}: {exc.strerror or exc}): check that RUNNER_TOOL_CACHE or "
            "RUNNER_TEMP is writable on this runner.",
            flush=True,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
