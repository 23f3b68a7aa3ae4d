"""Fixtures every test shares: the key, the stand-ins (App Store Connect, the Enterprise Program API, object
storage), a refused port, a proxy, and what is made once per session (the wheelhouse, the golden runtime).
Tests build their settings with runner.settings() and run the product with runner.invoke()."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from devtools.object_storage import ObjectStorage
from devtools.standin import APPLE_ENTERPRISE_AUDIENCE, AppStoreConnectStandIn

from .runner import ISSUER_ID, KEY_ID, ROOT, KeyMaterial, settings, standin_running

OTHER_ISSUER = "11111111-2222-3333-4444-555555555555"


# xdist's load scheduler first hands each worker one run of consecutive tests (a quarter of its
# share), then tops workers up from the front of what is left, into queues no other worker takes
# from. So the files that take longest (summed --durations, quiet: bootstrap 36 s, container 10,
# api_command 10, act 9, scenario_verify 7, composite 7, package 5) are split into one lane per
# worker, each lane starting that worker's first run; every other test follows, and what is queued
# last is short. Each lane's first file needs no other lane's fixture (lane 2 does not wait while
# lane 1 builds the golden runtime). Measured quiet on 2 cores: the workers end within 1 s of each
# other, where slowest-files-first left one idle for ~12 s while the other ran test_container.
SLOW_FILE_LANES = (
    ("test_bootstrap.py", "test_scenario_verify.py"),
    ("test_container.py", "test_package.py", "test_api_command.py", "test_act.py", "test_composite_action.py"),
)


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    workerinput = getattr(config, "workerinput", None)  # set in xdist's workers, which all order alike
    workers = int(workerinput["workercount"]) if workerinput else 1
    lanes: List[List[str]] = [[] for _ in range(workers)]
    for place, files in enumerate(SLOW_FILE_LANES):
        lanes[place % workers].extend(files)
    by_file: Dict[str, List[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.path.name, []).append(item)
    slow = {name for lane in lanes for name in lane}
    rest = [item for item in items if item.path.name not in slow]
    first_run = max(len(items) // workers // 4, 2)  # LoadScheduling's first chunk per worker
    ordered: List[pytest.Item] = []
    for place, lane in enumerate(lanes):
        run = [item for name in lane for item in by_file.get(name, [])]
        filler = max(first_run - len(run), 0) if place < workers - 1 else 0
        ordered += run + rest[:filler]  # short tests fill a lane up to its worker's first run
        del rest[:filler]
    items[:] = ordered + rest


@pytest.fixture(scope="session")
def key() -> KeyMaterial:
    return KeyMaterial(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def api(key: KeyMaterial) -> Iterator[AppStoreConnectStandIn]:
    with standin_running() as standin:
        standin.register(KEY_ID, key.key.public_key(), ISSUER_ID)
        yield standin


@pytest.fixture
def storage() -> Iterator[ObjectStorage]:
    """The object storage stand-in on its own (devtools/object_storage.py), its part order seeded."""
    with ObjectStorage(seed=28) as running:
        yield running


@pytest.fixture
def enterprise(key: KeyMaterial) -> Iterator[AppStoreConnectStandIn]:
    """The stand-in as the Enterprise Program API (its audience), the key registered."""
    with standin_running(audience=APPLE_ENTERPRISE_AUDIENCE) as standin:
        standin.register(KEY_ID, key.key.public_key(), ISSUER_ID)
        yield standin


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but not listening: connecting is refused, deterministically."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@dataclass
class Proxy:
    url: str
    connects: List[bytes] = field(default_factory=list)  # each CONNECT's request line


@pytest.fixture
def proxy_wanting_credentials() -> Iterator[Proxy]:
    with proxy_wanting_credentials_running() as proxy:
        yield proxy


@contextmanager
def proxy_wanting_credentials_running() -> Iterator[Proxy]:
    """An HTTP proxy on 127.0.0.1 that answers every CONNECT with 407 Proxy Authentication Required."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    proxy = Proxy(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set() and len(proxy.connects) < 20:  # bounded: a client that retries forever
            try:
                connection, _ = listener.accept()
            except OSError:  # the accept timeout: look at stop again
                continue
            with connection:
                connection.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                proxy.connects.append(request.split(b"\r\n", 1)[0])
                connection.sendall(
                    b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="corp"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield proxy
    finally:
        stop.set()
        server.join(timeout=2)
        listener.close()


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Held by one process at a time (the kernel drops it if its holder dies)."""
    with open(lock_file, "a+b") as stream:
        if sys.platform == "win32":
            import msvcrt

            while True:
                try:
                    msvcrt.locking(stream.fileno(), msvcrt.LK_LOCK, 1)  # retries for ~10 s, then raises
                    break
                except OSError:
                    continue
        else:
            import fcntl

            fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], bool]) -> Optional[Path]:
    """A folder ``make`` fills once per test session, however many xdist workers ask for it: the
    first to ask makes it while the others wait. None if ``make`` returned False (each asker retries)."""
    basetemp = tmp_path_factory.getbasetemp()
    # xdist gives each worker <the session's basetemp>/popen-gwN, so the session's is their parent.
    shared = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    folder, done = shared / f"made-once-{name}", shared / f"made-once-{name}.done"
    with _exclusive(shared / f"made-once-{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a failed attempt's leftovers
            folder.mkdir()
            if not make(folder):
                return None
            done.touch()
    return folder


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    """pip settings that install the lock from a local folder, downloaded once per session (empty if it
    cannot be filled): the runtime builds of the bootstrap, composite, act and package suites read no index."""

    def download(folder: Path) -> bool:
        completed = subprocess.run(
            [shutil.which("python3") or sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes", "--only-binary", ":all:",
             "--disable-pip-version-check", "-r", str(ROOT / "requirements" / "runtime.lock"), "-d", str(folder)],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        return completed.returncode == 0

    folder = made_once(tmp_path_factory, "wheelhouse", download)
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(folder)} if folder is not None else {}


@pytest.fixture(scope="session")
def golden_tool_cache(tmp_path_factory: pytest.TempPathFactory, key: KeyMaterial, wheels: Dict[str, str]) -> Path:
    """A tool cache holding one runtime, built the action's way once per session: tests use a copy_of it."""
    from .composite import run_composite

    def build(folder: Path) -> bool:
        run = run_composite(folder / "run", settings(key), tool_cache=folder / "toolcache", extra_env=wheels)
        assert run.returncode == 0, run.log
        (folder / "build.log").write_text(run.log)
        return True

    folder = made_once(tmp_path_factory, "golden-runtime", build)
    assert folder is not None
    return folder / "toolcache"


@pytest.fixture(scope="session")
def golden_build_log(golden_tool_cache: Path) -> str:
    """What the composite step printed while it built the golden runtime: a first job's on an empty tool cache."""
    return (golden_tool_cache.parent / "build.log").read_text()


def copy_of(tool_cache: Path, folder: Path) -> Path:
    """``tool_cache`` copied to ``folder``/toolcache as it is (copy2 keeps mtimes, so its manifest holds)."""
    copy = folder / "toolcache"
    shutil.copytree(tool_cache, copy, symlinks=True)
    return copy
