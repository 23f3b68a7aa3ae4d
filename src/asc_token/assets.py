"""Apple's uploadable asset types, one table keyed by the path that reserves an upload.

Every resource Apple uploads with upload operations is created by a POST to its collection (the
reservation: ``fileName``, ``fileSize``...), answered with ``attributes.uploadOperations``, and
committed by a PATCH of the created resource with ``uploaded: true`` and, depending on the type, a
checksum. The table is App Store Connect API 4.4.1's (tests/test_assets.py checks it against
Apple's OpenAPI document whenever that is at hand): 25 paths, 20 type names, since v1 and v2 of the
in-app purchase, subscription and Game Center images share a type name but not a commit body.
Also what both upload front ends read from an answer (attributes, a checked id) and the file's digests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional
from urllib.parse import urlsplit

from .errors import UploadFailedError
from .redact import shown
from .urls import api_id

UPLOAD_OPERATION = "UploadOperation"  # method, url, offset, length, requestHeaders
DELIVERY_OPERATION = "DeliveryFileUploadOperation"  # the same, with partNumber and expiration
CHECKSUM = "sourceFileChecksum"  # the file's MD5, a hex string
CHECKSUMS = "sourceFileChecksums"  # {"file": {"hash": hex, "algorithm": "SHA_256" | "MD5"}}


@dataclass(frozen=True)
class AssetKind:
    """One uploadable resource: where it is reserved, its type, its operations' form, its commit checksum."""

    path: str  # the reservation: POST path, "/v1/appScreenshots"
    type_name: str  # data.type, "appScreenshots"
    operation_form: str  # UPLOAD_OPERATION or DELIVERY_OPERATION
    checksum_field: Optional[str]  # CHECKSUM, CHECKSUMS, or None: the commit takes no checksum

    def commit_path(self, resource_id: str) -> str:
        """The PATCH that commits the reserved resource."""
        return f"{self.path}/{resource_id}"


def _kind(path: str, checksum_field: Optional[str], operation_form: str = UPLOAD_OPERATION) -> AssetKind:
    return AssetKind(path, path.rsplit("/", 1)[1], operation_form, checksum_field)


ASSET_KINDS: Dict[str, AssetKind] = {
    kind.path: kind
    for kind in (
        _kind("/v1/appClipAdvancedExperienceImages", CHECKSUM),
        _kind("/v1/appClipHeaderImages", CHECKSUM),
        _kind("/v1/appEncryptionDeclarationDocuments", CHECKSUM),
        _kind("/v1/appEventScreenshots", None),
        _kind("/v1/appEventVideoClips", None),
        _kind("/v1/appPreviews", CHECKSUM),
        _kind("/v1/appScreenshots", CHECKSUM),
        _kind("/v1/appStoreReviewAttachments", CHECKSUM),
        # Its commit also takes sourceFileChecksum; the structured one carries the algorithm.
        _kind("/v1/backgroundAssetUploadFiles", CHECKSUMS, DELIVERY_OPERATION),
        _kind("/v1/buildUploadFiles", CHECKSUMS, DELIVERY_OPERATION),
        _kind("/v1/gameCenterAchievementImages", None),
        _kind("/v2/gameCenterAchievementImages", None),
        _kind("/v1/gameCenterActivityImages", None),
        _kind("/v1/gameCenterChallengeImages", None),
        _kind("/v1/gameCenterLeaderboardImages", None),
        _kind("/v2/gameCenterLeaderboardImages", None),
        _kind("/v1/gameCenterLeaderboardSetImages", None),
        _kind("/v2/gameCenterLeaderboardSetImages", None),
        _kind("/v1/inAppPurchaseAppStoreReviewScreenshots", CHECKSUM),
        _kind("/v1/inAppPurchaseImages", CHECKSUM),
        _kind("/v2/inAppPurchaseImages", None),
        _kind("/v1/routingAppCoverages", CHECKSUM),
        _kind("/v1/subscriptionAppStoreReviewScreenshots", CHECKSUM),
        _kind("/v1/subscriptionImages", CHECKSUM),
        _kind("/v2/subscriptionImages", None),
    )
}


def asset_kind(path: str) -> Optional[AssetKind]:
    """The asset type reserved by a POST to ``path`` (a query, a fragment or a trailing slash aside), or None."""
    bare = urlsplit(path).path.rstrip("/")
    return ASSET_KINDS.get(bare if bare.startswith("/") else f"/{bare}")


def commit_document(
    path: str, resource_id: str, *, md5_hex: Optional[str] = None, sha256_hex: Optional[str] = None
) -> Dict[str, Any]:
    """The PATCH body that commits the resource reserved at ``path``: ``uploaded: true`` and that type's
    checksum of the file (``sourceFileChecksums`` carries SHA_256 when given, else MD5). ValueError for
    a path that reserves no upload, or without the digest the type needs."""
    kind = asset_kind(path)
    if kind is None:
        raise ValueError(f"{path} reserves no upload")
    changed: Dict[str, Any] = {"uploaded": True}
    if kind.checksum_field == CHECKSUM:
        if md5_hex is None:
            raise ValueError(f"{kind.type_name} commits with the file's MD5")
        changed[CHECKSUM] = md5_hex
    elif kind.checksum_field == CHECKSUMS:
        if sha256_hex is None and md5_hex is None:
            raise ValueError(f"{kind.type_name} commits with the file's SHA-256 or MD5")
        digest = {"hash": sha256_hex, "algorithm": "SHA_256"} if sha256_hex else {"hash": md5_hex, "algorithm": "MD5"}
        changed[CHECKSUMS] = {"file": digest}
    return {"data": {"type": kind.type_name, "id": resource_id, "attributes": changed}}


def attributes(document: Any) -> Mapping[str, Any]:
    """An answer's ``data.attributes``, or {}."""
    data = document.get("data") if isinstance(document, dict) else None
    found = data.get("attributes") if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


def resource_id(document: Any, what: str) -> str:
    """An answer's ``data.id``, checked before it goes into a request path (:func:`urls.api_id`)."""
    data = document.get("data") if isinstance(document, dict) else None
    return api_id(data.get("id") if isinstance(data, dict) else None, what)


def file_digest(path: str, algorithm: str) -> str:
    """The file's hex digest, "MD5" or "SHA_256" (as Apple names them), read a megabyte at a time."""
    digest = hashlib.md5(usedforsecurity=False) if algorithm == "MD5" else hashlib.sha256()  # Apple's choice
    try:
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1024 * 1024), b""):
                digest.update(chunk)
    except OSError as exc:
        raise UploadFailedError(
            f"{shown(path, path=True)} could not be read for its checksum "
            f"({exc.strerror or type(exc).__name__}); leave it unchanged until the upload ends.",
        ) from None
    return digest.hexdigest()
