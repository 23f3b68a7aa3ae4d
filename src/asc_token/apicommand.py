"""``asc-token api``: call App Store Connect with freshly minted tokens, in the spirit of ``gh api``.

    asc-token api [--method GET|POST|PATCH|DELETE] PATH [--paginate] [--input FILE|-] [--include]

The credentials come from the same flags and environment names as the token command. stdout
carries the response JSON and nothing else; logs, ``--include`` headers and errors go to stderr.
Arguments are checked before anything is sent: a bad one is one error naming it, exit status 2.
A request that fails is explained as the verification explains it, exit status 1.

Tokens are re-signed when a request needs one and the current one is close to its expiry (see
:func:`needs_new_token`), so a paginated export that runs for hours never sends an expired token.
"""

from __future__ import annotations

import argparse
import dataclasses
import http
import json
import sys
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from .cli import CliInputs, _Parser, add_platform_flags, add_settings_flags, refuse_extras, settings_flags
from .config import Settings, read_settings
from .errors import ApiError, AscTokenError, InputError
from .explain import (
    Request,
    explain_api_reply,
    explain_api_unfinished,
    explain_api_unreachable,
    explain_reply,
    is_apple_json,
    quote_foreign,
)
from .keys import read_private_key, secret_forms
from .minting import Clock, MintedToken, TokenRequest, mint, scope_allows
from .platforms import PLATFORM_NAMES, Platform, platform_for
from .transport import NoAnswerError, Reply, RetryPolicy, Transport, default_session, parse_rate_limit

METHODS = ("GET", "POST", "PATCH", "DELETE")
REUSE_MARGIN_SECONDS = 60  # one request, with its retries, ends well inside a minute
MAX_PAGES = 10_000  # 2 million items at Apple's largest page size; a bound, not a real limit
MAX_INPUT_BYTES = 4 * 1024 * 1024
LOW_RATE_LIMIT = 100

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def needs_new_token(current: Optional[MintedToken], now: float, lifetime: int) -> bool:
    """Whether the next request needs a newly signed token.

    A token is reused while more than max(60 s, a fifth of its lifetime) of it remain: a default
    20-minute token serves 16 minutes of requests, and a short one (60 s or less) is signed
    afresh for every request, so no request ever leaves with a token about to expire.
    """
    if current is None:
        return True
    return current.expires_at - now < max(REUSE_MARGIN_SECONDS, lifetime / 5)


class TokenSource:
    """The ``tokens(fresh)`` that :meth:`Transport.send` calls before every attempt."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, request: TokenRequest, clock: Clock, mask: Callable[[str], None]
    ) -> None:
        self._key = key
        self._request = request
        self._clock = clock
        self._mask = mask
        self._current: Optional[MintedToken] = None
        self.signed = 0

    def __call__(self, fresh: bool) -> str:
        if fresh or needs_new_token(self._current, self._clock(), self._request.lifetime):
            minted = mint(self._key, self._request, self._clock)
            self._mask(minted.token)  # before it is sent: a server echoing it must meet the mask
            self._current = minted
            self.signed += 1
        assert self._current is not None
        return self._current.token


@dataclass(frozen=True)
class ApiCall:
    """What the user asked for, checked: nothing here has been sent yet."""

    method: str
    path: str
    body: Optional[bytes]
    paginate: bool
    include: bool


def build_api_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="asc-token api",
        description=(
            "Call the App Store Connect API with a freshly minted token and print the response JSON, "
            "and only it, on stdout. PATH is relative to the API URL (/v1/apps?filter[bundleId]=com.example.app) "
            "or a full URL on the same host (as in links.next). Credentials: the same flags and "
            "environment variables as asc-token (ASC_KEY_ID, ASC_ISSUER_ID, ASC_PRIVATE_KEY_PATH or "
            "ASC_PRIVATE_KEY, ...)."
        ),
        epilog=(
            "Exit status: 0 success (2xx); 1 the request failed or App Store Connect could not be "
            "reached (explained on stderr); 2 a bad argument or setting, nothing was sent."
        ),
        allow_abbrev=False,
    )
    parser.add_argument("path", metavar="PATH", help="API path such as /v1/apps, or a full URL on the API host")
    parser.add_argument(
        "-X", "--method", default=None, help="GET (default), POST (default with --input), PATCH or DELETE"
    )
    parser.add_argument(
        "--paginate",
        action="store_true",
        help="follow links.next and print one document whose data holds every page's items "
        "(included without duplicates)",
    )
    parser.add_argument("--input", metavar="FILE", help="send this JSON file as the request body; - reads stdin")
    parser.add_argument(
        "-i",
        "--include",
        action="store_true",
        help="also print each response's status line and headers, to stderr (stdout stays valid JSON)",
    )
    add_settings_flags(parser)
    add_platform_flags(parser)
    return parser


def main(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    stdout: Optional[IO[bytes]] = None,
    stdin: Optional[IO[bytes]] = None,
    clock: Clock = time.time,
    policy: RetryPolicy = RetryPolicy(),
    log: Optional[Callable[[str], None]] = None,
) -> int:
    say = log or _log
    parser = build_api_parser()
    args, extras = parser.parse_known_args(list(argv))
    refuse_extras(parser, extras)
    if args.platform is not None and args.platform not in PLATFORM_NAMES:
        parser.error(f"--platform must be one of {', '.join(PLATFORM_NAMES)}")
    platform = platform_for(env, args.platform)(env, log=say)
    out = stdout if stdout is not None else sys.stdout.buffer
    try:
        call = read_call(args, stdin if stdin is not None else sys.stdin.buffer)
        inputs = ApiInputs(settings_flags(args), env)
        settings = read_settings(inputs)
        url = resolve(call.path, settings.api_url, "PATH", inputs.label("api-url"))
        check_scope(settings, call.method, url, inputs)
    except InputError as error:
        platform.report_error(error)
        return EXIT_USAGE
    try:
        document = run_call(call, url, settings, inputs, platform, clock=clock, policy=policy, log=say)
    except InputError as error:  # the key: read only now, as the token command reads it
        platform.report_error(error)
        return EXIT_USAGE
    except AscTokenError as error:
        platform.report_error(error)
        return EXIT_FAILED
    if document is not None:
        try:
            out.write(render(document, indent=out.isatty()))
            out.flush()
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            return EXIT_FAILED
    return EXIT_OK


class ApiInputs(CliInputs):
    """The token command's settings, without the ones ``api`` does not use (a stray ASC_VERIFY)."""

    IGNORED = ("verify", "checks", "notary-url")

    def get(self, name: str) -> str:
        return "" if name in self.IGNORED else super().get(name)

    def sources(self) -> List[str]:
        return [source for source in super().sources() if source.split(" ", 1)[0] not in self.IGNORED]


def read_call(args: argparse.Namespace, stdin: IO[bytes]) -> ApiCall:
    """The method, PATH and body, checked; raises :class:`InputError` naming the argument."""
    given = args.method
    method = (given if given is not None else ("POST" if args.input is not None else "GET")).strip().upper()
    if method not in METHODS:
        # An empty --method (an unset $METHOD in a script) is refused too, not taken as GET.
        shown = repr(given) if given and len(given) <= 20 and given.isalpha() else "that value"
        raise InputError(f"--method must be one of {', '.join(METHODS)} (any case), not {shown}.")
    path = args.path.strip()
    if not path or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in path) or len(path) > 8000:
        raise InputError(
            "PATH must be an API path like /v1/apps?limit=200 or a full URL on the API host, without "
            "spaces or control characters (encode a space in a query as %20)."
        )
    body = None
    if args.input is not None:
        if method == "GET":
            raise InputError(
                "--input sends a request body, which GET does not take: use --method POST, PATCH or DELETE, "
                "or drop --input and put the parameters in PATH's query."
            )
        body = read_input(args.input, stdin)
    if args.paginate and method != "GET":
        raise InputError(f"--paginate follows links.next, which only GET lists have: drop --paginate for a {method}.")
    return ApiCall(method, path, body, bool(args.paginate), bool(args.include))


def read_input(name: str, stdin: IO[bytes]) -> bytes:
    """The --input body: a file (or stdin for -), at most 4 MB, that must parse as JSON."""
    where = "stdin (--input -)" if name == "-" else f"--input file {quote_foreign(name, 200)!r}"
    try:
        if name == "-":
            raw = stdin.read(MAX_INPUT_BYTES + 1)
        else:
            with open(name, "rb") as stream:
                raw = stream.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"The {where} does not exist: give the path of a JSON file, or - to read stdin.") from None
    except IsADirectoryError:
        raise InputError(f"The {where} is a folder: give the path of a JSON file.") from None
    except OSError as exc:
        raise InputError(f"The {where} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise InputError(
            f"The {where} is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB: App Store Connect takes no such body."
        )
    try:
        json.loads(raw)
    except ValueError as exc:
        # Where, never what: the file's text is not repeated.
        position = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(
            f"The {where} is not JSON{position}: --input sends a JSON document such as "
            '{"data": {"type": "bundleIds", "attributes": {...}}}.'
        ) from None
    except RecursionError:
        raise InputError(f"The {where} is nested too deeply to be a request body.") from None
    return raw


def origin(url: str) -> Tuple[str, str, int]:
    """(scheme, host, port), with the scheme's default port: what must match before a token is sent."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def resolve(target: str, api_url: str, argument: str, api_url_label: str) -> str:
    """An absolute URL on the API host for PATH or a links.next; refuses any other host."""
    url = target
    try:
        parts = urlsplit(target)
        if target.startswith("/") or not (parts.scheme and parts.netloc):
            url = api_url.rstrip("/") + "/" + target.lstrip("/")
        same = origin(url) == origin(api_url)
    except ValueError:  # a malformed port or IPv6 address
        same = False
    if not same:
        raise InputError(
            f"{argument} {quote_foreign(target, 200)!r} is not on the API host {quote_foreign(api_url, 200)} "
            f"({api_url_label}), so it is refused before anything is sent: the request carries the bearer "
            "token. Give a path like /v1/apps, or a URL on that host."
        )
    return url


def check_scope(settings: Settings, method: str, url: str, inputs: CliInputs) -> None:
    if settings.scope and not scope_allows(settings.scope, method, url):
        raise InputError(
            f"{inputs.label('scope')} does not allow {method} {quote_foreign(urlsplit(url).path, 200)}, so App "
            f"Store Connect would refuse the token: add an entry for it, or unset {inputs.label('scope')}."
        )


def run_call(
    call: ApiCall,
    url: str,
    settings: Settings,
    naming: CliInputs,
    platform: Platform,
    *,
    clock: Clock,
    policy: RetryPolicy,
    log: Callable[[str], None],
) -> Optional[Any]:
    """Send the request (each page, with --paginate) and return the document to print, or None."""
    key = read_private_key(settings.key, platform.workspace())
    for form in secret_forms(key, settings.key.contents):
        platform.mask(form, printing=True)  # printing: stdout is the caller's, never a mask command
    request = TokenRequest(settings.key_id, settings.issuer_id, settings.expires_in, settings.scope, settings.api)
    tokens = TokenSource(key, request, clock, lambda token: platform.mask(token, printing=True))
    if call.method == "POST":
        policy = dataclasses.replace(policy, resend_when_uncertain=False)
    transport = Transport(session=default_session(), policy=policy, log=log)  # one connection for every page

    pages: List[Any] = []
    fetched: Set[str] = set()
    last: Optional[Reply] = None
    next_url: Optional[str] = url
    while next_url is not None:
        if len(pages) >= MAX_PAGES:
            raise explain_api_unfinished(f"it went on for more than {MAX_PAGES} pages.", call.method, url)
        fetched.add(next_url)
        last = send(transport, call, next_url, tokens, settings, naming, clock, log)
        if not last.body.strip():
            return None  # 204 No Content, or a 2xx without a body: nothing to print
        document = json.loads(last.body)
        pages.append(document)
        next_url = next_page(document, settings.api_url, naming) if call.paginate else None
        if (next_url is not None or len(pages) > 1) and not _is_list_page(document):
            # Pages are merged by their `data` lists; anything else cannot be joined to them.
            raise explain_api_unfinished(f"page {len(pages)} has no list of resources in `data`.", call.method, url)
        if next_url is not None and next_url in fetched:
            raise explain_api_unfinished("links.next pointed back at a page already fetched.", call.method, url)
    if last is not None:
        _note_rate_limit(last, settings.key_id, log)
    return merge_pages(pages) if len(pages) > 1 else pages[0]


def send(
    transport: Transport,
    call: ApiCall,
    url: str,
    tokens: TokenSource,
    settings: Settings,
    naming: CliInputs,
    clock: Clock,
    log: Callable[[str], None],
) -> Reply:
    """One request, its answer checked: 2xx with App Store Connect's JSON (or no body), else an error."""
    try:
        reply = transport.send(call.method, url, tokens, body=call.body)
    except NoAnswerError as error:
        raise explain_api_unreachable(error.kind, url, call.method, naming, error.attempts) from None
    if call.include:
        log(describe_reply(reply))
    asked = Request(url, settings.key_type, purpose=f"{call.method} {urlsplit(url).path}", attempts=reply.attempts)
    if not 200 <= reply.status < 300:
        raise explain_api_reply(reply, asked, call.method, naming, clock)
    if reply.truncated:
        raise explain_api_unfinished(
            "it was larger than 4 MB and was cut off; ask for smaller pages (a lower limit= in PATH).",
            call.method,
            url,
        )
    if reply.body.strip() and not is_apple_json(reply):
        raise explain_reply(reply, asked, naming, clock)  # a proxy's page, or JSON that is not Apple's
    return reply


def next_page(document: Any, api_url: str, naming: CliInputs) -> Optional[str]:
    """The page after ``document``: its ``links.next``, on the API host, or None on the last page."""
    links = document.get("links") if isinstance(document, dict) else None
    target = links.get("next") if isinstance(links, dict) else None
    if not isinstance(target, str) or not target or not isinstance(document.get("data"), list):
        return None
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target) or len(target) > 8000:
        raise ApiError("App Store Connect's links.next is not a usable URL, so the pages after it were not fetched.")
    try:
        return resolve(target, api_url, "links.next", naming.label("api-url"))
    except InputError as error:
        raise ApiError(
            "App Store Connect's links.next points at another host, so the next page was not requested "
            "(it would have received the bearer token); nothing was printed.",
            details=error.message,
        ) from None


def _is_list_page(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("data"), list)


def merge_pages(pages: Sequence[Any]) -> Dict[str, Any]:
    """One document: the first page's, with every page's ``data`` in order, ``included`` without
    duplicates (by type and id, first seen wins), and no ``links.next``."""
    merged: Dict[str, Any] = dict(pages[0])
    data: List[Any] = []
    included: List[Any] = []
    seen: Set[Tuple[str, str]] = set()
    any_included = False
    for page in pages:
        data.extend(page.get("data") or [])
        if isinstance(page.get("included"), list):
            any_included = True
            for resource in page["included"]:
                identity = (str(resource.get("type")), str(resource.get("id"))) if isinstance(resource, dict) else None
                if identity is None or identity not in seen:
                    included.append(resource)
                    if identity is not None:
                        seen.add(identity)
    merged["data"] = data
    if any_included:
        merged["included"] = included
    if isinstance(merged.get("links"), dict):
        merged["links"] = {name: value for name, value in merged["links"].items() if name != "next"}
    return merged


def render(document: Any, *, indent: bool = False) -> bytes:
    """The JSON for stdout, UTF-8: indented for a terminal, compact for a pipe or file (as ``gh api``).

    ``##`` (Azure's logging-command marker, honoured anywhere in a line) only occurs inside
    strings, where ``#\\u0023`` is the same text.
    """
    if indent:
        text = json.dumps(document, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("##", "#\\u0023") + "\n").encode("utf-8")


def describe_reply(reply: Reply) -> str:
    """``--include``: the status line and headers, made safe for a CI log."""
    try:
        phrase = http.HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP {reply.status} {phrase}".rstrip()]
    lines += [f"{quote_foreign(name, 100)}: {quote_foreign(value, 500)}" for name, value in reply.headers.items()]
    return "\n".join(lines) + "\n"


def _note_rate_limit(reply: Reply, key_id: str, log: Callable[[str], None]) -> None:
    limit, remaining = parse_rate_limit(reply.header("x-rate-limit"))
    if remaining is not None and remaining < LOW_RATE_LIMIT:
        of = f" of {limit}" if limit is not None else ""
        log(f"App Store Connect: {remaining}{of} requests left this hour for key {key_id}.")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
