"""Validate what the user configured into :class:`Settings`, naming the setting on every error.

Sources differ per front end (action inputs, flags, environment variables), so validation reads
through an :class:`InputReader`, which also says how the user spells each setting: every message
names settings through it, never by a hard-coded name.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from typing import List, Optional, Protocol, Tuple
from urllib.parse import urlsplit

from .apis import APIS, APP_STORE_CONNECT, Api
from .errors import InputError, KeyMissingError
from .keys import KeySource, looks_like_key_material
from .lifetimes import (
    LONG_LIFETIME_SECONDS,
    Refusal,
    describe_lifetime,
    lifetime_refusal,
    long_lived_names,
    long_lived_summary,
    resource_of,
)
from .minting import MAX_LIFETIME_SECONDS

DEFAULT_NOTARY_URL = "https://appstoreconnect.apple.com/notary/v2"
DEFAULT_CHECKS = "apps"
# Apple: a bundle ID holds only A-Z, a-z, 0-9, hyphens and periods, in reverse-DNS style. A
# wildcard (com.example.*) exists only when registering an App ID; an app record always has an
# explicit bundle ID, so `app:` refuses one.
_BUNDLE_ID = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_BUNDLE_ID_MAX = 255
DEFAULT_API_URL = APP_STORE_CONNECT.url
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
class Check:
    """One `checks` entry: a name from :data:`checks.CHECKS`, and the bundle ID for ``app:``."""

    name: str
    bundle_id: str = ""

    @property
    def entry(self) -> str:
        """As the user writes it in `checks`."""
        return f"app:{self.bundle_id}" if self.name == "app" else self.name


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
    checks: Tuple[Check, ...] = (Check("apps"),)
    notary_url: str = DEFAULT_NOTARY_URL
    api: Api = APP_STORE_CONNECT


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
    api = _api(inputs)
    scope = _scope(inputs)
    verify = read_bool(inputs, "verify", default=True)
    return Settings(
        key_id=key_id,
        issuer_id=issuer_id,
        key_type=key_type,
        expires_in=_expires_in(inputs, scope, api),
        scope=scope,
        key=key,
        verify=verify,
        api_url=_api_url(inputs, api),
        write_key_files=write_key_files,
        export_env=export_env,
        export_token=read_bool(inputs, "export-token", default=False),
        checks=read_checks(inputs, key_type, api, verify=verify),
        notary_url=_notary_url(inputs),
        api=api,
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


_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}


def parse_lifetime(raw: str) -> Optional[int]:
    """Seconds from ``1200``, ``90s``, ``20m``, ``2h`` or ``180d``; None when it is not of that form."""
    # ASCII digits only (str.isdigit() accepts '²'), at most 9 of them: no huge numbers to multiply.
    match = re.fullmatch(r"([0-9]{1,9})([smhd]?)", raw)
    return None if match is None else int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _expires_in(inputs: InputReader, scope: Tuple[str, ...], api: Api) -> int:
    label = inputs.label("expires-in")
    raw = inputs.get("expires-in").strip()
    if not raw:
        return MAX_LIFETIME_SECONDS
    lifetime = parse_lifetime(raw)
    if lifetime is None or lifetime == 0:
        raise InputError(
            f"{label} must be a lifetime in seconds (1 to 1200) or a whole number with a unit s, m, "
            f"h or d (like 90s, 20m or 180d), not {_shown(raw)}: Apple rejects most tokens that live "
            "longer than 20 minutes, so leave it unset for 20 minutes.",
        )
    refusal = lifetime_refusal(lifetime, scope, api)
    if refusal is not None:
        raise _lifetime_error(inputs, lifetime, refusal)
    return lifetime


def _lifetime_error(inputs: InputReader, lifetime: int, refusal: Refusal) -> InputError:
    """One error per rule, naming the scope entry that breaks it (Apple's rule is in lifetimes.py)."""
    label, scope = inputs.label("expires-in"), inputs.label("scope")
    shorten = f"or set {label} to 1200 (20 minutes) or less"
    asked = f"{label} is {describe_lifetime(lifetime)}"
    if refusal.rule == "range":
        return InputError(
            f"{asked}, longer than the six months Apple accepts for any token: set it to 180d "
            f"({LONG_LIFETIME_SECONDS} seconds) or less."
        )
    if refusal.rule == "api":
        return InputError(
            f"{asked}, but the Enterprise Program API ({inputs.assignment('api', 'enterprise')}) "
            f"accepts no token that lives longer than 20 minutes: set {label} to 1 to 1200 seconds."
        )
    longer = f"{asked}, longer than 20 minutes (1 to 1200 seconds), which Apple accepts only"
    if refusal.rule == "no-scope":
        return InputError(
            f"{longer} for a token with a {scope} of GET requests on resources that allow "
            f"long-lived tokens: set {scope} (like GET /v1/ciProducts), {shorten}.",
            details=_LONG_LIVED_DETAILS,
        )
    entry = _shown(refusal.entry)
    if refusal.rule == "not-get":
        return InputError(
            f"{longer} when every {scope} entry is a GET, and {entry} is not: remove that entry "
            f"from {scope}, {shorten}.",
            details=_LONG_LIVED_DETAILS,
        )
    resource = _shown(resource_of(refusal.entry.partition(" ")[2].strip()))
    return InputError(
        f"{longer} for resources that allow long-lived tokens ({long_lived_names()}), and {scope} "
        f"entry {entry} reads {resource}, which does not: remove that entry from {scope}, {shorten}.",
        details=_LONG_LIVED_DETAILS,
    )


_LONG_LIVED_DETAILS = (
    "Apple accepts tokens of up to six months only with a scope of GET requests on these resources "
    '(Apple, "Generating Tokens for API Requests" > "Determine the Appropriate Token Lifetime"):\n'
    + long_lived_summary()
)


def _api(inputs: InputReader) -> Api:
    raw = inputs.get("api").strip().lower()
    if not raw:
        return APP_STORE_CONNECT
    if raw not in APIS:
        raise InputError(
            f"{inputs.label('api')} must be app-store-connect or enterprise, not {_shown(raw)}: use "
            "enterprise for a key created in an Apple Developer Enterprise Program account, or "
            "leave it unset for App Store Connect.",
        )
    return APIS[raw]


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


def _api_url(inputs: InputReader, api: Api = APP_STORE_CONNECT) -> str:
    label = inputs.label("api-url")
    raw = inputs.get("api-url").strip() or api.url
    problem = api_url_problem(raw)
    if problem:
        raise InputError(
            f"{label} {problem}, so it is refused (it would receive the bearer token): leave it unset for {api.url}."
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
    if "\\" in url or not _valid_host(parts.hostname):
        return "does not have a valid host name"
    if parts.username is not None or parts.password is not None:
        return "has a user name or password in it (they would be sent to the server and logged)"
    if parts.query or parts.fragment:
        return "must be a base URL without ?query or #fragment"
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return "uses plain http:// to a host that is not this machine (the token would cross the network unencrypted)"
    return ""


def _valid_host(host: str) -> bool:
    """An IP address, or labels of 1 to 63 letters, digits, hyphens or underscores (after IDNA)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")  # refuses empty and over-long labels
    except UnicodeError:
        return False
    labels = ascii_host.rstrip(".").split(".")
    return all(re.fullmatch(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?", label) for label in labels)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_checks(
    inputs: InputReader, key_type: str, api: Api = APP_STORE_CONNECT, *, verify: bool = True
) -> Tuple[Check, ...]:
    """The `checks` entries in order, each known, duplicates dropped; every refusal before any request."""
    from .checks import CHECKS  # checks.py imports this module; the table stays there, in one place

    label = inputs.label("checks")
    raw = inputs.get("checks")
    lines = [line.strip() for line in raw.splitlines() if line.strip()] or [DEFAULT_CHECKS]
    known = ", ".join("app:<bundle-id>" if name == "app" else name for name in CHECKS)
    found: List[Check] = []
    for line in lines:
        name, colon, rest = line.partition(":")
        name = name.strip().lower()
        if name not in CHECKS or (colon and name != "app"):
            close = difflib.get_close_matches(name, [n for n in CHECKS if n != "app"], n=1)
            hint = f" (did you mean {close[0]}?)" if close and close[0] != name else ""
            raise InputError(
                f"{label} entry {_shown(line)} is not a check{hint}: write one per line, from {known}.",
            )
        check = Check(name, _bundle_id(inputs, line, rest.strip()) if name == "app" else "")
        refused = CHECKS[name].individual_keys_cannot_use
        if refused and key_type == "individual":
            raise InputError(
                f"{label} entry {check.entry} needs a team key, but {inputs.label('key-type')} is "
                f"individual: Apple does not let individual keys use {refused}; "
                "use a team key (App Store Connect > Users and Access > Integrations > Team Keys).",
            )
        if verify and api is not APP_STORE_CONNECT and name != "apps":  # verify: false sends none
            raise InputError(
                f"{label} entry {check.entry} reads the App Store Connect API, but "
                f"{inputs.assignment('api', api.name)} selects the {api.title}: there only the apps "
                f"check runs (as GET {api.verify_path.split('?')[0]}); remove {check.entry}.",
            )
        if check not in found:
            found.append(check)
    apps = [check.entry for check in found if check.name == "app"]
    if len(apps) > 1:
        raise InputError(
            f"{label} has more than one app: entry ({', '.join(apps)}): keep one, since the outputs "
            "app-id and app-name hold a single app.",
        )
    return tuple(found)


def _bundle_id(inputs: InputReader, line: str, bundle_id: str) -> str:
    label = inputs.label("checks")
    if not bundle_id:
        raise InputError(
            f"{label} entry {_shown(line)} has no bundle ID: write app:<bundle-id>, like "
            "app:com.example.app (App Store Connect > your app > App Information > Bundle ID).",
        )
    if "*" in bundle_id:
        raise InputError(
            f"{label} entry {_shown(line)} has a wildcard: wildcards exist only for registering App IDs, "
            "and an app always has an explicit bundle ID; write it in full, like app:com.example.app.",
        )
    if len(bundle_id) > _BUNDLE_ID_MAX or _BUNDLE_ID.match(bundle_id) is None:
        raise InputError(
            f"{label} entry {_shown(line)} is not a bundle ID: Apple allows only letters, digits, "
            "hyphens and periods, in reverse-DNS style like app:com.example.app.",
        )
    return bundle_id


def _notary_url(inputs: InputReader) -> str:
    label = inputs.label("notary-url")
    raw = inputs.get("notary-url").strip() or DEFAULT_NOTARY_URL
    problem = api_url_problem(raw)
    if problem:
        raise InputError(
            f"{label} {problem}, so it is refused (it would receive the bearer token): leave it unset for {DEFAULT_NOTARY_URL}."
        )
    return raw.rstrip("/")
