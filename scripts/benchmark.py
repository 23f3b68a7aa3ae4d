#!/usr/bin/env python3
"""Benchmarks with side-by-side ratios against the targets in the issues.

    python3 dev.py bench [--quick] [--no-docker]

1. mint-only entrypoint.py vs `python -c pass` on the same interpreter      (target <= 18x)
2. composite first run (empty tool cache) vs `python -m venv && pip install
   pyjwt cryptography requests actions-toolkit`, both without pip's cache    (target <= 0.45x)
3. composite warm run vs entrypoint.py run directly                         (target <= 2x)
4. image size over its base                                                  (target <= 30 MB)
5. `docker run` mint-only vs `docker run BASE python3 -c pass`              (target <= 2.2x)
6. `asc-token api /v1/apps?limit=200 --paginate` over 1,000 apps on the stand-in vs the same five
   requests by `curl` in a shell loop (following links.next with sed) with one pre-minted token,
   with pages answered at once and with pages taking 0.3 s (a distant server)  (target <= 1.5x)
7. peak memory (max RSS) of `asc-token api /v1/apps?limit=200 --paginate` over 2,000 and over
   40,000 apps of about 1 KB each: how much it grows                          (target <= 60 MB)
   (`--only-memory` runs just this one)
8. upload operations (send_parts) of a 600 MB vs a 100 MB file in 5 MiB parts to the loopback object
   storage stand-in: how much the sender's peak memory (max RSS) grows      (target <= 30 MB)
9. a 300 MB file in 8 MiB parts, 4 at a time, to the same storage: send_parts (first part sent to
   last part answered) vs `curl --parallel --parallel-max 4` sending the same parts with the same
   headers, side by side; the sender's whole process time is noted          (target <= 1.3x)
   (`--only-upload` runs just these two)

Medians of repeated runs; wall-clock on this machine, so compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import plistlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parent.parent
KEY_ID = "ABCDE12345"
ISSUER = "57246542-96fe-1a63-e053-0824d011072a"
RESULTS: List[Tuple[str, float, float, float, str]] = []
NOTES: List[str] = []  # figures behind a row, printed under the table and kept with the last row


def median_seconds(run: Callable[[], None], repeat: int, setup: Optional[Callable[[], None]] = None) -> float:
    samples = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def check(command: List[str], env: Optional[Dict[str, str]] = None) -> None:
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(
            f"benchmark command failed: {command[:3]}...\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}"
        )


def record(name: str, ours: float, baseline: float, target: float, unit: str = "s") -> None:
    RESULTS.append((name, ours, baseline, target, unit))


def action_env(workdir: Path, pem: str) -> Dict[str, str]:
    output = workdir / "output"
    output.write_text("")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INPUT_", "GITHUB_", "RUNNER_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(workdir / "summary"),
        GITHUB_ACTION_PATH=str(ROOT),
        RUNNER_TEMP=str(workdir),
        ASC_ACTION_FORM="composite",  # the composite step's underscore inputs, as action.yml passes them
        INPUT_PRIVATE_KEY=pem,
        INPUT_KEY_ID=KEY_ID,
        INPUT_ISSUER_ID=ISSUER,
        INPUT_VERIFY="false",
    )
    return env


def bench_mint_and_composite(workdir: Path, pem: str, quick: bool) -> None:
    repeat = 5 if quick else 15
    env = action_env(workdir, pem)
    step = yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"][0]["run"]
    python3 = shutil.which("python3") or sys.executable

    # Cold composite run: an empty tool cache, pip's cache off (a fresh hosted runner).
    cold_env = {**env, "PIP_NO_CACHE_DIR": "1"}

    def fresh_cache() -> None:
        cache = workdir / "toolcache"
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir()
        cold_env["RUNNER_TOOL_CACHE"] = str(cache)

    cold_repeat = 2 if quick else 3
    cold = median_seconds(
        lambda: check(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step], cold_env),
        cold_repeat,
        fresh_cache,
    )

    def plain_setup() -> None:
        shutil.rmtree(workdir / "plain", ignore_errors=True)

    plain_pip = workdir / "plain" / ("Scripts" if os.name == "nt" else "bin") / "pip"

    def plain() -> None:
        check([python3, "-m", "venv", str(workdir / "plain")])
        check([str(plain_pip), "install", "--quiet", "--no-cache-dir", "--disable-pip-version-check",
               "pyjwt", "cryptography", "requests", "actions-toolkit"])  # fmt: skip

    baseline = median_seconds(plain, cold_repeat, plain_setup)
    record("composite first run vs venv + pip install", cold, baseline, 0.45)

    # Warm composite run (the venv is cached) vs entrypoint.py run directly with that venv.
    venv_dirs = list((workdir / "toolcache" / "asc-token-action").iterdir())
    venv_python = venv_dirs[0] / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    warm = median_seconds(
        lambda: check(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step], cold_env), repeat
    )
    direct = median_seconds(lambda: check([str(venv_python), "-I", str(ROOT / "entrypoint.py")], cold_env), repeat)
    record("composite warm run vs entrypoint.py directly", warm, direct, 2.0)

    empty = median_seconds(lambda: check([str(venv_python), "-c", "pass"]), repeat)
    record("mint-only entrypoint.py vs python -c pass", direct, empty, 18.0)


def bench_docker(workdir: Path, pem: str, quick: bool) -> None:
    docker = shutil.which("docker")
    base = os.environ.get("BASE_IMAGE")
    if docker is None or not base or subprocess.run([docker, "info"], capture_output=True, check=False).returncode != 0:
        print("docker: skipped (no engine or BASE_IMAGE; source ../shared/ci/docker-env.sh)")
        return
    check(
        [
            docker,
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "-t",
            "asc-token-action:bench",
            str(ROOT),
        ]
    )

    def size(image: str) -> float:
        out = subprocess.run(
            [docker, "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True, check=True
        )
        return int(out.stdout.strip()) / 1e6

    record("image size over its base (MB added)", size("asc-token-action:bench") - size(base), 0.0, 30.0, "MB")
    repeat = 5 if quick else 10
    # A container step gets the runner's hyphenated input names.
    env = {**os.environ, "GITHUB_ACTIONS": "true", "INPUT_PRIVATE-KEY": pem, "INPUT_KEY-ID": KEY_ID,
           "INPUT_ISSUER-ID": ISSUER, "INPUT_VERIFY": "false"}  # fmt: skip
    names = ["GITHUB_ACTIONS", "INPUT_PRIVATE-KEY", "INPUT_KEY-ID", "INPUT_ISSUER-ID", "INPUT_VERIFY"]
    flags = [part for name in names for part in ("-e", name)]
    ours = median_seconds(
        lambda: check([docker, "run", "--rm", "--network", "none", *flags, "asc-token-action:bench"], env), repeat
    )
    plain = median_seconds(
        lambda: check([docker, "run", "--rm", "--network", "none", base, "python3", "-c", "pass"]), repeat
    )
    record("docker run mint-only vs docker run BASE python3 -c pass", ours, plain, 2.2)


CURL_LOOP = r"""url="$ASC_API_URL/v1/apps?limit=200"; : > "$OUT"
while [ -n "$url" ]; do
  page=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$url") || exit 1
  printf '%s\n' "$page" >> "$OUT"
  url=$(printf '%s' "$page" | sed -n 's/.*"next": *"\([^"]*\)".*/\1/p')
done"""


def bench_api(workdir: Path, pem: str, quick: bool) -> None:
    curl = shutil.which("curl")
    asc_token = shutil.which("asc-token", path=os.path.dirname(sys.executable))
    if curl is None or asc_token is None:
        missing = "curl (apt-get install -y curl)" if curl is None else "asc-token in this venv"
        print(f"api --paginate vs curl: skipped ({missing} is not installed)")
        return
    sys.path.insert(0, str(ROOT))
    from devtools.standin import AppStoreConnectStandIn  # the test double, never shipped

    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    for delay, label in ((0.0, "pages at once"), (0.3, "pages in 0.3 s")):
        with AppStoreConnectStandIn(app_count=1000, hourly_limit=10**9, response_delay_seconds=delay) as api:
            api.register(KEY_ID, key.public_key(), ISSUER)
            ours, baseline = _api_and_curl_loop(api, asc_token, workdir, pem, 5 if quick else 11)
            record(f"api --paginate 1,000 apps vs curl loop ({label})", ours, baseline, 1.5)


def _api_and_curl_loop(api: Any, asc_token: str, workdir: Path, pem: str, repeat: int) -> Tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASC_", "GITHUB_", "INPUT_"))}
    env.update(ASC_PRIVATE_KEY=pem, ASC_KEY_ID=KEY_ID, ASC_ISSUER_ID=ISSUER, ASC_API_URL=api.url)
    minted = subprocess.run([asc_token, "--print", "--no-verify"], env=env, capture_output=True, text=True, check=True)
    loop_env = {**env, "TOKEN": minted.stdout.strip(), "OUT": str(workdir / "curl.json")}
    ours_out = workdir / "api.json"

    def ours() -> None:
        with open(ours_out, "wb") as stream:
            subprocess.run([asc_token, "api", "/v1/apps?limit=200", "--paginate"], env=env, stdout=stream, check=True)

    def loop() -> None:
        check(["bash", "--noprofile", "--norc", "-c", CURL_LOOP], loop_env)

    # Both make the same five requests, and ours returns every app.
    ours()
    asked = [path for path, _ in api.requests]
    del api.requests[:]
    loop()
    if [path for path, _ in api.requests] != asked or len(asked) != 5:
        raise SystemExit(f"api --paginate and the curl loop made different requests: {asked}")
    if len(json.loads(ours_out.read_text())["data"]) != 1000:
        raise SystemExit("asc-token api --paginate did not return 1,000 apps")
    return median_seconds(ours, repeat), median_seconds(loop, repeat)


def bench_upload_command(workdir: Path, pem: str) -> None:
    """The whole ``asc-token upload`` of a 300 MB IPA against the stand-in (no --wait): reported, no budget."""
    asc_token = shutil.which("asc-token", path=os.path.dirname(sys.executable))
    if asc_token is None:
        NOTES.append("asc-token upload, whole command: not measured (asc-token is not installed in this venv)")
        return
    sys.path.insert(0, str(ROOT))
    from devtools.standin import AppStoreConnectStandIn  # the test double, never shipped

    ipa = workdir / "App.ipa"
    info = {"CFBundleIdentifier": "com.example.demo", "CFBundleShortVersionString": "1.0", "CFBundleVersion": "1",
            "DTPlatformName": "iphoneos"}  # fmt: skip
    with zipfile.ZipFile(ipa, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("Payload/App.app/Info.plist", plistlib.dumps(info))
        with archive.open("Payload/App.app/Assets.car", "w", force_zip64=True) as member:
            for _ in range(UPLOAD_SIZE // MiB):
                member.write(bytes(MiB))
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    with AppStoreConnectStandIn(hourly_limit=10**9) as api:
        api.register(KEY_ID, key.public_key(), ISSUER)
        api.uploads.part_size = UPLOAD_PART
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASC_", "GITHUB_", "INPUT_"))}
        env.update(ASC_PRIVATE_KEY=pem, ASC_KEY_ID=KEY_ID, ASC_ISSUER_ID=ISSUER, ASC_API_URL=api.url)
        started = time.perf_counter()
        command = [asc_token, "upload", str(ipa), "--parallel", str(UPLOAD_PARALLEL)]
        subprocess.run(command, env=env, capture_output=True, check=True)
        whole = time.perf_counter() - started
    NOTES.append(
        f"asc-token upload, whole command, {ipa.stat().st_size / 1e6:,.0f} MB IPA in 8 MiB parts x{UPLOAD_PARALLEL}: "
        f"{whole:.2f} s (start, Info.plist, app lookup, reservation, SHA-256 pass, parts, commit, and one "
        "2 s poll of the delivery state)"
    )
    ipa.unlink()


MEMORY_COUNTS = (2_000, 40_000)
MEMORY_ITEM_BYTES = 1024


def bench_memory(workdir: Path, pem: str) -> None:
    """Peak RSS of one `asc-token api --paginate` process per item count, read from its own
    rusage (os.wait4), so neither this process nor an earlier run is counted."""
    asc_token = shutil.which("asc-token", path=os.path.dirname(sys.executable))
    if asc_token is None or not hasattr(os, "wait4"):
        print("api --paginate peak memory: skipped (needs asc-token in this venv and os.wait4)")
        return
    sys.path.insert(0, str(ROOT))
    from devtools.standin import AppStoreConnectStandIn  # the test double, never shipped

    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    peaks: Dict[int, float] = {}
    for count in MEMORY_COUNTS:
        with AppStoreConnectStandIn(app_count=count, hourly_limit=10**9, app_size_bytes=MEMORY_ITEM_BYTES) as api:
            api.register(KEY_ID, key.public_key(), ISSUER)
            peaks[count], seconds, out = _peak_rss_mb(api.url, asc_token, workdir, pem)
        items = json.loads(out.read_text())["data"]
        if len(items) != count:
            raise SystemExit(f"asc-token api --paginate returned {len(items)} apps, not {count}")
        size = out.stat().st_size / count
        NOTES.append(
            f"peak RSS over {count:,} apps (~{size:,.0f} bytes each in the output): {peaks[count]:.1f} MB, {seconds:.1f} s"
        )
    small, large = (peaks[count] for count in MEMORY_COUNTS)
    record(
        f"api --paginate peak RSS growth, {MEMORY_COUNTS[0]:,} to {MEMORY_COUNTS[1]:,} 1 KB apps",
        large - small,
        small,
        60.0,
        "MB growth",
    )


def _peak_rss_mb(api_url: str, asc_token: str, workdir: Path, pem: str) -> Tuple[float, float, Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASC_", "GITHUB_", "INPUT_"))}
    env.update(ASC_PRIVATE_KEY=pem, ASC_KEY_ID=KEY_ID, ASC_ISSUER_ID=ISSUER, ASC_API_URL=api_url)
    out = workdir / "paginated.json"
    started = time.perf_counter()
    with open(out, "wb") as stream:
        process = subprocess.Popen([asc_token, "api", "/v1/apps?limit=200", "--paginate"], env=env, stdout=stream)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"asc-token api --paginate failed with exit {process.returncode}")
    kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024  # macOS counts bytes
    return kib / 1024, time.perf_counter() - started, out


# A process that sends a file's parts as the upload command will: parse Apple's operations, send_parts.
SEND_PARTS = """
import json, sys
from asc_token.operations import SendOptions, parse_operations, send_parts
path, plan, parallel = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(plan, encoding="utf-8") as stream:
    items = json.load(stream)
sent = send_parts(path, parse_operations(items), SendOptions(parallel=parallel, env={}))
peak = None
try:  # this process's own high-water mark: ru_maxrss after fork+exec also counts the parent's pages at fork
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({"window": sent.seconds, "peak_kib": peak}))
"""
MiB = 1024 * 1024
UPLOAD_MEMORY_SIZES = (100_000_000, 600_000_000)
UPLOAD_SIZE, UPLOAD_PART, UPLOAD_PARALLEL = 300_000_000, 8 * MiB, 4


def _sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that takes no disk (read as zeros from the page cache, like any cached file)."""
    with open(path, "wb") as stream:
        stream.truncate(size)
    return path


def _send_parts_process(path: Path, items: List[Dict[str, Any]], workdir: Path) -> Tuple[Dict[str, float], float]:
    """send_parts in a process of its own (the storage's threads stay in this one); its figures and peak RSS in MB."""
    plan = workdir / "operations.json"
    plan.write_text(json.dumps(items))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-c", SEND_PARTS, str(path), str(plan), str(UPLOAD_PARALLEL)]
    started = time.perf_counter()
    with open(workdir / "send.json", "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out)
        _, status, usage = os.wait4(process.pid, 0)
    whole = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("send_parts failed in the benchmark's sender process")
    figures = json.loads((workdir / "send.json").read_text())
    kib = figures.pop("peak_kib") or (usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024)
    return {**figures, "process": whole}, kib / 1024


def bench_upload_memory(workdir: Path, quick: bool) -> None:
    """Peak RSS of a sender process per file size, the median of a few runs: threads and the allocator move
    one run's peak by several MB either way, whatever the size."""
    if not hasattr(os, "wait4"):
        print("send_parts peak memory: skipped (needs os.wait4)")
        return
    sys.path.insert(0, str(ROOT))
    from devtools.object_storage import ObjectStorage  # the test double, never shipped

    peaks: Dict[int, float] = {}
    for size in UPLOAD_MEMORY_SIZES:
        path = _sparse_file(workdir / f"upload-{size}.ipa", size)
        runs: List[float] = []
        for _ in range(3 if quick else 5):
            with ObjectStorage() as storage:  # one per run: its assembled file is dropped with it
                key, items = storage.reserve(size, part_size=5 * MiB)
                figures, peak = _send_parts_process(path, items, workdir)
                if not storage.complete(key):
                    raise SystemExit(f"send_parts left parts of the {size:,}-byte file unsent")
            runs.append(peak)
        path.unlink()
        peaks[size] = statistics.median(runs)
        NOTES.append(f"send_parts peak RSS, {size / 1e6:,.0f} MB in 5 MiB parts: median {peaks[size]:.1f} MB of "
                     f"{', '.join(f'{run:.1f}' for run in runs)} ({figures['window']:.1f} s a run)")  # fmt: skip
    small, large = (peaks[size] for size in UPLOAD_MEMORY_SIZES)
    record("send_parts peak RSS growth, 100 MB to 600 MB file (5 MiB parts)", large - small, small, 30.0, "MB growth")


def _curl_config(items: List[Dict[str, Any]], parts: Path) -> str:
    """One curl transfer per operation: its URL, its method (-T is PUT), its headers, its part's file."""
    groups = []
    for number, item in enumerate(items):  # `next` starts a transfer: its options (--fail too) are its own
        lines = [f'url = "{item["url"]}"', f'upload-file = "{parts / str(number)}"', 'output = "/dev/null"', "fail"]
        lines += [f'header = "{header["name"]}: {header["value"]}"' for header in item["requestHeaders"]]
        lines.append('header = "Expect:"')  # no 100-continue round trip: the fastest curl can be
        groups.append("\n".join(lines))
    return "\nnext\n".join(groups) + "\n"


def bench_upload_vs_curl(workdir: Path, quick: bool) -> None:
    curl = shutil.which("curl")
    usage = subprocess.run([curl, "--help", "all"], capture_output=True, text=True).stdout if curl else ""
    if curl is None or "--parallel-max" not in usage:
        lacking = "no curl (apt-get install -y curl)" if curl is None else "this curl lacks --parallel (7.66+)"
        print(f"send_parts vs curl --parallel: skipped ({lacking})")
        NOTES.append(f"send_parts vs curl --parallel: not measured, {lacking}")
        return
    sys.path.insert(0, str(ROOT))
    from devtools.object_storage import ObjectStorage  # the test double, never shipped

    path = _sparse_file(workdir / "upload-300.ipa", UPLOAD_SIZE)
    parts = workdir / "parts"
    parts.mkdir()
    with ObjectStorage() as storage:
        key, items = storage.reserve(UPLOAD_SIZE, part_size=UPLOAD_PART, expires_in=3600.0)
        for number, item in enumerate(items):  # curl sends files, not slices: each part its own (sparse) file
            _sparse_file(parts / str(number), item["length"])
        config = workdir / "curl.config"
        config.write_text(_curl_config(items, parts))
        command = [curl, "--silent", "--show-error", "--parallel", "--parallel-max", str(UPLOAD_PARALLEL),
                   "--config", str(config)]  # fmt: skip
        windows, processes, curls = [], [], []
        for _ in range(3 if quick else 7):  # side by side: one of each per round, the same parts to the same key
            del storage.received[:]
            figures, _ = _send_parts_process(path, items, workdir)
            windows.append(figures["window"])
            processes.append(figures["process"])
            curls.append(median_seconds(lambda: check(command), 1))
            statuses = {request.status for request in storage.received}
            if statuses != {200} or len(storage.received) != 2 * len(items) or not storage.complete(key):
                raise SystemExit(f"send_parts or curl did not deliver every part: statuses {statuses}")
    ours, baseline = statistics.median(windows), statistics.median(curls)
    record(f"send_parts 300 MB, 8 MiB parts x{UPLOAD_PARALLEL} vs curl --parallel", ours, baseline, 1.3)
    NOTES.append(
        f"send_parts 300 MB: {UPLOAD_SIZE / ours / 1e6:,.0f} MB/s in its window, whole sender process "
        f"{statistics.median(processes):.3f} s (Python's start and imports included); curl {UPLOAD_SIZE / baseline / 1e6:,.0f} MB/s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-docker", action="store_true", help="skip the image figures")
    parser.add_argument("--only-api", action="store_true", help="only the asc-token api figures")
    parser.add_argument("--only-memory", action="store_true", help="only the asc-token api --paginate peak memory")
    parser.add_argument("--only-upload", action="store_true", help="only the upload operations figures")
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with tempfile.TemporaryDirectory(prefix="asc-bench-") as tmp:
        workdir = Path(tmp)
        if not (args.only_api or args.only_memory or args.only_upload):
            bench_mint_and_composite(workdir, pem, args.quick)
            if not args.no_docker:
                bench_docker(workdir, pem, args.quick)
        if not (args.only_memory or args.only_upload):
            bench_api(workdir, pem, args.quick)
        if not args.only_upload:
            bench_memory(workdir, pem)
        if not (args.only_api or args.only_memory):
            bench_upload_memory(workdir, args.quick)
            bench_upload_vs_curl(workdir, args.quick)
            bench_upload_command(workdir, pem)
    print(f"\n{'measurement':<58} {'ours':>10} {'baseline':>10} {'ratio':>7} {'target':>8}  ok")
    failed = False
    for name, ours, baseline, target, unit in RESULTS:
        if unit == "MB":
            ok = ours <= target
            print(f"{name:<58} {ours:>8.1f}MB {'':>10} {'':>7} {'<=' + str(target):>8}  {'yes' if ok else 'NO'}")
        elif unit == "MB growth":  # ours: the growth; baseline: the smaller run's peak
            ok = ours <= target
            print(
                f"{name:<58} {ours:>+8.1f}MB {baseline:>8.1f}MB {'':>7} {'<=' + str(target):>8}  {'yes' if ok else 'NO'}"
            )
        else:
            ratio = ours / baseline
            ok = ratio <= target
            print(
                f"{name:<58} {ours:>9.3f}s {baseline:>9.3f}s {ratio:>6.2f}x {'<=' + str(target) + 'x':>8}  {'yes' if ok else 'NO'}"
            )
        failed = failed or not ok
    for note in NOTES:
        print(f"  {note}")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    rows = [dict(zip(("name", "ours", "baseline", "target", "unit"), r)) for r in RESULTS]
    if rows and NOTES:
        rows[-1]["notes"] = NOTES
    (out / "latest.json").write_text(json.dumps(rows, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
