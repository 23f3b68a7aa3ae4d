"""Send one App Store Connect request: retries, deadlines and bounded reading, nothing else.

The HTTP session, clock, sleep and randomness are injected, so tests drive every path against
the local stand-in without waiting. ``requests`` is imported only when a request is made, so a
mint-only run never pays for it. What the answers mean is :mod:`explain`'s job.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Protocol, Tuple, cast

from . import __version__
from .errors import InputError
from .redact import shown
from .urls import proxy_for

USER_AGENT = f"asc-token-action/{__version__}"
MAX_BODY_BYTES = 4 * 1024 * 1024  # Apple's largest pages are well under this
LOW_RATE_LIMIT = 100  # fewer requests left this hour than this: said in the log
# A body streamed to a file (a report) has a bound of its own, in size and in time.
MAX_DOWNLOAD_BYTES = 2 * 1024**3
DOWNLOAD_SECONDS = 15 * 60
# Given an answer's status and headers: the file to stream its body to, or None to read it here.
Download = Callable[[int, Mapping[str, str]], Optional[IO[bytes]]]


class Session(Protocol):
    def request(self, method: str, url: str, **kwargs: Any) -> Any: ...


class BearerTokens(Protocol):
    def bearer(self, *, after_401: bool = False) -> str:
        """The token for the next attempt; after a 401, a newly signed one."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_seconds: float = 60.0  # the whole exchange: sleeps, a hanging or trickling server included
    backoff_base: float = 1.0
    backoff_cap: float = 8.0
    retry_after_cap: float = 20.0
    # Apple sometimes answers 401 to a valid token once; fastlane and codemagic re-sign and retry.
    unauthorized_retries: int = 2
    unauthorized_backoff: float = 1.0
    # False for a POST: after a timeout, a reset or a 5xx it may already have been carried out,
    # and sending it again could create a second resource. 401 and 429 are refusals: retried.
    resend_when_uncertain: bool = True


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, read and bounded; headers by lower-case name."""

    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    attempts: int = 1
    truncated: bool = False
    streamed: Optional[int] = None  # the bytes written to the download's file, when the body went there

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @cached_property
    def json(self) -> Any:
        """The body as JSON, parsed once for every reader; None when cut off or not JSON."""
        if self.truncated:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, TypeError, RecursionError):
            return None


_RETRIED_NO_ANSWERS = {"reset": "connection reset", "timeout": "timed out"}  # as said in the log


class SinkError(Exception):
    """The file a body was streamed to could not be written (a full disk): no fault of the network."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or type(error).__name__)
        self.error = error


class NoAnswerError(Exception):
    """No usable HTTP answer; ``kind`` is refused, dns, tls, timeout, reset, proxy-auth, or decode (a body
    that could not be read)."""

    def __init__(self, kind: str, attempts: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.attempts = attempts


@dataclass
class Transport:
    session: Optional[Session] = None
    policy: RetryPolicy = RetryPolicy()
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    log: Callable[[str], None] = lambda message: None
    service: str = "App Store Connect"  # who is asked, in the retry log lines
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)  # the proxy settings
    open: Callable[[Mapping[str, str]], Session] = field(default=lambda env: default_session(env))  # at first use

    def send(
        self,
        method: str,
        url: str,
        tokens: BearerTokens,
        *,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,  # names as written here: Accept, User-Agent
        download: Optional[Download] = None,
    ) -> Reply:
        """The final answer after bounded retries (429, 5xx, resets, timeouts, a spurious 401).

        Any status comes back as a :class:`Reply`; only "no answer at all" raises :class:`NoAnswerError`.
        ``headers`` add to or replace the defaults (never Authorization); ``download`` may take a body.
        """
        if self.session is None:
            self.session = self.open(self.env)  # one connection for every request of a command
        policy = self.policy
        deadline = self.monotonic() + policy.total_seconds
        defaults = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if body is not None:
            defaults["Content-Type"] = "application/json"
        attempt, unauthorized, fresh = 0, 0, False
        while True:
            attempt += 1
            sent = {**defaults, **(headers or {}), "Authorization": f"Bearer {tokens.bearer(after_401=fresh)}"}
            reply: Optional[Reply] = None
            no_answer = ""  # its kind, when no answer came
            try:
                request = {"method": method, "url": url, "headers": sent, "data": body}
                reply = self._exchange(request, deadline, attempt, download)
            except NoAnswerError as error:
                if error.kind not in _RETRIED_NO_ANSWERS:
                    raise
                no_answer = error.kind
            status = reply.status if reply is not None else 0
            fresh = status == 401 and unauthorized < policy.unauthorized_retries
            if reply is None:
                problem, wait = _RETRIED_NO_ANSWERS[no_answer], self._backoff(attempt)
            elif fresh:
                unauthorized += 1
                problem, wait = "401", policy.unauthorized_backoff * unauthorized
            elif status == 429:
                problem, wait = "HTTP 429", self._retry_after(reply) or self._backoff(attempt)
            elif status >= 500:
                problem, wait = f"HTTP {status}", self._backoff(attempt)
            else:
                return reply
            uncertain = reply is None or status >= 500
            if (
                attempt >= policy.max_attempts
                or self.monotonic() + wait >= deadline - 1
                or (uncertain and not policy.resend_when_uncertain)
            ):
                if reply is None:
                    raise NoAnswerError(no_answer, attempt)
                return reply
            action = "signing a new token and retrying" if fresh else "retrying"
            left = few_requests_left(reply)
            quota = f" {left} for this key." if left else ""
            self.log(f"{self.service}: {problem} on attempt {attempt}; {action} in {wait:.1f} s.{quota}")
            self.sleep(wait)

    def _exchange(
        self, request: Mapping[str, Any], deadline: float, attempt: int, download: Optional[Download] = None
    ) -> Reply:
        """One attempt of ``request`` (requests' method, url, headers and data)."""
        assert self.session is not None
        remaining = max(0.1, deadline - self.monotonic())
        timeout = (min(self.policy.connect_timeout, remaining), min(self.policy.read_timeout, remaining))
        try:
            proxy = proxy_for(request["url"], self.env)
            response = self.session.request(
                **request,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
                proxies={"https": proxy, "http": proxy} if proxy else {},
            )
            headers_in = {str(name).lower(): str(value) for name, value in response.headers.items()}
            status = int(response.status_code)
            sink = download(status, headers_in) if download is not None else None
            try:
                if sink is None:
                    chunks: List[bytes] = []
                    truncated = self._read_body(response, deadline, chunks.append, MAX_BODY_BYTES)
                    return Reply(status, headers_in, b"".join(chunks), attempt, truncated)
                _on_disk(lambda: (sink.seek(0), sink.truncate()))  # an earlier attempt's part
                later = max(deadline, self.monotonic() + DOWNLOAD_SECONDS)
                truncated = self._read_body(response, later, partial(_on_disk, sink.write), MAX_DOWNLOAD_BYTES)
                return Reply(status, headers_in, b"", attempt, truncated, streamed=int(_on_disk(sink.tell)))
            finally:
                close = getattr(response, "close", None)
                if callable(close):
                    close()
        except SinkError:
            raise  # its OSError is the disk's, whatever its class says
        except Exception as exc:
            kind = classify_network_error(exc)
            if kind is None:
                raise
            raise NoAnswerError(kind, attempt) from None

    def _read_body(self, response: Any, deadline: float, write: Callable[[bytes], object], limit: int) -> bool:
        """Whether the body was cut at ``limit`` bytes; hands them to ``write``, never past the deadline (a
        server may trickle a byte a second)."""
        read1 = getattr(getattr(response, "raw", None), "read1", None)
        source: Iterator[bytes]
        if callable(read1):
            # iter_content blocks until a whole chunk has arrived; read1 returns after one network
            # read, so the deadline below is checked however slowly the bytes come.
            source = iter(lambda: bytes(read1(16 * 1024, decode_content=True)), b"")
        elif callable(getattr(response, "iter_content", None)):
            source = response.iter_content(16 * 1024)
        else:
            source = iter([bytes(response.content)])
        size = 0
        for chunk in source:
            write(chunk[: limit - size])
            size += len(chunk)
            if size >= limit:
                return True
            if self.monotonic() > deadline:
                raise TimeoutError("the body was still arriving at the deadline")
        return False

    def _retry_after(self, reply: Reply) -> Optional[float]:
        raw = reply.header("retry-after").strip()
        return min(float(raw), self.policy.retry_after_cap) if re.fullmatch(r"[0-9]{1,6}", raw) else None

    def _backoff(self, attempt: int) -> float:
        base = min(self.policy.backoff_cap, self.policy.backoff_base * 2.0 ** (attempt - 1))
        return base * (0.5 + self.jitter() / 2)  # "equal jitter": never zero, never above the cap


def _on_disk(action: Callable[..., Any], *args: Any) -> Any:
    """``action`` on a download's file, whose OSErrors (a full disk) are told apart from the network's."""
    try:
        return action(*args)
    except OSError as exc:
        raise SinkError(exc) from None


def parse_rate_limit(header: str) -> tuple[Optional[int], Optional[int]]:
    """``user-hour-lim:3600;user-hour-rem:3599;`` -> (3600, 3599); linear, bounded."""
    values: Dict[str, int] = {}
    for part in header[:512].split(";"):
        name, _, number = part.strip().partition(":")
        if name in ("user-hour-lim", "user-hour-rem") and re.fullmatch(r"[0-9]{1,9}", number):
            values[name] = int(number)
    return values.get("user-hour-lim"), values.get("user-hour-rem")


def default_session(env: Mapping[str, str]) -> Session:
    """A requests session that reads nothing from the environment by itself.

    requests' own ``trust_env`` would apply ``http_proxy`` to a loopback ``http://`` URL (the
    token in clear text to the proxy) and a ``.netrc`` login in place of the bearer token; the
    proxy is decided per request by :func:`urls.proxy_for`, and the CA bundle settings users
    are told to use are honoured here.
    """
    import requests  # deferred: a mint-only run never pays for importing it

    class NoRedirects(requests.Session):
        # Never followed; requests would still decode a Location (a non-UTF-8 one raises) to offer it.
        def get_redirect_target(self, resp: Any) -> None:
            return None

    session = NoRedirects()
    session.trust_env = False
    session.verify = ca_bundle(env) or True  # True: requests' own default, its CA certificates
    return cast(Session, session)


CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")  # the first one set is used


def ca_bundle(env: Mapping[str, str]) -> Optional[str]:
    """The CA certificates TLS is checked against, if a setting names them; one that names nothing is
    refused before anything is sent (requests would fail on the first request with an OSError)."""
    variable = next((name for name in CA_BUNDLE_VARIABLES if env.get(name)), None)
    if variable is not None and not os.path.exists(env[variable]):
        raise InputError(
            f"{variable} names {shown(env[variable], path=True)}, which does not exist, so no TLS certificate could "
            f"be checked against it: point {variable} at the CA certificates (a PEM file, such as a proxy's CA "
            "bundle), or unset it."
        )
    return env[variable] if variable is not None else None


def classify_network_error(exc: BaseException) -> Optional[str]:
    """'url', 'refused', 'dns', 'tls', 'decode', 'timeout', 'reset', 'proxy-auth' (a 407 to CONNECT), or None
    for an error that is not the network's.

    requests wraps urllib3, which wraps the socket error: the chain is walked (``reason``,
    ``__cause__``, ``__context__``, an exception argument) and each link tested by class.
    """
    import requests.exceptions
    import urllib3.exceptions

    kinds: Tuple[Tuple[str, Tuple[type, ...]], ...] = (
        # A URL that the HTTP stack cannot use: the settings' checks should have caught it first.
        ("url", (urllib3.exceptions.LocationParseError, requests.exceptions.InvalidURL)),
        ("dns", (socket.gaierror, urllib3.exceptions.NameResolutionError)),
        ("refused", (ConnectionRefusedError,)),
        ("tls", (ssl.SSLError, ssl.CertificateError, requests.exceptions.SSLError)),
        # An answer whose body is not in the Content-Encoding its headers name: a server's (or a proxy's) fault.
        ("decode", (urllib3.exceptions.DecodeError, requests.exceptions.ContentDecodingError)),
        ("timeout", (TimeoutError, socket.timeout, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)),
        # The builtin ConnectionError (reset, aborted, broken pipe) and the HTTP layers' broken exchanges.
        ("reset", (ConnectionError, http.client.HTTPException, urllib3.exceptions.ProtocolError)),
        ("reset", (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)),
    )
    chain = list(_causes(exc))
    # http.client's refused CONNECT: a proxy that wants credentials is not a reset, and asking again will not help.
    if any(isinstance(e, OSError) and _PROXY_AUTH_REFUSED.match(str(e)) for e in chain):
        return "proxy-auth"
    return next((kind for kind, classes in kinds if any(isinstance(e, classes) for e in chain)), None)


_PROXY_AUTH_REFUSED = re.compile(r"Tunnel connection failed: 407\b")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: list[BaseException] = []
    pending = [exc]
    while pending and len(seen) < 20:
        current = pending.pop(0)
        if any(current is known for known in seen):
            continue
        seen.append(current)
        yield current
        linked = (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args[:1])
        pending += [link for link in linked if isinstance(link, BaseException)]


def few_requests_left(reply: Optional[Reply]) -> str:
    """The one wording for a key with few requests left this hour ("42 of 3600 requests left this hour"), or ''."""
    limit, remaining = parse_rate_limit(reply.header("x-rate-limit") if reply is not None else "")
    if remaining is None or remaining >= LOW_RATE_LIMIT:
        return ""
    return f"{remaining}{f' of {limit}' if limit is not None else ''} requests left this hour"
