"""The flow every front end shares: settings in, a masked token and its facts out."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Tuple

from .checks import CheckResult, Preflight, VerificationResult, run_checks
from .config import Credentials, Naming
from .credentials import Mask, TokenSource, open_key
from .keys import to_pkcs8_pem
from .minting import MintedToken
from .secret_files import KeyFiles, write_key_files
from .transport import Io


@dataclass(frozen=True)
class Outcome:
    minted: MintedToken
    verification: Optional[VerificationResult] = None
    key_files: Optional[KeyFiles] = None
    checks: Tuple[CheckResult, ...] = ()  # every check's result, in the order given


def run_flow(
    credentials: Credentials,
    preflight: Preflight,
    naming: Naming,
    io: Io,
    *,
    log: Callable[[str], None],
    mask: Mask,
    mask_key: Optional[Mask],
    workspace: Optional[str],
    key_files_dir: Optional[str] = None,
) -> Outcome:
    """Mint, write the key files when ``key_files_dir`` is given (RUNNER_TEMP; '' when unset), check."""
    key = open_key(credentials.key, workspace, mask_key, wait=io.policy.read_timeout)  # as for --input
    # keep_first: the checks prove the very token handed on
    tokens = TokenSource(key, credentials.token_request(), io.clock, mask, keep_first=True)
    minted = tokens.first  # masked before anything else is written that could carry it

    key_files = None
    if key_files_dir is not None:
        key_files = write_key_files(key_files_dir, to_pkcs8_pem(key), credentials, io.env)
    if not preflight.verify:
        return Outcome(minted, key_files=key_files)

    transport = io.transport(log, credentials.api.service)
    results = run_checks(credentials, preflight, naming, tokens, transport=transport, clock=io.clock, log=log)
    apps = next((result for result in results if result.check.name == "apps"), None)
    # Any check that passed proved the credentials; without `apps` its rate limit is the latest.
    facts = apps.facts if apps is not None else next((r.facts for r in reversed(results) if r.facts), None)
    if apps is None and facts is not None:
        facts = replace(facts, app_count=None)  # only the apps check counts apps
    return Outcome(minted, verification=facts, key_files=key_files, checks=results)
