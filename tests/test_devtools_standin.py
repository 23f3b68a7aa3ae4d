"""`python3 dev.py standin` accepts your own key, so a pipeline can be tried against it (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from devtools.runnerfiles import parse_file_command

from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial


def test_standin_serves_your_own_public_key(tmp_path: Path, key: KeyMaterial) -> None:
    public = tmp_path / "public.pem"
    public.write_bytes(
        key.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    output = tmp_path / "output"
    output.write_text("")
    env = {**os.environ, "GITHUB_OUTPUT": str(output), "PYTHONPATH": str(ROOT)}
    args = ["--public-key", str(public), "--key-id", KEY_ID, "--issuer-id", ISSUER_ID, "--seconds", "20"]
    server = subprocess.Popen([sys.executable, "-m", "devtools.demo", "standin", *args], env=env, cwd=str(ROOT))
    try:
        deadline = time.monotonic() + 15
        while "url" not in parse_file_command(output.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        facts = parse_file_command(output.read_text())
        assert facts["key-id"] == KEY_ID and facts["issuer-id"] == ISSUER_ID and "key-file" not in facts
        assert facts["url"].startswith("http://127.0.0.1:")
        cli = Path(sys.executable).with_name("asc-token")
        run = subprocess.run(
            [str(cli), "--print", "--api-url", facts["url"]],
            env={
                "PATH": os.environ["PATH"],
                "ASC_PRIVATE_KEY": key.pem,
                "ASC_KEY_ID": KEY_ID,
                "ASC_ISSUER_ID": ISSUER_ID,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "verified (3 apps visible" in run.stderr
        assert key.decode(run.stdout.strip())["iss"] == ISSUER_ID
    finally:
        server.terminate()
        server.wait(timeout=10)
