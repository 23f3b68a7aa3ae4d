"""A stand-in for Apple's object storage: the second loopback listener that upload operations point at.

App Store Connect answers a reservation (``POST /v1/buildUploadFiles``, ``POST /v1/appScreenshots``...)
with upload operations: pre-signed links to object storage on other hosts, each taking one part of
the file with exactly its method and headers. This server plays those hosts on 127.0.0.1 and checks
each request the way S3 checks a pre-signed URL:

- the signature in the query is one it issued for that path, and not expired
  (403 ``AccessDenied`` "Request has expired"; :meth:`ObjectStorage.expire` ends them early);
- the method is the operation's (403 ``SignatureDoesNotMatch``: the method is signed);
- every one of the operation's ``requestHeaders`` is present with its exact value (403 ``SignatureDoesNotMatch``);
- a ``Content-Length`` is given (411 ``MissingContentLength``) and equals the operation's length
  (400 ``InvalidRequest``), and that many bytes arrive (400 ``IncompleteBody``);
- no credential: an ``Authorization``, ``Proxy-Authorization``, ``X-Api-Key`` or ``Cookie`` header is
  refused with 400 ``InvalidArgument`` (S3: "Only one auth mechanism allowed"). Every request, with
  all its headers, is kept in :attr:`ObjectStorage.received`, so a test can prove that no credential
  ever reached storage (:meth:`ObjectStorage.credentials_seen`).

A part accepted is answered 200 with an ``ETag`` (the quoted MD5 of the part) and written at its offset
in a temporary file, so parts may arrive in parallel, in any order, retried, and are reassembled byte
for byte (:meth:`ObjectStorage.assembled`); large uploads do not grow memory. Faults per part:
:meth:`ObjectStorage.fail` (an S3 error status) and :meth:`ObjectStorage.reset` (the connection closed
with no answer). Never imports asc_token: the rules are written here, from S3's documented behaviour.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import random
import secrets
import socket
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

BUCKET = "asc-standin-uploads"
DEFAULT_PART_SIZE = 5 * 1024 * 1024
OPERATION_FORMS = ("delivery", "asset")  # DeliveryFileUploadOperation, UploadOperation
# Headers that carry a credential: none may ever reach object storage (the URL's signature is the only one).
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "cookie")
# What each operation asks the client to send, as S3 pre-signed PUTs signed with these headers do.
PART_HEADERS = (("Content-Type", "application/octet-stream"), ("x-amz-server-side-encryption", "AES256"))
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as it reached storage, whatever its answer (``status``; 0: reset without one)."""

    method: str
    path: str
    query: str
    headers: Dict[str, str]
    body_length: int
    part: Optional[int]  # the part number the path names, None when it names none
    key: Optional[str] = None
    status: int = 0


@dataclass
class _Part:
    number: int
    offset: int
    length: int


@dataclass
class _Upload:
    key: str
    size: int
    parts: Dict[int, _Part]
    form: str
    file: IO[bytes]
    received: Dict[int, str] = field(default_factory=dict)  # part number -> md5 hex of what arrived
    signatures: Dict[str, float] = field(default_factory=dict)  # issued signature -> expires at (epoch)
    write_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Fault:
    part: int
    key: Optional[str]
    kind: str  # "status" or "reset"
    status: int
    remaining: int
    retry_after: Optional[int] = None


class ObjectStorage:
    """Start with ``with ObjectStorage() as storage:`` (or :meth:`start`); ``storage.url`` is its base URL."""

    def __init__(self, *, clock: Callable[[], float] = time.time, seed: Optional[int] = None) -> None:
        self.clock = clock  # the storage's idea of now (the App Store Connect stand-in passes its own)
        self.received: List[ReceivedRequest] = []
        self._uploads: Dict[str, _Upload] = {}
        self._faults: List[_Fault] = []
        self._secret = secrets.token_bytes(32)
        self._random = random.Random(seed)  # noqa: S311 - the order of operations, not a secret
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._started = False

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ObjectStorage:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._started:
            self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for upload in self._uploads.values():
                upload.file.close()

    def __enter__(self) -> ObjectStorage:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what App Store Connect asks of storage ----------------------------------------------------

    def reserve(
        self,
        size: int,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        expires_in: float = 900.0,
        form: str = "delivery",
        shuffle: bool = False,
    ) -> Tuple[str, List[Dict[str, Any]]]:
        """A new upload of `size` bytes: (key, Apple-shaped operations). form "delivery" gives
        DeliveryFileUploadOperation (method PUT, url, offset, length, requestHeaders [{name, value}],
        partNumber, expiration ISO-8601 UTC 'Z'); form "asset" gives UploadOperation (no partNumber, no
        expiration). URLs look pre-signed: /<bucket>/<key>/<part>?X-Amz-Expires=..&X-Amz-Signature=..
        requestHeaders include Content-Type: application/octet-stream (and what else S3 would)."""
        if size < 1 or part_size < 1:
            raise ValueError("an upload needs at least one byte and parts of at least one byte")
        if form not in OPERATION_FORMS:
            raise ValueError(f"form must be one of {OPERATION_FORMS}, not {form!r}")
        key = secrets.token_hex(16)
        parts = {
            number: _Part(number, offset, min(part_size, size - offset))
            for number, offset in enumerate(range(0, size, part_size), 1)
        }
        upload = _Upload(key, size, parts, form, tempfile.TemporaryFile())  # noqa: SIM115 - closed by stop()
        with self._lock:
            self._uploads[key] = upload
        return key, self.operations(key, expires_in=expires_in, shuffle=shuffle)

    def operations(self, key: str, *, expires_in: float = 900.0, shuffle: bool = False) -> List[Dict[str, Any]]:
        """Fresh operations for an upload already reserved (new signatures and expiration): what a GET of
        the reservation answers while it awaits its upload. Earlier operations stay valid until they expire."""
        with self._lock:
            upload = self._uploads[key]
            # Whole milliseconds, so that the expiration written and the one checked agree.
            expires_at = int((self.clock() + expires_in) * 1000) / 1000
            token = secrets.token_urlsafe(12)
            operations = []
            for part in upload.parts.values():
                path = f"/{BUCKET}/{key}/{part.number}"
                query = {
                    "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                    "X-Amz-Date": _amz_date(expires_at - expires_in),
                    "X-Amz-Expires": str(max(1, round(expires_in))),
                    "X-Amz-SignedHeaders": "content-type;host;x-amz-server-side-encryption",
                    "X-Amz-Security-Token": token,
                }
                signature = self._sign("PUT", path, query)
                upload.signatures[signature] = expires_at
                operation: Dict[str, Any] = {
                    "method": "PUT",
                    "url": f"{self.url}{path}?{urlencode({**query, 'X-Amz-Signature': signature})}",
                    "offset": part.offset,
                    "length": part.length,
                    "requestHeaders": [{"name": name, "value": value} for name, value in PART_HEADERS],
                }
                if upload.form == "delivery":
                    operation["partNumber"] = part.number
                    operation["expiration"] = _iso_z(expires_at)
                operations.append(operation)
        if shuffle:
            self._random.shuffle(operations)
        return operations

    def size(self, key: str) -> int:
        return self._uploads[key].size

    def assembled(self, key: str) -> bytes:
        """The upload's bytes as received so far, each part at its offset: ``size`` bytes, zeros where no
        part has arrived (see :meth:`complete`)."""
        upload = self._uploads[key]
        with upload.write_lock:
            upload.file.seek(0)
            data = upload.file.read(upload.size)
        return data + bytes(upload.size - len(data))

    def complete(self, key: str) -> bool:
        """Every part received, each with the right length."""
        upload = self._uploads[key]
        with self._lock:
            return set(upload.received) == set(upload.parts)

    def digest(self, key: str, algorithm: str) -> str:
        """The hex digest (hashlib name: "sha256", "md5") of :meth:`assembled`, read from disk in chunks."""
        upload = self._uploads[key]
        hasher = hashlib.new(algorithm)
        with upload.write_lock:
            upload.file.seek(0)
            left = upload.size
            while left > 0:
                chunk = upload.file.read(min(_READ_CHUNK, left))
                if not chunk:
                    break
                hasher.update(chunk)
                left -= len(chunk)
        if left > 0:
            hasher.update(bytes(left))
        return hasher.hexdigest()

    def parts_received(self, key: str) -> List[int]:
        """The part numbers accepted so far, in the order they were first accepted."""
        with self._lock:
            return list(self._uploads[key].received)

    def credentials_seen(self) -> List[ReceivedRequest]:
        """Every request that carried a credential header (a test expects none)."""
        with self._lock:
            return [r for r in self.received if any(name.lower() in CREDENTIAL_HEADERS for name in r.headers)]

    # --- faults ------------------------------------------------------------------------------------

    def fail(
        self,
        part: int,
        *,
        status: int = 500,
        times: int = 1,
        key: Optional[str] = None,
        retry_after: Optional[int] = None,
    ) -> None:
        """The next ``times`` requests for ``part`` (of upload ``key``, or of any) answer ``status`` with
        S3's error XML (429 TooManyRequests, 500 InternalError, 503 SlowDown, else ServiceUnavailable), the part not kept; with
        ``retry_after``, a ``Retry-After`` header."""
        with self._lock:
            self._faults.append(_Fault(part, key, "status", status, times, retry_after))

    def reset(self, part: int, *, times: int = 1, key: Optional[str] = None) -> None:
        """The next ``times`` requests for ``part`` are read, then their connection is reset with no answer."""
        with self._lock:
            self._faults.append(_Fault(part, key, "reset", 0, times))

    def expire(self, key: str) -> None:
        """Every operation issued so far for that upload now answers 403 expired."""
        with self._lock:
            upload = self._uploads[key]
            for signature in upload.signatures:
                upload.signatures[signature] = 0.0

    # --- internals ---------------------------------------------------------------------------------

    def _sign(self, method: str, path: str, query: Dict[str, str]) -> str:
        text = "\n".join([method, path, *(f"{name}={query[name]}" for name in sorted(query))])
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.received.append(request)

    def _take_fault(self, key: str, part: int) -> Optional[_Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.part == part and fault.key in (None, key):
                    fault.remaining -= 1
                    return fault
        return None


def _amz_date(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _iso_z(moment: float) -> str:
    stamp = datetime.datetime.fromtimestamp(moment, datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 64  # many parts connect at once: the default backlog of 5 would drop SYNs (1 s stalls)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-part is what the fault tests do: no traceback on stderr


class _StorageError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


def _handler_for(storage: ObjectStorage) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "AmazonS3"
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes (see devtools/standin.py)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
            pass

        def do_PUT(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def _handle(self) -> None:
            target = urlsplit(self.path)
            segments = target.path.strip("/").split("/")
            key = segments[1] if len(segments) == 3 and segments[0] == BUCKET else None
            part = int(segments[2]) if key is not None and segments[2].isdigit() and len(segments[2]) < 7 else None
            self._received_length = 0
            self._recorded = False
            self._request = (target.path, target.query, key, part)
            try:
                self._serve(target.path, target.query, key, part)
            except _StorageError as refusal:
                self._discard_body()
                self._send_error(refusal)
            finally:
                self._note(0)  # a request that ended with no answer (reset, or the client gone)

        def _note(self, status: int) -> None:
            """Record the request once, before its answer is written: a client that has its answer finds
            the request in ``received``."""
            if self._recorded:
                return
            self._recorded = True
            path, query, key, part = self._request
            headers = {name: value for name, value in self.headers.items()}
            storage._record(
                ReceivedRequest(self.command, path, query, headers, self._received_length, part, key, status)
            )

        def _serve(self, path: str, query_text: str, key: Optional[str], part: Optional[int]) -> None:
            credentials = [name for name in self.headers if name.lower() in CREDENTIAL_HEADERS]
            if credentials:
                raise _StorageError(
                    400,
                    "InvalidArgument",
                    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
                    f"query string parameter or the Authorization header should be specified ({credentials[0]} sent)",
                )
            upload = storage._uploads.get(key or "")
            if upload is None or part is None or part not in upload.parts:
                raise _StorageError(404, "NoSuchUpload", "The specified upload does not exist.")
            query = dict(parse_qsl(query_text, keep_blank_values=True))
            signature = query.pop("X-Amz-Signature", "")
            expected = storage._sign("PUT", path, query)
            if not hmac.compare_digest(signature, expected) or signature not in upload.signatures:
                raise _StorageError(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
            if storage.clock() >= upload.signatures[signature]:
                raise _StorageError(403, "AccessDenied", "Request has expired")
            if self.command != "PUT":
                raise _StorageError(
                    403, "SignatureDoesNotMatch", f"The request was signed for PUT, not {self.command}."
                )
            for name, value in PART_HEADERS:
                if self.headers.get(name) != value:
                    raise _StorageError(
                        403, "SignatureDoesNotMatch", f"The signed header {name} must be {value!r} exactly."
                    )
            length_header = self.headers.get("Content-Length")
            if length_header is None or not length_header.isdigit():
                raise _StorageError(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
            expected_length = upload.parts[part].length
            if int(length_header) != expected_length:
                raise _StorageError(
                    400, "InvalidRequest", f"Part {part} must be {expected_length} bytes, not {length_header}."
                )
            fault = storage._take_fault(upload.key, part)
            md5 = self._store(upload, part, expected_length, keep=fault is None)
            if fault is not None and fault.kind == "reset":
                # SO_LINGER 0 makes close() send RST: the client sees "connection reset", no answer.
                self._note(0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if fault is not None:
                code = {429: "TooManyRequests", 500: "InternalError", 503: "SlowDown"}.get(
                    fault.status, "ServiceUnavailable"
                )
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                self._send_error(_StorageError(fault.status, code, "Please reduce your request rate."), extra)
                return
            self._note(200)
            self.send_response(200)
            self.send_header("ETag", f'"{md5}"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _store(self, upload: _Upload, part: int, length: int, *, keep: bool) -> str:
            """Read the part's body (streamed, a chunk at a time); when kept, write each chunk at its place
            and mark the part received once all of it has arrived. Returns the part's MD5 (hex)."""
            hasher = hashlib.md5()  # noqa: S324 - S3's ETag, not a security use
            place = upload.parts[part].offset
            left = length
            while left > 0:
                chunk = self.rfile.read(min(_READ_CHUNK, left))
                if not chunk:
                    self.close_connection = True
                    raise _StorageError(
                        400,
                        "IncompleteBody",
                        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
                    )
                hasher.update(chunk)
                if keep:
                    self._write(upload, place, chunk)
                place += len(chunk)
                left -= len(chunk)
                self._received_length += len(chunk)
            if keep:
                with storage._lock:
                    upload.received[part] = hasher.hexdigest()
            return hasher.hexdigest()

        @staticmethod
        def _write(upload: _Upload, offset: int, chunk: bytes) -> None:
            with upload.write_lock:  # one file position for all parts: seek and write together
                upload.file.seek(offset)
                upload.file.write(chunk)
                upload.file.flush()  # readers of the file (assembled, digest) see every byte written

        def _discard_body(self) -> None:
            """Read what a refused request sent, so the connection stays usable; without a length, close it."""
            length = self.headers.get("Content-Length")
            if self.close_connection or length is None or not length.isdigit():
                self.close_connection = True
                return
            left = int(length) - self._received_length
            while left > 0:
                chunk = self.rfile.read(min(_READ_CHUNK, left))
                if not chunk:
                    self.close_connection = True
                    return
                left -= len(chunk)
                self._received_length += len(chunk)

        def _send_error(self, refusal: _StorageError, headers: Optional[Dict[str, str]] = None) -> None:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{refusal.code}</Code><Message>{refusal.message}</Message>"
                f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
            ).encode()
            self._note(refusal.status)
            self.send_response(refusal.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler
