"""What an App Store Connect answer means for the user, as one error naming the setting to fix.

The messages are kept together here, chosen by the detected cause. Every setting is named the
way the user spells it (:class:`config.Naming`), and every text that came from the server is
passed through :func:`quote_foreign` first: bounded, on one line, unable to act as a workflow
or logging command wherever it is printed.
"""

from __future__ import annotations

import email.utils
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional
from urllib.parse import urlsplit

from .config import Naming
from .errors import ApiError, NotAppleError, UnreachableError
from .transport import Reply

SKEW_TOLERANCE_SECONDS = 60
STATUS_PAGE = "https://developer.apple.com/system-status/"
AGREEMENTS_CODE = "FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED"
_FOREIGN_LIMIT = 300


@dataclass(frozen=True)
class Request:
    """What was asked, for the explanation: the URL and, for checks, what the job needs it for."""

    url: str
    key_type: str
    purpose: str = "list apps"  # "may not <purpose>" in a 403
    attempts: int = 1
    grant: str = "an App Manager, Developer or Admin role"  # "give key X <grant>" in a 403
    needed_for: str = ""  # "..., which <needed_for>" in a 403
    way_out: str = ""  # "..., or <way_out>" in a 403; default: verify false
    setting: str = "api-url"  # the setting that chose the URL, for proxy and wrong-URL advice
    # The notary service answers a key it does not accept in plain text, not JSON (see checks.py).
    plain_errors_are_apple: bool = False
    service: str = "App Store Connect"  # who answered: the Enterprise Program API names itself


_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=_-]{40,}")


def quote_foreign(text: object, limit: int = _FOREIGN_LIMIT) -> str:
    """Server- or user-supplied text made safe to print: one line, bounded, no command syntax.

    GitHub reads ``::command::`` at a line's start and Azure ``##vso[`` anywhere in a line, so line
    breaks and control characters become spaces and both markers are broken up.
    """
    raw = str(text)[: limit * 4]
    cleaned = "".join(" " if (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029") else c for c in raw)
    cleaned = " ".join(cleaned.split()).replace("::", ": :").replace("##", "# #")
    # A server or proxy that echoes the request could hand back the bearer token or key material,
    # and not every CI platform masks: anything shaped like a JWT or a long base64 run is dropped.
    cleaned = _JWT_LIKE.sub("[a token, not shown]", cleaned)
    cleaned = _BASE64_RUN.sub("[not shown]", cleaned)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def apple_errors(reply: Reply) -> List[Mapping[str, Any]]:
    body = _json(reply)
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    return []


def is_apple_json(reply: Reply) -> bool:
    body = _json(reply)
    return isinstance(body, dict) and (isinstance(body.get("errors"), list) or "data" in body)


def summarise_body(reply: Reply) -> str:
    """One line about a body that is not Apple's JSON: never the body itself."""
    content_type = quote_foreign(reply.header("content-type").split(";")[0] or "unknown type", 60)
    size = f"{len(reply.body)}{'+' if reply.truncated else ''}"
    title = _html_title(reply.body[: 64 * 1024].decode("utf-8", errors="replace"))
    shown = f', page title "{quote_foreign(title, 80)}"' if title else ""
    return f"a {content_type} body of {size} bytes{shown}"


def _html_title(text: str) -> str:
    # find(), not a regex: linear whatever the page holds.
    lower = text.lower()
    start = lower.find("<title")
    opened = lower.find(">", start) if start >= 0 else -1
    end = lower.find("</title", opened) if opened >= 0 else -1
    return text[opened + 1 : end] if end > opened >= 0 else ""


def apple_said(reply: Reply) -> str:
    errors = apple_errors(reply)
    if not errors:
        return summarise_body(reply)
    first = errors[0]
    parts = [str(first.get(name, "")) for name in ("code", "title", "detail")]
    source = first.get("source")
    if isinstance(source, dict):
        where = source.get("parameter") or source.get("pointer")
        if where:
            parts.append(f"(source: {where})")
    more = f" (+{len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return quote_foreign(" ".join(p for p in parts if p), 600) + more


def error_code(reply: Reply) -> Optional[str]:
    errors = apple_errors(reply)
    code = str(errors[0].get("code", "")) if errors else ""
    return quote_foreign(code, 100) or None


def measure_skew(reply: Optional[Reply], clock: Callable[[], float]) -> Optional[float]:
    """Server time minus runner time, in seconds, from the answer's ``Date`` header."""
    date = reply.header("date")[:64] if reply is not None else ""
    if not date:
        return None
    try:
        server = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return server - clock()


def describe_duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 72 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{round(minutes / 1440)} days"


def explain_reply(reply: Reply, request: Request, naming: Naming, clock: Callable[[], float]) -> ApiError:
    """The error for an answer that is not a success."""
    status = reply.status
    tried = f" after {request.attempts} attempts" if request.attempts > 1 else ""
    url_setting = naming.label(request.setting)
    if 300 <= status < 400:
        return NotAppleError(
            f"{request.url} answered with a redirect ({status}), which {request.service} never "
            f"does: a proxy, captive portal or wrong {url_setting} is in the way; "
            f"check {url_setting} and the runner's proxy settings.",
            details=f"The redirect pointed at {quote_foreign(reply.header('location') or 'nothing', 200)}.",
        )
    plain_but_apple = request.plain_errors_are_apple and status in (401, 403)
    if not is_apple_json(reply) and not plain_but_apple:
        return NotAppleError(
            f"Something between the runner and {request.service} answered {status}{tried} with "
            f"{summarise_body(reply)}, not {request.service}'s JSON: a proxy, gateway or firewall "
            f"(or a wrong {url_setting}) answered for it; check the runner's proxy "
            "settings, then re-run.",
            details=f"The request went to {request.url}.",
        )
    code, said = error_code(reply), apple_said(reply)
    if status == 401:
        return _explain_401(request, code, said, measure_skew(reply, clock), naming)
    if status == 403:
        return _explain_403(request, code, said, naming)
    if status == 429:
        return ApiError(
            f"{request.service} answered 429 {code or 'RATE_LIMIT_EXCEEDED'}{tried}: this key used "
            "its hourly request quota; wait for the hour to roll over, or use another key for "
            "this pipeline.",
            details=f"Apple said: {said}",
        )
    if status >= 500:
        return ApiError(
            f"{request.service} answered {status}{tried}: the service is having trouble, not your "
            f"credentials; re-run the job later and check {STATUS_PAGE}.",
            details=f"The last answer was: {said}",
        )
    return ApiError(
        f"{request.service} answered {status} {code or ''} for {request.url}: check the request "
        f"and {url_setting}.".replace("  ", " "),
        details=f"Apple said: {said}",
    )


def _explain_403(request: Request, code: Optional[str], said: str, naming: Naming) -> ApiError:
    if is_agreements_code(code):
        return ApiError(
            f"{request.service} answered 403 {code}: the Account Holder must accept the latest "
            "agreement in App Store Connect > Business; no change to the key or the settings will help.",
            details=f"Apple said: {said}",
        )
    needed = f", which {request.needed_for}" if request.needed_for else ""
    way_out = request.way_out or f"set {naming.assignment('verify', 'false')} if it only needs other resources"
    return ApiError(
        f"{request.service} answered 403 {code or 'FORBIDDEN'}: the key is valid, but its role "
        f"may not {request.purpose}{needed}; give key {naming.label('key-id')} {request.grant}, or {way_out}.",
        details=f"Apple said: {said}",
    )


def is_agreements_code(code: Optional[str]) -> bool:
    """Apple's code for "the Account Holder has not accepted the latest agreement", with any suffix."""
    return bool(code) and (code == AGREEMENTS_CODE or str(code).startswith(AGREEMENTS_CODE + "."))


def _explain_401(request: Request, code: Optional[str], said: str, skew: Optional[float], naming: Naming) -> ApiError:
    if skew is not None and abs(skew) > SKEW_TOLERANCE_SECONDS:
        direction = "ahead of" if skew < 0 else "behind"
        return ApiError(
            f"{request.service} answered 401 {code or 'NOT_AUTHORIZED'}: the runner's clock is "
            f"{describe_duration(skew)} {direction} App Store Connect's, so the token looks "
            "expired or not yet valid; fix the runner's time (enable NTP) and re-run.",
            details=(
                f"App Store Connect's Date header and the runner's clock differ by "
                f"{abs(skew):.0f} seconds. Tokens live at most 20 minutes, so Apple rejects them "
                f"when the clocks disagree by more than a minute or so.\nApple said: {said}"
            ),
        )
    key_id, key_type, issuer = naming.label("key-id"), naming.label("key-type"), naming.label("issuer-id")
    wrong_key_id = f"{key_id} does not match the private key (the ID is in the file name AuthKey_<KEYID>.p8)"
    revoked = "the key was revoked in App Store Connect (create a new key and update the secrets)"
    clock = "the runner's clock is off" + (
        f" (measured: within {abs(skew):.0f} s, so unlikely)" if skew is not None else ""
    )
    if request.key_type == "individual":
        headline = f"most often {key_id} does not match the private key, or it is a team key"
        causes = [
            wrong_key_id,
            f"this is a team key but {key_type} is individual (set "
            f"{naming.assignment('key-type', 'team')} and {issuer} to the Issuer ID)",
            revoked,
            clock,
        ]
    else:
        headline = f"most often {issuer} is not the issuer of key {key_id}"
        causes = [
            f"{issuer} is not the issuer of this key (copy the Issuer ID shown above the team "
            "keys list in App Store Connect > Users and Access > Integrations)",
            wrong_key_id,
            revoked,
            f"this is an individual key but {key_type} is team (set {naming.assignment('key-type', 'individual')})",
            clock,
        ]
    tried = f" {request.attempts} times, each with a freshly signed token" if request.attempts > 1 else ""
    return ApiError(
        f"{request.service} answered 401 {code or 'NOT_AUTHORIZED'}{tried}: it did not accept the "
        f"credentials; {headline} (likely causes below, most likely first).",
        details="Likely causes, most likely first:\n"
        + "\n".join(f"{n}. {cause}" for n, cause in enumerate(causes, 1))
        + f"\nApple said: {said}",
    )


def explain_unreachable(
    kind: str, url: str, naming: Naming, attempts: int = 1, *, setting: str = "api-url"
) -> UnreachableError:
    api_url = naming.label(setting)
    what = {
        "url": "the URL cannot be used (a malformed host name or port)",
        "refused": "the connection was refused",
        "dns": "the host name could not be resolved (DNS)",
        "timeout": "the request timed out",
        "reset": "the connection was reset",
        "tls": "the TLS handshake failed",
    }[kind]
    fix = {
        "url": f"correct {api_url}",
        "refused": f"check {api_url} and any proxy; nothing is listening there",
        "dns": f"check {api_url} and the runner's DNS or proxy settings",
        "timeout": f"App Store Connect or a proxy did not answer in time; re-run the job, and check {STATUS_PAGE}",
        "reset": "a proxy or firewall may be cutting the connection; re-run the job",
        "tls": "a proxy may be intercepting TLS; set REQUESTS_CA_BUNDLE to its CA certificate",
    }[kind]
    tried = f" ({attempts} attempts)" if attempts > 1 else ""
    return UnreachableError(
        f"Could not reach App Store Connect at {url}: {what}{tried}; {fix}.",
        details=(
            "The token itself was minted; only the check that it works could not run. Set "
            f"{naming.assignment('verify', 'false')} to skip the check on runners that cannot reach "
            f"{urlsplit(url).netloc or url}."
        ),
    )


def _json(reply: Reply) -> Any:
    if reply.truncated:
        return None
    try:
        return json.loads(reply.body)
    except (ValueError, TypeError, RecursionError):
        return None


# `asc-token api`: the same explanations, about the request the user made rather than the check.

_MAX_ERRORS_SHOWN = 10


def apple_said_all(reply: Reply) -> str:
    """Every one of Apple's ``errors[]`` (at most ten), one per line, with where it points."""
    errors = apple_errors(reply)
    if not errors:
        return summarise_body(reply)
    lines = []
    for error in errors[:_MAX_ERRORS_SHOWN]:
        status_code = " ".join(str(error.get(name, "")) for name in ("status", "code") if error.get(name))
        words = " - ".join(str(error.get(name)) for name in ("title", "detail") if error.get(name))
        where = _source(error)
        line = f"{status_code}: {words}" if status_code and words else status_code or words
        lines.append("- " + quote_foreign(line + (f" (source: {where})" if where else ""), 600))
    if len(errors) > _MAX_ERRORS_SHOWN:
        lines.append(f"(+{len(errors) - _MAX_ERRORS_SHOWN} more errors)")
    return "\n".join(lines)


def _source(error: Mapping[str, Any]) -> str:
    source = error.get("source")
    if not isinstance(source, dict):
        return ""
    where = source.get("parameter") or source.get("pointer")
    if not where:
        return ""
    kind = "parameter" if source.get("parameter") else "pointer"
    return f"{kind} {quote_foreign(where, 120)}"


def explain_api_reply(
    reply: Reply, request: Request, method: str, naming: Naming, clock: Callable[[], float]
) -> ApiError:
    """An answer to ``asc-token api`` that is not a success.

    401, 429, 5xx, redirects, proxies and the agreements 403 are explained as the verification
    explains them; other 4xx are about the request itself: what was asked, and what Apple points at.
    """
    code = error_code(reply)
    agreements = code is not None and (code == AGREEMENTS_CODE or code.startswith(AGREEMENTS_CODE + "."))
    if not (400 <= reply.status < 500) or reply.status in (401, 429) or agreements or not is_apple_json(reply):
        return explain_reply(reply, request, naming, clock)
    asked = f"{method} {quote_foreign(request.url, 300)}"
    answered = f"App Store Connect answered {reply.status} {code or ''}".rstrip()
    details = f"Apple said:\n{apple_said_all(reply)}"
    if reply.status == 403:
        return ApiError(
            f"{answered} to {asked}: the key is valid, but its role may not make this request; give the key in "
            f"{naming.label('key-id')} a role that may (the endpoint's documentation lists them), or use another key.",
            details=details,
        )
    if reply.status == 404:
        return ApiError(
            f"{answered} to {asked}: there is no such path or resource; check PATH (the path, the "
            "resource ID, and that this key's team can see the resource) against Apple's API reference.",
            details=details,
        )
    errors = apple_errors(reply)
    where = _source(errors[0]) if errors else ""
    pointed = f" ({where})" if where else ""
    return ApiError(
        f"{answered} to {asked}: App Store Connect refused the request as sent; fix what it points "
        f"at{pointed}, as described below, and send it again.",
        details=details,
    )


def explain_api_unreachable(kind: str, url: str, method: str, naming: Naming, attempts: int = 1) -> UnreachableError:
    """No answer to ``asc-token api``: as the verification says, with what it means for the request."""
    error = explain_unreachable(kind, url, naming, attempts)
    if method == "GET":
        consequence = "Nothing was printed; run the command again when App Store Connect can be reached."
    else:
        consequence = (
            f"No answer came back, so App Store Connect may or may not have carried out the {method}: "
            "check the resource before sending it again (a second POST can create a second resource)."
        )
    return UnreachableError(error.message, details=consequence)


def explain_api_unfinished(reason: str, method: str, url: str) -> ApiError:
    """An answer that could not be used as it came: a page cut off, a links.next off the API host, a loop."""
    return ApiError(
        f"The answer to {method} {quote_foreign(url, 300)} could not be used: {reason}",
        details="Nothing was printed, so no partial result can be mistaken for the whole.",
    )
