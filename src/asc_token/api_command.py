"""``asc-token api``: call App Store Connect with freshly minted tokens, in the spirit of ``gh api``.

stdout carries the response JSON and nothing else (on an HTTP error, as gh, Apple's error document); logs,
``--include`` headers and explanations go to stderr. ``-f``/``-F`` fields (fields.py) make the query or body.
An answer that is not JSON (a gzip report, CSV) goes only where ``--output-file`` says. A bad argument
is one error naming it (exit status 2) before anything is sent; a failed request is explained as the
checks explain it (exit status 1).
Tokens are re-signed near their expiry (:func:`tokens.needs_new_token`), so a paginated export that
runs for hours never sends an expired token.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import http.client
import json
import math
import re
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Mapping, Optional, Sequence, Set, Tuple
from urllib.parse import urlsplit

from .caller import Caller, open_caller
from .cli import Parser, add_shared_flags, run_command
from .errors import EXIT_FAILED, EXIT_OK, EXIT_STATUSES, ApiError, InputError
from .explain import (
    Asked,
    describe_body,
    explain_api_reply,
    explain_api_unfinished,
    explain_api_unreachable,
    explain_reply,
    summarise_body,
)
from .fields import Field, json_body, read_fields, tag_raw, tag_typed, with_query
from .keys import read_argument_file
from .paging import (
    MAX_PAGES,
    Answer,
    Destination,
    ErrorShown,
    JqFilter,
    Pages,
    Program,
    is_list_page,
    next_page,
    run_program,
)
from .redact import is_control, may_be_secret, quote_foreign, shown
from .secret_files import output_path
from .settings import read_credentials, read_given_token, require_base_url
from .tokens import GivenToken, scope_allows
from .transport import MAX_DOWNLOAD_BYTES, NoAnswerError, Reply, SinkError, few_requests_left
from .urls import resolve, unusable_url

if TYPE_CHECKING:
    from .asset_upload import AssetFile
    from .inputs import CliInputs
    from .platforms import Platform
    from .world import Io

METHODS = ("GET", "POST", "PATCH", "DELETE")
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
    upload: Optional[AssetFile] = None  # --upload-file: the file, checked against the reservation in body
    jq: Optional[str] = None  # --jq: the program the answer is printed through
    silent: bool = False  # --silent: nothing printed on stdout, an error document neither


def build_api_parser() -> Parser:
    parser = Parser(
        prog="asc-token api",
        description=(
            "Call the App Store Connect API with a freshly minted token and print the response JSON, and only it, "
            "on stdout (on an HTTP error, Apple's error document, as gh api prints it). PATH is relative to the API URL (/v1/apps?filter[bundleId]=com.example.app) or a full URL "
            "on the same host (as in links.next). Credentials: the same flags and environment variables as "
            "asc-token (ASC_KEY_ID, ASC_ISSUER_ID, ASC_PRIVATE_KEY_PATH or ASC_PRIVATE_KEY, ...). With --input "
            "RESERVATION.json and --upload-file FILE, it uploads an asset (a screenshot, a preview...) as Apple's upload "
            "operations say and prints the committed resource."
        ),
        epilog=EXIT_STATUSES,
        allow_abbrev=False,
    )
    parser.add_argument("path", metavar="PATH", help="API path such as /v1/apps, or a full URL on the API host")
    parser.add_argument("-X", "--method", help="GET (default), POST (default with --input or fields), PATCH or DELETE")
    parser.add_argument(
        "-f",
        "--raw-field",
        dest="fields",
        action="append",
        default=[],
        type=tag_raw,
        metavar="KEY=VALUE",
        help="a string field, as gh api takes it (repeatable): with GET a query parameter (a key given twice "
        "joins its values with commas), otherwise the JSON body, nested as data[attributes][name]=My App, "
        "a list as key[]=a; with --input, query parameters",
    )
    parser.add_argument(
        "-F",
        "--field",
        dest="fields",
        action="append",
        type=tag_typed,
        metavar="KEY=VALUE",
        help="a typed field: true, false, null and integers are JSON values, @FILE is FILE's text, @- stdin's",
    )
    parser.add_argument(
        "-q",
        "--jq",
        metavar="EXPR",
        help="print what the jq program EXPR makes of the answer (with --paginate, of the merged document), "
        "strings unquoted; needs jq on PATH; an error document is printed unfiltered",
    )
    parser.add_argument(
        "--silent", action="store_true", help="do not print the answer (exit status and stderr as always)"
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
    parser.add_argument(
        "--upload-file",
        metavar="FILE",
        help="upload FILE as Apple's asset upload operations say: POST --input (the reservation, whose fileSize "
        "must be FILE's size) to PATH (an asset collection such as /v1/appScreenshots), send FILE's parts to the "
        "upload URLs the answer gives (never with the token), then commit the resource (uploaded: true and its "
        "checksum) and print it; builds go with asc-token upload",
    )
    add_shared_flags(parser)
    return parser


def main(argv: Sequence[str], io: Io, run: Program = run_program) -> int:
    """``run``: how --jq's jq is started (tests may pass their own)."""
    return run_command(build_api_parser(), argv, io, functools.partial(_send, run=run))


def _send(args: argparse.Namespace, inputs: CliInputs, io: Io, platform: Platform, *, run: Program) -> int:
    call = read_call(args, io.input(), io.policy.read_timeout)
    jq = None if call.jq is None else JqFilter.ready(call.jq, io.env, run)  # jq missing: exit 2, nothing sent
    for line in inputs.disagreements():
        platform.log(line)
    credentials = read_given_token(inputs) or read_credentials(inputs)
    given = credentials.key.given  # ASC_TOKEN alone: sent as it is, as gh sends GH_TOKEN
    require_base_url(inputs, "api-url", credentials.api_url, credentials.api.url)
    url = resolve(call.path, credentials.api_url, "PATH", inputs)
    scope, unscoped = inputs.label("scope"), f"unset {inputs.label('scope')}"
    if given is not None:  # the token's own scope, which no setting changes
        scope, unscoped = "ASC_TOKEN's scope", "give ASC_TOKEN a token without one (or set the key to sign one)"
    if call.upload is not None and credentials.scope:
        raise InputError(
            f"--upload-file commits the resource it reserves with a PATCH of its own path, which no entry of "
            f"{scope} can name before the reservation gives its id: {unscoped}."
        )
    if credentials.scope and not scope_allows(credentials.scope, call.method, url):
        raise InputError(
            f"{scope} does not allow {call.method} {quote_foreign(urlsplit(url).path, 200)}, so "
            f"{credentials.api.service} would refuse the token: add an entry for it, or {unscoped}."
        )
    if call.method == "POST":
        io = dataclasses.replace(io, policy=dataclasses.replace(io.policy, resend_when_uncertain=False))
    # The key is read only now, as the token command reads it (a bad one is still exit 2); printing:
    # stdout is the caller's, never a mask command.
    if isinstance(given, GivenToken):
        platform.log(given.note(io.clock()))
    caller = open_caller(credentials, inputs, io, platform, printing=True)
    destination = Destination(call.output_file, io.out())
    # As gh: Apple's error document on stdout (for `| jq .errors`), where the answer would have gone.
    show_error = destination.show_error if destination.path is None and not call.silent else None
    answer: Optional[Answer] = None
    try:
        destination.open()  # before sending: a folder that cannot be made is exit 2
        if call.upload is not None:
            answer = _upload(call, call.upload, url, caller, io, show_error)
        else:
            answer = run_call(call, url, caller, spool=destination.spool, show_error=show_error)
        if jq is not None and isinstance(answer, Pages):
            destination.deliver_filtered(answer, jq)
        elif not (call.silent and destination.path is None):
            destination.deliver(answer, platform.log)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        return EXIT_FAILED
    except SinkError as error:  # the file a body was streamed to: a full disk, not the server
        raise destination.unwritable(error.error) from None
    finally:
        if isinstance(answer, Pages):
            answer.close()
        destination.discard()
    return EXIT_OK


def _upload(
    call: ApiCall, asset: AssetFile, url: str, caller: Caller, io: Io, show_error: Optional[ErrorShown]
) -> Optional[Answer]:
    """--upload-file: the reservation, the parts, the commit; each request to the API as run_call sends it."""
    from .asset_upload import upload_asset
    from .operations import send_options

    def exchange(method: str, target: str, body: Optional[bytes]) -> Optional[Answer]:
        changed = dataclasses.replace(call, method=method, path=target, body=body, upload=None)
        return run_call(changed, target, caller, show_error=show_error)

    return upload_asset(asset, url, caller, exchange, send_options(io))


def read_call(args: argparse.Namespace, stdin: IO[bytes], wait: float) -> ApiCall:
    """The method, PATH and body, checked (or :class:`InputError` naming the argument); a pipe
    named by --input is waited for as long as a server's answer (``wait`` seconds)."""
    fields = read_fields(args.fields, stdin, wait, input_is_stdin=args.input == "-")
    given = args.method
    sends = args.input is not None or bool(fields)
    method = (given if given is not None else ("POST" if sends else "GET")).strip().upper()
    if method not in METHODS:
        # An empty --method (an unset $METHOD in a script) is refused too, not taken as GET.
        value = shown(given) if given and given.strip() else "an empty value"
        raise InputError(f"--method must be one of {', '.join(METHODS)} (any case), not {value}.")
    path = args.path.strip()
    if not path or unusable_url(path):
        raise InputError(
            "PATH must be an API path like /v1/apps?limit=200 or a full URL on the API host, without "
            "spaces, backslashes or control characters (encode a space in a query as %20); it is refused before "
            "anything is sent."
        )
    _check_output_options(args)
    if args.upload_file is not None:
        return _upload_call(args, method, path, fields, stdin, wait)
    body = None
    if args.input is not None:
        if method == "GET":
            raise InputError(
                "--input sends a request body, which GET does not take: use --method POST, PATCH or DELETE, "
                "or drop --input and give the parameters with -f KEY=VALUE (GET sends them as the query)."
            )
        body = read_input(args.input, stdin, wait)
    if method == "GET" or body is not None:  # as gh: with --input, the fields are the query
        path = with_query(path, fields)
    elif fields:
        body = _encoded(json_body(fields))
    if args.paginate and method != "GET":
        fix = "add -X GET to send the fields as the query" if fields and given is None else "drop --paginate"
        raise InputError(f"--paginate follows links.next, which only GET lists have: {fix} (not a {method}).")
    output_file = (
        None if args.output_file is None else output_path(args.output_file, "--output-file", "report.gz, or -")
    )
    return ApiCall(
        method,
        path,
        body,
        bool(args.paginate),
        bool(args.include),
        read_headers(args.header),
        output_file,
        jq=args.jq,
        silent=bool(args.silent),
    )


def _check_output_options(args: argparse.Namespace) -> None:
    """--jq and --silent say what is printed; each clash is one sentence naming both."""
    if args.jq is not None and not args.jq.strip():
        raise InputError("--jq takes a jq program such as '.data[].id', not an empty value.")
    clashing = ""
    if args.jq is not None and args.silent:
        clashing = "--jq and --silent"
    elif args.jq is not None and args.output_file is not None:
        clashing = "--jq and --output-file"
    if clashing:
        raise InputError(f"{clashing} both say what becomes of the answer: drop one of them.")


def _encoded(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")


def _upload_call(
    args: argparse.Namespace, method: str, path: str, fields: Sequence[Field], stdin: IO[bytes], wait: float
) -> ApiCall:
    """--upload-file: a POST of the reservation (--input, or the fields) to an asset collection, the committed
    resource printed."""
    explicit = f"--method {method}" if args.method is not None and method != "POST" else ""
    clashing = explicit or ("--paginate" if args.paginate else "--output-file" if args.output_file is not None else "")
    if clashing:
        raise InputError(
            "--upload-file reserves an upload with a POST of --input to PATH and prints the committed resource "
            f"on stdout, so {clashing} does not go with it: drop {clashing}."
        )
    if fields and args.input is not None:
        raise InputError(
            "--upload-file takes its reservation from --input or from -f/-F fields, not both: drop --input, or the "
            "fields."
        )
    body = (
        _encoded(json_body(fields)) if fields else None if args.input is None else read_input(args.input, stdin, wait)
    )
    from .asset_upload import read_asset_file  # deferred: only --upload-file needs it

    return ApiCall(
        "POST",
        path,
        body,
        False,
        bool(args.include),
        read_headers(args.header),
        upload=read_asset_file(path, args.upload_file, body),
        jq=args.jq,
        silent=bool(args.silent),
    )


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
    where = "The stdin (--input -)" if name == "-" else f"The --input file {shown(name)}"
    wanted = ("a JSON file", "- to read stdin")
    raw = read_argument_file(name, stdin, MAX_INPUT_BYTES + 1, wait, where=where, wanted=wanted)
    if len(raw) > MAX_INPUT_BYTES:
        raise InputError(
            f"{where} is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB: App Store Connect takes no such body."
        )
    try:
        json.loads(raw)
    except ValueError as exc:
        # Where, never what: the file's text is not repeated.
        position = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(
            f"{where} is not JSON{position}: --input sends a JSON document such as "
            '{"data": {"type": "bundleIds", "attributes": {...}}}.'
        ) from None
    except RecursionError:
        raise InputError(f"{where} is nested too deeply to be a request body.") from None
    return raw


def run_call(
    call: ApiCall,
    url: str,
    caller: Caller,
    *,
    spool: Optional[IO[bytes]] = None,
    max_pages: int = MAX_PAGES,
    show_error: Optional[ErrorShown] = None,
) -> Optional[Answer]:
    """Send the request (each page, with --paginate): the answer to write, or None. A 2xx body that is not
    JSON is streamed to ``spool`` (--output-file); without it such a body is refused when its headers come,
    unread. ``show_error`` is handed an error answer that came before any page (not one mid-export)."""
    credentials, service, log, clock = caller.credentials, caller.credentials.api.service, caller.log, caller.clock
    unfinished = functools.partial(explain_api_unfinished, method=call.method, url=url)

    def download(status: int, headers: Mapping[str, str]) -> Optional[IO[bytes]]:
        if not (200 <= status < 300 and status != 204 and _kind(headers) == "other"):
            return None
        if spool is not None and not call.paginate:
            return spool
        length = headers.get("content-length", "").strip()
        size = length if length.isdigit() else ""
        raise _not_json(call, asked, status, describe_body(headers.get("content-type", ""), size))  # body unread

    def note_rate_limit(reply: Reply) -> None:
        left = few_requests_left(reply)
        if left:
            log(f"{service}: {left} for key {credentials.key_id}.")

    pages = Pages()
    fetched: Set[str] = set()
    next_url: Optional[str] = url
    started = clock()
    while next_url is not None:
        if pages.count >= max_pages:
            raise unfinished(f"it went on for more than {max_pages} pages (links.next never ended).")
        fetched.add(next_url)
        asked = Asked.about(next_url, credentials, purpose=f"{call.method} {urlsplit(next_url).path}")
        try:
            reply = caller.transport.send(
                call.method, next_url, caller.tokens, body=call.body, headers=dict(call.headers), download=download
            )
        except NoAnswerError as error:
            raise explain_api_unreachable(error.kind, asked, call.method, caller.naming, error.attempts) from None
        if call.include:
            log(describe_reply(reply))
        asked = dataclasses.replace(asked, attempts=reply.attempts)
        if not 200 <= reply.status < 300:
            error_document = _error_document(reply) if show_error is not None and pages.count == 0 else None
            if show_error is not None and error_document is not None:
                show_error(error_document)
            raise explain_api_reply(reply, asked, call.method, caller.naming, clock)
        if reply.truncated:
            size = f"{MAX_DOWNLOAD_BYTES // 1024**3} GB" if reply.streamed is not None else "4 MB"
            hint = "" if reply.streamed is not None else "; ask for smaller pages (a lower limit= in PATH)"
            raise explain_api_unfinished(f"it was larger than {size} and was cut off{hint}.", call.method, next_url)
        streamed = reply.streamed is not None
        document = None if streamed or not reply.body.strip() else _parsed(reply, asked, call, caller)
        if streamed or document is None:
            note_rate_limit(reply)
            # None: 204 No Content, or a 2xx without a body (or a JSON null): nothing to print
            return spool if streamed else None
        next_url = next_page(document, next_url, caller) if call.paginate else None
        if pages.count > 0 and not is_list_page(document):
            # Pages are merged by their `data` lists (next_page refuses a first page without one).
            raise unfinished(f"page {pages.count + 1} has no list of resources in `data`.")
        if next_url is not None and next_url in fetched:
            raise unfinished("links.next pointed back at a page already fetched.")
        pages.add(document)
        if pages.count % PROGRESS_PAGES == 0 and next_url is not None:
            log(f"{service}: {pages.count} pages, {pages.items} items, {clock() - started:.0f} s so far.")
    note_rate_limit(reply)  # the last page's
    return pages


def _error_document(reply: Reply) -> Any:
    """An error answer's JSON document (Apple's errors[]), or None: a proxy's page or a cut-off body is not printed."""
    if _kind(reply.headers) != "json" or reply.truncated or not reply.body.strip():
        return None
    with contextlib.suppress(ValueError, RecursionError):
        return json.loads(reply.body, parse_constant=_finite, parse_float=_finite)
    return None


def _parsed(reply: Reply, asked: Asked, call: ApiCall, caller: Caller) -> Any:
    kind = _kind(reply.headers)
    if kind == "json":
        with contextlib.suppress(ValueError, RecursionError):
            return json.loads(reply.body, parse_constant=_finite, parse_float=_finite)
    if kind != "other":
        raise explain_reply(reply, asked, caller.naming, caller.clock)  # a proxy's page, or JSON that does not parse
    raise _not_json(call, asked, reply.status, summarise_body(reply))


def _not_json(call: ApiCall, asked: Asked, status: int, described: str) -> ApiError:
    answered = f"{asked.service} answered {status} to {call.method} {quote_foreign(asked.url, 300)} with "
    if call.paginate:  # pages are merged as JSON documents: a report is one answer, saved as it came
        save = "save it with --output-file" if call.output_file else "give --output-file FILE (such as report.gz)"
        return ApiError(
            f"{answered}{described}, which is not JSON, and --paginate merges JSON pages, so "
            f"nothing was written: drop --paginate and {save}.",
            details="A report or other file comes in one answer, with no links.next to follow.",
        )
    return ApiError(
        f"{answered}{described}, which is not JSON, so it was not printed: give --output-file FILE "
        "(such as report.gz) to save it, or --output-file - to send it to stdout.",
        details="On a CI runner stdout is the log, where a server's raw bytes could carry :: or ##vso[ commands.",
    )


def _kind(headers: Mapping[str, str]) -> str:
    """By Content-Type: json (application/json, application/*+json), page (HTML: a proxy's) or other (a report)."""
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


def describe_reply(reply: Reply) -> str:
    """``--include``: the status line and headers, made safe for a CI log."""
    lines = [f"HTTP {reply.status} {http.client.responses.get(reply.status, '')}".rstrip()]
    lines += [f"{quote_foreign(name, 100)}: {quote_foreign(value, 500)}" for name, value in reply.headers.items()]
    return "\n".join(lines) + "\n"
