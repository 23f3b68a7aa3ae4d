"""``asc-token api PATH --input RESERVATION.json --upload-file FILE``: an asset reserved, sent to the
stand-in's object storage part by part, committed with its type's checksum, and printed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from devtools.standin import AppStoreConnectStandIn

from .runner import FakeTime, KeyMaterial, Run, assert_no_secrets, invoke, needs_cli, one_error, settings, spelled_for
from .test_api_command import API_DOC, bash, doc_section, needs_jq, shell_env

PART_SIZE = 64 * 1024
SCREENSHOTS = "/v1/appScreenshots"


@pytest.fixture
def small_parts(api: AppStoreConnectStandIn) -> AppStoreConnectStandIn:
    api.uploads.part_size = PART_SIZE
    api.uploads.shuffle_operations = True  # the parts arrive out of order
    return api


def asset(folder: Path, size: int = 5 * PART_SIZE + 123, name: str = "screenshot.png") -> Path:
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


def reservation(
    folder: Path,
    type_name: str,
    file: Path,
    *,
    relationship: Optional[str] = None,
    **attributes: Any,
) -> Path:
    """RESERVATION.json for ``file``: its name and size unless ``attributes`` say otherwise."""
    data: Dict[str, Any] = {
        "type": type_name,
        "attributes": {"fileName": file.name, "fileSize": file.stat().st_size, **attributes},
    }
    data["attributes"] = {name: value for name, value in data["attributes"].items() if value is not None}
    if relationship:
        data["relationships"] = {relationship: {"data": {"type": f"{relationship}s", "id": "set-1"}}}
    path = folder / "reservation.json"
    path.write_text(json.dumps({"data": data}))
    return path


def api_upload(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, *args: str) -> Run:
    return invoke("asc-token api", tmp_path, settings(key, standin=api), list(args), sleep=FakeTime().sleep)


def screenshot_upload(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, file: Path) -> Run:
    body = reservation(tmp_path, "appScreenshots", file, relationship="appScreenshotSet")
    return api_upload(tmp_path, key, api, SCREENSHOTS, "--input", str(body), "--upload-file", str(file))


def test_a_screenshot_is_reserved_sent_and_committed_with_its_md5(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    api, file = small_parts, asset(tmp_path)
    run = screenshot_upload(tmp_path, key, api, file)
    assert run.returncode == 0, run.log
    printed = run.json()["data"]  # stdout is the committed resource, and only it
    assert printed["type"] == "appScreenshots"
    stored = api.uploads.files[printed["id"]]
    assert api.storage.assembled(stored.storage_key) == file.read_bytes(), "byte for byte, parts out of order"
    assert stored.committed == {"sourceFileChecksum": hashlib.md5(file.read_bytes(), usedforsecurity=False).hexdigest()}
    assert printed["attributes"]["assetDeliveryState"]["state"] == "UPLOAD_COMPLETE"
    assert "Uploaded screenshot.png" in run.stderr, "progress goes to stderr"
    assert not api.storage.credentials_seen(), "no credential ever reaches object storage"
    assert_no_secrets(run, [*key.secret_fragments(), *api.tokens_seen()], key=key)


def test_a_type_committed_with_md5_checksums(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    api, file = small_parts, asset(tmp_path, name="pack.aar")
    body = reservation(
        tmp_path, "backgroundAssetUploadFiles", file, relationship="backgroundAssetVersion", assetType="ASSET"
    )
    run = api_upload(
        tmp_path, key, api, "/v1/backgroundAssetUploadFiles", "--input", str(body), "--upload-file", str(file)
    )
    assert run.returncode == 0, run.log
    stored = api.uploads.files[run.json()["data"]["id"]]
    digest = {"hash": hashlib.md5(file.read_bytes()).hexdigest(), "algorithm": "MD5"}  # noqa: S324 - Apple's checksum
    assert stored.committed == {"sourceFileChecksums": {"file": digest}}
    assert api.storage.assembled(stored.storage_key) == file.read_bytes()


def test_a_type_committed_without_a_checksum(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    api, file = small_parts, asset(tmp_path, size=PART_SIZE - 1, name="image.png")
    body = reservation(tmp_path, "subscriptionImages", file, relationship="version")
    run = api_upload(tmp_path, key, api, "/v2/subscriptionImages", "--input", str(body), "--upload-file", str(file))
    assert run.returncode == 0, run.log
    stored = api.uploads.files[run.json()["data"]["id"]]
    assert stored.committed == {}, "uploaded: true alone"
    assert api.storage.assembled(stored.storage_key) == file.read_bytes()


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"fileSize": 12}, "set fileSize to"),
        ({"fileSize": None}, "no data.attributes.fileSize: set it to"),
        ({"fileName": None}, "no data.attributes.fileName"),
    ],
)
def test_a_reservation_that_does_not_describe_the_file_is_refused_before_anything_is_sent(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, changes: Dict[str, Any], said: str
) -> None:
    file = asset(tmp_path, size=1000)
    body = reservation(tmp_path, "appScreenshots", file, relationship="appScreenshotSet", **changes)
    run = api_upload(tmp_path, key, api, SCREENSHOTS, "--input", str(body), "--upload-file", str(file))
    assert run.returncode == 2, run.log
    error = one_error(run)
    assert said in error, error
    if "fileSize" in changes:
        assert "1000" in error, "the right size is named"
    assert api.requests == [] and api.storage.received == [] and api.uploads.files == {}


@pytest.mark.parametrize(
    ("path", "extra", "said"),
    [
        ("/v1/apps", [], "/v1/appScreenshots"),
        ("/v1/buildUploads", [], "asc-token upload"),
        (SCREENSHOTS, ["--method", "GET"], "--method GET"),
        (SCREENSHOTS, ["--paginate"], "--paginate"),
        (SCREENSHOTS, ["--output-file", "out.json"], "--output-file"),
    ],
)
def test_upload_file_with_the_wrong_path_or_flags_is_refused(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, path: str, extra: List[str], said: str
) -> None:
    file = asset(tmp_path, size=1000)
    body = reservation(tmp_path, "appScreenshots", file, relationship="appScreenshotSet")
    run = api_upload(tmp_path, key, api, path, "--input", str(body), "--upload-file", str(file), *extra)
    assert run.returncode == 2, run.log
    assert said in one_error(run)
    assert api.requests == [] and api.storage.received == []


@pytest.mark.parametrize("problem", ["missing", "folder", "pipe", "empty", "no input"])
def test_an_unusable_upload_file_or_no_reservation_is_refused(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, problem: str
) -> None:
    file = asset(tmp_path, size=1000)
    body = reservation(tmp_path, "appScreenshots", file, relationship="appScreenshotSet")
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "empty.png").write_bytes(b"")
    given = {
        "missing": str(tmp_path / "absent.png"),
        "folder": str(tmp_path),
        "pipe": str(tmp_path / "pipe.png"),
        "empty": str(tmp_path / "empty.png"),
    }.get(problem, str(file))
    extra = [] if problem == "no input" else ["--input", str(body)]
    run = api_upload(tmp_path, key, api, SCREENSHOTS, *extra, "--upload-file", given)
    assert run.returncode == 2, run.log
    if problem == "no input":  # both ways to give the reservation are named
        assert "--input RESERVATION.json" in one_error(run) and "-f/-F fields" in one_error(run)
    else:
        assert "--upload-file" in one_error(run)
    assert api.requests == []


def test_an_unusable_reserved_id_is_never_put_into_a_path(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    small_parts.uploads.issued_ids = ["../../v1/apps/1000000000"]
    run = screenshot_upload(tmp_path, key, small_parts, asset(tmp_path))
    assert run.returncode == 1
    assert "not an ID" in one_error(run)
    assert [(call.method, call.path) for call in small_parts.calls] == [("POST", SCREENSHOTS)]


def test_a_part_that_fails_once_is_sent_again(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    api, file = small_parts, asset(tmp_path)
    api.storage.fail(2, status=503)
    api.storage.reset(4)
    run = screenshot_upload(tmp_path, key, api, file)
    assert run.returncode == 0, run.log
    stored = api.uploads.files[run.json()["data"]["id"]]
    assert api.storage.assembled(stored.storage_key) == file.read_bytes()
    assert run.stderr.count("retrying in") == 2, run.stderr


def test_a_failure_after_the_reservation_names_it_and_how_to_delete_it(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    api, file = small_parts, asset(tmp_path)
    api.storage.fail(3, status=400)  # a refusal another attempt would not change
    run = screenshot_upload(tmp_path, key, api, file)
    assert run.returncode == 1, run.log
    [reserved] = api.uploads.files.values()
    error = one_error(run)
    assert f"asc-token api -X DELETE /v1/appScreenshots/{reserved.id}" in error, error
    assert reserved.state == "AWAITING_UPLOAD", "not committed"
    assert run.stdout == ""
    assert_no_secrets(run, [*key.secret_fragments(), *api.tokens_seen()], key=key)


@needs_cli
@needs_jq
def test_the_docs_example(tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn) -> None:
    """docs/api.md's --upload-file example, run as written."""
    example = doc_section(API_DOC, "## Upload a file").split("```sh\n")[1].split("```", 1)[0]
    file = asset(tmp_path, name="home.png")
    env = {**spelled_for("asc-token api", settings(key, standin=small_parts)), "SET_ID": "set-1"}
    done = bash(example, shell_env(env), tmp_path)
    assert done.returncode == 0, done.stderr
    stored = small_parts.uploads.files[done.stdout.strip()]
    assert small_parts.storage.assembled(stored.storage_key) == file.read_bytes()
    assert stored.relationships == {"appScreenshotSet": {"type": "appScreenshotSets", "id": "set-1"}}


def test_a_refused_reservation_is_explained_and_nothing_is_sent(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    file = asset(tmp_path, size=1000)
    body = reservation(tmp_path, "appScreenshots", file)  # no appScreenshotSet: Apple answers 409
    run = api_upload(tmp_path, key, api, SCREENSHOTS, "--input", str(body), "--upload-file", str(file))
    assert run.returncode == 1, run.log
    assert "appScreenshotSet" in run.stderr and json.loads(run.stdout)["errors"][0]["status"] == "409"
    assert api.storage.received == [] and api.uploads.files == {}


def test_expired_operations_are_fetched_again_once(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    api, file = small_parts, asset(tmp_path)
    api.uploads.reservation_lifetime = -1.0  # the reservation's links have expired on arrival
    run = screenshot_upload(tmp_path, key, api, file)
    assert run.returncode == 0, run.log
    printed = run.json()["data"]
    assert api.storage.assembled(api.uploads.files[printed["id"]].storage_key) == file.read_bytes()
    assert [call.method for call in api.calls] == ["POST", "GET", "PATCH"], "one GET for fresh operations"


def test_a_scoped_token_cannot_upload(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """A scope cannot name the commit's path (its id comes with the reservation): refused before anything is sent."""
    file = asset(tmp_path, size=1000)
    body = reservation(tmp_path, "appScreenshots", file, relationship="appScreenshotSet")
    run = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api, scope=f"POST {SCREENSHOTS}"),
        [SCREENSHOTS, "--input", str(body), "--upload-file", str(file)],
    )
    assert run.returncode == 2, run.log
    assert "--scope" in one_error(run) or "ASC_SCOPE" in one_error(run)
    assert api.requests == []
