"""``--paginate``: the page after this one (``links.next``) and the pages merged into one document; and where
``asc-token api``'s answer goes (:class:`Destination`). As ``gh`` keeps pagination apart from ``gh api``."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence, Set, Tuple, Union, cast

from .errors import ApiError, DeliveryError, InputError
from .explain import explain_api_unfinished
from .redact import is_control, quote_foreign, shown
from .secret_files import PendingFile, interruptions_held
from .urls import resolve, unusable_url

if TYPE_CHECKING:
    from .caller import Caller

# A bound on a links.next that never ends, not on a real list: most lists' pages are 200 items, Apple's largest
# 8000 (some 900 price points in each of 175 territories); 10,000 pages are 2 and 80 million items, which no
# export comes near, and pages are spooled to disk, so a long export never holds them in memory.
MAX_PAGES = 10_000


def next_page(document: Any, page_url: str, caller: Caller) -> Optional[str]:
    """The page after ``document``: its ``links.next`` resolved against ``page_url``, or None on the last page."""
    links = document.get("links") if isinstance(document, dict) else None
    target = links.get("next") if isinstance(links, dict) else None
    if target is None or target == "":
        return None
    service = caller.credentials.api.service
    if not isinstance(document.get("data"), list):
        raise explain_api_unfinished("a page with links.next has no list of resources in `data`.", "GET", page_url)
    if not isinstance(target, str) or unusable_url(target):
        raise ApiError(f"{service}'s links.next is not a usable URL, so the pages after it were not fetched.")
    try:
        return resolve(target, caller.credentials.api_url, "links.next", caller.naming, page_url=page_url)
    except InputError as error:
        raise ApiError(
            f"{service}'s links.next points at another host, so the next page was not requested "
            "(it would have received the bearer token); nothing was printed.",
            details=error.message,
        ) from None


def is_list_page(document: Any) -> bool:
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
        self.items += len(page["data"]) if is_list_page(page) else 0
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
                try:
                    if member not in self._lists:
                        self._lists[member] = tempfile.TemporaryFile()  # noqa: SIM115 - open until close()
                    for value in values or []:
                        if member == "included" and isinstance(value, dict):
                            identity = (str(value.get("type")), str(value.get("id")))
                            if identity in self._seen:
                                continue
                            self._seen.add(identity)
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
            if name not in self._lists:
                stream.write(_dump(head[name], indent, level=1))
                continue
            spooled = self._lists[name]
            spooled.seek(0)
            stream.write(b"[")
            for item, line in enumerate(spooled):
                value = _dump(json.loads(line), True, level=2) if indent else line.rstrip(b"\n")
                stream.write((b"," if item else b"") + (b"\n    " if indent else b"") + value)
            stream.write(b"\n  ]" if indent and spooled.tell() else b"]")
        stream.write(("\n}\n" if indent else "}\n").encode())

    def close(self) -> None:
        for spooled in self._lists.values():
            spooled.close()


def no_room_for(what: str, exc: OSError) -> DeliveryError:
    """A private temporary file (the pages, or the answer for --output-file -) that could not be written."""
    return DeliveryError(
        f"{what} could not be held in the temporary folder {shown(tempfile.gettempdir(), path=True)} "
        f"({exc.strerror or type(exc).__name__}), so nothing was written: free space there, or set "
        f"{'TEMP' if os.name == 'nt' else 'TMPDIR'} to a folder with room.",  # where tempfile puts the spool
        title="Could not write the answer",
    )


def _dump(value: Any, indent: bool, level: int = 0) -> bytes:
    """``value`` as UTF-8 JSON, compact or indented as if ``level`` levels deep. ``##`` (Azure's logging-command
    marker, honoured anywhere in a line) only occurs inside strings, where ``#\\u0023`` is the same text."""
    if indent:
        text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + "  " * level)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("##", "#\\u0023").encode("utf-8", "backslashreplace")


def render(document: Any, *, indent: bool = False) -> bytes:
    """The JSON for stdout: indented for a terminal, compact for a pipe or file (as ``gh api``)."""
    return _dump(document, indent) + b"\n"


Answer = Union[Pages, IO[bytes]]  # the pages, or the file a body that is not JSON was streamed to
ErrorShown = Callable[[Any], None]  # is handed an error answer's JSON document


class Destination:
    """Where the answer goes: stdout, or ``--output-file FILE``, a :class:`secret_files.PendingFile`
    renamed over FILE only when complete; ``-`` spools to a private temporary file, then stdout."""

    def __init__(self, path: Optional[str], stdout: Any) -> None:
        self.path = path if path != "-" else None
        self.spooled = path == "-"  # the answer to a private temporary file first, then to stdout
        self.stdout: IO[bytes] = getattr(stdout, "buffer", stdout)  # the answer's bytes, as they came
        self.out = cast(IO[bytes], WholeWrites(self.stdout))
        self.pending: Optional[PendingFile] = None
        self.spool: Optional[IO[bytes]] = None

    def open(self) -> None:
        """The temporary file (or spool) the answer is written to, made inside the ``try`` whose ``finally``
        calls :meth:`discard`: an interrupt at any point leaves no file and no folder made for it."""
        with interruptions_held():
            if self.spooled:
                self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - discard closes it
            if self.path is None:
                return
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
                answer.write_to(self.out, indent=self.stdout.isatty())
            elif answer is not None:
                answer.seek(0)
                shutil.copyfileobj(answer, self.out)
            self.stdout.flush()
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

    def deliver_filtered(self, pages: Pages, jq: JqFilter) -> None:
        """--jq: the document through jq, to stdout (--jq does not go with --output-file)."""
        with tempfile.TemporaryFile() as document:
            try:
                pages.write_to(document, indent=False)
            except OSError as exc:
                raise no_room_for("The answer", exc) from None
            self.out.write(jq.apply(document, indent=self.stdout.isatty()))
        self.stdout.flush()

    def show_error(self, document: Any) -> None:
        """An error answer's document on stdout, as gh prints it, made safe as every answer is."""
        self.out.write(render(document, indent=self.stdout.isatty()))
        self.stdout.flush()

    def unwritable(self, exc: OSError) -> DeliveryError:
        if self.path is None:
            return no_room_for("The answer", exc)
        return DeliveryError(
            f"--output-file {shown(self.path, path=True)} could not be written "
            f"({exc.strerror or type(exc).__name__}); nothing was left there: free space in its folder, or "
            "give a file on a disk with room.",
            title="Could not write the answer",
        )

    def discard(self) -> None:
        if self.pending is not None:
            self.pending.discard()
        elif self.spool is not None:
            self.spool.close()


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


# --jq: jq runs with these variables only (its $ENV would otherwise show the key or a token in the environment).
JQ_ENVIRONMENT = ("PATH", "SYSTEMROOT", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
# argv, stdin (None: none), environment -> exit status, stdout, stderr
Program = Callable[[Sequence[str], Optional[IO[bytes]], Mapping[str, str]], Tuple[int, bytes, bytes]]


def run_program(argv: Sequence[str], stdin: Optional[IO[bytes]], env: Mapping[str, str]) -> Tuple[int, bytes, bytes]:
    """The real :data:`Program`: a process, its output captured."""
    done = subprocess.run(
        list(argv),
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env=dict(env),
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


@dataclass(frozen=True)
class JqFilter:
    """``--jq EXPR``: jq found on PATH and EXPR compiled by it, before anything is sent."""

    jq: str
    expression: str
    env: Mapping[str, str]
    run: Program

    @classmethod
    def ready(cls, expression: str, env: Mapping[str, str], run: Program) -> JqFilter:
        install = "install jq (apt-get install jq, brew install jq, winget install jqlang.jq), or drop --jq."
        found = shutil.which("jq", path=env.get("PATH", os.defpath))
        if found is None:
            raise InputError(f"--jq needs the jq program, which is not on PATH: {install}")
        # A leading space: an EXPR starting with - is not taken for one of jq's options.
        program = f" {expression}" if expression.startswith("-") else expression
        jq = cls(found, program, {name: env[name] for name in JQ_ENVIRONMENT if name in env}, run)
        try:
            status, _, error = run([found, "-n", f"if false then ({program}\n) else empty end"], None, jq.env)
        except OSError as exc:  # on PATH but not a program this system runs (a broken or foreign binary)
            said = f"{shown(found, path=True)} could not run ({exc.strerror or type(exc).__name__})"
            raise InputError(f"--jq needs the jq program; {said}: {install}") from None
        if status != 0:
            raise InputError(
                f"--jq {shown(expression)} is not a program jq can compile ({_said(error)}): fix the expression."
            )
        return jq

    def apply(self, document: IO[bytes], *, indent: bool) -> bytes:
        """What EXPR makes of ``document``, strings unquoted (as gh prints them), made safe for a CI log."""
        document.seek(0)
        options = ["-r", "-M"] if indent else ["-r", "-M", "-c"]
        try:
            status, output, error = self.run([self.jq, *options, self.expression], document, self.env)
        except OSError as exc:  # it ran for ready(): no process could be made now (memory, process limits)
            status, output, error = 1, b"", f"it could not start: {exc.strerror or type(exc).__name__}".encode()
        if status != 0:
            raise DeliveryError(
                f"--jq {shown(self.expression.strip())} failed on the answer ({_said(error)}), so nothing was "
                "printed: fix the expression, or drop --jq to see the whole answer.",
                title="--jq could not filter the answer",
            )
        return safe_for_log(output)


def _said(error: bytes) -> str:
    lines = [line for line in error.decode("utf-8", "replace").splitlines() if line.strip()]
    return "jq said: " + quote_foreign(lines[0], 200) if lines else "jq said nothing"


_COMMAND_AT_LINE_START = re.compile(r"(?m)^([ \t]*):(?=:)")


def safe_for_log(output: bytes) -> bytes:
    """jq's text with the filter our JSON has: control characters (not line breaks or tabs) as ``\\uXXXX``, ``##``
    (Azure's marker) as ``#\\u0023``, and ``::`` opening a line (GitHub's) as ``\\u003a:``."""
    text = output.decode("utf-8", "backslashreplace")
    text = "".join(f"\\u{ord(char):04x}" if is_control(char) and char not in "\n\t" else char for char in text)
    text = _COMMAND_AT_LINE_START.sub(lambda match: match.group(1) + "\\u003a", text.replace("##", "#\\u0023"))
    return text.encode("utf-8", "backslashreplace")
