"""Validate what the user configured, naming the setting on every error as the user spells it.

Front ends differ (action inputs, flags, environment variables), so validation reads through an
:class:`InputReader`, whose labels name the settings in every message: never a hard-coded name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Protocol, Sequence, Tuple

from . import messages as text
from .apis import APIS, APP_STORE_CONNECT, Api
from .errors import InputError, KeyMissingError, NotAKeyError
from .keys import KeySource
from .lifetimes import (
    LONG_LIFETIME_SECONDS,
    Refusal,
    describe_lifetime,
    lifetime_refusal,
    long_lived_names,
    long_lived_summary,
    resource_of,
)
from .minting import MAX_LIFETIME_SECONDS, TokenRequest
from .redact import may_be_secret_path, quote_foreign, shown
from .urls import base_url_problem

_KEY_ID = re.compile(r"^[A-Z0-9]{10}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TRUE = {"true", "True", "TRUE", "yes", "1", "on"}
_FALSE = {"false", "False", "FALSE", "no", "0", "off"}
_KEY_TYPE_ADVICE = "use team for keys from the Integrations > Team Keys tab, individual for a user's own key."
_API_ADVICE = (
    "use enterprise for a key created in an Apple Developer Enterprise Program account, or leave it unset for "
    "App Store Connect."
)


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
class Credentials:
    """What every command needs to sign: the key, its IDs, the token's lifetime and scope, the API."""

    key_id: str
    issuer_id: Optional[str]
    key_type: str
    expires_in: int
    scope: Tuple[str, ...]
    key: KeySource
    api_url: str = APP_STORE_CONNECT.url  # checked where a request is about to be sent (urls.py)
    api: Api = APP_STORE_CONNECT

    def token_request(self) -> TokenRequest:
        return TokenRequest(self.key_id, self.issuer_id, self.expires_in, self.scope, self.api)


def read_credentials(inputs: InputReader) -> Credentials:
    """Every check that needs no key material and no network, in the order a user fixes them."""
    key = _key_source(inputs)
    key_type = _choice(inputs, "key-type", ("team", "individual"), _KEY_TYPE_ADVICE)
    key_id = _key_id(inputs)
    issuer_id = _issuer_id(inputs, key_type)
    api = APIS[_choice(inputs, "api", tuple(APIS), _API_ADVICE)]
    scope = _scope(inputs)
    return Credentials(
        key_id=key_id,
        issuer_id=issuer_id,
        key_type=key_type,
        expires_in=_expires_in(inputs, scope, api),
        scope=scope,
        key=key,
        api_url=read_base_url(inputs, "api-url", api.url),
        api=api,
    )


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


def require_base_url(inputs: Naming, setting: str, url: str, default: str) -> None:
    """Refuse a base URL that must not receive the token, naming its setting (before any request)."""
    problem = base_url_problem(url)
    if problem:
        raise InputError(
            f"{inputs.label(setting)} {problem}, so it is refused (it would receive the bearer token): "
            f"leave it unset for {default}."
        )


def disagreement(
    setting: str, used: Tuple[str, str], ignored: Sequence[Tuple[str, str]], *, label: str = "", why: str = ""
) -> str:
    """The log line for one setting given under two names, differently: which (name, value) counts.
    Values are shown where they are not secret (IDs, paths), the key never."""

    def named(source: str, value: str) -> str:
        if setting == "private-key":
            return source
        value = value.strip()
        return f"{source} ({shown(value, path=setting.endswith('-path')) if value else 'empty'})"

    others = " and ".join(named(*name) for name in ignored)
    verb = "is" if len(ignored) == 1 else "are"
    because = f" ({why})" if why else ""
    return f"{label or setting}: {named(*used)} is used; {others} {verb} also set, to a different value, and ignored{because}."


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
        return MAX_LIFETIME_SECONDS
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
    fields = {
        "asked": f"{label} is {describe_lifetime(lifetime)}",
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
    label = inputs.label("scope")
    entries = tuple(" ".join(line.split()) for line in inputs.get("scope").splitlines() if line.strip())
    for entry in entries:
        method, _, path = entry.partition(" ")
        if method.upper() != method or not method.isalpha() or not path.startswith("/"):
            raise InputError(
                f"{label} entry {shown(entry)} is not of the form METHOD /path: write one per "
                "line, like GET /v1/apps?filter[platform]=IOS.",
            )
    return entries
