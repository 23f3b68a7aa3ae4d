"""Validate what the user configured into :class:`Settings`, naming the setting on every error.

Sources differ per front end (action inputs, flags, environment variables), so validation reads
through an :class:`InputReader`, which also says how the user spells each setting: every message
names settings through it, never by a hard-coded name.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional, Protocol, Tuple
from urllib.parse import urlsplit

from .errors import InputError, KeyMissingError
from .keys import KeySource, looks_like_key_material
from .minting import MAX_LIFETIME_SECONDS

DEFAULT_API_URL = "https://api.appstoreconnect.apple.com"
_KEY_ID = re.compile(r"^[A-Z0-9]{10}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TRUE = {"true", "True", "TRUE", "yes", "1", "on"}
_FALSE = {"false", "False", "FALSE", "no", "0", "off"}


class Naming(Protocol):
    """How the user spells settings on this front end, for messages."""

    @property
    def on_github(self) -> bool:
        """Whether the user configures this run with a workflow's ``with:`` (GitHub YAML helps)."""

    def label(self, name: str) -> str:
        """How the user sets it, for messages: "`key-id`", "--key-id", "ASC_KEY_ID"."""

    def assignment(self, name: str, value: str) -> str:
        """How the user writes that setting with that value: "`verify: false`", "--no-verify"."""


class InputReader(Naming, Protocol):
    def get(self, name: str) -> str:
        """The raw value of a setting by its action input name; '' when unset."""


@dataclass(frozen=True)
class Settings:
    key_id: str
    issuer_id: Optional[str]
    key_type: str
    expires_in: int
    scope: Tuple[str, ...]
    key: KeySource
    verify: bool = True
    api_url: str = DEFAULT_API_URL
    write_key_files: bool = False
    export_env: bool = False
    export_token: bool = False


def read_settings(inputs: InputReader) -> Settings:
    """Every check that needs no key material and no network, in the order a user fixes them."""
    key = _key_source(inputs)
    key_type = _key_type(inputs)
    key_id = _key_id(inputs)
    issuer_id = _issuer_id(inputs, key_type)
    write_key_files = read_bool(inputs, "write-key-files", default=False)
    export_env = read_bool(inputs, "export-env", default=False)
    if export_env and not write_key_files:
        raise InputError(
            f"{inputs.label('export-env')} is true but {inputs.label('write-key-files')} is not: "
            f"set {inputs.label('write-key-files')} to true as well, since the exported variables "
            "point at the key files it writes.",
            details=f"Set {inputs.assignment('write-key-files', 'true')} and {inputs.assignment('export-env', 'true')}.",
        )
    return Settings(
        key_id=key_id,
        issuer_id=issuer_id,
        key_type=key_type,
        expires_in=_expires_in(inputs),
        scope=_scope(inputs),
        key=key,
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
    raise InputError(f"{inputs.label(name)} must be true or false, not {_shown(raw)}.")


def _shown(value: str) -> str:
    """Quote a wrong value back to the user, unless it could be a secret put in the wrong input."""
    if len(value) > 60 or "\n" in value or looks_like_key_material(value) or _could_be_key_fragment(value):
        return f"a {len(value)}-character value (not shown: it may be a secret in the wrong input)"
    return repr(value)


def _could_be_key_fragment(value: str) -> bool:
    # A line of a PEM body is 64 base64 characters; a 43-44 character one is a whole raw P-256 key.
    return len(value) >= 24 and re.fullmatch(r"[A-Za-z0-9+/=]+", value) is not None


def _key_source(inputs: InputReader) -> KeySource:
    contents, path = inputs.get("private-key"), inputs.get("private-key-path").strip()
    key, key_path = inputs.label("private-key"), inputs.label("private-key-path")
    if contents.strip() and path:
        raise InputError(
            f"Both {key} and {key_path} are set: keep one, either the key's contents in {key} or "
            f"the path of the .p8 file in {key_path}."
        )
    if path:
        return KeySource(key_path, path=path)
    if contents.strip():
        return KeySource(key, contents=contents)
    github = (
        "If you did set it, the secret is empty in this run: check that it exists in this "
        "repository or environment and is spelled the same, and note that GitHub passes empty "
        "secrets to pull requests from forks.\n\n"
        "with:\n  private-key: ${{ secrets.ASC_PRIVATE_KEY }}"
    )
    elsewhere = "If you did set it, the variable is empty in this step: check that the CI secret exists and is passed to this step."
    raise KeyMissingError(
        f"No private key was given: set {key} to the contents of your AuthKey_<KEYID>.p8 file "
        f"(from a secret), or {key_path} to its path.",
        details=github if inputs.on_github else elsewhere,
    )


def _key_type(inputs: InputReader) -> str:
    raw = inputs.get("key-type").strip().lower() or "team"
    if raw not in ("team", "individual"):
        raise InputError(
            f"{inputs.label('key-type')} must be team or individual, not {_shown(raw)}: use team "
            "for keys from the Integrations > Team Keys tab, individual for a user's own key.",
        )
    return raw


def _key_id(inputs: InputReader) -> str:
    label = inputs.label("key-id")
    raw = inputs.get("key-id").strip()
    if not raw:
        raise InputError(
            f"{label} is empty: set it to the 10-character Key ID shown next to the key in App "
            "Store Connect (also in the file name AuthKey_<KEYID>.p8).",
        )
    if _KEY_ID.match(raw) is None:
        shape = "lowercase letters" if _KEY_ID.match(raw.upper()) else f"{len(raw)} characters"
        raise InputError(
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
        forks = " (pull requests from forks get empty secrets)" if inputs.on_github else ""
        example = (
            "with:\n  issuer-id: ${{ vars.ASC_ISSUER_ID }}\n# or, for an individual key:\n  key-type: individual"
            if inputs.on_github
            else f"For an individual key: {inputs.assignment('key-type', 'individual')}"
        )
        raise InputError(
            f"{label} is empty but {inputs.label('key-type')} is team: set {label} to the Issuer "
            f"ID from App Store Connect > Users and Access > Integrations, or set "
            f"{inputs.label('key-type')} to individual for an individual key; if you did set it, "
            f"check that the secret or variable exists and reaches this step{forks}.",
            details=example,
        )
    if _UUID.match(raw) is None:
        raise InputError(
            f"{label} must be a UUID like 57246542-96fe-1a63-e053-0824d011072a: copy the Issuer "
            "ID from the top of App Store Connect > Users and Access > Integrations.",
        )
    return raw.lower()


def _expires_in(inputs: InputReader) -> int:
    label = inputs.label("expires-in")
    raw = inputs.get("expires-in").strip()
    if not raw:
        return MAX_LIFETIME_SECONDS
    # ASCII digits only: str.isdigit() accepts '²', and 5,000 digits are no lifetime either.
    if re.fullmatch(r"[0-9]{1,9}", raw) is None or not 1 <= int(raw) <= MAX_LIFETIME_SECONDS:
        raise InputError(
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
                f"{label} entry {_shown(entry)} is not of the form METHOD /path: write one per "
                "line, like GET /v1/apps?filter[platform]=IOS.",
            )
    return entries


def _api_url(inputs: InputReader) -> str:
    label = inputs.label("api-url")
    raw = inputs.get("api-url").strip() or DEFAULT_API_URL
    problem = api_url_problem(raw)
    if problem:
        raise InputError(
            f"{label} {problem}, so it is refused (it would receive the bearer token): leave it unset for {DEFAULT_API_URL}."
        )
    return raw.rstrip("/")


def api_url_problem(url: str) -> str:
    """Why ``url`` must not receive a bearer token, or '' when it may."""
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        return "contains spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return "is not a valid URL"
    del port
    if parts.scheme not in ("https", "http"):
        return f"must start with https:// (it is {_shown(url)})"
    if not parts.hostname:
        return "has no host name"
    if parts.username is not None or parts.password is not None:
        return "has a user name or password in it (they would be sent to the server and logged)"
    if parts.query or parts.fragment:
        return "must be a base URL without ?query or #fragment"
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return "uses plain http:// to a host that is not this machine (the token would cross the network unencrypted)"
    return ""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
