"""Run the preflight checks (checks.py): all in the order given, so one report shows every gap; the
step fails at the end, naming every check that failed."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Sequence, Tuple
from urllib.parse import quote, urlsplit

from .apis import Api
from .checks import CHECKS, DEFAULT_NOTARY_URL, SEPARATE_TOKEN_LIFETIME, Check, Preflight, spec_for
from .errors import AppNotFoundError, ChecksFailedError
from .explain import (
    Asked,
    error_code,
    explain_reply,
    explain_unreachable,
    is_agreements_code,
    is_apple_json,
    measure_skew,
)
from .records import CheckResult, VerificationResult
from .redact import quote_foreign
from .settings import require_base_url
from .tokens import scope_allows
from .transport import BearerTokens, NoAnswerError, Reply, parse_rate_limit

if TYPE_CHECKING:
    from .caller import Caller


def run_checks(preflight: Preflight, caller: Caller) -> Tuple[CheckResult, ...]:
    """Every check in order; raises :class:`ChecksFailedError` at the end when any failed."""
    credentials, naming, log = caller.credentials, caller.naming, caller.log
    require_base_url(naming, "api-url", credentials.api_url, credentials.api.url)
    if any(CHECKS[check.name].on_notary for check in preflight.checks):
        require_base_url(naming, "notary-url", preflight.notary_url, DEFAULT_NOTARY_URL)
    results: List[CheckResult] = []
    stop_reason = ""  # after a 401 or an agreements 403, no other request can pass
    unreachable: Dict[str, str] = {}  # host -> why; other checks on that host are not sent
    for check in preflight.checks:
        spec = spec_for(check.name, credentials.api)
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
        tokens = caller.tokens.unscoped(SEPARATE_TOKEN_LIFETIME) if separate else caller.tokens
        result, stop_reason = _run_one(check, url, tokens, caller, alone=len(preflight.checks) == 1)
        results.append(replace(result, separate_token=separate))
        log(f"Check {check.entry}: {result.result}" + (f": {result.meaning}." if result.passed else "."))
        if result.result == "unreachable":
            unreachable[host] = f"{host} could not be reached"
    failed = [r for r in results if r.error is not None]
    if failed:
        raise _failure(results, failed, naming.label("checks"))
    return tuple(results)


def _run_one(check: Check, url: str, tokens: BearerTokens, caller: Caller, *, alone: bool) -> Tuple[CheckResult, str]:
    """The check's result, and why no later request can pass after its answer ('' when one can)."""
    spec, naming = spec_for(check.name, caller.credentials.api), caller.naming
    # `apps` alone is today's verification: explain's own way out (verify: false) fits it.
    verification, checks = check.name == "apps" and alone, naming.label("checks")
    asked = Asked.about(
        url,
        caller.credentials,
        purpose=spec.purpose,
        grant=spec.grant,
        needed_for=spec.needed_for,
        way_out="" if verification else f"take {check.entry} out of {checks} if this job does not need it",
        setting="notary-url" if spec.on_notary else "api-url",
    )
    try:
        reply = caller.transport.send("GET", asked.url, tokens)
    except NoAnswerError as error:
        unreachable = explain_unreachable(error.kind, asked, naming, error.attempts)
        return CheckResult(check, False, "unreachable", spec.if_missing, error=unreachable), ""
    if not _accepted(reply):
        explained = explain_reply(reply, replace(asked, attempts=reply.attempts), naming, caller.clock)
        outcome = f"{reply.status} {error_code(reply) or ''}".strip()
        meaning, stop = spec.if_missing, ""
        if reply.status == 401:
            meaning = f"the credentials are refused: every {asked.service} step of this job will fail"
            stop = "the credentials were refused with 401"
        elif reply.status == 403 and is_agreements_code(error_code(reply)):
            meaning = f"nothing in {asked.service} works for this team until the agreement is accepted"
            stop = "a required agreement is missing or expired"
        return CheckResult(check, False, outcome, meaning, error=explained), stop
    facts = _facts(reply, caller.clock, asked.api)
    if check.name != "app":
        return CheckResult(check, True, "passed", spec.proves, facts=facts), ""
    return _app_result(check, reply, facts, caller), ""


def _accepted(reply: Reply) -> bool:
    """A 200 with resources: ``{"errors": []}`` or ``{"data": null}`` proves nothing."""
    if reply.status != 200 or not is_apple_json(reply):
        return False
    return isinstance(reply.json.get("data"), (list, dict)) and not reply.json.get("errors")


def _app_result(check: Check, reply: Reply, facts: VerificationResult, caller: Caller) -> CheckResult:
    if_missing = CHECKS["app"].if_missing
    data = reply.json["data"]  # a list or an object (_accepted)
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
        names = caller.naming
        causes = [
            f"the key belongs to another team than the app (create the key in the team that owns "
            f"{check.bundle_id}, and set {names.label('key-id')} and {names.label('issuer-id')} to it)",
            "a typo in the bundle ID (compare with App Store Connect > Apps > your app > App Information > Bundle ID)",
            "the app is not created in App Store Connect yet (Apps > + > New App, with this bundle ID)",
        ]
        if caller.credentials.key_type == "individual":
            causes.insert(0, "the key's user has no access to this app (Users and Access > the user > Apps)")
        numbered = "\n".join(f"{n}. {cause}" for n, cause in enumerate(causes, 1))
        error = AppNotFoundError(
            f"The key's team has no app with bundle ID {check.bundle_id}: check the team, the spelling "
            "and that the app exists (details below).",
            details="Likely causes, most likely first:\n" + numbered,
        )
        return CheckResult(check, False, "no such app", if_missing, facts=facts, error=error)
    app_id = quote_foreign(matching[0].get("id") or "", 40)  # "id": null is no ID, never "None"
    app_name = quote_foreign(_attribute(matching[0], "name"), 200)
    meaning = f"app-id {app_id} ({app_name}), for altool --apple-id and API calls"
    return CheckResult(check, True, "passed", meaning, facts=facts, app_id=app_id, app_name=app_name)


def _attribute(resource: Dict[str, Any], name: str) -> str:
    attributes = resource.get("attributes")
    value = attributes.get(name) if isinstance(attributes, dict) else None
    return value if isinstance(value, str) else ""


def _failure(results: Sequence[CheckResult], failed: Sequence[CheckResult], checks: str) -> ChecksFailedError:
    """``checks``: the `checks` setting as the user names it."""
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
        f"before the build, or take what this job does not need out of {checks}.",
        details="\n".join(lines),
        title="Preflight checks failed",
        results=results,
    )


def _facts(reply: Reply, clock: Callable[[], float], api: Api) -> VerificationResult:
    meta = reply.json.get("meta")  # the body is Apple's JSON object (_accepted)
    paging = meta.get("paging") if isinstance(meta, dict) and api.counts_apps else None
    # paging.total is optional in Apple's schema: no count at all without it. Another API's cheap
    # read (its only check) counts bundle IDs, not apps: no app-count from it.
    app_count = paging["total"] if isinstance(paging, dict) and isinstance(paging.get("total"), int) else None
    limit, remaining = parse_rate_limit(reply.header("x-rate-limit"))
    return VerificationResult(app_count, remaining, limit, reply.attempts, measure_skew(reply, clock))
