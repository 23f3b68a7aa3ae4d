"""The action's flow, shared by every platform: settings in, a masked token and its facts out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

from .config import Settings, resolve_key_path
from .errors import InputError
from .keyfiles import KeyFiles, write_key_files
from .keys import load_private_key, secret_lines, to_pkcs8_pem
from .minting import Clock, MintedToken, TokenRequest, mint, scope_allows
from .verify import VERIFY_PATH, Labels, RetryPolicy, Session, VerificationResult, verify_credentials

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
    session: Optional[Session] = None
    policy: RetryPolicy = RetryPolicy()


def read_key_text(settings: Settings, workspace: Optional[str]) -> str:
    if not settings.private_key_path:
        return settings.private_key
    path = resolve_key_path(settings.private_key_path, workspace)
    label = settings.key_label
    if os.path.isdir(path):
        raise InputError(
            label, f"{label} points at a folder ({settings.private_key_path}), not the .p8 file: give the file's path."
        )
    try:
        with open(path, "rb") as stream:
            raw = stream.read(64 * 1024)
    except FileNotFoundError:
        raise InputError(
            label,
            f"{label} file {settings.private_key_path!r} does not exist (looked in "
            f"{os.path.dirname(path) or '.'}): paths are relative to the workspace, so check the "
            "path and that an earlier step wrote the file.",
        ) from None
    except OSError as exc:
        raise InputError(
            label, f"{label} file {settings.private_key_path!r} cannot be read ({exc.strerror}): check its permissions."
        ) from None
    return raw.decode("utf-8", errors="replace")


def run_flow(
    settings: Settings, labels: Labels, edge: Collaborators, *, workspace: Optional[str], temp_dir: Optional[str]
) -> Outcome:
    key = load_private_key(read_key_text(settings, workspace), input_label=settings.key_label)
    for line in secret_lines(key):
        edge.mask(line)
    request = TokenRequest(settings.key_id, settings.issuer_id, settings.expires_in, settings.scope)
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
        )

    if not settings.verify:
        return Outcome(minted, key_files=key_files)
    probe_token, separate = minted.token, False
    if not scope_allows(settings.scope, "GET", VERIFY_PATH):
        # The scoped token may not list apps: check the credentials with a short unscoped one.
        probe = mint(key, TokenRequest(settings.key_id, settings.issuer_id, VERIFY_TOKEN_LIFETIME), edge.clock)
        edge.mask(probe.token)
        probe_token, separate = probe.token, True
        edge.log(
            f"The {labels.scope} does not cover GET {VERIFY_PATH}; verifying with a separate unscoped {VERIFY_TOKEN_LIFETIME}-second token."
        )
    result = verify_credentials(
        probe_token,
        settings.api_url,
        key_type=settings.key_type,
        session=edge.session,
        clock=edge.clock,
        policy=edge.policy,
        labels=labels,
        log=edge.log,
    )
    return Outcome(minted, verification=result, key_files=key_files, verified_with_separate_token=separate)


def labels_for(label: Callable[[str], str]) -> Labels:
    return Labels(
        key_id=label("key-id"),
        issuer_id=label("issuer-id"),
        key_type=label("key-type"),
        private_key=label("private-key"),
        scope=label("scope"),
        api_url=label("api-url"),
    )
