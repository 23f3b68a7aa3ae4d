"""devtools/check_wheels.py: which pins each runner gets, and the tags pip is given for it.

No network here: pip's downloads are injected. The real run is `python3 dev.py check-wheels`,
a CI step.
"""

from __future__ import annotations

import sys
from typing import Dict, List, Sequence, Set, Tuple

import pytest
from packaging.tags import mac_platforms

from devtools.check_wheels import (
    DEV_PLATFORMS,
    NO_WHEEL,
    PLATFORMS,
    PYTHONS,
    Cell,
    Pin,
    applicable,
    cells,
    check_cell,
    check_cells,
    manylinux_tags,
    musllinux_tags,
    pip_download_args,
    read_lock,
    report,
    why_pip_failed,
)

from .runner import ROOT

BY_NAME = {platform.name: platform for platform in PLATFORMS}


def lock_pins(name: str = "runtime") -> List[Pin]:
    return read_lock((ROOT / "requirements" / f"{name}.lock").read_text(encoding="utf-8"))


def pinned(pins: Sequence[Pin], name: str) -> List[str]:
    return [pin.version for pin in pins if pin.name == name]


def test_every_runner_and_python_is_a_cell() -> None:
    todo = cells()
    assert len(todo) == 7 * 6 + 4  # Windows arm64 from 3.11: cffi has no win_arm64 wheel for 3.9 or 3.10
    assert [cell.python for cell in todo if cell.platform.name == "Windows arm64"] == [
        "3.11.0",
        "3.12.0",
        "3.13.0",
        "3.14.0",
    ]
    assert PYTHONS[0] == "3.9.2"  # pip reads --python-version 3.9 as 3.9.0, which no cryptography since 44 supports
    assert {p.name for p in DEV_PLATFORMS} == {name for name in BY_NAME if name.startswith("macOS") or "glibc" in name}


def test_manylinux_tags_reach_down_to_manylinux2014() -> None:
    """pip does not widen --platform manylinux_2_28_x86_64 to older tags: each is given."""
    tags = manylinux_tags("x86_64")
    assert tags[0] == "manylinux_2_28_x86_64"
    assert tags[:12] == [f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)]
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(tags)
    aarch64 = manylinux_tags("aarch64")
    assert aarch64[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert musllinux_tags("aarch64") == ["musllinux_1_2_aarch64", "musllinux_1_1_aarch64", "musllinux_1_0_aarch64"]


def test_macos_tags_include_universal2_and_every_older_version() -> None:
    intel = BY_NAME["macOS x86_64"].tags
    assert intel == tuple(mac_platforms((13, 0), "x86_64"))
    assert {"macosx_13_0_x86_64", "macosx_10_9_x86_64", "macosx_10_9_universal2", "macosx_11_0_universal2"} <= set(
        intel
    )
    assert not any(tag.startswith(("macosx_14", "macosx_15")) for tag in intel)  # proven from macOS 13 up
    apple = BY_NAME["macOS arm64"].tags
    assert apple[:2] == ("macosx_11_0_arm64", "macosx_11_0_universal2") and "macosx_10_9_universal2" in apple


@pytest.mark.parametrize(
    ("platform", "machine", "system"),
    [
        ("Linux x86_64 (glibc)", "x86_64", "linux"),
        ("Linux aarch64 (musl)", "aarch64", "linux"),
        ("macOS arm64", "arm64", "darwin"),
        ("macOS x86_64", "x86_64", "darwin"),
        ("Windows x64", "AMD64", "win32"),
        ("Windows arm64", "ARM64", "win32"),
    ],
)
def test_markers_are_those_the_target_python_reports(platform: str, machine: str, system: str) -> None:
    environment = BY_NAME[platform].environment("3.9.2")
    assert environment["platform_machine"] == machine and environment["sys_platform"] == system
    assert environment["python_full_version"] == "3.9.2" and environment["python_version"] == "3.9"
    assert environment["os_name"] == ("nt" if system == "win32" else "posix")


def test_each_cell_gets_the_cryptography_it_has_wheels_for() -> None:
    """Filtered for the target, not for the interpreter running pip (which pip would do)."""
    pins = lock_pins()
    wanted: Dict[str, Set[str]] = {}
    for cell in cells():
        chosen = applicable(pins, cell.platform.environment(cell.python))
        names = [pin.name for pin in chosen]
        assert len(names) == len(set(names)), (cell.label, names)  # one version of each
        assert {"cryptography", "cffi", "pyjwt", "requests"} <= set(names), cell.label
        wanted.setdefault(cell.platform.name, set()).update(pinned(chosen, "cryptography"))
    assert wanted["macOS x86_64"] == {"48.0.1"}  # the last with an x86_64 (universal2) wheel
    assert wanted["Windows arm64"] == {"46.0.3"}  # the last with a win_arm64 wheel
    others = {
        version
        for name, versions in wanted.items()
        if name not in ("macOS x86_64", "Windows arm64")
        for version in versions
    }
    assert len(others) == 1 and others != {"48.0.1"}


def test_the_lock_is_read_with_every_hash() -> None:
    text = (ROOT / "requirements" / "runtime.lock").read_text(encoding="utf-8")
    pins = lock_pins()
    assert len(pins) == sum(1 for line in text.splitlines() if line[:1].isalnum())
    assert sum(len(pin.hashes) for pin in pins) == text.count("--hash=sha256:")
    assert all(pin.hashes and all(h.startswith("sha256:") for h in pin.hashes) for pin in pins)
    assert "; " not in pins[0].requirement() and pins[0].requirement().startswith(
        f"{pins[0].name}=={pins[0].version} --hash="
    )


def test_pip_is_given_the_target_not_this_interpreter() -> None:
    cell = Cell(BY_NAME["Linux aarch64 (glibc)"], "3.9.2")
    args = pip_download_args(cell, "req.txt", "dest", "cache")
    assert args[:4] == [sys.executable, "-m", "pip", "download"]
    for flag in ("--no-deps", "--require-hashes"):
        assert flag in args
    assert args[args.index("--only-binary") + 1] == ":all:"
    assert args[args.index("--python-version") + 1] == "3.9.2"
    assert args[args.index("--implementation") + 1] == "cp"
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--abi"] == ["cp39", "abi3", "none"]
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--platform"] == manylinux_tags("aarch64")
    assert args[args.index("--cache-dir") + 1] == "cache" and args[-2:] == ["-r", "req.txt"]


class FakeIndex:
    """pip download against an index that lacks some (name, platform) files."""

    def __init__(self, absent: Set[Tuple[str, str]]) -> None:
        self.absent = absent
        self.calls: List[Tuple[str, List[str]]] = []

    def __call__(self, cell: Cell, pins: Sequence[Pin]) -> str:
        self.calls.append((cell.label, [pin.name for pin in pins]))
        missing = any((pin.name, cell.platform.name) in self.absent for pin in pins)
        return NO_WHEEL if missing else ""


def test_a_failed_cell_names_every_missing_pin() -> None:
    pins = lock_pins()
    index = FakeIndex({("cryptography", "Windows arm64"), ("cffi", "Windows arm64"), ("cryptography", "macOS x86_64")})
    todo = cells()
    results = check_cells(todo, pins, index, jobs=2)
    failed = {cell.label: missing for cell, missing in results.items() if missing}
    assert len(failed) == 6 + 4
    arm = failed["Windows arm64, CPython 3.12.0"]
    assert [entry.split("==")[0] for entry in arm] == ["cffi", "cryptography"]
    assert failed["macOS x86_64, CPython 3.9.2"] == ["cryptography==48.0.1"]
    lines, status = report(results, "requirements/runtime.lock", 1.0)
    assert status == 1
    assert (
        "check-wheels: requirements/runtime.lock does not install on macOS x86_64, CPython 3.9.2: missing cryptography==48.0.1"
        in lines
    )
    assert lines[-1] == "check-wheels: requirements/runtime.lock: 36 of 46 cells ok (1 s)"
    row = next(line for line in lines[0].splitlines() if line.startswith("| Windows arm64 |"))
    assert row.startswith("| Windows arm64 | - | - | missing cffi==")


def test_a_cell_that_downloads_is_checked_with_one_pip_run() -> None:
    index = FakeIndex(set())
    cell = Cell(BY_NAME["Windows x64"], "3.13.0")
    assert check_cell(cell, lock_pins(), index) == []
    assert len(index.calls) == 1
    lines, status = report({cell: []}, "requirements/runtime.lock", 0.4)
    assert status == 0 and lines[-1].endswith("1 of 1 cells ok (0 s)")


def test_pip_failures_other_than_a_missing_wheel_are_named() -> None:
    assert why_pip_failed("ERROR: No matching distribution found for cffi==2.1.1") == NO_WHEEL
    assert (
        why_pip_failed("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.") == "hash mismatch"
    )
    unreachable = "WARNING: Location 'x' is ignored: ...\nERROR: Could not install: connection refused"
    assert why_pip_failed(unreachable) == "pip: ERROR: Could not install: connection refused"
    cell = Cell(BY_NAME["Windows x64"], "3.13.0")
    pins = [pin for pin in lock_pins() if pin.name == "pyjwt"]
    assert check_cell(cell, pins, lambda cell, pins: "hash mismatch") == [f"pyjwt=={pins[0].version} (hash mismatch)"]
