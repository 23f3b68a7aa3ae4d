"""What an answer means for the user, as one error naming the setting to fix.

The cause is detected here and its template (messages.py) filled in. Every setting is named the
way the user spells it (:class:`config.Naming`), and every text that came from the server is
passed through :func:`redact.quote_foreign` first.
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional
from urllib.parse import urlsplit

from . import messages as text
from .apis import APP_STORE_CONNECT, Api
from .config import Naming
from .errors import ApiError, NotAppleError, UnreachableError
from .redact import quote_foreign
from .transport import Reply

SKEW_TOLERANCE_SECONDS = 60
AGREEMENTS_CODE = "FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED"


@dataclass(frozen=True)
class Asked:
    """What was asked, for the explanation of its answer: where, with which key, and what for."""

    url: str
    key_type: str
    api: Api = APP_STORE_CONNECT
    key_id: str = ""  # validated (10 of A-Z0-9), so shown as is; "" names the setting instead
    purpose: str = "list apps"  # "may not <purpose>" in a 403
    attempts: int = 1
    grant: str = "an App Manager, Developer or Admin role"  # "give key X <grant>" in a 403
    needed_for: str = ""  # "..., which <needed_for>" in a 403
    way_out: str = ""  # "..., or <way_out>" in a 403; default: verify false
    setting: str = "api-url"  # the setting that chose the URL, for proxy and wrong-URL advice
    # The notary service (App Store Connect's, whatever the API) answers a key it does not accept
    # in plain text, not JSON (see checks.py).
    on_notary: bool = False

    @property
    def service(self) -> str:
        return APP_STORE_CONNECT.service if self.on_notary else self.api.service


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


def explain_reply(reply: Reply, asked: Asked, naming: Naming, clock: Callable[[], float]) -> ApiError:
    """The error for an answer that is not a success."""
    service, status = asked.service, reply.status
    tried = f" after {asked.attempts} attempts" if asked.attempts > 1 else ""
    url, url_setting = quote_foreign(asked.url), naming.label(asked.setting)
    if 300 <= status < 400:
        location = quote_foreign(reply.header("location") or "nothing", 200)
        return NotAppleError(
            text.REDIRECTED.format(url=url, status=status, service=service, url_setting=url_setting),
            details=f"The redirect pointed at {location}.",
            title=f"Something between the runner and {service} answered",
        )
    plain_but_apple = asked.on_notary and status in (401, 403)
    if not is_apple_json(reply) and not plain_but_apple:
        body = summarise_body(reply)
        return NotAppleError(
            text.PROXY_PAGE.format(service=service, status=status, tried=tried, body=body, url_setting=url_setting),
            details=f"The request went to {url}.",
            title=f"Something between the runner and {service} answered",
        )
    code, said = error_code(reply), apple_said(reply)
    if status == 401:
        return _explain_401(asked, code, said, measure_skew(reply, clock), naming)
    if status == 403:
        return _explain_403(asked, code, said, naming)
    if status == 429:
        message = text.RATE_LIMITED.format(service=service, code=code or "RATE_LIMIT_EXCEEDED", tried=tried)
        return ApiError(message, details=f"Apple said: {said}", title=f"{service} rejected the request")
    if status >= 500:
        message = text.SERVER_TROUBLE.format(service=service, status=status, tried=tried)
        return ApiError(message, details=f"The last answer was: {said}", title=f"{service} rejected the request")
    message = text.OTHER_STATUS.format(
        service=service, status=status, code=code or "", url=url, url_setting=url_setting
    )
    return ApiError(message.replace("  ", " "), details=f"Apple said: {said}", title=f"{service} rejected the request")


def _explain_403(asked: Asked, code: Optional[str], said: str, naming: Naming) -> ApiError:
    service = asked.service
    if is_agreements_code(code):
        message = text.AGREEMENTS.format(service=service, code=code)
    else:
        message = text.FORBIDDEN_ROLE.format(
            service=service,
            code=code or "FORBIDDEN",
            purpose=asked.purpose,
            needed=f", which {asked.needed_for}" if asked.needed_for else "",
            key_id=naming.label("key-id"),
            grant=asked.grant,
            way_out=asked.way_out or f"set {naming.assignment('verify', 'false')} if it only needs other resources",
        )
    return ApiError(message, details=f"Apple said: {said}", title=f"{service} rejected the request")


def is_agreements_code(code: Optional[str]) -> bool:
    """Apple's code for "the Account Holder has not accepted the latest agreement", with any suffix."""
    return bool(code) and (code == AGREEMENTS_CODE or str(code).startswith(AGREEMENTS_CODE + "."))


def _explain_401(asked: Asked, code: Optional[str], said: str, skew: Optional[float], naming: Naming) -> ApiError:
    service, code = asked.service, code or "NOT_AUTHORIZED"
    title = f"{service} rejected the request"
    if skew is not None and abs(skew) > SKEW_TOLERANCE_SECONDS:
        direction = "ahead of" if skew < 0 else "behind"
        return ApiError(
            text.CLOCK_SKEW.format(service=service, code=code, skew=describe_duration(skew), direction=direction),
            details=text.CLOCK_SKEW_DETAILS.format(service=service, seconds=f"{abs(skew):.0f}", said=said),
            title=title,
        )
    names = {
        "key_id": naming.label("key-id"),
        "key": asked.key_id or naming.label("key-id"),
        "key_type": naming.label("key-type"),
        "issuer_id": naming.label("issuer-id"),
        "set_team": naming.assignment("key-type", "team"),
        "set_individual": naming.assignment("key-type", "individual"),
        "measured": f" (measured: within {abs(skew):.0f} s, so unlikely)" if skew is not None else "",
    }
    if asked.key_type == "individual":
        headline = text.UNAUTHORIZED_HEADLINE_INDIVIDUAL
        causes = [text.CAUSE_WRONG_KEY_ID, text.CAUSE_TEAM_AS_INDIVIDUAL, text.CAUSE_REVOKED, text.CAUSE_CLOCK]
    else:
        headline = text.UNAUTHORIZED_HEADLINE_TEAM
        causes = [
            text.CAUSE_WRONG_ISSUER,
            text.CAUSE_WRONG_KEY_ID,
            text.CAUSE_REVOKED,
            text.CAUSE_INDIVIDUAL_AS_TEAM,
            text.CAUSE_CLOCK,
        ]
    tried = f" {asked.attempts} times, each with a freshly signed token" if asked.attempts > 1 else ""
    message = text.UNAUTHORIZED.format(service=service, code=code, tried=tried, headline=headline.format(**names))
    listed = "\n".join(f"{n}. {cause.format(**names)}" for n, cause in enumerate(causes, 1))
    return ApiError(message, details=f"Likely causes, most likely first:\n{listed}\nApple said: {said}", title=title)


def explain_unreachable(kind: str, asked: Asked, naming: Naming, attempts: int = 1) -> UnreachableError:
    url_setting = naming.label(asked.setting)
    fix = text.UNREACHABLE_FIX[kind].format(url_setting=url_setting, service=asked.service)
    tried = f" ({attempts} attempts)" if attempts > 1 else ""
    url = quote_foreign(asked.url)
    return UnreachableError(
        text.UNREACHABLE.format(service=asked.service, url=url, what=text.UNREACHABLE_WHAT[kind], tried=tried, fix=fix),
        details=text.UNREACHABLE_CHECK_DETAILS.format(
            set_no_verify=naming.assignment("verify", "false"), host=quote_foreign(urlsplit(asked.url).netloc or url)
        ),
        title=f"{asked.service} unreachable",
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


def explain_api_reply(reply: Reply, asked: Asked, method: str, naming: Naming, clock: Callable[[], float]) -> ApiError:
    """An answer to ``asc-token api`` that is not a success.

    401, 429, 5xx, redirects, proxies and the agreements 403 are explained as the verification
    explains them; other 4xx are about the request itself: what was asked, and what Apple points at.
    """
    code = error_code(reply)
    if not (400 <= reply.status < 500) or reply.status in (401, 429) or is_agreements_code(code):
        return explain_reply(reply, asked, naming, clock)
    if not is_apple_json(reply):
        return explain_reply(reply, asked, naming, clock)
    fields = {
        "service": asked.service,
        "status": reply.status,
        "code": code or "",
        "asked": f"{method} {quote_foreign(asked.url)}",
        "key_id": naming.label("key-id"),
    }
    details = f"Apple said:\n{apple_said_all(reply)}"
    title = f"{asked.service} rejected the request"
    if reply.status == 403:
        template = text.FORBIDDEN_REQUEST
    elif reply.status == 404:
        template = text.NOT_FOUND
    else:
        errors = apple_errors(reply)
        where = _source(errors[0]) if errors else ""
        fields["pointed"] = f" ({where})" if where else ""
        template = text.REQUEST_REFUSED
    return ApiError(" ".join(template.format(**fields).split()), details=details, title=title)


def explain_api_unreachable(
    kind: str, asked: Asked, method: str, naming: Naming, attempts: int = 1
) -> UnreachableError:
    """No answer to ``asc-token api``: as the verification says, with what it means for the request."""
    error = explain_unreachable(kind, asked, naming, attempts)
    template = text.UNREACHABLE_GET if method == "GET" else text.UNREACHABLE_WRITE
    return UnreachableError(
        error.message, details=template.format(service=asked.service, method=method), title=error.title
    )


def explain_api_unfinished(reason: str, method: str, url: str) -> ApiError:
    """An answer that could not be used as it came: a page cut off, a links.next off the API host, a loop."""
    return ApiError(
        f"The answer to {method} {quote_foreign(url, 300)} could not be used: {reason}",
        details="Nothing was printed, so no partial result can be mistaken for the whole.",
    )
