"""write-key-files / export-env: the key as Apple's tools read it, private, and only when asked.

In process; one form (base64) goes through the runner, for the key-files promise of docs/apple-tools.md."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Callable, Dict

import pytest
from cryptography.hazmat.primitives import serialization

from .conftest import individual_inputs, team_inputs
from .runner import ISSUER_ID, KEY_ID, KeyMaterial, Result, assert_no_secrets, run_action_in_process, run_entrypoint

FORMS = {
    "base64": lambda k: k.base64_of_file,
    "escaped": lambda k: k.pem.replace("\n", "\\n"),
    "sec1": lambda k: k.sec1,
}


def _inputs(key_text: str, **extra: str) -> Dict[str, str]:
    return {"private-key": key_text, "key-id": KEY_ID, "issuer-id": ISSUER_ID, "verify": "false", **extra}


RUN: Dict[str, Callable[[Path, Dict[str, str]], Result]] = {
    "base64": run_entrypoint,
    "escaped": run_action_in_process,
    "sec1": run_action_in_process,
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_writes_key_files_and_exports_env(tmp_path: Path, key: KeyMaterial, form: str) -> None:
    result = RUN[form](tmp_path, _inputs(FORMS[form](key), **{"write-key-files": "true", "export-env": "true"}))
    assert result.returncode == 0, result.log
    folder = tmp_path / "temp" / "private_keys"
    key_path = folder / f"AuthKey_{KEY_ID}.p8"
    json_path = folder / f"fastlane_api_key_{KEY_ID}.json"
    assert result.outputs["key-path"] == str(key_path)
    assert result.outputs["api-key-json-path"] == str(json_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted([key_path.name, json_path.name])
    if os.name != "nt":
        assert _mode(folder) == 0o700
        assert _mode(key_path) == 0o600 and _mode(json_path) == 0o600

    # The file is Apple's .p8 form (PKCS#8 PEM) of the same key, whatever form the secret had.
    written = key_path.read_text()
    assert written == key.pem
    loaded = serialization.load_pem_private_key(written.encode(), password=None)
    assert loaded.public_key().public_numbers() == key.key.public_key().public_numbers()  # type: ignore[union-attr]

    fastlane = json.loads(json_path.read_text())
    assert fastlane == {"key_id": KEY_ID, "issuer_id": ISSUER_ID, "key": key.pem, "duration": 1200, "in_house": False}

    assert result.env_file == {
        "API_PRIVATE_KEYS_DIR": str(folder),
        "APP_STORE_CONNECT_API_KEY_PATH": str(json_path),
        "ASC_KEY_ID": KEY_ID,
        "ASC_ISSUER_ID": ISSUER_ID,
        "ASC_PRIVATE_KEY_PATH": str(key_path),
        "ASC_KEY_TYPE": "team",
        "ASC_API_URL": "https://api.appstoreconnect.apple.com",
        "ASC_API": "app-store-connect",
    }
    assert_no_secrets(result, key.secret_fragments())  # GITHUB_ENV included
    assert result.outputs["token"] not in "\n".join(result.env_file.values())


def test_a_default_run_writes_nothing(tmp_path: Path, key: KeyMaterial) -> None:
    result = run_action_in_process(tmp_path, team_inputs(key))
    assert result.returncode == 0, result.log
    assert list((tmp_path / "temp").iterdir()) == []
    assert result.env_file == {}
    assert "key-path" not in result.outputs


def test_export_token_is_explicit(tmp_path: Path, key: KeyMaterial) -> None:
    result = run_action_in_process(tmp_path, team_inputs(key, export_token="true"))
    assert result.returncode == 0, result.log
    assert result.env_file == {"ASC_TOKEN": result.outputs["token"]}


def test_export_env_needs_write_key_files(tmp_path: Path, key: KeyMaterial) -> None:
    result = run_action_in_process(tmp_path, team_inputs(key, export_env="true"))
    assert result.returncode == 2
    assert "`export-env` is true but `write-key-files` is not" in result.errors()[0]
    assert list((tmp_path / "temp").iterdir()) == []


def test_existing_file_is_replaced_not_appended(tmp_path: Path, key: KeyMaterial) -> None:
    folder = tmp_path / "temp" / "private_keys"
    folder.mkdir(parents=True)
    stale = folder / f"AuthKey_{KEY_ID}.p8"
    stale.write_text("stale key from an earlier step\n" * 20)
    os.chmod(stale, 0o644)
    result = run_action_in_process(tmp_path, team_inputs(key, private_key=key.base64_of_file, write_key_files="true"))
    assert result.returncode == 0, result.log
    assert stale.read_text() == key.pem
    if os.name != "nt":
        assert _mode(stale) == 0o600
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp")]


def test_individual_key_files(tmp_path: Path, key: KeyMaterial) -> None:
    result = run_action_in_process(tmp_path, individual_inputs(key, write_key_files="true", export_env="true"))
    assert result.returncode == 0, result.log
    fastlane = json.loads(Path(result.outputs["api-key-json-path"]).read_text())
    assert "issuer_id" not in fastlane
    assert "ASC_ISSUER_ID" not in result.env_file
    assert "::notice title=Individual key files::" in result.stdout


def test_without_runner_temp(tmp_path: Path, key: KeyMaterial) -> None:
    result = run_action_in_process(
        tmp_path, team_inputs(key, write_key_files="true"), extra_env={"RUNNER_TEMP": str(tmp_path / "absent")}
    )
    assert result.returncode == 1
    assert "RUNNER_TEMP" in result.errors()[0]
    assert not (tmp_path / "absent").exists()
