"""assets.ASSET_KINDS against Apple's OpenAPI document, and the lookups and commit bodies built from it.

The document is Apple's and never committed: the tests that read it skip when
``../shared/reference/apple-openapi`` (or ``$ASC_OPENAPI_DIR``) is absent, as
tests/test_openapi_conformance.py does; the others always run.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest

from asc_token.assets import (
    ASSET_KINDS,
    CHECKSUM,
    CHECKSUMS,
    DELIVERY_OPERATION,
    UPLOAD_OPERATION,
    asset_kind,
    commit_document,
)

from .runner import needs_openapi, openapi_document

MD5 = "9e107d9d372bb6826bd81d3542a419d6"
SHA256 = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"


def schema(reference: Dict[str, Any]) -> Dict[str, Any]:
    found: Dict[str, Any] = openapi_document()["components"]["schemas"][reference["$ref"].rsplit("/", 1)[1]]
    return found


def uploadable_resources() -> Dict[str, Dict[str, Any]]:
    """Every POST path whose 201 answer's resource has ``attributes.uploadOperations``: path -> resource schema."""
    found: Dict[str, Dict[str, Any]] = {}
    for path, item in openapi_document()["paths"].items():
        created = item.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        resource = schema(schema(created["content"]["application/json"]["schema"])["properties"]["data"])
        if "uploadOperations" in resource["properties"].get("attributes", {}).get("properties", {}):
            found[path] = resource
    return found


def update_attributes(path: str) -> Dict[str, Any]:
    """The attributes the commit PATCH (``{path}/{id}``) takes."""
    patch = openapi_document()["paths"][f"{path}/{{id}}"]["patch"]
    request = schema(patch["requestBody"]["content"]["application/json"]["schema"])
    attributes: Dict[str, Any] = request["properties"]["data"]["properties"]["attributes"]["properties"]
    return attributes


@needs_openapi
def test_the_table_has_every_uploadable_resource_and_nothing_else() -> None:
    resources = uploadable_resources()
    assert sorted(ASSET_KINDS) == sorted(resources)
    assert len(resources) == 25
    assert len({resource["properties"]["type"]["enum"][0] for resource in resources.values()}) == 20


@needs_openapi
@pytest.mark.parametrize("path", sorted(ASSET_KINDS))
def test_each_row_agrees_with_the_document(path: str) -> None:
    kind = ASSET_KINDS[path]
    resource = uploadable_resources()[path]
    assert resource["properties"]["type"]["enum"] == [kind.type_name]
    operations = resource["properties"]["attributes"]["properties"]["uploadOperations"]
    assert operations["items"]["$ref"].rsplit("/", 1)[1] == kind.operation_form
    attributes = update_attributes(path)
    assert attributes["uploaded"]["type"] == "boolean"
    offered = {field for field in (CHECKSUM, CHECKSUMS) if field in attributes}
    # The structured checksum wherever the commit takes it; else the MD5 string; else none.
    expected = CHECKSUMS if CHECKSUMS in offered else CHECKSUM if CHECKSUM in offered else None
    assert kind.checksum_field == expected
    reservation = openapi_document()["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    required = schema(reservation)["properties"]["data"]["properties"]["attributes"]["required"]
    assert {"fileName", "fileSize"} <= set(required)


@needs_openapi
@pytest.mark.parametrize("path", sorted(ASSET_KINDS))
def test_each_commit_document_fits_the_update_request(path: str) -> None:
    body = commit_document(path, "RESOURCE-ID", md5_hex=MD5, sha256_hex=SHA256)
    patch = openapi_document()["paths"][f"{path}/{{id}}"]["patch"]
    data_schema = schema(patch["requestBody"]["content"]["application/json"]["schema"])["properties"]["data"]
    assert set(body) == {"data"}
    assert set(body["data"]) <= set(data_schema["properties"])
    assert set(data_schema["required"]) <= set(body["data"])
    assert data_schema["properties"]["type"]["enum"] == [body["data"]["type"]]
    assert set(body["data"]["attributes"]) <= set(update_attributes(path))
    checksums = body["data"]["attributes"].get(CHECKSUMS)
    if checksums is not None:
        algorithms = openapi_document()["components"]["schemas"]["ChecksumAlgorithm"]["enum"]
        assert set(checksums) == {"file"} and checksums["file"]["algorithm"] in algorithms


@needs_openapi
def test_v1_and_v2_share_type_names_but_not_commits() -> None:
    pairs = [(path, path.replace("/v2/", "/v1/")) for path in ASSET_KINDS if path.startswith("/v2/")]
    assert len(pairs) == 5
    for v2, v1 in pairs:
        assert ASSET_KINDS[v2].type_name == ASSET_KINDS[v1].type_name
    differing = {v2 for v2, v1 in pairs if ASSET_KINDS[v2].checksum_field != ASSET_KINDS[v1].checksum_field}
    assert differing == {"/v2/inAppPurchaseImages", "/v2/subscriptionImages"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/v1/appScreenshots", "/v1/appScreenshots"),
        ("/v1/appScreenshots?include=appScreenshotSet", "/v1/appScreenshots"),
        ("/v1/appScreenshots/", "/v1/appScreenshots"),
        ("v1/appScreenshots", "/v1/appScreenshots"),
        ("https://api.appstoreconnect.apple.com/v2/inAppPurchaseImages?x=1#y", "/v2/inAppPurchaseImages"),
        ("/v1/appScreenshots/ID", None),  # the commit's path, not the reservation's
        ("/v3/appScreenshots", None),
        ("/v1/apps", None),
        ("", None),
    ],
)
def test_asset_kind_finds_the_reservation_path(given: str, expected: Optional[str]) -> None:
    found = asset_kind(given)
    assert (found.path if found else None) == expected


def test_the_table_by_form_and_checksum() -> None:
    """The facts the issue states, without the document: two delivery forms, three commit shapes."""
    assert {path for path, kind in ASSET_KINDS.items() if kind.operation_form == DELIVERY_OPERATION} == {
        "/v1/buildUploadFiles",
        "/v1/backgroundAssetUploadFiles",
    }
    assert sum(kind.operation_form == UPLOAD_OPERATION for kind in ASSET_KINDS.values()) == 23
    assert len({kind.type_name for kind in ASSET_KINDS.values()}) == 20
    assert ASSET_KINDS["/v1/buildUploadFiles"].type_name == "buildUploadFiles"
    assert ASSET_KINDS["/v1/buildUploadFiles"].commit_path("F1") == "/v1/buildUploadFiles/F1"


def test_commit_with_the_md5_string() -> None:
    assert commit_document("/v1/appScreenshots?x=1", "S1", md5_hex=MD5, sha256_hex=SHA256) == {
        "data": {"type": "appScreenshots", "id": "S1", "attributes": {"uploaded": True, "sourceFileChecksum": MD5}}
    }


def test_commit_with_the_structured_checksum_prefers_sha256() -> None:
    both = commit_document("/v1/buildUploadFiles", "F1", md5_hex=MD5, sha256_hex=SHA256)
    assert both["data"]["attributes"] == {
        "uploaded": True,
        "sourceFileChecksums": {"file": {"hash": SHA256, "algorithm": "SHA_256"}},
    }
    md5_only = commit_document("/v1/backgroundAssetUploadFiles", "B1", md5_hex=MD5)
    assert md5_only["data"]["attributes"]["sourceFileChecksums"] == {"file": {"hash": MD5, "algorithm": "MD5"}}


def test_commit_without_a_checksum() -> None:
    body = commit_document("/v2/subscriptionImages", "I2", md5_hex=MD5, sha256_hex=SHA256)
    assert body == {"data": {"type": "subscriptionImages", "id": "I2", "attributes": {"uploaded": True}}}
    assert commit_document("/v1/gameCenterActivityImages", "G1")["data"]["attributes"] == {"uploaded": True}


@pytest.mark.parametrize(
    ("path", "digests"),
    [
        ("/v1/apps", {"md5_hex": MD5}),
        ("/v1/appScreenshots", {"sha256_hex": SHA256}),  # this type takes only the MD5
        ("/v1/buildUploadFiles", {}),
    ],
)
def test_commit_refuses_what_it_cannot_build(path: str, digests: Dict[str, str]) -> None:
    with pytest.raises(ValueError):
        commit_document(path, "X", **digests)
