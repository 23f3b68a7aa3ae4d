"""``asc-token api PATH --input RESERVATION.json --upload-file FILE``: any asset Apple uploads with upload operations.

The reservation (RESERVATION.json, POSTed to PATH, one of :data:`assets.ASSET_KINDS`) is checked against
FILE before it is sent; App Store Connect answers with ``uploadOperations``, which :mod:`operations`
carries out (never with a credential); the created resource is then committed (``uploaded: true`` and the
checksum its type takes, :func:`assets.commit_document`), and that answer is what ``asc-token api`` prints.
A failure after the reservation names the reserved resource, so it can be looked at or deleted.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import urlsplit

from . import messages as text
from .assets import ASSET_KINDS, AssetKind, asset_kind, attributes, commit_document, file_digest, resource_id
from .errors import AscTokenError, InputError, UploadFailedError
from .paging import Answer, Pages
from .redact import quote_foreign, shown
from .urls import join_path

if TYPE_CHECKING:
    from .caller import Caller
    from .operations import SendOptions

# method, URL, JSON body -> the answer (run_call's: every refusal explained as asc-token api explains it)
Exchange = Callable[[str, str, Optional[bytes]], Optional[Answer]]

BUILD_UPLOADS = "/v1/buildUploads"


@dataclass(frozen=True)
class AssetFile:
    """FILE and the reservation that announces it, checked against each other: nothing sent yet."""

    kind: AssetKind
    path: str  # FILE as given
    size: int
    reservation: bytes  # RESERVATION.json as given


def read_asset_file(target: str, file: str, reservation: Optional[bytes]) -> AssetFile:
    """FILE, PATH's asset type and the reservation, or :class:`InputError` (exit 2) saying what to fix."""
    kind = asset_kind(_bare_path(target))
    if kind is None:
        raise InputError(_wrong_path(target))
    if reservation is None:
        raise InputError(
            f"--upload-file needs the {kind.type_name} to create: give --input RESERVATION.json, "
            '{"data": {"type": "' + kind.type_name + '", "attributes": {"fileName": ..., "fileSize": ...}, '
            '"relationships": {...}}}, or build it with -f/-F fields (-f data[type]=' + kind.type_name + " "
            "-f data[attributes][fileName]=NAME -F data[attributes][fileSize]=BYTES ...)."
        )
    where = f"--upload-file {shown(file, path=True)}"
    try:
        found = os.stat(file)
        if stat.S_ISDIR(found.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(found.st_mode):  # a pipe has no size to announce, and is read once
            raise InputError(f"{where} is not a regular file: give the path of the file to upload.")
        with open(file, "rb"):  # readable now, not only present
            size = found.st_size
    except FileNotFoundError:
        raise InputError(f"{where} does not exist: give the path of the file to upload.") from None
    except IsADirectoryError:
        raise InputError(f"{where} is a folder: give the path of the file to upload.") from None
    except OSError as exc:
        raise InputError(f"{where} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    if size < 1:
        raise InputError(f"{where} is empty (0 bytes): App Store Connect takes files of at least 1 byte.")
    _check_reservation(kind, json.loads(reservation), size)
    return AssetFile(kind, file, size, reservation)


def _bare_path(target: str) -> str:
    try:
        return urlsplit(target).path
    except ValueError:
        return ""


def _wrong_path(target: str) -> str:
    bare = _bare_path(target).rstrip("/")
    if bare.startswith(BUILD_UPLOADS) and not bare.startswith("/v1/buildUploadFiles"):
        return (
            "--upload-file sends a file for a reservation, and a build upload is not one: upload a build with "
            "asc-token upload FILE (.ipa or .pkg), which creates the build upload, its file and commits them."
        )
    paths = ", ".join(sorted(ASSET_KINDS))
    return (
        f"--upload-file takes the PATH that reserves an upload (a POST to the collection), and "
        f"{shown(target)} is none: use one of {paths}; builds go with asc-token upload FILE."
    )


def _check_reservation(kind: AssetKind, document: Any, size: int) -> None:
    """The reservation names FILE as it is: its type, a fileName, and FILE's size as fileSize."""
    data = document.get("data") if isinstance(document, dict) else None
    given_attributes = attributes(document)
    if not isinstance(data, dict) or data.get("type") != kind.type_name:
        raise InputError(
            f'The --input reservation for {kind.path} must have data.type "{kind.type_name}", so nothing was sent.'
        )
    name = given_attributes.get("fileName")
    if not isinstance(name, str) or not name.strip():
        raise InputError(
            "The --input reservation has no data.attributes.fileName: give the file's name as App Store "
            "Connect should show it (such as screenshot-1.png); nothing was sent."
        )
    given = given_attributes.get("fileSize")
    if given is None:
        raise InputError(
            f"The --input reservation has no data.attributes.fileSize: set it to {size}, the size of "
            "--upload-file in bytes; nothing was sent."
        )
    if isinstance(given, bool) or not isinstance(given, int) or given != size:
        raise InputError(
            f"The --input reservation says fileSize {quote_foreign(str(given), 40)}, but --upload-file is "
            f"{size} bytes: set fileSize to {size} (or give the file it describes); nothing was sent."
        )


def upload_asset(
    asset: AssetFile, url: str, caller: Caller, exchange: Exchange, options: SendOptions
) -> Optional[Answer]:
    """Reserve at ``url``, send FILE's parts, commit: the commit's answer. A failure after the reservation
    is an exit-1 error naming the reserved resource."""
    from .operations import operations_in, send_parts

    kind, log = asset.kind, caller.log
    reserved = _document(exchange("POST", url, asset.reservation))
    reserved_id = resource_id(reserved, f"the id of the {kind.type_name}")
    commit_path = kind.commit_path(reserved_id)
    commit_url = join_path(commit_path, caller.credentials.api_url)
    log(text.ASSET_RESERVED.format(type=kind.type_name, id=quote_foreign(reserved_id, 80), size=asset.size))
    try:
        operations = operations_in(reserved)
        # The rule for every asset type: the checksum it takes is the file's MD5 (hex).
        md5_hex = file_digest(asset.path, "MD5") if kind.checksum_field else None

        def refresh() -> Any:  # operations past their expiration: fresh ones, asked for once
            return operations_in(_document(exchange("GET", commit_url, None)))

        send_parts(asset.path, operations, options, refresh=refresh)
        body = commit_document(kind.path, reserved_id, md5_hex=md5_hex)
        committed = exchange("PATCH", commit_url, json.dumps(body).encode())
    except AscTokenError as error:
        note = text.ASSET_NOT_COMMITTED.format(type=kind.type_name, id=quote_foreign(reserved_id, 80), path=commit_path)
        raise UploadFailedError(f"{error.message} {note}", details=error.details, title=error.title) from None
    except KeyboardInterrupt:
        log(text.ASSET_NOT_COMMITTED.format(type=kind.type_name, id=quote_foreign(reserved_id, 80), path=commit_path))
        raise
    if committed is None:  # a commit answered without a body: the resource as it is now
        committed = exchange("GET", commit_url, None)
    log(text.ASSET_COMMITTED.format(type=kind.type_name, id=quote_foreign(reserved_id, 80)))
    return committed


def _document(answer: Optional[Answer]) -> Any:
    if isinstance(answer, Pages):
        first = answer.first
        answer.close()
        return first
    return None
