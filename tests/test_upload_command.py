"""``asc-token upload``: a build through the stand-in's Build Uploads API and its object storage.

In this process, with ``sleep`` and ``monotonic`` injected (:class:`FakeTime`), so nothing waits; in a
process only for the signals.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from asc_token.dispatch import Terminated
from devtools.standin import DEMO_APP_ID, DEMO_BUNDLE_ID, AppStoreConnectStandIn, Fault

from .builds import demo_ipa, make_ipa, with_info, write_zip
from .runner import (
    ISSUER_ID,
    KEY_ID,
    MASK_COMMANDS,
    PROCESS,
    FakeTime,
    KeyMaterial,
    OnFds,
    Run,
    assert_no_secrets,
    detection_env,
    invoke,
    needs_cli,
    one_error,
    settings,
)

WATCH_BUNDLE_ID, WATCH_APP_ID = "com.example.demo.watch", "1000000001"


def ipa(folder: Path, size: int = 3 * 1024 * 1024, **changes: Any) -> Path:
    return demo_ipa(folder, size, **changes)


def pkg(folder: Path, size: int = 1024 * 1024) -> Path:
    path = folder / "App.pkg"
    path.write_bytes(b"xar!" + os.urandom(size))
    return path


def upload(
    tmp_path: Path,
    key: KeyMaterial,
    api: AppStoreConnectStandIn,
    *args: str,
    time_: Optional[FakeTime] = None,
    **options: Any,
) -> Run:
    """``asc-token upload ARGS`` against ``api``: never waits, and never shows the key or a token.
    ``options``: invoke()'s, over ``time_``'s monotonic and sleep (a test's own ``sleep``, ``clock``, ``env``)."""
    fake = time_ or FakeTime()
    timing: Dict[str, Any] = {"monotonic": fake.monotonic, "sleep": fake.sleep}
    run = invoke("asc-token upload", tmp_path, settings(key, standin=api), list(args), **{**timing, **options})
    no_secrets(run, key, api)
    return run


def no_secrets(run: Run, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    assert_no_secrets(run, key.secret_fragments(), key=key)
    visible = "\n".join(line for line in run.log.splitlines() if not line.startswith(MASK_COMMANDS))
    for token in api.tokens_seen():
        assert token not in visible, "a token reached stdout or stderr"


def asked(api: AppStoreConnectStandIn, method: str, prefix: str) -> List[str]:
    return [call.path for call in api.calls if call.method == method and call.path.startswith(prefix)]


@pytest.fixture
def small_parts(api: AppStoreConnectStandIn) -> AppStoreConnectStandIn:
    api.uploads.part_size = 512 * 1024
    return api


# --- the build's facts ---------------------------------------------------------------------------


def test_an_ipa_is_uploaded_and_processed(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    api = small_parts
    api.uploads.shuffle_operations = True
    path = ipa(tmp_path)
    run = upload(tmp_path, key, api, str(path), "--wait")
    assert run.returncode == 0, run.log
    document = run.json()
    upload_id = document["buildUpload"]["id"]
    assert document["build"]["processingState"] == "VALID" and document["build"]["id"]
    key_of = api.uploads.files[document["buildUploadFile"]["id"]].storage_key
    assert api.storage.assembled(key_of) == path.read_bytes(), "the bytes stored are the file's, byte for byte"
    assert not api.storage.credentials_seen(), "no credential ever reaches object storage"
    assert upload_id not in api.uploads.deleted_build_uploads
    assert re.search(r"^Uploaded App\.ipa: 3\.\d MB in ", run.stderr, re.M), "a last progress line"


def test_the_ipa_says_what_is_uploaded(tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn) -> None:
    path = ipa(tmp_path)
    run = upload(tmp_path, key, small_parts, str(path))
    assert run.returncode == 0, run.log
    document = run.json()
    created = small_parts.uploads.build_uploads[document["buildUpload"]["id"]]
    assert (created.app_id, created.version, created.build_number, created.platform) == (
        DEMO_APP_ID,
        "1.4.0",
        "42",
        "IOS",
    )
    file = small_parts.uploads.files[document["buildUploadFile"]["id"]]
    assert file.attributes == {
        "assetType": "ASSET",
        "fileName": "App.ipa",
        "fileSize": path.stat().st_size,
        "uti": "com.apple.ipa",
    }


def test_the_checksum_is_the_files_sha_256(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    path = ipa(tmp_path)
    run = upload(tmp_path, key, small_parts, str(path))
    assert run.returncode == 0, run.log
    file = small_parts.uploads.files[run.json()["buildUploadFile"]["id"]]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file.committed["sourceFileChecksums"] == {"file": {"hash": digest, "algorithm": "SHA_256"}}


@pytest.mark.parametrize(
    ("flag", "value", "file_said"),
    [
        ("--version", "2.0.0", "1.4.0"),
        ("--build-number", "77", "42"),
        ("--platform", "TV_OS", "IOS"),
        ("--bundle-id", WATCH_BUNDLE_ID, DEMO_BUNDLE_ID),
    ],
)
def test_a_flag_wins_over_the_ipa_and_the_log_names_both(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, flag: str, value: str, file_said: str
) -> None:
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), flag, value)
    assert run.returncode == 0, run.log
    note = next(line for line in run.stderr.splitlines() if line.startswith(flag))
    assert value in note and file_said in note, note
    created = api.uploads.build_uploads[run.json()["buildUpload"]["id"]]
    sent = {
        "--version": created.version,
        "--build-number": created.build_number,
        "--platform": created.platform,
        "--bundle-id": created.app_id,
    }[flag]
    assert sent == (WATCH_APP_ID if flag == "--bundle-id" else value)


def test_a_pkg_is_uploaded_for_macos(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    path = pkg(tmp_path)
    args = ["--version", "3.1", "--build-number", "310", "--bundle-id", DEMO_BUNDLE_ID]
    run = upload(tmp_path, key, api, str(path), *args)
    assert run.returncode == 0, run.log
    document = run.json()
    created = api.uploads.build_uploads[document["buildUpload"]["id"]]
    assert (created.platform, created.version, created.build_number) == ("MAC_OS", "3.1", "310")
    assert api.uploads.files[document["buildUploadFile"]["id"]].attributes["uti"] == "com.apple.pkg"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--build-number", "310", "--bundle-id", DEMO_BUNDLE_ID], ["--version"]),
        (["--version", "3.1", "--bundle-id", DEMO_BUNDLE_ID], ["--build-number"]),
        (["--version", "3.1", "--build-number", "310"], ["--bundle-id", "--app-id"]),
    ],
)
def test_a_pkg_needs_its_facts_as_flags(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, args: List[str], named: List[str]
) -> None:
    run = upload(tmp_path, key, api, str(pkg(tmp_path)), *args)
    assert run.returncode == 2
    error = one_error(run)
    assert all(flag in error for flag in named), error
    assert run.stdout == "" and api.calls == [], "nothing is asked before the settings are right"


def test_a_pkg_with_an_app_id_needs_no_bundle_id(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    args = ["--version", "3.1", "--build-number", "310", "--app-id", DEMO_APP_ID]
    run = upload(tmp_path, key, api, str(pkg(tmp_path)), *args)
    assert run.returncode == 0, run.log
    assert not asked(api, "GET", "/v1/apps"), "--app-id: the app is not looked up"


def test_the_app_id_skips_the_app_lookup(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), "--app-id", WATCH_APP_ID)
    assert run.returncode == 0, run.log
    assert not asked(api, "GET", "/v1/apps")
    assert api.uploads.build_uploads[run.json()["buildUpload"]["id"]].app_id == WATCH_APP_ID


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"DTPlatformName": None, "CFBundleSupportedPlatforms": None}, "--platform"),
        ({"DTPlatformName": "iphonesimulator"}, "simulator"),
        ({"DTPlatformName": None, "CFBundleSupportedPlatforms": ["XRSimulator"]}, "simulator"),
    ],
)
def test_an_ipa_without_a_usable_platform_is_refused(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, changes: Dict[str, Any], named: str
) -> None:
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000, **changes)))
    assert run.returncode == 2
    assert named in one_error(run)
    assert run.stdout == "" and api.calls == []


def test_a_platform_flag_stands_in_for_a_missing_one(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    path = ipa(tmp_path, size=1000, DTPlatformName=None, CFBundleSupportedPlatforms=None)
    run = upload(tmp_path, key, api, str(path), "--platform", "VISION_OS")
    assert run.returncode == 0, run.log
    assert api.uploads.build_uploads[run.json()["buildUpload"]["id"]].platform == "VISION_OS"


def test_a_file_that_is_not_a_zip_is_refused_before_any_request(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    path = tmp_path / "App.ipa"
    path.write_bytes(b"not a zip at all" * 100)
    run = upload(tmp_path, key, api, str(path))
    assert run.returncode == 2
    assert "zip" in one_error(run)
    assert run.stdout == "" and api.calls == []


def test_an_ipa_without_an_info_plist_is_refused_before_any_request(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    path = write_zip(tmp_path / "App.ipa", [("Payload/App.app/App", b"\xcf\xfa\xed\xfe")])
    run = upload(tmp_path, key, api, str(path))
    assert run.returncode == 2
    assert "Info.plist" in one_error(run)
    assert run.stdout == "" and api.calls == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--parallel", "0"], "--parallel"),
        (["--parallel", "17"], "--parallel"),
        (["--parallel", "four"], "--parallel"),
        (["--parallel", "\u00b2"], "--parallel"),  # str.isdigit says yes, int() no: never an internal error
        (["--wait", "--wait-timeout", "0"], "--wait-timeout"),
        (["--wait", "--wait-timeout", "soon"], "--wait-timeout"),
        (["--app-id", "com.example.demo"], "--app-id"),
        (["--app-id", "\u0661\u0662\u0663"], "--app-id"),  # Arabic-Indic digits: not Apple's numeric ID
    ],
)
def test_a_bad_setting_is_exit_2_before_any_request(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, args: List[str], named: str
) -> None:
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), *args)
    assert run.returncode == 2, run.log
    assert named in one_error(run)
    assert run.stdout == "" and api.calls == []


def test_the_enterprise_api_has_no_build_uploads(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), "--api", "enterprise")
    assert run.returncode == 2, run.log
    assert "--api" in one_error(run) and "build uploads" in one_error(run)
    assert run.stdout == "" and api.calls == []


def test_an_unknown_bundle_id_names_the_flags(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), "--bundle-id", "com.example.nothing")
    assert run.returncode == 1
    error = one_error(run)
    assert "com.example.nothing" in error and "--bundle-id" in error and "--app-id" in error, error
    assert run.stdout == "" and not api.uploads.build_uploads


# --- the parts -----------------------------------------------------------------------------------


def test_part_faults_are_retried(tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn) -> None:
    storage = small_parts.storage
    storage.fail(1, status=500)
    storage.fail(2, status=503, times=2)
    storage.fail(3, status=429, retry_after=1)
    storage.reset(4)
    path = ipa(tmp_path)
    time_ = FakeTime()
    run = upload(tmp_path, key, small_parts, str(path), time_=time_)
    assert run.returncode == 0, run.log
    statuses = {(request.part, request.status) for request in storage.received}
    assert {(1, 500), (2, 503), (3, 429), (4, 0)} <= statuses
    key_of = small_parts.uploads.files[run.json()["buildUploadFile"]["id"]].storage_key
    assert storage.assembled(key_of) == path.read_bytes()
    assert 1 in time_.slept, "429's Retry-After is honoured (with the injected sleep)"


def test_parts_that_arrive_out_of_order_are_reassembled(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    small_parts.uploads.shuffle_operations = True  # Apple's list out of order too
    small_parts.storage.fail(1, status=503, times=3)  # the first part arrives after others
    path = ipa(tmp_path)
    run = upload(tmp_path, key, small_parts, str(path), "--parallel", "2")
    assert run.returncode == 0, run.log
    key_of = small_parts.uploads.files[run.json()["buildUploadFile"]["id"]].storage_key
    arrived = small_parts.storage.parts_received(key_of)
    assert arrived.index(1) > arrived.index(2), arrived
    assert small_parts.storage.assembled(key_of) == path.read_bytes()


def test_expired_operations_are_renewed_once(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    small_parts.uploads.reservation_lifetime = -60.0  # the reservation's operations expired on arrival
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)))
    assert run.returncode == 0, run.log
    file_id = run.json()["buildUploadFile"]["id"]
    calls = [(call.method, call.path) for call in small_parts.calls]
    before_commit = calls[: calls.index(("PATCH", f"/v1/buildUploadFiles/{file_id}"))]
    assert before_commit.count(("GET", f"/v1/buildUploadFiles/{file_id}")) == 1
    assert all(request.status == 200 for request in small_parts.storage.received), "no expired link was used"


def test_operations_that_stay_expired_fail_the_upload_and_delete_it(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    small_parts.uploads.reservation_lifetime = -60.0
    small_parts.uploads.operation_lifetime = -60.0
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)))
    assert run.returncode == 1
    assert "expired" in one_error(run)
    document = run.json()
    assert document["buildUpload"]["deleted"] is True
    assert document["buildUpload"]["id"] in small_parts.uploads.deleted_build_uploads
    assert not small_parts.storage.received


def test_link_expiry_follows_the_injected_clock(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    # Apple's and this machine's clocks both an hour behind the real one: the links are valid to both.
    small_parts.clock_offset_seconds = -3600.0
    clock = FakeTime()
    run = invoke(
        "asc-token upload",
        tmp_path,
        settings(key, standin=small_parts),
        [str(ipa(tmp_path))],
        clock=lambda: time.time() - 3600.0,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    assert run.returncode == 0, run.log  # judged by the real clock, every link had expired an hour ago


def test_plain_http_to_another_host_is_refused_before_any_byte(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    small_parts.uploads.operation_url_base = "http://storage.example.com"
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)))
    assert run.returncode == 1
    error = one_error(run)
    assert "http://storage.example.com" in error and "X-Amz-Signature" not in run.log, error
    upload_id = run.json()["buildUpload"]["id"]
    assert small_parts.uploads.deleted_build_uploads == [upload_id]
    assert f"Deleted build upload {upload_id}" in run.stderr
    assert not small_parts.storage.received


def test_a_failed_part_deletes_the_build_upload_and_says_so(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    small_parts.storage.fail(2, status=500, times=50)
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)))
    assert run.returncode == 1
    assert "500" in one_error(run)
    document = run.json()
    upload_id = document["buildUpload"]["id"]
    assert document["buildUpload"]["deleted"] is True
    assert small_parts.uploads.deleted_build_uploads == [upload_id]
    assert f"Deleted build upload {upload_id}" in run.stderr
    assert not asked(small_parts, "PATCH", "/v1/buildUploadFiles/"), "nothing half-sent is committed"


def test_a_file_name_cannot_become_a_workflow_command(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """The file's name is the user's, and a CI log reads "::error::" opening a line and "##vso[" anywhere."""
    named = "evil\n::error::pwned ##vso[task.setvariable variable=X]1.ipa"
    path = make_ipa(tmp_path, with_info(CFBundleIdentifier=DEMO_BUNDLE_ID), name=named)
    run = upload(tmp_path, key, api, str(path))
    assert run.returncode == 0, run.log
    logged = run.stderr.splitlines() + run.log_lines
    assert not [line for line in logged if line.startswith("::error::") or "##vso[" in line], logged
    assert any("created: evil : :error: :pwned # #vso[" in line for line in logged), logged


@pytest.mark.parametrize("hostile", ["../../v1/apps/1000000000", "..", "a/b", "", "id?x=1"])
def test_an_unusable_build_upload_id_is_never_put_into_a_path(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, hostile: str
) -> None:
    api.uploads.issued_ids = [hostile]
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), "--app-id", DEMO_APP_ID)
    assert run.returncode == 1
    assert "not an ID" in one_error(run)
    assert [call.method for call in api.calls if call.path != "/v1/buildUploads"] == [], "no request with it"


def test_an_unusable_file_id_is_refused_and_the_build_upload_deleted(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.uploads.issued_ids = ["upload-1", "../../v1/apps/1000000000"]
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), "--app-id", DEMO_APP_ID)
    assert run.returncode == 1
    assert "not an ID" in one_error(run)
    assert api.uploads.deleted_build_uploads == ["upload-1"]
    assert not [call for call in api.calls if "apps" in call.path or ".." in call.path]


def test_a_refused_reservation_deletes_the_build_upload(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    injected: List[str] = []

    def refuse_the_next_request(token: str) -> None:  # the build upload's POST: its reservation is refused
        if not injected:
            injected.append(token)
            api.inject(Fault("status", status=422))

    api.on_token = refuse_the_next_request
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), "--app-id", DEMO_APP_ID)
    assert run.returncode == 1
    assert "422" in one_error(run)
    document = run.json()
    assert document["buildUpload"]["deleted"] is True and document["buildUploadFile"]["id"] is None
    assert api.uploads.deleted_build_uploads == [document["buildUpload"]["id"]]


# --- delivery and processing -----------------------------------------------------------------------


def test_without_wait_the_upload_ends_once_delivered(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    small_parts.uploads.polls_per_state = 3
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)))
    assert run.returncode == 0, run.log
    document = run.json()
    assert document["buildUploadFile"]["assetDeliveryState"] == "COMPLETE"
    assert document["build"] == {"id": None, "processingState": None}
    assert not asked(small_parts, "GET", "/v1/buildUploads/"), "processing is not waited for"


def test_a_delivery_still_pending_after_two_minutes_is_exit_1(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    small_parts.uploads.polls_per_state = 1000
    clock = FakeTime()
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)), time_=clock)
    assert run.returncode == 1
    document = run.json()
    error = one_error(run)
    assert "still UPLOAD_COMPLETE" in error and f"/v1/buildUploadFiles/{document['buildUploadFile']['id']}" in error
    assert document["buildUploadFile"]["assetDeliveryState"] == "UPLOAD_COMPLETE"
    assert not small_parts.uploads.deleted_build_uploads, "a committed file is Apple's to finish"
    assert 120 <= clock.now <= 125


def test_a_failed_delivery_is_exit_1(tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn) -> None:
    problem = {"code": "CHECKSUM_MISMATCH", "description": "The SHA_256 checksum given does not match."}

    def spoil_commits(token: str) -> None:  # as if the bytes had changed on the way
        for file in small_parts.uploads.files.values():
            file.commit_problem = problem

    small_parts.on_token = spoil_commits
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)))
    assert run.returncode == 1
    error = one_error(run)
    assert "CHECKSUM_MISMATCH" in error and "does not match" in error, error
    document = run.json()
    assert document["buildUploadFile"]["assetDeliveryState"] == "FAILED"
    assert document["buildUpload"]["deleted"] is True, "a re-run is not refused as a duplicate"
    assert small_parts.uploads.deleted_build_uploads == [document["buildUpload"]["id"]]
    assert f"Deleted build upload {document['buildUpload']['id']}" in run.stderr


def test_processing_failed_quotes_apple_and_explains_the_duplicate(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    small_parts.uploads.processing_outcome = "FAILED"
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)), "--wait")
    assert run.returncode == 1
    error = one_error(run)
    assert "90189" in error and "Redundant Binary Upload" in error, error
    assert "CFBundleVersion" in error and "asc-token api /v1/buildUploads/" in error
    assert run.json()["buildUpload"]["state"] == "FAILED"


def test_apples_warnings_are_printed(tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn) -> None:
    small_parts.uploads.processing_warnings = [{"code": "90725", "description": "SDK version issue."}]
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)), "--wait")
    assert run.returncode == 0, run.log
    assert [line for line in run.stderr.splitlines() if "90725: SDK version issue." in line]


def test_apples_state_is_never_a_command_to_the_runner(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    small_parts.uploads.shown_state = "PROCESSING\n::warning title=pwn::x"
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)), "--wait", "--wait-timeout", "1m")
    assert run.returncode == 1
    assert not [line for line in run.stderr.splitlines() if line.startswith("::warning")], run.stderr
    assert "\n" not in run.json()["buildUpload"]["state"]


def test_an_invalid_build_is_exit_1(tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn) -> None:
    small_parts.uploads.processing_outcome = "INVALID"
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)), "--wait")
    assert run.returncode == 1
    document = run.json()
    assert document["build"]["processingState"] == "INVALID"
    assert document["build"]["id"] in one_error(run)


@pytest.mark.parametrize(
    ("timeout", "waited", "longest"),
    [(["--wait-timeout", "5m"], "5 min", 300), (["--wait-timeout", "1s"], "1 s", 1), ([], "1 h", 3600)],
)
def test_a_wait_that_runs_out_names_the_ids_and_the_call(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn, timeout: List[str], waited: str, longest: int
) -> None:
    small_parts.uploads.polls_per_state = 1000
    time_ = FakeTime()
    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)), "--wait", *timeout, time_=time_)
    assert run.returncode == 1
    error = one_error(run)
    upload_id = run.json()["buildUpload"]["id"]
    assert upload_id in error and f"asc-token api /v1/buildUploads/{upload_id}" in error, error
    assert f"after {waited} " in error, error
    processing = time_.slept[time_.slept.index(10.0) :] if 10.0 in time_.slept else []
    assert sum(processing) <= longest, "the wait never outlasts --wait-timeout"
    assert upload_id not in small_parts.uploads.deleted_build_uploads, "a committed upload is Apple's to process"


def test_processing_is_polled_every_10_s_then_every_30_s(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    small_parts.uploads.polls_per_state = 12  # the build upload and then the build: 12 polls each
    time_ = FakeTime(marks=True)
    path = ipa(tmp_path)
    run = invoke(
        "asc-token upload",
        tmp_path,
        settings(key, standin=small_parts),
        [str(path), "--wait"],
        mode=OnFds(capfd),
        monotonic=time_.monotonic,
        sleep=time_.sleep,
    )
    assert run.returncode == 0, run.log
    lines = run.stderr.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("File delivered"))
    waits = [float(line[len("[slept ") : -1]) for line in lines[first:] if line.startswith("[slept ")]
    assert waits[:12] == [10.0] * 12 and set(waits[12:]) == {30.0}, waits
    # When each "Processing:" line came, in the injected time; the state each one says.
    said: List[Tuple[float, str]] = []
    now = 0.0
    for line in lines[first:]:
        if line.startswith("[slept "):
            now += float(line[len("[slept ") : -1])
        elif line.startswith("Processing:"):
            said.append((now, re.sub(r" \(.*so far\)\.$", "", line)))
    gaps = [later[0] - earlier[0] for earlier, later in zip(said, said[1:])]
    assert gaps and max(gaps) <= 60, said
    states = [state for _, state in said]
    changes = ["Processing: build upload PROCESSING", "Processing: build upload COMPLETE, build PROCESSING"]
    assert [state for number, state in enumerate(states) if number == 0 or states[number - 1] != state] == changes
    assert len(said) < len(waits), "not a line per poll"


# --- refusals explained ----------------------------------------------------------------------------


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
    found = re.search(r"AWAITING_UPLOAD in asc-token api '([^']+)'", error)
    assert found, "the call that shows whether the earlier one ever sent its file"
    listed = invoke("asc-token api", tmp_path, settings(key, standin=small_parts), [found.group(1)]).json()["data"]
    assert [item["id"] for item in listed] == list(small_parts.uploads.build_uploads)
    assert listed[0]["attributes"]["state"]["state"] != "AWAITING_UPLOAD", "this one was sent: not to be deleted"


def test_a_409_that_is_no_duplicate_is_not_called_one(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(Fault("status", status=409))
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), "--app-id", DEMO_APP_ID)
    assert run.returncode == 1
    error = one_error(run)
    assert "409" in error and "already has build" not in error, error


def test_a_build_upload_is_not_created_twice(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """A 5xx may come after Apple created it: sent again, the POST would make a second one, or a 409 duplicate."""
    api.inject(Fault("status", status=500))
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), "--app-id", DEMO_APP_ID)
    assert run.returncode == 1
    assert "500" in one_error(run)
    assert asked(api, "POST", "/v1/buildUploads") == ["/v1/buildUploads"]
    assert f"asc-token api '/v1/apps/{DEMO_APP_ID}/buildUploads?" in run.stderr, "how to find what Apple may have made"


def listing_in(run: Run) -> str:
    """The asc-token api call the log gives to find a build upload whose ID never arrived."""
    found = re.search(r"may have created one .* find it with asc-token api '([^']+)'", run.stderr)
    assert found, run.stderr
    return found.group(1)


def test_a_creation_whose_answer_was_lost_says_how_to_find_and_delete_it(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """Apple created the build upload, but the answer was cut off: its ID never arrived, so the step cannot
    delete it. The log gives the calls that find and delete it, and they do: the re-run is no duplicate."""
    path = ipa(tmp_path, size=1000)
    api.inject(Fault("cut"))
    run = upload(tmp_path, key, api, str(path), "--app-id", DEMO_APP_ID)
    assert run.returncode == 1, run.log
    assert asked(api, "POST", "/v1/buildUploads") == ["/v1/buildUploads"], "never sent twice"
    assert run.stdout == "", "no build upload is known"
    orphan = list(api.uploads.build_uploads)
    assert len(orphan) == 1
    (tmp_path / "next").mkdir()
    other = upload(
        tmp_path, key, api, str(ipa(tmp_path / "next", size=1000, CFBundleVersion="43")), "--app-id", DEMO_APP_ID
    )
    assert other.returncode == 0, "another build number: another build upload"

    def asc_api(*args: str) -> Run:
        return invoke("asc-token api", tmp_path, settings(key, standin=api), list(args))

    assert [item["id"] for item in asc_api(listing_in(run)).json()["data"]] == orphan, "it, and only it"
    deleted = asc_api("-X", "DELETE", f"/v1/buildUploads/{orphan[0]}")
    assert deleted.returncode == 0, deleted.log
    again = upload(tmp_path, key, api, str(path), "--app-id", DEMO_APP_ID)
    assert again.returncode == 0, again.log


@pytest.mark.parametrize("version", ["1,4", "1.4.\udcff"], ids=["a comma", "not UTF-8"])
def test_the_call_that_finds_a_lost_build_upload_survives_any_version(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, version: str
) -> None:
    """Apple reads a filter's commas as between values, and --version may come from bytes that are not
    UTF-8: the listing still finds the build upload (a comma's filter left out), never exit 3."""
    api.inject(Fault("cut"))
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)), "--app-id", DEMO_APP_ID, "--version", version)
    assert run.returncode == 1, run.log
    assert "Internal error" not in run.stderr and "Traceback" not in run.stderr
    listing = listing_in(run)
    if "," in version:
        listed = invoke("asc-token api", tmp_path, settings(key, standin=api), [listing]).json()["data"]
        assert [item["id"] for item in listed] == list(api.uploads.build_uploads), listing


@needs_cli
def test_an_upload_interrupted_while_its_creation_is_awaited_says_how_to_find_it(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(Fault("delay", seconds=5))

    def interrupt(process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 30
        while api.faults_left() and time.monotonic() < deadline:
            time.sleep(0.02)  # until the POST has arrived: its answer is then awaited
        assert not api.faults_left(), "the POST never arrived"
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)

    args = [str(ipa(tmp_path, size=1000)), "--app-id", DEMO_APP_ID]
    run = invoke("asc-token upload", tmp_path, settings(key, standin=api), args, mode=PROCESS,
                 while_running=interrupt, timeout=30)  # fmt: skip
    no_secrets(run, key, api)
    assert run.returncode == 130, run.log
    assert listing_in(run).startswith(f"/v1/apps/{DEMO_APP_ID}/buildUploads?filter[cfBundleShortVersionString]=")
    assert "Traceback" not in run.stderr


def test_a_commit_whose_answer_was_lost_is_not_undone(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    """The commit's answer cut off: sent again, Apple answers 409 (already committed); the file's state says it was."""
    storage, time_ = small_parts.storage, FakeTime()
    cut: List[str] = []

    def monotonic() -> float:  # progress asks the time once the last part is in: the commit comes next
        keys = [file.storage_key for file in small_parts.uploads.files.values()]
        if keys and not cut and storage.complete(keys[0]):
            cut.append(keys[0])
            small_parts.inject(Fault("cut"))
        return time_.monotonic()

    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)), time_=time_, monotonic=monotonic)
    assert cut and run.returncode == 0, run.log
    assert len(asked(small_parts, "PATCH", "/v1/buildUploadFiles/")) == 2
    assert not small_parts.uploads.deleted_build_uploads
    assert run.json()["buildUploadFile"]["assetDeliveryState"] == "COMPLETE"


def test_a_key_that_may_not_upload_is_told_the_roles(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.register(KEY_ID, key.key.public_key(), ISSUER_ID, resources=["apps", "builds"])
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)))
    assert run.returncode == 1
    error = one_error(run)
    assert "403" in error and "Developer" in error and "App Manager" in error and KEY_ID in error, error
    assert run.stdout == ""


def test_an_agreement_to_accept_is_not_taken_for_a_role(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.inject(Fault("agreements"))
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)))
    assert run.returncode == 1
    error = one_error(run)
    assert "Account Holder must accept the latest agreement" in error and "role" not in error, error
    assert run.stdout == ""


def test_a_403_whose_code_is_null_reads_as_forbidden_not_none(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """Apple's `code` is optional: a null one is no code, never printed as "None"."""
    api.inject(Fault("raw-json", status=403, detail=json.dumps({"errors": [{"status": "403", "code": None}]})))
    run = upload(tmp_path, key, api, str(ipa(tmp_path, size=1000)))
    error = one_error(run)
    assert run.returncode == 1 and "answered 403 FORBIDDEN:" in error and "None" not in error, error


# --- interrupted ---------------------------------------------------------------------------------


@contextmanager
def storage_that_never_answers() -> Iterator[Tuple[str, threading.Event]]:
    """A loopback listener that takes each connection and never answers: object storage that hangs
    (each part's request waits for its answer as long as the read timeout lets it). Its base URL, and
    an event set once a part has connected."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    listener.settimeout(0.05)
    connected, stop = threading.Event(), threading.Event()
    held: List[socket.socket] = []

    def take() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue
            connected.set()

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", connected
    finally:
        stop.set()
        taker.join(timeout=2)
        listener.close()
        for connection in held:
            connection.close()


@needs_cli
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_upload_deletes_its_build_upload_and_ends_soon(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, signum: int, status: int
) -> None:
    api.uploads.part_size = 256 * 1024
    path = ipa(tmp_path)
    ended_within: List[float] = []
    with storage_that_never_answers() as (url, connected):
        api.uploads.operation_url_base = url

        def interrupt(process: subprocess.Popen[bytes]) -> None:
            assert connected.wait(30), "no part reached the storage"
            time.sleep(0.2)  # every worker in its request
            sent = time.monotonic()
            process.send_signal(signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            ended_within.append(time.monotonic() - sent)

        run = invoke(
            "asc-token upload",
            tmp_path,
            settings(key, standin=api),
            [str(path)],
            mode=PROCESS,
            while_running=interrupt,
            timeout=60,
        )
    no_secrets(run, key, api)
    assert run.returncode == status, run.log
    assert ended_within[0] < 5, f"the process took {ended_within[0]:.1f} s to end after the signal"
    document = run.json()
    assert document["buildUpload"]["deleted"] is True
    assert api.uploads.deleted_build_uploads == [document["buildUpload"]["id"]]
    assert "Deleted build upload" in run.stderr and "Traceback" not in run.stderr


def test_a_long_wait_signs_fresh_tokens(tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn) -> None:
    """Processing that takes longer than a token lives (20 minutes): each request still carries a valid token,
    re-signed before it expires (no 401 in the middle of the wait)."""
    small_parts.uploads.polls_per_state = 30  # about 25 minutes of polls for the build upload and its build
    time_ = FakeTime()
    started = time.time()

    def sleep(seconds: float) -> None:  # the stand-in's clock moves with the command's
        time_.sleep(seconds)
        small_parts.clock_offset_seconds = time_.now

    def clock() -> float:
        return started + (time.time() - started) + time_.now

    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)), "--wait", time_=time_, clock=clock, sleep=sleep)
    assert run.returncode == 0, run.log
    assert time_.now > 20 * 60
    assert len(small_parts.tokens_seen()) >= 2
    assert not [call for call in small_parts.calls if call.outcome.startswith("401")], "no token expired on the way"


@pytest.mark.parametrize(("interruption", "status"), [(KeyboardInterrupt, 130), (Terminated, 143)])
def test_an_interrupt_after_the_commit_leaves_the_build_to_apple(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn, interruption: type, status: int
) -> None:
    """Once the file is committed Apple processes it whatever happens here: nothing is deleted, the IDs are printed."""
    small_parts.uploads.polls_per_state = 5
    time_ = FakeTime()

    def sleep(seconds: float) -> None:
        time_.sleep(seconds)
        if seconds == 10.0:  # the first wait for processing
            raise interruption

    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)), "--wait", time_=time_, sleep=sleep)
    assert run.returncode == status, run.log
    document = run.json()
    assert document["buildUploadFile"]["assetDeliveryState"] == "COMPLETE"
    assert document["buildUpload"]["deleted"] is False and not small_parts.uploads.deleted_build_uploads


def test_a_401_in_the_middle_of_the_wait_is_retried_with_a_new_token(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn
) -> None:
    """Apple's occasional 401 to a valid token, in the processing wait (Apple-Actions #189, fastlane #20270)."""
    small_parts.uploads.polls_per_state = 3
    time_ = FakeTime()

    def sleep(seconds: float) -> None:
        time_.sleep(seconds)
        if seconds == 10.0 and time_.slept.count(10.0) == 2:  # before the second poll
            small_parts.inject(Fault("unauthorized"))

    run = upload(tmp_path, key, small_parts, str(ipa(tmp_path)), "--wait", time_=time_, sleep=sleep)
    assert run.returncode == 0, run.log
    assert [call for call in small_parts.calls if call.outcome == "401"], "the 401 came"
    assert run.json()["build"]["processingState"] == "VALID"


@pytest.mark.parametrize("ci", ["github", "azure"])
def test_on_a_ci_platform_stdout_is_still_only_the_document(
    tmp_path: Path, key: KeyMaterial, small_parts: AppStoreConnectStandIn, ci: str
) -> None:
    """The token's mask commands and the annotations go to stderr: a `$(asc-token upload ...)` holds JSON only."""
    env = detection_env(ci, tmp_path)
    run = upload(tmp_path / "step", key, small_parts, str(ipa(tmp_path)), env=env)
    assert run.returncode == 0, run.log
    assert run.json()["buildUploadFile"]["assetDeliveryState"] == "COMPLETE"
