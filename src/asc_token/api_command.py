"""``asc-token api``: call App Store Connect with freshly minted tokens, in the spirit of ``gh api``.

    asc-token api [--method GET|POST|PATCH|DELETE] PATH [--paginate] [--input FILE|-] [--include]

The credentials come from the same flags and environment names as the token command. stdout
carries the response JSON and nothing else; logs, ``--include`` headers and errors go to stderr.
Arguments are checked before anything is sent: a bad one is one error naming it, exit status 2.
A request that fails is explained as the verification explains it, exit status 1.

Tokens are re-signed when a request needs one and the current one is close to its expiry (see
:func:`credentials.needs_new_token`), so a paginated export that runs for hours never sends an expired token.
"""

from __future__ import annotations

import argparse
import dataclasses
import http
import json
import os
import select
import stat
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Set, Tuple
from urllib.parse import urlsplit

from .config import Credentials, Naming, read_credentials, require_base_url
from .credentials import TokenSource, open_key
from .errors import EXIT_FAILED, EXIT_OK, ApiError, AscTokenError, InputError
from .explain import (
    Asked,
    explain_api_reply,
    explain_api_unfinished,
    explain_api_unreachable,
    explain_reply,
    is_apple_json,
)
from .flags import (
    CREDENTIAL_SETTINGS,
    CliInputs,
    Parser,
    add_credential_flags,
    add_platform_flags,
    check_platform,
    credential_flags,
    log_to,
    refuse_extras,
)
from .minting import TokenRequest, scope_allows
from .platforms import platform_for
from .redact import quote_foreign, shown
from .transport import Io, NoAnswerError, Reply, Transport, parse_rate_limit
from .urls import join_path, resolve_reference, target_problem

METHODS = ("GET", "POST", "PATCH", "DELETE")
MAX_PAGES = 10_000  # 2 million items at Apple's largest page size; a bound, not a real limit
MAX_INPUT_BYTES = 4 * 1024 * 1024
INPUT_SECONDS = 30  # a pipe named by --input that stays silent: bounded like the network
LOW_RATE_LIMIT = 100


@dataclass(frozen=True)
class ApiCall:
    """What the user asked for, checked: nothing here has been sent yet."""

    method: str
    path: str
    body: Optional[bytes]
    paginate: bool
    include: bool


def build_api_parser() -> Parser:
    parser = Parser(
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
    add_credential_flags(parser)
    add_platform_flags(parser)
    return parser


def main(argv: Sequence[str], io: Io) -> int:
    parser = build_api_parser()
    parser.use(io.out(), io.err())
    args, extras = parser.parse_known_args(list(argv))
    refuse_extras(parser, extras)
    check_platform(parser, args.platform)
    log = log_to(io.err())
    platform = platform_for(io.env, args.platform)(io.env, log=log, stdout=io.out())
    out = _binary(io.out())
    try:
        call = read_call(args, io.stdin if io.stdin is not None else _binary_stdin())
        inputs = CliInputs(credential_flags(args), io.env, CREDENTIAL_SETTINGS)
        for line in inputs.disagreements():
            log(line)
        credentials = read_credentials(inputs)
        require_base_url(inputs, "api-url", credentials.api_url, credentials.api.url)
        url = resolve(call.path, credentials.api_url, "PATH", inputs)
        check_scope(credentials, call.method, url, inputs)
        # The key is read only now, as the token command reads it; a bad one is still exit 2.
        key = open_key(credentials.key, platform.workspace(), platform.key_mask(printing=True))
        request = TokenRequest(
            credentials.key_id, credentials.issuer_id, credentials.expires_in, credentials.scope, credentials.api
        )
        # printing: stdout is the caller's, never a mask command
        tokens = TokenSource(key, request, io.clock, lambda token: platform.mask(token, printing=True))
        policy = dataclasses.replace(io.policy, resend_when_uncertain=False) if call.method == "POST" else None
        transport = io.transport(log, credentials.api.service, policy)  # one connection for every page
        document = run_call(call, url, credentials, inputs, tokens, transport, clock=io.clock, log=log)
    except AscTokenError as error:
        platform.report_error(error)
        return error.exit_code
    if document is not None:
        try:
            out.write(render(document, indent=out.isatty()))
            out.flush()
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            return EXIT_FAILED
    return EXIT_OK


def _binary(stream: Any) -> IO[bytes]:
    return getattr(stream, "buffer", stream)  # type: ignore[no-any-return]


def _binary_stdin() -> IO[bytes]:
    import sys

    return sys.stdin.buffer


def read_call(args: argparse.Namespace, stdin: IO[bytes]) -> ApiCall:
    """The method, PATH and body, checked; raises :class:`InputError` naming the argument."""
    given = args.method
    method = (given if given is not None else ("POST" if args.input is not None else "GET")).strip().upper()
    if method not in METHODS:
        # An empty --method (an unset $METHOD in a script) is refused too, not taken as GET.
        value = shown(given) if given and given.strip() else "an empty value"
        raise InputError(f"--method must be one of {', '.join(METHODS)} (any case), not {value}.")
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
    where = "stdin (--input -)" if name == "-" else f"--input file {shown(name)}"
    try:
        raw = stdin.read(MAX_INPUT_BYTES + 1) if name == "-" else _read_file(name, MAX_INPUT_BYTES + 1)
    except TimeoutError:
        raise InputError(
            f"The {where} gave no data within {INPUT_SECONDS} s: a pipe whose writer never came; give a file."
        ) from None
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


def _read_file(name: str, limit: int) -> bytes:
    """A file's first ``limit`` bytes; a pipe (``--input <(...)``) is read only until INPUT_SECONDS."""
    if not hasattr(os, "O_NONBLOCK") or not stat.S_ISFIFO(os.stat(name).st_mode):
        with open(name, "rb") as stream:
            return stream.read(limit)
    descriptor = os.open(name, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO blocks without it
    try:
        deadline, chunks, size = time.monotonic() + INPUT_SECONDS, [], 0
        while size < limit:
            ready, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError
            chunk = os.read(descriptor, min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def resolve(target: str, api_url: str, argument: str, naming: Naming, page_url: Optional[str] = None) -> str:
    """PATH joined to ``api_url`` (or a links.next resolved against ``page_url``), when that URL may
    receive the token meant for ``api_url``; refused before anything is sent."""
    url = join_path(target, api_url) if page_url is None else resolve_reference(target, page_url)
    problem = target_problem(url, api_url)
    if problem:
        raise InputError(
            f"{argument} {shown(target)} {problem} ({quote_foreign(api_url, 200)}, {naming.label('api-url')}), so "
            "it is refused before anything is sent: the request carries the bearer token. Give a path like "
            "/v1/apps, or a URL on that host."
        )
    return url


def check_scope(credentials: Credentials, method: str, url: str, inputs: Naming) -> None:
    if credentials.scope and not scope_allows(credentials.scope, method, url):
        raise InputError(
            f"{inputs.label('scope')} does not allow {method} {quote_foreign(urlsplit(url).path, 200)}, so "
            f"{credentials.api.service} would refuse the token: add an entry for it, or unset {inputs.label('scope')}."
        )


def run_call(
    call: ApiCall,
    url: str,
    credentials: Credentials,
    naming: Naming,
    tokens: TokenSource,
    transport: Transport,
    *,
    clock: Callable[[], float],
    log: Callable[[str], None],
) -> Optional[Any]:
    """Send the request (each page, with --paginate) and return the document to print, or None."""
    pages: List[Any] = []
    fetched: Set[str] = set()
    last: Optional[Reply] = None
    next_url: Optional[str] = url
    while next_url is not None:
        if len(pages) >= MAX_PAGES:
            raise explain_api_unfinished(f"it went on for more than {MAX_PAGES} pages.", call.method, url)
        fetched.add(next_url)
        asked = Asked(
            next_url,
            credentials.key_type,
            credentials.api,
            purpose=f"{call.method} {urlsplit(next_url).path}",
            key_id=credentials.key_id,
        )
        last = send(transport, call, asked, tokens, naming, clock, log)
        if not last.body.strip():
            return None  # 204 No Content, or a 2xx without a body: nothing to print
        document = json.loads(last.body)
        pages.append(document)
        page_url = next_url
        next_url = next_page(document, page_url, credentials, naming) if call.paginate else None
        if (next_url is not None or len(pages) > 1) and not _is_list_page(document):
            # Pages are merged by their `data` lists; anything else cannot be joined to them.
            raise explain_api_unfinished(f"page {len(pages)} has no list of resources in `data`.", call.method, url)
        if next_url is not None and next_url in fetched:
            raise explain_api_unfinished("links.next pointed back at a page already fetched.", call.method, url)
    if last is not None:
        _note_rate_limit(last, credentials, log)
    return merge_pages(pages) if len(pages) > 1 else pages[0]


def send(
    transport: Transport,
    call: ApiCall,
    asked: Asked,
    tokens: TokenSource,
    naming: Naming,
    clock: Callable[[], float],
    log: Callable[[str], None],
) -> Reply:
    """One request, its answer checked: 2xx with the API's JSON (or no body), else an error."""
    try:
        reply = transport.send(call.method, asked.url, tokens, body=call.body)
    except NoAnswerError as error:
        raise explain_api_unreachable(error.kind, asked, call.method, naming, error.attempts) from None
    if call.include:
        log(describe_reply(reply))
    asked = dataclasses.replace(asked, attempts=reply.attempts)
    if not 200 <= reply.status < 300:
        raise explain_api_reply(reply, asked, call.method, naming, clock)
    if reply.truncated:
        raise explain_api_unfinished(
            "it was larger than 4 MB and was cut off; ask for smaller pages (a lower limit= in PATH).",
            call.method,
            asked.url,
        )
    if reply.body.strip() and not is_apple_json(reply):
        raise explain_reply(reply, asked, naming, clock)  # a proxy's page, or JSON that is not Apple's
    return reply


def next_page(document: Any, page_url: str, credentials: Credentials, naming: Naming) -> Optional[str]:
    """The page after ``document``: its ``links.next`` resolved against ``page_url``, or None on the last page."""
    links = document.get("links") if isinstance(document, dict) else None
    target = links.get("next") if isinstance(links, dict) else None
    if not isinstance(target, str) or not target or not isinstance(document.get("data"), list):
        return None
    service = credentials.api.service
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target) or len(target) > 8000:
        raise ApiError(f"{service}'s links.next is not a usable URL, so the pages after it were not fetched.")
    try:
        return resolve(target, credentials.api_url, "links.next", naming, page_url=page_url)
    except InputError as error:
        raise ApiError(
            f"{service}'s links.next points at another host, so the next page was not requested "
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


def _note_rate_limit(reply: Reply, credentials: Credentials, log: Callable[[str], None]) -> None:
    limit, remaining = parse_rate_limit(reply.header("x-rate-limit"))
    if remaining is not None and remaining < LOW_RATE_LIMIT:
        of = f" of {limit}" if limit is not None else ""
        log(f"{credentials.api.service}: {remaining}{of} requests left this hour for key {credentials.key_id}.")
