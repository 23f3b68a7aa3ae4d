"""Upload operations: the plan read and checked before any byte is sent, the destination rule, file slices,
progress lines, and send_parts' retries, expiry and credentials, with a scripted session (no waiting)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type
from urllib.parse import urlsplit

import pytest
import requests

from asc_token.errors import (
    AscTokenError,
    OperationDestinationError,
    OperationExpiredError,
    OperationMalformedError,
    OperationPastEndError,
    OperationsGapError,
    OperationsOverlapError,
    PartFileError,
    PartRefusedError,
    PartServerError,
    PartUnreachableError,
    UploadPlanError,
)
from asc_token.operations import (
    FileSlice,
    Progress,
    SendOptions,
    UploadOperation,
    check_plan,
    parse_operations,
    send_parts,
    shown_destination,
    storage_session,
)
from asc_token.urls import operation_url_problem
from devtools.object_storage import BUCKET, ObjectStorage

from .runner import ROOT

SIGNATURE = "X-Amz-Signature=0123456789abcdef0123456789abcdef"
STORAGE = "https://storage.example/bucket/key"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def operation(offset: int, length: int, part: Optional[int] = None, **fields: Any) -> UploadOperation:
    number = part if part is not None else offset // max(length, 1) + 1
    url = fields.pop("url", None) or f"{STORAGE}/{number}?X-Amz-Expires=900&{SIGNATURE}"
    return UploadOperation(method="PUT", url=url, offset=offset, length=length, part_number=number, **fields)


def spans(*pairs: Tuple[int, int]) -> List[UploadOperation]:
    return [operation(offset, length, part) for part, (offset, length) in enumerate(pairs, 1)]


# --- parse_operations ------------------------------------------------------------------------------


def test_both_forms_are_read() -> None:
    delivery = {
        "method": "PUT",
        "url": f"{STORAGE}/1?{SIGNATURE}",
        "offset": 0,
        "length": 10,
        "requestHeaders": [{"name": "Content-Type", "value": "application/octet-stream"}],
        "partNumber": 1,
        "expiration": "2026-06-01T12:15:00.5Z",
    }
    asset = {"method": "PUT", "url": f"{STORAGE}/2", "offset": 10, "length": 5, "requestHeaders": None}
    first, second = parse_operations([delivery, asset])
    assert first.headers == (("Content-Type", "application/octet-stream"),)
    assert (first.part_number, first.position, first.label) == (1, 1, "part 1 (bytes 0-9)")
    assert first.expiration == datetime(2026, 6, 1, 12, 15, 0, 500000, tzinfo=timezone.utc)
    assert (second.part_number, second.expiration, second.headers, second.name) == (None, None, (), "part 2")
    assert SIGNATURE not in repr(first)  # a record in a log never shows its link


@pytest.mark.parametrize(
    ("expiration", "expected"),
    [
        ("2026-06-01T12:15:00Z", datetime(2026, 6, 1, 12, 15, tzinfo=timezone.utc)),
        ("2026-06-01T12:15:00.123456789Z", datetime(2026, 6, 1, 12, 15, 0, 123456, tzinfo=timezone.utc)),
        ("2026-06-01T14:15:00+02:00", datetime(2026, 6, 1, 12, 15, tzinfo=timezone.utc)),
    ],
)
def test_expirations_are_read_with_their_zone(expiration: str, expected: datetime) -> None:
    item = {"method": "PUT", "url": STORAGE, "offset": 0, "length": 1, "expiration": expiration}
    assert parse_operations([item])[0].expiration == expected


GOOD = {"method": "PUT", "url": STORAGE, "offset": 0, "length": 1}


@pytest.mark.parametrize(
    ("items", "said"),
    [
        ({"data": []}, "list is missing or not a list"),
        ([GOOD, "PUT"], "2 of 2 is not an object"),
        ([{**GOOD, "method": None}], "no usable method"),
        ([{**GOOD, "method": "PUT /x"}], "no usable method"),
        ([{**GOOD, "url": ""}], "no url"),
        ([{**GOOD, "offset": "0"}], "no whole number as its offset"),
        ([{**GOOD, "length": True}], "no whole number as its length"),
        ([{**GOOD, "length": 1.5}], "no whole number as its length"),
        ([{**GOOD, "partNumber": "1"}], "no whole number as its partNumber"),
        ([{**GOOD, "requestHeaders": [{"name": "Content-Type"}]}], "request header"),
        ([{**GOOD, "requestHeaders": [{"name": "X", "value": "a\r\nAuthorization: b"}]}], "request header"),
        ([{**GOOD, "requestHeaders": [{"name": "Bad Name", "value": "a"}]}], "request header"),
        ([{**GOOD, "requestHeaders": [{"name": "X", "value": "caf\u0113"}]}], "request header"),
        ([{**GOOD, "requestHeaders": [{"name": "X", "value": "\u2603"}]}], "request header"),
        ([{**GOOD, "requestHeaders": [{"name": "X", "value": " a"}]}], "request header"),
        ([{**GOOD, "requestHeaders": [{"name": "X", "value": "a\t"}]}], "request header"),
        ([{**GOOD, "requestHeaders": "Content-Type"}], "request headers that are not a list"),
        ([{**GOOD, "requestHeaders": 5}], "request headers that are not a list"),
        ([{**GOOD, "expiration": "tomorrow"}], "not an ISO 8601 time"),
        ([{**GOOD, "expiration": "2026-13-01T00:00:00Z"}], "not an ISO 8601 time"),
        ([{**GOOD, "expiration": 1767225600}], "not an ISO 8601 time"),
    ],
)
def test_malformed_operations_are_refused(items: Any, said: str) -> None:
    with pytest.raises(OperationMalformedError) as raised:
        parse_operations(items)
    assert said in raised.value.message and "nothing was sent" in raised.value.message


# --- check_plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "size"),
    [
        (spans((0, 10)), 10),
        (spans((0, 4), (4, 4), (8, 2)), 10),
        (spans((8, 2), (0, 4), (4, 4)), 10),  # Apple's order is not the file's
        ([], 0),
    ],
)
def test_plans_that_rebuild_the_file_pass_in_file_order(plan: List[UploadOperation], size: int) -> None:
    checked = check_plan(plan, size)
    assert [op.offset for op in checked] == sorted(op.offset for op in plan)


@pytest.mark.parametrize(
    ("plan", "size", "error", "said"),
    [
        (spans((0, 4), (6, 4)), 10, OperationsGapError, "no part with bytes 4-5 of the file (10 bytes)"),
        (spans((2, 8)), 10, OperationsGapError, "bytes 0-1"),
        (spans((0, 4), (4, 4)), 10, OperationsGapError, "bytes 8-9"),
        ([], 10, OperationsGapError, "bytes 0-9"),
        (spans((0, 6), (4, 6)), 10, OperationsOverlapError, "part 1 (bytes 0-5) and part 2 (bytes 4-9) both send bytes 4-5"),
        (spans((0, 10), (2, 3)), 10, OperationsOverlapError, "both send bytes 2-4"),
        (spans((0, 6), (6, 6)), 10, OperationPastEndError, "part 2 (bytes 6-11) asks for bytes past the end of the file (10 bytes)"),
        (spans((0, 1)), 0, OperationPastEndError, "past the end"),
        (spans((0, 10), (10, 0)), 10, OperationMalformedError, "for part 2 asks for 0 bytes at offset 10"),
        ([operation(-1, 5, 1)], 10, OperationMalformedError, "asks for 5 bytes at offset -1"),
        ([operation(0, 5, 1), operation(5, 5, 1)], 10, OperationMalformedError, "part number of another one"),
        ([operation(0, 10, url="http://storage.example/b/k?" + SIGNATURE)], 10, OperationDestinationError, "plain http://"),
        ([operation(0, 10, url="ftp://storage.example/b/k")], 10, OperationDestinationError, "not an https:// URL"),
        ([operation(0, 10, url="https://user:pw@storage.example/b/k")], 10, OperationDestinationError, "user name or password"),
    ],
)  # fmt: skip
def test_plans_that_would_not_rebuild_the_file_are_refused(
    plan: List[UploadOperation], size: int, error: Type[UploadPlanError], said: str
) -> None:
    with pytest.raises(error) as raised:
        check_plan(plan, size)
    assert said in raised.value.message and raised.value.exit_code == 1
    assert "nothing was sent" in raised.value.message
    assert SIGNATURE not in raised.value.message and "pw" not in raised.value.message


def test_a_refused_destination_is_shown_without_its_query() -> None:
    url = "http://storage.example:8080/bucket/key/1?X-Amz-Credential=AKIA&" + SIGNATURE
    with pytest.raises(OperationDestinationError) as raised:
        check_plan([operation(0, 1, url=url)], 1)
    assert "http://storage.example:8080/bucket/key/1, which uses plain http://" in raised.value.message
    assert "X-Amz" not in raised.value.message


# --- the destination rule (urls.py) and how a destination is shown --------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://storage.example/b/k?" + SIGNATURE, ""),
        ("HTTPS://Storage.Example:8443/b/k", ""),
        ("http://127.0.0.1:9000/b/k?" + SIGNATURE, ""),
        ("http://127.8.9.1/b/k", ""),
        ("http://localhost:9000/b/k", ""),
        ("http://[::1]:9000/b/k", ""),
        ("http://storage.example/b/k", "plain http:// to a host that is not this machine"),
        ("http://10.0.0.1/b/k", "plain http:// to a host that is not this machine"),
        ("ftp://storage.example/b/k", "is not an https:// URL"),
        ("storage.example/b/k", "is not an https:// URL"),
        ("https://user:secret@storage.example/b/k", "user name or password"),
        ("https://storage.example\\@evil.example/b/k", "backslashes"),
        ("https://storage.example/b/k with space", "spaces"),
        ("https:///b/k", "valid host name"),
        ("https://bad_host_-.example/b/k", "valid host name"),
        ("https://storage.example/" + "a" * 8001, "longer than 8000"),
    ],
)
def test_operation_url_rule(url: str, problem: str) -> None:
    found = operation_url_problem(url)
    assert (problem in found and bool(found)) if problem else found == ""


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://storage.example/b/k/1?" + SIGNATURE, "https://storage.example/b/k/1"),
        ("https://s3.example/b/2/Aq3F9z0PLmN4x7Ykb2Lc8Rt5Vw1Gh6Jd8Ks2Lq4Mz", "https://s3.example/b/2/[not shown]"),
        ("http://user:pw@127.0.0.1:9000/b/k#frag", "http://127.0.0.1:9000/b/k"),
        ("https://[::1]:8443/b", "https://[: :1]:8443/b"),  # "::" broken up, as in all foreign text
        ("https://storage.example:99999/b", "an unusable URL"),
    ],
)
def test_destinations_are_shown_without_query_or_user(url: str, shown: str) -> None:
    assert shown_destination(url) == shown


# --- file slices ----------------------------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> Tuple[str, bytes]:
    data = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and 4 bytes, every offset's byte distinct mod 256
    path = tmp_path / "App.ipa"
    path.write_bytes(data)
    return str(path), data


def test_a_slice_reads_exactly_its_bytes_a_block_at_a_time(data_file: Tuple[str, bytes]) -> None:
    path, data = data_file
    reads: List[int] = []
    with FileSlice(path, 1000, 300_000, reads.append) as body:
        assert len(body) == 300_000
        first = body.read(100)
        rest = b"".join(body)  # requests' streamed form
        assert len(body) == 300_000 and body.read(10) == b""
    assert first + rest == data[1000:301_000]
    assert sum(reads) == 300_000 and max(reads) <= 256 * 1024
    with FileSlice(path, len(data) - 4, 4) as tail:
        assert tail.read() == b"tail"


def test_a_slice_of_a_file_that_shrank_says_so(data_file: Tuple[str, bytes]) -> None:
    path, data = data_file
    with FileSlice(path, len(data) - 4, 10) as body, pytest.raises(Exception, match="ended early"):
        body.read(10)
        body.read(10)


# --- progress ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_says_a_line_at_most_every_few_seconds_and_always_a_last_one() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = Progress("App.ipa", 100_000_000, stream, clock, 5.0)
    progress.start(20, 4)
    for _ in range(10):  # 10 MB a second, a read every 0.5 s
        clock.now += 0.5
        progress.advance(5_000_000)
    progress.advance(-5_000_000)  # a failed attempt takes its bytes back, silently
    clock.now += 0.5
    progress.advance(55_000_000)
    assert progress.finish(True) == pytest.approx(5.5)
    assert stream.getvalue().splitlines() == [
        "Uploading App.ipa: 100.0 MB in 20 parts, 4 at a time.",
        "Uploading App.ipa: 50.0 MB of 100.0 MB (50%), 10.0 MB/s.",
        "Uploaded App.ipa: 100.0 MB in 5.5 s (18.2 MB/s).",
    ]


def test_progress_says_where_a_failed_upload_stopped() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = Progress("App.ipa", 1000, stream, clock, 5.0)
    progress.start(1, 1)
    progress.advance(250)
    clock.now += 2
    progress.finish(False)
    assert (
        stream.getvalue().splitlines()[-1] == "Upload of App.ipa stopped after 2.0 s, 250 bytes of 1.0 kB (25%) sent."
    )


def test_progress_to_a_closed_stream_does_not_stop_the_upload() -> None:
    stream = io.StringIO()
    stream.close()
    progress = Progress("App.ipa", 10, stream, Clock(), 0.0)
    progress.start(1, 1)
    progress.advance(10)
    progress.finish(True)


# --- send_parts with a scripted session ------------------------------------------------------------


RESET = requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))
TIMEOUT = requests.exceptions.ReadTimeout("read timed out")
DNS = requests.exceptions.ConnectionError(socket.gaierror(-2, "Name or service not known"))
EXPIRED_BODY = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"


class Answer:
    def __init__(self, status: int, headers: Optional[Dict[str, str]] = None, body: bytes = b"") -> None:
        self.status_code, self.headers, self.body = status, headers or {}, body
        self.closed = False

    def iter_content(self, size: int) -> Iterator[bytes]:
        yield self.body[:size]

    def close(self) -> None:
        self.closed = True


class Sent:
    def __init__(self, method: str, url: str, headers: Mapping[str, str], body: bytes, auth: Any) -> None:
        self.method, self.url, self.headers, self.body, self.auth = method, url, dict(headers), body, auth

    @property
    def part(self) -> str:
        return urlsplit(self.url).path.rsplit("/", 1)[-1]


class Storage:
    """A session standing for the object storage: answers scripted per part (the URL's last path segment; ints
    are statuses, Answers are answers, exceptions are raised), 200 once a part's script is used up."""

    def __init__(self, script: Optional[Dict[str, List[Any]]] = None) -> None:
        self.script = {part: list(steps) for part, steps in (script or {}).items()}
        self.sent: List[Sent] = []
        self.lock = threading.Lock()
        self.opened = 0

    def open(self, env: Mapping[str, str]) -> Storage:
        self.opened += 1
        return self

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        body = kwargs["data"]
        data = b"".join(iter(lambda: body.read(64 * 1024), b""))  # as urllib3 reads a body
        assert len(data) == len(body) and kwargs["allow_redirects"] is False
        sent = Sent(method, url, kwargs["headers"], data, kwargs["auth"])
        with self.lock:
            self.sent.append(sent)
            steps = self.script.get(sent.part) or [200]
            step = steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step if isinstance(step, Answer) else Answer(step, {"ETag": f'"etag-{sent.part}"'})


class Run:
    """send_parts with a Storage, a clock that only moves when told, and sleeps recorded."""

    def __init__(self, storage: Storage, **options: Any) -> None:
        self.storage, self.progress, self.now = storage, io.StringIO(), NOW
        self.slept: List[float] = []
        self.refreshes = 0
        settings: Dict[str, Any] = dict(
            parallel=1,
            progress=self.progress,
            now=lambda: self.now,
            monotonic=lambda: 0.0,
            sleep=self.slept.append,
            jitter=lambda: 1.0,
            env={},
            open_session=storage.open,
        )
        self.options = SendOptions(**{**settings, **options})

    def send(self, path: str, plan: Sequence[UploadOperation], fresh: Optional[List[UploadOperation]] = None) -> Any:
        def refresh() -> List[UploadOperation]:
            self.refreshes += 1
            assert fresh is not None
            return fresh

        return send_parts(path, plan, self.options, refresh if fresh is not None else None)


def split(size: int, part_size: int, **fields: Any) -> List[UploadOperation]:
    headers = (("Content-Type", "application/octet-stream"), ("x-amz-meta-part", "yes"))
    return [
        operation(offset, min(part_size, size - offset), offset // part_size + 1, headers=headers, **fields)
        for offset in range(0, size, part_size)
    ]


def test_every_part_is_sent_once_with_exactly_its_method_and_headers_and_no_credential(
    data_file: Tuple[str, bytes],
) -> None:
    path, data = data_file
    storage = Storage()
    run = Run(storage, parallel=3)
    plan = split(len(data), 300_000)
    sent = run.send(path, list(reversed(plan)))
    assert [receipt.label for receipt in sent.parts] == [op.label for op in plan]  # file order
    assert [receipt.etag for receipt in sent.parts] == [f'"etag-{n}"' for n in range(1, 5)]
    assert (sent.size, sent.refreshed) == (len(data), False)
    assert sorted(request.part for request in storage.sent) == ["1", "2", "3", "4"]
    assert storage.opened <= 3  # a session per worker thread
    for request in storage.sent:
        op = plan[int(request.part) - 1]
        assert request.method == "PUT" and request.url == op.url
        assert request.body == data[op.offset : op.end]
        assert request.headers == {"Content-Type": "application/octet-stream", "x-amz-meta-part": "yes",
                                   "User-Agent": request.headers["User-Agent"]}  # fmt: skip
        # An explicit auth that adds nothing: requests then never looks in ~/.netrc.
        prepared = requests.Request("PUT", op.url, auth=request.auth).prepare()
        assert "Authorization" not in prepared.headers
    lines = run.progress.getvalue().splitlines()
    assert lines[0] == "Uploading App.ipa: 1.0 MB in 4 parts, 3 at a time." and lines[-1].startswith("Uploaded App.ipa")


def test_operation_headers_are_sent_as_given_even_user_agent(data_file: Tuple[str, bytes]) -> None:
    path, data = data_file
    storage = Storage()
    Run(storage).send(path, [operation(0, len(data), 1, headers=(("User-Agent", "Apple-given"),))])
    assert storage.sent[0].headers == {"User-Agent": "Apple-given"}


@pytest.mark.parametrize(
    ("script", "attempts", "slept"),
    [
        ([500, 200], 2, [1.0]),
        ([502, 503, 504, 200], 4, [1.0, 2.0, 4.0]),
        ([Answer(429, {"Retry-After": "7"}), 200], 2, [7.0]),
        ([Answer(503, {"Retry-After": "3600"}), 200], 2, [20.0]),  # Retry-After within the policy's cap
        ([Answer(429, {"Retry-After": "soon"}), 200], 2, [1.0]),
        ([RESET, RESET, 200], 3, [1.0, 2.0]),
        ([TIMEOUT, 200], 2, [1.0]),
        ([500, 500, 500, 500, 200], 5, [1.0, 2.0, 4.0, 8.0]),
    ],
)
def test_a_part_is_retried_on_5xx_429_and_resets_with_bounded_backoff(
    data_file: Tuple[str, bytes], script: List[Any], attempts: int, slept: List[float]
) -> None:
    path, data = data_file
    storage = Storage({"2": script})
    run = Run(storage)
    plan = split(len(data), 600_000)
    sent = run.send(path, plan)
    assert [receipt.attempts for receipt in sent.parts] == [1, attempts]
    assert run.slept == slept
    assert all(request.body == data[600_000:] for request in storage.sent if request.part == "2")
    retries = [line for line in run.progress.getvalue().splitlines() if "retrying" in line]
    assert len(retries) == attempts - 1 and retries[0].startswith("part 2 (bytes 600000-1048579): ")
    assert (
        run.progress.getvalue().splitlines()[-1].startswith("Uploaded App.ipa: 1.0 MB")
    )  # retried bytes not counted twice


@pytest.mark.parametrize(
    ("script", "error", "said", "requests_made"),
    [
        ([503] * 5, PartServerError, "answered 503 to part 2 (bytes 600000-1048579) of App.ipa on all 5 attempts", 5),
        ([Answer(400, body=b"<Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match"
                           b"</Message></Error>")],
         PartRefusedError, "answered 400 (BadDigest: The Content-MD5 you specified did not match) to part 2", 1),
        ([Answer(403, body=b"<Error><Code>SignatureDoesNotMatch</Code></Error>")], PartRefusedError,
         "answered 403 (SignatureDoesNotMatch) to part 2", 1),
        ([307], PartRefusedError, "answered 307 to part 2", 1),  # never followed
        ([RESET] * 5, PartUnreachableError, "Could not send part 2 (bytes 600000-1048579) of App.ipa to "
         "https://storage.example/bucket/key/2: the connection was reset (5 attempts)", 5),
        ([DNS], PartUnreachableError, "the host name could not be resolved", 1),
    ],
)  # fmt: skip
def test_a_part_that_cannot_be_delivered_fails_the_upload_naming_part_status_and_fix(
    data_file: Tuple[str, bytes], script: List[Any], error: Type[AscTokenError], said: str, requests_made: int
) -> None:
    path, data = data_file
    storage = Storage({"2": script})
    run = Run(storage)
    with pytest.raises(error) as raised:
        run.send(path, split(len(data), 600_000))
    message = raised.value.message
    assert said in message and "re-run" in message and raised.value.exit_code == 1
    assert SIGNATURE not in message and "X-Amz" not in message
    assert len([request for request in storage.sent if request.part == "2"]) == requests_made
    assert run.progress.getvalue().splitlines()[-1].startswith("Upload of App.ipa stopped after")


def test_the_first_failure_stops_the_parts_not_yet_sent(data_file: Tuple[str, bytes]) -> None:
    path, data = data_file
    storage = Storage({"1": [400]})
    with pytest.raises(PartRefusedError):
        Run(storage).send(path, split(len(data), 100_000))
    assert [request.part for request in storage.sent] == ["1"]


def test_a_file_that_is_gone_is_said_before_anything_is_sent(tmp_path: Path) -> None:
    storage = Storage()
    with pytest.raises(PartFileError, match=r"App\.ipa"):
        Run(storage).send(str(tmp_path / "App.ipa"), [operation(0, 1, 1)])
    assert storage.sent == []


def test_a_bad_plan_sends_nothing(data_file: Tuple[str, bytes]) -> None:
    path, data = data_file
    storage = Storage()
    with pytest.raises(OperationsGapError):
        Run(storage).send(path, split(len(data), 100_000)[1:])
    with pytest.raises(OperationDestinationError):
        Run(storage).send(path, split(len(data), len(data), url="http://storage.example/b/k/1"))
    assert storage.sent == []


# --- expired links ---------------------------------------------------------------------------------


def moved(plan: List[UploadOperation], base: str) -> List[UploadOperation]:
    return [replace(op, url=f"{base}/bucket/key/{op.part_number}?{SIGNATURE}") for op in plan]


def expiring(data: bytes, expires: datetime, host: str = "old.example") -> List[UploadOperation]:
    return moved(split(len(data), 600_000, expiration=expires), f"https://{host}")


def test_an_expired_link_is_not_used_fresh_operations_are_asked_for_once(data_file: Tuple[str, bytes]) -> None:
    path, data = data_file
    storage = Storage()
    run = Run(storage, parallel=2)
    old = expiring(data, NOW + timedelta(seconds=5))  # inside the margin: it could expire on the way
    fresh = expiring(data, NOW + timedelta(minutes=15), host="fresh.example")
    sent = run.send(path, old, fresh)
    assert run.refreshes == 1 and sent.refreshed
    assert {urlsplit(request.url).hostname for request in storage.sent} == {"fresh.example"}
    assert b"".join(r.body for r in sorted(storage.sent, key=lambda r: r.part)) == data


def test_a_403_saying_the_link_expired_asks_for_fresh_operations(data_file: Tuple[str, bytes]) -> None:
    path, data = data_file
    storage = Storage({"2": [Answer(403, body=EXPIRED_BODY)]})
    run = Run(storage)
    old = expiring(data, NOW + timedelta(minutes=15))
    fresh = expiring(data, NOW + timedelta(minutes=15), host="fresh.example")
    sent = run.send(path, old, fresh)
    assert run.refreshes == 1 and sent.refreshed
    assert [(urlsplit(r.url).hostname, r.part) for r in storage.sent] == [
        ("old.example", "1"),
        ("old.example", "2"),
        ("fresh.example", "2"),
    ]


@pytest.mark.parametrize(
    ("fresh", "said"),
    [
        (None, "expired at 2026-06-01T11:59:00+00:00 before the part was sent;"),
        ([], "expired"),  # a refresh with no operations: refused as a gap first
        ("expired", "even with the fresh operations App Store Connect gave"),
        ("other-split", "divide the file differently"),
    ],
)
def test_an_expired_link_without_fresh_ones_fails_the_upload(
    data_file: Tuple[str, bytes], fresh: Any, said: str
) -> None:
    path, data = data_file
    storage = Storage()
    run = Run(storage)
    old = expiring(data, NOW - timedelta(minutes=1))
    if fresh == "expired":
        fresh = expiring(data, NOW - timedelta(seconds=1), host="fresh.example")
    elif fresh == "other-split":
        fresh = split(len(data), 500_000, expiration=NOW + timedelta(minutes=15))
    error: Type[AscTokenError] = OperationsGapError if fresh == [] else OperationExpiredError
    with pytest.raises(error) as raised:
        run.send(path, old, fresh)
    if error is OperationExpiredError:
        message = raised.value.message
        assert said in message and "part 1 (bytes 0-599999) of App.ipa" in message and "re-run" in message
        assert SIGNATURE not in message
    assert storage.sent == [] and run.refreshes == (0 if fresh is None else 1)


# --- a real HTTP exchange: streamed bodies, no credential even with requests' .netrc lookup --------------


Received = List[Tuple[str, Dict[str, str], bytes]]  # path and query, headers, body


@pytest.fixture
def recorder() -> Iterator[Tuple[str, Received]]:
    """A loopback server that takes any PUT and records it: the object storage at its plainest."""
    received: Received = []

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), body))
            self.send_response(200)
            self.send_header("ETag", '"ok"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


def test_parts_are_streamed_to_a_real_server_byte_for_byte(
    data_file: Tuple[str, bytes], recorder: Tuple[str, Received]
) -> None:
    path, data = data_file
    url, received = recorder
    plan = moved(split(len(data), 262_144), url)
    sent = send_parts(path, plan, SendOptions(parallel=4, env={}))
    assert [receipt.etag for receipt in sent.parts] == ['"ok"'] * 5
    by_part = {p.split("?")[0].rsplit("/", 1)[-1]: body for p, _, body in received}
    assert b"".join(by_part[str(n)] for n in range(1, 6)) == data
    assert all("Authorization" not in headers for _, headers, _ in received)


def test_the_storage_session_reads_no_environment_and_sends_large_blocks() -> None:
    session: Any = storage_session({})
    assert session.trust_env is False  # no proxy or .netrc from the environment (transport.default_session)
    for url in ("https://storage.example/b", "http://127.0.0.1:9/b"):
        assert session.get_adapter(url).poolmanager.connection_pool_kw["blocksize"] == 256 * 1024


NETRC_PROBE = """
import sys
import requests
from asc_token.operations import SendOptions, parse_operations, send_parts
path, url, control = sys.argv[1:4]
plain = lambda env: requests.Session()  # trust_env on: requests adds the .netrc login for this host
item = {"method": "PUT", "url": url, "offset": 0, "length": 5, "requestHeaders": []}
send_parts(path, parse_operations([item]), SendOptions(open_session=plain, env={}))
requests.Session().put(control, data=b"control")  # the same session without send_parts' explicit auth
"""


def test_no_netrc_login_is_sent_even_by_a_session_that_reads_netrc(
    tmp_path: Path, recorder: Tuple[str, Received]
) -> None:
    url, received = recorder
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login storage-user password storage-secret\n")
    netrc.chmod(0o600)
    (tmp_path / "five").write_bytes(b"12345")
    env = {**os.environ, "NETRC": str(netrc), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}
    probe = [sys.executable, "-c", NETRC_PROBE, str(tmp_path / "five"), f"{url}/b/k/1?{SIGNATURE}", f"{url}/control"]
    completed = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    (_, part_headers, body), (control, control_headers, _) = received
    assert body == b"12345" and "Authorization" not in part_headers
    # The control request proves the probe: the same kind of session sent the login when not told otherwise.
    assert control == "/control" and control_headers["Authorization"].startswith("Basic ")


# --- against the object storage stand-in (devtools/object_storage.py) ------------------------------


def storage_options(slept: Optional[List[float]] = None, **options: Any) -> SendOptions:
    """Real sessions and clocks; sleeps recorded, not waited."""
    recorded: List[float] = slept if slept is not None else []
    return SendOptions(**{"parallel": 4, "env": {}, "sleep": recorded.append, "jitter": lambda: 0.0, **options})


@pytest.fixture
def big_file(tmp_path: Path) -> Tuple[str, bytes]:
    data = os.urandom(1024 * 1024 + 777)
    path = tmp_path / "App.ipa"
    path.write_bytes(data)
    return str(path), data


def test_parallel_parts_out_of_order_are_reassembled_byte_for_byte_with_no_credential(
    storage: ObjectStorage, big_file: Tuple[str, bytes]
) -> None:
    path, data = big_file
    key, items = storage.reserve(len(data), part_size=64 * 1024, shuffle=True)
    operations = parse_operations(items)
    assert [op.part_number for op in operations] != sorted(op.part_number or 0 for op in operations)
    progress = io.StringIO()
    sent = send_parts(path, operations, storage_options(progress=progress))
    assert storage.complete(key) and storage.assembled(key) == data
    assert [receipt.etag for receipt in sent.parts] == [
        f'"{hashlib.md5(data[op.offset : op.end]).hexdigest()}"'  # noqa: S324 - S3's ETag
        for op in check_plan(operations, len(data))
    ]
    assert storage.credentials_seen() == [] and {r.status for r in storage.received} == {200}
    assert len(storage.received) == len(operations)
    assert progress.getvalue().splitlines()[-1].startswith("Uploaded App.ipa: 1.0 MB in ")


def test_the_asset_form_without_part_numbers_is_sent_too(storage: ObjectStorage, big_file: Tuple[str, bytes]) -> None:
    path, data = big_file
    key, items = storage.reserve(len(data), part_size=300_000, form="asset")
    sent = send_parts(path, parse_operations(items), storage_options())
    assert storage.assembled(key) == data
    assert [receipt.label.split(" (")[0] for receipt in sent.parts] == ["part 1", "part 2", "part 3", "part 4"]


def test_faults_per_part_are_retried_and_the_file_still_arrives_whole(
    storage: ObjectStorage, big_file: Tuple[str, bytes]
) -> None:
    path, data = big_file
    key, items = storage.reserve(len(data), part_size=256 * 1024)
    storage.fail(2, status=500, times=2, key=key)
    storage.fail(3, status=503, retry_after=3, key=key)
    storage.reset(4, key=key)
    slept: List[float] = []
    sent = send_parts(path, parse_operations(items), storage_options(slept))
    assert storage.assembled(key) == data and storage.credentials_seen() == []
    assert [receipt.attempts for receipt in sent.parts] == [1, 3, 2, 2, 1]
    assert sorted(slept) == [0.5, 0.5, 1.0, 3.0]  # backoff 1 s then 2 s with no jitter (halved); Retry-After 3
    statuses = sorted((r.part or 0, r.status) for r in storage.received)
    assert statuses == [(1, 200), (2, 200), (2, 500), (2, 500), (3, 200), (3, 503), (4, 0), (4, 200), (5, 200)]


def test_a_part_the_storage_keeps_failing_fails_the_upload(storage: ObjectStorage, big_file: Tuple[str, bytes]) -> None:
    path, data = big_file
    key, items = storage.reserve(len(data), part_size=512 * 1024)
    storage.fail(2, status=503, times=10, key=key)
    with pytest.raises(PartServerError) as raised:
        send_parts(path, parse_operations(items), storage_options(parallel=1))
    assert "answered 503 to part 2 (bytes 524288-1048575) of App.ipa on all 5 attempts" in raised.value.message
    assert (
        f"The object storage at {storage.url}/{BUCKET}/{key}/2 answered" in raised.value.message
        and "X-Amz" not in raised.value.message
    )
    assert "SlowDown" in raised.value.details


def test_links_the_storage_says_expired_are_replaced_once_by_fresh_ones(
    storage: ObjectStorage, big_file: Tuple[str, bytes]
) -> None:
    path, data = big_file
    key, items = storage.reserve(len(data), part_size=256 * 1024)
    storage.expire(key)
    asked: List[int] = []

    def refresh() -> List[UploadOperation]:
        asked.append(1)
        return parse_operations(storage.operations(key))

    sent = send_parts(path, parse_operations(items), storage_options(), refresh)
    assert asked == [1] and sent.refreshed and storage.assembled(key) == data
    expired = [r for r in storage.received if r.status == 403]
    assert 1 <= len(expired) <= 4  # the parts in flight when the links ran out; none after the refresh


def test_links_past_their_expiration_are_not_used(storage: ObjectStorage, big_file: Tuple[str, bytes]) -> None:
    path, data = big_file
    key, items = storage.reserve(len(data), part_size=256 * 1024, expires_in=5.0)  # inside the margin
    fresh = storage.operations(key, expires_in=900.0)
    sent = send_parts(path, parse_operations(items), storage_options(), lambda: parse_operations(fresh))
    assert sent.refreshed and storage.assembled(key) == data
    fresh_queries = {item["url"].split("?", 1)[1] for item in fresh}
    assert {r.query for r in storage.received} <= fresh_queries and len(storage.received) == 5


def test_expired_links_without_a_refresh_fail_before_anything_is_sent(
    storage: ObjectStorage, big_file: Tuple[str, bytes]
) -> None:
    path, data = big_file
    _, items = storage.reserve(len(data), part_size=256 * 1024, expires_in=1.0)
    with pytest.raises(OperationExpiredError) as raised:
        send_parts(path, parse_operations(items), storage_options())
    assert "expired at " in raised.value.message and storage.received == []
