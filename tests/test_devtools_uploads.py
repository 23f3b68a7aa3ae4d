"""The stand-ins for Apple's upload path (issue 28): devtools/object_storage.py, the loopback listener that
upload operations point at, and the App Store Connect resources that hand them out (build uploads, their
files, processing, the other asset types). Driven with plain ``requests`` and tokens signed by PyJWT,
never with the product's code: these are the rules the product is tested against."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterator

import pytest
import requests

from devtools.object_storage import BUCKET, ObjectStorage


@pytest.fixture
def storage() -> Iterator[ObjectStorage]:
    with ObjectStorage(seed=28) as running:
        yield running


def put_part(operation: Dict[str, Any], data: bytes, **extra_headers: str) -> requests.Response:
    """One operation done as Apple asks: its method, its URL, exactly its headers, its bytes."""
    headers = {header["name"]: header["value"] for header in operation["requestHeaders"]}
    headers.update(extra_headers)
    body = data[operation["offset"] : operation["offset"] + operation["length"]]
    return requests.request(operation["method"], operation["url"], data=body, headers=headers, timeout=10)


def test_operations_are_apple_shaped_and_cover_the_file(storage: ObjectStorage) -> None:
    key, delivery = storage.reserve(2500, part_size=1000)
    assert [(op["partNumber"], op["offset"], op["length"]) for op in delivery] == [
        (1, 0, 1000),
        (2, 1000, 1000),
        (3, 2000, 500),
    ]
    for op in delivery:
        assert op["method"] == "PUT"
        assert op["url"].startswith(f"{storage.url}/{BUCKET}/{key}/{op['partNumber']}?")
        assert "X-Amz-Signature=" in op["url"] and "X-Amz-Expires=" in op["url"]
        assert {"name": "Content-Type", "value": "application/octet-stream"} in op["requestHeaders"]
        assert op["expiration"].endswith("Z")
    _, assets = storage.reserve(10, part_size=4, form="asset")
    assert [sorted(op) for op in assets] == [["length", "method", "offset", "requestHeaders", "url"]] * 3
    with pytest.raises(ValueError):
        storage.reserve(0)


def test_parts_sent_in_parallel_and_out_of_order_are_reassembled_byte_for_byte(storage: ObjectStorage) -> None:
    data = os.urandom(64 * 1024 + 123)
    key, operations = storage.reserve(len(data), part_size=4096, shuffle=True)
    assert [op["partNumber"] for op in operations] != sorted(op["partNumber"] for op in operations)
    assert not storage.complete(key)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda op: put_part(op, data), operations))
    assert [answer.status_code for answer in answers] == [200] * len(operations)
    for op, answer in zip(operations, answers):
        part = data[op["offset"] : op["offset"] + op["length"]]
        assert answer.headers["ETag"] == f'"{hashlib.md5(part).hexdigest()}"'  # noqa: S324 - S3's ETag
    assert storage.complete(key)
    assert storage.assembled(key) == data
    assert storage.digest(key, "sha256") == hashlib.sha256(data).hexdigest()
    assert len(storage.parts_received(key)) == len(operations)


def test_a_partial_upload_is_not_complete_and_leaves_zeros(storage: ObjectStorage) -> None:
    data = bytes(range(256)) * 4
    key, operations = storage.reserve(len(data), part_size=300)
    assert put_part(operations[1], data).status_code == 200
    assert not storage.complete(key)
    assembled = storage.assembled(key)
    assert len(assembled) == len(data) and assembled[300:600] == data[300:600] and assembled[:300] == bytes(300)


@pytest.mark.parametrize("header", ["Authorization", "Proxy-Authorization", "X-Api-Key", "Cookie"])
def test_a_credential_is_refused_and_recorded(storage: ObjectStorage, header: str) -> None:
    data = b"x" * 10
    key, operations = storage.reserve(len(data))
    answer = put_part(operations[0], data, **{header: "Bearer eyJhbGciOiJFUzI1NiJ9.secret"})
    assert answer.status_code == 400 and b"<Code>InvalidArgument</Code>" in answer.content
    assert not storage.complete(key)
    seen = storage.credentials_seen()
    assert len(seen) == 1 and seen[0].headers[header].endswith(".secret") and seen[0].status == 400
    assert put_part(operations[0], data).status_code == 200  # the same part, without it, is taken


def test_every_request_is_recorded_with_its_headers(storage: ObjectStorage) -> None:
    data = b"abc" * 100
    _, operations = storage.reserve(len(data), part_size=100)
    for op in operations:
        put_part(op, data, **{"User-Agent": "asc-token/test"})
    assert [(r.method, r.part, r.status, r.body_length) for r in storage.received] == [
        ("PUT", 1, 200, 100),
        ("PUT", 2, 200, 100),
        ("PUT", 3, 200, 100),
    ]
    assert all(r.headers["User-Agent"] == "asc-token/test" for r in storage.received)
    assert storage.credentials_seen() == []


def test_requests_are_checked_as_s3_checks_a_presigned_url(storage: ObjectStorage) -> None:
    data = b"0123456789"
    key, (operation,) = storage.reserve(len(data))
    headers = {header["name"]: header["value"] for header in operation["requestHeaders"]}

    def refused(answer: requests.Response, status: int, code: str) -> None:
        assert answer.status_code == status and f"<Code>{code}</Code>".encode() in answer.content, answer.text

    refused(requests.post(operation["url"], data=data, headers=headers, timeout=10), 403, "SignatureDoesNotMatch")
    refused(requests.put(operation["url"], data=data, timeout=10), 403, "SignatureDoesNotMatch")  # no headers
    wrong_type = {**headers, "Content-Type": "application/zip"}
    refused(requests.put(operation["url"], data=data, headers=wrong_type, timeout=10), 403, "SignatureDoesNotMatch")
    refused(requests.put(operation["url"], data=data[:5], headers=headers, timeout=10), 400, "InvalidRequest")
    tampered = operation["url"].replace("X-Amz-Expires=", "X-Amz-Expires=9")
    refused(requests.put(tampered, data=data, headers=headers, timeout=10), 403, "SignatureDoesNotMatch")
    chunked = requests.put(operation["url"], data=iter([data]), headers=headers, timeout=10)
    refused(chunked, 411, "MissingContentLength")
    refused(requests.put(f"{storage.url}/{BUCKET}/nope/1", data=data, timeout=10), 404, "NoSuchUpload")
    assert not storage.complete(key)
    assert put_part(operation, data).status_code == 200 and storage.assembled(key) == data


def test_expired_operations_answer_403_and_fresh_ones_work(storage: ObjectStorage) -> None:
    data = b"z" * 50
    key, operations = storage.reserve(len(data), part_size=25)
    storage.expire(key)
    answer = put_part(operations[0], data)
    assert answer.status_code == 403 and b"Request has expired" in answer.content
    fresh = storage.operations(key)
    assert [put_part(op, data).status_code for op in fresh] == [200, 200]
    assert storage.complete(key)


def test_operations_expire_by_the_clock() -> None:
    now = [1_800_000_000.0]
    with ObjectStorage(clock=lambda: now[0]) as storage:
        data = b"q" * 8
        _, (operation,) = storage.reserve(len(data), expires_in=60)
        assert operation["expiration"] == "2027-01-15T08:01:00.000Z"
        now[0] += 61
        assert put_part(operation, data).status_code == 403


def test_faults_are_served_per_part(storage: ObjectStorage) -> None:
    data = os.urandom(3000)
    key, operations = storage.reserve(len(data), part_size=1000)
    storage.fail(2, status=503, times=2, retry_after=1)
    storage.reset(3)
    first = [put_part(op, data) for op in operations[:2]]
    assert [answer.status_code for answer in first[:2]] == [200, 503]
    assert first[1].headers["Retry-After"] == "1" and b"<Code>SlowDown</Code>" in first[1].content
    with pytest.raises(requests.ConnectionError):
        put_part(operations[2], data)
    assert put_part(operations[1], data).status_code == 503  # the second of two
    assert put_part(operations[1], data).status_code == 200
    assert put_part(operations[2], data).status_code == 200
    assert storage.complete(key) and storage.assembled(key) == data
    assert [r.status for r in storage.received if r.part == 3] == [0, 200]  # 0: reset, no answer


def test_a_fault_for_one_upload_leaves_others_alone(storage: ObjectStorage) -> None:
    data = b"m" * 10
    key, (operation,) = storage.reserve(len(data))
    other_key, (other,) = storage.reserve(len(data))
    storage.fail(1, status=500, key=other_key)
    assert put_part(operation, data).status_code == 200
    answer = put_part(other, data)
    assert answer.status_code == 500 and b"<Code>InternalError</Code>" in answer.content
    assert storage.complete(key) and not storage.complete(other_key)


def test_shuffle_keeps_each_part_at_its_offset(storage: ObjectStorage) -> None:
    _, operations = storage.reserve(10_000, part_size=999, shuffle=True)
    placed = sorted((op["offset"], op["partNumber"]) for op in operations)
    assert [number for _, number in placed] == list(range(1, len(operations) + 1))
    assert sum(op["length"] for op in operations) == 10_000
