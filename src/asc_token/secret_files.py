"""Secrets on disk, each written as a :class:`PendingFile` (0600, replaced atomically): the token
file, and the key where Apple's tools look for it (``AuthKey_<KEYID>.p8`` and fastlane's JSON) in a
:func:`private_folder`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import tempfile
import threading
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .errors import InputError, KeyFilesError
from .lifetimes import SHORT_LIFETIME_SECONDS
from .records import KeyFiles
from .redact import may_be_secret_path, shown

if TYPE_CHECKING:
    from .records import Credentials
    from .world import Io

FOLDER_NAME = "private_keys"
IMAGE_HOME = "/opt/asc-token-action/"  # where the Dockerfile installs the package
_COMPOSITE_ADVICE = (
    "use the composite action (uses: org/asc-token-action@v1) rather than the container image for key files."
)


def output_path(path: str, setting: str, example: str) -> str:
    """A path the user gave for a file we write; one that could be key material (or is empty) is refused
    before anything is created: a pasted key holds "/", and folders made of it would hold its pieces."""
    if not path.strip() or may_be_secret_path(path):
        raise InputError(
            f"{setting} is empty or looks like a key or token, not a file path (not shown): give the path "
            f"of the file to write, like {example}."
        )
    # The file is written beside and renamed over: a device (/dev/stdout), a pipe, a folder or a
    # link there would be replaced by a file holding the secret.
    if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
        raise InputError(
            f"{setting} {shown(path, path=True)} exists and is not a regular file (a folder, link, pipe "
            f"or device): give the path of a file to write, like {example}"
            + (", or - for stdout." if "-" in example else ".")
        )
    return path


@contextlib.contextmanager
def interruptions_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends, so a file and the record of it are made together: an
    interrupt then finds nothing, or what it must remove. Python runs signal handlers on the main thread
    only (whichever thread the signal reached), so the handlers are swapped there; elsewhere nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: List[int] = []
    # All read before any is swapped, so an interrupt between two swaps still finds each put back.
    earlier = [(kind, signal.getsignal(kind) or signal.SIG_DFL) for kind in (signal.SIGINT, signal.SIGTERM)]
    try:
        for kind, _ in earlier:
            signal.signal(kind, lambda signum, frame: came.append(signum))
        yield
    finally:
        _put_back(earlier)
        for signum in dict.fromkeys(came):  # each, to the handler it would have met: one ignored hides none
            signal.raise_signal(signum)


def _put_back(handlers: Sequence[Tuple[int, Any]]) -> None:
    """Each handler put back, though one put back first may raise at once for a signal that came meanwhile
    (signal.signal also runs those pending first): that interrupt is raised when all are back."""
    left, interrupted = list(handlers), None
    while left:
        try:
            while left:
                signal.signal(*left[0])
                left.pop(0)
        except KeyboardInterrupt as error:  # SIGINT's, SIGTERM's Terminated; any other error is no signal's
            interrupted = interrupted or error
    if interrupted is not None:
        raise interrupted


class PendingFile:
    """A file for ``path`` that is never readable by others and never half-written: ``stream`` is a
    temporary file beside it (so the rename is atomic), created 0600 by mkstemp, renamed over
    ``path`` by :meth:`commit`, removed by :meth:`discard`; an earlier file is replaced, never appended to.
    With ``make_folder`` missing folders are made, and removed again by a discard before the commit.
    Create one inside :func:`interruptions_held`, with what will discard it."""

    def __init__(self, path: str, *, make_folder: bool = False) -> None:
        self._folder = os.path.dirname(os.path.abspath(path))
        self._made: Optional[str] = None  # the topmost folder made here: removed again unless committed
        if make_folder and not os.path.isdir(self._folder):
            top = self._folder
            while not os.path.exists(os.path.dirname(top)):
                top = os.path.dirname(top)
            os.makedirs(self._folder, exist_ok=True)
            self._made = top
        self._done = False
        try:
            handle, self._temporary = tempfile.mkstemp(prefix=".tmp-", dir=self._folder)
        except OSError:
            self._remove_made_folders()
            raise
        self.path = path
        self.stream = os.fdopen(handle, "w+b")

    def commit(self) -> None:
        self.stream.close()
        os.replace(self._temporary, self.path)
        self._done = True

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # a failed write's bytes cannot be flushed now: the file goes anyway
            self.stream.close()
        if not self._done and os.path.exists(self._temporary):
            os.unlink(self._temporary)
        if not self._done:
            self._remove_made_folders()

    def _remove_made_folders(self) -> None:
        folder = self._folder
        while self._made is not None and folder.startswith(self._made):
            with contextlib.suppress(OSError):  # not empty (another writer's file): it stays
                os.rmdir(folder)
            folder = os.path.dirname(folder)


def write_secret_file(path: str, content: str) -> None:
    """Create or replace ``path`` with ``content`` as a :class:`PendingFile` (its folders made); an
    interrupt waits until it is written or removed (a small file: no noticeable wait)."""
    with interruptions_held():
        pending = PendingFile(path, make_folder=True)
        try:
            pending.stream.write(content.encode("utf-8"))
            pending.commit()
        finally:
            pending.discard()


def write_key_files(base_dir: Optional[str], key_pem: str, credentials: Credentials, io: Io) -> KeyFiles:
    in_container, code_path = io.container_probe()
    if is_container_action(io.env, in_container=in_container, code_path=code_path):
        raise KeyFilesError(
            f"write-key-files does not work in the container image: its RUNNER_TEMP ({base_dir or 'unset'}) "
            f"is not the folder later steps see, so they would never find the key files; {_COMPOSITE_ADVICE}",
            details=(
                "A container step has its own file system. GitHub and act start it with a RUNNER_TEMP that "
                "later steps do not share. The composite action runs where the job runs, also in a "
                "`container:` job, so its key files are there for the next steps."
            ),
        )
    if not base_dir or not os.path.isdir(base_dir):
        raise KeyFilesError(
            "write-key-files needs the runner's temporary folder (RUNNER_TEMP), and it is "
            f"{'not set' if not base_dir else 'not a folder here'}: {_COMPOSITE_ADVICE}",
            details=(
                "Container steps do not see the runner's RUNNER_TEMP, and a key written anywhere "
                "else would outlive the job."
            ),
        )
    directory = private_folder(os.path.join(base_dir, FOLDER_NAME), io.uid)
    key_id = credentials.key_id
    key_path = os.path.join(directory, f"AuthKey_{key_id}.p8")
    json_path = os.path.join(directory, f"fastlane_api_key_{key_id}.json")
    fastlane: Dict[str, object] = {
        "key_id": key_id,
        "key": key_pem,
        # fastlane signs its own tokens for any request, so never beyond Apple's 20 minutes.
        "duration": min(credentials.expires_in, SHORT_LIFETIME_SECONDS),
        "in_house": credentials.api.fastlane_in_house,  # true for the Enterprise Program API
    }
    if credentials.issuer_id is not None:  # individual keys have none; fastlane then uses sub: user
        fastlane["issuer_id"] = credentials.issuer_id
    with interruptions_held():  # both files or neither, an interrupt too: it comes after the key is removed
        try:
            for path, content in ((key_path, key_pem), (json_path, json.dumps(fastlane, indent=2) + "\n")):
                write_secret_file(path, content)
        except OSError as exc:
            if path == json_path:  # both files or neither: a tool must not find a key without its JSON
                with contextlib.suppress(OSError):
                    os.unlink(key_path)
            raise KeyFilesError(
                f"write-key-files could not write {path} ({exc.strerror or type(exc).__name__}): RUNNER_TEMP "
                "must be a folder this step can write, with free space."
            ) from None
    return KeyFiles(directory=directory, key_path=key_path, api_key_json_path=json_path)


def private_folder(directory: str, uid: Optional[int]) -> str:
    """``directory`` created 0700, or an existing one that is a real folder only ``uid`` can write:
    a symlink or a folder someone else planted would hand them the key."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise KeyFilesError(
            f"write-key-files could not create {directory} ({exc.strerror or type(exc).__name__}): "
            "RUNNER_TEMP must be a folder this step can write."
        ) from None
    info = os.lstat(directory)  # lstat: a symlink is judged as a link, not by its target
    problem = ""
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link, and the key is only written into a real folder"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "exists and is not a folder"
    elif uid is not None and info.st_uid != uid:
        problem = f"belongs to another user (uid {info.st_uid}), who could read the key"
    elif os.name != "nt" and info.st_mode & 0o022:
        problem = f"can be written by other users (mode {stat.S_IMODE(info.st_mode):o}), who could swap the files"
    if problem:
        raise KeyFilesError(
            f"write-key-files refuses {directory}: it {problem}; remove it (an earlier step, or another "
            "job on a shared runner, created it) and re-run.",
            details="The key files go into a folder this action creates with mode 0700, each file 0600.",
        )
    os.chmod(directory, 0o700)
    return directory


def is_container_action(env: Mapping[str, str], *, in_container: bool, code_path: str) -> bool:
    """Whether this runs as the container image in a GitHub step (or act's), whose RUNNER_TEMP
    later steps never see: GitHub passes the host's path, act its own /tmp.

    The composite action runs from the action's checkout, never from the image's install, also
    in a ``container:`` job; there RUNNER_TEMP is the job container's mounted /__w/_temp.
    """
    in_image = env.get("GITHUB_ACTIONS") == "true" and in_container and code_path.startswith(IMAGE_HOME)
    return in_image and not env.get("RUNNER_TEMP", "").startswith("/__w/")
