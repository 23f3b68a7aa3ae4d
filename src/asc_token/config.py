"""Validate what the user configured into :class:`Settings`, naming the input on every error.

Sources differ per platform (action inputs, flags, environment variables), so validation reads
through an :class:`InputReader` that also says how the user spells each setting.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional, Protocol, Tuple

from .errors import InputError
from .minting import MAX_LIFETIME_SECONDS

DEFAULT_API_URL = "https://api.appstoreconnect.apple.com"
_KEY_ID = re.compile(r"^[A-Z0-9]{10}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TRUE = {"true", "True", "TRUE", "yes", "1", "on"}
_FALSE = {"false", "False", "FALSE", "no", "0", "off"}


class InputReader(Protocol):
    def get(self, name: str) -> str:
        """The raw value of a setting by its action input name; '' when unset."""

    def label(self, name: str) -> str:
        """How the user sets it, for messages: "`key-id`", "--key-id", "ASC_KEY_ID"."""


@dataclass(frozen=True)
class Settings:
    key_id: str
    issuer_id: Optional[str]
    key_type: str
    expires_in: int
    scope: Tuple[str, ...]
    private_key: str = field(repr=False)
    private_key_path: str = ""
    key_label: str = ""
    verify: bool = True
    api_url: str = DEFAULT_API_URL
    write_key_files: bool = False
    export_env: bool = False
    export_token: bool = False


def read_settings(inputs: InputReader) -> Settings:
    """Every check that needs no key material and no network, in the order a user fixes them."""
    private_key = inputs.get("private-key")
    private_key_path = inputs.get("private-key-path").strip()
    key_label = _choose_key_source(inputs, private_key, private_key_path)
    key_type = _key_type(inputs)
    key_id = _key_id(inputs)
    issuer_id = _issuer_id(inputs, key_type)
    write_key_files = read_bool(inputs, "write-key-files", default=False)
    export_env = read_bool(inputs, "export-env", default=False)
    if export_env and not write_key_files:
        raise InputError(
            inputs.label("export-env"),
            f"{inputs.label('export-env')} is true but {inputs.label('write-key-files')} is not: "
            f"set {inputs.label('write-key-files')} to true as well, since the exported variables "
            "point at the key files it writes.",
            details="with:\n  write-key-files: true\n  export-env: true",
        )
    return Settings(
        key_id=key_id,
        issuer_id=issuer_id,
        key_type=key_type,
        expires_in=_expires_in(inputs),
        scope=_scope(inputs),
        private_key=private_key,
        private_key_path=private_key_path,
        key_label=key_label,
        verify=read_bool(inputs, "verify", default=True),
        api_url=_api_url(inputs),
        write_key_files=write_key_files,
        export_env=export_env,
        export_token=read_bool(inputs, "export-token", default=False),
    )


def read_bool(inputs: InputReader, name: str, *, default: bool) -> bool:
    raw = inputs.get(name).strip()
    if raw == "":
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InputError(inputs.label(name), f"{inputs.label(name)} must be true or false, not {_shown(raw)}.")


def _shown(value: str) -> str:
    """Quote a wrong value back to the user, unless it could be a secret put in the wrong input."""
    if len(value) > 60 or "-----" in value or "\n" in value:
        return f"a {len(value)}-character value (not shown: it may be a secret in the wrong input)"
    return repr(value)


def resolve_key_path(path: str, workspace: Optional[str]) -> str:
    """Relative paths are relative to the workspace, where actions/checkout put the repository."""
    expanded = os.path.expanduser(path)
    if os.path.isabs(expanded):
        return expanded
    return os.path.join(workspace or os.getcwd(), expanded)


def _choose_key_source(inputs: InputReader, private_key: str, private_key_path: str) -> str:
    key, path = inputs.label("private-key"), inputs.label("private-key-path")
    if private_key.strip() and private_key_path:
        raise InputError(
            key,
            f"Both {key} and {path} are set: keep one, either the key's contents in {key} or "
            f"the path of the .p8 file in {path}.",
        )
    if not private_key.strip() and not private_key_path:
        raise InputError(
            key,
            f"No private key was given: set {key} to the contents of your AuthKey_<KEYID>.p8 "
            f"file (from a secret), or {path} to its path.",
            details=(
                "If you did set it, the secret is empty in this run: check that it exists in "
                "this repository or environment and is spelled the same, and note that GitHub "
                "passes empty secrets to pull requests from forks.\n\n"
                "with:\n  private-key: ${{ secrets.ASC_PRIVATE_KEY }}"
            ),
        )
    return path if private_key_path else key


def _key_type(inputs: InputReader) -> str:
    raw = inputs.get("key-type").strip().lower() or "team"
    if raw not in ("team", "individual"):
        raise InputError(
            inputs.label("key-type"),
            f"{inputs.label('key-type')} must be team or individual, not {_shown(raw)}: use team "
            "for keys from the Integrations > Team Keys tab, individual for a user's own key.",
        )
    return raw


def _key_id(inputs: InputReader) -> str:
    label = inputs.label("key-id")
    raw = inputs.get("key-id").strip()
    if not raw:
        raise InputError(
            label,
            f"{label} is empty: set it to the 10-character Key ID shown next to the key in App "
            "Store Connect (also in the file name AuthKey_<KEYID>.p8).",
        )
    if _KEY_ID.match(raw) is None:
        shape = "lowercase letters" if _KEY_ID.match(raw.upper()) else f"{len(raw)} characters"
        raise InputError(
            label,
            f"{label} must be 10 characters of A-Z and 0-9 (it has {shape}): copy the Key ID "
            "from App Store Connect, or from the file name AuthKey_<KEYID>.p8.",
        )
    return raw


def _issuer_id(inputs: InputReader, key_type: str) -> Optional[str]:
    label = inputs.label("issuer-id")
    raw = inputs.get("issuer-id").strip()
    if key_type == "individual":
        return None  # an individual key's token carries `sub: user` and no issuer
    if not raw:
        raise InputError(
            label,
            f"{label} is empty but {inputs.label('key-type')} is team: set {label} to the Issuer "
            f"ID from App Store Connect > Users and Access > Integrations, or set "
            f"{inputs.label('key-type')} to individual for an individual key; if you did set it, "
            "check that the secret or variable exists in this repository or environment (pull "
            "requests from forks get empty secrets).",
            details=(
                "with:\n  issuer-id: ${{ vars.ASC_ISSUER_ID }}\n# or, for an individual key:\n  key-type: individual"
            ),
        )
    if _UUID.match(raw) is None:
        raise InputError(
            label,
            f"{label} must be a UUID like 57246542-96fe-1a63-e053-0824d011072a: copy the Issuer "
            "ID from the top of App Store Connect > Users and Access > Integrations.",
        )
    return raw.lower()


def _expires_in(inputs: InputReader) -> int:
    label = inputs.label("expires-in")
    raw = inputs.get("expires-in").strip()
    if not raw:
        return MAX_LIFETIME_SECONDS
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIFETIME_SECONDS:
        raise InputError(
            label,
            f"{label} must be a whole number of seconds from 1 to {MAX_LIFETIME_SECONDS}, not "
            f"{_shown(raw)}: Apple rejects tokens that live longer than 20 minutes, so leave it "
            "unset for the maximum.",
        )
    return int(raw)


def _scope(inputs: InputReader) -> Tuple[str, ...]:
    label = inputs.label("scope")
    entries = tuple(" ".join(line.split()) for line in inputs.get("scope").splitlines() if line.strip())
    for entry in entries:
        method, _, path = entry.partition(" ")
        if method.upper() != method or not method.isalpha() or not path.startswith("/"):
            raise InputError(
                label,
                f"{label} entry {_shown(entry)} is not of the form METHOD /path: write one per "
                "line, like GET /v1/apps?filter[platform]=IOS.",
            )
    return entries


def _api_url(inputs: InputReader) -> str:
    raw = inputs.get("api-url").strip() or DEFAULT_API_URL
    if not raw.startswith(("https://", "http://")):
        raise InputError(
            inputs.label("api-url"),
            f"{inputs.label('api-url')} must start with https://, not {_shown(raw)}: leave it unset "
            f"for {DEFAULT_API_URL}.",
        )
    return raw.rstrip("/")
