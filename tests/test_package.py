"""The distribution users get from PyPI: build the wheel and sdist once, check their metadata
with twine, install the wheel into a fresh venv beside exactly the locked runtime wheels, and run
its `asc-token` command: --version, a mint, and a verified mint against the local stand-in.

ASC_TEST_DIST names a folder that already holds the wheel and the sdist (the release workflow
tests the very files it then publishes) instead of building them here.
"""

from __future__ import annotations

import ast
import email.parser
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .conftest import made_once
from .runner import ISSUER_ID, KEY_ID, ROOT, scrubbed_env, standin_running

NAME = "asc_token_action"


def _source_version() -> str:
    """`__version__` from src/asc_token/__init__.py, read without importing anything."""
    tree = ast.parse((ROOT / "src" / "asc_token" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise AssertionError("no __version__ in src/asc_token/__init__.py")


VERSION = _source_version()


def _run(
    command: List[str], cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert completed.returncode == 0, f"{command[:4]} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prebuilt = os.environ.get("ASC_TEST_DIST")
    if prebuilt:
        return Path(prebuilt)

    def build(out: Path) -> bool:
        # No isolation: the dev venv's hashed setuptools builds them, with no unpinned download. No
        # --wheel/--sdist: the wheel is built from the unpacked sdist, as it would be from PyPI's, and
        # never from a stale build/ folder of the checkout.
        _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
        return True

    out = made_once(tmp_path_factory, "dist", build)  # once per session, whichever worker asks first
    assert out is not None
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    wheels = sorted(dist.glob("*.whl"))
    assert [w.name for w in wheels] == [f"{NAME}-{VERSION}-py3-none-any.whl"]
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory, wheels: Dict[str, str]) -> Path:
    """A fresh venv: the runtime lock (hashed wheels only, from the session's wheelhouse), then the
    project's wheel, --no-deps. Made once per session; the tests only run its command."""

    def install(folder: Path) -> bool:
        venv = folder / "venv"
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        # This venv's pip drives the fresh one (--python), which keeps it free of pip itself.
        pip = [sys.executable, "-m", "pip", "--python", str(_python(venv)), "--disable-pip-version-check", "install"]
        lock = str(ROOT / "requirements" / "runtime.lock")
        pip_env = {**os.environ, **wheels}
        _run([*pip, "--quiet", "--no-deps", "--require-hashes", "--only-binary", ":all:", "-r", lock], env=pip_env)
        _run([*pip, "--quiet", "--no-deps", "--no-index", str(wheel)])
        return True

    folder = made_once(tmp_path_factory, "installed", install)
    assert folder is not None
    return _python(folder / "venv").parent


def _python(venv: Path) -> Path:
    scripts = venv / ("Scripts" if os.name == "nt" else "bin")
    return scripts / ("python.exe" if os.name == "nt" else "python")


def _asc_token(scripts: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = str(scripts / ("asc-token.exe" if os.name == "nt" else "asc-token"))
    return _run([command, "--platform", "generic", *args], cwd=cwd, env=scrubbed_env())


def _key_file(folder: Path) -> Tuple[Path, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = folder / f"AuthKey_{KEY_ID}.p8"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(pem)
    return path, key.public_key()


def test_metadata_passes_twine_check(dist: Path, wheel: Path) -> None:
    files = sorted(dist.glob(f"{NAME}-*"))
    assert [f.name for f in files] == [f"{NAME}-{VERSION}-py3-none-any.whl", f"{NAME}-{VERSION}.tar.gz"]
    _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, files)])
    with zipfile.ZipFile(wheel) as archive:
        metadata = email.parser.Parser().parsestr(archive.read(f"{NAME}-{VERSION}.dist-info/METADATA").decode())
        entry_points = archive.read(f"{NAME}-{VERSION}.dist-info/entry_points.txt").decode()
    assert metadata["Name"] == "asc-token-action" and metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "MIT" and metadata["License-File"] == "LICENSE"
    assert metadata["Requires-Python"] == ">=3.9"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert str(metadata.get_payload()).startswith("# asc-token-action")  # the README
    assert any(url.startswith("Source, https://") for url in metadata.get_all("Project-URL", []))
    assert "Programming Language :: Python :: 3.9" in metadata.get_all("Classifier", [])
    assert "asc-token = asc_token.dispatch:cli" in entry_points


def test_wheel_ships_only_the_product(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"asc_token", f"{NAME}-{VERSION}.dist-info"}
    for forbidden in ("devtools", "standin", "demo", "tests", "runnerfiles", "benchmark"):
        assert not [name for name in names if forbidden in name], forbidden
    assert f"{NAME}-{VERSION}.dist-info/licenses/LICENSE" in names


def test_installed_command_reports_the_version(installed: Path, tmp_path: Path) -> None:
    assert _asc_token(installed, "--version", cwd=tmp_path).stdout.strip() == f"asc-token {VERSION}"


def test_installed_command_mints_a_token(installed: Path, tmp_path: Path) -> None:
    key_path, public_key = _key_file(tmp_path)
    run = _asc_token(
        installed,
        *("--private-key-path", str(key_path), "--key-id", KEY_ID, "--issuer-id", ISSUER_ID),
        *("--expires-in", "600", "--no-verify", "--print"),
        cwd=tmp_path,
    )
    token = run.stdout.strip()
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, public_key, algorithms=["ES256"], audience="appstoreconnect-v1")
    assert header == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    assert claims["iss"] == ISSUER_ID and claims["exp"] - claims["iat"] == 600
    assert f"asc-token {VERSION}" in run.stderr and "-----BEGIN" not in run.stderr


def test_installed_command_verifies_against_the_standin(installed: Path, tmp_path: Path) -> None:
    key_path, public_key = _key_file(tmp_path)
    with standin_running() as api:
        api.register(KEY_ID, public_key, ISSUER_ID)
        run = _asc_token(
            installed,
            *("--private-key-path", str(key_path), "--key-id", KEY_ID, "--issuer-id", ISSUER_ID),
            *("--api-url", api.url, "--verify", "--output-file", str(tmp_path / "token")),
            cwd=tmp_path,
        )
    assert "3 apps visible" in run.stderr
    jwt.decode(
        (tmp_path / "token").read_text().strip(), public_key, algorithms=["ES256"], audience="appstoreconnect-v1"
    )
