#!/usr/bin/env python3
"""Developer commands that need nothing but python3 (3.9+):

python3 dev.py demo      the whole action against a local App Store Connect stand-in
python3 dev.py standin   serve the stand-in with a throwaway key (the workflow self-test uses it)
python3 dev.py test      the test suite (creates .venv from requirements/dev.lock)
python3 dev.py lint      ruff, mypy --strict, and the action/workflow schema checks
python3 dev.py bench     the benchmark script (figures with side-by-side ratios)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
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
        checks = [
            [os.path.join(BIN, "ruff"), "check", "."],
            [PYTHON, "-m", "mypy"],
            [os.path.join(BIN, "check-jsonschema"), "--builtin-schema", "vendor.github-actions", "action.yml"],
            [os.path.join(BIN, "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
             ".github/workflows/ci.yml", ".github/workflows/release.yml"],
            [os.path.join(BIN, "zizmor"), "--offline", "--min-severity", "medium", "action.yml", ".github/"],
        ]  # fmt: skip
        failed = [" ".join(c[:2]) for c in checks if subprocess.call(c, cwd=ROOT) != 0]
        if failed:
            print(f"dev.py lint: failed: {', '.join(failed)}")
            return 1
        return 0
    if command == "bench":
        ensure_dev_venv()
        return subprocess.call([PYTHON, os.path.join(ROOT, "scripts", "benchmark.py"), *rest], cwd=ROOT)
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
