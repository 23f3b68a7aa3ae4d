"""``asc-token api -q/--jq``, ``--silent``, Apple's error document on stdout and a report refused at its headers,
against the stand-in; the ``--jq`` tests that run jq skip where it is not installed."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any, List, Mapping, Optional

import pytest

from asc_token import api_command
from asc_token.caller import Caller
from asc_token.errors import ApiError
from asc_token.inputs import CliInputs
from asc_token.paging import safe_for_log
from asc_token.records import Credentials, KeySource
from asc_token.transport import Reply
from asc_token.world import Io
from devtools.standin import AppStoreConnectStandIn, Fault

from .runner import (
    ISSUER_ID,
    KEY_ID,
    QUICK_RETRIES,
    FixedToken,
    KeyMaterial,
    invoke,
    one_error,
    settings,
    spelled_for,
)
from .test_api_command import API, REPORT, needs_jq
from .test_devtools_standin import standin_get


@needs_jq
def test_jq_prints_strings_unquoted_and_filters_the_merged_pages(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.app_count = 5
    whole = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps?limit=200"])
    ids = [item["id"] for item in whole.json()["data"]]
    called = invoke(
        "asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps?limit=2", "--paginate", "-q", ".data[].id"]
    )
    assert called.returncode == 0, called.log_lines
    assert called.stdout.splitlines() == ids  # as gh prints them: one a line, no quotes
    counted = invoke(
        "asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps", "--jq", "{n: (.data | length)}"]
    )
    assert counted.returncode == 0 and json.loads(counted.stdout) == {"n": 5}


@needs_jq
def test_jq_output_passes_the_ci_log_filter(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    names = ["::add-mask::x", "  ::error::y", "a##vso[task.setvariable]z", "bell\x07\x1b[31m", "plain"]
    api.inject(Fault("raw-json", status=200, detail=json.dumps({"data": [{"name": name} for name in names]})))
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps", "-q", ".data[].name"])
    assert called.returncode == 0, called.log_lines
    assert called.stdout.splitlines() == [
        "\\u003a:add-mask::x",
        "  \\u003a:error::y",
        "a#\\u0023vso[task.setvariable]z",
        "bell\\u0007\\u001b[31m",
        "plain",
    ]


def test_safe_for_log_keeps_line_breaks_and_tabs() -> None:
    assert safe_for_log(b"a\tb\nc\r\n") == b"a\tb\nc\\u000d\n"


@needs_jq
def test_an_error_document_is_printed_unfiltered(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/nothingHere", "-q", ".data"])
    assert called.returncode == 1 and called.json()["errors"][0]["status"] == "404"  # as gh: not through --jq
    assert "404" in one_error(called)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-q", ".data[", "/v1/apps"], "--jq '.data[' is not a program jq can compile (jq said: "),
        (["-q", " ", "/v1/apps"], "--jq takes a jq program"),
        (["-q", ".", "--silent", "/v1/apps"], "--jq and --silent both say what becomes of the answer"),
        (["-q", ".", "--output-file", "a.json", "/v1/apps"], "--jq and --output-file both say"),
    ],
)
@needs_jq
def test_bad_jq_use_is_exit_2_and_nothing_sent(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, args: List[str], said: str
) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), args)
    assert called.returncode == 2 and said in one_error(called), called.log_lines
    assert api.requests == [] and called.stdout_bytes == b""


def test_without_jq_on_path_nothing_is_sent(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    called = invoke(
        "asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps", "-q", ".data"], env={"PATH": str(empty)}
    )
    assert called.returncode == 2 and "--jq needs the jq program, which is not on PATH" in one_error(called)
    assert api.requests == [] and called.stdout_bytes == b""


@needs_jq
def test_a_jq_failure_on_the_answer_is_exit_1_with_jqs_words(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps", "-q", ".data + 1"])
    assert called.returncode == 1 and called.stdout_bytes == b""
    assert "failed on the answer (jq said: " in one_error(called) and "fix the expression" in one_error(called)


def test_jq_runs_with_a_bare_environment(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """jq's $ENV would show the key in ASC_PRIVATE_KEY: the program is run with PATH and the locale only."""
    seen: List[Mapping[str, str]] = []
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "jq"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)

    def run(argv: Any, stdin: Any, env: Mapping[str, str]) -> tuple[int, bytes, bytes]:
        seen.append(env)
        return 0, b"filtered\n", b""

    env = {**spelled_for("asc-token api", settings(key, standin=api)), "PATH": str(tmp_path / "bin")}
    stdout, stderr = io.TextIOWrapper(io.BytesIO(), "utf-8", write_through=True), io.StringIO()
    world = Io(env=env, policy=QUICK_RETRIES, stdout=stdout, stderr=stderr, stdin=io.BytesIO())
    assert api_command.main(["/v1/apps", "-q", "$ENV"], world, run=run) == 0, stderr.getvalue()
    assert stdout.buffer.getvalue() == b"filtered\n"
    assert [sorted(given) for given in seen] == [["PATH"], ["PATH"]]  # the compile check, then the answer


def test_silent_prints_no_body_and_no_error_document(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps", "--silent"])
    assert called.returncode == 0 and called.stdout_bytes == b"" and called.log_lines == []
    failed = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/nothingHere", "--silent"])
    assert failed.returncode == 1 and failed.stdout_bytes == b"" and "404" in one_error(failed)


def test_an_error_document_is_made_safe_for_a_ci_log(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    hostile = {"errors": [{"status": "409", "code": "X", "title": "##vso[task.complete]", "detail": "::error::x"}]}
    api.inject(Fault("raw-json", status=409, detail=json.dumps(hostile)))
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/apps"])
    assert called.returncode == 1 and called.json() == hostile
    assert "##" not in called.stdout and not called.stdout.startswith("::")


def test_a_report_without_output_file_is_refused_at_its_headers(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    api.report_size_bytes = 8 * 1024 * 1024  # read to the 4 MB limit before, it is now refused unread
    size = len(standin_get(api, key, REPORT).content)  # made once, before the quick policy's timeouts run
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), [REPORT])
    assert called.returncode == 1 and called.stdout_bytes == b""
    said = one_error(called)
    assert f"application/a-gzip body of {size} bytes" in said and "give --output-file FILE" in said


class HeadersFirst:
    """Transport.send's contract as far as a body: the download hook sees status and headers before it is read."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers, self.body_read = headers, False

    def send(self, method: str, url: str, tokens: Any, *, download: Optional[Any] = None, **_: Any) -> Reply:
        sink = download(200, self.headers) if download is not None else None
        self.body_read = True
        return Reply(200, self.headers, b"" if sink else b"\x1f\x8b...")


def test_run_call_refuses_a_report_before_reading_its_body() -> None:
    transport = HeadersFirst({"content-type": "application/a-gzip", "content-length": "50000000"})
    credentials = Credentials(KEY_ID, ISSUER_ID, "team", 1200, (), KeySource("ASC_PRIVATE_KEY", contents="x"))
    caller = Caller(credentials, CliInputs({}, {}), FixedToken("t"), transport, time.time, print)  # type: ignore[arg-type]
    call = api_command.ApiCall("GET", "/v1/salesReports", None, paginate=False, include=False)
    with pytest.raises(ApiError, match="a-gzip body of 50000000 bytes, which is not JSON"):
        api_command.run_call(call, f"{API}/v1/salesReports", caller)
    assert not transport.body_read


def test_a_jq_that_cannot_run_is_exit_2_and_nothing_sent(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """A jq on PATH that this system cannot run (a broken or foreign binary): exit 2 naming it, not exit 3."""
    (tmp_path / "bin").mkdir()
    broken = tmp_path / "bin" / "jq"
    broken.write_bytes(b"\x7fELF not a program")
    broken.chmod(0o755)
    called = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        ["/v1/apps", "-q", ".data"],
        env={"PATH": str(broken.parent)},
    )
    assert called.returncode == 2 and "could not run" in one_error(called) and "install jq" in one_error(called)
    assert api.requests == [] and called.stdout_bytes == b""
