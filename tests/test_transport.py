"""Network errors classified by exception class, on real failures produced against 127.0.0.1, and the
retry decisions of the transport with a scripted session, a fake clock and a recorded sleep."""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
import urllib3

from asc_token.transport import NoAnswerError, Reply, RetryPolicy, Transport, classify_network_error, parse_rate_limit

from .offline_dns import no_dns_for_invalid
from .runner import standin_running


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield listener.getsockname()[1]


@pytest.fixture
def resetting_port() -> Iterator[int]:
    """A port whose server resets the first connection (SO_LINGER 0) after reading the request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(5)

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        connection.recv(65536)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(timeout=5)
    listener.close()


def _failure(url: str, timeout: Tuple[float, float] = (2, 2), session: Any = requests) -> BaseException:
    with pytest.raises(Exception) as raised:
        session.get(url, timeout=timeout, allow_redirects=False)
    return raised.value


def _chain(exc: BaseException) -> List[type]:
    seen: List[type] = []
    pending = [exc]
    while pending and len(seen) < 20:
        current = pending.pop()
        seen.append(type(current))
        for linked in (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args[:1]):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return seen


def test_refused(closed_port: int) -> None:
    assert classify_network_error(_failure(f"http://127.0.0.1:{closed_port}/v1/apps")) == "refused"


def test_refused_plain_socket(closed_port: int) -> None:
    with pytest.raises(OSError) as raised:
        socket.create_connection(("127.0.0.1", closed_port), timeout=2)
    assert classify_network_error(raised.value) == "refused"


def test_dns() -> None:
    error = _failure("https://api.asc.invalid/v1/apps", session=no_dns_for_invalid({}))
    # The chain requests and urllib3 build for a failed lookup, not a hand-made one.
    assert {requests.exceptions.ConnectionError, urllib3.exceptions.NameResolutionError, socket.gaierror} <= set(
        _chain(error)
    )
    assert classify_network_error(error) == "dns"


def test_tls_against_a_plain_http_server() -> None:
    with standin_running() as plain:
        error = _failure(plain.url.replace("http://", "https://") + "/v1/apps")
    assert isinstance(error, requests.exceptions.SSLError)
    assert classify_network_error(error) == "tls"


def test_read_timeout(silent_port: int) -> None:
    error = _failure(f"http://127.0.0.1:{silent_port}/v1/apps", timeout=(2, 0.2))
    assert classify_network_error(error) == "timeout"


def test_reset(resetting_port: int) -> None:
    assert classify_network_error(_failure(f"http://127.0.0.1:{resetting_port}/v1/apps")) == "reset"


@pytest.mark.parametrize("error", [ValueError("no"), KeyError("x"), RuntimeError("boom"), TypeError()])
def test_not_the_network(error: BaseException) -> None:
    assert classify_network_error(error) is None


def test_a_cyclic_chain_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert classify_network_error(first) is None


# Retry decisions, with a scripted session: no server, no waiting.


class Scripted:
    """A session answering from a script: ints are statuses, exceptions are raised."""

    def __init__(self, script: List[Any], headers: Optional[Dict[str, str]] = None) -> None:
        self.script = list(script)
        self.headers = headers or {}
        self.tokens: List[str] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.tokens.append(kwargs["headers"]["Authorization"])
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return _Response(step, self.headers)


class _Response:
    def __init__(self, status: int, headers: Dict[str, str]) -> None:
        self.status_code = status
        self.headers = headers
        self.content = b'{"data": []}'


class Run:
    def __init__(self, script: List[Any], headers: Optional[Dict[str, str]] = None) -> None:
        self.session = Scripted(script, headers)
        self.now = 0.0
        self.slept: List[float] = []
        self.log: List[str] = []
        self.minted = 0

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def bearer(self, *, after_401: bool = False) -> str:
        self.minted += after_401
        return f"token-{self.minted}"

    def send(self, policy: RetryPolicy = RetryPolicy()) -> Reply:
        transport = Transport(self.session, policy, lambda: self.now, self.sleep, lambda: 1.0, self.log.append)
        return transport.send("GET", "https://asc.example/v1/apps", self)


RESET = requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))
TIMEOUT = requests.exceptions.ReadTimeout("read timed out")
REFUSED = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))


@pytest.mark.parametrize(
    ("script", "status", "slept"),
    [
        ([200], 200, []),
        ([404], 404, []),  # answers that retrying cannot change come back at once
        ([403], 403, []),
        ([500, 503, 200], 200, [1.0, 2.0]),
        ([RESET, 200], 200, [1.0]),
        ([TIMEOUT, TIMEOUT, 200], 200, [1.0, 2.0]),
        ([401, 401, 401], 401, [1.0, 2.0]),  # two more tries, then Apple's answer stands
        ([401, 200], 200, [1.0]),
        ([503] * 5, 503, [1.0, 2.0, 4.0, 8.0]),
    ],
)
def test_retry_decisions(script: List[Any], status: int, slept: List[float]) -> None:
    run = Run(script)
    assert run.send().status == status
    assert run.slept == slept
    assert not run.session.script


def test_a_401_is_retried_with_a_freshly_signed_token() -> None:
    run = Run([401, 401, 200])
    reply = run.send()
    assert (reply.status, reply.attempts) == (200, 3)
    assert run.session.tokens == ["Bearer token-0", "Bearer token-1", "Bearer token-2"]
    assert "signing a new token and retrying" in run.log[0]


@pytest.mark.parametrize(("retry_after", "waited"), [("3", 3.0), ("3600", 20.0), ("²", 1.0), ("soon", 1.0)])
def test_429_honours_retry_after_within_the_cap(retry_after: str, waited: float) -> None:
    run = Run([429, 200], {"Retry-After": retry_after})
    assert run.send().status == 200
    assert run.slept == [waited]


@pytest.mark.parametrize(("error", "kind"), [(REFUSED, "refused"), (RESET, "reset"), (TIMEOUT, "timeout")])
def test_no_answer_raises_the_kind(error: BaseException, kind: str) -> None:
    run = Run([error] * 5)
    with pytest.raises(NoAnswerError) as raised:
        run.send()
    assert raised.value.kind == kind
    assert raised.value.attempts == (1 if kind == "refused" else 5)  # refused is not retried


def test_the_deadline_bounds_the_whole_exchange() -> None:
    run = Run([503] * 5)
    reply = run.send(RetryPolicy(total_seconds=4.0))
    assert reply.status == 503 and run.now <= 4.0


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("user-hour-lim:3600;user-hour-rem:3599;", (3600, 3599)),
        ("user-hour-rem:12", (None, 12)),
        ("", (None, None)),
        ("user-hour-lim:²;user-hour-rem:-1", (None, None)),
        ("user-hour-lim:" + "9" * 50, (None, None)),
    ],
)
def test_parse_rate_limit(header: str, parsed: Tuple[Optional[int], Optional[int]]) -> None:
    assert parse_rate_limit(header) == parsed
