"""The flow every front end shares: settings in, a masked token and its facts out."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Tuple

from .checks import SEPARATE_TOKEN_LIFETIME, CheckResult, VerificationResult, run_checks
from .config import Check, Naming, Settings
from .keyfiles import KeyFiles, write_key_files
from .keys import read_private_key, secret_forms, to_pkcs8_pem
from .minting import Clock, MintedToken, TokenRequest, mint, scope_allows
from .transport import Tokens, Transport


@dataclass(frozen=True)
class Outcome:
    minted: MintedToken
    verification: Optional[VerificationResult] = None
    key_files: Optional[KeyFiles] = None
    verified_with_separate_token: bool = False
    checks: Tuple[CheckResult, ...] = ()  # every check's result, in the order given


@dataclass(frozen=True)
class Collaborators:
    """What the flow needs from its edge: time, secrets masking, logging and HTTP."""

    clock: Clock
    mask: Callable[[str], None]
    log: Callable[[str], None]
    transport: Transport


def run_flow(
    settings: Settings, naming: Naming, edge: Collaborators, *, workspace: Optional[str], temp_dir: Optional[str]
) -> Outcome:
    key = read_private_key(settings.key, workspace)
    for form in secret_forms(key, settings.key.contents):
        edge.mask(form)
    api = settings.api
    request = TokenRequest(settings.key_id, settings.issuer_id, settings.expires_in, settings.scope, api)
    minted = mint(key, request, edge.clock)
    edge.mask(minted.token)  # before anything else is written that could carry it

    key_files = None
    if settings.write_key_files:
        key_files = write_key_files(
            base_dir=temp_dir,
            key_pem=to_pkcs8_pem(key),
            key_id=settings.key_id,
            issuer_id=settings.issuer_id,
            duration=settings.expires_in,
            in_house=api.fastlane_in_house,
        )

    if not settings.verify:
        return Outcome(minted, key_files=key_files)

    def tokens_for(check: Check, scope_path: str) -> Tuple[Tokens, bool]:
        separate = not scope_allows(settings.scope, "GET", scope_path)
        if separate:
            edge.log(
                f"The {naming.label('scope')} does not cover GET {scope_path}; checking {check.entry} "
                f"with a separate unscoped {SEPARATE_TOKEN_LIFETIME}-second token."
            )
        probe_request = (
            TokenRequest(settings.key_id, settings.issuer_id, SEPARATE_TOKEN_LIFETIME, api=api) if separate else request
        )

        def tokens(fresh: bool) -> str:
            if not fresh and not separate:
                return minted.token
            probe = mint(key, probe_request, edge.clock)
            edge.mask(probe.token)
            return probe.token

        return tokens, separate

    results = run_checks(settings, naming, tokens_for, transport=edge.transport, clock=edge.clock, log=edge.log)
    apps = next((result for result in results if result.check.name == "apps"), None)
    # Any check that passed proved the credentials; without `apps` its rate limit is the latest.
    facts = apps.facts if apps is not None else next((r.facts for r in reversed(results) if r.facts), None)
    if apps is None and facts is not None:
        facts = replace(facts, app_count=None)  # only the apps check counts apps
    return Outcome(
        minted,
        verification=facts,
        key_files=key_files,
        verified_with_separate_token=apps is not None and apps.separate_token,
        checks=results,
    )
