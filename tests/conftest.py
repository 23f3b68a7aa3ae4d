"""Fixtures and the one set of input builders every test starts from."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from typing import Any, Dict, Iterator, Optional

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from devtools.standin import AppStoreConnectStandIn

from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial, standin_running

OTHER_ISSUER = "11111111-2222-3333-4444-555555555555"


def _apply(values: Dict[str, str], overrides: Dict[str, Optional[str]], *, hyphens: bool) -> Dict[str, str]:
    for name, value in overrides.items():
        spelled = name.replace("_", "-") if hyphens else name
        if value is None:
            values.pop(spelled, None)
        else:
            values[spelled] = value
    return values


def team_inputs(key: KeyMaterial, **overrides: Optional[str]) -> Dict[str, str]:
    """The action inputs of a typical workflow: a team key, no verification (no network).

    Overrides by Python name (``api_url=`` sets ``api-url``); ``None`` leaves an input out.
    """
    values = {"private-key": key.pem, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false"}
    return _apply(values, overrides, hyphens=True)


def individual_inputs(key: KeyMaterial, **overrides: Optional[str]) -> Dict[str, str]:
    """An individual key: no issuer, ``key-type: individual``."""
    return team_inputs(key, issuer_id=None, key_type="individual", **overrides)


def verify_inputs(
    key: KeyMaterial, standin: AppStoreConnectStandIn, *checks: str, **overrides: Optional[str]
) -> Dict[str, str]:
    """A team key checked against the stand-in (its notary service too); ``checks`` one per line."""
    values: Dict[str, Optional[str]] = {
        "verify": None,
        "api_url": standin.url,
        "notary_url": standin.url + "/notary/v2",
    }
    if checks:
        values["checks"] = "\n".join(checks)
    return team_inputs(key, **{**values, **overrides})


def cli_env(key: KeyMaterial, **overrides: Optional[str]) -> Dict[str, str]:
    """``asc-token``'s settings from the environment, by variable name; ``None`` leaves one out."""
    values = {"ASC_PRIVATE_KEY": key.pem, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID}
    return _apply(values, overrides, hyphens=False)


@pytest.fixture(scope="session")
def key() -> KeyMaterial:
    return KeyMaterial(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def default_inputs(key: KeyMaterial) -> Dict[str, str]:
    """What a typical workflow passes: a team key, no verification (no network)."""
    return team_inputs(key)


@pytest.fixture
def api(key: KeyMaterial) -> Iterator[AppStoreConnectStandIn]:
    with standin_running() as standin:
        standin.register(KEY_ID, key.key.public_key(), ISSUER_ID)
        yield standin


@pytest.fixture
def no_dns_for_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve ``.invalid`` names to NXDOMAIN here, as a resolver would, so no query leaves the
    machine (this one's resolver forwards every name); urllib3 and requests wrap it as they do for real."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but not listening: connecting is refused, deterministically."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    """pip settings that install the lock from a local folder, downloaded once (empty if it cannot be
    filled): the runtime builds of the bootstrap and act suites read no index."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    download = subprocess.run(
        [shutil.which("python3") or sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes", "--only-binary", ":all:",
         "--disable-pip-version-check", "-r", str(ROOT / "requirements" / "runtime.lock"), "-d", str(folder)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(folder)} if download.returncode == 0 else {}
