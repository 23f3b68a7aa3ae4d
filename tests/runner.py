"""Run entrypoint.py the way the GitHub runner does, and read back what it wrote."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devtools.runnerfiles import parse_file_command

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "entrypoint.py"
KEY_ID = "ABCDE12345"
ISSUER_ID = "57246542-96fe-1a63-e053-0824d011072a"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    outputs: Dict[str, str]
    env_file: Dict[str, str]
    summary: str
    workdir: Path

    @property
    def log(self) -> str:
        return self.stdout + self.stderr

    def errors(self) -> List[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::error")]


@dataclass
class KeyMaterial:
    key: ec.EllipticCurvePrivateKey
    pem: str = field(init=False)

    def __post_init__(self) -> None:
        self.pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def sec1(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()

    @property
    def base64_of_file(self) -> str:
        return base64.b64encode(self.pem.encode()).decode()

    def secret_fragments(self) -> List[str]:
        """Every piece of the key that must never appear in a log."""
        body = [line for line in self.pem.splitlines() if not line.startswith("-----")]
        return [*body, "".join(body), self.base64_of_file[:40]]

    def decode(self, token: str, **options: bool) -> Dict[str, object]:
        return jwt.decode(
            token,
            self.key.public_key(),
            algorithms=["ES256"],
            audience="appstoreconnect-v1",
            options={"verify_iat": False, **options},
        )


def run_entrypoint(
    workdir: Path,
    inputs: Dict[str, str],
    *,
    extra_env: Optional[Dict[str, str]] = None,
    args: Iterable[str] = (),
    python: str = sys.executable,
    timeout: float = 90,
) -> Result:
    """Inputs by their action names ("key-id"); passed as the runner passes them: INPUT_KEY-ID."""
    workdir.mkdir(parents=True, exist_ok=True)
    files = {
        "GITHUB_OUTPUT": workdir / "output.txt",
        "GITHUB_ENV": workdir / "env.txt",
        "GITHUB_STEP_SUMMARY": workdir / "summary.md",
    }
    for path in files.values():
        path.write_text("")
    (workdir / "temp").mkdir(exist_ok=True)
    (workdir / "workspace").mkdir(exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INPUT_", "GITHUB_", "RUNNER_", "ASC_", "APP_STORE_CONNECT_", "PLUGIN_"))
    }
    env.update({name: str(path) for name, path in files.items()})
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(workdir / "workspace"),
        RUNNER_TEMP=str(workdir / "temp"),
        RUNNER_OS="Linux",
        CI="true",
    )
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    env.update(extra_env or {})
    completed = subprocess.run(
        [python, str(ENTRYPOINT), *args],
        env=env,
        cwd=str(workdir / "workspace"),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(
        returncode=completed.returncode,
        stdout=completed.stdout,
        stderr=completed.stderr,
        outputs=parse_file_command(files["GITHUB_OUTPUT"].read_text()),
        env_file=parse_file_command(files["GITHUB_ENV"].read_text()),
        summary=files["GITHUB_STEP_SUMMARY"].read_text(),
        workdir=workdir,
    )


def assert_token_masked_first(result: Result) -> None:
    """``::add-mask::<token>`` precedes every other line that mentions the token."""
    token = result.outputs["token"]
    lines = result.stdout.splitlines()
    mask_line = f"::add-mask::{token}"
    assert mask_line in lines, "the token was never registered with ::add-mask::"
    first_mention = next(i for i, line in enumerate(lines) if token in line)
    assert lines[first_mention] == mask_line
    assert token not in result.stderr


def assert_no_secrets(result: Result, secrets: Iterable[str]) -> None:
    """No key material anywhere the user can see: log lines (bar ::add-mask::), summary, env file."""
    visible = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("::add-mask::"))
    visible += result.stderr + result.summary + "\n".join(result.env_file.values())
    for secret in secrets:
        if secret:
            assert secret not in visible, "a secret reached the log, summary or GITHUB_ENV"
    assert "Traceback" not in result.log


def random_issuer() -> str:
    return str(uuid.uuid4())
