"""Prove the credentials work with one ``GET /v1/apps?limit=1``, explaining any failure.

The HTTP session, clock, sleep and randomness are injected, so tests drive every path against
the local stand-in without waiting. ``requests`` is imported only when a request is made.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Protocol, cast

from . import __version__
from .errors import NetworkError, VerificationError

USER_AGENT = f"asc-token-action/{__version__}"
VERIFY_PATH = "/v1/apps?limit=1"
SKEW_TOLERANCE_SECONDS = 60


class Session(Protocol):
    def get(self, url: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_seconds: float = 60.0  # the whole verification, sleeps and a hanging server included
    backoff_base: float = 1.0
    backoff_cap: float = 8.0
    retry_after_cap: float = 20.0


@dataclass(frozen=True)
class Labels:
    """How the user spells the inputs a verification failure points at."""

    key_id: str = "`key-id`"
    issuer_id: str = "`issuer-id`"
    key_type: str = "`key-type`"
    private_key: str = "`private-key`"
    scope: str = "`scope`"
    api_url: str = "`api-url`"


@dataclass(frozen=True)
class VerificationResult:
    status: int
    app_count: Optional[int]
    rate_limit_remaining: Optional[int]
    rate_limit_limit: Optional[int]
    attempts: int
    clock_skew_seconds: Optional[float] = None


@dataclass
class _Attempt:
    response: Optional[Any] = None
    error: Optional[NetworkError] = None


def verify_credentials(
    token: str,
    api_url: str,
    *,
    key_type: str,
    session: Optional[Session] = None,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    policy: RetryPolicy = RetryPolicy(),
    labels: Labels = Labels(),
    log: Callable[[str], None] = lambda message: None,
) -> VerificationResult:
    url = api_url.rstrip("/") + VERIFY_PATH
    http = session if session is not None else _default_session()
    headers = {
        "Authorization": f"Bearer {token}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }
    deadline = monotonic() + policy.total_seconds
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - monotonic()
        timeout = (min(policy.connect_timeout, remaining), min(policy.read_timeout, remaining))
        outcome = _send(http, url, headers, timeout)
        retry_in: Optional[float] = None
        if outcome.error is not None:
            if outcome.error.kind not in ("reset", "timeout"):
                raise outcome.error
            retry_in = _backoff(policy, attempt, jitter)
            problem = {"reset": "connection reset", "timeout": "timed out"}[outcome.error.kind]
        else:
            response: Any = outcome.response
            status = int(response.status_code)
            if status < 400:
                return _success(response, status, attempt, clock)
            if status == 429:
                retry_in = _retry_after(response, policy) or _backoff(policy, attempt, jitter)
            elif status >= 500:
                retry_in = _backoff(policy, attempt, jitter)
            else:
                raise explain_rejection(response, url, key_type, clock, labels)
            problem = f"HTTP {status}"
        out_of_time = monotonic() + retry_in >= deadline - 1
        if attempt >= policy.max_attempts or out_of_time:
            if outcome.error is not None:
                raise outcome.error
            raise explain_rejection(outcome.response, url, key_type, clock, labels, attempt)
        log(f"App Store Connect: {problem} on attempt {attempt}; retrying in {retry_in:.1f} s.")
        sleep(retry_in)


def _default_session() -> Session:
    import requests  # deferred: a mint-only run never pays for importing it

    session = requests.Session()
    session.trust_env = True  # honour HTTPS_PROXY / NO_PROXY on corporate runners
    return cast(Session, session)


def _send(http: Session, url: str, headers: Mapping[str, str], timeout: Any) -> _Attempt:
    try:
        return _Attempt(response=http.get(url, headers=headers, timeout=timeout, allow_redirects=False))
    except Exception as exc:
        kind = classify_network_error(exc)
        if kind is None:
            raise
        return _Attempt(error=_network_error(kind, url))


def classify_network_error(exc: BaseException) -> Optional[str]:
    """'refused', 'dns', 'timeout', 'reset', 'tls' or None for an error that is not the network's."""
    chain: List[BaseException] = []
    seen: Optional[BaseException] = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        inner = [a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else (inner[0] if inner else seen.__context__)
    names = " ".join(type(e).__name__ for e in chain)
    text = " ".join(str(e) for e in chain)
    if "Timeout" in names or "timed out" in text:
        return "timeout"
    if "NameResolution" in names or "gaierror" in names or "Name or service not known" in text:
        return "dns"
    if "ConnectionRefused" in names or "Connection refused" in text:
        return "refused"
    if "SSL" in names or "CERTIFICATE" in text:
        return "tls"
    if any(
        n in names
        for n in ("ConnectionReset", "RemoteDisconnected", "ProtocolError", "ConnectionAborted", "ChunkedEncoding")
    ):
        return "reset"
    if "ConnectionError" in names:
        return "reset"
    return None


def _network_error(kind: str, url: str) -> NetworkError:
    what = {
        "refused": "the connection was refused",
        "dns": "the host name could not be resolved (DNS)",
        "timeout": "the request timed out",
        "reset": "the connection was reset",
        "tls": "the TLS handshake failed",
    }[kind]
    fix = {
        "refused": "check `api-url` and any proxy; nothing is listening there",
        "dns": "check `api-url` and the runner's DNS or proxy settings",
        "timeout": "App Store Connect or a proxy did not answer in time; re-run the job, and "
        "check https://developer.apple.com/system-status/",
        "reset": "a proxy or firewall may be cutting the connection; re-run the job",
        "tls": "a proxy may be intercepting TLS; set REQUESTS_CA_BUNDLE to its CA certificate",
    }[kind]
    return NetworkError(
        f"Could not reach App Store Connect at {url}: {what}; {fix}.",
        url=url,
        kind=kind,
        details=(
            "The token itself was minted; only the check that it works could not run. Set "
            "`verify: false` to skip the check on runners without access to "
            "api.appstoreconnect.apple.com."
        ),
    )


def _success(response: Any, status: int, attempts: int, clock: Callable[[], float]) -> VerificationResult:
    body = _json(response)
    total = None
    if isinstance(body, dict):
        paging = body.get("meta", {}).get("paging", {}) if isinstance(body.get("meta"), dict) else {}
        if isinstance(paging, dict) and isinstance(paging.get("total"), int):
            total = paging["total"]
        elif isinstance(body.get("data"), list):
            total = len(body["data"])
    limit, remaining = parse_rate_limit(response.headers.get("X-Rate-Limit", ""))
    return VerificationResult(
        status=status,
        app_count=total,
        rate_limit_remaining=remaining,
        rate_limit_limit=limit,
        attempts=attempts,
        clock_skew_seconds=measure_skew(response, clock),
    )


def parse_rate_limit(header: str) -> tuple[Optional[int], Optional[int]]:
    """``user-hour-lim:3600;user-hour-rem:3599;`` -> (3600, 3599)."""
    values = dict(re.findall(r"([a-z-]+):(\d+)", header or ""))
    limit, remaining = values.get("user-hour-lim"), values.get("user-hour-rem")
    return (int(limit) if limit else None, int(remaining) if remaining else None)


def measure_skew(response: Any, clock: Callable[[], float]) -> Optional[float]:
    """Server time minus runner time, in seconds, from the response's ``Date`` header."""
    date = response.headers.get("Date") if response is not None else None
    if not date:
        return None
    try:
        server = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return server - clock()


def describe_duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _retry_after(response: Any, policy: RetryPolicy) -> Optional[float]:
    raw = response.headers.get("Retry-After", "")
    if raw.strip().isdigit():
        return min(float(raw.strip()), policy.retry_after_cap)
    return None


def _backoff(policy: RetryPolicy, attempt: int, jitter: Callable[[], float]) -> float:
    base = min(policy.backoff_cap, policy.backoff_base * 2.0 ** (attempt - 1))
    return base * (0.5 + jitter() / 2)  # "equal jitter": never zero, never above the cap


def _json(response: Any) -> Any:
    try:
        return json.loads(response.text)
    except (ValueError, TypeError):
        return None


def apple_errors(response: Any) -> List[Mapping[str, str]]:
    body = _json(response)
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    return []


def summarise_body(response: Any) -> str:
    """One line about a body that is not Apple's JSON: never the body itself."""
    content_type = response.headers.get("Content-Type", "unknown type")
    text = response.text or ""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    shown = f', page title "{" ".join(title.group(1).split())[:80]}"' if title else ""
    return f"a {content_type.split(';')[0]} body of {len(text)} characters{shown}, not App Store Connect's JSON"


def explain_rejection(
    response: Any,
    url: str,
    key_type: str,
    clock: Callable[[], float],
    labels: Labels,
    attempts: int = 1,
) -> VerificationError:
    status = int(response.status_code)
    errors = apple_errors(response)
    first = errors[0] if errors else {}
    code = str(first.get("code", "")) or None
    said = f"{code}: {first.get('title', '')} {first.get('detail', '')}".strip() if errors else summarise_body(response)
    skew = measure_skew(response, clock)
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    if status == 401:
        return _explain_401(url, code, said, skew, key_type, labels)
    if status == 403:
        return VerificationError(
            f"App Store Connect answered 403 {code or 'FORBIDDEN'}: the key is valid, but its role "
            f"may not list apps; give key {labels.key_id} an App Manager, Developer or Admin role, "
            "or set `verify: false` if it only needs other resources.",
            url=url,
            status=status,
            code=code,
            details=f"Apple said: {said}",
        )
    if status == 429:
        return VerificationError(
            f"App Store Connect answered 429 {code or 'RATE_LIMIT_EXCEEDED'}{tried}: this key used "
            "its hourly request quota; wait for the hour to roll over, or use another key for "
            "this pipeline.",
            url=url,
            status=status,
            code=code,
            details=f"Apple said: {said}",
        )
    if status >= 500:
        return VerificationError(
            f"App Store Connect answered {status}{tried}: the service is having trouble, not your "
            "credentials; re-run the job later and check https://developer.apple.com/system-status/.",
            url=url,
            status=status,
            code=code,
            details=f"The last answer was {said}.",
        )
    return VerificationError(
        f"App Store Connect answered {status} {code or ''} for {url}: check {labels.api_url}.".replace("  ", " "),
        url=url,
        status=status,
        code=code,
        details=f"Apple said: {said}",
    )


def _explain_401(
    url: str, code: Optional[str], said: str, skew: Optional[float], key_type: str, labels: Labels
) -> VerificationError:
    if skew is not None and abs(skew) > SKEW_TOLERANCE_SECONDS:
        direction = "ahead of" if skew < 0 else "behind"
        return VerificationError(
            f"App Store Connect answered 401 {code or 'NOT_AUTHORIZED'}: the runner's clock is "
            f"{describe_duration(skew)} {direction} App Store Connect's, so the token looks "
            "expired or not yet valid; fix the runner's time (enable NTP) and re-run.",
            url=url,
            status=401,
            code=code,
            details=(
                f"App Store Connect's Date header and the runner's clock differ by "
                f"{abs(skew):.0f} seconds. Tokens live at most 20 minutes, so Apple rejects them "
                f"when the clocks disagree by more than a minute or so.\nApple said: {said}"
            ),
        )
    other = "individual" if key_type == "team" else "team"
    causes = [
        f"{labels.issuer_id} is not the issuer of this key (copy the Issuer ID shown above the "
        "team keys list in App Store Connect > Users and Access > Integrations)",
        f"{labels.key_id} does not match the private key (the ID is in the file name AuthKey_<KEYID>.p8)",
        "the key was revoked in App Store Connect (create a new key and update the secrets)",
        f"this is an {other} key but {labels.key_type} is {key_type} (set {labels.key_type}: {other})",
        "the runner's clock is off"
        + (f" (measured: within {abs(skew):.0f} s, so unlikely)" if skew is not None else ""),
    ]
    return VerificationError(
        f"App Store Connect answered 401 {code or 'NOT_AUTHORIZED'}: it did not accept the "
        f"credentials; most often {labels.issuer_id} is not the issuer of key {labels.key_id} "
        "(likely causes below, most likely first).",
        url=url,
        status=401,
        code=code,
        details="Likely causes, most likely first:\n"
        + "\n".join(f"{n}. {cause}" for n, cause in enumerate(causes, 1))
        + f"\nApple said: {said}",
    )
