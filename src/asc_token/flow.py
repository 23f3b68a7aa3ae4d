"""The flow every front end shares: settings in, a masked token and its facts out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .config import Naming, Settings
from .keyfiles import KeyFiles, write_key_files
from .keys import read_private_key, secret_forms, to_pkcs8_pem
from .minting import Clock, MintedToken, TokenRequest, mint, scope_allows
from .transport import Transport
from .verify import VerificationResult, verify_credentials

VERIFY_TOKEN_LIFETIME = 120


@dataclass(frozen=True)
class Outcome:
    minted: MintedToken
    verification: Optional[VerificationResult] = None
    key_files: Optional[KeyFiles] = None
    verified_with_separate_token: bool = False


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
    # A long-lived token's scope never covers the verification request (lifetimes.py), so it is
    # always verified with a short token of its own.
    separate = not scope_allows(settings.scope, "GET", api.verify_path)
    if separate:
        edge.log(
            f"The {naming.label('scope')} does not cover GET {api.verify_path}; verifying with a separate "
            f"unscoped {VERIFY_TOKEN_LIFETIME}-second token."
        )
    probe_request = (
        TokenRequest(settings.key_id, settings.issuer_id, VERIFY_TOKEN_LIFETIME, api=api) if separate else request
    )

    def tokens(fresh: bool) -> str:
        if not fresh and not separate:
            return minted.token
        probe = mint(key, probe_request, edge.clock)
        edge.mask(probe.token)
        return probe.token

    result = verify_credentials(
        tokens,
        settings.api_url,
        key_type=settings.key_type,
        transport=edge.transport,
        naming=naming,
        clock=edge.clock,
        api=api,
    )
    return Outcome(minted, verification=result, key_files=key_files, verified_with_separate_token=separate)
