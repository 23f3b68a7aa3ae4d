"""``asc-token api``: call App Store Connect with freshly minted tokens, in the spirit of ``gh api``.

stdout carries the response JSON and nothing else; logs, ``--include`` headers and errors go to stderr.
An answer that is not JSON (a gzip report, CSV) goes only where ``--output-file`` says. A bad argument
is one error naming it (exit status 2) before anything is sent; a failed request is explained as the
checks explain it (exit status 1).
Tokens are re-signed near their expiry (:func:`credentials.needs_new_token`), so a paginated export that
runs for hours never sends an expired token.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import http.client
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, Mapping, Optional, Sequence, Set, Tuple, Union, cast
from urllib.parse import urljoin, urlsplit

from .config import Credentials, Naming, read_credentials, require_base_url
from .credentials import TokenSource, open_key
from .errors import EXIT_FAILED, EXIT_OK, EXIT_STATUSES, ApiError, DeliveryError, InputError
from .explain import (
    Asked,
    explain_api_reply,
    explain_api_unfinished,
    explain_api_unreachable,
    explain_reply,
    summarise_body,
)
from .flags import CliInputs, Parser, add_shared_flags, run_command
from .keys import read_file
from .minting import scope_allows
from .platforms import Platform
from .redact import is_control, may_be_secret, may_be_secret_path, quote_foreign, shown
from .secret_files import PendingFile, output_path
from .transport import (
    LOW_RATE_LIMIT,
    MAX_DOWNLOAD_BYTES,
    Io,
    NoAnswerError,
    Reply,
    SinkError,
    Transport,
    parse_rate_limit,
)
from .urls import join_path, target_problem

METHODS = ("GET", "POST", "PATCH", "DELETE")
# A bound on a links.next that never ends, not on a real list: most lists' pages are 200 items, Apple's largest
# 8000 (some 900 price points in each of 175 territories); 10,000 pages are 2 and 80 million items, which no
# export comes near, and pages are spooled to disk, so a long export never holds them in memory.
MAX_PAGES = 10_000
PROGRESS_PAGES = 10  # a line on stderr every so many pages, so a long export is seen to progress
# JSON, then the vendor +json types Apple's document gives (metrics, diagnostic logs), then anything
# else (reports: gzip, CSV), which is only written where --output-file says.
ACCEPT = (
    "application/json, application/vnd.apple.xcode-metrics+json, application/vnd.apple.diagnostic-logs+json, */*;q=0.1"
)
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")  # RFC 9110 token
# The token and the URL's host are asc-token's own; the rest frame the message, which requests does.
REFUSED_HEADERS = (
    *("authorization", "host", "content-length", "transfer-encoding", "connection", "expect", "upgrade"),
    *("te", "trailer", "keep-alive", "proxy-authorization", "proxy-connection"),
)
MAX_INPUT_BYTES = 4 * 1024 * 1024
TEMPORARY_FOLDER_VARIABLE = "TEMP" if os.name == "nt" else "TMPDIR"  # where tempfile puts the spool


@dataclass(frozen=True)
class ApiCall:
    """What the user asked for, checked: nothing here has been sent yet."""

    method: str
    path: str
    body: Optional[bytes]
    paginate: bool
    include: bool
    headers: Tuple[Tuple[str, str], ...] = ()  # -H, names in title case; Accept included
    output_file: Optional[str] = None  # a path, or - for stdout


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
        epilog=EXIT_STATUSES,
        allow_abbrev=False,
    )
    parser.add_argument("path", metavar="PATH", help="API path such as /v1/apps, or a full URL on the API host")
    parser.add_argument("-X", "--method", help="GET (default), POST (default with --input), PATCH or DELETE")
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
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="add a request header, as gh api does (repeatable), such as 'Accept: application/a-gzip'; "
        "not Authorization or Host; a value is never echoed",
    )
    parser.add_argument(
        "--output-file",
        metavar="FILE",
        help="write the answer to FILE (mode 0600, complete or not at all), or to stdout with -; "
        "needed for answers that are not JSON, such as sales and finance reports (gzip)",
    )
    add_shared_flags(parser)
    return parser


def main(argv: Sequence[str], io: Io) -> int:
    return run_command(build_api_parser(), argv, io, _send)


def _send(args: argparse.Namespace, inputs: CliInputs, io: Io, platform: Platform, log: Callable[[str], None]) -> int:
    call = read_call(args, io.input(), io.policy.read_timeout)
    for line in inputs.disagreements():
        log(line)
    credentials = read_credentials(inputs)
    require_base_url(inputs, "api-url", credentials.api_url, credentials.api.url)
    url = resolve(call.path, credentials.api_url, "PATH", inputs)
    if credentials.scope and not scope_allows(credentials.scope, call.method, url):
        raise InputError(
            f"{inputs.label('scope')} does not allow {call.method} {quote_foreign(urlsplit(url).path, 200)}, so "
            f"{credentials.api.service} would refuse the token: add an entry for it, or unset {inputs.label('scope')}."
        )
    # The key is read only now, as the token command reads it; a bad one is still exit 2.
    key = open_key(credentials.key, platform.workspace(), platform.key_mask(printing=True), wait=io.policy.read_timeout)
    # printing: stdout is the caller's, never a mask command
    tokens = TokenSource(key, credentials.token_request(), io.clock, lambda token: platform.mask(token, printing=True))
    policy = dataclasses.replace(io.policy, resend_when_uncertain=False) if call.method == "POST" else None
    transport = io.transport(log, credentials.api.service, policy)  # one connection for every page
    destination = Destination(call.output_file, io.out())  # before sending: a folder that cannot be made is exit 2
    answer: Optional[Answer] = None
    try:
        answer = run_call(
            call, url, credentials, inputs, tokens, transport, clock=io.clock, log=log, spool=destination.spool
        )
        destination.deliver(answer, log)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        return EXIT_FAILED
    except SinkError as error:  # the file a body was streamed to: a full disk, not the server
        raise destination.unwritable(error.error) from None
    finally:
        if isinstance(answer, Pages):
            answer.close()
        destination.discard()
    return EXIT_OK


def read_call(args: argparse.Namespace, stdin: IO[bytes], wait: float) -> ApiCall:
    """The method, PATH and body, checked (or :class:`InputError` naming the argument); a pipe
    named by --input is waited for as long as a server's answer (``wait`` seconds)."""
    given = args.method
    method = (given if given is not None else ("POST" if args.input is not None else "GET")).strip().upper()
    if method not in METHODS:
        # An empty --method (an unset $METHOD in a script) is refused too, not taken as GET.
        value = shown(given) if given and given.strip() else "an empty value"
        raise InputError(f"--method must be one of {', '.join(METHODS)} (any case), not {value}.")
    path = args.path.strip()
    if not path or _unusable_url(path):
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
        body = read_input(args.input, stdin, wait)
    if args.paginate and method != "GET":
        raise InputError(f"--paginate follows links.next, which only GET lists have: drop --paginate for a {method}.")
    output_file = (
        None if args.output_file is None else output_path(args.output_file, "--output-file", "report.gz, or -")
    )
    return ApiCall(method, path, body, bool(args.paginate), bool(args.include), read_headers(args.header), output_file)


def read_headers(given: Sequence[str]) -> Tuple[Tuple[str, str], ...]:
    """The -H headers, checked, with the default Accept unless one is given; no value is ever echoed."""
    headers = {"Accept": ACCEPT}
    for item in given:
        name, colon, value = item.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not HEADER_NAME.fullmatch(name) or may_be_secret(name):
            raise InputError(
                "-H/--header takes NAME:VALUE, like -H 'Accept: application/a-gzip' (the name is letters, "
                "digits and -; what was given is not shown)."
            )
        if name.lower() in REFUSED_HEADERS:
            raise InputError(
                f"-H/--header {name.title()} is refused: asc-token api sends the token it signs as "
                "Authorization and the host of the URL as Host, and frames the message itself."
            )
        if any(is_control(char) for char in value):
            raise InputError(f"-H/--header {name.title()}'s value holds a line break or control character (not shown).")
        if any(ord(char) > 0xFF for char in value):  # http.client sends header values as Latin-1
            raise InputError(
                f"-H/--header {name.title()}'s value holds characters an HTTP header cannot carry (beyond "
                "Latin-1; not shown): percent-encode them, or leave them out."
            )
        headers[name.title()] = value
    return tuple(headers.items())


def read_input(name: str, stdin: IO[bytes], wait: float) -> bytes:
    """The --input body: a file (or stdin for -), at most 4 MB, that must parse as JSON."""
    where = "stdin (--input -)" if name == "-" else f"--input file {shown(name)}"
    try:
        raw = stdin.read(MAX_INPUT_BYTES + 1) if name == "-" else read_file(name, MAX_INPUT_BYTES + 1, wait)
    except TimeoutError:
        raise InputError(
            f"The {where} gave no data within {wait:.0f} s: a pipe whose writer never came; give a file."
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


def resolve(target: str, api_url: str, argument: str, naming: Naming, page_url: Optional[str] = None) -> str:
    """PATH joined to ``api_url`` (or a links.next resolved against ``page_url``), when that URL may
    receive the token meant for ``api_url``; refused before anything is sent."""
    url = join_path(target, api_url) if page_url is None else urljoin(page_url, target)  # RFC 3986
    # A key pasted as PATH would reach the server's logs: its path (never the query, where Apple's
    # cursors are) holds resource names and IDs, none of them key-like.
    if page_url is None and may_be_secret_path(_path_of(target)):
        raise InputError(f"{argument} holds what looks like key material (not shown): give an API path like /v1/apps.")
    problem = target_problem(url, api_url)
    if problem:
        raise InputError(
            f"{argument} {shown(target)} {problem} ({quote_foreign(api_url, 200)}, {naming.label('api-url')}), so "
            "it is refused before anything is sent: the request carries the bearer token. Give a path like "
            "/v1/apps, or a URL on that host."
        )
    return url


def _path_of(target: str) -> str:
    try:
        return urlsplit(target).path
    except ValueError:  # a malformed host: refused as not on the API host just after
        return ""


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
    spool: Optional[IO[bytes]] = None,
    max_pages: int = MAX_PAGES,
) -> Optional[Answer]:
    """Send the request (each page, with --paginate): the answer to write, or None. A 2xx body that is not
    JSON is streamed to ``spool`` (--output-file); without it such a body is refused."""

    def download(status: int, headers: Mapping[str, str]) -> Optional[IO[bytes]]:
        return spool if 200 <= status < 300 and status != 204 and _kind(headers) == "other" else None

    pages = Pages()
    fetched: Set[str] = set()
    next_url: Optional[str] = url
    started = clock()
    while next_url is not None:
        if pages.count >= max_pages:
            raise explain_api_unfinished(
                f"it went on for more than {max_pages} pages (links.next never ended).", call.method, url
            )
        fetched.add(next_url)
        purpose = f"{call.method} {urlsplit(next_url).path}"
        asked = Asked(next_url, credentials.key_type, credentials.api, purpose=purpose, key_id=credentials.key_id)
        streaming = download if spool is not None and not call.paginate else None
        try:
            reply = transport.send(
                call.method, next_url, tokens, body=call.body, headers=dict(call.headers), download=streaming
            )
        except NoAnswerError as error:
            raise explain_api_unreachable(error.kind, asked, call.method, naming, error.attempts) from None
        if call.include:
            log(describe_reply(reply))
        asked = dataclasses.replace(asked, attempts=reply.attempts)
        if not 200 <= reply.status < 300:
            raise explain_api_reply(reply, asked, call.method, naming, clock)
        if reply.truncated:
            cut = (
                f"it was larger than {MAX_DOWNLOAD_BYTES // 1024**3} GB and was cut off."
                if reply.streamed is not None
                else "it was larger than 4 MB and was cut off; ask for smaller pages (a lower limit= in PATH)."
            )
            raise explain_api_unfinished(cut, call.method, asked.url)
        streamed = reply.streamed is not None
        document = None if streamed or not reply.body.strip() else _parsed(reply, asked, call, naming, clock)
        if streamed or document is None:
            _note_rate_limit(reply, credentials, log)
            # None: 204 No Content, or a 2xx without a body (or a JSON null): nothing to print
            return spool if streamed else None
        next_url = next_page(document, next_url, credentials, naming) if call.paginate else None
        if pages.count > 0 and not _is_list_page(document):
            # Pages are merged by their `data` lists (next_page refuses a first page without one).
            raise explain_api_unfinished(
                f"page {pages.count + 1} has no list of resources in `data`.", call.method, url
            )
        if next_url is not None and next_url in fetched:
            raise explain_api_unfinished("links.next pointed back at a page already fetched.", call.method, url)
        pages.add(document)
        if pages.count % PROGRESS_PAGES == 0 and next_url is not None:
            log(
                f"{credentials.api.service}: {pages.count} pages, {pages.items} items, {clock() - started:.0f} s so far."
            )
        if next_url is None:
            _note_rate_limit(reply, credentials, log)
    return pages


def _parsed(reply: Reply, asked: Asked, call: ApiCall, naming: Naming, clock: Callable[[], float]) -> Any:
    """A 2xx body, which must be JSON: parsed, else an error."""
    method, kind = call.method, _kind(reply.headers)
    if kind == "json":
        try:
            return json.loads(reply.body, parse_constant=_finite, parse_float=_finite)
        except (ValueError, RecursionError):
            pass
    if kind != "other":
        raise explain_reply(reply, asked, naming, clock)  # a proxy's page, or JSON that does not parse
    answered = f"{asked.service} answered {reply.status} to {method} {quote_foreign(asked.url, 300)} with "
    if call.paginate:  # pages are merged as JSON documents: a report is one answer, saved as it came
        save = "save it with --output-file" if call.output_file else "give --output-file FILE (such as report.gz)"
        raise ApiError(
            f"{answered}{summarise_body(reply)}, which is not JSON, and --paginate merges JSON pages, so "
            f"nothing was written: drop --paginate and {save}.",
            details="A report or other file comes in one answer, with no links.next to follow.",
        )
    raise ApiError(
        f"{answered}{summarise_body(reply)}, which is not JSON, so it was not printed: give --output-file FILE "
        "(such as report.gz) to save it, or --output-file - to send it to stdout.",
        details="On a CI runner stdout is the log, where a server's raw bytes could carry :: or ##vso[ commands.",
    )


def _kind(headers: Mapping[str, str]) -> str:
    """What a body is, by its Content-Type: json (application/json, application/*+json), page (HTML:
    a proxy's or a portal's) or other (a report, CSV: written only where --output-file says)."""
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    return "page" if media in ("text/html", "application/xhtml+xml") else "other"


def _finite(number: str) -> float:
    """A JSON number; NaN, Infinity and one too large for a float are refused as not JSON."""
    value = float(number)
    if not math.isfinite(value):
        raise ValueError("not a JSON number")
    return value


def next_page(document: Any, page_url: str, credentials: Credentials, naming: Naming) -> Optional[str]:
    """The page after ``document``: its ``links.next`` resolved against ``page_url``, or None on the last page."""
    links = document.get("links") if isinstance(document, dict) else None
    target = links.get("next") if isinstance(links, dict) else None
    if target is None or target == "":
        return None
    service = credentials.api.service
    if not isinstance(document.get("data"), list):
        raise explain_api_unfinished("a page with links.next has no list of resources in `data`.", "GET", page_url)
    if not isinstance(target, str) or _unusable_url(target):
        raise ApiError(f"{service}'s links.next is not a usable URL, so the pages after it were not fetched.")
    try:
        return resolve(target, credentials.api_url, "links.next", naming, page_url=page_url)
    except InputError as error:
        raise ApiError(
            f"{service}'s links.next points at another host, so the next page was not requested "
            "(it would have received the bearer token); nothing was printed.",
            details=error.message,
        ) from None


def _unusable_url(target: str) -> bool:
    return any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target) or len(target) > 8000


def _is_list_page(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("data"), list)


class Pages:
    """The pages of an answer as one document, held in memory no longer than a page: from the second
    page on, every page's ``data`` and ``included`` are spooled to private temporary files (0600,
    deleted when closed), ``included`` without duplicates (by type and id, first seen wins)."""

    def __init__(self) -> None:
        self.count = 0
        self.items = 0
        self.first: Any = None  # the first page, whole; later only its other members are kept
        self._lists: Dict[str, IO[bytes]] = {}  # "data" and "included": one compact JSON value a line
        self._seen: Set[Tuple[str, str]] = set()

    def add(self, page: Any) -> None:
        self.count += 1
        self.items += len(page["data"]) if _is_list_page(page) else 0
        if self.count == 1:
            self.first = page
            return
        if self.count == 2:
            self.first = dict(self.first)
            self._spool(self.first)
        self._spool(page)

    def _spool(self, page: Dict[str, Any]) -> None:
        for member in ("data", "included"):
            values = page.get(member)
            if member in page:
                page[member] = None  # spooled; in the first page, the place is kept for the order
            if member == "data" or isinstance(values, list):
                if member not in self._lists:
                    try:
                        self._lists[member] = tempfile.TemporaryFile()  # noqa: SIM115 - open until close()
                    except OSError as exc:
                        raise no_room_for("The pages", exc) from None
                for value in values or []:
                    if member == "included" and isinstance(value, dict):
                        identity = (str(value.get("type")), str(value.get("id")))
                        if identity in self._seen:
                            continue
                        self._seen.add(identity)
                    try:
                        self._lists[member].write(_dump(value, False) + b"\n")
                    except OSError as exc:
                        raise no_room_for("The pages", exc) from None

    def write_to(self, stream: IO[bytes], *, indent: bool) -> None:
        """The document, as :func:`render` would write it."""
        if self.count == 1:
            stream.write(render(self.first, indent=indent))
            return
        head = dict(self.first)
        if isinstance(head.get("links"), dict):
            head["links"] = {name: value for name, value in head["links"].items() if name != "next"}
        names = [*head, *(name for name in self._lists if name not in head)]
        opening, between, after_name = ("{\n  ", ",\n  ", ": ") if indent else ("{", ",", ":")
        for number, name in enumerate(names):
            stream.write((between if number else opening).encode() + _dump(name, indent) + after_name.encode())
            if name in self._lists:
                self._write_list(self._lists[name], stream, indent)
            else:
                stream.write(_dump(head[name], indent, level=1))
        stream.write(("\n}\n" if indent else "}\n").encode())

    def _write_list(self, spooled: IO[bytes], stream: IO[bytes], indent: bool) -> None:
        spooled.seek(0)
        stream.write(b"[")
        for number, line in enumerate(spooled):
            value = _dump(json.loads(line), True, level=2) if indent else line.rstrip(b"\n")
            stream.write((b"," if number else b"") + (b"\n    " if indent else b"") + value)
        if indent and spooled.tell():
            stream.write(b"\n  ")
        stream.write(b"]")

    def close(self) -> None:
        for spooled in self._lists.values():
            spooled.close()


Answer = Union[Pages, IO[bytes]]  # the pages, or the file a body that is not JSON was streamed to


class Destination:
    """Where the answer goes: stdout, or ``--output-file FILE``, a :class:`secret_files.PendingFile`
    renamed over FILE only when complete; ``-`` spools to a private temporary file, then stdout."""

    def __init__(self, path: Optional[str], stdout: Any) -> None:
        self.path = path if path != "-" else None
        self.out = cast(IO[bytes], WholeWrites(getattr(stdout, "buffer", stdout)))  # the answer's bytes, as they came
        self.pending: Optional[PendingFile] = None
        self.spool: Optional[IO[bytes]] = tempfile.TemporaryFile() if path == "-" else None  # noqa: SIM115
        if self.path is not None:
            try:
                self.pending = PendingFile(self.path, make_folder=True)  # as the token file's
            except OSError as exc:
                raise InputError(
                    f"--output-file {shown(self.path, path=True)} cannot be written "
                    f"({exc.strerror or type(exc).__name__}): give a file in a folder this step can write."
                ) from None
            self.spool = self.pending.stream

    def deliver(self, answer: Optional[Answer], log: Callable[[str], None]) -> None:
        """The answer where it goes; None (204, an empty body, a JSON null) is nothing on stdout, and an
        empty FILE: an older file there is never left to pass for this answer."""
        if self.path is None:  # a stdout that cannot be written: exit 1 (dispatch)
            if isinstance(answer, Pages):
                answer.write_to(self.out, indent=self.out.isatty())
            elif answer is not None:
                answer.seek(0)
                shutil.copyfileobj(answer, self.out)
            self.out.flush()
            return
        assert self.pending is not None
        try:
            if isinstance(answer, Pages):
                answer.write_to(self.pending.stream, indent=False)
            elif answer is None:
                self.pending.stream.truncate(0)
            size = self.pending.stream.tell()
            self.pending.commit()
        except OSError as exc:
            raise self.unwritable(exc) from None
        empty = " (the answer had no content)" if answer is None else ""
        log(f"Wrote {size} bytes to {shown(self.path, path=True)} (mode 0600){empty}.")

    def unwritable(self, exc: OSError) -> DeliveryError:
        """The error for a write to where the answer goes (or waits) that failed: a full disk, a write error."""
        if self.path is None:
            return no_room_for("The answer", exc)
        return DeliveryError(
            f"--output-file {shown(self.path, path=True)} could not be written "
            f"({exc.strerror or type(exc).__name__}); nothing was left there: free space in its folder, or "
            "give a file on a disk with room.",
            title="Could not write the answer",
        )

    def discard(self) -> None:
        """Whatever was not delivered: the temporary file removed, the spool closed."""
        if self.pending is not None:
            self.pending.discard()
        elif self.spool is not None:
            self.spool.close()


def no_room_for(what: str, exc: OSError) -> DeliveryError:
    """A private temporary file (the pages, or the answer for --output-file -) that could not be written."""
    return DeliveryError(
        f"{what} could not be held in the temporary folder {shown(tempfile.gettempdir(), path=True)} "
        f"({exc.strerror or type(exc).__name__}), so nothing was written: free space there, or set "
        f"{TEMPORARY_FOLDER_VARIABLE} to a folder with room.",
        title="Could not write the answer",
    )


class WholeWrites:
    """stdout's bytes, each write written whole. Unbuffered (PYTHONUNBUFFERED, python -u), a pipe whose
    reader stopped (``| head -c 10``) takes part of a large write and reports no error, only a shorter
    count; writing the rest raises BrokenPipeError, as a reader that went away must (exit status 1)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            written = self.stream.write(view)
            if not written:  # None (would block) or 0: the rest cannot be written
                raise BrokenPipeError(errno.EPIPE, "stdout took no more bytes")
            view = view[written:]
        return len(data)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


def _dump(value: Any, indent: bool, level: int = 0) -> bytes:
    """``value`` as UTF-8 JSON, compact or indented as if ``level`` levels deep.

    ``##`` (Azure's logging-command marker, honoured anywhere in a line) only occurs inside
    strings, where ``#\\u0023`` is the same text.
    """
    if indent:
        text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + "  " * level)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("##", "#\\u0023").encode("utf-8", "backslashreplace")


def render(document: Any, *, indent: bool = False) -> bytes:
    """The JSON for stdout: indented for a terminal, compact for a pipe or file (as ``gh api``)."""
    return _dump(document, indent) + b"\n"


def describe_reply(reply: Reply) -> str:
    """``--include``: the status line and headers, made safe for a CI log."""
    lines = [f"HTTP {reply.status} {http.client.responses.get(reply.status, '')}".rstrip()]
    lines += [f"{quote_foreign(name, 100)}: {quote_foreign(value, 500)}" for name, value in reply.headers.items()]
    return "\n".join(lines) + "\n"


def _note_rate_limit(reply: Reply, credentials: Credentials, log: Callable[[str], None]) -> None:
    limit, remaining = parse_rate_limit(reply.header("x-rate-limit"))
    if remaining is not None and remaining < LOW_RATE_LIMIT:
        of = f" of {limit}" if limit is not None else ""
        log(f"{credentials.api.service}: {remaining}{of} requests left this hour for key {credentials.key_id}.")
