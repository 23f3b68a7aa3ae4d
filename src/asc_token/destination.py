"""Where ``asc-token api``'s answer goes: stdout, written whole, or a file complete or not at all."""

from __future__ import annotations

import errno
import shutil
import tempfile
from typing import IO, Any, Callable, Optional, Union, cast

from .errors import DeliveryError, InputError
from .paging import Pages, no_room_for
from .redact import shown
from .secret_files import PendingFile

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
