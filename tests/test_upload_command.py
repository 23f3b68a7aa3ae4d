"""``asc-token upload``: a build through the stand-in's Build Uploads API and its object storage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from devtools.standin import AppStoreConnectStandIn

from .builds import INFO, make_ipa
from .runner import KeyMaterial, Run, assert_no_secrets, invoke, one_error, settings

DEMO_BUNDLE_ID = "com.example.demo"


def ipa(folder: Path, size: int = 3 * 1024 * 1024, **changes: Any) -> Path:
    """An IPA for the stand-in's demo app, padded with incompressible bytes to about ``size``."""
    info: Dict[str, Any] = {**INFO, "CFBundleIdentifier": DEMO_BUNDLE_ID, **changes}
    return make_ipa(folder, {k: v for k, v in info.items() if v is not None}, padding=size)


def upload(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, *args: str, **named: str) -> Run:
    slept: List[float] = []
    return invoke("asc-token upload", tmp_path, settings(key, standin=api, **named), list(args), sleep=slept.append)


@pytest.fixture
def small_parts(api: AppStoreConnectStandIn) -> AppStoreConnectStandIn:
    api.uploads.part_size = 512 * 1024
    return api


def test_an_ipa_is_uploaded_and_processed(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    api = small_parts
    api.uploads.shuffle_operations = True
    path = ipa(tmp_path)
    run = upload(tmp_path, key, api, str(path), "--wait")
    assert run.returncode == 0, run.log
    shown = json.loads(run.stdout)
    upload_id = shown["buildUpload"]["id"]
    assert shown["build"]["processingState"] == "VALID" and shown["build"]["id"]
    key_of = api.uploads.files[shown["buildUploadFile"]["id"]].storage_key
    assert api.storage.assembled(key_of) == path.read_bytes(), "the bytes stored are the file's, byte for byte"
    assert not api.storage.credentials_seen(), "no credential ever reaches object storage"
    assert upload_id not in api.uploads.deleted_build_uploads
    assert_no_secrets(run, key.secret_fragments(), key=key)


def test_a_duplicate_build_number_is_explained(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    path = ipa(tmp_path)
    assert upload(tmp_path, key, small_parts, str(path)).returncode == 0
    run = upload(tmp_path, key, small_parts, str(path))
    assert run.returncode == 1
    error = one_error(run)
    assert "build 42 of version 1.4.0" in error and "CFBundleVersion" in error, error
    assert run.stdout == "", "no build upload was created, so nothing is printed"
