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

For ``asc-token api``: ``/v1/apps`` pages like Apple (``limit`` up to 200, 400
PARAMETER_ERROR.INVALID above; an opaque ``cursor`` in ``links.next``; ``meta.paging.total``;
``app_count`` sets how many apps there are) and serves ``/v1/apps/{id}``; ``/v1/bundleIds`` takes
POST (201 with the created resource) and ``/v1/bundleIds/{id}`` GET, PATCH and DELETE (204);
``/v1/builds`` (``filter[app]``, ``filter[version]``) also shows builds added with
:meth:`AppStoreConnectStandIn.add_build`, PROCESSING until looked at a given number of times.

The answers that are not JSON:API documents, as Apple's OpenAPI document gives them: the power and
performance metrics (``/v1/apps/{id}/perfPowerMetrics``, ``/v1/builds/{id}/perfPowerMetrics``) and
diagnostic logs (``/v1/diagnosticSignatures/{id}/logs``, of the signatures that
``/v1/builds/{id}/diagnosticSignatures`` lists) answer their vendor media type with no ``data``;
``/v1/salesReports`` and ``/v1/financeReports`` answer ``application/a-gzip`` (a gzipped TSV) and
refuse a request without their required filters. These answer 406 when the request's ``Accept``
does not allow their media type (RFC 9110, section 12.5.1).

Uploads (devtools/uploads.py, with its own options as attributes of ``standin.uploads``): Apple's Build
Uploads API (``/v1/buildUploads`` POST, GET and DELETE; ``/v1/buildUploadFiles`` POST, GET and PATCH;
409 ``ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE`` for a build number used again; processing to a build
that ``/v1/builds/{id}`` shows PROCESSING, then VALID or INVALID, or a build upload FAILED with Apple's
90xxx errors) and the reservations and commits of every other asset type Apple uploads the same way
(``/v1/appScreenshots``, ``/v2/inAppPurchaseImages``...: :data:`devtools.uploads.ASSET_TYPES`). Their
upload operations point at ``standin.storage``, a :class:`devtools.object_storage.ObjectStorage`: a
second listener on 127.0.0.1 standing for Apple's object storage, which records every request's headers.
A key whose role may not upload (``register(resources=...)`` without ``buildUploads``) gets 403.

Options tests set as attributes (or pass to the constructor): ``next_link_form`` (one of
:data:`NEXT_LINK_FORMS`: how ``links.next`` of ``/v1/apps`` is written), ``paging_total`` (False:
no ``meta.paging.total``), ``rate_limit_header`` (False: no ``X-Rate-Limit``), ``app_size_bytes``
(each app about this long in JSON) and ``report_size_bytes`` (the gzip body at least this long).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import json
import re
import socket
import struct
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from .object_storage import ObjectStorage
from .uploads import AppleError, Uploads, entity_error, method_not_allowed, no_such_resource

# Apple's rules, written here from Apple's "Generating Tokens for API Requests", never imported
# from the product: a wrong rule in asc_token must not be confirmed by the same rule in its double.
APPLE_AUDIENCE = "appstoreconnect-v1"
APPLE_MAX_LIFETIME = 20 * 60
APPLE_MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50  # the stand-in's choice when a request names no limit
MAX_REQUEST_BODY = 1024 * 1024
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
        # An endpoint's relationship form reads the same resource (its linkage), as under a collection.
        r"/v1/apps/[^/?]+/((relationships/)?ciProduct|perfPowerMetrics)",
        r"/v1/builds/[^/?]+/(perfPowerMetrics|(relationships/)?diagnosticSignatures)",
        r"/v1/diagnosticSignatures/[^/?]+/logs",
    )
]
# The Enterprise Program API: its own audience, the 20-minute rule and no long-lived list.
APPLE_ENTERPRISE_AUDIENCE = "apple-developer-enterprise-v1"

# From Apple's OpenAPI document (App Store Connect API 4.4.1, the same in 3.7.0): the 200s that are
# not application/json, by the path as the document writes it ({id}: one path segment).
XCODE_METRICS_TYPE = "application/vnd.apple.xcode-metrics+json"  # schema xcodeMetrics: no `data`
DIAGNOSTIC_LOGS_TYPE = "application/vnd.apple.diagnostic-logs+json"  # schema diagnosticLogs: no `data`
GZIP_TYPE = "application/a-gzip"  # schema gzip: a binary string
CSV_TYPE = "text/csv"  # schema csv: the one-time offer codes of a batch, one a line
ONE_TIME_CODES = "/v1/subscriptionOfferCodeOneTimeUseCodes/{id}/values"
ONE_TIME_CODES_ID = "1a2b3c4d-0000-4000-8000-000000000001"  # the one batch there is (others: 404)
MEDIA_TYPES: Dict[str, str] = {
    "/v1/apps/{id}/perfPowerMetrics": XCODE_METRICS_TYPE,
    "/v1/builds/{id}/perfPowerMetrics": XCODE_METRICS_TYPE,
    "/v1/diagnosticSignatures/{id}/logs": DIAGNOSTIC_LOGS_TYPE,
    "/v1/salesReports": GZIP_TYPE,
    "/v1/financeReports": GZIP_TYPE,
    ONE_TIME_CODES: CSV_TYPE,
}
# The parameters those endpoints mark `required: true` ("Download Sales and Trends Reports",
# "Download Finance Reports"); filter[reportDate] and filter[version] are optional for sales.
REPORT_REQUIRED_PARAMETERS: Dict[str, Tuple[str, ...]] = {
    "/v1/salesReports": ("filter[frequency]", "filter[reportSubType]", "filter[reportType]", "filter[vendorNumber]"),
    "/v1/financeReports": ("filter[regionCode]", "filter[reportDate]", "filter[reportType]", "filter[vendorNumber]"),
}
# perfPowerMetrics' filters (enums in the document; filter[deviceType] is free text).
PERF_PLATFORMS = ("IOS",)
PERF_METRIC_TYPES = ("DISK", "HANG", "BATTERY", "LAUNCH", "MEMORY", "ANIMATION", "TERMINATION", "STORAGE")
DIAGNOSTIC_TYPES = ("DISK_WRITES", "HANGS", "LAUNCHES")
# Every links.next is `format: uri-reference` (PagedDocumentLinks): the client resolves a relative one
# against the page it came from (RFC 3986, section 5). How the stand-in writes it:
# absolute "http://host/v1/apps?cursor=..", absolute-path "/v1/apps?cursor=..", path-relative
# "apps?cursor=.." and query-relative "?cursor=.." (the last two resolve only against the page).
NEXT_LINK_FORMS = ("absolute", "absolute-path", "path-relative", "query-relative")

_NOT_AUTHORIZED = (
    "Authentication credentials are missing or invalid.",
    "Provide a properly configured and signed bearer token, and make sure that it has not "
    "expired. Learn more about Generating Tokens for API Requests "
    "https://developer.apple.com/go/?id=api-generating-tokens",
)
# The first app ("Demo App"): the one the demo and the tests look up and upload builds for.
DEMO_BUNDLE_ID, DEMO_APP_ID = "com.example.demo", "1000000000"
_APPS = [
    {"name": "Demo App", "bundleId": DEMO_BUNDLE_ID, "sku": "DEMO1"},
    {"name": "Demo App Watch", "bundleId": "com.example.demo.watch", "sku": "DEMO2"},
    {"name": "Demo App Mac", "bundleId": "com.example.demo.mac", "sku": "DEMO3"},
]


# Apple: "Individual keys aren't able to use Provisioning endpoints, access Sales and Finance,
# or notaryTool" (Creating API Keys for App Store Connect API).
_TEAM_KEY_ONLY = frozenset(
    {"bundleIds", "certificates", "profiles", "devices", "notary", "salesReports", "financeReports"}
)
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
    """One scripted misbehaviour: ``kind`` is status, rate-limit, reset, delay, html, agreements,
    unauthorized (Apple's occasional 401 NOT_AUTHORIZED to a valid token), cut (the usual answer, its
    connection closed halfway through the body, as a dropped connection leaves it), or one of the hostile
    answers in :data:`HOSTILE_KINDS` (which use the fields below ``seconds``)."""

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
    resources: Optional[FrozenSet[str]] = None  # what the key's role may read; None: everything


class AppStoreConnectStandIn:
    """Start with ``with AppStoreConnectStandIn() as api:``; ``api.url`` is its base URL."""

    def __init__(
        self,
        clock_offset_seconds: float = 0.0,
        hourly_limit: int = 3600,
        audience: str = APPLE_AUDIENCE,
        *,
        app_count: int = len(_APPS),
        response_delay_seconds: float = 0.0,
        next_link_form: str = "absolute",
        paging_total: bool = True,
        rate_limit_header: bool = True,
        app_size_bytes: int = 0,
        report_size_bytes: int = 0,
    ) -> None:
        self.audience = audience  # APPLE_ENTERPRISE_AUDIENCE: the Enterprise Program API
        self.keys: Dict[str, RegisteredKey] = {}
        self.requests: List[Tuple[str, str]] = []  # (path, outcome) in arrival order
        self.calls: List[Call] = []  # the same requests with method, bearer token and body
        self.clock_offset_seconds = clock_offset_seconds
        self.hourly_limit = hourly_limit
        self.app_count = app_count
        # Each accepted request takes this long to answer: a distant server, a large export.
        self.response_delay_seconds = response_delay_seconds
        self.next_link_form = next_link_form  # one of NEXT_LINK_FORMS
        self.next_link_override = ""  # when set, every links.next is exactly this text
        self.paging_total = paging_total  # False: meta.paging without total (Apple marks it optional)
        self.rate_limit_header = rate_limit_header  # False: no X-Rate-Limit (prose, not a promise)
        # Called with each bearer token as a request brings it, before it is checked (tests observe the moment).
        self.on_token: Callable[[str], None] = lambda token: None
        # 0: apps as small as Apple's smallest; else each app about this many bytes of JSON, grown
        # by relationship links as Apple's are (about 1 KB: 6 of them; at most about 5 KB).
        self.app_size_bytes = app_size_bytes
        # 0: a report of a few rows; else rows are added until the gzip body is at least this long.
        self.report_size_bytes = report_size_bytes
        self._reports: Dict[Tuple[str, int], bytes] = {}  # (path, size) -> gzip body, made once
        self.bundle_ids: Dict[str, Dict[str, Any]] = {}  # created by POST: id -> resource, in order
        # Builds added by add_build; the fixed _BUILDS belong to the first demo app.
        self.builds: List[Dict[str, Any]] = []
        self._polls_left: Dict[str, int] = {}  # build id -> answers still PROCESSING
        self._outcomes: Dict[str, str] = {}  # build id -> its processingState once processed (VALID if absent)
        self._storage: Optional[ObjectStorage] = None
        # Build uploads and every asset upload (devtools/uploads.py); its options are attributes of it.
        self.uploads = Uploads(
            lambda: self.url,
            lambda: self.storage,
            lambda app_id: app_id.isdigit() and len(app_id) < 12 and 0 <= int(app_id) - 1000000000 < self.app_count,
            lambda app_id, version, polls, outcome: self.add_build(
                app_id, version, processing_polls=polls, outcome=outcome
            ),
            self.now,
        )
        self._faults: List[Fault] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
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

    def faults_left(self) -> int:
        """How many injected faults no request has met yet (a test waits for a delay to begin)."""
        with self._lock:
            return len(self._faults)

    def now(self) -> float:
        return time.time() + self.clock_offset_seconds

    def start(self) -> AppStoreConnectStandIn:
        self._thread.start()
        return self

    @property
    def storage(self) -> ObjectStorage:
        """Apple's object storage, where upload operations point: a second loopback listener, started
        when first asked for."""
        with self._lock:
            if self._storage is None:
                self._storage = ObjectStorage(clock=self.now).start()
            return self._storage

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._storage is not None:
            self._storage.stop()

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

    def add_build(self, app_id: str, version: str, *, processing_polls: int, outcome: str = "VALID") -> str:
        """An uploaded build: PROCESSING in its first ``processing_polls`` answers, ``outcome`` (VALID,
        INVALID or FAILED) after."""
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
        self._outcomes[build_id] = outcome
        return build_id

    def _look_at(self, build: Dict[str, Any]) -> Dict[str, Any]:
        with self._lock:
            if self._polls_left[build["id"]] > 0:
                self._polls_left[build["id"]] -= 1
            else:
                build["attributes"]["processingState"] = self._outcomes.get(build["id"], "VALID")
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
        self.on_token(token)
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


# Some of an app's relationships in Apple's App schema, in its order: an app grows by their links.
_APP_RELATIONSHIPS = (
    "ciProduct",
    "betaTesters",
    "betaGroups",
    "appStoreVersions",
    "preReleaseVersions",
    "betaAppLocalizations",
    "builds",
    "betaLicenseAgreement",
    "betaAppReviewDetail",
    "appInfos",
    "appClips",
    "endUserLicenseAgreement",
    "inAppPurchases",
    "subscriptionGroups",
    "gameCenterEnabledVersions",
    "perfPowerMetrics",
    "appCustomProductPages",
    "inAppPurchasesV2",
    "promotedPurchases",
    "appEvents",
    "reviewSubmissions",
    "subscriptionGracePeriod",
    "customerReviews",
    "gameCenterDetail",
    "appStoreVersionExperimentsV2",
)


def app_resource(base_url: str, n: int, size_bytes: int = 0) -> Dict[str, Any]:
    """The n-th app (0-based): the three demo apps first, then numbered ones; with ``size_bytes``,
    relationship links are added until its JSON is at least that long (or all are there)."""
    attributes = (
        dict(_APPS[n])
        if n < len(_APPS)
        else {"name": f"App {n + 1}", "bundleId": f"com.example.app{n + 1}", "sku": f"APP{n + 1}"}
    )
    app_id = str(1000000000 + n)
    resource: Dict[str, Any] = {
        "type": "apps",
        "id": app_id,
        "attributes": attributes,
        "links": {"self": f"{base_url}/v1/apps/{app_id}"},
    }
    if size_bytes:
        relationships: Dict[str, Any] = {}
        resource["relationships"] = relationships
        length = len(json.dumps(resource))
        for name in _APP_RELATIONSHIPS:
            if length >= size_bytes:
                break
            links = {
                "self": f"{base_url}/v1/apps/{app_id}/relationships/{name}",
                "related": f"{base_url}/v1/apps/{app_id}/{name}",
            }
            relationships[name] = {"links": links}
            length += len(json.dumps({name: {"links": links}})) + 1  # the entry and its ", "
    return resource


def accepts(accept: Optional[str], media_type: str) -> bool:
    """Whether an ``Accept`` header allows ``media_type`` (RFC 9110, section 12.5.1): no header
    allows anything; ``*/*``, ``type/*`` and the exact type match; ``q=0`` rules a range out."""
    if accept is None or not accept.strip():
        return True
    wanted = media_type.lower()
    best: Optional[Tuple[int, float]] = None  # (specificity, q) of the most specific matching range
    for part in accept.split(","):
        piece, *params = [item.strip() for item in part.split(";")]
        piece = piece.lower()
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if piece == wanted:
            specificity = 2
        elif piece.endswith("/*") and wanted.startswith(piece[:-1]) and piece != "*/*":
            specificity = 1
        elif piece == "*/*":
            specificity = 0
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, quality)
    return best is not None and best[1] > 0


def paging_meta(api: AppStoreConnectStandIn, total: int, limit: Optional[int]) -> Dict[str, Any]:
    """``meta`` of a list page: Apple's PagingInformation requires ``limit``; ``total`` is optional."""
    paging: Dict[str, Any] = {"total": total} if api.paging_total else {}
    if limit is not None:
        paging["limit"] = limit
    return {"paging": paging}


def next_link(api: AppStoreConnectStandIn, path: str, query: str) -> str:
    """``links.next`` for ``path?query``, written in the form ``api.next_link_form`` names."""
    form = api.next_link_form
    if api.next_link_override:  # a hostile server's choice, whatever the page
        return api.next_link_override
    if form == "absolute":
        return f"{api.url}{path}?{query}"
    if form == "absolute-path":
        return f"{path}?{query}"
    if form == "path-relative":
        return f"{path.rsplit('/', 1)[-1]}?{query}"
    if form == "query-relative":
        return f"?{query}"
    raise ValueError(f"next_link_form must be one of {NEXT_LINK_FORMS}, not {form!r}")


def xcode_metrics(platforms: Iterable[str], metric_types: Iterable[str]) -> Dict[str, Any]:
    """A body of Apple's xcodeMetrics schema: version, insights and productData, no ``data``."""
    categories = [
        {
            "identifier": kind,
            "metrics": [
                {
                    "identifier": f"{kind.lower()}Metric",
                    "goalKeys": [{"goalKey": "good", "lowerBound": 0, "upperBound": 400}],
                    "unit": {"identifier": "ms", "displayName": "Milliseconds"},
                    "datasets": [
                        {
                            "filterCriteria": {
                                "percentile": "percentile.fifty",
                                "device": "all_iphones",
                                "deviceMarketingName": "All iPhones",
                            },
                            "points": [{"version": "1.0", "value": 412.5, "errorMargin": 12.0, "goal": "good"}],
                        }
                    ],
                }
            ],
        }
        for kind in metric_types
    ]
    regression = {
        "metricCategory": "LAUNCH",
        "latestVersion": "1.0",
        "metric": "launchMetric",
        "summaryString": "Launch time regressed",
        "highImpact": False,
        "populations": [],
    }
    return {
        "version": "1.0",
        "insights": {"trendingUp": [], "regressions": [regression]},
        "productData": [{"platform": platform, "metricCategories": categories} for platform in platforms],
    }


def diagnostic_logs(signature_id: str) -> Dict[str, Any]:
    """A body of Apple's diagnosticLogs schema: productData and version, no ``data``."""
    frame = {
        "sampleCount": 3,
        "isBlameFrame": True,
        "symbolName": "-[DemoView layout]",
        "binaryName": "Demo",
        "binaryUUID": "0F4D6C1E-5B3A-4C1D-9E0A-2A7B8C9D0E1F",
        "offsetIntoSymbol": "120",
        "subFrames": [],
    }
    log = {
        "callStackTree": [{"callStackPerThread": True, "callStacks": [{"callStackRootFrames": [frame]}]}],
        "diagnosticMetaData": {
            "bundleId": "com.example.demo",
            "event": "hang",
            "osVersion": "iOS 18.0",
            "appVersion": "1.0",
            "deviceType": "iPhone15,2",
            "buildVersion": "42",
        },
    }
    insight = {"insightsCategory": "hang", "insightsString": "Main thread busy", "insightsURL": ""}
    return {
        "version": "1.0",
        "productData": [{"signatureId": signature_id, "diagnosticInsights": [insight], "diagnosticLogs": [log]}],
    }


# The columns of a Summary Sales Report and of a Financial Report, as Apple's "Sales and Trends"
# and "Payments and Financial Reports" help list them (the first ones: enough for a real TSV).
_SALES_COLUMNS = (
    "Provider",
    "Provider Country",
    "SKU",
    "Developer",
    "Title",
    "Version",
    "Product Type Identifier",
    "Units",
    "Developer Proceeds",
    "Begin Date",
    "End Date",
    "Customer Currency",
    "Country Code",
    "Currency of Proceeds",
    "Apple Identifier",
    "Customer Price",
)
_FINANCE_COLUMNS = (
    "Start Date",
    "End Date",
    "UPC",
    "ISRC/ISBN",
    "Vendor Identifier",
    "Quantity",
    "Partner Share",
    "Extended Partner Share",
    "Partner Share Currency",
    "Sales or Return",
    "Apple Identifier",
    "Artist/Show/Developer/Author",
    "Title",
    "Product Type Identifier",
    "Country Of Sale",
)


def report_gzip(path: str, size_bytes: int) -> bytes:
    """A gzipped TSV report for ``path``: the header and the demo apps' rows, then (to reach at
    least ``size_bytes`` of gzip) numbered apps' rows whose titles carry a digest, so that they do
    not compress to nothing, as real sales rows do not."""
    sales = path == "/v1/salesReports"
    columns = _SALES_COLUMNS if sales else _FINANCE_COLUMNS
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    chunks = [compressor.compress(("\t".join(columns) + "\n").encode())]
    written, n = len(chunks[0]), 0
    while n < len(_APPS) or written < size_bytes:
        app = _APPS[n] if n < len(_APPS) else {"name": hashlib.sha256(b"%d" % n).hexdigest(), "sku": f"APP{n + 1}"}
        day, apple_id = "01/01/2026", str(1000000000 + n)
        values = (
            {
                "Provider": "APPLE",
                "Provider Country": "US",
                "SKU": app["sku"],
                "Developer": "Example Developer",
                "Title": app["name"],
                "Version": "1.0",
                "Product Type Identifier": "1",
                "Units": str(n % 9 + 1),
                "Developer Proceeds": "0.7",
                "Begin Date": day,
                "End Date": day,
                "Customer Currency": "USD",
                "Country Code": "US",
                "Currency of Proceeds": "USD",
                "Apple Identifier": apple_id,
                "Customer Price": "0.99",
            }
            if sales
            else {
                "Start Date": day,
                "End Date": "01/31/2026",
                "Vendor Identifier": app["sku"],
                "Quantity": str(n % 9 + 1),
                "Partner Share": "0.70",
                "Extended Partner Share": "0.70",
                "Partner Share Currency": "USD",
                "Sales or Return": "S",
                "Apple Identifier": apple_id,
                "Artist/Show/Developer/Author": "Example Developer",
                "Title": app["name"],
                "Product Type Identifier": "1",
                "Country Of Sale": "US",
            }
        )
        chunk = compressor.compress(("\t".join(values.get(column, "") for column in columns) + "\n").encode())
        chunks.append(chunk)
        written, n = written + len(chunk), n + 1
    chunks.append(compressor.flush())
    return b"".join(chunks)


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Optional[int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "offset" and number.isdigit() and len(number) < 10 else None


def _parameter_error(parameter: str, detail: str) -> AppleError:
    return AppleError(
        400, "PARAMETER_ERROR.INVALID", "A parameter has an invalid value", detail, {"parameter": parameter}
    )


def _filter_allows(params: Dict[str, str], name: str, value: str) -> bool:
    """Apple's ``filter[...]=a,b``: absent allows everything, else one of the listed values."""
    return name not in params or value in params[name].split(",")


def _enum_filter(params: Dict[str, str], name: str, allowed: Tuple[str, ...]) -> Tuple[str, ...]:
    """Apple's ``filter[...]=A,B`` over an enum: the values asked for (all when absent), or a 400."""
    if name not in params:
        return allowed
    asked = tuple(params[name].split(","))
    for value in asked:
        if value not in allowed:
            raise _parameter_error(
                name, f"'{value[:40]}' is not a valid value for {name}. Allowed: {', '.join(allowed)}"
            )
    return asked


def _limit(params: Dict[str, str], default: int) -> int:
    """``limit``: 1 to Apple's 200, else 400 PARAMETER_ERROR.INVALID naming it."""
    raw = params.get("limit", str(default))
    if not (raw.isdigit() and len(raw) < 6 and 1 <= int(raw) <= APPLE_MAX_PAGE_SIZE):
        raise _parameter_error(
            "limit", f"'{raw[:20]}' is not a valid value for limit. The maximum value allowed is {APPLE_MAX_PAGE_SIZE}"
        )
    return int(raw)


def _signature_ids() -> List[str]:
    """The demo diagnostic signatures' ids, one per diagnostic type (for every build)."""
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"diagnosticSignatures/{kind}")) for kind in DIAGNOSTIC_TYPES]


def _not_found(detail: str = "The path provided does not match a defined resource type.") -> AppleError:
    return AppleError(404, "NOT_FOUND", "The specified resource does not exist", detail)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is what the fault tests do: no traceback on stderr.
        pass


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
            self._cut = fault is not None and fault.kind == "cut"  # _send stops halfway
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
            if fault is not None and fault.kind in HOSTILE_KINDS:
                serve_hostile(self, api, fault)
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
            if fault is not None and fault.kind == "agreements":
                self._note("403")
                self._error(403, *_AGREEMENTS)
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
            if path in _LISTS.get(api.audience, {}):
                self._list(path)
                return
            segments = path.strip("/").split("/")
            if api.audience == APPLE_AUDIENCE and self._route_media(segments):
                return
            if api.audience == APPLE_AUDIENCE and Uploads.serves(path):
                self._answer(self._uploads, None)
                return
            resources = {"apps": self._apps, "bundleIds": self._bundle_ids, "builds": self._builds}
            if api.audience == APPLE_AUDIENCE and segments[0] == "v1" and len(segments) in (2, 3):
                route = resources.get(segments[1])
                if route is not None:
                    self._answer(route, segments[2] if len(segments) == 3 else None)
                    return
            if api.audience == APPLE_AUDIENCE and self._route_preflight():
                return
            self._note("404")
            refusal = _not_found()
            self._error(refusal.status, refusal.code, refusal.title, refusal.detail)

        def _token_refused(self) -> bool:
            """The token checked as Apple does: True when refused (and the 401 or 403 sent)."""
            status, code, why = api.check_token(self.headers.get("Authorization", ""), self.command, self.path)
            if status == 401:
                self._note("401")
                self._error(401, code, *_NOT_AUTHORIZED, extra_detail=why)
                return True
            if status == 403:
                self._note("403")
                self._error(403, code, "The given operation is not allowed", why)
                return True
            if api.response_delay_seconds:
                time.sleep(api.response_delay_seconds)  # after the token check, as a slow page would be
            return False

        def _answer(self, route: Any, resource_id: Optional[str]) -> None:
            """The token checked as Apple does, then the resource's own answer (or its error)."""
            if self._token_refused():
                return
            try:
                answer, body = route(resource_id)
            except AppleError as refusal:
                self._note(str(refusal.status))
                self._error(refusal.status, refusal.code, refusal.title, refusal.detail, source=refusal.source)
                return
            self._note(str(answer))
            if body is None:
                self._send(answer, b"", "")
            else:
                self._send(answer, json.dumps(body).encode(), "application/json")

        def _route_media(self, segments: List[str]) -> bool:
            """The endpoints whose 200 is not application/json, and the signatures that lead to logs."""
            if (
                len(segments) == 4
                and segments[0] == "v1"
                and (segments[1], segments[3]) == ("builds", "diagnosticSignatures")
            ):
                self._answer(self._diagnostic_signatures, segments[2])
                return True
            if len(segments) == 4 and segments[0] == "v1":
                template = f"/v1/{segments[1]}/{{id}}/{segments[3]}"
            elif len(segments) == 2 and segments[0] == "v1":
                template = f"/v1/{segments[1]}"
            else:
                return False
            media_type = MEDIA_TYPES.get(template)
            if media_type is None:
                return False
            if self._token_refused():
                return True
            try:
                if self.command != "GET":
                    raise method_not_allowed(self.command)
                body = self._media_body(template, segments[2] if len(segments) == 4 else "")
                if not accepts(self.headers.get("Accept"), media_type):
                    raise AppleError(
                        406,
                        "NOT_ACCEPTABLE",
                        "The requested media type is not acceptable.",
                        f"This resource answers '{media_type}', which the request's Accept header does not allow.",
                    )
            except AppleError as refusal:
                self._note(str(refusal.status))
                self._error(refusal.status, refusal.code, refusal.title, refusal.detail, source=refusal.source)
                return True
            self._note("200")
            self._send(200, body, media_type)
            return True

        def _media_body(self, template: str, resource_id: str) -> bytes:
            """The 200's body of a MEDIA_TYPES endpoint, after its resource and parameters are checked."""
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            if template in REPORT_REQUIRED_PARAMETERS:
                for name in REPORT_REQUIRED_PARAMETERS[template]:
                    if not params.get(name):
                        raise AppleError(
                            400,
                            "PARAMETER_ERROR.REQUIRED",
                            "A required parameter is missing.",
                            f"You must provide a value for the parameter '{name}' with this request",
                            {"parameter": name},
                        )
                key = (template, api.report_size_bytes)
                if key not in api._reports:
                    api._reports[key] = report_gzip(template, api.report_size_bytes)
                return api._reports[key]
            if template == ONE_TIME_CODES:
                if resource_id != ONE_TIME_CODES_ID:
                    raise no_such_resource("subscriptionOfferCodeOneTimeUseCodes", resource_id)
                return "".join(f"CODE{n:08d}\n" for n in range(100)).encode()
            if template == "/v1/diagnosticSignatures/{id}/logs":
                if resource_id not in _signature_ids():
                    raise no_such_resource("diagnosticSignatures", resource_id)
                _limit(params, DEFAULT_PAGE_SIZE)
                return json.dumps(diagnostic_logs(resource_id)).encode()
            if template == "/v1/apps/{id}/perfPowerMetrics":
                self._apps(resource_id)  # a 404 for an app there is not
            else:
                self._require_build(resource_id)
            platforms = _enum_filter(params, "filter[platform]", PERF_PLATFORMS)
            metric_types = _enum_filter(params, "filter[metricType]", PERF_METRIC_TYPES)
            return json.dumps(xcode_metrics(platforms, metric_types)).encode()

        def _require_build(self, build_id: str) -> None:
            """A 404 for a build there is not; looking does not count as a poll of its processing."""
            fixed = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"builds/{n}")) for n in range(len(_BUILDS))]
            if build_id not in fixed + [build["id"] for build in api.builds]:
                raise no_such_resource("builds", build_id)

        def _diagnostic_signatures(self, build_id: Optional[str]) -> Tuple[int, Optional[Dict[str, Any]]]:
            if self.command != "GET":
                raise method_not_allowed(self.command)
            self._require_build(build_id or "")
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            limit = _limit(params, DEFAULT_PAGE_SIZE)
            kinds = _enum_filter(params, "filter[diagnosticType]", DIAGNOSTIC_TYPES)
            data = [
                {
                    "type": "diagnosticSignatures",
                    "id": signature_id,
                    "attributes": {
                        "diagnosticType": kind,
                        "signature": f"-[DemoView layout] ({kind.lower()})",
                        "weight": 0.5,
                    },
                    "links": {"self": f"{api.url}/v1/diagnosticSignatures/{signature_id}"},
                    "relationships": {
                        "logs": {"links": {"related": f"{api.url}/v1/diagnosticSignatures/{signature_id}/logs"}}
                    },
                }
                for kind, signature_id in zip(DIAGNOSTIC_TYPES, _signature_ids())
                if kind in kinds
            ]
            links = {"self": f"{api.url}{self.path}"}
            return 200, {"data": data[:limit], "links": links, "meta": paging_meta(api, len(data), limit)}

        def _uploads(self, _: Optional[str]) -> Tuple[int, Optional[Dict[str, Any]]]:
            """Build uploads and the other asset uploads: devtools/uploads.py answers them."""
            parts = urlsplit(self.path)
            return api.uploads.answer(self.command, parts.path, self._document, parse_qs(parts.query))

        def _apps(self, app_id: Optional[str]) -> Tuple[int, Optional[Dict[str, Any]]]:
            if self.command != "GET":
                raise method_not_allowed(self.command)
            if app_id is not None:
                n = int(app_id) - 1000000000 if app_id.isdigit() and len(app_id) < 12 else -1
                if not 0 <= n < api.app_count:
                    raise no_such_resource("apps", app_id)
                return 200, {
                    "data": app_resource(api.url, n, api.app_size_bytes),
                    "links": {"self": f"{api.url}{self.path}"},
                }
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
            page = [app_resource(api.url, n, api.app_size_bytes) for n in selected[offset : offset + limit]]
            links = {"self": f"{api.url}{self.path}"}
            if offset + limit < len(selected):
                kept = [(name, value) for name, value in query if name != "cursor"]
                links["next"] = next_link(
                    api, "/v1/apps", urlencode([*kept, ("cursor", encode_cursor(offset + limit))])
                )
            return 200, {"data": page, "links": links, "meta": paging_meta(api, len(selected), limit)}

        def _builds(self, build_id: Optional[str]) -> Tuple[int, Optional[Dict[str, Any]]]:
            if self.command != "GET":
                raise method_not_allowed(self.command)
            links = {"self": f"{api.url}{self.path}"}
            fixed = [
                {
                    "type": "builds",
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"builds/{n}")),
                    "attributes": item,
                    "relationships": {"app": {"data": {"type": "apps", "id": "1000000000"}}},
                }
                for n, item in enumerate(_BUILDS)
            ]
            if build_id is not None:
                found = [build for build in fixed + api.builds if build["id"] == build_id]
                if not found:
                    raise no_such_resource("builds", build_id)
                return 200, {"data": api._look_at(found[0]) if found[0] in api.builds else found[0], "links": links}
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            limit = int(params["limit"]) if params.get("limit", "").isdigit() else DEFAULT_PAGE_SIZE
            matches = [
                build
                for build in fixed + api.builds
                if _filter_allows(params, "filter[app]", build["relationships"]["app"]["data"]["id"])
                and _filter_allows(params, "filter[version]", build["attributes"]["version"])
            ]
            data = [api._look_at(build) if build in api.builds else build for build in matches[:limit]]
            return 200, {"data": data, "links": links, "meta": paging_meta(api, len(matches), limit)}

        def _bundle_ids(self, bundle_id: Optional[str]) -> Tuple[int, Optional[Dict[str, Any]]]:
            if bundle_id is None:
                if self.command == "GET":
                    fixed = [
                        {
                            "type": "bundleIds",
                            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bundleIds/{n}")),
                            "attributes": item,
                        }
                        for n, item in enumerate(_BUNDLE_IDS)
                    ]
                    registered = fixed + list(api.bundle_ids.values())
                    query = dict(parse_qsl(urlsplit(self.path).query))
                    limit = int(query["limit"]) if query.get("limit", "").isdigit() else DEFAULT_PAGE_SIZE
                    return 200, {
                        "data": registered[:limit],
                        "links": {"self": f"{api.url}{self.path}"},
                        "meta": paging_meta(api, len(registered), limit),
                    }
                if self.command == "POST":
                    return self._create_bundle_id()
                raise method_not_allowed(self.command)
            resource = api.bundle_ids.get(bundle_id)
            if resource is None:
                raise no_such_resource("bundleIds", bundle_id)
            if self.command == "DELETE":
                del api.bundle_ids[bundle_id]
                return 204, None
            if self.command == "PATCH":
                change = self._document().get("data")
                if not isinstance(change, dict) or change.get("type") != "bundleIds" or change.get("id") != bundle_id:
                    raise entity_error(
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
                raise AppleError(
                    422,
                    "ENTITY_UNPROCESSABLE",
                    "The request entity is not valid JSON",
                    "The request body could not be parsed.",
                )
            return document

        def _create_bundle_id(self) -> Tuple[int, Dict[str, Any]]:
            data = self._document().get("data")
            if not isinstance(data, dict) or data.get("type") != "bundleIds":
                raise entity_error(
                    "ENTITY_ERROR.INCLUDED.INVALID",
                    "The request body must have data of type 'bundleIds'.",
                    "/data/type",
                )
            given = data.get("attributes")
            attributes: Dict[str, Any] = given if isinstance(given, dict) else {}
            for name in ("identifier", "name", "platform"):
                if not isinstance(attributes.get(name), str) or not attributes[name]:
                    raise entity_error(
                        "ENTITY_ERROR.ATTRIBUTE.REQUIRED",
                        f"You must provide a value for the attribute '{name}' with this request",
                        f"/data/attributes/{name}",
                    )
            if any(r["attributes"]["identifier"] == attributes["identifier"] for r in api.bundle_ids.values()):
                raise entity_error(
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

        def _route_preflight(self) -> bool:
            """Xcode Cloud and notary, for the preflight checks (builds and bundle IDs are served above)."""
            listings = {
                "/v1/ciProducts": ("ciProducts", _CI_PRODUCTS),
                "/notary/v2/submissions": ("submissions", _SUBMISSIONS),
            }
            listing = listings.get(urlsplit(self.path).path)
            if listing is None:
                return False
            kind, items = listing
            status, code, why = api.check_token(self.headers.get("Authorization", ""), "GET", self.path)
            self._note(str(status))
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
                "meta": paging_meta(api, len(items), limit),
            }
            self._send(200, json.dumps(body).encode(), "application/json")
            return True

        def _list(self, path: str) -> None:
            """A collection other than /v1/apps: the token checked, then one Apple-shaped page."""
            status, code, why = api.check_token(self.headers.get("Authorization", ""), "GET", self.path)
            self._note(str(status))
            if status != 200:
                title, detail = _NOT_AUTHORIZED if status == 401 else ("The given operation is not allowed", why)
                self._error(status, code, title, detail, extra_detail=why if status == 401 else "")
                return
            resource_type, items = _LISTS[api.audience][path]
            data = [
                {"type": resource_type, "id": str(n), "attributes": item, "links": {"self": f"{api.url}{path}/{n}"}}
                for n, item in enumerate(items, 1)
            ]
            body = {
                "data": data,
                "links": {"self": f"{api.url}{self.path}"},
                "meta": paging_meta(api, len(items), None),
            }
            self._send(200, json.dumps(body).encode(), "application/json")

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
            if api.rate_limit_header:
                self.send_header(
                    "X-Rate-Limit", f"user-hour-lim:{api.hourly_limit};user-hour-rem:{max(0, api.hourly_limit - used)};"
                )
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if status != 204 and getattr(self, "_cut", False):
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True  # the rest never comes: the client sees the body end early
            elif status != 204:
                self.wfile.write(body)

    return Handler


# apple-error: Apple's error JSON with the fault's status, code, title, detail and headers.
# redirect: the fault's status (a 3xx) to ``location``. html-page: an HTML page titled ``title``
# with the fault's status (200: a captive portal). trickle: a valid 200 apps page sent one byte
# every ``seconds`` (a server that never times out a read, but never finishes either).
HOSTILE_KINDS = ("apple-error", "redirect", "html-page", "trickle", "raw-json")


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
    elif fault.kind == "raw-json":  # `detail` is the whole body, as JSON
        handler._send(fault.status, fault.detail.encode(), "application/json", headers)


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
