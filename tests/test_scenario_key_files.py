"""write-key-files / export-env: the key as Apple's tools read it, private, and only when asked.

In process; one form (base64) goes through the runner, for the key-files promise of docs/apple-tools.md."""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest
from cryptography.hazmat.primitives import serialization

from asc_token import secret_files
from asc_token.errors import KeyFilesError
from asc_token.records import Credentials, KeyFiles, KeySource
from asc_token.world import Io

from .runner import (
    IN_PROCESS,
    ISSUER_ID,
    KEY_ID,
    PROCESS,
    KeyMaterial,
    Mode,
    assert_no_secrets,
    invoke,
    needs_cli,
    one_error,
    posix_only,
    settings,
)

FORMS = {
    "base64": lambda k: k.base64_of_file,
    "escaped": lambda k: k.pem.replace("\n", "\\n"),
    "sec1": lambda k: k.sec1,
}


MODE: Dict[str, Mode] = {"base64": PROCESS, "escaped": IN_PROCESS, "sec1": IN_PROCESS}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_writes_key_files_and_exports_env(tmp_path: Path, key: KeyMaterial, form: str) -> None:
    named = settings(key, private_key=FORMS[form](key), write_key_files="true", export_env="true")
    result = invoke("action", tmp_path, named, mode=MODE[form])
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
    result = invoke("action", tmp_path, settings(key))
    assert result.returncode == 0, result.log
    assert list((tmp_path / "temp").iterdir()) == []
    assert result.env_file == {}
    assert "key-path" not in result.outputs


def test_export_token_is_explicit(tmp_path: Path, key: KeyMaterial) -> None:
    result = invoke("action", tmp_path, settings(key, export_token="true"))
    assert result.returncode == 0, result.log
    assert result.env_file == {"ASC_TOKEN": result.outputs["token"]}


def test_export_env_needs_write_key_files(tmp_path: Path, key: KeyMaterial) -> None:
    result = invoke("action", tmp_path, settings(key, export_env="true"))
    assert result.returncode == 2
    assert "`export-env` is true but `write-key-files` is not" in result.errors()[0]
    assert list((tmp_path / "temp").iterdir()) == []


def test_existing_file_is_replaced_not_appended(tmp_path: Path, key: KeyMaterial) -> None:
    folder = tmp_path / "temp" / "private_keys"
    folder.mkdir(parents=True)
    stale = folder / f"AuthKey_{KEY_ID}.p8"
    stale.write_text("stale key from an earlier step\n" * 20)
    os.chmod(stale, 0o644)
    result = invoke("action", tmp_path, settings(key, private_key=key.base64_of_file, write_key_files="true"))
    assert result.returncode == 0, result.log
    assert stale.read_text() == key.pem
    if os.name != "nt":
        assert _mode(stale) == 0o600
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp")]


def test_individual_key_files(tmp_path: Path, key: KeyMaterial) -> None:
    result = invoke(
        "action",
        tmp_path,
        settings(key, issuer_id=None, key_type="individual", write_key_files="true", export_env="true"),
    )
    assert result.returncode == 0, result.log
    fastlane = json.loads(Path(result.outputs["api-key-json-path"]).read_text())
    assert "issuer_id" not in fastlane
    assert "ASC_ISSUER_ID" not in result.env_file
    assert "::notice title=Individual key files::" in result.stdout


def test_without_runner_temp(tmp_path: Path, key: KeyMaterial) -> None:
    result = invoke(
        "action", tmp_path, settings(key, write_key_files="true"), env={"RUNNER_TEMP": str(tmp_path / "absent")}
    )
    assert result.returncode == 1
    assert "RUNNER_TEMP" in result.errors()[0]
    assert not (tmp_path / "absent").exists()


# --- the key folder is a real folder that only this user can write ----------------------------


def write_files(base: Path, key: KeyMaterial, world: Optional[Io] = None) -> KeyFiles:
    individual = Credentials(KEY_ID, None, "individual", 60, (), KeySource("`private-key`", key.pem))
    return secret_files.write_key_files(str(base), key.pem, individual, world or Io(env={}))


@posix_only
def test_key_folder_is_created_private(tmp_path: Path, key: KeyMaterial) -> None:
    files = write_files(tmp_path, key)
    assert stat.S_IMODE(os.lstat(files.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(files.key_path).st_mode) == 0o600


@posix_only
@pytest.mark.parametrize("target", ["folder", "dangling"])
def test_symlinked_key_folder_is_refused(tmp_path: Path, key: KeyMaterial, target: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    if target == "folder":
        elsewhere.mkdir(mode=0o755)
    temp = tmp_path / "temp"
    temp.mkdir()
    (temp / "private_keys").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(KeyFilesError, match="is a symbolic link"):
        write_files(temp, key)
    if target == "folder":
        assert list(elsewhere.iterdir()) == []
        assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755  # not chmod-ed through the link
    else:
        assert not elsewhere.exists()


@posix_only
def test_symlinked_key_folder_through_the_action(tmp_path: Path, key: KeyMaterial) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "temp").mkdir()
    (tmp_path / "temp" / "private_keys").symlink_to(elsewhere, target_is_directory=True)
    result = invoke("action", tmp_path, settings(key, write_key_files="true"), mode=PROCESS)
    assert result.returncode == 1
    assert "symbolic link" in one_error(result)
    assert list(elsewhere.iterdir()) == [] and "key-path" not in result.outputs


@posix_only
def test_foreign_owned_key_folder_is_refused(tmp_path: Path, key: KeyMaterial) -> None:
    (tmp_path / "private_keys").mkdir(mode=0o700)
    another_user = Io(env={}, uid=os.lstat(tmp_path).st_uid + 1)  # the folder as they see it
    with pytest.raises(KeyFilesError, match="belongs to another user"):
        write_files(tmp_path, key, another_user)


@posix_only
def test_writable_by_others_key_folder_is_refused(tmp_path: Path, key: KeyMaterial) -> None:
    folder = tmp_path / "private_keys"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(KeyFilesError, match="can be written by other users"):
        write_files(tmp_path, key)
    assert list(folder.iterdir()) == []


# --- key files from the container image would be lost --------------------------


@pytest.mark.parametrize(
    ("env", "in_container", "code_path", "refused"),
    [
        # GitHub's container step: the host's RUNNER_TEMP (not mounted) or act's own /tmp.
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/home/runner/work/_temp"}, True, "/opt/asc-token-action/src/asc_token/secret_files.py", True),
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/tmp"}, True, "/opt/asc-token-action/src/asc_token/secret_files.py", True),
        # The composite action in a `container:` job: the job container's mounted temp.
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/__w/_temp"}, True, "/__w/_actions/org/asc-token-action/v1/src/asc_token/secret_files.py", False),
        # The composite under act: everything runs in the job container, /tmp included.
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/tmp"}, True, "/var/run/act/actions/org-asc-token-action@v1/src/asc_token/secret_files.py", False),
        # The image's own code as a `run:` step in a `container:` job that uses the image.
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/__w/_temp"}, True, "/opt/asc-token-action/src/asc_token/secret_files.py", False),
        # A runner on the host, and the image outside GitHub.
        ({"GITHUB_ACTIONS": "true", "RUNNER_TEMP": "/home/runner/work/_temp"}, False, "/home/runner/work/_actions/x/src/asc_token/secret_files.py", False),
        ({"RUNNER_TEMP": "/tmp"}, True, "/opt/asc-token-action/src/asc_token/secret_files.py", False),
    ],
)  # fmt: skip
def test_is_container_action(env: Dict[str, str], in_container: bool, code_path: str, refused: bool) -> None:
    assert secret_files.is_container_action(env, in_container=in_container, code_path=code_path) is refused


def test_key_files_refused_in_the_container_image(tmp_path: Path, key: KeyMaterial) -> None:
    # act: RUNNER_TEMP exists inside the container, so writing would "succeed" into a lost folder.
    result = invoke(
        "action",
        tmp_path,
        settings(key, write_key_files="true", export_env="true"),
        env={"GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(tmp_path)},
        container_probe=lambda: (True, secret_files.IMAGE_HOME + "src/asc_token/world.py"),  # the image's install
    )
    assert result.returncode == 1
    message = one_error(result)
    assert "container image" in message and "composite action" in message
    assert not (tmp_path / "private_keys").exists() and result.env_file == {}


@needs_cli

# --- a RUNNER_TEMP that cannot hold the key files ---------------------------------------------


def test_read_only_runner_temp(tmp_path: Path, key: KeyMaterial) -> None:
    # A folder no one creates folders in, root included: sysfs on Linux, the sealed system volume on macOS.
    read_only = "/sys" if sys.platform.startswith("linux") else "/"
    result = invoke("action", tmp_path, settings(key, write_key_files="true"), env={"RUNNER_TEMP": read_only})
    assert result.returncode == 1
    assert f"could not create {os.path.join(read_only, 'private_keys')} (" in one_error(result)
    assert any(os.strerror(code) in result.stdout for code in (errno.EACCES, errno.EPERM, errno.EROFS))


@posix_only
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_runner_temp_for_real(tmp_path: Path, key: KeyMaterial) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    temp.chmod(0o500)
    try:
        result = invoke("action", tmp_path, settings(key, write_key_files="true"), mode=PROCESS)
    finally:
        temp.chmod(0o700)
    assert result.returncode == 1
    assert "could not create" in one_error(result)


def test_key_folder_exists_as_a_file(tmp_path: Path, key: KeyMaterial) -> None:
    (tmp_path / "private_keys").write_text("not a folder")
    result = invoke("action", tmp_path, settings(key, write_key_files="true"), env={"RUNNER_TEMP": str(tmp_path)})
    assert result.returncode == 1
    assert "is not a folder" in one_error(result)
    assert (tmp_path / "private_keys").read_text() == "not a folder"


def test_key_files_are_both_written_or_neither(tmp_path: Path, key: KeyMaterial) -> None:
    folder = tmp_path / "private_keys"
    folder.mkdir(mode=0o700)
    (folder / f"fastlane_api_key_{KEY_ID}.json").mkdir()  # the JSON file cannot be renamed over it
    result = invoke("action", tmp_path, settings(key, write_key_files="true"), env={"RUNNER_TEMP": str(tmp_path)})
    assert result.returncode == 1
    assert f"could not write {folder / f'fastlane_api_key_{KEY_ID}.json'} (" in one_error(result)
    assert [path.name for path in folder.iterdir()] == [f"fastlane_api_key_{KEY_ID}.json"]  # the key was removed
