"""Settings, read in one place: ``read_settings(inputs) -> Settings``, each setting checked and every
error naming it as the user spells it.

Front ends differ (action inputs, flags, environment variables), so validation reads through an
:class:`records.InputReader`, whose labels name the settings in every message: never a hard-coded name.
"""

from __future__ import annotations

import difflib
import re
from typing import List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from . import messages as text
from .apis import APIS, APP_STORE_CONNECT, Api
from .checks import BUNDLE_ID, BUNDLE_ID_MAX, CHECKS, DEFAULT_CHECKS, DEFAULT_NOTARY_URL, Check, Preflight
from .errors import InputError, KeyMissingError, NotAKeyError
from .inputs import without_version
from .lifetimes import (
    LONG_LIFETIME_SECONDS,
    SHORT_LIFETIME_SECONDS,
    Refusal,
    describe_duration,
    lifetime_refusal,
    long_lived_names,
    long_lived_summary,
    resource_of,
)
from .records import Credentials, Delivery, InputReader, KeySource, Naming, Settings
from .redact import may_be_secret_path, quote_foreign, shown
from .urls import base_url_problem, is_loopback

_KEY_ID = re.compile(r"^[A-Z0-9]{10}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TRUE = {"true", "True", "TRUE", "yes", "1", "on"}
_FALSE = {"false", "False", "FALSE", "no", "0", "off"}
_KEY_TYPE_ADVICE = "use team for keys from the Integrations > Team Keys tab, individual for a user's own key."
_API_ADVICE = (
    "use enterprise for a key created in an Apple Developer Enterprise Program account, or leave it unset for "
    "App Store Connect."
)


def read_settings(inputs: InputReader, *, delivery: bool = False) -> Settings:
    """The token run's settings, in the order a user fixes them; ``delivery``: the action's own too."""
    credentials = read_credentials(inputs)
    # `verify`, `checks` and `notary-url`: what the token command proves before the build.
    verify = read_bool(inputs, "verify", default=True)
    checks = read_checks(inputs, credentials.key_type, credentials.api, verify=verify)
    preflight = Preflight(verify, checks, read_base_url(inputs, "notary-url", DEFAULT_NOTARY_URL))
    return Settings(credentials, preflight, read_delivery(inputs) if delivery else Delivery())


def read_credentials(inputs: InputReader) -> Credentials:
    """Every check that needs no key material and no network, in the order a user fixes them."""
    key = _key_source(inputs)
    key_type = _choice(inputs, "key-type", ("team", "individual"), _KEY_TYPE_ADVICE)
    key_id = _key_id(inputs)
    issuer_id = _issuer_id(inputs, key_type)
    api = APIS[_choice(inputs, "api", tuple(APIS), _API_ADVICE)]
    scope = _scope(inputs)
    expires_in, api_url = _expires_in(inputs, scope, api), read_api_url(inputs, api)
    return Credentials(key_id, issuer_id, key_type, expires_in, scope, key, api_url, api)


def read_base_url(inputs: InputReader, setting: str, default: str) -> str:
    """A base URL setting as given; its full check waits for the request (urls.py), but one that may
    be a key is refused now: it would be exported (ASC_API_URL) even by a run that sends nothing."""
    raw = inputs.get(setting).strip()
    if raw and may_be_secret_path(raw):
        # Refused as maybe secret, so never shown: shown() alone would quote a short piece of a key.
        raise InputError(
            f"{inputs.label(setting)} is not a URL: it holds what looks like key material (not shown); "
            f"leave it unset for {default}."
        )
    return (raw or default).rstrip("/")


def read_api_url(inputs: InputReader, api: Api) -> str:
    """api-url (or the API's own) without the /v1 Apple's documentation writes in it (paths carry it; the front
    ends say so once). Plain http to another machine is refused even where nothing is sent (``verify: false``):
    the URL is exported to later steps, which would send the bearer token in the clear."""
    url = without_version(read_base_url(inputs, "api-url", api.url))
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return url  # malformed: refused with its reason where a request is sent
    if parts.scheme.lower() == "http" and host and not is_loopback(host):
        require_base_url(inputs, "api-url", url, api.url)
    return url


def require_base_url(inputs: Naming, setting: str, url: str, default: str) -> None:
    """Refuse a base URL that must not receive the token, naming its setting (before any request)."""
    problem = base_url_problem(url)
    if problem:
        raise InputError(
            f"{inputs.label(setting)} {problem}, so it is refused (it would receive the bearer token): "
            f"leave it unset for {default}."
        )


def read_bool(inputs: InputReader, name: str, *, default: bool) -> bool:
    raw = inputs.get(name).strip()
    if raw and raw not in _TRUE | _FALSE:
        raise InputError(f"{inputs.label(name)} must be true or false, not {shown(raw)}.")
    return raw in _TRUE if raw else default


def _key_source(inputs: InputReader) -> KeySource:
    contents, path = inputs.get("private-key"), inputs.get("private-key-path").strip()
    key, key_path = inputs.label("private-key"), inputs.label("private-key-path")
    if contents.strip() and path:
        raise InputError(
            f"Both {key} and {key_path} are set: keep one, either the key's contents in {key} or "
            f"the path of the .p8 file in {key_path}."
        )
    if path:
        return KeySource(key_path, path=path, contents_label=key)
    pasted = _unquoted(contents)
    if _looks_like_path(pasted):
        raise NotAKeyError(
            f"{key} holds a file path, not the key's contents: set "
            f"{inputs.assignment('private-key-path', quote_foreign(pasted))} instead, and leave {key} unset."
        )
    if contents.strip():
        return KeySource(key, contents=contents)
    if inputs.get("token").strip():
        raise KeyMissingError(
            f"No private key was given, only a token in ASC_TOKEN: this command signs tokens of its own, and "
            f"a given token cannot be refreshed or re-signed; set {key} to the contents of your "
            f"AuthKey_<KEYID>.p8 file (from a secret), or {key_path} to its path.",
        )
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


def read_given_token(inputs: InputReader) -> Optional[Credentials]:
    """ASC_TOKEN alone (no key given): the credentials to send it with, the token (``key.given``) used as given
    (as ``gh`` uses GH_TOKEN); None when a key is given or no token is. Its claims (not verified: Apple does)
    supply the key ID and issuer, for the explanation of an answer."""
    raw = inputs.get("token").strip()
    if not raw or inputs.get("private-key").strip() or inputs.get("private-key-path").strip():
        return None
    from .tokens import GivenToken  # jwt only where a token is given

    given = GivenToken.read(raw)
    key_type = "team" if given.issuer_id else "individual"
    api = APIS[_choice(inputs, "api", tuple(APIS), _API_ADVICE)]
    api_url = read_api_url(inputs, api)
    lifetime = max(given.expires_at - given.issued_at, 1) if given.expires_at else SHORT_LIFETIME_SECONDS
    key, key_id = KeySource("ASC_TOKEN", given=given), given.key_id if _KEY_ID.fullmatch(given.key_id) else ""
    # The header is unverified text: a kid that is no key ID is never shown (explanations name the setting).
    return Credentials(key_id, given.issuer_id, key_type, lifetime, given.scope, key, api_url, api)


def _choice(inputs: InputReader, name: str, choices: Sequence[str], advice: str) -> str:
    """The setting lowercased, one of ``choices``; the first when unset."""
    raw = inputs.get(name).strip().lower()
    if raw and raw not in choices:
        raise InputError(f"{inputs.label(name)} must be {' or '.join(choices)}, not {shown(raw)}: {advice}")
    return raw or choices[0]


def _key_id(inputs: InputReader) -> str:
    label, raw = inputs.label("key-id"), inputs.get("key-id").strip()
    if not raw:
        raise InputError(
            f"{label} is empty: set it to the 10-character Key ID shown next to the key in App "
            "Store Connect (also in the file name AuthKey_<KEYID>.p8); if you did set it, check that "
            "the variable or secret exists and reaches this step.",
            details="with:\n  key-id: ${{ vars.ASC_KEY_ID }}" if inputs.on_github else "",
        )
    if _KEY_ID.match(raw) is None:
        bare = _unquoted(raw)
        file_name = re.fullmatch(r"(?:.*[/\\])?AuthKey_([A-Za-z0-9]{10})\.p8", bare)
        if file_name:
            fix = inputs.assignment("key-id", file_name.group(1).upper())
            raise InputError(f"{label} holds the key's file name, not its Key ID: use {fix} (the ID in the name).")
        if _KEY_ID.match(bare.upper()):
            lower = bare != bare.upper()
            shape, why = ("lowercase letters", "uppercase") if lower else ("quotes or braces", "without them")
            raise InputError(
                f"{label} must be 10 characters of A-Z and 0-9 (it has {shape}): use "
                f"{inputs.assignment('key-id', bare.upper())} ({why})."
            )
        raise InputError(
            f"{label} must be 10 characters of A-Z and 0-9 (it has {len(raw)} characters): copy the Key ID "
            "from App Store Connect, or from the file name AuthKey_<KEYID>.p8.",
        )
    return raw


def _issuer_id(inputs: InputReader, key_type: str) -> Optional[str]:
    label, raw = inputs.label("issuer-id"), inputs.get("issuer-id").strip()
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
        if _UUID.match(_unquoted(raw)):
            fix = inputs.assignment("issuer-id", _unquoted(raw).lower())
            raise InputError(f"{label} must be a bare UUID: use {fix} (without the quotes or braces).")
        raise InputError(
            f"{label} must be a UUID like 57246542-96fe-1a63-e053-0824d011072a: copy the Issuer "
            "ID from the top of App Store Connect > Users and Access > Integrations.",
        )
    return raw.lower()


def _unquoted(value: str) -> str:
    """``value`` without the quotes or braces a copy from JSON, YAML or a .env file leaves around it."""
    text = value.strip()
    while len(text) >= 2 and text[0] + text[-1] in ('""', "''", "{}", "``"):
        text = text[1:-1].strip()
    return text


def _looks_like_path(text: str) -> bool:
    """A file's path or name where the key's contents belong (never key material: that is not a path)."""
    if not text or "\n" in text or may_be_secret_path(text):
        return False
    return text.lower().endswith(".p8") or re.match(r"\.{0,2}/|~/|[A-Za-z]:\\", text) is not None


_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}


def parse_lifetime(raw: str) -> Optional[int]:
    """Seconds from ``1200``, ``90s``, ``20m``, ``2h`` or ``180d``; None when it is not of that form."""
    # ASCII digits only (str.isdigit() accepts '²'), at most 9 of them: no huge numbers to multiply.
    match = re.fullmatch(r"([0-9]{1,9})([smhd]?)", raw)
    return None if match is None else int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _expires_in(inputs: InputReader, scope: Tuple[str, ...], api: Api) -> int:
    label, raw = inputs.label("expires-in"), inputs.get("expires-in").strip()
    if not raw:
        return SHORT_LIFETIME_SECONDS
    lifetime = parse_lifetime(raw)
    if lifetime is None or lifetime == 0:
        raise InputError(
            f"{label} must be a lifetime in seconds (1 to 1200) or a whole number with a unit s, m, "
            f"h or d (like 90s, 20m or 180d), not {shown(raw)}: Apple rejects most tokens that live "
            "longer than 20 minutes, so leave it unset for 20 minutes.",
        )
    refusal = lifetime_refusal(lifetime, scope, api)
    if refusal is not None:
        raise _lifetime_error(inputs, lifetime, refusal, api)
    return lifetime


def _lifetime_error(inputs: InputReader, lifetime: int, refusal: Refusal, api: Api) -> InputError:
    """One error per rule, naming the scope entry that breaks it (Apple's rule is in lifetimes.py)."""
    label, scope = inputs.label("expires-in"), inputs.label("scope")
    exact = lifetime >= 60 and lifetime % 60 == 0  # "3600 seconds (1 h)"; "90 seconds" as it is
    fields = {
        "asked": f"{label} is {lifetime} seconds" + (f" ({describe_duration(lifetime)})" if exact else ""),
        "expires_in": label,
        "scope": scope,
        "shorten": f"or set {label} to 1200 (20 minutes) or less",
        "longest": LONG_LIFETIME_SECONDS,
        "service": api.service,
        "set_api": inputs.assignment("api", api.name),
        "names": long_lived_names(),
        "entry": shown(refusal.entry),
        "resource": shown(resource_of(refusal.entry.partition(" ")[2].strip())),
    }
    template = text.LIFETIME_REFUSALS[refusal.rule]
    details = "" if refusal.rule in ("range", "api") else text.LIFETIME_DETAILS.format(resources=long_lived_summary())
    return InputError(template.format(**fields), details=details)


def _scope(inputs: InputReader) -> Tuple[str, ...]:
    entries = tuple(" ".join(line.split()) for line in inputs.get("scope").splitlines() if line.strip())
    for entry in entries:
        method, _, path = entry.partition(" ")
        if method.upper() != method or not method.isalpha() or not path.startswith("/"):
            raise InputError(
                f"{inputs.label('scope')} entry {shown(entry)} is not of the form METHOD /path: write one per "
                "line, like GET /v1/apps?filter[platform]=IOS.",
            )
    return entries


def read_checks(inputs: InputReader, key_type: str, api: Api, *, verify: bool = True) -> Tuple[Check, ...]:
    """The `checks` entries in order, each known, duplicates dropped; every refusal before any request."""
    label = inputs.label("checks")
    lines = [line.strip() for line in inputs.get("checks").splitlines() if line.strip()] or [DEFAULT_CHECKS]
    known = ", ".join(Check(name, "<bundle-id>").entry for name in CHECKS)  # as entries are written
    found: List[Check] = []
    for line in lines:
        name, colon, rest = line.partition(":")
        name = name.strip().lower()
        if name not in CHECKS or (colon and name != "app"):
            close = difflib.get_close_matches(name, [n for n in CHECKS if n != "app"], n=1)
            hint = f" (did you mean {close[0]}?)" if close and close[0] != name else ""
            raise InputError(
                f"{label} entry {shown(line)} is not a check{hint}: write one per line, from {known}.",
            )
        check = Check(name, _bundle_id(inputs, line, rest.strip()) if name == "app" else "")
        refused = CHECKS[name].individual_keys_cannot_use
        if refused and key_type == "individual":
            raise InputError(
                f"{label} entry {check.entry} needs a team key, but {inputs.label('key-type')} is "
                f"individual: Apple does not let individual keys use {refused}; "
                "use a team key (App Store Connect > Users and Access > Integrations > Team Keys).",
            )
        if verify and api.checks and name not in api.checks:  # verify: false sends none
            raise InputError(
                f"{label} entry {check.entry} reads the {APP_STORE_CONNECT.service} API, but "
                f"{inputs.assignment('api', api.name)} selects the {api.service}: there only "
                f"{', '.join(api.checks)} runs (as GET {api.verify_path.split('?')[0]}); remove {check.entry}.",
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
            f"{label} entry {shown(line)} has no bundle ID: write app:<bundle-id>, like "
            "app:com.example.app (App Store Connect > your app > App Information > Bundle ID).",
        )
    if "*" in bundle_id:
        raise InputError(
            f"{label} entry {shown(line)} has a wildcard: wildcards exist only for registering App IDs, "
            "and an app always has an explicit bundle ID; write it in full, like app:com.example.app.",
        )
    if len(bundle_id) > BUNDLE_ID_MAX or BUNDLE_ID.match(bundle_id) is None:
        raise InputError(
            f"{label} entry {shown(line)} is not a bundle ID: Apple allows only letters, digits, "
            "hyphens and periods, in reverse-DNS style like app:com.example.app.",
        )
    return bundle_id


def read_delivery(inputs: InputReader) -> Delivery:
    write_key_files = read_bool(inputs, "write-key-files", default=False)
    export_env = read_bool(inputs, "export-env", default=False)
    if export_env and not write_key_files:
        raise InputError(
            f"{inputs.label('export-env')} is true but {inputs.label('write-key-files')} is not: "
            f"set {inputs.label('write-key-files')} to true as well, since the exported variables "
            "point at the key files it writes.",
            details=f"Set {inputs.assignment('write-key-files', 'true')} and {inputs.assignment('export-env', 'true')}.",
        )
    return Delivery(write_key_files, export_env, read_bool(inputs, "export-token", default=False))
