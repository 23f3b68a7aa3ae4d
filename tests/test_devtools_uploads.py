"""The stand-ins for Apple's upload path (issue 28): devtools/object_storage.py, the loopback listener that
upload operations point at, and the App Store Connect resources that hand them out (build uploads, their
files, processing, the other asset types). Driven with plain ``requests`` and tokens signed by PyJWT,
never with the product's code: these are the rules the product is tested against."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, cast

import jwt
import pytest
import requests

from devtools.object_storage import BUCKET, ObjectStorage
from devtools.standin import DEMO_APP_ID, AppStoreConnectStandIn
from devtools.uploads import ASSET_TYPES, AssetType

from .runner import ISSUER_ID, KEY_ID, KeyMaterial, needs_openapi, openapi_document


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


# --- the App Store Connect side: build uploads, their files, processing ------------------------------


class Client:
    """Plain requests to the stand-in with a freshly signed token each time (as Apple's guide says)."""

    def __init__(self, api: AppStoreConnectStandIn, key: KeyMaterial) -> None:
        self.api, self.key = api, key

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> requests.Response:
        now = int(time.time())
        claims = {"iss": ISSUER_ID, "iat": now, "exp": now + 600, "aud": "appstoreconnect-v1"}
        token = jwt.encode(claims, self.key.key, algorithm="ES256", headers={"kid": KEY_ID, "typ": "JWT"})
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(method, self.api.url + path, json=body, headers=headers, timeout=10)

    def ok(self, method: str, path: str, body: Optional[Dict[str, Any]] = None, status: int = 200) -> Dict[str, Any]:
        answer = self.call(method, path, body)
        assert answer.status_code == status, answer.text
        return cast(Dict[str, Any], answer.json())

    def reserve_build(self, version: str = "1.0", build: str = "7", platform: str = "IOS") -> Dict[str, Any]:
        body = {
            "data": {
                "type": "buildUploads",
                "attributes": {"cfBundleShortVersionString": version, "cfBundleVersion": build, "platform": platform},
                "relationships": {"app": {"data": {"type": "apps", "id": DEMO_APP_ID}}},
            }
        }
        return cast(Dict[str, Any], self.ok("POST", "/v1/buildUploads", body, 201)["data"])

    def reserve_file(self, upload_id: str, size: int, name: str = "Demo.ipa") -> Dict[str, Any]:
        body = {
            "data": {
                "type": "buildUploadFiles",
                "attributes": {"assetType": "ASSET", "fileName": name, "fileSize": size, "uti": "com.apple.ipa"},
                "relationships": {"buildUpload": {"data": {"type": "buildUploads", "id": upload_id}}},
            }
        }
        return cast(Dict[str, Any], self.ok("POST", "/v1/buildUploadFiles", body, 201)["data"])

    def commit(self, file_id: str, checksums: Dict[str, Any], path: str = "/v1/buildUploadFiles") -> requests.Response:
        body = {"data": {"type": path.rsplit("/", 1)[1], "id": file_id, "attributes": {"uploaded": True, **checksums}}}
        return self.call("PATCH", f"{path}/{file_id}", body)


def sha256_of(data: bytes) -> Dict[str, Any]:
    return {"sourceFileChecksums": {"file": {"hash": hashlib.sha256(data).hexdigest(), "algorithm": "SHA_256"}}}


@pytest.fixture
def client(api: AppStoreConnectStandIn, key: KeyMaterial) -> Client:
    api.uploads.part_size = 1000
    return Client(api, key)


def poll(client: Client, path: str, done: Callable[[Dict[str, Any]], bool], limit: int = 20) -> List[Dict[str, Any]]:
    """GET ``path`` until ``done`` says so (bounded): every answer's data, in order."""
    seen = []
    for _ in range(limit):
        seen.append(client.ok("GET", path)["data"])
        if done(seen[-1]):
            return seen
    raise AssertionError(f"{path} never finished: {seen[-1]}")


def upload_parts(operations: List[Dict[str, Any]], data: bytes) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert [answer.status_code for answer in pool.map(lambda op: put_part(op, data), operations)] == [200] * len(
            operations
        )


def test_a_build_upload_from_reservation_to_a_valid_build(api: AppStoreConnectStandIn, client: Client) -> None:
    api.uploads.shuffle_operations = True
    data = os.urandom(5500)
    upload = client.reserve_build()
    assert upload["type"] == "buildUploads" and upload["attributes"]["state"]["state"] == "AWAITING_UPLOAD"
    assert upload["attributes"]["platform"] == "IOS" and upload["relationships"]["build"]["data"] is None
    file = client.reserve_file(upload["id"], len(data))
    attributes = file["attributes"]
    assert attributes["assetDeliveryState"]["state"] == "AWAITING_UPLOAD"
    assert (attributes["fileName"], attributes["fileSize"], attributes["uti"]) == ("Demo.ipa", 5500, "com.apple.ipa")
    operations = attributes["uploadOperations"]
    assert sorted(op["partNumber"] for op in operations) == [1, 2, 3, 4, 5, 6]
    assert [op["partNumber"] for op in operations] != [1, 2, 3, 4, 5, 6]  # shuffled, as a test may ask
    assert all(op["url"].startswith(api.storage.url) and op["expiration"].endswith("Z") for op in operations)
    upload_parts(operations, data)
    committed = client.commit(file["id"], sha256_of(data))
    assert committed.status_code == 200, committed.text
    assert committed.json()["data"]["attributes"]["assetDeliveryState"]["state"] == "UPLOAD_COMPLETE"
    file_states = poll(
        client,
        f"/v1/buildUploadFiles/{file['id']}",
        lambda d: d["attributes"]["assetDeliveryState"]["state"] == "COMPLETE",
    )
    assert [d["attributes"]["assetDeliveryState"]["state"] for d in file_states] == ["UPLOAD_COMPLETE", "COMPLETE"]
    upload_states = poll(
        client, f"/v1/buildUploads/{upload['id']}", lambda d: d["attributes"]["state"]["state"] == "COMPLETE"
    )
    assert [d["attributes"]["state"]["state"] for d in upload_states] == ["PROCESSING", "COMPLETE"]
    build_id = upload_states[-1]["relationships"]["build"]["data"]["id"]
    assert upload_states[-1]["relationships"]["assetFile"]["data"] == {"type": "buildUploadFiles", "id": file["id"]}
    builds = poll(client, f"/v1/builds/{build_id}", lambda d: d["attributes"]["processingState"] != "PROCESSING")
    assert [d["attributes"]["processingState"] for d in builds] == ["PROCESSING", "VALID"]
    assert builds[-1]["attributes"]["version"] == "7"
    assert api.storage.assembled(api.uploads.files[file["id"]].storage_key) == data
    assert api.storage.credentials_seen() == []


def test_processing_that_fails_says_why(api: AppStoreConnectStandIn, client: Client) -> None:
    api.uploads.polls_per_state = 0
    api.uploads.processing_outcome = "FAILED"
    api.uploads.processing_warnings = [{"code": "90725", "description": "SDK version issue."}]
    data = b"ipa" * 100
    upload = client.reserve_build(version="2.0", build="12")
    file = client.reserve_file(upload["id"], len(data))
    upload_parts(file["attributes"]["uploadOperations"], data)
    assert client.commit(file["id"], sha256_of(data)).status_code == 200
    states = poll(client, f"/v1/buildUploads/{upload['id']}", lambda d: d["attributes"]["state"]["state"] == "FAILED")
    state = states[-1]["attributes"]["state"]
    assert [error["code"] for error in state["errors"]] == ["90189"]
    assert "'12'" in state["errors"][0]["description"] and "'2.0'" in state["errors"][0]["description"]
    assert state["warnings"] == [{"code": "90725", "description": "SDK version issue."}]
    assert states[-1]["relationships"]["build"]["data"] is None


def test_processing_can_end_with_an_invalid_build(api: AppStoreConnectStandIn, client: Client) -> None:
    api.uploads.polls_per_state = 0
    api.uploads.processing_outcome = "INVALID"
    data = b"pkg" * 10
    upload = client.reserve_build(platform="MAC_OS")
    file = client.reserve_file(upload["id"], len(data), "Demo.pkg")
    upload_parts(file["attributes"]["uploadOperations"], data)
    assert client.commit(file["id"], sha256_of(data)).status_code == 200
    done = poll(client, f"/v1/buildUploads/{upload['id']}", lambda d: d["attributes"]["state"]["state"] == "COMPLETE")
    build_id = done[-1]["relationships"]["build"]["data"]["id"]
    assert client.ok("GET", f"/v1/builds/{build_id}")["data"]["attributes"]["processingState"] == "INVALID"


def test_a_wrong_checksum_or_a_missing_part_fails_the_delivery(api: AppStoreConnectStandIn, client: Client) -> None:
    data = os.urandom(2500)
    upload = client.reserve_build()
    file = client.reserve_file(upload["id"], len(data))
    upload_parts(file["attributes"]["uploadOperations"], data)
    assert client.commit(file["id"], sha256_of(data + b"!")).status_code == 200
    states = poll(
        client,
        f"/v1/buildUploadFiles/{file['id']}",
        lambda d: d["attributes"]["assetDeliveryState"]["state"] == "FAILED",
    )
    assert states[-1]["attributes"]["assetDeliveryState"]["errors"][0]["code"] == "CHECKSUM_MISMATCH"
    failed = client.ok("GET", f"/v1/buildUploads/{upload['id']}")["data"]["attributes"]["state"]
    assert failed["state"] == "FAILED" and failed["errors"][0]["code"] == "CHECKSUM_MISMATCH"

    other = client.reserve_build(build="8")
    partial = client.reserve_file(other["id"], len(data))
    upload_parts(partial["attributes"]["uploadOperations"][:1], data)
    assert client.commit(partial["id"], sha256_of(data)).status_code == 200
    states = poll(
        client,
        f"/v1/buildUploadFiles/{partial['id']}",
        lambda d: d["attributes"]["assetDeliveryState"]["state"] == "FAILED",
    )
    assert states[-1]["attributes"]["assetDeliveryState"]["errors"][0]["code"] == "UPLOAD_INCOMPLETE"


def test_a_commit_is_checked_as_apple_checks_it(client: Client) -> None:
    upload = client.reserve_build()
    file = client.reserve_file(upload["id"], 10)
    for checksums, code in (
        ({}, "ENTITY_ERROR.ATTRIBUTE.REQUIRED"),
        ({"sourceFileChecksums": {"file": {"hash": "ab", "algorithm": "CRC32"}}}, "ENTITY_ERROR.ATTRIBUTE.INVALID"),
        ({"sourceFileChecksum": "0" * 32}, "ENTITY_ERROR.ATTRIBUTE.UNKNOWN"),  # not an attribute of this type
    ):
        answer = client.commit(file["id"], checksums)
        assert answer.status_code == 409 and answer.json()["errors"][0]["code"] == code, answer.text
    assert client.commit("nope", sha256_of(b"")).status_code == 404


def test_the_same_build_number_again_is_a_409_until_the_first_is_deleted(
    api: AppStoreConnectStandIn, client: Client
) -> None:
    first = client.reserve_build(version="3.1", build="31")
    answer = client.call(
        "POST",
        "/v1/buildUploads",
        {
            "data": {
                "type": "buildUploads",
                "attributes": {"cfBundleShortVersionString": "3.1", "cfBundleVersion": "31", "platform": "IOS"},
                "relationships": {"app": {"data": {"type": "apps", "id": DEMO_APP_ID}}},
            }
        },
    )
    assert answer.status_code == 409
    (error,) = answer.json()["errors"]
    assert error["code"] == "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE" and "'31'" in error["detail"]
    assert error["source"] == {"pointer": "/data/attributes/cfBundleVersion"}
    client.reserve_build(version="3.1", build="31", platform="TV_OS")  # another platform is another build
    assert client.call("DELETE", f"/v1/buildUploads/{first['id']}").status_code == 204
    assert api.uploads.deleted_build_uploads == [first["id"]]
    assert client.call("GET", f"/v1/buildUploads/{first['id']}").status_code == 404
    client.reserve_build(version="3.1", build="31")


def test_reservations_are_checked_as_apple_checks_them(client: Client) -> None:
    def refused(path: str, body: Dict[str, Any], status: int, code: str) -> None:
        answer = client.call("POST", path, body)
        assert answer.status_code == status and answer.json()["errors"][0]["code"] == code, answer.text

    app = {"app": {"data": {"type": "apps", "id": DEMO_APP_ID}}}
    good = {"cfBundleShortVersionString": "1.0", "cfBundleVersion": "1", "platform": "IOS"}
    refused(
        "/v1/buildUploads",
        {"data": {"type": "builds", "attributes": good, "relationships": app}},
        409,
        "ENTITY_ERROR.INCLUDED.INVALID",
    )
    missing = {k: v for k, v in good.items() if k != "cfBundleVersion"}
    refused(
        "/v1/buildUploads",
        {"data": {"type": "buildUploads", "attributes": missing, "relationships": app}},
        409,
        "ENTITY_ERROR.ATTRIBUTE.REQUIRED",
    )
    watch = {**good, "platform": "WATCH_OS"}
    refused(
        "/v1/buildUploads",
        {"data": {"type": "buildUploads", "attributes": watch, "relationships": app}},
        409,
        "ENTITY_ERROR.ATTRIBUTE.INVALID",
    )
    no_app = {"app": {"data": {"type": "apps", "id": "999"}}}
    refused(
        "/v1/buildUploads",
        {"data": {"type": "buildUploads", "attributes": good, "relationships": no_app}},
        404,
        "NOT_FOUND",
    )
    authorization = str(client.call("GET", "/v1/apps").request.headers["Authorization"])
    answer = requests.post(
        client.api.url + "/v1/buildUploads", data=b"{", headers={"Authorization": authorization}, timeout=10
    )
    assert answer.status_code == 422
    upload = client.reserve_build()
    link = {"buildUpload": {"data": {"type": "buildUploads", "id": upload["id"]}}}
    file = {"assetType": "ASSET", "fileName": "a.ipa", "fileSize": 10, "uti": "com.apple.ipa"}
    refused(
        "/v1/buildUploadFiles",
        {"data": {"type": "buildUploadFiles", "attributes": {**file, "uti": "public.zip"}, "relationships": link}},
        409,
        "ENTITY_ERROR.ATTRIBUTE.INVALID",
    )
    refused(
        "/v1/buildUploadFiles",
        {"data": {"type": "buildUploadFiles", "attributes": {**file, "fileSize": 0}, "relationships": link}},
        409,
        "ENTITY_ERROR.ATTRIBUTE.INVALID",
    )
    refused(
        "/v1/buildUploadFiles",
        {"data": {"type": "buildUploadFiles", "attributes": file}},
        409,
        "ENTITY_ERROR.RELATIONSHIP.REQUIRED",
    )


def test_a_key_whose_role_may_not_upload_gets_403(
    api: AppStoreConnectStandIn, client: Client, key: KeyMaterial
) -> None:
    api.register(KEY_ID, key.key.public_key(), ISSUER_ID, resources=["apps", "builds"])
    answer = client.call("POST", "/v1/buildUploads", {"data": {}})
    assert answer.status_code == 403 and answer.json()["errors"][0]["code"] == "FORBIDDEN_ERROR"
    assert api.uploads.build_uploads == {}


def test_expired_operations_are_refused_and_a_get_gives_fresh_ones(api: AppStoreConnectStandIn, client: Client) -> None:
    data = os.urandom(1500)
    upload = client.reserve_build()
    file = client.reserve_file(upload["id"], len(data))
    first = file["attributes"]["uploadOperations"]
    api.storage.expire(api.uploads.files[file["id"]].storage_key)
    answer = put_part(first[0], data)
    assert answer.status_code == 403 and b"Request has expired" in answer.content
    fresh = client.ok("GET", f"/v1/buildUploadFiles/{file['id']}")["data"]["attributes"]["uploadOperations"]
    assert [op["url"] for op in fresh] != [op["url"] for op in first]
    assert min(op["expiration"] for op in fresh) >= max(op["expiration"] for op in first)
    upload_parts(fresh, data)
    assert client.commit(file["id"], sha256_of(data)).status_code == 200
    committed = client.ok("GET", f"/v1/buildUploadFiles/{file['id']}")["data"]["attributes"]
    assert committed["uploadOperations"] is None  # nothing more to send once committed


def test_operation_lifetime_sets_the_expiration(api: AppStoreConnectStandIn, client: Client) -> None:
    api.uploads.operation_lifetime = 0.3
    upload = client.reserve_build()
    (operation,) = client.reserve_file(upload["id"], 10)["attributes"]["uploadOperations"]
    time.sleep(0.4)
    assert put_part(operation, b"0123456789").status_code == 403


def test_operations_expired_on_arrival_then_fresh_ones(api: AppStoreConnectStandIn, client: Client) -> None:
    api.uploads.reservation_lifetime = -5
    data = b"0123456789"
    upload = client.reserve_build()
    file = client.reserve_file(upload["id"], len(data))
    (stale,) = file["attributes"]["uploadOperations"]
    assert stale["expiration"] < time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    assert put_part(stale, data).status_code == 403
    (fresh,) = client.ok("GET", f"/v1/buildUploadFiles/{file['id']}")["data"]["attributes"]["uploadOperations"]
    assert put_part(fresh, data).status_code == 200


def test_operations_can_point_at_another_host(api: AppStoreConnectStandIn, client: Client) -> None:
    api.uploads.operation_url_base = "http://storage.example.com"
    upload = client.reserve_build()
    file = client.reserve_file(upload["id"], 2500)
    urls = [op["url"] for op in file["attributes"]["uploadOperations"]]
    urls += [
        op["url"]
        for op in client.ok("GET", f"/v1/buildUploadFiles/{file['id']}")["data"]["attributes"]["uploadOperations"]
    ]
    assert len(urls) == 6 and all(url.startswith(f"http://storage.example.com/{BUCKET}/") for url in urls)


def test_a_fault_on_one_part_then_the_retry(api: AppStoreConnectStandIn, client: Client) -> None:
    data = os.urandom(3000)
    upload = client.reserve_build()
    file = client.reserve_file(upload["id"], len(data))
    api.storage.fail(2, status=503)
    api.storage.reset(3)
    operations = sorted(file["attributes"]["uploadOperations"], key=lambda op: op["partNumber"])
    assert put_part(operations[0], data).status_code == 200
    assert put_part(operations[1], data).status_code == 503
    with pytest.raises(requests.ConnectionError):
        put_part(operations[2], data)
    upload_parts(operations[1:], data)
    assert api.storage.assembled(api.uploads.files[file["id"]].storage_key) == data


def test_a_credential_sent_to_storage_is_recorded(api: AppStoreConnectStandIn, client: Client) -> None:
    upload = client.reserve_build()
    (operation,) = client.reserve_file(upload["id"], 10)["attributes"]["uploadOperations"]
    leaked = str(client.call("GET", "/v1/apps").request.headers["Authorization"])
    assert put_part(operation, b"0123456789", Authorization=leaked).status_code == 400
    (seen,) = api.storage.credentials_seen()
    assert seen.headers["Authorization"] == leaked and seen.part == 1


# --- the other asset types --------------------------------------------------------------------------


def asset_reservation(path: str, size: int) -> Dict[str, Any]:
    kind = ASSET_TYPES[path]
    attributes: Dict[str, Any] = {"fileName": "shot.png", "fileSize": size}
    extra = {"appEventAssetType": "EVENT_CARD", "assetType": "ASSET", "uti": "com.apple.ipa"}
    attributes.update({name: extra[name] for name in kind.required_attributes if name in extra})
    relationships = {name: {"data": {"type": f"{name}s", "id": "REL-1"}} for name in kind.required_relationships}
    return {"data": {"type": kind.type_name, "attributes": attributes, "relationships": relationships}}


def test_an_app_screenshot_is_reserved_uploaded_and_committed_with_its_md5(
    api: AppStoreConnectStandIn, client: Client
) -> None:
    data = os.urandom(2100)
    created = client.ok("POST", "/v1/appScreenshots", asset_reservation("/v1/appScreenshots", len(data)), 201)["data"]
    assert created["type"] == "appScreenshots"
    assert created["relationships"]["appScreenshotSet"]["data"] == {"type": "appScreenshotSets", "id": "REL-1"}
    operations = created["attributes"]["uploadOperations"]
    assert [sorted(op) for op in operations] == [["length", "method", "offset", "requestHeaders", "url"]] * 3
    assert created["attributes"]["assetDeliveryState"]["state"] == "AWAITING_UPLOAD"
    upload_parts(operations, data)
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - Apple's checksum for this type
    answer = client.commit(created["id"], {"sourceFileChecksum": md5}, "/v1/appScreenshots")
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["attributes"]["sourceFileChecksum"] == md5
    states = poll(
        client,
        f"/v1/appScreenshots/{created['id']}",
        lambda d: d["attributes"]["assetDeliveryState"]["state"] == "COMPLETE",
    )
    assert states[-1]["attributes"]["assetDeliveryState"]["state"] == "COMPLETE"
    assert client.call("DELETE", f"/v1/appScreenshots/{created['id']}").status_code == 204
    assert api.uploads.deleted_assets == [created["id"]]


def test_a_wrong_md5_fails_the_screenshot(client: Client) -> None:
    data = b"png" * 10
    created = client.ok("POST", "/v1/appScreenshots", asset_reservation("/v1/appScreenshots", len(data)), 201)["data"]
    upload_parts(created["attributes"]["uploadOperations"], data)
    assert client.commit(created["id"], {"sourceFileChecksum": "0" * 32}, "/v1/appScreenshots").status_code == 200
    states = poll(
        client,
        f"/v1/appScreenshots/{created['id']}",
        lambda d: d["attributes"]["assetDeliveryState"]["state"] == "FAILED",
    )
    assert states[-1]["attributes"]["assetDeliveryState"]["errors"][0]["code"] == "CHECKSUM_MISMATCH"


@pytest.mark.parametrize(
    ("path", "commit", "refused"),
    [
        ("/v1/backgroundAssetUploadFiles", "sourceFileChecksums", None),
        ("/v2/inAppPurchaseImages", None, "sourceFileChecksum"),
        ("/v1/inAppPurchaseImages", "sourceFileChecksum", "sourceFileChecksums"),
        ("/v2/gameCenterAchievementImages", None, "sourceFileChecksum"),
    ],
)
def test_each_asset_type_takes_its_own_checksum(
    client: Client, path: str, commit: Optional[str], refused: Optional[str]
) -> None:
    data = os.urandom(1200)
    created = client.ok("POST", path, asset_reservation(path, len(data)), 201)["data"]
    delivery = ASSET_TYPES[path].form == "delivery"
    assert all(("partNumber" in op) == delivery for op in created["attributes"]["uploadOperations"])
    upload_parts(created["attributes"]["uploadOperations"], data)
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - Apple's checksum for these types
    forms: Dict[str, Dict[str, Any]] = {
        "sourceFileChecksum": {"sourceFileChecksum": md5},
        "sourceFileChecksums": {"sourceFileChecksums": {"file": {"hash": md5, "algorithm": "MD5"}}},
    }
    if refused is not None:
        answer = client.commit(created["id"], forms[refused], path)
        assert answer.status_code == 409 and answer.json()["errors"][0]["code"] == "ENTITY_ERROR.ATTRIBUTE.UNKNOWN"
    answer = client.commit(created["id"], forms[commit] if commit else {}, path)
    assert answer.status_code == 200, answer.text

    def state_of(resource: Dict[str, Any]) -> str:
        attributes = resource["attributes"]
        plain = ASSET_TYPES[path].state_attribute == "state"
        return str(attributes["state"] if plain else attributes["assetDeliveryState"]["state"])

    states = poll(
        client, f"{path}/{created['id']}", lambda d: state_of(d) in ("COMPLETE", "UPLOAD_COMPLETE", "FAILED"), 5
    )
    assert state_of(states[-1]) in ("COMPLETE", "UPLOAD_COMPLETE")


def test_an_asset_reservation_needs_its_attributes_and_relationships(client: Client) -> None:
    body = asset_reservation("/v1/appScreenshots", 10)
    del body["data"]["relationships"]
    answer = client.call("POST", "/v1/appScreenshots", body)
    assert answer.status_code == 409 and answer.json()["errors"][0]["code"] == "ENTITY_ERROR.RELATIONSHIP.REQUIRED"
    body = asset_reservation("/v1/appScreenshots", 10)
    del body["data"]["attributes"]["fileSize"]
    answer = client.call("POST", "/v1/appScreenshots", body)
    assert answer.status_code == 409 and answer.json()["errors"][0]["code"] == "ENTITY_ERROR.ATTRIBUTE.REQUIRED"


@needs_openapi
def test_the_asset_table_agrees_with_apples_document() -> None:
    spec = openapi_document()
    schemas = spec["components"]["schemas"]

    def schema(ref: str) -> Dict[str, Any]:
        return cast(Dict[str, Any], schemas[ref.rsplit("/", 1)[1]])

    found = {}
    for path, operations in spec["paths"].items():
        created = operations.get("post", {}).get("responses", {}).get("201", {})
        reference = created.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
        if path.count("/") != 2 or reference is None or "$ref" not in schema(reference)["properties"]["data"]:
            continue
        resource = schema(schema(reference)["properties"]["data"]["$ref"])
        attributes = resource["properties"].get("attributes", {}).get("properties", {})
        if "uploadOperations" not in attributes:
            continue
        item = spec["paths"][path + "/{id}"]
        update = schema(item["patch"]["requestBody"]["content"]["application/json"]["schema"]["$ref"])
        commit = update["properties"]["data"]["properties"].get("attributes", {}).get("properties", {})
        create = schema(operations["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"])
        data = create["properties"]["data"]["properties"]
        found[path] = AssetType(
            resource["properties"]["type"]["enum"][0],
            "delivery"
            if attributes["uploadOperations"]["items"]["$ref"].endswith("/DeliveryFileUploadOperation")
            else "asset",
            tuple(sorted(name for name in commit if name.startswith("sourceFileChecksum"))),
            tuple(sorted(data.get("attributes", {}).get("required", []))),
            tuple(sorted(data.get("relationships", {}).get("required", []))),
            "assetDeliveryState" if "assetDeliveryState" in attributes else "state",
            "delete" in item,
            bool(resource["properties"].get("relationships")),
        )
    ours = {
        path: AssetType(
            kind.type_name,
            kind.form,
            tuple(sorted(kind.checksums)),
            tuple(sorted(kind.required_attributes)),
            tuple(sorted(kind.required_relationships)),
            kind.state_attribute,
            kind.deletable,
            kind.relationships_shown,
        )
        for path, kind in ASSET_TYPES.items()
    }
    assert ours == found


@needs_openapi
def test_answers_use_only_the_members_apples_document_gives(api: AppStoreConnectStandIn, client: Client) -> None:
    schemas = openapi_document()["components"]["schemas"]
    api.uploads.polls_per_state = 0
    data = b"ipa" * 10
    upload = client.reserve_build()
    file = client.reserve_file(upload["id"], len(data))
    upload_parts(file["attributes"]["uploadOperations"], data)
    client.commit(file["id"], sha256_of(data))
    poll(client, f"/v1/buildUploads/{upload['id']}", lambda d: d["attributes"]["state"]["state"] == "COMPLETE")
    screenshot = client.ok("POST", "/v1/appScreenshots", asset_reservation("/v1/appScreenshots", 10), 201)["data"]
    answers = [
        ("BuildUpload", upload),
        ("BuildUpload", client.ok("GET", f"/v1/buildUploads/{upload['id']}")["data"]),
        ("BuildUploadFile", file),
        ("BuildUploadFile", client.ok("GET", f"/v1/buildUploadFiles/{file['id']}")["data"]),
        ("AppScreenshot", screenshot),
    ]
    for name, resource in answers:
        properties = schemas[name]["properties"]
        assert set(resource) <= set(properties), name
        assert set(resource["attributes"]) <= set(properties["attributes"]["properties"]), name
        assert set(resource.get("relationships", {})) <= set(
            properties.get("relationships", {}).get("properties", {})
        ), name
        for operation in resource["attributes"].get("uploadOperations") or []:
            form = "DeliveryFileUploadOperation" if name == "BuildUploadFile" else "UploadOperation"
            assert set(operation) <= set(schemas[form]["properties"]), name
    state = answers[1][1]["attributes"]["state"]
    assert state["state"] in schemas["BuildUploadState"]["enum"]
    assert set(state) <= set(schemas["BuildUpload"]["properties"]["attributes"]["properties"]["state"]["properties"])
