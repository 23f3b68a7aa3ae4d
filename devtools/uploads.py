"""The App Store Connect side of uploads, for the stand-in (devtools/standin.py routes these paths here).

Apple's Build Uploads API (App Store Connect API 4.1 and later) and every asset that is uploaded the
same way, as Apple's OpenAPI document (4.4.1) gives them; the bytes go to
:class:`devtools.object_storage.ObjectStorage`, whose operations the reservations hand out.

- ``POST /v1/buildUploads`` (BuildUploadCreateRequest): 201 BuildUpload, ``state.state``
  AWAITING_UPLOAD; 409 ``ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE`` for the (app, platform,
  cfBundleShortVersionString, cfBundleVersion) of an earlier upload not deleted; 404 for an app there is not.
  ``GET /v1/buildUploads/{id}``, ``DELETE /v1/buildUploads/{id}`` (204; kept in ``deleted_build_uploads``).
  ``GET /v1/apps/{id}/buildUploads`` lists an app's build uploads, with the filters Apple documents
  (``filter[cfBundleVersion]``, ``filter[cfBundleShortVersionString]``, ``filter[platform]``,
  ``filter[state]``; comma-separated values).
- ``POST /v1/buildUploadFiles`` (assetType, fileName, fileSize, uti; relationship buildUpload): 201
  BuildUploadFile with ``uploadOperations`` (DeliveryFileUploadOperation). ``GET`` answers fresh operations
  while it awaits its upload. ``PATCH`` ``uploaded: true`` with ``sourceFileChecksums`` commits it:
  ``assetDeliveryState`` UPLOAD_COMPLETE, then COMPLETE, or FAILED with an error when a part is missing
  or the checksum is not the bytes' (``UPLOAD_INCOMPLETE``, ``CHECKSUM_MISMATCH``).
- Processing, once the file is COMPLETE: the build upload PROCESSING, then COMPLETE with a ``build``
  relationship (the build, ``GET /v1/builds/{id}``, PROCESSING then VALID or INVALID) or FAILED with
  ``state.errors`` (Apple's 90xxx validation codes). Each state lasts ``polls_per_state`` GETs.
- Every other asset type of :data:`ASSET_TYPES`: POST reservation (fileName, fileSize, the type's required
  attributes and relationships) answers 201 with ``uploadOperations``; PATCH ``uploaded: true`` with the
  checksum that type takes (``sourceFileChecksum``: an MD5 hex string; ``sourceFileChecksums``; or
  neither, when another is refused as Apple refuses an attribute it does not know); GET; DELETE (204)
  where Apple has one.

Options (attributes of :class:`Uploads`, reachable as ``standin.uploads``): ``part_size`` (bytes per
operation), ``operation_lifetime`` (seconds), ``reservation_lifetime`` (the reservation's operations
only; negative: expired on arrival), ``operation_url_base`` (operations that point elsewhere),
``shuffle_operations``, ``polls_per_state``,
``processing_outcome`` (one of :data:`PROCESSING_OUTCOMES`), ``processing_errors``,
``processing_warnings``, ``processing_infos``.
"""

from __future__ import annotations

import datetime
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .object_storage import ObjectStorage

PLATFORMS = ("IOS", "MAC_OS", "TV_OS", "VISION_OS")
BUILD_UPLOAD_FILE_ASSET_TYPES = ("ASSET", "ASSET_DESCRIPTION", "ASSET_SPI")
BUILD_UPLOAD_FILE_UTIS = (
    "com.apple.binary-property-list",
    "com.apple.ipa",
    "com.apple.pkg",
    "com.apple.xml-property-list",
    "com.pkware.zip-archive",
)
CHECKSUM_ALGORITHMS = {"MD5": "md5", "SHA_256": "sha256"}  # Apple's ChecksumAlgorithm -> hashlib's name
# VALID: the build upload COMPLETE, its build VALID. INVALID: COMPLETE, the build INVALID.
# FAILED: the build upload FAILED with `processing_errors`, no build.
PROCESSING_OUTCOMES = ("VALID", "INVALID", "FAILED")
# What peers report when a build number is used again (expo/eas-cli PR #3461): Apple's 90189.
# "{build}" and "{version}" in a description become the build upload's.
DEFAULT_PROCESSING_ERRORS = (
    {
        "code": "90189",
        "description": "Redundant Binary Upload. You've already uploaded a build with build number '{build}' "
        "for version number '{version}'. Make sure you increment the build string before you upload your app "
        "to App Store Connect.",
    },
)
DUPLICATE = "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE"


@dataclass(frozen=True)
class AssetType:
    """One reservation path of Apple's document: what it creates and how that is committed."""

    type_name: str
    form: str  # ObjectStorage form: "asset" (UploadOperation) or "delivery" (DeliveryFileUploadOperation)
    checksums: Tuple[str, ...]  # the commit's checksum attributes: sourceFileChecksum and/or sourceFileChecksums
    required_attributes: Tuple[str, ...] = ("fileName", "fileSize")
    required_relationships: Tuple[str, ...] = ()
    state_attribute: str = "assetDeliveryState"  # v1 IAP and subscription images: a plain `state` string
    deletable: bool = True
    relationships_shown: bool = True  # whether the resource shows its relationships (some show none)


_MD5 = ("sourceFileChecksum",)
_NONE: Tuple[str, ...] = ()
# Every POST path whose created resource carries uploadOperations in Apple's OpenAPI document 4.4.1, keyed by
# the path (v1 and v2 of the same type name differ in their commit). tests/test_devtools_uploads.py checks
# this table against the document when it is there.
ASSET_TYPES: Dict[str, AssetType] = {
    "/v1/appClipAdvancedExperienceImages": AssetType(
        "appClipAdvancedExperienceImages", "asset", _MD5, deletable=False, relationships_shown=False
    ),
    "/v1/appClipHeaderImages": AssetType(
        "appClipHeaderImages", "asset", _MD5, required_relationships=("appClipDefaultExperienceLocalization",)
    ),
    "/v1/appEncryptionDeclarationDocuments": AssetType(
        "appEncryptionDeclarationDocuments",
        "asset",
        _MD5,
        required_relationships=("appEncryptionDeclaration",),
        deletable=False,
        relationships_shown=False,
    ),
    "/v1/appEventScreenshots": AssetType(
        "appEventScreenshots",
        "asset",
        _NONE,
        ("fileName", "fileSize", "appEventAssetType"),
        ("appEventLocalization",),
    ),
    "/v1/appEventVideoClips": AssetType(
        "appEventVideoClips",
        "asset",
        _NONE,
        ("fileName", "fileSize", "appEventAssetType"),
        ("appEventLocalization",),
    ),
    "/v1/appPreviews": AssetType("appPreviews", "asset", _MD5, required_relationships=("appPreviewSet",)),
    "/v1/appScreenshots": AssetType("appScreenshots", "asset", _MD5, required_relationships=("appScreenshotSet",)),
    "/v1/appStoreReviewAttachments": AssetType(
        "appStoreReviewAttachments", "asset", _MD5, required_relationships=("appStoreReviewDetail",)
    ),
    "/v1/backgroundAssetUploadFiles": AssetType(
        "backgroundAssetUploadFiles",
        "delivery",
        ("sourceFileChecksum", "sourceFileChecksums"),  # the first deprecated
        ("fileName", "fileSize", "assetType"),
        ("backgroundAssetVersion",),
        deletable=False,
        relationships_shown=False,
    ),
    "/v1/buildUploadFiles": AssetType(
        "buildUploadFiles",
        "delivery",
        ("sourceFileChecksums",),
        ("fileName", "fileSize", "uti", "assetType"),
        ("buildUpload",),
        deletable=False,
        relationships_shown=False,
    ),
    "/v1/gameCenterAchievementImages": AssetType(
        "gameCenterAchievementImages", "asset", _NONE, required_relationships=("gameCenterAchievementLocalization",)
    ),
    "/v1/gameCenterActivityImages": AssetType("gameCenterActivityImages", "asset", _NONE, relationships_shown=False),
    "/v1/gameCenterChallengeImages": AssetType("gameCenterChallengeImages", "asset", _NONE, relationships_shown=False),
    "/v1/gameCenterLeaderboardImages": AssetType(
        "gameCenterLeaderboardImages", "asset", _NONE, required_relationships=("gameCenterLeaderboardLocalization",)
    ),
    "/v1/gameCenterLeaderboardSetImages": AssetType(
        "gameCenterLeaderboardSetImages",
        "asset",
        _NONE,
        required_relationships=("gameCenterLeaderboardSetLocalization",),
    ),
    "/v1/inAppPurchaseAppStoreReviewScreenshots": AssetType(
        "inAppPurchaseAppStoreReviewScreenshots", "asset", _MD5, required_relationships=("inAppPurchaseV2",)
    ),
    "/v1/inAppPurchaseImages": AssetType(
        "inAppPurchaseImages", "asset", _MD5, required_relationships=("inAppPurchase",), state_attribute="state"
    ),
    "/v1/routingAppCoverages": AssetType(
        "routingAppCoverages", "asset", _MD5, required_relationships=("appStoreVersion",)
    ),
    "/v1/subscriptionAppStoreReviewScreenshots": AssetType(
        "subscriptionAppStoreReviewScreenshots", "asset", _MD5, required_relationships=("subscription",)
    ),
    "/v1/subscriptionImages": AssetType(
        "subscriptionImages", "asset", _MD5, required_relationships=("subscription",), state_attribute="state"
    ),
    "/v2/gameCenterAchievementImages": AssetType(
        "gameCenterAchievementImages", "asset", _NONE, required_relationships=("localization",)
    ),
    "/v2/gameCenterLeaderboardImages": AssetType(
        "gameCenterLeaderboardImages", "asset", _NONE, required_relationships=("localization",)
    ),
    "/v2/gameCenterLeaderboardSetImages": AssetType(
        "gameCenterLeaderboardSetImages", "asset", _NONE, required_relationships=("localization",)
    ),
    "/v2/inAppPurchaseImages": AssetType(
        "inAppPurchaseImages", "asset", _NONE, required_relationships=("version",), relationships_shown=False
    ),
    "/v2/subscriptionImages": AssetType(
        "subscriptionImages", "asset", _NONE, required_relationships=("version",), relationships_shown=False
    ),
}


class AppleError(Exception):
    """An Apple error answer (status, code, title, detail, source), raised from deep in a route (here or in standin.py)."""

    def __init__(self, status: int, code: str, title: str, detail: str, source: Optional[Dict[str, str]] = None):
        super().__init__(code)
        self.status, self.code, self.title, self.detail, self.source = status, code, title, detail, source


def entity_error(code: str, detail: str, pointer: str) -> AppleError:
    return AppleError(409, code, "The provided entity is invalid", detail, {"pointer": pointer})


def no_such_resource(kind: str, resource_id: str) -> AppleError:
    return AppleError(
        404,
        "NOT_FOUND",
        "The specified resource does not exist",
        f"There is no resource of type '{kind}' with id '{resource_id[:40]}'",
    )


def method_not_allowed(method: str) -> AppleError:
    return AppleError(
        405,
        "METHOD_NOT_ALLOWED",
        "The request method is not valid for the resource path.",
        f"The resource does not allow the '{method}' method.",
    )


@dataclass
class _File:
    """A reserved file: a buildUploadFile or any other asset."""

    id: str
    path: str  # the reservation path, a key of ASSET_TYPES
    attributes: Dict[str, Any]  # as created (fileName, fileSize, ...)
    relationships: Dict[str, Any]
    storage_key: str
    state: str = "AWAITING_UPLOAD"
    errors: List[Dict[str, str]] = field(default_factory=list)
    commit_problem: Optional[Dict[str, str]] = None  # found at commit, shown once the upload is looked at
    polls_left: int = 0
    committed: Dict[str, Any] = field(default_factory=dict)  # the commit's attributes


_APP_BUILD_UPLOADS = re.compile(r"/v1/apps/([^/]+)/buildUploads")


@dataclass
class _BuildUpload:
    id: str
    app_id: str
    version: str
    build_number: str
    platform: str
    created: str
    state: str = "AWAITING_UPLOAD"
    errors: List[Dict[str, str]] = field(default_factory=list)
    warnings: List[Dict[str, str]] = field(default_factory=list)
    infos: List[Dict[str, str]] = field(default_factory=list)
    files: List[str] = field(default_factory=list)
    build_id: Optional[str] = None
    polls_left: int = 0
    uploaded_date: Optional[str] = None


def _now_text(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


class Uploads:
    """The upload resources' state and answers. ``app_exists(id)`` and ``add_build(app, version, polls,
    outcome) -> id`` come from the stand-in, ``storage`` is its object storage."""

    def __init__(
        self,
        base_url: Callable[[], str],
        storage: Callable[[], ObjectStorage],
        app_exists: Callable[[str], bool],
        add_build: Callable[[str, str, int, str], str],
        clock: Callable[[], float],
    ) -> None:
        self._base_url = base_url
        self._storage = storage
        self._app_exists = app_exists
        self._add_build = add_build
        self._clock = clock
        self.part_size = 5 * 1024 * 1024
        self.operation_lifetime = 900.0
        # The lifetime of the operations a reservation answers (None: operation_lifetime); a GET's fresh
        # operations always get operation_lifetime. Negative: already expired when handed out.
        self.reservation_lifetime: Optional[float] = None
        # When set, operation URLs name this scheme and host instead of the storage's (e.g.
        # "http://storage.example.com": a destination a client must refuse before sending any byte).
        self.operation_url_base: Optional[str] = None
        self.shuffle_operations = False
        # IDs handed out, in order, to the next resources created instead of fresh UUIDs: a hostile
        # answer such as "../../v1/apps/1000000000", which a client must not put into a path.
        self.issued_ids: List[str] = []
        # A build upload state answered instead of the real one (a hostile one, such as "X\n::warning::").
        self.shown_state: Optional[str] = None
        self.polls_per_state = 1
        self.processing_outcome = "VALID"
        self.processing_errors: List[Dict[str, str]] = [dict(error) for error in DEFAULT_PROCESSING_ERRORS]
        self.processing_warnings: List[Dict[str, str]] = []
        self.processing_infos: List[Dict[str, str]] = []
        self.build_uploads: Dict[str, _BuildUpload] = {}
        self.files: Dict[str, _File] = {}
        self.deleted_build_uploads: List[str] = []
        self.deleted_assets: List[str] = []
        self._lock = threading.RLock()

    # --- routing -----------------------------------------------------------------------------------

    @staticmethod
    def serves(path: str) -> bool:
        """Whether ``path`` (no query) is one of these resources: a collection or one item of it."""
        collection = path.rstrip("/").rsplit("/", 1)[0] if path.count("/") == 3 else path.rstrip("/")
        return collection == "/v1/buildUploads" or collection in ASSET_TYPES or bool(_APP_BUILD_UPLOADS.fullmatch(path))

    def answer(
        self,
        method: str,
        path: str,
        document: Callable[[], Dict[str, Any]],
        query: Optional[Mapping[str, List[str]]] = None,
    ) -> Tuple[int, Optional[Any]]:
        """(status, body) for ``method path``; ``document()`` parses the request body (or raises a 422);
        ``query``: the request's query parameters (the filters of a list)."""
        segments = path.strip("/").split("/")
        collection = "/" + "/".join(segments[:2])
        resource_id = segments[2] if len(segments) == 3 else None
        with self._lock:
            listed = _APP_BUILD_UPLOADS.fullmatch(path)
            if listed is not None:
                if method != "GET":
                    raise method_not_allowed(method)
                return self._list_build_uploads(listed.group(1), query or {})
            if collection == "/v1/buildUploads":
                return self._build_uploads(method, resource_id, document)
            if resource_id is None:
                if method != "POST":
                    raise method_not_allowed(method)
                return self._reserve(collection, document())
            if method == "GET":
                return 200, self._file_document(self._file(collection, resource_id), look=True)
            if method == "PATCH":
                return self._commit(collection, resource_id, document())
            if method == "DELETE" and ASSET_TYPES[collection].deletable:
                self._file(collection, resource_id)
                del self.files[resource_id]
                self.deleted_assets.append(resource_id)
                return 204, None
            raise method_not_allowed(method)

    # --- build uploads -----------------------------------------------------------------------------

    def _build_uploads(
        self, method: str, upload_id: Optional[str], document: Callable[[], Dict[str, Any]]
    ) -> Tuple[int, Optional[Any]]:
        if upload_id is None:
            if method != "POST":
                raise method_not_allowed(method)
            return self._create_build_upload(document())
        upload = self.build_uploads.get(upload_id)
        if upload is None:
            raise no_such_resource("buildUploads", upload_id)
        if method == "GET":
            self._look_at_build_upload(upload)
            return 200, {
                "data": self._build_upload_resource(upload),
                "links": self._links(f"/v1/buildUploads/{upload.id}"),
            }
        if method == "DELETE":
            del self.build_uploads[upload_id]
            self.deleted_build_uploads.append(upload_id)
            return 204, None
        raise method_not_allowed(method)

    def _list_build_uploads(self, app_id: str, query: Mapping[str, List[str]]) -> Tuple[int, Dict[str, Any]]:
        """An app's build uploads that pass every filter given (a filter's values: any of them)."""
        if not self._app_exists(app_id):
            raise no_such_resource("apps", app_id)
        wanted = {
            name: {value for given in query.get(f"filter[{name}]", []) for value in given.split(",")}
            for name in ("cfBundleVersion", "cfBundleShortVersionString", "platform", "state")
        }
        found = [
            self._build_upload_resource(upload)
            for upload in self.build_uploads.values()
            if upload.app_id == app_id
            and all(
                not wanted[name] or value in wanted[name]
                for name, value in (
                    ("cfBundleVersion", upload.build_number),
                    ("cfBundleShortVersionString", upload.version),
                    ("platform", upload.platform),
                    ("state", upload.state),
                )
            )
        ]
        links = {"self": f"{self._base_url()}/v1/apps/{app_id}/buildUploads"}
        return 200, {"data": found, "links": links, "meta": {"paging": {"total": len(found), "limit": 50}}}

    def _create_build_upload(self, document: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
        data = _data_of(document, "buildUploads")
        attributes = _attributes(data, ("cfBundleShortVersionString", "cfBundleVersion", "platform"))
        for name in ("cfBundleShortVersionString", "cfBundleVersion", "platform"):
            if not isinstance(attributes[name], str) or not attributes[name]:
                raise entity_error(
                    "ENTITY_ERROR.ATTRIBUTE.TYPE", f"'{name}' must be a non-empty string.", f"/data/attributes/{name}"
                )
        if attributes["platform"] not in PLATFORMS:
            raise entity_error(
                "ENTITY_ERROR.ATTRIBUTE.INVALID",
                f"'{str(attributes['platform'])[:40]}' is not a valid value for platform. Allowed: {', '.join(PLATFORMS)}",
                "/data/attributes/platform",
            )
        app_id = _relationship(data, "app", "apps")
        if not self._app_exists(app_id):
            raise no_such_resource("apps", app_id)
        version, build, platform = (
            attributes["cfBundleShortVersionString"],
            attributes["cfBundleVersion"],
            attributes["platform"],
        )
        for earlier in self.build_uploads.values():
            if (earlier.app_id, earlier.platform, earlier.version, earlier.build_number) == (
                app_id,
                platform,
                version,
                build,
            ):
                raise AppleError(
                    409,
                    DUPLICATE,
                    "The provided entity includes an attribute with a value that has already been used",
                    f"The bundle version '{build}' has already been used for version '{version}' of this app "
                    f"on {platform}. Upload a build with a higher bundle version (CFBundleVersion).",
                    {"pointer": "/data/attributes/cfBundleVersion"},
                )
        upload = _BuildUpload(self._new_id(), app_id, version, build, platform, _now_text(self._clock()))
        self.build_uploads[upload.id] = upload
        return 201, {"data": self._build_upload_resource(upload), "links": self._links(f"/v1/buildUploads/{upload.id}")}

    def _build_upload_resource(self, upload: _BuildUpload) -> Dict[str, Any]:
        base = f"{self._base_url()}/v1/buildUploads/{upload.id}"
        state: Dict[str, Any] = {
            "state": self.shown_state or upload.state,
            "errors": upload.errors,
            "warnings": upload.warnings,
        }
        state["infos"] = upload.infos
        attributes: Dict[str, Any] = {
            "cfBundleShortVersionString": upload.version,
            "cfBundleVersion": upload.build_number,
            "createdDate": upload.created,
            "platform": upload.platform,
            "state": state,
        }
        if upload.uploaded_date:
            attributes["uploadedDate"] = upload.uploaded_date
        assets = [file_id for file_id in upload.files if self.files[file_id].attributes.get("assetType") == "ASSET"]
        relationships: Dict[str, Any] = {
            "build": {"data": {"type": "builds", "id": upload.build_id} if upload.build_id else None},
            "buildUploadFiles": {
                "links": {"self": f"{base}/relationships/buildUploadFiles", "related": f"{base}/buildUploadFiles"}
            },
        }
        if assets:
            relationships["assetFile"] = {"data": {"type": "buildUploadFiles", "id": assets[0]}}
        return {
            "type": "buildUploads",
            "id": upload.id,
            "attributes": attributes,
            "relationships": relationships,
            "links": {"self": base},
        }

    def _new_id(self) -> str:
        return self.issued_ids.pop(0) if self.issued_ids else str(uuid.uuid4())

    def _look_at_build_upload(self, upload: _BuildUpload) -> None:
        """A GET of the build upload: its files move on, then its processing (one step a GET)."""
        processing = upload.state == "PROCESSING"
        for file_id in upload.files:
            self._advance_file(self.files[file_id])
        self._files_delivered(upload)
        if not processing:
            return
        if upload.polls_left > 0:
            upload.polls_left -= 1
            return
        upload.warnings = [dict(warning) for warning in self.processing_warnings]
        upload.infos = [dict(info) for info in self.processing_infos]
        if self.processing_outcome == "FAILED":
            upload.state = "FAILED"
            upload.errors = [
                {
                    name: text.replace("{build}", upload.build_number).replace("{version}", upload.version)
                    for name, text in error.items()
                }
                for error in self.processing_errors
            ]
            return
        upload.state = "COMPLETE"
        upload.build_id = self._add_build(
            upload.app_id, upload.build_number, self.polls_per_state, self.processing_outcome
        )

    def _files_delivered(self, upload: _BuildUpload) -> None:
        """When every file of the upload is COMPLETE (and one is its ASSET), processing starts."""
        files = [self.files[file_id] for file_id in upload.files]
        if upload.state != "AWAITING_UPLOAD" or not files:
            return
        if any(file.state == "FAILED" for file in files):
            upload.state = "FAILED"
            upload.errors = [error for file in files for error in file.errors]
        elif all(file.state == "COMPLETE" for file in files) and any(
            file.attributes.get("assetType") == "ASSET" for file in files
        ):
            upload.state = "PROCESSING"
            upload.uploaded_date = _now_text(self._clock())
            upload.polls_left = self.polls_per_state

    # --- reservations, commits and delivery of every asset type ----------------------------------

    def _reserve(self, path: str, document: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
        kind = ASSET_TYPES[path]
        data = _data_of(document, kind.type_name)
        attributes = _attributes(data, kind.required_attributes)
        if not isinstance(attributes["fileName"], str) or not attributes["fileName"]:
            raise entity_error(
                "ENTITY_ERROR.ATTRIBUTE.TYPE", "'fileName' must be a non-empty string.", "/data/attributes/fileName"
            )
        size = attributes["fileSize"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise entity_error(
                "ENTITY_ERROR.ATTRIBUTE.INVALID",
                "'fileSize' must be an integer of at least 1.",
                "/data/attributes/fileSize",
            )
        relationships = {name: _relationship(data, name, None) for name in kind.required_relationships}
        upload: Optional[_BuildUpload] = None
        if path == "/v1/buildUploadFiles":
            for name, allowed in (("assetType", BUILD_UPLOAD_FILE_ASSET_TYPES), ("uti", BUILD_UPLOAD_FILE_UTIS)):
                if attributes[name] not in allowed:
                    raise entity_error(
                        "ENTITY_ERROR.ATTRIBUTE.INVALID",
                        f"'{str(attributes[name])[:40]}' is not a valid value for {name}. Allowed: {', '.join(allowed)}",
                        f"/data/attributes/{name}",
                    )
            upload_id = _relationship(data, "buildUpload", "buildUploads")
            upload = self.build_uploads.get(upload_id)
            if upload is None:
                raise no_such_resource("buildUploads", upload_id)
            if upload.state != "AWAITING_UPLOAD":
                raise entity_error(
                    "ENTITY_ERROR.RELATIONSHIP.INVALID",
                    f"The build upload is {upload.state}; files are added while it awaits its upload.",
                    "/data/relationships/buildUpload",
                )
        lifetime = self.operation_lifetime if self.reservation_lifetime is None else self.reservation_lifetime
        key, operations = self._storage().reserve(
            size,
            part_size=self.part_size,
            expires_in=lifetime,
            form=kind.form,
            shuffle=self.shuffle_operations,
        )
        created = {
            name: attributes[name]
            for name in attributes
            if name in kind.required_attributes or name in ("mimeType", "previewFrameTimeCode")
        }
        file = _File(self._new_id(), path, created, relationships, key)
        operations = self._pointed(operations)
        self.files[file.id] = file
        if upload is not None:
            upload.files.append(file.id)
        return 201, self._file_document(file, operations=operations)

    def _pointed(self, operations: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """The operations with ``operation_url_base`` in place of the storage's base URL, when set."""
        if self.operation_url_base is None:
            return operations
        storage_url = self._storage().url
        return [{**op, "url": self.operation_url_base + op["url"][len(storage_url) :]} for op in operations]

    def _file(self, path: str, file_id: str) -> _File:
        file = self.files.get(file_id)
        if file is None or file.path != path:
            raise no_such_resource(ASSET_TYPES[path].type_name, file_id)
        return file

    def _file_document(
        self, file: _File, *, look: bool = False, operations: Optional[List[Dict[str, Any]]] = None
    ) -> Dict[str, Any]:
        kind = ASSET_TYPES[file.path]
        if look:
            self._advance_file(file)
            for upload in self.build_uploads.values():
                if file.id in upload.files:
                    self._files_delivered(upload)
        if operations is None and file.state == "AWAITING_UPLOAD":
            # Fresh operations, as Apple's GET gives them while the file awaits its bytes.
            operations = self._pointed(
                self._storage().operations(
                    file.storage_key, expires_in=self.operation_lifetime, shuffle=self.shuffle_operations
                )
            )
        attributes: Dict[str, Any] = {**file.attributes, **file.committed}
        attributes.pop("uploaded", None)
        attributes["uploadOperations"] = operations
        if kind.state_attribute == "state":
            attributes["state"] = "UPLOAD_COMPLETE" if file.state == "COMPLETE" else file.state
        else:
            attributes["assetDeliveryState"] = {"state": file.state, "errors": file.errors, "warnings": []}
        self_link = f"{self._base_url()}{file.path}/{file.id}"
        resource: Dict[str, Any] = {
            "type": kind.type_name,
            "id": file.id,
            "attributes": attributes,
            "links": {"self": self_link},
        }
        if file.relationships and kind.relationships_shown:
            resource["relationships"] = {name: {"data": linkage} for name, linkage in file.relationships.items()}
        return {"data": resource, "links": {"self": self_link}}

    def _commit(self, path: str, file_id: str, document: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
        kind = ASSET_TYPES[path]
        file = self._file(path, file_id)
        data = _data_of(document, kind.type_name)
        if data.get("id") != file_id:
            raise entity_error(
                "ENTITY_ERROR.ATTRIBUTE.INVALID", "The id in the request body does not match the path.", "/data/id"
            )
        given = data.get("attributes")
        attributes: Dict[str, Any] = given if isinstance(given, dict) else {}
        allowed = {"uploaded", "previewFrameTimeCode", *kind.checksums}
        for name in attributes:
            if name not in allowed:
                raise entity_error(
                    "ENTITY_ERROR.ATTRIBUTE.UNKNOWN",
                    f"'{name[:40]}' is not an attribute of '{kind.type_name}' that can be updated.",
                    f"/data/attributes/{name[:40]}",
                )
        if attributes.get("uploaded") is not True:
            return 200, self._file_document(file)  # nothing committed: an ordinary update
        if file.state != "AWAITING_UPLOAD":
            raise entity_error(
                "ENTITY_ERROR.ATTRIBUTE.INVALID",
                f"The file was already committed ({file.state}).",
                "/data/attributes/uploaded",
            )
        if path == "/v1/buildUploadFiles" and "sourceFileChecksums" not in attributes:
            raise entity_error(
                "ENTITY_ERROR.ATTRIBUTE.REQUIRED",
                "You must provide a value for the attribute 'sourceFileChecksums' with this request",
                "/data/attributes/sourceFileChecksums",
            )
        claimed = self._claimed_checksum(attributes)
        storage = self._storage()
        if not storage.complete(file.storage_key):
            file.commit_problem = {
                "code": "UPLOAD_INCOMPLETE",
                "description": f"Not every part of '{file.attributes['fileName']}' was uploaded before it was committed.",
            }
        elif claimed is not None and storage.digest(file.storage_key, claimed[0]) != claimed[1].lower():
            file.commit_problem = {
                "code": "CHECKSUM_MISMATCH",
                "description": f"The {claimed[0].upper()} checksum given for '{file.attributes['fileName']}' does not "
                "match the bytes that were uploaded.",
            }
        file.committed = {name: value for name, value in attributes.items() if name != "uploaded"}
        file.state = "UPLOAD_COMPLETE"
        file.polls_left = self.polls_per_state
        return 200, self._file_document(file)

    @staticmethod
    def _claimed_checksum(attributes: Dict[str, Any]) -> Optional[Tuple[str, str]]:
        """(hashlib name, hex digest) the commit claims, or None; a malformed one is a 409."""
        if "sourceFileChecksums" in attributes:
            checksums = attributes["sourceFileChecksums"]
            file = checksums.get("file") if isinstance(checksums, dict) else None
            if (
                not isinstance(file, dict)
                or not isinstance(file.get("hash"), str)
                or file.get("algorithm") not in CHECKSUM_ALGORITHMS
            ):
                raise entity_error(
                    "ENTITY_ERROR.ATTRIBUTE.INVALID",
                    "sourceFileChecksums.file needs a hash and an algorithm (MD5 or SHA_256).",
                    "/data/attributes/sourceFileChecksums",
                )
            return CHECKSUM_ALGORITHMS[file["algorithm"]], file["hash"]
        if "sourceFileChecksum" in attributes:
            checksum = attributes["sourceFileChecksum"]
            if not isinstance(checksum, str) or len(checksum) != 32:
                raise entity_error(
                    "ENTITY_ERROR.ATTRIBUTE.INVALID",
                    "sourceFileChecksum must be the file's MD5 digest in hex.",
                    "/data/attributes/sourceFileChecksum",
                )
            return "md5", checksum
        return None

    def _advance_file(self, file: _File) -> None:
        if file.state != "UPLOAD_COMPLETE":
            return
        if file.polls_left > 0:
            file.polls_left -= 1
            return
        if file.commit_problem is not None:
            file.state, file.errors = "FAILED", [file.commit_problem]
        else:
            file.state = "COMPLETE"

    def _links(self, path: str) -> Dict[str, str]:
        return {"self": f"{self._base_url()}{path}"}


def _data_of(document: Dict[str, Any], type_name: str) -> Dict[str, Any]:
    data = document.get("data")
    if not isinstance(data, dict) or data.get("type") != type_name:
        raise entity_error(
            "ENTITY_ERROR.INCLUDED.INVALID", f"The request body must have data of type '{type_name}'.", "/data/type"
        )
    return data


def _attributes(data: Dict[str, Any], required: Tuple[str, ...]) -> Dict[str, Any]:
    given = data.get("attributes")
    attributes: Dict[str, Any] = given if isinstance(given, dict) else {}
    for name in required:
        if attributes.get(name) is None:
            raise entity_error(
                "ENTITY_ERROR.ATTRIBUTE.REQUIRED",
                f"You must provide a value for the attribute '{name}' with this request",
                f"/data/attributes/{name}",
            )
    return attributes


def _relationship(data: Dict[str, Any], name: str, type_name: Optional[str]) -> Any:
    """The id of a required to-one relationship (its linkage when ``type_name`` is None: any type)."""
    relationships = data.get("relationships")
    relationship = relationships.get(name) if isinstance(relationships, dict) else None
    linkage = relationship.get("data") if isinstance(relationship, dict) else None
    if (
        not isinstance(linkage, dict)
        or not isinstance(linkage.get("id"), str)
        or not isinstance(linkage.get("type"), str)
        or (type_name is not None and linkage["type"] != type_name)
    ):
        raise entity_error(
            "ENTITY_ERROR.RELATIONSHIP.REQUIRED",
            f"You must provide a value for the relationship '{name}' with this request",
            f"/data/relationships/{name}",
        )
    return linkage["id"] if type_name is not None else {"type": linkage["type"], "id": linkage["id"]}
