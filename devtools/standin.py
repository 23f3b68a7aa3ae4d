"""A local stand-in for the App Store Connect API, for tests and the demo.

A real HTTP server on 127.0.0.1 that checks tokens the way Apple documents them (ES256, kid,
typ, aud, signature with the registered public key, ``exp - iat <= 1200``, ``exp`` not past,
``iat`` not in the future, ``iss``/``sub``, scope) and answers ``/v1/apps`` with Apple-shaped
JSON, ``X-Rate-Limit`` and ``Date`` headers. Faults queued with :meth:`AppStoreConnectStandIn.inject`
are served one per request, in order.

``/v1/apps`` pages like Apple: ``limit`` up to 200 (400 PARAMETER_ERROR.INVALID above), an opaque
``cursor`` in ``links.next``, ``meta.paging.total``, ``filter[bundleId]``; ``app_count`` sets how
many apps there are. ``/v1/bundleIds`` takes POST (201 with the created resource), and
``/v1/bundleIds/{id}`` GET, PATCH and DELETE (204), so request bodies can be tested.
``/v1/builds`` (``filter[app]``, ``filter[version]``) shows builds added with :meth:`add_build`,
PROCESSING until they have been looked at a given number of times, then VALID.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

# Apple's rules, written here from Apple's "Generating Tokens for API Requests", never imported
# from the product: a wrong rule in asc_token must not be confirmed by the same rule in its double.
APPLE_AUDIENCE = "appstoreconnect-v1"
APPLE_MAX_LIFETIME = 20 * 60
APPLE_MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50  # the stand-in's choice when a request names no limit
MAX_REQUEST_BODY = 1024 * 1024

_NOT_AUTHORIZED = (
    "Authentication credentials are missing or invalid.",
    "Provide a properly configured and signed bearer token, and make sure that it has not "
    "expired. Learn more about Generating Tokens for API Requests "
    "https://developer.apple.com/go/?id=api-generating-tokens",
)
_APPS = [
    {"name": "Demo App", "bundleId": "com.example.demo", "sku": "DEMO1"},
    {"name": "Demo App Watch", "bundleId": "com.example.demo.watch", "sku": "DEMO2"},
    {"name": "Demo App Mac", "bundleId": "com.example.demo.mac", "sku": "DEMO3"},
]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour: ``kind`` is status, rate-limit, reset, delay, html or
    unauthorized (Apple's occasional 401 NOT_AUTHORIZED to a valid token)."""

    kind: str
    status: int = 500
    retry_after: Optional[int] = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Call:
    """One request as it arrived: what tests need to prove tokens were re-signed or bodies sent."""

    method: str
    path: str
    outcome: str
    token: str = field(repr=False)
    body: bytes = b""


@dataclass(frozen=True)
class RegisteredKey:
    public_key: ec.EllipticCurvePublicKey
    issuer_id: Optional[str]  # None: an individual key
    role_allows_apps: bool = True


class AppStoreConnectStandIn:
    """Start with ``with AppStoreConnectStandIn() as api:``; ``api.url`` is its base URL."""

    def __init__(
        self,
        clock_offset_seconds: float = 0.0,
        hourly_limit: int = 3600,
        *,
        app_count: int = len(_APPS),
        response_delay_seconds: float = 0.0,
    ) -> None:
        self.keys: Dict[str, RegisteredKey] = {}
        self.requests: List[Tuple[str, str]] = []  # (path, outcome) in arrival order
        self.calls: List[Call] = []  # the same requests with method, bearer token and body
        self.clock_offset_seconds = clock_offset_seconds
        self.hourly_limit = hourly_limit
        self.app_count = app_count
        # Each accepted request takes this long to answer: a distant server, a large export.
        self.response_delay_seconds = response_delay_seconds
        self.bundle_ids: Dict[str, Dict[str, Any]] = {}  # id -> resource, in creation order
        self.builds: List[Dict[str, Any]] = []
        self._polls_left: Dict[str, int] = {}  # build id -> answers still PROCESSING
        self._faults: List[Fault] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def register(
        self,
        key_id: str,
        public_key: ec.EllipticCurvePublicKey,
        issuer_id: Optional[str],
        *,
        role_allows_apps: bool = True,
    ) -> None:
        self.keys[key_id] = RegisteredKey(public_key, issuer_id, role_allows_apps)

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def now(self) -> float:
        return time.time() + self.clock_offset_seconds

    def start(self) -> AppStoreConnectStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> AppStoreConnectStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_fault(self) -> Optional[Fault]:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _record(self, path: str, outcome: str, method: str = "GET", token: str = "", body: bytes = b"") -> int:
        with self._lock:
            self.requests.append((path, outcome))
            self.calls.append(Call(method, path, outcome, token, body))
            return len(self.requests)

    def add_build(self, app_id: str, version: str, *, processing_polls: int) -> str:
        """An uploaded build: PROCESSING in its first ``processing_polls`` answers, VALID after."""
        build_id = str(uuid.uuid4())
        self.builds.append(
            {
                "type": "builds",
                "id": build_id,
                "attributes": {"version": version, "processingState": "PROCESSING"},
                "relationships": {"app": {"data": {"type": "apps", "id": app_id}}},
            }
        )
        self._polls_left[build_id] = processing_polls
        return build_id

    def _look_at(self, build: Dict[str, Any]) -> Dict[str, Any]:
        with self._lock:
            if self._polls_left[build["id"]] > 0:
                self._polls_left[build["id"]] -= 1
            else:
                build["attributes"]["processingState"] = "VALID"
            copy: Dict[str, Any] = json.loads(json.dumps(build))  # as it was at this answer
            return copy

    def tokens_seen(self) -> List[str]:
        """The distinct bearer tokens received, in order of first use."""
        with self._lock:
            return list(dict.fromkeys(call.token for call in self.calls if call.token))

    def check_token(self, authorization: str, method: str, path: str) -> Tuple[int, str, str]:
        """(status, code, detail) for a request; 200 when Apple would accept the token."""
        if not authorization.startswith("Bearer "):
            return 401, "NOT_AUTHORIZED", "no bearer token"
        token = authorization[len("Bearer ") :]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return 401, "NOT_AUTHORIZED", "malformed token"
        if header.get("alg") != "ES256" or header.get("typ") != "JWT":
            return 401, "NOT_AUTHORIZED", "alg must be ES256 and typ JWT"
        registered = self.keys.get(str(header.get("kid")))
        if registered is None:
            return 401, "NOT_AUTHORIZED", "unknown kid"
        try:
            claims = jwt.decode(
                token,
                registered.public_key,
                algorithms=["ES256"],
                audience=APPLE_AUDIENCE,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError as exc:
            return 401, "NOT_AUTHORIZED", f"token rejected: {type(exc).__name__}"
        problem = self._claims_problem(claims, registered)
        if problem:
            return 401, "NOT_AUTHORIZED", problem
        if not apple_scope_permits(claims.get("scope"), method, path):
            return 401, "NOT_AUTHORIZED", "the token's scope does not allow this request"
        if not registered.role_allows_apps:
            return 403, "FORBIDDEN_ERROR", "The API key in use does not allow this request"
        return 200, "", ""

    def _claims_problem(self, claims: Dict[str, Any], registered: RegisteredKey) -> str:
        now = self.now()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "iat and exp must be integers"
        if exp - iat > APPLE_MAX_LIFETIME:
            return "token lifetime exp - iat exceeds 20 minutes"
        if exp <= now:
            return "token expired"
        if iat > now + 1:
            return "iat is in the future"
        if registered.issuer_id is None:
            if claims.get("sub") != "user" or "iss" in claims:
                return "an individual key's token needs sub: user and no iss"
        elif claims.get("iss") != registered.issuer_id:
            return "iss does not match the key's issuer"
        return ""


def apple_scope_permits(scope: Any, method: str, path: str) -> bool:
    """Apple: a token with a scope may make only the requests listed, as ``METHOD /path?query``.

    No scope claim means no restriction. A listed query parameter must appear in the request with
    the same value; the request may carry more parameters than the entry names.
    """
    if scope is None:
        return True
    if not isinstance(scope, list) or not all(isinstance(entry, str) for entry in scope):
        return False
    request = urlsplit(path)
    request_params = parse_qsl(request.query, keep_blank_values=True)
    for entry in scope:
        verb, _, target = entry.partition(" ")
        listed = urlsplit(target.strip())
        if verb != method or listed.path != request.path:
            continue
        if all(param in request_params for param in parse_qsl(listed.query, keep_blank_values=True)):
            return True
    return False


def app_resource(base_url: str, n: int) -> Dict[str, Any]:
    """The n-th app (0-based): the three demo apps first, then numbered ones."""
    attributes = (
        dict(_APPS[n])
        if n < len(_APPS)
        else {"name": f"App {n + 1}", "bundleId": f"com.example.app{n + 1}", "sku": f"APP{n + 1}"}
    )
    app_id = str(1000000000 + n)
    return {"type": "apps", "id": app_id, "attributes": attributes, "links": {"self": f"{base_url}/v1/apps/{app_id}"}}


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Optional[int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "offset" and number.isdigit() and len(number) < 10 else None


class _AppleError(Exception):
    """An Apple error answer, raised from deep in a route."""

    def __init__(self, status: int, code: str, title: str, detail: str, source: Optional[Dict[str, str]] = None):
        super().__init__(code)
        self.status, self.code, self.title, self.detail, self.source = status, code, title, detail, source


def _parameter_error(parameter: str, detail: str) -> _AppleError:
    return _AppleError(
        400, "PARAMETER_ERROR.INVALID", "A parameter has an invalid value", detail, {"parameter": parameter}
    )


def _entity_error(code: str, detail: str, pointer: str) -> _AppleError:
    return _AppleError(409, code, "The provided entity is invalid", detail, {"pointer": pointer})


def _filter_allows(params: Dict[str, str], name: str, value: str) -> bool:
    """Apple's ``filter[...]=a,b``: absent allows everything, else one of the listed values."""
    return name not in params or value in params[name].split(",")


def _not_found(detail: str = "The path provided does not match a defined resource type.") -> _AppleError:
    return _AppleError(404, "NOT_FOUND", "The specified resource does not exist", detail)


def _handler_for(api: AppStoreConnectStandIn) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "asc-standin"
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes: without TCP_NODELAY, Nagle holds the body back until
        # the client's delayed ACK (40 ms) on a kept-alive connection, which no real server does.
        disable_nagle_algorithm = True

        def date_time_string(self, timestamp: Optional[float] = None) -> str:
            return email.utils.formatdate(api.now(), usegmt=True)  # the server's (maybe skewed) clock

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
            pass  # tests and the demo read api.requests, not stderr

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def _note(self, outcome: str) -> None:
            authorization = self.headers.get("Authorization", "")
            token = authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else ""
            api._record(self.path, outcome, self.command, token, self._body)

        def _handle(self) -> None:
            # The body is read first, whatever the answer: the connection is kept alive.
            length = self.headers.get("Content-Length", "0")
            size = int(length) if length.isdigit() else 0
            self._body = self.rfile.read(min(size, MAX_REQUEST_BODY)) if size else b""
            fault = api._next_fault()
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.seconds)
                fault = None
            if fault is not None and fault.kind == "reset":
                self._note("reset")
                # SO_LINGER 0 makes close() send RST: the client sees "connection reset".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if fault is not None and fault.kind == "html":
                self._note(str(fault.status))
                page = f"<html><head><title>{fault.status} Bad Gateway</title></head><body>proxy</body></html>"
                self._send(fault.status, page.encode(), "text/html; charset=utf-8")
                return
            if fault is not None and fault.kind == "rate-limit":
                self._note("429")
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                self._error(
                    429,
                    "RATE_LIMIT_EXCEEDED",
                    "The request rate limit has been reached.",
                    "We've received too many requests for this API. Please wait and try again or slow down your request rate.",
                    headers,
                )
                return
            if fault is not None and fault.kind == "status":
                self._note(str(fault.status))
                self._error(
                    fault.status,
                    "UNEXPECTED_ERROR",
                    "An unexpected error occurred.",
                    "An unexpected error occurred on the server side. If this issue continues, contact us at https://developer.apple.com/contact/.",
                )
                return
            if fault is not None and fault.kind == "unauthorized":
                self._note("401")
                self._error(401, "NOT_AUTHORIZED", *_NOT_AUTHORIZED, extra_detail="a spurious 401 (injected)")
                return
            self._route()

        def _route(self) -> None:
            path = urlsplit(self.path).path
            segments = path.strip("/").split("/")
            if segments[:2] not in (["v1", "apps"], ["v1", "bundleIds"], ["v1", "builds"]) or len(segments) > 3:
                self._note("404")
                refusal = _not_found()
                self._error(refusal.status, refusal.code, refusal.title, refusal.detail)
                return
            status, code, why = api.check_token(self.headers.get("Authorization", ""), self.command, self.path)
            if status == 401:
                self._note("401")
                self._error(401, code, *_NOT_AUTHORIZED, extra_detail=why)
                return
            if status == 403:
                self._note("403")
                self._error(403, code, "The given operation is not allowed", why)
                return
            if api.response_delay_seconds:
                time.sleep(api.response_delay_seconds)  # after the token check, as a slow page would be
            try:
                resource_id = segments[2] if len(segments) == 3 else None
                if segments[1] == "apps":
                    answer, body = self._apps(resource_id)
                elif segments[1] == "builds":
                    answer, body = self._builds(resource_id)
                else:
                    answer, body = self._bundle_ids(resource_id)
            except _AppleError as refusal:
                self._note(str(refusal.status))
                self._error(refusal.status, refusal.code, refusal.title, refusal.detail, source=refusal.source)
                return
            self._note(str(answer))
            if body is None:
                self._send(answer, b"", "")
            else:
                self._send(answer, json.dumps(body).encode(), "application/json")

        def _method_not_allowed(self) -> _AppleError:
            return _AppleError(
                405,
                "METHOD_NOT_ALLOWED",
                "The request method is not valid for the resource path.",
                f"The resource does not allow the '{self.command}' method.",
            )

        def _apps(self, app_id: Optional[str]) -> Tuple[int, Optional[Dict[str, Any]]]:
            if self.command != "GET":
                raise self._method_not_allowed()
            if app_id is not None:
                n = int(app_id) - 1000000000 if app_id.isdigit() and len(app_id) < 12 else -1
                if not 0 <= n < api.app_count:
                    raise _not_found(f"There is no resource of type 'apps' with id '{app_id[:40]}'")
                return 200, {"data": app_resource(api.url, n), "links": {"self": f"{api.url}{self.path}"}}
            query = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
            params = dict(query)
            raw_limit = params.get("limit", str(DEFAULT_PAGE_SIZE))
            if not (raw_limit.isdigit() and len(raw_limit) < 6 and 1 <= int(raw_limit) <= APPLE_MAX_PAGE_SIZE):
                raise _parameter_error(
                    "limit",
                    f"'{raw_limit[:20]}' is not a valid value for limit. The maximum value allowed is {APPLE_MAX_PAGE_SIZE}",
                )
            limit = int(raw_limit)
            offset = 0
            if "cursor" in params:
                decoded = decode_cursor(params["cursor"])
                if decoded is None:
                    raise _parameter_error("cursor", "The cursor is not valid.")
                offset = decoded
            selected = list(range(api.app_count))
            if "filter[bundleId]" in params:
                wanted = set(params["filter[bundleId]"].split(","))
                selected = [n for n in selected if app_resource(api.url, n)["attributes"]["bundleId"] in wanted]
            page = [app_resource(api.url, n) for n in selected[offset : offset + limit]]
            links = {"self": f"{api.url}{self.path}"}
            if offset + limit < len(selected):
                kept = [(name, value) for name, value in query if name != "cursor"]
                links["next"] = f"{api.url}/v1/apps?{urlencode([*kept, ('cursor', encode_cursor(offset + limit))])}"
            return 200, {"data": page, "links": links, "meta": {"paging": {"total": len(selected), "limit": limit}}}

        def _builds(self, build_id: Optional[str]) -> Tuple[int, Optional[Dict[str, Any]]]:
            if self.command != "GET":
                raise self._method_not_allowed()
            links = {"self": f"{api.url}{self.path}"}
            if build_id is not None:
                found = [build for build in api.builds if build["id"] == build_id]
                if not found:
                    raise _not_found(f"There is no resource of type 'builds' with id '{build_id[:40]}'")
                return 200, {"data": api._look_at(found[0]), "links": links}
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            matches = [
                build
                for build in api.builds
                if _filter_allows(params, "filter[app]", build["relationships"]["app"]["data"]["id"])
                and _filter_allows(params, "filter[version]", build["attributes"]["version"])
            ]
            data = [api._look_at(build) for build in matches]
            return 200, {"data": data, "links": links, "meta": {"paging": {"total": len(data), "limit": 50}}}

        def _bundle_ids(self, bundle_id: Optional[str]) -> Tuple[int, Optional[Dict[str, Any]]]:
            if bundle_id is None:
                if self.command == "GET":
                    registered = list(api.bundle_ids.values())
                    return 200, {
                        "data": registered,
                        "links": {"self": f"{api.url}{self.path}"},
                        "meta": {"paging": {"total": len(registered), "limit": APPLE_MAX_PAGE_SIZE}},
                    }
                if self.command == "POST":
                    return self._create_bundle_id()
                raise self._method_not_allowed()
            resource = api.bundle_ids.get(bundle_id)
            if resource is None:
                raise _not_found(f"There is no resource of type 'bundleIds' with id '{bundle_id[:40]}'")
            if self.command == "DELETE":
                del api.bundle_ids[bundle_id]
                return 204, None
            if self.command == "PATCH":
                change = self._document().get("data")
                if not isinstance(change, dict) or change.get("type") != "bundleIds" or change.get("id") != bundle_id:
                    raise _entity_error(
                        "ENTITY_ERROR.ATTRIBUTE.INVALID",
                        "The id in the request body does not match the path.",
                        "/data/id",
                    )
                attributes = change.get("attributes")
                if isinstance(attributes, dict) and isinstance(attributes.get("name"), str):
                    resource["attributes"]["name"] = attributes["name"]
            return 200, {"data": resource, "links": {"self": f"{api.url}{self.path}"}}

        def _document(self) -> Dict[str, Any]:
            try:
                document = json.loads(self._body)
            except ValueError:
                document = None
            if not isinstance(document, dict):
                raise _AppleError(
                    422,
                    "ENTITY_UNPROCESSABLE",
                    "The request entity is not valid JSON",
                    "The request body could not be parsed.",
                )
            return document

        def _create_bundle_id(self) -> Tuple[int, Dict[str, Any]]:
            data = self._document().get("data")
            if not isinstance(data, dict) or data.get("type") != "bundleIds":
                raise _entity_error(
                    "ENTITY_ERROR.INCLUDED.INVALID",
                    "The request body must have data of type 'bundleIds'.",
                    "/data/type",
                )
            given = data.get("attributes")
            attributes: Dict[str, Any] = given if isinstance(given, dict) else {}
            for name in ("identifier", "name", "platform"):
                if not isinstance(attributes.get(name), str) or not attributes[name]:
                    raise _entity_error(
                        "ENTITY_ERROR.ATTRIBUTE.REQUIRED",
                        f"You must provide a value for the attribute '{name}' with this request",
                        f"/data/attributes/{name}",
                    )
            if any(r["attributes"]["identifier"] == attributes["identifier"] for r in api.bundle_ids.values()):
                raise _entity_error(
                    "ENTITY_ERROR.ATTRIBUTE.INVALID",
                    "An App ID with Identifier is not available. Enter a different string.",
                    "/data/attributes/identifier",
                )
            new_id = uuid.uuid4().hex[:10].upper()
            kept = {key: attributes[key] for key in ("identifier", "name", "platform")}
            resource = {
                "type": "bundleIds",
                "id": new_id,
                "attributes": {**kept, "seedId": "ABCDE12345"},
                "links": {"self": f"{api.url}/v1/bundleIds/{new_id}"},
            }
            api.bundle_ids[new_id] = resource
            return 201, {"data": resource, "links": {"self": f"{api.url}/v1/bundleIds/{new_id}"}}

        def _error(
            self,
            status: int,
            code: str,
            title: str,
            detail: str,
            headers: Optional[Dict[str, str]] = None,
            extra_detail: str = "",
            source: Optional[Dict[str, str]] = None,
        ) -> None:
            # extra_detail is the stand-in's own reason, kept out of the body as Apple does, but
            # offered in a header so tests can see why a token was refused.
            error: Dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "status": str(status),
                "code": code,
                "title": title,
                "detail": detail,
            }
            if source:
                error["source"] = source
            merged = dict(headers or {})
            if extra_detail:
                merged["X-Standin-Reason"] = extra_detail
            self._send(status, json.dumps({"errors": [error]}).encode(), "application/json", merged)

        def _send(self, status: int, body: bytes, content_type: str, headers: Optional[Dict[str, str]] = None) -> None:
            used = len([r for r in api.requests if r[1] not in ("reset",)])
            self.send_response(status)
            if status != 204:  # No Content carries neither a body nor its length
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
            self.send_header(
                "X-Rate-Limit", f"user-hour-lim:{api.hourly_limit};user-hour-rem:{max(0, api.hourly_limit - used)};"
            )
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if status != 204:
                self.wfile.write(body)

    return Handler
