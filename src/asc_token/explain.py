"""What an answer means for the user, as one error naming the setting to fix.

The cause is detected here and its template (messages.py) filled in. Every setting is named the
way the user spells it (:class:`records.Naming`), and every text that came from the server is
passed through :func:`redact.quote_foreign` first.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from . import messages as text
from .apis import APP_STORE_CONNECT, Api
from .errors import ApiError, NotAppleError, UnreachableError
from .inputs import key_file_mismatch
from .lifetimes import SKEW_TOLERANCE_SECONDS, describe_duration
from .redact import quote_foreign

if TYPE_CHECKING:
    from .records import Credentials, Naming
    from .transport import Reply

AGREEMENTS_CODE = "FORBIDDEN.REQUIRED_AGREEMENTS_MISSING_OR_EXPIRED"
# What a message says when Apple's answer has no code of its own.
_DEFAULT_CODES = {401: "NOT_AUTHORIZED", 403: "FORBIDDEN", 429: "RATE_LIMIT_EXCEEDED"}


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
    # The setting that chose the URL, for proxy and wrong-URL advice. "notary-url": the notary service
    # (App Store Connect's, whatever the API), which answers a key it does not accept in plain text, not JSON.
    setting: str = "api-url"
    key_file: str = ""  # the key's path, whose name AuthKey_<ID>.p8 may say which key it is
    token_given: bool = False  # ASC_TOKEN sent as given: no key here to sign another

    @classmethod
    def about(cls, url: str, credentials: Credentials, **asked: Any) -> Asked:
        """What is asked with these credentials: their key type, API, key ID and key file, copied in one place."""
        key, key_file, given = credentials.key_id, credentials.key.path or "", credentials.key.given is not None
        return cls(
            url, credentials.key_type, credentials.api, key_id=key, key_file=key_file, token_given=given, **asked
        )

    @property
    def service(self) -> str:
        return APP_STORE_CONNECT.service if self.setting == "notary-url" else self.api.service


def apple_errors(reply: Reply) -> List[Mapping[str, Any]]:
    body = reply.json
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    return []


def is_apple_json(reply: Reply) -> bool:
    body = reply.json
    return isinstance(body, dict) and (isinstance(body.get("errors"), list) or "data" in body)


def summarise_body(reply: Reply) -> str:
    """One line about a body that is not Apple's JSON: never the body itself."""
    size = f"{len(reply.body)}{'+' if reply.truncated else ''}"
    title = _html_title(reply.body[: 64 * 1024].decode("utf-8", errors="replace"))
    shown = f', page title "{quote_foreign(title, 80)}"' if title else ""
    return describe_body(reply.header("content-type"), size) + shown


def describe_body(content_type: str, size: str) -> str:
    """A body as 'a text/csv body of 12 bytes', from its Content-Type and its size ('': not known), never itself."""
    media = quote_foreign(content_type.split(";")[0] or "unknown type", 60)
    article = "an" if media[:1].lower() in "aeiou" else "a"
    return f"{article} {media} body" + (f" of {size} bytes" if size else "")


def _html_title(text: str) -> str:
    # find(), not a regex: linear whatever the page holds.
    lower = text.lower()
    start = lower.find("<title")
    opened = lower.find(">", start) if start >= 0 else -1
    end = lower.find("</title", opened) if opened >= 0 else -1
    return text[opened + 1 : end] if end > opened >= 0 else ""


def apple_said(reply: Reply, most: int = 1) -> str:
    """Apple's ``errors[]`` (at most ``most``; several: one per line), each with its status, code,
    title, detail and where it points; a body that is not Apple's JSON is summarised instead."""
    errors = apple_errors(reply)
    if not errors:
        return summarise_body(reply)
    lines = []
    for error in errors[:most]:
        status_code = " ".join(str(error.get(name)) for name in ("status", "code") if error.get(name))
        words = " - ".join(str(error.get(name)) for name in ("title", "detail") if error.get(name))
        where = _source(error)
        line = ": ".join(part for part in (status_code, words) if part) + (f" (source: {where})" if where else "")
        lines.append(quote_foreign(line, 600) or "an error with no status, code, title or detail")
    more = [f"(+{len(errors) - most} more errors)"] if len(errors) > most else []
    return " ".join(lines + more) if most == 1 else "\n".join([f"- {line}" for line in lines] + more)


def error_code(reply: Reply) -> Optional[str]:
    errors = apple_errors(reply)
    code = errors[0].get("code") if errors else None  # "code": null is no code, never "None"
    return None if code is None else quote_foreign(code, 100) or None


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


def explain_reply(reply: Reply, asked: Asked, naming: Naming, clock: Callable[[], float]) -> ApiError:
    """The error for an answer that is not a success: the template for its cause, filled in."""
    service, status, code = asked.service, reply.status, error_code(reply)
    skew = measure_skew(reply, clock)
    fields = {
        "service": service,
        "status": status,
        "code": code or _DEFAULT_CODES.get(status, ""),
        "tried": f" after {asked.attempts} attempts" if asked.attempts > 1 else "",
        "url": quote_foreign(asked.url),
        "url_setting": naming.label(asked.setting),
        "key_id": naming.label("key-id"),
        "key": asked.key_id or naming.label("key-id"),
        "key_type": naming.label("key-type"),
        "issuer_id": naming.label("issuer-id"),
        "set_team": naming.assignment("key-type", "team"),
        "set_individual": naming.assignment("key-type", "individual"),
        "measured": f" (measured: within {abs(skew):.0f} s, so unlikely)" if skew is not None else "",
    }
    elsewhere, rejected = f"Something between the runner and {service} answered", f"{service} rejected the request"
    if 300 <= status < 400:
        location = quote_foreign(reply.header("location") or "nothing", 200)
        return NotAppleError(
            text.REDIRECTED.format(**fields), details=f"The redirect pointed at {location}.", title=elsewhere
        )
    if not is_apple_json(reply) and not (asked.setting == "notary-url" and status in (401, 403)):
        message = text.PROXY_PAGE.format(**fields, body=summarise_body(reply))
        return NotAppleError(message, details=f"The request went to {fields['url']}.", title=elsewhere)
    said = apple_said(reply)
    details = f"Apple said: {said}"
    if status == 401 and skew is not None and abs(skew) > SKEW_TOLERANCE_SECONDS:
        direction = "ahead of" if skew < 0 else "behind"
        message = text.CLOCK_SKEW.format(**fields, skew=describe_duration(skew), direction=direction)
        details = text.CLOCK_SKEW_DETAILS.format(service=service, seconds=f"{abs(skew):.0f}", said=said)
    elif status == 401:
        individual = asked.key_type == "individual"
        headline = text.UNAUTHORIZED_HEADLINE_INDIVIDUAL if individual else text.UNAUTHORIZED_HEADLINE_TEAM
        causes: Tuple[str, ...] = text.UNAUTHORIZED_CAUSES_INDIVIDUAL if individual else text.UNAUTHORIZED_CAUSES_TEAM
        # The file's name is local evidence, so it goes first: Apple's 401 says nothing about which key.
        mismatch = key_file_mismatch(asked.key_id, asked.key_file)
        if mismatch:
            fields.update(
                file_key_id=mismatch[0],
                key_file=mismatch[1],
                set_key_id=naming.assignment("key-id", mismatch[0]),
            )
            headline, causes = text.UNAUTHORIZED_HEADLINE_KEY_FILE, (text.CAUSE_KEY_FILE_NAME, *causes)
        if asked.token_given:  # no key, no IDs set: only another token (or the key) changes Apple's answer
            headline, causes = text.UNAUTHORIZED_HEADLINE_GIVEN, text.UNAUTHORIZED_CAUSES_GIVEN
        again = "the same token" if asked.token_given else "a freshly signed token"
        tried = f" {asked.attempts} times, each with {again}" if asked.attempts > 1 else ""
        message = text.UNAUTHORIZED.format(**{**fields, "tried": tried}, headline=headline.format(**fields))
        listed = "\n".join(f"{n}. {cause.format(**fields)}" for n, cause in enumerate(causes, 1))
        details = f"Likely causes, most likely first:\n{listed}\n{details}"
    elif status == 403 and is_agreements_code(code):
        message = text.AGREEMENTS.format(**fields)
    elif status == 403:
        message = text.FORBIDDEN_ROLE.format(
            **fields,
            purpose=asked.purpose,
            needed=f", which {asked.needed_for}" if asked.needed_for else "",
            grant=asked.grant,
            way_out=asked.way_out or f"set {naming.assignment('verify', 'false')} if it only needs other resources",
        )
    elif status == 429:
        message = text.RATE_LIMITED.format(**fields)
    elif status >= 500:
        message, details = text.SERVER_TROUBLE.format(**fields), f"The last answer was: {said}"
    else:
        message = " ".join(text.OTHER_STATUS.format(**fields).split())
    return ApiError(message, details=details, title=rejected)


def is_agreements_code(code: Optional[str]) -> bool:
    """Apple's code for "the Account Holder has not accepted the latest agreement", with any suffix."""
    return bool(code) and (code == AGREEMENTS_CODE or str(code).startswith(AGREEMENTS_CODE + "."))


def explain_unreachable(kind: str, asked: Asked, naming: Naming, attempts: int = 1) -> UnreachableError:
    bad_answer = kind in text.BAD_ANSWER_KINDS
    what, fix = (text.BAD_ANSWER_KINDS if bad_answer else text.UNREACHABLE_KINDS)[kind]
    fix = fix.format(url_setting=naming.label(asked.setting), service=asked.service)
    tried = f" ({attempts} attempts)" if attempts > 1 else ""
    url = quote_foreign(asked.url)
    return UnreachableError(
        (text.BAD_ANSWER if bad_answer else text.UNREACHABLE).format(
            service=asked.service, url=url, what=what, tried=tried, fix=fix
        ),
        details=text.UNREACHABLE_CHECK_DETAILS.format(
            set_no_verify=naming.assignment("verify", "false"), host=quote_foreign(urlsplit(asked.url).netloc or url)
        ),
        title=f"{asked.service} sent an unreadable answer" if bad_answer else f"{asked.service} unreachable",
    )


# `asc-token api`: the same explanations, about the request the user made rather than the check.


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
    about_the_request = 400 <= reply.status < 500 and reply.status not in (401, 429) and not is_agreements_code(code)
    if not about_the_request or not is_apple_json(reply):
        return explain_reply(reply, asked, naming, clock)
    fields = {
        "service": asked.service,
        "status": reply.status,
        "code": code or "",
        "asked": f"{method} {quote_foreign(asked.url)}",
        "key_id": naming.label("key-id"),
    }
    errors = apple_errors(reply)
    where = _source(errors[0]) if errors else ""
    fields["pointed"] = f" ({where})" if where else ""  # REQUEST_REFUSED: what Apple points at
    template = {403: text.FORBIDDEN_REQUEST, 404: text.NOT_FOUND}.get(reply.status, text.REQUEST_REFUSED)
    details, title = f"Apple said:\n{apple_said(reply, most=10)}", f"{asked.service} rejected the request"
    return ApiError(" ".join(template.format(**fields).split()), details=details, title=title)


def explain_api_unreachable(
    kind: str, asked: Asked, method: str, naming: Naming, attempts: int = 1
) -> UnreachableError:
    """No answer to ``asc-token api``: as the verification says, with what it means for the request."""
    error = explain_unreachable(kind, asked, naming, attempts)
    template = text.UNREACHABLE_GET if method == "GET" else text.UNREACHABLE_WRITE
    error.details = template.format(service=asked.service, method=method)
    return error


def explain_api_unfinished(reason: str, method: str, url: str) -> ApiError:
    """An answer that could not be used as it came: a page cut off, a links.next off the API host, a loop."""
    return ApiError(
        f"The answer to {method} {quote_foreign(url, 300)} could not be used: {reason}",
        details="Nothing was printed, so no partial result can be mistaken for the whole.",
    )
