"""Everything a command takes from the world, in one value its entry point builds (tests pass fakes):
the environment, clocks, sleep, the HTTP session, the retry policy, the standard streams, probes."""

from __future__ import annotations

import codecs
import errno
import io
import os
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Callable, Mapping, Optional, TextIO, Tuple, cast

from .transport import RetryPolicy, Session, Transport, default_session


@dataclass(frozen=True)
class Io:
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic  # retry deadlines
    sleep: Callable[[float], None] = time.sleep
    session: Callable[[Mapping[str, str]], Session] = default_session
    policy: RetryPolicy = RetryPolicy()
    stdout: Optional[TextIO] = None  # None: sys.stdout when written
    stderr: Optional[TextIO] = None
    stdin: Optional[IO[bytes]] = None  # None: sys.stdin.buffer
    # Whether this runs in a container, and from where (the image installs under secret_files.IMAGE_HOME).
    container_probe: Callable[[], Tuple[bool, str]] = lambda: (
        os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"),
        os.path.abspath(__file__),
    )
    uid: Optional[int] = os.getuid() if hasattr(os, "getuid") else None  # who must own the key folder

    def transport(self, log: Callable[[str], None], service: str) -> Transport:
        """A transport whose session is opened at its first request: a run that sends nothing never
        imports requests."""
        return Transport(
            None, self.policy, self.monotonic, self.sleep, log=log, service=service, env=self.env, open=self.session
        )

    def out(self) -> TextIO:
        return utf8_stream(self.stdout or sys.stdout)

    def err(self) -> TextIO:
        return utf8_stream(self.stderr or sys.stderr, closed=ClosedStream(drops=True))

    def input(self) -> IO[bytes]:
        return self.stdin if self.stdin is not None else sys.stdin.buffer


class ClosedStream(io.TextIOBase):
    """A stream the caller closed (``2>&-``, ``>&-``: Python then has no sys.stderr or sys.stdout).
    Logs written to a closed stderr are dropped, never sent to stdout instead (``print(file=None)``
    would, into a ``$(...)``); a write to a closed stdout fails, as writing to a closed file does."""

    def __init__(self, *, drops: bool) -> None:
        super().__init__()
        self.drops = drops

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not self.drops:
            raise OSError(errno.EBADF, "stdout is closed")
        return len(text)

    def flush(self) -> None:
        if not self.drops:  # so that dispatch tells a closed stdout from an OSError of its own
            raise OSError(errno.EBADF, "stdout is closed")


def utf8_stream(stream: Optional[TextIO], *, closed: Optional[ClosedStream] = None) -> TextIO:
    """``stream`` writing UTF-8 whatever the locale or code page (the runner reads its pipes as UTF-8;
    Windows writes a pipe in the ANSI code page, and ``-I`` ignores PYTHONUTF8), text that cannot be
    encoded (invalid UTF-8 from the environment, surrogate-escaped) backslash-escaped, never an error;
    ``closed`` in place of a stream the caller closed."""
    if stream is None:
        return cast(TextIO, closed or ClosedStream(drops=False))
    if isinstance(stream, io.TextIOWrapper) and (
        codecs.lookup(stream.encoding).name != "utf-8" or stream.errors != "backslashreplace"
    ):
        stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    return stream
