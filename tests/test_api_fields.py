"""``asc-token api -f/-F`` as ``gh api`` takes them, against the stand-in: the JSON body they make, the query
with ``-X GET`` or ``--input``, and each refusal (exit 2, nothing sent)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import List

import pytest

from asc_token.errors import InputError
from asc_token.fields import RAW, TYPED, Field, json_body, query, read_fields, with_query
from devtools.standin import AppStoreConnectStandIn

from .runner import KeyMaterial, invoke, needs_cli, one_error, settings, spelled_for
from .test_api_command import API_DOC, bash, doc_section, needs_jq, shell_env

CREATE = [
    *("-f", "data[type]=bundleIds", "-f", "data[attributes][identifier]=com.example.fields"),
    *("-f", "data[attributes][name]=My App", "-f", "data[attributes][platform]=IOS"),
]


def test_fields_make_a_post_body_and_the_issues_patch_needs_no_file(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    created = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/bundleIds", *CREATE])
    assert created.returncode == 0, created.log_lines
    call = api.calls[-1]
    assert call.method == "POST"  # fields make the default method POST, as in gh
    assert json.loads(call.body) == {
        "data": {
            "type": "bundleIds",
            "attributes": {"identifier": "com.example.fields", "name": "My App", "platform": "IOS"},
        }
    }
    bundle_id = created.json()["data"]["id"]
    patch = ["-X", "PATCH", f"/v1/bundleIds/{bundle_id}", "-f", "data[type]=bundleIds", "-f", f"data[id]={bundle_id}"]
    renamed = invoke(
        "asc-token api", tmp_path, settings(key, standin=api), [*patch, "-f", "data[attributes][name]=New"]
    )
    assert renamed.returncode == 0, renamed.log_lines
    assert renamed.json()["data"]["attributes"]["name"] == "New"


def test_get_fields_are_the_query_keys_as_written_values_encoded_repeats_joined(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    args = ["/v1/apps?sort=name", "-X", "GET", "-f", "filter[bundleId]=com.example.a", "-F", "limit=2"]
    called = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        [*args, "-f", "filter[bundleId]=com.example.b", "-f", "fields[apps]=name,bundleId", "-f", "x=a b&c"],
    )
    sent = api.calls[-1]
    assert sent.method == "GET" and sent.body == b""
    # requests (urllib3) encodes brackets on the wire, as for a PATH written with them; Apple decodes them
    assert sent.path.replace("%5B", "[").replace("%5D", "]") == (
        "/v1/apps?sort=name&filter[bundleId]=com.example.a,com.example.b&limit=2&fields[apps]=name%2CbundleId&x=a%20b%26c"
    ), called.log_lines


def test_with_input_the_fields_are_the_query(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    body = b'{"data": {"type": "bundleIds", "attributes": {"identifier": "a.q", "name": "A", "platform": "IOS"}}}'
    called = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        ["/v1/bundleIds", "--input", "-", "-F", "dryRun=true"],
        stdin=body,
    )
    assert called.returncode == 0, called.log_lines
    assert api.calls[-1].method == "POST" and api.calls[-1].path == "/v1/bundleIds?dryRun=true"
    assert api.calls[-1].body == body


def test_typed_fields_read_json_values_files_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("What's new\n", encoding="utf-8")
    given = [
        (TYPED, "a[yes]=true"),
        (TYPED, "a[no]=false"),
        (TYPED, "a[none]=null"),
        (TYPED, "a[count]=-12"),
        (TYPED, "a[word]=12a"),
        (RAW, "a[raw]=true"),
        (TYPED, f"a[file]=@{tmp_path / 'notes.txt'}"),
        (TYPED, "a[stdin]=@-"),
        (RAW, "list[]=x"),
        (TYPED, "list[]=2"),
    ]
    fields = read_fields(given, io.BytesIO(b"piped"), 1, input_is_stdin=False)
    assert json_body(fields) == {
        "a": {
            "yes": True,
            "no": False,
            "none": None,
            "count": -12,
            "word": "12a",
            "raw": "true",
            "file": "What's new\n",
            "stdin": "piped",
        },
        "list": ["x", 2],
    }
    assert (
        query([Field("on", True), Field("none", None), Field("k[]", "a"), Field("k[]", "b")]) == "on=true&none=&k[]=a,b"
    )
    assert with_query("/v1/apps?", [Field("limit", 1)]) == "/v1/apps?limit=1"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ([(RAW, "novalue")], "-f/--raw-field takes KEY=VALUE"),
        ([(TYPED, "=x")], "-F/--field takes KEY=VALUE"),
        ([(TYPED, "a=@missing.txt")], "-F/--field 'a'=@ file 'missing.txt' does not exist"),
        ([(TYPED, "a=@-"), (TYPED, "b=@-")], "reads stdin, which --input - or another @- already reads"),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, given: List[tuple[str, str]], said: str) -> None:
    with pytest.raises(InputError, match=said.replace("(", r"\(").replace(")", r"\)")):
        read_fields(given, io.BytesIO(b""), 1, input_is_stdin=False)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-f", "a[b=1"], "-f/-F key 'a[b' is not NAME, NAME[part]... or NAME[]"),
        (["-f", "a[]x=1"], "is not NAME, NAME[part]... or NAME[]"),
        (["-f", "a=1", "-f", "a[b]=2"], "-f/-F key 'a[b]' is given twice, or both as a value and as an object"),
        (["-f", "a=1", "-f", "a=2"], "-f/-F key 'a' is given twice"),
        (["--input", "-", "-F", "a=@-"], "--input - and -F KEY=@- both read stdin"),
        (["--paginate", "-f", "a=1"], "--paginate follows links.next, which only GET lists have: add -X GET"),
        (["--input", "-", "--upload-file", "x.png", "-f", "a=1"], "--upload-file takes its reservation from --input"),
    ],
)
def test_bad_field_use_is_exit_2_and_nothing_sent(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, args: List[str], said: str
) -> None:
    called = invoke("asc-token api", tmp_path, settings(key, standin=api), ["/v1/bundleIds", *args], stdin=b"{}")
    assert called.returncode == 2 and said in one_error(called), called.log_lines
    assert api.requests == [] and called.stdout_bytes == b""


def test_fields_build_an_upload_reservation(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    file = tmp_path / "home.png"
    file.write_bytes(os.urandom(3000))
    relationship = "data[relationships][appScreenshotSet][data]"
    reservation = [
        *("-f", "data[type]=appScreenshots", "-f", "data[attributes][fileName]=home.png"),
        *("-F", "data[attributes][fileSize]=3000", "-f", f"{relationship}[type]=appScreenshotSets"),
        *("-f", f"{relationship}[id]=set-1"),
    ]
    called = invoke(
        "asc-token api",
        tmp_path,
        settings(key, standin=api),
        ["/v1/appScreenshots", "--upload-file", str(file), *reservation],
        sleep=lambda _: None,
    )
    assert called.returncode == 0, called.log_lines
    stored = api.uploads.files[called.json()["data"]["id"]]
    assert api.storage.assembled(stored.storage_key) == file.read_bytes()
    assert stored.relationships == {"appScreenshotSet": {"type": "appScreenshotSets", "id": "set-1"}}


@needs_cli
@needs_jq
def test_the_docs_gh_habits_example(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """docs/api.md's `gh api` habits example, run as written."""
    example = doc_section(API_DOC, "## `gh api` habits").split("```sh\n")[1].split("```", 1)[0]
    done = bash(example, shell_env(spelled_for("asc-token api", settings(key, standin=api))), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Example App",
        "com.example.demo",
        "com.example.demo.watch",
        "com.example.demo.mac",
        "NOT_FOUND",
    ]
    assert [(call.method, call.outcome) for call in api.calls][:3] == [
        ("POST", "201"),
        ("PATCH", "200"),
        ("DELETE", "204"),
    ]
    assert api.bundle_ids == {}
