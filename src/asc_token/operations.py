"""Upload operations: Apple's instructions for sending a file's bytes to object storage, checked and carried out.

App Store Connect answers a reservation (a build upload file, a screenshot...) with ``uploadOperations``:
each names bytes of the file, a URL, a method and headers. The URLs are pre-signed links on other hosts,
so no credential is ever sent to them, and only their scheme, host and path are ever shown (the query
is the signature). :func:`check_plan` refuses a plan that would not rebuild the file exactly before any
byte is sent; :func:`send_parts` streams each part from disk, a few at a time, retrying what another
attempt may fix. Sessions, clocks and sleep are injected (:class:`SendOptions`).
"""

from __future__ import annotations

import os
import queue
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, TextIO, Tuple, cast
from urllib.parse import urlsplit

from . import messages as text
from .assets import attributes
from .errors import (
    OperationDestinationError,
    OperationExpiredError,
    OperationMalformedError,
    OperationPastEndError,
    OperationsGapError,
    OperationsOverlapError,
    PartFileError,
    PartRefusedError,
    PartServerError,
    PartUnreachableError,
    PartUploadError,
)
from .redact import quote_foreign
from .transport import USER_AGENT, RetryPolicy, Session, classify_network_error, default_session
from .urls import operation_url_problem, proxy_for

if TYPE_CHECKING:
    from .world import Io

DEFAULT_PARALLEL = 4
PROGRESS_SECONDS = 5.0  # a progress line at most this often: a CI log, not a terminal
# total_seconds is not used: a part takes as long as the link needs; each send and each wait for the
# answer is bounded by the timeouts instead.
PART_POLICY = RetryPolicy(max_attempts=5, connect_timeout=15.0, read_timeout=60.0, backoff_cap=8.0)
EXPIRY_MARGIN = timedelta(seconds=10)  # a part started this close to its link's expiration may arrive after it
_READ_BLOCK = 256 * 1024  # what a body hands out per read when asked for everything
_SEND_BLOCK = 256 * 1024  # what urllib3 asks a body for at a time (storage_session)
_ANSWER_LIMIT = 16 * 1024  # of an error answer's body, only this much is read
_RETRIED_NO_ANSWERS = ("reset", "timeout")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")  # an HTTP method or header name (RFC 9110)
# A header value requests sends: Latin-1 without controls (tab inside only), no white space at either end.
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]{0,8190}[\x21-\x7e\x80-\xff])?)?")
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")

Header = Tuple[str, str]


@dataclass(frozen=True)
class UploadOperation:
    """One part: bytes [offset, offset + length) of the file, sent with ``method`` and ``headers`` to ``url``."""

    method: str
    url: str = field(repr=False)  # a pre-signed link: its query is a signature, never shown
    offset: int
    length: int
    headers: Tuple[Header, ...] = ()
    part_number: Optional[int] = None  # DeliveryFileUploadOperation only
    expiration: Optional[datetime] = None  # DeliveryFileUploadOperation only; timezone-aware
    position: int = 0  # 1-based place in Apple's list: names a part that has no part number

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def name(self) -> str:
        return f"part {self.part_number if self.part_number is not None else self.position}"

    @property
    def label(self) -> str:
        """How a message names the part: "part 3 (bytes 10485760-15728639)"."""
        return f"{self.name} (bytes {self.offset}-{self.end - 1})"


@dataclass(frozen=True)
class PartReceipt:
    """A part the object storage accepted."""

    label: str
    offset: int
    length: int
    status: int
    etag: str
    attempts: int


@dataclass(frozen=True)
class SentFile:
    size: int
    seconds: float  # from the first part sent to the last part answered
    parts: Tuple[PartReceipt, ...]  # in file order
    refreshed: bool  # whether fresh operations were asked for (an expired link)


# Fresh operations for the same file (App Store Connect's GET of the reserved resource), parsed.
Refresh = Callable[[], Sequence[UploadOperation]]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def storage_session(env: Mapping[str, str]) -> Session:
    """transport's session (it reads nothing from the environment by itself; the CA settings are honoured) that
    sends a body in 256 KiB blocks, not urllib3's 16 KiB: a sixteenth of the reads and sends for each part."""
    import requests.adapters  # deferred, as in transport

    class LargerBlocks(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **{**kwargs, "blocksize": _SEND_BLOCK})

    session: Any = default_session(env)
    for prefix in ("https://", "http://"):
        session.mount(prefix, LargerBlocks())
    return cast(Session, session)


@dataclass(frozen=True)
class SendOptions:
    parallel: int = DEFAULT_PARALLEL  # parts in flight at once
    policy: RetryPolicy = PART_POLICY
    progress: Optional[TextIO] = None  # where progress lines go (stderr); None: nowhere
    progress_every: float = PROGRESS_SECONDS
    now: Callable[[], datetime] = _utc_now  # judges the operations' expiration
    monotonic: Callable[[], float] = time.monotonic  # times progress and rates
    sleep: Optional[Callable[[float], None]] = None  # None: really wait, cut short when another part fails
    jitter: Callable[[], float] = random.random
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)  # the proxy and CA settings
    open_session: Callable[[Mapping[str, str]], Session] = storage_session  # one per worker thread


def send_options(io: Io, parallel: int = DEFAULT_PARALLEL) -> SendOptions:
    """A run's options: its clock (for the links' expiration), clocks, sleep, stderr and environment."""
    return SendOptions(
        parallel=parallel,
        progress=io.err(),
        now=lambda: datetime.fromtimestamp(io.clock(), timezone.utc),
        monotonic=io.monotonic,
        sleep=io.sleep,
        env=io.env,
    )


# --- reading and checking the plan -----------------------------------------------------------------


def parse_operations(items: Any) -> List[UploadOperation]:
    """Apple's ``uploadOperations`` (UploadOperation or DeliveryFileUploadOperation) as records, in Apple's order.

    Raises :class:`OperationMalformedError` for a missing field or one of the wrong type; the values'
    sense (lengths, gaps, destinations) is :func:`check_plan`'s."""
    if not isinstance(items, list):
        raise OperationMalformedError(text.PLAN_MALFORMED.format(item="list", problem="is missing or not a list"))
    return [_operation(item, position, len(items)) for position, item in enumerate(items, 1)]


def operations_in(document: Any) -> List[UploadOperation]:
    """The ``uploadOperations`` of a reserved resource, as App Store Connect's answer about it gives them."""
    return parse_operations(attributes(document).get("uploadOperations"))


def _operation(item: Any, position: int, count: int) -> UploadOperation:
    def refuse(problem: str) -> OperationMalformedError:
        return OperationMalformedError(text.PLAN_MALFORMED.format(item=f"{position} of {count}", problem=problem))

    if not isinstance(item, dict):
        raise refuse("is not an object")
    method, url = item.get("method"), item.get("url")
    if not isinstance(method, str) or not _TOKEN.fullmatch(method):
        raise refuse("has no usable method")
    if not isinstance(url, str) or not url:
        raise refuse("has no url")
    numbers = {field_name: item.get(field_name) for field_name in ("offset", "length", "partNumber")}
    for field_name, number in numbers.items():
        if not (isinstance(number, int) and not isinstance(number, bool)) and not (
            field_name == "partNumber" and number is None
        ):
            raise refuse(f"has no whole number as its {field_name}")
    listed = item.get("requestHeaders") or []
    if not isinstance(listed, list):
        raise refuse("has request headers that are not a list")
    headers: List[Header] = []
    for header in listed:
        name, value = (header.get("name"), header.get("value")) if isinstance(header, dict) else (None, None)
        if not (isinstance(name, str) and _TOKEN.fullmatch(name)) or not (
            isinstance(value, str) and _HEADER_VALUE.fullmatch(value)
        ):
            raise refuse("has a request header without a usable name and value")
        headers.append((name, value))
    expiration = item.get("expiration")
    expires = _timestamp(expiration) if isinstance(expiration, str) else None
    if expiration is not None and expires is None:
        raise refuse("has an expiration that is not an ISO 8601 time")
    return UploadOperation(
        method=method,
        url=url,
        offset=int(item["offset"]),
        length=int(item["length"]),
        headers=tuple(headers),
        part_number=numbers["partNumber"],
        expiration=expires,
        position=position,
    )


def _timestamp(value: str) -> Optional[datetime]:
    """An ISO 8601 date-time with a zone (Apple writes 'Z'), any number of fraction digits, as Python 3.9 reads it."""
    match = _TIMESTAMP.fullmatch(value.strip())
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    micro = (fraction or "")[:6].ljust(6, "0")
    try:
        return datetime.fromisoformat(f"{day}T{clock}.{micro}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return None


def check_plan(operations: Sequence[UploadOperation], file_size: int) -> Tuple[UploadOperation, ...]:
    """The operations in file order, when together they send every byte of a ``file_size``-byte file exactly
    once, each to a URL that may receive it; else the error that says why, before any byte is sent."""
    ordered = sorted(operations, key=lambda operation: (operation.offset, operation.length))
    numbers: Dict[int, UploadOperation] = {}
    for operation in ordered:
        if operation.offset < 0 or operation.length < 1:
            problem = f"asks for {operation.length} bytes at offset {operation.offset}"
            raise OperationMalformedError(text.PLAN_MALFORMED.format(item=f"for {operation.name}", problem=problem))
        if operation.part_number is not None and numbers.setdefault(operation.part_number, operation) is not operation:
            problem = f"has the part number of another one (bytes {numbers[operation.part_number].offset}-)"
            raise OperationMalformedError(text.PLAN_MALFORMED.format(item=f"for {operation.name}", problem=problem))
        problem = operation_url_problem(operation.url)
        if problem:
            url = shown_destination(operation.url)
            raise OperationDestinationError(
                text.PLAN_DESTINATION.format(part=operation.label, url=url, problem=problem)
            )
        if operation.end > file_size:
            raise OperationPastEndError(text.PLAN_PAST_END.format(part=operation.label, size=file_size))
    expected, previous = 0, None
    for operation in ordered:
        if operation.offset > expected:
            raise OperationsGapError(text.PLAN_GAP.format(start=expected, end=operation.offset - 1, size=file_size))
        if previous is not None and operation.offset < expected:
            end = min(expected, operation.end) - 1
            raise OperationsOverlapError(
                text.PLAN_OVERLAP.format(part=previous.label, other=operation.label, start=operation.offset, end=end)
            )
        expected, previous = operation.end, operation
    if expected < file_size:
        raise OperationsGapError(text.PLAN_GAP.format(start=expected, end=file_size - 1, size=file_size))
    return tuple(ordered)


def shown_destination(url: str) -> str:
    """``url`` as scheme://host[:port]/path: never its query (a pre-signed link's signature) nor a user name."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an unusable URL"
    host = f"[{host}]" if ":" in host else host
    # Each part made safe alone: a segment that looks like key material is hidden, the rest stays readable.
    path = "/".join(quote_foreign(segment, 100) for segment in parts.path[:400].split("/"))
    return quote_foreign(f"{parts.scheme}://{host}{port}", 100) + path


# --- the body, the progress --------------------------------------------------------------------------


class _UnreadableFileError(Exception):
    """The file could not be read for a part. Not an OSError: urllib3 would take it for a broken connection."""


class _StoppedError(Exception):
    """Another part failed (or the run was interrupted): this part's request is abandoned."""


class FileSlice:
    """Bytes [offset, offset + length) of a file as a request body. requests sends a body that has a length and
    ``read`` with that Content-Length, reading it a block at a time, so a part never sits in memory whole."""

    def __init__(self, path: str, offset: int, length: int, on_read: Callable[[int], None] = lambda count: None):
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - closed by close(), after the request
            self._file.seek(offset)
        except OSError as exc:
            raise _UnreadableFileError(exc.strerror or type(exc).__name__) from None
        self._length = self._left = length
        self._on_read = on_read

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        wanted = self._left if size is None or size < 0 else min(size, self._left)
        if wanted <= 0:
            return b""
        try:
            chunk = self._file.read(wanted)
        except OSError as exc:
            raise _UnreadableFileError(exc.strerror or type(exc).__name__) from None
        if not chunk:
            raise _UnreadableFileError("the file ended early (it is shorter than when the upload began)")
        self._left -= len(chunk)
        self._on_read(len(chunk))
        return chunk

    def __iter__(self) -> Any:
        return iter(lambda: self.read(_READ_BLOCK), b"")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FileSlice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _megabytes(count: float) -> str:
    """An amount of bytes as people read it: MB, or kB and bytes for a small file."""
    if count < 1e3:
        return f"{count:.0f} bytes"
    return f"{count / 1e3:,.1f} kB" if count < 1e6 else f"{count / 1e6:,.1f} MB"


class Progress:
    """Lines on ``stream`` about one file: a first line, one at most every ``every`` seconds while bytes flow,
    and always a last one. Parts report from their threads."""

    def __init__(self, name: str, total: int, stream: Optional[TextIO], monotonic: Callable[[], float], every: float):
        self.name, self.total, self.stream, self.monotonic, self.every = name, total, stream, monotonic, every
        self.sent = 0  # bytes handed to the network; an attempt that fails takes its own back
        self._lock = threading.Lock()
        self._started = self._last_time = monotonic()
        self._last_sent = 0

    def start(self, parts: int, parallel: int) -> None:
        self._started = self._last_time = self.monotonic()
        plural = "s" if parts != 1 else ""
        self.say(f"Uploading {self.name}: {_megabytes(self.total)} in {parts} part{plural}, {parallel} at a time.")

    def advance(self, count: int) -> None:
        with self._lock:
            self.sent += count
            now = self.monotonic()
            if count <= 0 or now - self._last_time < self.every:
                return
            rate = (self.sent - self._last_sent) / max(now - self._last_time, 1e-9)
            self._last_time, self._last_sent = now, self.sent
            line = f"Uploading {self.name}: {_megabytes(self.sent)} of {_megabytes(self.total)} ({self._percent()}%)"
            self._write(f"{line}, {_megabytes(max(rate, 0))}/s.")

    def finish(self, done: bool) -> float:
        """Says the last line; the seconds since :meth:`start`."""
        seconds = self.monotonic() - self._started
        if done:
            rate = _megabytes(self.total / max(seconds, 1e-9))
            self.say(f"Uploaded {self.name}: {_megabytes(self.total)} in {seconds:.1f} s ({rate}/s).")
        else:
            sent = f"{_megabytes(self.sent)} of {_megabytes(self.total)} ({self._percent()}%)"
            self.say(f"Upload of {self.name} stopped after {seconds:.1f} s, {sent} sent.")
        return seconds

    def say(self, line: str) -> None:
        with self._lock:
            self._write(line)

    def _percent(self) -> int:
        return 100 if self.total <= 0 else max(0, min(100, self.sent * 100 // self.total))

    def _write(self, line: str) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or full stderr: the upload matters more than its progress
            pass


# --- sending -----------------------------------------------------------------------------------------


def send_parts(
    path: str,
    operations: Sequence[UploadOperation],
    options: Optional[SendOptions] = None,
    refresh: Optional[Refresh] = None,
) -> SentFile:
    """Send the file at ``path`` as ``operations`` say, ``options.parallel`` parts at a time.

    The plan is checked first (:func:`check_plan`, nothing sent when it fails). Each part goes with exactly
    its method and headers (and a User-Agent), streamed from disk, with no credential: no token, no
    .netrc login, no proxy credentials of the API. 5xx, 429 (after its Retry-After) and resets or timeouts are
    retried with bounded backoff. A part whose link has expired asks ``refresh`` once for fresh operations.
    The first part that fails stops the others and raises a :class:`~errors.PartUploadError`.
    """
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise PartFileError(
            text.PART_FILE.format(part="its parts", file=_file_name(path), what=exc.strerror or type(exc).__name__)
        ) from None
    plan = check_plan(operations, size)
    return _Sender(path, plan, options or SendOptions(), refresh).run(size)


def _file_name(path: str) -> str:
    return quote_foreign(os.path.basename(path) or path, 120)


def _no_credentials(request: Any) -> Any:
    """requests' auth hook that adds nothing: given explicitly, it keeps requests from adding a .netrc login."""
    return request


@dataclass(frozen=True)
class _Answer:
    status: int = 0  # 0: no answer
    kind: str = ""  # when no answer: classify_network_error's kind
    retry_after: Optional[float] = None
    said: str = ""  # the storage's error code and message, made safe to show
    expired: bool = False  # the storage says the link has expired
    etag: str = ""


class _Sender:
    """One file's parts, sent by a pool of threads that share the plan in force, the progress and the first failure."""

    def __init__(self, path: str, plan: Tuple[UploadOperation, ...], options: SendOptions, refresh: Optional[Refresh]):
        self.path, self.plan, self.options, self.refresh = path, plan, options, refresh
        self.name = _file_name(path)
        self.size = 0
        self.current = {(operation.offset, operation.length): operation for operation in plan}  # by (offset, length)
        self.generation = 0  # 1 once fresh operations came
        self.lock = threading.Lock()  # the plan in force, the sessions and the first failure
        self.refreshing = threading.Lock()  # one refresh at a time; the others wait for it
        self.failure: Optional[BaseException] = None
        self.stopping = threading.Event()
        self.local = threading.local()
        self.sessions: List[Session] = []
        self.progress = Progress(self.name, 0, options.progress, options.monotonic, options.progress_every)

    def run(self, size: int) -> SentFile:
        self.size = self.progress.total = size
        workers = max(1, min(self.options.parallel, len(self.plan)))
        self.progress.start(len(self.plan), workers)
        slots: queue.SimpleQueue[Tuple[int, int]] = queue.SimpleQueue()
        for operation in self.plan:
            slots.put((operation.offset, operation.length))
        receipts: Dict[Tuple[int, int], PartReceipt] = {}
        # Daemon threads, not a ThreadPoolExecutor (whose workers the interpreter joins at exit): after an
        # interrupt, a part waiting for an answer must not keep the process alive for its read timeout.
        threads = [
            threading.Thread(target=self._work, args=(slots, receipts), name=f"upload-part-{n}", daemon=True)
            for n in range(workers)
        ]
        done, interrupted = False, False
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()  # interruptible: SIGINT or SIGTERM lands here
            if self.failure is not None:
                raise self.failure
            parts = tuple(receipts[(operation.offset, operation.length)] for operation in self.plan)
            done = True
        except KeyboardInterrupt:  # SIGINT, or SIGTERM (dispatch.Terminated): stop at once, leave the rest
            interrupted = True
            raise
        finally:
            self.stopping.set()
            if not interrupted:
                # After a failure the others end within a block (their bodies stop) or an answer's wait.
                for thread in threads:
                    thread.join()
                self._close_sessions()
            seconds = self.progress.finish(done)
        return SentFile(size, seconds, parts, self.generation > 0)

    def _work(self, slots: queue.SimpleQueue[Tuple[int, int]], receipts: Dict[Tuple[int, int], PartReceipt]) -> None:
        """One worker: parts from ``slots`` until none is left or the upload stops."""
        while not self.stopping.is_set():
            try:
                slot = slots.get_nowait()
            except queue.Empty:
                return
            try:
                receipts[slot] = self._send_part(slot)
            except BaseException:  # noqa: BLE001 - _send_part kept the first failure and stopped the others
                return

    def _send_part(self, slot: Tuple[int, int]) -> PartReceipt:
        try:
            return self._deliver(slot)
        except _StoppedError:
            raise
        except BaseException as exc:
            with self.lock:
                if self.failure is None:
                    self.failure = exc
            self.stopping.set()
            raise

    def _deliver(self, slot: Tuple[int, int]) -> PartReceipt:
        policy = self.options.policy
        with self.lock:
            operation, generation = self.current[slot], self.generation
        attempt = 0
        while True:
            if self.stopping.is_set():
                raise _StoppedError
            if self._expired(operation):
                operation, generation = self._fresh(slot, generation, operation)
                continue
            attempt += 1
            answer = self._attempt(operation)
            if 200 <= answer.status < 300:
                return PartReceipt(
                    operation.label, operation.offset, operation.length, answer.status, answer.etag, attempt
                )
            if answer.status == 403 and (answer.expired or self._expired(operation)):
                operation, generation = self._fresh(slot, generation, operation)
                continue
            pause = self._retry_wait(answer, attempt)
            if pause is None or attempt >= policy.max_attempts:
                raise self._failed(operation, answer, attempt)
            problem = f"HTTP {answer.status}" if answer.status else text.PART_UNREACHABLE_KINDS[answer.kind][0]
            self.progress.say(f"{operation.label}: {problem} on attempt {attempt}; retrying in {pause:.1f} s.")
            if self.options.sleep is not None:
                self.options.sleep(pause)
            else:
                self.stopping.wait(pause)

    def _expired(self, operation: UploadOperation) -> bool:
        return operation.expiration is not None and self.options.now() >= operation.expiration - EXPIRY_MARGIN

    def _fresh(self, slot: Tuple[int, int], generation: int, expired: UploadOperation) -> Tuple[UploadOperation, int]:
        """The operation now in force for ``slot``: fresh ones asked for once, for every part; else the error."""
        with self.refreshing:
            with self.lock:
                if self.generation > generation:  # another part already asked
                    return self.current[slot], self.generation
            refreshed = ""
            if self.refresh is not None and self.generation == 0:
                fresh = check_plan(self.refresh(), self.size)
                if {(operation.offset, operation.length) for operation in fresh} == set(self.current):
                    with self.lock:
                        self.current = {(operation.offset, operation.length): operation for operation in fresh}
                        self.generation += 1
                        return self.current[slot], self.generation
                refreshed = ", and the fresh operations App Store Connect gave divide the file differently"
            elif self.generation > 0:
                refreshed = ", even with the fresh operations App Store Connect gave"
        when = f" at {expired.expiration.isoformat()}" if expired.expiration is not None else ""
        raise OperationExpiredError(
            text.PART_EXPIRED.format(part=expired.label, file=self.name, when=when, refreshed=refreshed)
        )

    def _attempt(self, operation: UploadOperation) -> _Answer:
        """One request for the part; an answer, or the kind of no answer. The bytes it sent count until it fails."""
        counted = 0

        def count(size: int) -> None:
            nonlocal counted
            if self.stopping.is_set():
                raise _StoppedError  # abandons the body where it stands
            counted += size
            self.progress.advance(size)

        answer: Optional[_Answer] = None
        try:
            with FileSlice(self.path, operation.offset, operation.length, count) as body:
                answer = self._exchange(operation, body)
        except _UnreadableFileError as exc:
            what = str(exc)
            raise PartFileError(text.PART_FILE.format(part=operation.label, file=self.name, what=what)) from None
        except _StoppedError:
            raise
        except Exception as exc:
            kind = classify_network_error(exc)
            if kind is None:
                raise
            answer = _Answer(kind=kind)
        finally:
            if answer is None or not 200 <= answer.status < 300:
                self.progress.advance(-counted)
        return answer

    def _exchange(self, operation: UploadOperation, body: FileSlice) -> _Answer:
        policy = self.options.policy
        proxy = proxy_for(operation.url, self.options.env)
        response = self._session().request(
            operation.method,
            operation.url,
            data=body,
            headers={"User-Agent": USER_AGENT, **dict(operation.headers)},
            auth=_no_credentials,
            timeout=(policy.connect_timeout, policy.read_timeout),
            allow_redirects=False,
            stream=True,
            proxies={"https": proxy, "http": proxy} if proxy else {},
        )
        try:
            status = int(response.status_code)
            headers = {str(name).lower(): str(value) for name, value in response.headers.items()}
            if 200 <= status < 300:
                return _Answer(status, etag=headers.get("etag", "")[:200])
            said, expired = _storage_error(_first_bytes(response))
            raw = headers.get("retry-after", "").strip()
            retry_after = min(float(raw), policy.retry_after_cap) if re.fullmatch(r"[0-9]{1,6}", raw) else None
            return _Answer(status, retry_after=retry_after, said=said, expired=status == 403 and expired)
        finally:
            close = getattr(response, "close", None)
            if callable(close):
                close()

    def _session(self) -> Session:
        session: Optional[Session] = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = self.options.open_session(self.options.env)
            with self.lock:
                self.sessions.append(session)
        return session

    def _close_sessions(self) -> None:
        for session in self.sessions:
            close = getattr(session, "close", None)
            if callable(close):
                close()

    def _retry_wait(self, answer: _Answer, attempt: int) -> Optional[float]:
        """Seconds to wait before another attempt, or None when another attempt would not help."""
        policy = self.options.policy
        backoff = min(policy.backoff_cap, policy.backoff_base * 2.0 ** (attempt - 1))
        backoff *= 0.5 + self.options.jitter() / 2  # "equal jitter", as transport's: never zero, never above the cap
        if answer.status == 0:
            return backoff if answer.kind in _RETRIED_NO_ANSWERS else None
        if answer.status == 429 or answer.status >= 500:
            return answer.retry_after if answer.retry_after is not None else backoff
        return None

    def _failed(self, operation: UploadOperation, answer: _Answer, attempts: int) -> PartUploadError:
        fields = {"part": operation.label, "file": self.name, "url": shown_destination(operation.url)}
        tried = f" ({attempts} attempts)" if attempts > 1 else ""
        if answer.status == 0:
            what, fix = text.PART_UNREACHABLE_KINDS.get(answer.kind, ("no answer came", "re-run the upload"))
            return PartUnreachableError(text.PART_UNREACHABLE.format(**fields, what=what, tried=tried, fix=fix))
        if answer.status == 429 or answer.status >= 500:
            message = text.PART_SERVER.format(**fields, status=answer.status, attempts=attempts)
            return PartServerError(message, details=f"The last answer said: {answer.said}" if answer.said else "")
        said = f" ({answer.said})" if answer.said else ""
        return PartRefusedError(text.PART_REFUSED.format(**fields, status=answer.status, said=said))


def _first_bytes(response: Any) -> bytes:
    """The start of an error answer's body, bounded: it only has to name the error."""
    iterate = getattr(response, "iter_content", None)
    if callable(iterate):
        return bytes(next(iter(iterate(_ANSWER_LIMIT)), b""))[:_ANSWER_LIMIT]
    return bytes(getattr(response, "content", b""))[:_ANSWER_LIMIT]


def _storage_error(body: bytes) -> Tuple[str, bool]:
    """S3's ``<Code>`` and ``<Message>`` made safe to show, and whether they say the link expired."""
    answer = body.decode("utf-8", "replace")
    code = re.search(r"<Code>([^<]{1,100})</Code>", answer)
    message = re.search(r"<Message>([^<]{1,300})</Message>", answer)
    said = ": ".join(match.group(1).strip() for match in (code, message) if match is not None)
    expired = "expired" in said.lower()
    return quote_foreign(said, 200), expired
