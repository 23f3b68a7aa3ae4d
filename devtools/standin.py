"""A local stand-in for the App Store Connect API, for tests and the demo.

A real HTTP server on 127.0.0.1 that checks tokens the way Apple documents them (ES256, kid,
typ, aud, signature with the registered public key, ``exp - iat <= 1200`` or up to six months
for a scope of GETs on the resources Apple lists, ``exp`` not past, ``iat`` not in the future,
``iss``/``sub``, scope) and answers ``/v1/apps`` with Apple-shaped JSON, ``X-Rate-Limit`` and
``Date`` headers. For the preflight checks it also lists ``/v1/builds``, ``/v1/bundleIds``,
``/v1/ciProducts`` and the notary service's ``/notary/v2/submissions``, filters apps by
``filter[bundleId]``, and refuses what a key's role (``register(resources=...)``) or an
individual key may not read with 403. With ``audience=APPLE_ENTERPRISE_AUDIENCE`` it plays the
Enterprise Program API instead, which serves ``/v1/bundleIds`` and no ``/v1/apps``. Faults
queued with :meth:`AppStoreConnectStandIn.inject` are served one per request, in order.
"""

from __future__ import annotations

import email.utils
import json
import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

# Apple's rules, written here from Apple's "Generating Tokens for API Requests", never imported
# from the product: a wrong rule in asc_token must not be confirmed by the same rule in its double.
APPLE_AUDIENCE = "appstoreconnect-v1"
APPLE_MAX_LIFETIME = 20 * 60
# "Determine the Appropriate Token Lifetime": up to six months (read here as 180 days) when "the
# token defines a scope", "the scope only includes GET requests" and "the resources in the scope
# allow long-lived tokens": Build Actions, Build Runs, Git References, Issues, macOS Versions,
# Products, Providers, Power and Performance Metrics and Logs, Pull Requests, Repositories, Test
# Results, Workflows, Xcode Versions; here by the URL paths of their endpoints in Apple's reference.
APPLE_LONG_LIFETIME = 180 * 24 * 60 * 60
APPLE_LONG_LIVED_PATHS = [
    re.compile(pattern)
    for pattern in (
        r"/v1/(ciBuildActions|ciBuildRuns|ciIssues|ciMacOsVersions|ciProducts|ciTestResults|ciWorkflows"
        r"|ciXcodeVersions|scmGitReferences|scmProviders|scmPullRequests|scmRepositories)(/[^/?]+)*",
        r"/v1/apps/[^/?]+/(ciProduct|perfPowerMetrics)",
        r"/v1/builds/[^/?]+/(perfPowerMetrics|diagnosticSignatures)",
        r"/v1/diagnosticSignatures/[^/?]+/logs",
    )
]
# The Enterprise Program API: its own audience, the 20-minute rule and no long-lived list.
APPLE_ENTERPRISE_AUDIENCE = "apple-developer-enterprise-v1"

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


# Apple: "Individual keys aren't able to use Provisioning endpoints, access Sales and Finance,
# or notaryTool" (Creating API Keys for App Store Connect API).
_TEAM_KEY_ONLY = frozenset({"bundleIds", "certificates", "profiles", "devices", "notary"})
_AGREEMENTS = (
    "FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED",
    "A required agreement is missing or has expired.",
    "This request requires an in-effect agreement that has not been signed or has expired.",
)
_BUILDS = [{"version": "42", "processingState": "VALID", "uploadedDate": "2026-01-01T00:00:00-08:00"}]
_BUNDLE_IDS = [{"identifier": app["bundleId"], "name": app["name"], "platform": "IOS"} for app in _APPS]
_CI_PRODUCTS = [{"name": "Demo App", "productType": "APP"}]
_SUBMISSIONS = [{"name": "Demo.zip", "status": "Accepted", "createdDate": "2026-01-01T00:00:00.000Z"}]
# Collections served besides /v1/apps, per audience: path -> (type, attributes of each item).
_LISTS: Dict[str, Dict[str, Tuple[str, List[Dict[str, Any]]]]] = {
    # App Store Connect's other collections are served by _route_preflight.
    APPLE_ENTERPRISE_AUDIENCE: {
        "/v1/bundleIds": (
            "bundleIds",
            [
                {"name": "Demo In-House", "identifier": "com.example.inhouse", "platform": "IOS"},
                {"name": "Demo In-House Mac", "identifier": "com.example.inhouse.mac", "platform": "MAC_OS"},
            ],
        )
    },
}


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour: ``kind`` is status, rate-limit, reset, delay, html or agreements,
    or one of the hostile answers in :data:`HOSTILE_KINDS` (which use the fields below ``seconds``)."""

    kind: str
    status: int = 500
    retry_after: Optional[int] = None
    seconds: float = 0.0
    # Hostile answers: the text a server (or something posing as one) chooses to send back.
    code: str = ""
    title: str = ""
    detail: str = ""
    location: str = ""
    headers: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RegisteredKey:
    public_key: ec.EllipticCurvePublicKey
    issuer_id: Optional[str]  # None: an individual key
    role_allows_apps: bool = True
    resources: Optional[FrozenSet[str]] = None  # what the key's role may read; None: everything


class AppStoreConnectStandIn:
    """Start with ``with AppStoreConnectStandIn() as api:``; ``api.url`` is its base URL."""

    def __init__(
        self, clock_offset_seconds: float = 0.0, hourly_limit: int = 3600, audience: str = APPLE_AUDIENCE
    ) -> None:
        self.audience = audience  # APPLE_ENTERPRISE_AUDIENCE: the Enterprise Program API
        self.keys: Dict[str, RegisteredKey] = {}
        self.requests: List[Tuple[str, str]] = []  # (path, outcome) in arrival order
        self.clock_offset_seconds = clock_offset_seconds
        self.hourly_limit = hourly_limit
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
        resources: Optional[Iterable[str]] = None,
    ) -> None:
        """``resources``: what the key's role may read ("apps", "builds", "bundleIds", "ciProducts",
        "notary"); any other answers 403 FORBIDDEN_ERROR. None allows them all."""
        allowed = frozenset(resources) if resources is not None else None
        self.keys[key_id] = RegisteredKey(public_key, issuer_id, role_allows_apps, allowed)

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

    def _record(self, path: str, outcome: str) -> int:
        with self._lock:
            self.requests.append((path, outcome))
            return len(self.requests)

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
                audience=self.audience,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError as exc:
            return 401, "NOT_AUTHORIZED", f"token rejected: {type(exc).__name__}"
        problem = self._claims_problem(claims, registered) or self._lifetime_problem(claims)
        if problem:
            return 401, "NOT_AUTHORIZED", problem
        if not apple_scope_permits(claims.get("scope"), method, path):
            return 401, "NOT_AUTHORIZED", "the token's scope does not allow this request"
        if not registered.role_allows_apps:
            return 403, "FORBIDDEN_ERROR", "The API key in use does not allow this request"
        return resource_permission(registered, path)

    def _claims_problem(self, claims: Dict[str, Any], registered: RegisteredKey) -> str:
        now = self.now()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "iat and exp must be integers"
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

    def _lifetime_problem(self, claims: Dict[str, Any]) -> str:
        lifetime, scope = claims["exp"] - claims["iat"], claims.get("scope")
        if lifetime <= APPLE_MAX_LIFETIME:
            return ""
        if self.audience != APPLE_AUDIENCE:
            return "token lifetime exp - iat exceeds 20 minutes"
        if lifetime > APPLE_LONG_LIFETIME:
            return "token lifetime exp - iat exceeds six months"
        if not isinstance(scope, list) or not scope:
            return "token lifetime exp - iat exceeds 20 minutes and the token has no scope"
        for entry in scope:
            verb, _, target = str(entry).partition(" ")
            if verb != "GET":
                return f"token lifetime exceeds 20 minutes and scope entry {entry!r} is not a GET"
            path = urlsplit(target.strip()).path
            if not any(pattern.fullmatch(path) for pattern in APPLE_LONG_LIVED_PATHS):
                return f"token lifetime exceeds 20 minutes and {path} does not allow long-lived tokens"
        return ""


def resource_of(path: str) -> str:
    """The resource a request reads: "apps" for /v1/apps?..., "notary" for the notary service."""
    parts = urlsplit(path).path.strip("/").split("/")
    if parts[0] == "notary":
        return "notary"
    return parts[1] if len(parts) > 1 else ""


def resource_permission(registered: RegisteredKey, path: str) -> Tuple[int, str, str]:
    """Apple's role check, after the token is accepted: (200, '', '') or a 403."""
    resource = resource_of(path)
    if registered.issuer_id is None and resource in _TEAM_KEY_ONLY:
        return 403, "FORBIDDEN_ERROR", "Individual keys cannot use this resource"
    if registered.resources is not None and resource not in registered.resources:
        return 403, "FORBIDDEN_ERROR", "The API key in use does not allow this request"
    return 200, "", ""


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


def _apps_matching(path: str) -> List[Tuple[int, Dict[str, str]]]:
    """(index, app) for the apps a request lists: all, or those with exactly the filter[bundleId]."""
    query = dict(parse_qsl(urlsplit(path).query))
    wanted = query.get("filter[bundleId]")
    return [(n, app) for n, app in enumerate(_APPS) if wanted is None or app["bundleId"] == wanted]


def _handler_for(api: AppStoreConnectStandIn) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "asc-standin"
        protocol_version = "HTTP/1.1"

        def date_time_string(self, timestamp: Optional[float] = None) -> str:
            return email.utils.formatdate(api.now(), usegmt=True)  # the server's (maybe skewed) clock

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
            pass  # tests and the demo read api.requests, not stderr

        def do_GET(self) -> None:
            fault = api._next_fault()
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.seconds)
                fault = None
            if fault is not None and fault.kind == "reset":
                api._record(self.path, "reset")
                # SO_LINGER 0 makes close() send RST: the client sees "connection reset".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if fault is not None and fault.kind == "html":
                api._record(self.path, str(fault.status))
                page = f"<html><head><title>{fault.status} Bad Gateway</title></head><body>proxy</body></html>"
                self._send(fault.status, page.encode(), "text/html; charset=utf-8")
                return
            if fault is not None and fault.kind in HOSTILE_KINDS:
                serve_hostile(self, api, fault)
                return
            if fault is not None and fault.kind == "rate-limit":
                api._record(self.path, "429")
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                self._error(
                    429,
                    "RATE_LIMIT_EXCEEDED",
                    "The request rate limit has been reached.",
                    "We've received too many requests for this API. Please wait and try again or slow down your request rate.",
                    headers,
                )
                return
            if fault is not None and fault.kind == "agreements":
                api._record(self.path, "403")
                self._error(403, *_AGREEMENTS)
                return
            if fault is not None and fault.kind == "status":
                api._record(self.path, str(fault.status))
                self._error(
                    fault.status,
                    "UNEXPECTED_ERROR",
                    "An unexpected error occurred.",
                    "An unexpected error occurred on the server side. If this issue continues, contact us at https://developer.apple.com/contact/.",
                )
                return
            self._route()

        def _route(self) -> None:
            path = urlsplit(self.path).path
            if path in _LISTS.get(api.audience, {}):
                self._list(path)
                return
            if api.audience == APPLE_AUDIENCE and self._route_preflight():
                return
            if api.audience != APPLE_AUDIENCE or not self.path.startswith("/v1/apps"):
                api._record(self.path, "404")
                self._error(
                    404,
                    "NOT_FOUND",
                    "The specified resource does not exist",
                    "The path provided does not match a defined resource type.",
                )
                return
            status, code, why = api.check_token(self.headers.get("Authorization", ""), "GET", self.path)
            api._record(self.path, str(status) if status != 200 else "200")
            if status == 401:
                self._error(401, code, *_NOT_AUTHORIZED, extra_detail=why)
                return
            if status == 403:
                self._error(403, code, "The given operation is not allowed", why)
                return
            limit = 1
            apps = _apps_matching(self.path)
            data = [
                {
                    "type": "apps",
                    "id": str(1000000000 + n),
                    "attributes": app,
                    "links": {"self": f"{api.url}/v1/apps/{1000000000 + n}"},
                }
                for n, app in apps[:limit]
            ]
            body = {
                "data": data,
                "links": {"self": f"{api.url}{self.path}"},
                "meta": {"paging": {"total": len(apps), "limit": limit}},
            }
            self._send(200, json.dumps(body).encode(), "application/json")

        def _route_preflight(self) -> bool:
            """The resources the preflight checks read: builds, bundle IDs, Xcode Cloud, notary."""
            listings = {
                "/v1/builds": ("builds", _BUILDS),
                "/v1/bundleIds": ("bundleIds", _BUNDLE_IDS),
                "/v1/ciProducts": ("ciProducts", _CI_PRODUCTS),
                "/notary/v2/submissions": ("submissions", _SUBMISSIONS),
            }
            listing = listings.get(urlsplit(self.path).path)
            if listing is None:
                return False
            kind, items = listing
            status, code, why = api.check_token(self.headers.get("Authorization", ""), "GET", self.path)
            api._record(self.path, str(status))
            if status == 401:
                self._error(401, code, *_NOT_AUTHORIZED, extra_detail=why)
                return True
            if status == 403:
                self._error(403, code, "The given operation is not allowed", why)
                return True
            query = dict(parse_qsl(urlsplit(self.path).query))
            limit = int(query["limit"]) if query.get("limit", "").isdigit() else 50
            data = [
                {"type": kind, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{n}")), "attributes": item}
                for n, item in enumerate(items[:limit])
            ]
            body = {
                "data": data,
                "links": {"self": f"{api.url}{self.path}"},
                "meta": {"paging": {"total": len(items), "limit": limit}},
            }
            self._send(200, json.dumps(body).encode(), "application/json")
            return True

        def _list(self, path: str) -> None:
            """A collection other than /v1/apps: the token checked, then one Apple-shaped page."""
            status, code, why = api.check_token(self.headers.get("Authorization", ""), "GET", self.path)
            api._record(self.path, str(status))
            if status != 200:
                title, detail = _NOT_AUTHORIZED if status == 401 else ("The given operation is not allowed", why)
                self._error(status, code, title, detail, extra_detail=why if status == 401 else "")
                return
            resource_type, items = _LISTS[api.audience][path]
            data = [
                {"type": resource_type, "id": str(n), "attributes": item, "links": {"self": f"{api.url}{path}/{n}"}}
                for n, item in enumerate(items, 1)
            ]
            body = {"data": data, "links": {"self": f"{api.url}{self.path}"}, "meta": {"paging": {"total": len(items)}}}
            self._send(200, json.dumps(body).encode(), "application/json")

        def _error(
            self,
            status: int,
            code: str,
            title: str,
            detail: str,
            headers: Optional[Dict[str, str]] = None,
            extra_detail: str = "",
        ) -> None:
            # extra_detail is the stand-in's own reason, kept out of the body as Apple does, but
            # offered in a header so tests can see why a token was refused.
            error = {"id": str(uuid.uuid4()), "status": str(status), "code": code, "title": title, "detail": detail}
            merged = dict(headers or {})
            if extra_detail:
                merged["X-Standin-Reason"] = extra_detail
            self._send(status, json.dumps({"errors": [error]}).encode(), "application/json", merged)

        def _send(self, status: int, body: bytes, content_type: str, headers: Optional[Dict[str, str]] = None) -> None:
            used = len([r for r in api.requests if r[1] not in ("reset",)])
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header(
                "X-Rate-Limit", f"user-hour-lim:{api.hourly_limit};user-hour-rem:{max(0, api.hourly_limit - used)};"
            )
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


# apple-error: Apple's error JSON with the fault's status, code, title, detail and headers.
# redirect: the fault's status (a 3xx) to ``location``. html-page: an HTML page titled ``title``
# with the fault's status (200: a captive portal). trickle: a valid 200 apps page sent one byte
# every ``seconds`` (a server that never times out a read, but never finishes either).
HOSTILE_KINDS = ("apple-error", "redirect", "html-page", "trickle")


def serve_hostile(handler: Any, api: AppStoreConnectStandIn, fault: Fault) -> None:
    """Answer with text chosen by the test, the way a hostile or broken server would."""
    api._record(handler.path, f"{fault.kind} {fault.status}")
    headers = dict(fault.headers)
    if fault.kind == "apple-error":
        error = {"status": str(fault.status), "code": fault.code, "title": fault.title, "detail": fault.detail}
        handler._send(fault.status, json.dumps({"errors": [error]}).encode(), "application/json", headers)
    elif fault.kind == "redirect":
        headers["Location"] = fault.location
        handler._send(fault.status, b"", "text/html", headers)
    elif fault.kind == "html-page":
        page = f"<html><head><title>{fault.title}</title></head><body>{fault.detail}</body></html>"
        handler._send(fault.status, page.encode(), "text/html; charset=utf-8", headers)
    elif fault.kind == "trickle":
        _trickle(handler, fault.seconds)


def _trickle(handler: Any, seconds: float) -> None:
    body = json.dumps({"data": [], "meta": {"paging": {"total": 0, "limit": 1}}}).encode() + b" " * 200
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.close_connection = True
    for offset in range(len(body)):  # bounded: the body's length, at `seconds` a byte
        try:
            handler.wfile.write(body[offset : offset + 1])
            handler.wfile.flush()
        except OSError:
            return  # the client gave up, as it should
        time.sleep(seconds)
