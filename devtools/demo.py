"""``python3 dev.py demo``: the whole action against a local App Store Connect stand-in.

A throwaway key is generated in memory, the stand-in is started on 127.0.0.1, and the action
runs as the runner would run it (a subprocess with INPUT_* variables and file commands), once
with correct secrets and once with a wrong issuer ID, so you see the outputs, the job summary
and the 401 explanation a workflow gets; then the upload step sends a small IPA through the
stand-in's Build Uploads API and waits until it is processed. Nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import plistlib
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from typing import Dict, List, Tuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .runnerfiles import RunnerFiles
from .standin import DEMO_BUNDLE_ID, AppStoreConnectStandIn, Fault
from .uploads import PROCESSING_OUTCOMES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEMO_KEY_ID = "DEMO2KEY01"


def run_action_subprocess(env: Dict[str, str], workdir: str, *args: str) -> Tuple[int, str, Dict[str, str], str]:
    """Run the action like the runner (``upload``: the upload step): (exit code, log, outputs, summary)."""
    files = RunnerFiles.create(workdir)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    full_env.update(files.environment(), GITHUB_ACTIONS="true", RUNNER_TEMP=workdir, GITHUB_WORKSPACE=workdir)
    full_env.update(env)
    # As the composite action runs it: the runtime's python, isolated, on the checkout's entrypoint.
    completed = subprocess.run(
        [sys.executable, "-I", os.path.join(ROOT, "entrypoint.py"), *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one log, in the order it was written, as the runner shows it
        text=True,
        timeout=120,
        check=False,
    )
    return completed.returncode, hide_masked(completed.stdout), files.outputs(), files.summary_text()


def hide_masked(log: str) -> str:
    """Replace every value registered with ::add-mask:: by ***, as the runner does."""
    secrets = [line[len("::add-mask::") :] for line in log.splitlines() if line.startswith("::add-mask::")]
    shown = "\n".join(line for line in log.splitlines() if not line.startswith("::add-mask::"))
    for secret in sorted(secrets, key=len, reverse=True):
        shown = shown.replace(secret, "***")
    return shown


def run_demo() -> int:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    issuer = str(uuid.uuid4())
    with AppStoreConnectStandIn() as api, tempfile.TemporaryDirectory() as workdir:
        api.register(DEMO_KEY_ID, key.public_key(), issuer)
        print(f"Demo: a throwaway P-256 key {DEMO_KEY_ID} and a local App Store Connect stand-in at {api.url}\n")
        base = {"INPUT_PRIVATE-KEY": pem, "INPUT_KEY-ID": DEMO_KEY_ID, "INPUT_API-URL": api.url}
        code, log, outputs, summary = run_action_subprocess({**base, "INPUT_ISSUER-ID": issuer}, workdir)
        _show("1. Correct secrets", code, log, outputs, summary)
        code_bad, log, outputs, summary = run_action_subprocess({**base, "INPUT_ISSUER-ID": str(uuid.uuid4())}, workdir)
        _show("2. A wrong issuer-id (the classic 2 a.m. 401)", code_bad, log, outputs, summary)
        api.uploads.polls_per_state = 0  # Apple takes minutes to process a build; the stand-in does not
        ipa = _demo_ipa(workdir)
        upload_inputs = {"INPUT_FILE": ipa, "INPUT_WAIT": "true", "ASC_ACTION_FORM": "composite"}
        named = {name.replace("-", "_"): value for name, value in {**base, "INPUT_ISSUER-ID": issuer}.items()}
        code_upload, log, outputs, summary = run_action_subprocess({**named, **upload_inputs}, workdir, "upload")
        _show(
            "3. The upload step: an IPA through the Build Uploads API, until processed",
            code_upload,
            log,
            outputs,
            summary,
        )
    if code != 0 or code_bad == 0 or code_upload != 0:
        print("Demo FAILED: the good run and the upload should pass, and the bad run should fail.")
        return 1
    print(
        "Demo OK: the first run passed with outputs, the second failed with an explanation, "
        "and the upload was processed."
    )
    return 0


def _demo_ipa(folder: str) -> str:
    """A small IPA for the stand-in's demo app: Payload/Demo.app/Info.plist and some bytes."""
    info = {
        "CFBundleIdentifier": DEMO_BUNDLE_ID,
        "CFBundleShortVersionString": "1.0",
        "CFBundleVersion": "1",
        "DTPlatformName": "iphoneos",
    }
    path = os.path.join(folder, "Demo.ipa")
    with zipfile.ZipFile(path, "w") as ipa:
        ipa.writestr("Payload/Demo.app/Info.plist", plistlib.dumps(info))
        ipa.writestr("Payload/Demo.app/Demo", os.urandom(256 * 1024))
    return path


def _show(title: str, code: int, log: str, outputs: Dict[str, str], summary: str) -> None:
    print(f"=== {title}: exit code {code}")
    print("--- step log (as the runner shows it: registered secrets become ***)")
    print(log.rstrip())
    print("--- step outputs (steps.<id>.outputs)")
    for name, value in outputs.items():
        shown = value[:16] + "… (masked in real logs)" if name == "token" else value
        print(f"{name} = {shown}")
    print("--- job summary")
    print(summary.rstrip() + "\n")


def serve_standin(argv: List[str]) -> int:
    """``python3 dev.py standin``: the stand-in, for the workflow self-test or your own pipeline.

    By default it makes a throwaway key and writes it to ``--key-file`` (0600). With
    ``--public-key`` it accepts tokens signed by your own key instead (give ``--key-id`` and
    ``--issuer-id``, or ``--individual``), so a pipeline can be tried end to end without Apple.
    The URL, key ID and issuer go to GITHUB_OUTPUT (or stdout); it serves for ``--seconds``, then
    stops by itself (or on Ctrl-C or SIGTERM), removing the key it wrote. Build uploads end as
    ``--processing-outcome`` says, in parts of ``--upload-part-size``. ``--clock-skew``, ``--revoked``,
    ``--server-errors``, ``--rate-limited`` and ``--apps`` reproduce the rows of docs/troubleshooting.md.
    """
    parser = argparse.ArgumentParser(prog="dev.py standin")
    parser.add_argument("--key-file", help="where to write the throwaway .p8 (not with --public-key)")
    parser.add_argument("--public-key", help="PEM public key of your own .p8 (openssl ec -in AuthKey.p8 -pubout)")
    parser.add_argument("--key-id", default=DEMO_KEY_ID, help="the key ID tokens must carry as kid")
    parser.add_argument("--issuer-id", help="the issuer tokens must carry (default: a random UUID)")
    parser.add_argument("--individual", action="store_true", help="an individual key: sub user, no iss")
    parser.add_argument("--seconds", type=float, default=600.0, help="serve this long, then stop")
    parser.add_argument(
        "--processing-outcome",
        choices=PROCESSING_OUTCOMES,
        default="VALID",
        help="how an uploaded build ends: VALID, INVALID (the build), FAILED (the build upload, Apple's 90189)",
    )
    parser.add_argument(
        "--upload-part-size", type=int, default=5 * 1024 * 1024, help="bytes per upload operation (Apple's: 5 MiB)"
    )
    # The faults docs/troubleshooting.md describes, on demand.
    parser.add_argument(
        "--clock-skew",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="the stand-in's clock this far ahead (or behind, <0)",
    )
    parser.add_argument("--revoked", action="store_true", help="the key is revoked: every token gets 401")
    parser.add_argument(
        "--server-errors", type=int, default=0, metavar="N", help="answer the first N requests 5xx (--server-status)"
    )
    parser.add_argument("--server-status", type=int, default=503, help="the status of those answers (500-599)")
    parser.add_argument(
        "--rate-limited", type=int, default=0, metavar="N", help="answer the next N requests 429 RATE_LIMIT_EXCEEDED"
    )
    parser.add_argument("--retry-after", type=int, help="the Retry-After seconds those 429s carry (default: none)")
    parser.add_argument("--apps", type=int, default=None, metavar="N", help="how many apps the key sees")
    args = parser.parse_args(argv)
    if not 500 <= args.server_status <= 599:
        parser.error("--server-status must be 500 to 599")
    if min(args.server_errors, args.rate_limited, 0 if args.apps is None else args.apps) < 0:
        parser.error("--server-errors, --rate-limited and --apps take 0 or more")
    if args.public_key is not None and args.key_file is not None:
        parser.error("give --key-file (a throwaway key is made there) or --public-key (your own key), not both")
    written: List[str] = []  # removed when it stops: the throwaway key, and the folder made for it
    if args.public_key is None and args.key_file is None:
        folder = tempfile.mkdtemp(prefix="asc-token-standin-")
        args.key_file = os.path.join(folder, f"AuthKey_{args.key_id}.p8")
        written.append(folder)
    facts: Dict[str, str] = {}
    if args.public_key is not None:
        with open(args.public_key, "rb") as stream:
            public_key = serialization.load_pem_public_key(stream.read())
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            parser.error("--public-key must be an EC P-256 public key")
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        public_key = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        os.makedirs(os.path.dirname(os.path.abspath(args.key_file)), exist_ok=True)
        with open(
            os.open(args.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8"
        ) as stream:
            stream.write(pem)
        facts["key-file"] = os.path.abspath(args.key_file)
        written.insert(0, facts["key-file"])
    issuer = None if args.individual else (args.issuer_id or str(uuid.uuid4()))
    if args.upload_part_size < 1:
        parser.error("--upload-part-size must be at least 1")
    options = {} if args.apps is None else {"app_count": args.apps}
    api = AppStoreConnectStandIn(clock_offset_seconds=args.clock_skew, **options).start()
    if not args.revoked:  # Apple knows a revoked key's ID no longer: 401 NOT_AUTHORIZED
        api.register(args.key_id, public_key, issuer)
    api.inject(*[Fault("status", status=args.server_status)] * args.server_errors)
    api.inject(*[Fault("rate-limit", retry_after=args.retry_after)] * args.rate_limited)
    api.uploads.processing_outcome = args.processing_outcome
    api.uploads.part_size = args.upload_part_size
    facts = {"url": api.url, "key-id": args.key_id, "issuer-id": issuer or "", **facts}
    output = os.environ.get("GITHUB_OUTPUT")
    with open(output, "a", encoding="utf-8") if output else contextlib.nullcontext(sys.stdout) as stream:
        for name, value in facts.items():
            stream.write(f"{name}={value}\n")
    if not output:  # by hand: what to paste into another shell
        key_setting = f" ASC_PRIVATE_KEY_PATH={facts['key-file']}" if "key-file" in facts else ""
        issuer_setting = f" ASC_ISSUER_ID={issuer}" if issuer else " ASC_KEY_TYPE=individual"
        print(f"# serving for {args.seconds:.0f} s; in another shell:", file=sys.stdout)
        print(f"export ASC_API_URL={api.url} ASC_KEY_ID={args.key_id}{issuer_setting}{key_setting}")
    sys.stdout.flush()
    # SIGTERM (a runner's cancel, `kill`) ends it as Ctrl-C does: what it wrote is removed either way.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        time.sleep(max(0.0, args.seconds))
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
        _remove(written)
    return 0


def _interrupted(signal_number: int, frame: object) -> None:
    raise KeyboardInterrupt


def _remove(written: List[str]) -> None:
    """The files and folders the stand-in wrote, the key first; one already gone is no error."""
    for path in written:
        with contextlib.suppress(OSError):
            if os.path.isdir(path):
                os.rmdir(path)  # only the folder made for the key, empty once the key is gone
            else:
                os.unlink(path)


def main(argv: List[str]) -> int:
    if argv[:1] == ["standin"]:
        return serve_standin(argv[1:])
    return run_demo()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
