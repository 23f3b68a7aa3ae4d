#!/usr/bin/env python3
"""Run entrypoint.py on the pinned runtime: built once per runner and interpreter, checked on every start.

Standard library only: action.yml runs this as ``python3 -I -S bootstrap.py`` on the runner's Python
(3.9+). The runtime is a venv in RUNNER_TOOL_CACHE/asc-token-action/<key>, the key naming the lock,
the OS, the machine, the Python version and the interpreter. What holds:

- It holds exactly the distributions of requirements/runtime.lock whose markers apply to this
  Python, checked after pip ran, whatever pip's configuration said (the runner's pip.conf is
  honoured for mirrors and certificates, and a job can point pip at other files too).
- Nothing in it runs unless it matches its manifest: every entry's type, size and mtime, bytecode
  included (all compiled when it is built, so Python never writes any), and the interpreter.
- It and every folder above it belong to this user (or root, above our own) and only the owner
  can write to them (sticky folders aside); a cache folder that fails this is passed over (the
  last-resort temporary folder too: with none left, nothing is built), and another user's runtime
  is neither run nor removed. It is checked once more right before it is started.
- A runtime that fails its check is rebuilt under the cache folder's lock, in a private staging
  folder renamed into place: racing jobs never see or remove each other's work.
- venv and pip see neither INPUT_* (the key) nor the job's PIP_* settings beyond where to download from.

A warm start: one interpreter start without site-packages, a CRC of the lock, an lstat of each of
the runtime's ~650 entries (twice: to choose it, and right before the exec), and the exec of the runtime.
"""

from __future__ import annotations

import os
import stat
import sys
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:  # importing typing costs ~15 ms of a ~25 ms warm start
    from typing import Dict, List, Mapping, NoReturn, Optional, Set, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK = os.path.join(ROOT, "requirements", "runtime.lock")
ENTRYPOINT = os.path.join(ROOT, "entrypoint.py")
SRC = os.path.join(ROOT, "src")
NAME = "asc-token-action"
MANIFEST = ".asc-token-manifest"
MANIFEST_FORMAT = "asc-token-manifest 2"  # 2: bytecode is part of the runtime
POSIX = os.name != "nt"
LOCK_WAIT_SECONDS = 600.0

# What check_runtime found: run it, build it, build it again, or leave it alone (not ours).
USABLE, MISSING, STALE, FOREIGN = "usable", "missing", "stale", "foreign"


class SetupError(Exception):
    """The runtime cannot be built: a message for the user (what failed, what to do) and pip's output.

    ``exit_code``: 2 when the fix is a setting of the runner (another Python, another folder) and
    nothing was sent, 1 when something refused or did not answer (the table in docs/troubleshooting.md).
    """

    def __init__(self, message: str, detail: str = "", exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.exit_code = exit_code


def log(text: str) -> None:
    print(text, flush=True)


def crc(data: bytes) -> str:
    # CRC32, not SHA-256: hashlib's OpenSSL start-up costs ~10 ms per run, and the key only has to
    # tell locks and interpreters apart; what is inside a runtime is checked by its manifest.
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


def machine() -> str:
    if POSIX:
        return os.uname().machine.lower()
    import platform

    return platform.machine().lower()


def runtime_key() -> str:
    with open(LOCK, "rb") as stream:
        lock = crc(stream.read())
    # The interpreter that builds a venv is the one it runs on: two Pythons of one minor version
    # (pyenv's and Xcode's 3.9, the host's and a container's) get separate runtimes.
    interpreter = crc(f"{os.path.realpath(sys.executable)}\n{sys.version}".encode())
    version = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return f"{lock}-{sys.platform}-{machine()}-{version}-{interpreter}"


def venv_python(venv: str) -> str:
    if POSIX:
        return os.path.join(venv, "bin", "python")
    return os.path.join(venv, "Scripts", "python.exe")


def site_packages(venv: str) -> str:
    if POSIX:
        return os.path.join(venv, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
    return os.path.join(venv, "Lib", "site-packages")


# -- trust: who can write where ---------------------------------------------------------------
# Windows: NTFS ACLs, not mode bits, and the runner's folders belong to the runner's account, so
# only the manifest is checked there.


def folder_chain(path: str) -> List[str]:
    """``path`` and every folder above it, both as written and with symbolic links resolved."""
    chain: List[str] = []
    for start in (os.path.abspath(path), os.path.realpath(path)):
        current = start
        while current not in chain:
            chain.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
    return chain


def ancestors_problem(path: str) -> Optional[str]:
    """Why another user could rename or replace what is inside ``path``, or None.

    Each folder must belong to this user or root and be writable by no one else, unless it is
    sticky like /tmp, where only an entry's owner may rename or remove it.
    """
    if not POSIX:
        return None
    uid = os.geteuid()
    for folder in folder_chain(path):
        info = os.stat(folder)
        if info.st_uid not in (uid, 0):
            return f"{folder} belongs to another user (uid {info.st_uid})"
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            return f"{folder} is writable by other users"
    return None


def owned_problem(path: str, info: os.stat_result) -> Optional[str]:
    """Why ``path`` (lstat ``info``) is not this user's alone, or None."""
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link"
    if not POSIX:
        return None
    if info.st_uid != os.geteuid():
        return f"{path} belongs to another user (uid {info.st_uid})"
    if info.st_mode & 0o022:
        return f"{path} is writable by other users"
    return None


def open_root(root: str) -> Optional[str]:
    """Create the cache folder if needed; why it must not be used, or None."""
    os.makedirs(root, 0o755, exist_ok=True)
    return owned_problem(root, os.lstat(root)) or ancestors_problem(os.path.dirname(root))


# -- the manifest: what a runtime is ------------------------------------------------------------
# One line per entry under the runtime: "d", "l <link target>" or "f <size> <mtime_ns>", a tab,
# the path. Size and mtime, not content hashes: hashing ~20 MB on every start would cost more than
# the whole action, and content hashes would not stop anyone the ownership checks let through
# (whoever can rewrite a file here can rewrite the manifest too). What the manifest catches is a
# runtime that is not what was built: a file added (a planted .pth or .pyc), replaced (bin/python),
# changed or removed, a half-copied folder, an interpreter that moved, changed or disappeared.


def interpreter_stamp(venv: str) -> str:
    """The interpreter the venv runs on, as "size mtime_ns path", or "gone path"."""
    path = os.path.realpath(venv_python(venv)) if POSIX else os.path.join(_pyvenv_home(venv), "python.exe")
    try:
        info = os.stat(path)
    except OSError:
        return f"gone {path}"
    return f"{info.st_size} {info.st_mtime_ns} {path}"


def _pyvenv_home(venv: str) -> str:
    with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8") as stream:
        for line in stream:
            name, _, value = line.partition("=")
            if name.strip() == "home":
                return value.strip()
    return ""


def snapshot(top: str) -> Tuple[Dict[str, str], Optional[str]]:
    """Every entry under ``top`` (see above) and the first one another user could write, if any."""
    entries: Dict[str, str] = {}
    uid = os.geteuid() if POSIX else 0
    pending = [""]
    while pending:
        relative = pending.pop()
        with os.scandir(os.path.join(top, relative) if relative else top) as listing:
            for entry in listing:
                path = f"{relative}/{entry.name}" if relative else entry.name
                info = entry.stat(follow_symlinks=False)
                mode = info.st_mode
                if stat.S_ISLNK(mode):
                    entries[path] = f"l {os.readlink(entry.path)}"
                    continue
                if POSIX and (info.st_uid != uid or mode & 0o022):
                    return entries, f"{path} can be written by another user"
                if stat.S_ISDIR(mode):
                    entries[path] = "d"
                    pending.append(path)
                elif stat.S_ISREG(mode):
                    entries[path] = f"f {info.st_size} {info.st_mtime_ns}"
                else:
                    return entries, f"{path} is not a regular file"
    if entries.pop(MANIFEST, "f").startswith("l"):
        return entries, f"{MANIFEST} is a symbolic link"
    return entries, None


def write_manifest(venv: str, key: str) -> None:
    entries, problem = snapshot(venv)
    if problem:
        raise SetupError(f"The new runtime in {venv} is not private: {problem}.")
    lines = [MANIFEST_FORMAT, key, interpreter_stamp(venv)]
    lines += [f"{value}\t{path}" for path, value in sorted(entries.items())]
    descriptor = os.open(os.path.join(venv, MANIFEST), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with open(descriptor, "w", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")


def check_runtime(target: str, key: str) -> Tuple[str, str]:
    """What the runtime at ``target`` is (USABLE, MISSING, STALE or FOREIGN), and why."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return MISSING, "there is none"
    if POSIX and not stat.S_ISLNK(info.st_mode) and info.st_uid != os.geteuid():
        return FOREIGN, f"{target} belongs to another user (uid {info.st_uid})"
    problem = owned_problem(target, info)
    if problem:
        return STALE, problem
    try:
        with open(os.path.join(target, MANIFEST), encoding="utf-8") as stream:
            header = [stream.readline().rstrip("\n") for _ in range(3)]
            recorded: Dict[str, str] = {}
            for line in stream:
                value, path = line.rstrip("\n").split("\t", 1)
                recorded[path] = value
    except FileNotFoundError:
        return STALE, "it is incomplete (no manifest)"
    except (OSError, ValueError, UnicodeDecodeError):
        return STALE, "its manifest cannot be read"
    if header[:2] != [MANIFEST_FORMAT, key]:
        return STALE, "it was built by another version of asc-token-action"
    interpreter = interpreter_stamp(target)
    if interpreter != header[2]:
        if interpreter.startswith("gone "):
            return STALE, f"the Python it was built with is gone ({interpreter[5:]} does not exist)"
        return STALE, f"the Python it was built with ({header[2].split(' ', 2)[-1]}) has changed"
    entries, problem = snapshot(target)
    if problem:
        return STALE, problem
    if entries == recorded:
        return USABLE, "it matches its manifest"
    added = sorted(set(entries) - set(recorded))
    if added:
        return STALE, f"it has an unexpected {'folder' if entries[added[0]] == 'd' else 'file'} {added[0]}"
    changed = sorted(path for path in recorded if path in entries and entries[path] != recorded[path])
    if changed:
        return STALE, f"{changed[0]} has changed since it was built"
    return STALE, f"{min(set(recorded) - set(entries))} is missing"


# -- what the lock says this Python gets --------------------------------------------------------
# pip evaluates the lock's environment markers itself; they are evaluated here again so that what
# pip installed can be compared with the lock. A small evaluator, not pip's vendored packaging:
# pip's internals are no API (and the runner's pip may be absent). It reads what uv writes into the
# lock: `variable op 'value'` comparisons joined by `and` and `or`, in parentheses. Anything else
# (`in`, `~=`, `extra`, a value before its variable) fails the build with a message naming the
# marker, so a new kind of marker in a future lock is noticed by the tests, not guessed at.

_VERSION_VARIABLES = ("python_version", "python_full_version")
# One lexeme: a parenthesis, `and`/`or`, or a whole comparison.
_MARKER_LEXEME = (
    r"\s*(?:(?P<paren>[()])|(?P<join>and|or)(?!\w)"
    r"|(?P<variable>[a-z_]+)\s*(?P<operator>==|!=|<=|>=|<|>)\s*(?P<quote>['\"])(?P<value>[^'\"]*)(?P=quote))"
)


def marker_environment() -> Dict[str, str]:
    import platform

    return {
        "python_version": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "python_full_version": platform.python_version(),
        "implementation_name": sys.implementation.name,
        "platform_python_implementation": platform.python_implementation(),
        "sys_platform": sys.platform,
        "platform_system": platform.system(),
        # What pip's packaging reports: x86_64, aarch64 or arm64 on Linux and macOS (x86_64 under
        # Rosetta), AMD64 or ARM64 on Windows.
        "platform_machine": platform.machine(),
        "os_name": os.name,
    }


def marker_applies(marker: str, environment: Dict[str, str]) -> bool:
    """Whether ``marker`` (comparisons joined by ``and``/``or``, in parentheses) holds in ``environment``."""
    import re

    def unreadable() -> SetupError:
        return SetupError(f"requirements/runtime.lock has a marker bootstrap.py cannot evaluate: {marker.strip()}")

    tokens: List[Tuple[str, str, str, str]] = []  # (kind, ...): ("(", ...), ("and", ...), ("cmp", var, op, value)
    token, position, text = re.compile(_MARKER_LEXEME), 0, marker.rstrip()
    while position < len(text):
        match = token.match(text, position)
        if not match:
            raise unreadable()
        position = match.end()
        if match.group("paren") or match.group("join"):
            tokens.append((match.group("paren") or match.group("join"), "", "", ""))
        else:
            tokens.append(("cmp", match.group("variable"), match.group("operator"), match.group("value")))
    if not tokens:
        return True

    def comparison(variable: str, operator: str, value: str) -> bool:
        if variable in _VERSION_VARIABLES and variable in environment:
            return _version_matches(environment[variable], operator, value)
        if variable in environment and operator in ("==", "!="):
            return (environment[variable] == value) == (operator == "==")
        raise unreadable()

    # Recursive descent, `and` binding tighter than `or`; every term is evaluated (no short cut),
    # so a term it cannot read fails the build whatever this runner's answer is.
    index = 0

    def either() -> bool:
        nonlocal index
        holds = both()
        while index < len(tokens) and tokens[index][0] == "or":
            index += 1
            holds = both() or holds
        return holds

    def both() -> bool:
        nonlocal index
        holds = term()
        while index < len(tokens) and tokens[index][0] == "and":
            index += 1
            holds = term() and holds
        return holds

    def term() -> bool:
        nonlocal index
        if index >= len(tokens):
            raise unreadable()
        kind, variable, operator, value = tokens[index]
        index += 1
        if kind == "cmp":
            return comparison(variable, operator, value)
        if kind != "(":
            raise unreadable()
        holds = either()
        if index >= len(tokens) or tokens[index][0] != ")":
            raise unreadable()
        index += 1
        return holds

    holds = either()
    if index != len(tokens):
        raise unreadable()
    return holds


def _version(text: str) -> Tuple[Tuple[int, ...], Tuple[int, int]]:
    """A Python version ("3.13.0rc1", "3.14.0a1+") as (release, (phase, number)); final is phase 3."""
    import re

    match = re.fullmatch(r"(\d+(?:\.\d+)*)(?:(a|b|rc)(\d+))?\+?", text)
    if not match:
        raise SetupError(f"bootstrap.py cannot compare the Python version {text!r} with requirements/runtime.lock")
    release = tuple(int(part) for part in match.group(1).split("."))
    phase = ("a", "b", "rc").index(match.group(2)) if match.group(2) else 3
    return release, (phase, int(match.group(3) or 0))


def _version_matches(actual: str, operator: str, wanted: str) -> bool:
    """PEP 440 comparison of a Python version, as packaging does it for markers."""
    have, have_phase = _version(actual)
    if wanted.endswith(".*"):
        want = _version(wanted[:-2])[0]
        if operator not in ("==", "!="):
            raise SetupError(f"requirements/runtime.lock compares a Python version as {operator} {wanted}")
        padded = have + (0,) * max(0, len(want) - len(have))
        return (padded[: len(want)] == want) == (operator == "==")
    want, want_phase = _version(wanted)
    width = max(len(have), len(want))
    have_key = (have + (0,) * (width - len(have)), have_phase)
    want_key = (want + (0,) * (width - len(want)), want_phase)
    if operator == "<" and have_phase[0] < 3 <= want_phase[0] and have_key[0] == want_key[0]:
        return False  # <3.10 does not let in 3.10.0rc1 (PEP 440's exclusive ordered comparison)
    return {
        "==": have_key == want_key,
        "!=": have_key != want_key,
        "<": have_key < want_key,
        "<=": have_key <= want_key,
        ">": have_key > want_key,
        ">=": have_key >= want_key,
    }[operator]


def canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def locked_distributions(environment: Dict[str, str]) -> Set[str]:
    """``name==version`` of each lock line whose marker holds in ``environment``."""
    wanted: Set[str] = set()
    with open(LOCK, encoding="utf-8") as stream:
        for line in stream:
            if not line[:1].isalnum():  # hashes, comments and "# via" lines
                continue
            requirement, _, marker = line.rstrip().rstrip("\\").partition(";")
            if marker_applies(marker, environment):
                name, _, version = requirement.strip().partition("==")
                wanted.add(f"{canonical(name)}=={version.lower()}")
    return wanted


def installed_distributions(folder: str, before: Set[str]) -> Tuple[Set[str], List[str]]:
    """``name==version`` of each distribution pip put in ``folder`` (site-packages), and the entries
    there that no installed distribution's RECORD claims (an .egg-link, a stray .pth).

    ``before``: what was there before pip ran (the venv's own pip, when it made one).
    """
    import csv

    found: Set[str] = set()
    claimed = set(before) | {"bin", "Scripts"}  # where pip --target puts scripts
    for entry in os.listdir(folder):
        if entry in before or not entry.endswith((".dist-info", ".egg-info")):
            continue
        project, _, version = entry.rsplit(".", 1)[0].partition("-")
        found.add(f"{canonical(project)}=={version.split('-')[0].lower() or '?'}")
        claimed.add(entry)
        try:
            with open(os.path.join(folder, entry, "RECORD"), encoding="utf-8", newline="") as stream:
                claimed.update(row[0].split("/")[0] for row in csv.reader(stream) if row and row[0][:2] != "..")
        except OSError:
            pass
    return found, sorted(set(os.listdir(folder)) - claimed)


def check_installed(folder: str, before: Set[str]) -> None:
    """Fail the build unless pip installed exactly the lock's distributions for this Python."""
    wanted = locked_distributions(marker_environment())
    found, unclaimed = installed_distributions(folder, before)
    added = sorted(found - wanted) + unclaimed
    missing = sorted(wanted - found)
    if not added and not missing:
        return
    what = []
    if added:
        what.append(f"pip installed {', '.join(added)}, which requirements/runtime.lock does not hold")
    if missing:
        what.append(f"pip did not install {', '.join(missing)}")
    chosen = "".join(
        f", here {name}={os.environ[name]}" for name in ("XDG_CONFIG_HOME", "XDG_CONFIG_DIRS") if name in os.environ
    )
    raise SetupError(
        f"{'; '.join(what)}. pip's configuration adds to what it installs (`requirement` or `editable` in a "
        f"pip.conf) or moves it (`target`, `prefix`, `root`): pip reads this machine's pip.conf files and those "
        f"that XDG_CONFIG_HOME, XDG_CONFIG_DIRS and HOME point to{chosen}. Remove that setting, or point these "
        "variables elsewhere for this step; `python3 -m pip config debug` in this step lists what pip reads."
    )


# -- building ---------------------------------------------------------------------------------

# What pip may take from the job: where to download from and how to get there. Mirrors are safe
# to honour, since --require-hashes makes every wheel match a hash in the lock. Every other PIP_*
# variable (target, prefix, root, user, requirement, constraint, editable, upgrade, no-binary,
# platform, python-version, dry-run, require-virtualenv, src, config-file, ...) changes what or
# where pip installs, so the job's are dropped and the options that matter are given explicitly.
# pip still reads the pip.conf files (the runner's mirror and certificate live there); whatever
# they add is caught by check_installed.
PIP_NETWORK_SETTINGS = (
    "index-url", "extra-index-url", "no-index", "find-links", "trusted-host", "cert", "client-cert",
    "proxy", "timeout", "default-timeout", "retries", "cache-dir", "no-cache-dir",
)  # fmt: skip
_KEPT_PIP_VARIABLES = frozenset("PIP_" + option.upper().replace("-", "_") for option in PIP_NETWORK_SETTINGS)


def build_environment() -> Dict[str, str]:
    """The job's environment for venv and pip: no INPUT_* (the key), only PIP_* network settings."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("INPUT_") and (not name.startswith("PIP_") or name in _KEPT_PIP_VARIABLES)
    }


def pip_install_args() -> List[str]:
    # --no-compile: build compiles afterwards, in timestamp mode (pip's follows SOURCE_DATE_EPOCH).
    return [
        "install", "--no-deps", "--require-hashes", "--only-binary", ":all:", "--no-input",
        "--quiet", "--disable-pip-version-check", "--no-warn-script-location", "--no-compile", "-r", LOCK,
    ]  # fmt: skip


def _run(command: List[str], env: Dict[str, str], timeout: float, fix: str, pip: bool = False) -> None:
    """Run ``command``; if it fails, a SetupError saying why (``pip``: read from pip's output)."""
    import subprocess

    shown = " ".join(command[:5])
    try:
        completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SetupError(f"`{shown} ...` did not finish within {timeout:.0f} s: {fix}") from None
    if completed.returncode != 0:
        output = completed.stdout + completed.stderr
        tail = "\n".join(output.strip().splitlines()[-15:])
        if pip:
            raise pip_failure(output, completed.returncode, tail)
        raise SetupError(f"`{shown} ...` failed with exit code {completed.returncode}: {fix}", tail)


def _has_pip() -> bool:
    """Whether ``python -I -m pip`` works: looked up in site-packages (this process runs with -S)."""
    import sysconfig

    paths = sysconfig.get_paths()
    return any(os.path.isfile(os.path.join(paths[name], "pip", "__init__.py")) for name in ("purelib", "platlib"))


# -- what a failed build says: the templates, in one place (this script imports nothing of src/) --

REACH_PYPI = "check that the runner can reach PyPI (or set PIP_INDEX_URL to your mirror)"
NO_VENV = (
    "this Python cannot make a virtual environment: install its venv module (python3-venv on Debian "
    "and Ubuntu), or add actions/setup-python before this step"
)
PIP_NO_WHEEL = (
    "the package index has no wheel of {requirement} for this runner ({platform} {machine}, Python {python}). "
    "requirements/runtime.lock installs on the runners listed in docs/runtime.md#supported-runners: run this "
    "step on one of them, or with one of the Pythons listed there (actions/setup-python before this step)."
)
PIP_UNREACHABLE = (
    "pip could not download from the package index ({reason}): check that the runner can reach PyPI, or set "
    "PIP_INDEX_URL to your mirror (and PIP_PROXY for a proxy, PIP_CERT for a private certificate authority)."
)
PIP_HASH_MISMATCH = (
    "the file pip downloaded for {requirement} does not match its hash in requirements/runtime.lock: the index, "
    "a mirror or a proxy served other bytes than the ones locked, and nothing was installed. Check the mirror "
    "(PIP_INDEX_URL or the runner's pip.conf) or the proxy in between; the lock's hashes are right."
)
PIP_FAILED = "`pip install` failed with exit code {code}; its last lines are below."
NO_SAFE_FOLDER = (
    "no folder on this runner can hold it safely: {why}. Another user could swap the runtime between "
    "its build and its start. Set RUNNER_TEMP (or TMPDIR) to a folder only this user can write, under "
    "folders that only their owners can write (or that are sticky, like /tmp)."
)
CHANGED_BEFORE_START = (
    "the runtime in {target} changed after it was checked ({why}), so it was not started: another "
    "process on this runner is changing it. Run the step again; if this repeats, find that process."
)
INTERRUPTED = "asc-token-action: stopped by {signal} while preparing the runtime; nothing half-built was kept."

# What in pip's output says the index was not reached (urllib3's retry warnings and pip's errors,
# as pip 20 to 25 word them), with the reason shown; the first found is named.
PIP_NETWORK_SIGNS = (
    ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted here"),
    ("SSLError", "TLS failed"),
    ("407 Proxy Authentication Required", "the proxy asks for authentication"),
    ("ProxyError", "the proxy failed"),
    ("NameResolutionError", "its name did not resolve"),
    ("Name or service not known", "its name did not resolve"),
    ("Temporary failure in name resolution", "its name did not resolve"),
    ("nodename nor servname", "its name did not resolve"),
    ("getaddrinfo failed", "its name did not resolve"),
    ("Connection refused", "the connection was refused"),
    ("Network is unreachable", "the network is unreachable"),
    ("No route to host", "there is no route to it"),
    ("Failed to establish a new connection", "no connection could be made"),
    ("TimeoutError", "it timed out"),
    ("timed out", "it timed out"),
    ("Connection reset", "the connection was reset"),
    ("Connection broken", "the connection broke"),
    ("Max retries exceeded", "no connection could be made"),
    ("HTTP error", "it answered with an HTTP error"),
)


def pip_failure(output: str, code: int, tail: str) -> SetupError:
    """What a failed ``pip install`` says, read from its output: a wrong hash, an index not
    reached, no wheel for this runner, or (none of these) pip's own last lines."""
    import platform
    import re

    if "DO NOT MATCH THE HASHES" in output:
        mismatch = re.search(r"^\s+(\S+==\S+) from ", output, re.MULTILINE)
        requirement = mismatch.group(1) if mismatch else "a distribution"
        return SetupError(PIP_HASH_MISMATCH.format(requirement=requirement), tail)
    for sign, reason in PIP_NETWORK_SIGNS:
        if sign in output:
            return SetupError(PIP_UNREACHABLE.format(reason=reason), tail)
    missing = re.search(r"(?:No matching distribution found for|satisfies the requirement) ([^\s;]+)", output)
    if missing:
        message = PIP_NO_WHEEL.format(
            requirement=missing.group(1),
            platform=sys.platform,
            machine=machine(),
            python=platform.python_version(),
        )
        return SetupError(message, tail, exit_code=2)
    return SetupError(PIP_FAILED.format(code=code), tail)


def build(root: str, target: str, key: str) -> None:
    """Build the runtime in a private staging folder under ``root``, then move it to ``target``."""
    import tempfile

    # Called with the build lock held: what an earlier build of this key left is a dead job's.
    for name in os.listdir(root):
        if (name.startswith(f".{key}.") and name.endswith(".tmp")) or name.startswith(f"{key}.stale-"):
            remove_tree(os.path.join(root, name))
    staging = tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=root)
    # pip unpacks into temporary folders that it then moves from: in TMPDIR, they could be renamed
    # by another user if a folder above it lets them; here, every folder above passed the checks.
    scratch = tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=root)
    try:
        env = build_environment()
        for name in ("TMPDIR", "TEMP", "TMP"):
            env[name] = scratch
        python = venv_python(staging)
        if _has_pip():
            # The runner's own pip fills a venv made without pip in ~50 ms: no pip in the runtime.
            _run([sys.executable, "-I", "-m", "venv", "--without-pip", staging], env, 300, NO_VENV)
            install = [sys.executable, "-I", "-m", "pip", *pip_install_args(), "--target", site_packages(staging)]
        else:
            _run([sys.executable, "-I", "-m", "venv", staging], env, 300, NO_VENV)
            install = [python, "-I", "-m", "pip", *pip_install_args()]
        before = set(os.listdir(site_packages(staging)))
        _run(install, env, 900, REACH_PYPI, pip=True)
        check_installed(site_packages(staging), before)
        # All bytecode now, recorded in the manifest: a run then reads only bytecode built here and
        # writes none. Timestamp mode whatever SOURCE_DATE_EPOCH says (hash checks cost every start).
        # This is also the check that the runtime's python starts; -j 0: every core (a third off a build).
        compile_all = [python, "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "timestamp"]
        _run([*compile_all, site_packages(staging)], env, 300, "the new runtime's Python cannot compile it")
        if POSIX:
            _private(staging)
        write_manifest(staging, key)
        if os.path.lexists(target):
            remove_tree(target)
        os.rename(staging, target)
    finally:
        for folder in (staging, scratch):
            if os.path.lexists(folder):
                remove_tree(folder)


def _private(top: str) -> None:
    """Drop group and other write bits a umask of 002 may have left (mkdtemp made top 0700)."""
    os.chmod(top, 0o755)  # noqa: S103 - readable by all is fine, writable by the owner only
    for folder, _, files in os.walk(top):
        for path in [folder, *(os.path.join(folder, name) for name in files)]:
            info = os.lstat(path)
            if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o022:
                os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o022)


def remove_tree(path: str) -> None:
    """Remove a stale runtime: moved aside first, so that no one sees it half-deleted."""
    import shutil

    doomed = path if ".stale-" in path else f"{path}.stale-{os.getpid()}"
    try:
        os.rename(path, doomed)
    except OSError:
        doomed = path
    shutil.rmtree(doomed, ignore_errors=True)


class BuildLock:
    """One build at a time per cache folder. The kernel drops the lock when its holder dies."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.fd = -1

    def __enter__(self) -> BuildLock:
        import errno
        import time

        if sys.platform == "win32":
            import msvcrt

            self.fd = os.open(os.path.join(self.root, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        else:
            import fcntl

            self.fd = os.open(self.root, os.O_RDONLY)  # the folder itself: no lock file to list
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        told = False
        while True:
            try:
                if sys.platform == "win32":
                    msvcrt.locking(self.fd, msvcrt.LK_NBLCK, 1)
                else:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                # Held by another job: flock says EWOULDBLOCK, msvcrt EACCES or EDEADLOCK.
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK):
                    os.close(self.fd)
                    raise
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise TimeoutError(0, f"another job held the lock for {LOCK_WAIT_SECONDS:.0f} s") from None
                if not told:
                    log(f"asc-token-action: waiting for another job that is preparing the runtime in {self.root}")
                    told = True
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing the descriptor releases the lock


# -- choosing where ---------------------------------------------------------------------------


def cache_roots(passed_over: List[str]) -> List[Tuple[str, str]]:
    """Where a runtime may live, most reusable first: (folder, how long it is kept there).

    A relative folder is passed over (noted in ``passed_over``): it would name another folder in
    every step's working directory, and a relative entry on GITHUB_PATH.
    """
    roots: List[Tuple[str, str]] = []
    candidates = [("RUNNER_TOOL_CACHE", "kept in the tool cache for later jobs on this runner")]
    if not os.environ.get("RUNNER_TOOL_CACHE"):
        candidates = [("XDG_CACHE_HOME", "kept for later runs")]
    candidates.append(("RUNNER_TEMP", "for this job only"))
    for variable, scope in candidates:
        folder = os.environ.get(variable, "")
        if variable == "XDG_CACHE_HOME" and not os.path.isabs(folder):
            folder = os.path.join(os.path.expanduser("~"), ".cache")  # as the XDG specification says
        if folder and not os.path.isabs(folder):
            passed_over.append(f"{variable} is not an absolute path ({folder})")
        elif folder:
            roots.append((os.path.join(folder, NAME), scope))
    return roots


def prepare() -> Tuple[str, str]:
    """(cache folder, runtime) of a runtime that passed its checks: found, or built where it can be trusted."""
    key = runtime_key()
    passed_over: List[str] = []
    for root, scope in cache_roots(passed_over):
        try:
            problem = open_root(root)
        except OSError as exc:
            passed_over.append(f"{root} cannot be used ({exc.strerror or exc})")
            continue
        if problem:
            passed_over.append(problem)
            continue
        target = os.path.join(root, key)
        verdict, why = check_runtime(target, key)
        if verdict == USABLE:
            return root, target
        try:
            with BuildLock(root):
                verdict, why = check_runtime(target, key)  # another job may have built it meanwhile
                if verdict == USABLE:
                    return root, target
                if verdict == FOREIGN:  # not ours to replace or remove
                    passed_over.append(why)
                    continue
                if verdict == STALE:
                    log(f"asc-token-action: not using the runtime in {target}: {why}; building it again.")
                _build_in_group(root, target, key, scope, passed_over)
                return root, target
        except OSError as exc:
            passed_over.append(f"{root} cannot be written ({exc.strerror or exc})")
    root = private_temp_folder(passed_over)
    target = os.path.join(root, key)
    _build_in_group(root, target, key, "for this run only", passed_over)
    return root, target


def private_temp_folder(passed_over: List[str]) -> str:
    """A new private folder for this run only, in a temporary folder that every check passes.

    Not tempfile's choice alone: it takes TMPDIR whatever the folders above it are, and a folder
    that another user can rename is one whose runtime they can swap before it starts.
    """
    import tempfile

    candidates = [os.environ.get(name, "") for name in ("TMPDIR", "TEMP", "TMP")]
    candidates += ["/tmp", "/var/tmp", "/usr/tmp"] if POSIX else [tempfile.gettempdir()]  # noqa: S108
    return private_temp_folder_in(candidates, passed_over)


def private_temp_folder_in(candidates: List[str], passed_over: List[str]) -> str:
    """A new private folder in the first of ``candidates`` that every check passes, or a SetupError naming them all."""
    import tempfile

    for folder in dict.fromkeys(candidates):  # in order, once each
        if not folder or not os.path.isabs(folder):
            continue
        try:
            problem = ancestors_problem(folder)
        except OSError:
            continue  # no such folder
        if problem is None:
            try:
                return tempfile.mkdtemp(prefix=f"{NAME}-", dir=folder)
            except OSError as exc:
                problem = f"{folder} cannot be written ({exc.strerror or exc})"
        passed_over.append(problem)
    raise SetupError(NO_SAFE_FOLDER.format(why="; ".join(dict.fromkeys(passed_over))), exit_code=2)


class Interrupted(KeyboardInterrupt):
    """SIGTERM, raised where the build is, so that its `finally` clauses remove what it made."""

    signal_name, exit_code = "SIGTERM", 143


def _stop(signal_number: int, frame: object) -> None:
    raise Interrupted()


def on_actions_runner(env: Optional[Mapping[str, str]] = None) -> bool:
    """Workflow commands (``::group::``) only where a runner reads them: decided by GITHUB_ACTIONS alone (set
    by GitHub, Gitea and Forgejo runners, and act), never by whether stdout is a terminal."""
    return (os.environ if env is None else env).get("GITHUB_ACTIONS") == "true"


def _build_in_group(root: str, target: str, key: str, scope: str, passed_over: List[str]) -> None:
    import platform
    import signal

    why = f": {passed_over[0]}" if passed_over else ""  # why not a place kept for longer
    runner = on_actions_runner()
    log(
        f"{'::group::' if runner else ''}asc-token-action: installing the pinned dependencies for Python "
        f"{platform.python_version()} into {target} ({scope}{why})"
    )
    # SIGTERM as SIGINT: a cancelled job's build ends with its staging folder removed (not on a warm start).
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        build(root, target, key)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if runner:
            log("::endgroup::")


def ensure_runtime() -> str:
    """The runtime's python (dev.py demo and standin run on it too)."""
    return venv_python(prepare()[1])


# -- asc-token for later steps ----------------------------------------------------------------


def offer_launcher(root: str, target: str) -> None:
    """Put ``asc-token`` on later steps' PATH: this runtime's python, isolated, on this checkout."""
    python = venv_python(target)
    folder = os.path.join(root, f"bin-{crc(chr(0).join((ROOT, target)).encode())}")
    os.makedirs(folder, 0o755, exist_ok=True)
    problem = owned_problem(folder, os.lstat(folder))
    if problem:
        raise OSError(0, problem)
    script = os.path.join(folder, "asc_token_cli.py")
    files = {
        # Run as a file, not with -c: then sys.path[0] is this folder, never the working directory.
        script: (
            "import sys\n"
            f"sys.path.insert(0, {SRC!r})\n"
            "sys.argv[0] = 'asc-token'\n"
            "from asc_token.dispatch import cli\n\n"
            "sys.exit(cli())\n"
        ),
        os.path.join(folder, "asc-token"): (
            "#!/bin/sh\n"
            "# asc-token from asc-token-action: its runtime's Python, isolated, on the action's own package.\n"
            f'exec {_sh_quote(_sh_path(python))} -I {_sh_quote(_sh_path(script))} "$@"\n'
        ),
    }
    if not POSIX:
        percent = "%%"
        files[os.path.join(folder, "asc-token.cmd")] = (
            f'@"{python.replace("%", percent)}" -I "{script.replace("%", percent)}" %*\r\n'
        )
    for path, text in files.items():
        _write_if_changed(path, text, 0o755 if not path.endswith(".py") else 0o644)
    with open(os.environ["GITHUB_PATH"], "a", encoding="utf-8") as stream:
        stream.write(folder + "\n")


def _sh_path(path: str) -> str:
    return path if POSIX else path.replace("\\", "/")  # Git Bash on Windows takes C:/... paths


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _write_if_changed(path: str, text: str, mode: int) -> None:
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            if stream.read() == text and (not POSIX or stat.S_IMODE(os.stat(path).st_mode) == mode):
                return
    except OSError:
        pass
    partial = f"{path}.{os.getpid()}.tmp"
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.chmod(partial, mode)
    os.replace(partial, path)  # atomic: a racing job with the same checkout writes the same text


# -- main -------------------------------------------------------------------------------------


def forbid_core_dumps() -> None:
    """This process and all it starts hold the key in their environment: no core file may keep it."""
    if POSIX:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run(target: str, key: str, argv: List[str]) -> int:
    """Start the runtime, checked once more just before: nothing between the check and here may change it."""
    verdict, why = check_runtime(target, key)
    problem = ancestors_problem(os.path.dirname(target))
    if verdict != USABLE or problem:
        raise SetupError(CHANGED_BEFORE_START.format(target=target, why=problem or why))
    python = venv_python(target)
    command = [python, "-I", ENTRYPOINT, *argv]
    if POSIX:
        sys.stdout.flush()
        os.execv(python, command)  # noqa: S606 - raises OSError if it cannot start
    import subprocess

    return subprocess.call(command)


def fail(title: str, message: str, detail: str = "", exit_code: int = 1) -> NoReturn:
    log(f"::error title={title}::{message}" if on_actions_runner() else f"error: {title}: {message}")
    if detail:
        log(detail)
    sys.exit(exit_code)


def main(argv: List[str]) -> int:
    forbid_core_dumps()
    # -I does not stop PYTHONEXECUTABLE from naming sys.executable: no interpreter started from here reads it.
    os.environ.pop("PYTHONEXECUTABLE", None)
    try:
        root, target = prepare()
        if os.environ.get("GITHUB_PATH"):
            try:
                offer_launcher(root, target)
            except OSError as exc:
                log(f"::warning title=asc-token not on PATH::Later steps cannot run asc-token: {exc.strerror or exc}.")
        return run(target, runtime_key(), argv)
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM during a build: one line, no traceback
        log(INTERRUPTED.format(signal=getattr(exc, "signal_name", "SIGINT")))
        return getattr(exc, "exit_code", 130)
    except SetupError as exc:
        fail(
            "asc-token-action setup failed",
            f"Installing requirements/runtime.lock failed: {exc.message}",
            exc.detail,
            exc.exit_code,
        )
    except OSError as exc:
        fail(
            "asc-token-action setup failed",
            f"Preparing the runtime failed ({type(exc).__name__}: {exc.strerror or exc}): check that "
            "RUNNER_TOOL_CACHE or RUNNER_TEMP is writable on this runner.",
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
