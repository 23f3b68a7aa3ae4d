"""Preflight checks: one request each, proving the key can do what this job will do.

:data:`CHECKS` is the one place that says, per check, which request it makes, what a pass proves,
what the job needs it for and which role grants it. All checks run in the order given, so one
report shows every gap; the step fails at the end, naming every check that failed.

The roles are Apple's, from (read 2026):
- Creating API Keys for App Store Connect API: team keys see all apps of the team; individual keys
  "aren't able to use Provisioning endpoints, access Sales and Finance, or notaryTool".
  https://developer.apple.com/documentation/appstoreconnectapi/creating-api-keys-for-app-store-connect-api
- Role permissions: Admins "have access to all apps" and, on an organization team, Certificates,
  Identifiers & Profiles by default; App Manager "manages all aspects of an app, such as pricing,
  App Store information, and app development and delivery"; Developer "manages development and
  delivery of an app". https://developer.apple.com/help/app-store-connect/reference/role-permissions
- Program Roles: for other roles, Certificates, Identifiers & Profiles is a separate permission
  granted in Users and Access; "Notarize software" is a row of its own.
  https://developer.apple.com/support/roles/
- UserRole, CLOUD_MANAGED_APP_DISTRIBUTION: granted by default to Account Holder and Admin (what
  xcodebuild's cloud signing needs). https://developer.apple.com/documentation/appstoreconnectapi/userrole
- Notary: a team key with the Developer role works and the notary service answers an unaccepted
  key in plain text, not JSON (Apple Developer Forums, thread 749215; not in Apple's reference).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple
from urllib.parse import quote, urlsplit

from .apis import APP_STORE_CONNECT, Api
from .config import Credentials, InputReader, Naming, read_base_url, read_bool, require_base_url
from .errors import ApiError, AscTokenError, InputError
from .explain import (
    Asked,
    error_code,
    explain_reply,
    explain_unreachable,
    is_agreements_code,
    is_apple_json,
    measure_skew,
)
from .minting import scope_allows
from .redact import quote_foreign, shown
from .transport import BearerTokens, NoAnswerError, Reply, Transport, parse_rate_limit

DEFAULT_NOTARY_URL = "https://appstoreconnect.apple.com/notary/v2"
DEFAULT_CHECKS = "apps"
SEPARATE_TOKEN_LIFETIME = 120  # seconds: a check's own unscoped token, when `scope` does not cover it
# Apple: a bundle ID holds only A-Z, a-z, 0-9, hyphens and periods, in reverse-DNS style. A
# wildcard (com.example.*) exists only when registering an App ID; an app record always has an
# explicit bundle ID, so `app:` refuses one.
_BUNDLE_ID = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_BUNDLE_ID_MAX = 255


@dataclass(frozen=True)
class Check:
    """One `checks` entry: a name from :data:`CHECKS`, and the bundle ID for ``app:``."""

    name: str
    bundle_id: str = ""

    @property
    def entry(self) -> str:
        """As the user writes it in `checks`."""
        return f"app:{self.bundle_id}" if self.name == "app" else self.name


@dataclass(frozen=True)
class Preflight:
    """What the token command proves before the build: nothing when ``verify`` is false."""

    verify: bool = True
    checks: Tuple[Check, ...] = (Check("apps"),)
    notary_url: str = DEFAULT_NOTARY_URL


class CheckTokens(BearerTokens, Protocol):
    def unscoped(self, lifetime: int) -> BearerTokens:
        """A separate token without scope, for a check that the scope does not cover."""


@dataclass(frozen=True)
class CheckSpec:
    name: str
    path: str  # appended to `api-url`, or to `notary-url` when on_notary; {bundle_id} for app:
    purpose: str  # "its role may not <purpose>" in a 403
    proves: str  # what a pass means for the job
    if_missing: str  # what a failure means for the job
    needed_for: str  # "..., which <needed_for>" in a 403
    grant: str  # "give key X <grant>" in a 403: only what Apple says grants it
    individual_keys_cannot_use: str = ""  # Apple refuses individual keys here
    on_notary: bool = False


_DELIVERY_ROLE = "the Developer, App Manager or Admin role (Apple: they manage an app's development and delivery)"


def _apps_check(api: Api) -> CheckSpec:
    """`apps` proves the credentials with the chosen API's own cheap read (apis.py)."""
    return CheckSpec(
        "apps",
        api.verify_path,
        purpose=api.verify_purpose,
        proves=f"the credentials work and the key can {api.verify_purpose} ({api.service})",
        if_missing="steps that list or look up apps will fail",
        needed_for="",
        grant=api.verify_grant,
    )


CHECKS: Dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        _apps_check(APP_STORE_CONNECT),  # on another API, that API's own (spec_for)
        CheckSpec(
            "app",
            "/v1/apps?filter[bundleId]={bundle_id}&limit=1",
            purpose="read apps",
            proves="the key sees this app: outputs app-id (for altool --apple-id) and app-name",
            if_missing="uploads and API calls for this app will fail",
            needed_for="every upload and API call for this app needs",
            grant="an App Manager, Developer or Admin role",
        ),
        CheckSpec(
            "testflight",
            "/v1/builds?limit=1",
            purpose="read builds",
            proves="the key can read builds: uploads and TestFlight steps can see them",
            if_missing="TestFlight steps (pilot, build lookups after an altool upload) will fail",
            needed_for="uploads and TestFlight steps need",
            grant=_DELIVERY_ROLE,
        ),
        CheckSpec(
            "provisioning",
            "/v1/bundleIds?limit=1",
            purpose="read signing assets (bundle IDs)",
            proves="the key can reach signing assets, as xcodebuild -allowProvisioningUpdates and match need "
            "(cloud signing for distribution also needs Admin)",
            if_missing="xcodebuild -allowProvisioningUpdates and fastlane match will fail",
            needed_for="xcodebuild -allowProvisioningUpdates and fastlane match need",
            grant="the Admin role (Apple gives Admins Certificates, Identifiers & Profiles and "
            "cloud-managed distribution certificates by default; other roles only as separate permissions)",
            individual_keys_cannot_use="the provisioning endpoints that xcodebuild -allowProvisioningUpdates and match call",
        ),
        CheckSpec(
            "xcode-cloud",
            "/v1/ciProducts?limit=1",
            purpose="read Xcode Cloud products",
            proves="the key can read Xcode Cloud products, workflows and builds",
            if_missing="Xcode Cloud steps through the API will fail",
            needed_for="Xcode Cloud steps through the API need",
            grant=_DELIVERY_ROLE,
        ),
        CheckSpec(
            "notary",
            "/submissions?limit=1",
            purpose="use the notary service",
            proves="notarytool will accept the key",
            if_missing="notarytool submit will fail",
            needed_for="notarytool needs",
            grant="a role that may notarize software in Apple's Program Roles (a team key with the Developer "
            "role is reported to be enough)",
            individual_keys_cannot_use="notarytool",
            on_notary=True,
        ),
    )
}


@dataclass(frozen=True)
class VerificationResult:
    app_count: Optional[int]
    rate_limit_remaining: Optional[int]
    rate_limit_limit: Optional[int]
    attempts: int
    clock_skew_seconds: Optional[float] = None


@dataclass(frozen=True)
class CheckResult:
    check: Check
    passed: bool
    result: str  # for the summary: "passed", "403 FORBIDDEN_ERROR", "not run"
    meaning: str  # for the summary: what it means for the job
    facts: Optional[VerificationResult] = None
    app_id: str = ""
    app_name: str = ""
    separate_token: bool = False
    error: Optional[AscTokenError] = None


class ChecksFailedError(ApiError):
    """One or more checks failed; ``results`` holds every check's row for the summary."""

    def __init__(self, message: str, *, details: str, title: str, results: Sequence[CheckResult]) -> None:
        super().__init__(message, details=details, title=title)
        self.results = tuple(results)


class AppNotFoundError(ApiError):
    """`app:<bundle-id>` matched no app the key can see, or more than one."""

    title = "App not found"


def spec_for(name: str, api: Api) -> CheckSpec:
    return _apps_check(api) if name == "apps" else CHECKS[name]


def run_checks(
    credentials: Credentials,
    preflight: Preflight,
    naming: Naming,
    tokens: CheckTokens,
    *,
    transport: Transport,
    clock: Callable[[], float],
    log: Callable[[str], None] = lambda message: None,
) -> Tuple[CheckResult, ...]:
    """Every check in order; raises :class:`ChecksFailedError` at the end when any failed."""
    api = credentials.api
    require_base_url(naming, "api-url", credentials.api_url, api.url)
    if any(CHECKS[check.name].on_notary for check in preflight.checks):
        require_base_url(naming, "notary-url", preflight.notary_url, DEFAULT_NOTARY_URL)
    results: List[CheckResult] = []
    stop_reason = ""  # after a 401 or an agreements 403, no other request can pass
    unreachable: Dict[str, str] = {}  # host -> why; other checks on that host are not sent
    for check in preflight.checks:
        spec = spec_for(check.name, api)
        path = spec.path.format(bundle_id=quote(check.bundle_id, safe=""))
        url = (preflight.notary_url if spec.on_notary else credentials.api_url).rstrip("/") + path
        # As `scope` entries name it: an API path as is, a notary path with notary-url's own path.
        scope_path = urlsplit(url).path + path[path.index("?") :] if spec.on_notary else path
        host = urlsplit(url).netloc
        skip = stop_reason or unreachable.get(host, "")
        if skip:
            results.append(CheckResult(check, False, "not run", skip))
            log(f"Check {check.entry}: not run ({skip}).")
            continue
        separate = not scope_allows(credentials.scope, "GET", scope_path)
        if separate:
            log(
                f"The {naming.label('scope')} does not cover GET {scope_path}; checking {check.entry} "
                f"with a separate unscoped {SEPARATE_TOKEN_LIFETIME}-second token."
            )
        asked = _asked(check, spec, url, credentials, naming, alone=len(preflight.checks) == 1)
        check_tokens = tokens.unscoped(SEPARATE_TOKEN_LIFETIME) if separate else tokens
        result, reply = _run_one(check, asked, check_tokens, transport, naming, clock)
        results.append(replace(result, separate_token=separate))
        log(f"Check {check.entry}: {result.result}" + (f": {result.meaning}." if result.passed else "."))
        if reply is None:
            unreachable[host] = f"{host} could not be reached"
        elif reply.status == 401:
            stop_reason = "the credentials were refused with 401"
        elif reply.status == 403 and is_agreements_code(error_code(reply)):
            stop_reason = "a required agreement is missing or expired"
    failed = [r for r in results if r.error is not None]
    if failed:
        raise _failure(results, failed, naming)
    return tuple(results)


def _run_one(
    check: Check, asked: Asked, tokens: BearerTokens, transport: Transport, naming: Naming, clock: Callable[[], float]
) -> Tuple[CheckResult, Optional[Reply]]:
    """The check's result, and the answer (None when none came)."""
    spec = spec_for(check.name, asked.api)
    try:
        reply = transport.send("GET", asked.url, tokens)
    except NoAnswerError as error:
        unreachable = explain_unreachable(error.kind, asked, naming, error.attempts)
        return CheckResult(check, False, "unreachable", spec.if_missing, error=unreachable), None
    if not _accepted(reply):
        explained = explain_reply(reply, replace(asked, attempts=reply.attempts), naming, clock)
        outcome = f"{reply.status} {error_code(reply) or ''}".strip()
        return CheckResult(check, False, outcome, _failure_meaning(spec, reply, asked), error=explained), reply
    facts = _facts(reply, clock, asked.api)
    if check.name != "app":
        return CheckResult(check, True, "passed", spec.proves, facts=facts), reply
    return _app_result(check, reply, facts, asked.key_type, naming), reply


def _accepted(reply: Reply) -> bool:
    """A 200 with resources: ``{"errors": []}`` or ``{"data": null}`` proves nothing."""
    if reply.status != 200 or not is_apple_json(reply):
        return False
    body = json.loads(reply.body)
    return isinstance(body.get("data"), (list, dict)) and not body.get("errors")


def _failure_meaning(spec: CheckSpec, reply: Reply, asked: Asked) -> str:
    if reply.status == 401:
        return f"the credentials are refused: every {asked.service} step of this job will fail"
    if reply.status == 403 and is_agreements_code(error_code(reply)):
        return f"nothing in {asked.service} works for this team until the agreement is accepted"
    return spec.if_missing


def _asked(check: Check, spec: CheckSpec, url: str, credentials: Credentials, naming: Naming, *, alone: bool) -> Asked:
    # `apps` alone is today's verification: explain's own way out (verify: false) fits it.
    verification = check.name == "apps" and alone
    way_out = "" if verification else f"take {check.entry} out of {naming.label('checks')} if this job does not need it"
    return Asked(
        url,
        credentials.key_type,
        credentials.api,
        key_id=credentials.key_id,
        purpose=spec.purpose,
        grant=spec.grant,
        needed_for=spec.needed_for,
        way_out=way_out,
        setting="notary-url" if spec.on_notary else "api-url",
    )


def _app_result(check: Check, reply: Reply, facts: VerificationResult, key_type: str, naming: Naming) -> CheckResult:
    if_missing = CHECKS["app"].if_missing
    data = json.loads(reply.body)["data"]  # a list or an object (_accepted)
    apps = [app for app in data if isinstance(app, dict)] if isinstance(data, list) else []
    matching = [app for app in apps if _attribute(app, "bundleId") == check.bundle_id]
    total = facts.app_count if facts.app_count is not None else len(apps)
    if total > 1:
        error = AppNotFoundError(
            f"{total} apps matched bundle ID {check.bundle_id}, where one was expected: write the "
            "app's full bundle ID, so that app-id names one app.",
            details="App Store Connect filtered its apps by filter[bundleId] and returned more than one.",
        )
        return CheckResult(check, False, f"{total} apps match", if_missing, facts=facts, error=error)
    if not matching:
        error = _no_such_app(check, key_type, naming)
        return CheckResult(check, False, "no such app", if_missing, facts=facts, error=error)
    app_id, app_name = quote_foreign(matching[0].get("id", ""), 40), quote_foreign(_attribute(matching[0], "name"), 200)
    meaning = f"app-id {app_id} ({app_name}), for altool --apple-id and API calls"
    return CheckResult(check, True, "passed", meaning, facts=facts, app_id=app_id, app_name=app_name)


def _no_such_app(check: Check, key_type: str, naming: Naming) -> AppNotFoundError:
    causes = [
        f"the key belongs to another team than the app (create the key in the team that owns "
        f"{check.bundle_id}, and set {naming.label('key-id')} and {naming.label('issuer-id')} to it)",
        "a typo in the bundle ID (compare with App Store Connect > Apps > your app > App Information > Bundle ID)",
        "the app is not created in App Store Connect yet (Apps > + > New App, with this bundle ID)",
    ]
    if key_type == "individual":
        causes.insert(0, "the key's user has no access to this app (Users and Access > the user > Apps)")
    return AppNotFoundError(
        f"The key's team has no app with bundle ID {check.bundle_id}: check the team, the spelling "
        "and that the app exists (details below).",
        details="Likely causes, most likely first:\n" + "\n".join(f"{n}. {cause}" for n, cause in enumerate(causes, 1)),
    )


def _attribute(resource: Dict[str, Any], name: str) -> str:
    attributes = resource.get("attributes")
    value = attributes.get(name) if isinstance(attributes, dict) else None
    return value if isinstance(value, str) else ""


def _failure(results: Sequence[CheckResult], failed: Sequence[CheckResult], naming: Naming) -> ChecksFailedError:
    if len(failed) == 1:
        only = failed[0]
        assert only.error is not None
        alone = len(results) == 1 and only.check.name == "apps"  # today's verification: today's message
        message = only.error.message if alone else f"Check {only.check.entry} failed: {only.error.message}"
        return ChecksFailedError(message, details=only.error.details, title=only.error.title, results=results)
    entries = ", ".join(r.check.entry for r in failed)
    lines = []
    for result in failed:
        assert result.error is not None
        lines.append(f"{result.check.entry}: {result.error.message}")
        lines += [f"  {line}" for line in result.error.details.splitlines()]
    return ChecksFailedError(
        f"{len(failed)} of {len(results)} checks failed ({entries}): fix each as explained below "
        f"before the build, or take what this job does not need out of {naming.label('checks')}.",
        details="\n".join(lines),
        title="Preflight checks failed",
        results=results,
    )


def _facts(reply: Reply, clock: Callable[[], float], api: Api) -> VerificationResult:
    meta = json.loads(reply.body).get("meta")  # the body is Apple's JSON object (_accepted)
    paging = meta.get("paging") if isinstance(meta, dict) and api.counts_apps else None
    # paging.total is optional in Apple's schema: no count at all without it. Another API's cheap
    # read (its only check) counts bundle IDs, not apps: no app-count from it.
    app_count = paging["total"] if isinstance(paging, dict) and isinstance(paging.get("total"), int) else None
    limit, remaining = parse_rate_limit(reply.header("x-rate-limit"))
    return VerificationResult(app_count, remaining, limit, reply.attempts, measure_skew(reply, clock))


def read_preflight(inputs: InputReader, credentials: Credentials) -> Preflight:
    """`verify`, `checks` and `notary-url`: what the token command proves before the build."""
    verify = read_bool(inputs, "verify", default=True)
    notary_url = read_base_url(inputs, "notary-url", DEFAULT_NOTARY_URL)
    return Preflight(verify, read_checks(inputs, credentials.key_type, credentials.api, verify=verify), notary_url)


def read_checks(inputs: InputReader, key_type: str, api: Api, *, verify: bool = True) -> Tuple[Check, ...]:
    """The `checks` entries in order, each known, duplicates dropped; every refusal before any request."""
    label = inputs.label("checks")
    raw = inputs.get("checks")
    lines = [line.strip() for line in raw.splitlines() if line.strip()] or [DEFAULT_CHECKS]
    known = ", ".join(Check(name, "<bundle-id>").entry for name in CHECKS)  # as entries are written
    found: List[Check] = []
    for line in lines:
        name, colon, rest = line.partition(":")
        name = name.strip().lower()
        if name not in CHECKS or (colon and name != "app"):
            close = difflib.get_close_matches(name, [n for n in CHECKS if n != "app"], n=1)
            hint = f" (did you mean {close[0]}?)" if close and close[0] != name else ""
            raise InputError(
                f"{label} entry {shown(line)} is not a check{hint}: write one per line, from {known}.",
            )
        check = Check(name, _bundle_id(inputs, line, rest.strip()) if name == "app" else "")
        refused = CHECKS[name].individual_keys_cannot_use
        if refused and key_type == "individual":
            raise InputError(
                f"{label} entry {check.entry} needs a team key, but {inputs.label('key-type')} is "
                f"individual: Apple does not let individual keys use {refused}; "
                "use a team key (App Store Connect > Users and Access > Integrations > Team Keys).",
            )
        if verify and api.checks and name not in api.checks:  # verify: false sends none
            raise InputError(
                f"{label} entry {check.entry} reads the {APP_STORE_CONNECT.service} API, but "
                f"{inputs.assignment('api', api.name)} selects the {api.service}: there only "
                f"{', '.join(api.checks)} runs (as GET {api.verify_path.split('?')[0]}); remove {check.entry}.",
            )
        if check not in found:
            found.append(check)
    apps = [check.entry for check in found if check.name == "app"]
    if len(apps) > 1:
        raise InputError(
            f"{label} has more than one app: entry ({', '.join(apps)}): keep one, since the outputs "
            "app-id and app-name hold a single app.",
        )
    return tuple(found)


def _bundle_id(inputs: InputReader, line: str, bundle_id: str) -> str:
    label = inputs.label("checks")
    if not bundle_id:
        raise InputError(
            f"{label} entry {shown(line)} has no bundle ID: write app:<bundle-id>, like "
            "app:com.example.app (App Store Connect > your app > App Information > Bundle ID).",
        )
    if "*" in bundle_id:
        raise InputError(
            f"{label} entry {shown(line)} has a wildcard: wildcards exist only for registering App IDs, "
            "and an app always has an explicit bundle ID; write it in full, like app:com.example.app.",
        )
    if len(bundle_id) > _BUNDLE_ID_MAX or _BUNDLE_ID.match(bundle_id) is None:
        raise InputError(
            f"{label} entry {shown(line)} is not a bundle ID: Apple allows only letters, digits, "
            "hyphens and periods, in reverse-DNS style like app:com.example.app.",
        )
    return bundle_id
