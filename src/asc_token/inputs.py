"""Where settings come from, and how they are named back to the user: the action's ``INPUT_*``
variables (:class:`GitHubInputs`), or flags and the environment names users already have
(:class:`CliInputs`: the asc CLI's, fastlane's, codemagic's, Woodpecker/Drone plugin settings).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from typing import Any, Callable, Collection, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from .errors import InputError
from .redact import may_be_secret_path, shown

# The composite action maps every input to INPUT_<NAME_WITH_UNDERSCORES> and sets this in its
# step's env: (which beats the job's), so a job-level INPUT_KEY_ID cannot pass for it.
COMPOSITE_MARKER = ("ASC_ACTION_FORM", "composite")

# One key source for the whole chain: a path and contents from different tools are not a conflict.
_KEY_ORDER = (
    ("private-key-path", "PLUGIN_PRIVATE_KEY_PATH"),
    ("private-key", "PLUGIN_PRIVATE_KEY"),
    ("private-key-path", "ASC_PRIVATE_KEY_PATH"),
    ("private-key", "ASC_PRIVATE_KEY"),
    ("private-key", "ASC_PRIVATE_KEY_B64"),
    ("private-key-path", "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH"),
    ("private-key", "APP_STORE_CONNECT_API_KEY_KEY"),
    ("private-key", "APP_STORE_CONNECT_PRIVATE_KEY"),
)
# First match wins. Plugin settings come first: they are set for this step only.
ENV_SOURCES: Dict[str, Tuple[str, ...]] = {
    "private-key-path": tuple(variable for kind, variable in _KEY_ORDER if kind == "private-key-path"),
    "private-key": tuple(variable for kind, variable in _KEY_ORDER if kind == "private-key"),
    "key-id": ("PLUGIN_KEY_ID", "ASC_KEY_ID", "APP_STORE_CONNECT_API_KEY_KEY_ID", "APP_STORE_CONNECT_KEY_IDENTIFIER"),
    "issuer-id": (
        "PLUGIN_ISSUER_ID",
        "ASC_ISSUER_ID",
        "APP_STORE_CONNECT_API_KEY_ISSUER_ID",
        "APP_STORE_CONNECT_ISSUER_ID",
    ),
    "key-type": ("PLUGIN_KEY_TYPE", "ASC_KEY_TYPE"),
    "expires-in": ("PLUGIN_EXPIRES_IN", "ASC_EXPIRES_IN"),
    "scope": ("PLUGIN_SCOPE", "ASC_SCOPE"),
    "verify": ("PLUGIN_VERIFY", "ASC_VERIFY"),
    "api-url": ("PLUGIN_API_URL", "ASC_API_URL"),
    "checks": ("PLUGIN_CHECKS", "ASC_CHECKS"),
    "notary-url": ("PLUGIN_NOTARY_URL", "ASC_NOTARY_URL"),
    "api": ("PLUGIN_API", "ASC_API"),
    # fastlane's API key JSON (what `write-key-files` writes and `export-env` exports): read last.
    "api-key-json-path": ("PLUGIN_API_KEY_JSON_PATH", "APP_STORE_CONNECT_API_KEY_PATH"),
}
# The path variable of the same family as each key-contents variable, for a fix in the user's own form.
_PATH_BESIDE = {
    "PLUGIN_PRIVATE_KEY": "PLUGIN_PRIVATE_KEY_PATH",
    "ASC_PRIVATE_KEY": "ASC_PRIVATE_KEY_PATH",
    "ASC_PRIVATE_KEY_B64": "ASC_PRIVATE_KEY_PATH",
    "APP_STORE_CONNECT_API_KEY_KEY": "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH",
    "APP_STORE_CONNECT_PRIVATE_KEY": "ASC_PRIVATE_KEY_PATH",
}
_CONTENTS_BESIDE = {
    "PLUGIN_PRIVATE_KEY_PATH": "PLUGIN_PRIVATE_KEY",
    "ASC_PRIVATE_KEY_PATH": "ASC_PRIVATE_KEY",
    "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH": "APP_STORE_CONNECT_API_KEY_KEY",
}
# A token given as it is (as `export-token: true` leaves it), for commands that can send one they cannot sign.
GIVEN_TOKEN_VARIABLE = "ASC_TOKEN"  # noqa: S105 - a variable name, not a password
# The settings fastlane's API key JSON supplies, by its field; explicit settings win.
_JSON_FIELDS = (("key_id", "key-id"), ("issuer_id", "issuer-id"), ("duration", "expires-in"), ("in_house", "api"))
_MAX_JSON_BYTES = 64 * 1024  # a key and four short fields
# Each setting's flag (`--check` is given once per check). The key's contents have none: argv is public.
_FLAGS = {name: "--check" if name == "checks" else f"--{name}" for name in ENV_SOURCES if name != "private-key"}
_ARGUMENTS = {"file": "FILE"}  # settings given as positional arguments, named as --help names them
# The ASC_ name of each setting, offered in messages: the second, as plugin settings come first.
_USUAL_VARIABLES = {name: variables[1] for name, variables in ENV_SOURCES.items()}


class CliInputs:
    """An InputReader over parsed flags and the environment, remembering which name was used."""

    on_github = False  # configured by flags and variables, never by a workflow's `with:`

    def __init__(self, flags: Mapping[str, Optional[str]], env: Mapping[str, str], reads: Collection[str] = ()) -> None:
        """``reads``: the settings this command uses (default: all); no other is used or logged."""
        wanted = set(reads or ENV_SOURCES)
        self._values: Dict[str, str] = {}
        self._labels: Dict[str, str] = {}
        self._disagreements: List[str] = []
        for name, value in flags.items():
            if value is not None and name in wanted:
                flag = (
                    "--no-verify"
                    if (name, value) == ("verify", "false")
                    else _FLAGS.get(name, _ARGUMENTS.get(name, f"--{name}"))
                )
                self._values[name], self._labels[name] = value, flag
        keys = [(name, variable) for name, variable in _KEY_ORDER if env.get(variable, "").strip()]
        if "private-key-path" not in self._values and keys:
            name, variable = keys[0]
            self._values[name], self._labels[name] = env[variable], variable
        for name, variables in ENV_SOURCES.items():
            given = [(variable, env[variable]) for variable in variables if env.get(variable, "").strip()]
            if name not in self._values and given and not name.startswith("private-key") and name in wanted:
                self._labels[name], self._values[name] = given[0]
            # Names of the setting that are set, to another value, and lose: said in one line.
            used = (self._labels.get(name, ""), self._values.get(name, ""))
            ignored = [(label, value) for label, value in given if value.strip() != used[1].strip()]
            if used[0] and ignored:
                self._disagreements.append(disagreement(name, used, ignored))
        self._given_token = env.get(GIVEN_TOKEN_VARIABLE, "").strip()
        self._json_fields: Dict[str, str] = {}  # setting -> the JSON field it came from
        if self._values.get("api-key-json-path", "").strip():
            self._read_api_key_json(wanted)
        self._notes: List[str] = []
        api_url = self._values.get("api-url", "").strip().rstrip("/")
        if api_url != without_version(api_url):
            self._notes.append(version_note(self.label("api-url"), api_url))
        mismatch = key_file_mismatch(self._values.get("key-id", ""), self._values.get("private-key-path", ""))
        if mismatch:
            self._notes.append(
                f"Warning: {self.label('private-key-path')} names {mismatch[1]}, the file of key {mismatch[0]}, "
                f"but {self.label('key-id')} is {shown(self._values['key-id'].strip())}: Apple will refuse the token "
                f"(401) unless the file was renamed; set {self.assignment('key-id', mismatch[0])} if it is that key."
            )

    def _read_api_key_json(self, wanted: Collection[str]) -> None:
        """fastlane's API key JSON: each field fills the setting no other source gave (others win, and a
        different value is named as for any two sources); a file that cannot supply a key is refused now."""
        label, path = self._labels["api-key-json-path"], self._values["api-key-json-path"].strip()
        document = _load_api_key_json(label, path)
        where = f"in the file {label} names"
        for field_name, name in _JSON_FIELDS:
            if field_name not in document or name not in wanted:
                continue
            value = _json_setting(name, document[field_name])
            self._offer(name, value, f"{field_name} {where}", field_name)
        if "issuer_id" not in document and "key-type" in wanted:  # fastlane then signs as an individual key
            self._offer("key-type", "individual", f"the missing issuer_id {where}")
        key = document.get("key")
        if not isinstance(key, str) or not key.strip():
            if not (self._values.get("private-key", "").strip() or self._values.get("private-key-path", "").strip()):
                raise InputError(
                    f"The file {label} names ({shown(path, path=True)}) has no key: fastlane's API key JSON holds "
                    'the .p8 file\'s contents in "key"; write it with write-key-files, or set '
                    f"{self.label('private-key-path')} to the .p8 file."
                )
            return
        if document.get("is_key_content_base64") is True:
            try:
                key = base64.b64decode("".join(key.split()), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise InputError(
                    f'The file {label} names says is_key_content_base64 is true, but its "key" is not base64 '
                    "of a .p8 file: set is_key_content_base64 to false for a key pasted as it is."
                ) from None
        if "private-key-path" in self._values:
            return  # a path and contents from different tools are not a conflict (_KEY_ORDER)
        self._offer("private-key", key, f"key {where}", "key")

    def _offer(self, name: str, value: str, label: str, field_name: str = "") -> None:
        """``value`` for ``name`` from the JSON: used when nothing else set it, else named if it differs."""
        if name not in self._values or not self._values[name].strip():
            self._values[name], self._labels[name] = value, label
            if field_name:
                self._json_fields[name] = field_name
        elif value.strip() != self._values[name].strip():
            self._disagreements.append(disagreement(name, (self._labels[name], self._values[name]), [(label, value)]))

    def disagreements(self) -> List[str]:
        """One log line per setting set under several names to different values: which one is used; then
        the notes (api-url's /v1, a key file whose name says it holds another key). Commands log these lines
        before reading the settings."""
        return [*self._disagreements, *self._notes]

    def get(self, name: str) -> str:
        if name == "token":  # ASC_TOKEN is no setting of its own: only asked for when no key is given
            return self._given_token
        return self._values.get(name, "")

    def label(self, name: str) -> str:
        if name in self._labels:
            return self._labels[name]
        # The key's contents beside the path variable in use: PLUGIN_PRIVATE_KEY_PATH -> PLUGIN_PRIVATE_KEY.
        if name == "private-key" and self._labels.get("private-key-path", "") in _CONTENTS_BESIDE:
            return _CONTENTS_BESIDE[self._labels["private-key-path"]]
        variable = _USUAL_VARIABLES.get(name, name)
        return f"{_FLAGS[name]} (or {variable})" if name in _FLAGS else variable

    def assignment(self, name: str, value: str) -> str:
        used = self._labels.get(name, "")
        if name in self._json_fields:
            return f'"{self._json_fields[name]}": {json.dumps(value)} in the file {self._labels["api-key-json-path"]} names'
        if used and not used.startswith("--"):
            return f"{used}={value}"
        # The key's path beside the variable that held the key: ASC_PRIVATE_KEY holding a path -> ASC_PRIVATE_KEY_PATH.
        if name == "private-key-path" and self._labels.get("private-key", "") in _PATH_BESIDE:
            return f"{_PATH_BESIDE[self._labels['private-key']]}={value}"
        # A setting not given yet is offered the way this user gives settings: flags, or variables.
        by_environment = bool(self._labels) and not any(label.startswith("--") for label in self._labels.values())
        if name == "verify" and not by_environment:
            return "--verify" if value == "true" else "--no-verify"
        if name in _FLAGS and not by_environment:
            return f"{_FLAGS[name]} {value}"
        return f"{_USUAL_VARIABLES.get(name, name)}={value}"

    def sources(self) -> List[str]:
        return [f"{name} from {label}" for name, label in sorted(self._labels.items())]


def _load_api_key_json(label: str, path: str) -> Mapping[str, Any]:
    if may_be_secret_path(path):
        raise InputError(f"{label} holds what looks like key material (not shown), not the path of fastlane's JSON.")
    try:
        with open(os.path.expanduser(path), "rb") as stream:
            raw = stream.read(_MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise InputError(
            f"{label} names {shown(path, path=True)}, which cannot be read ({exc.strerror or type(exc).__name__}): "
            "give the path of fastlane's API key JSON (write-key-files writes one), or unset it."
        ) from None
    try:
        document = json.loads(raw.decode("utf-8")) if len(raw) <= _MAX_JSON_BYTES else None
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict):
        raise InputError(
            f"{label} names {shown(path, path=True)}, which is not fastlane's API key JSON (an object with "
            "key_id, issuer_id and key): give that file's path, or unset it."
        )
    return document


def _json_setting(name: str, value: object) -> str:
    """A JSON field as the setting's text: in_house true is the Enterprise API, a duration its seconds."""
    if name == "api":
        return "enterprise" if value is True else "app-store-connect"
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    return str(value)


def without_version(url: str) -> str:
    """A base URL without the /v1 that Apple's documentation writes in it (paths carry their own)."""
    trimmed = url.rstrip("/")
    return trimmed[: -len("/v1")] if trimmed.lower().endswith("/v1") else url


def version_note(label: str, url: str) -> str:
    return (
        f"{label} ends in /v1, as Apple's documentation writes the base URL; every path carries its own "
        f"version, so {shown(without_version(url), path=True)} is used."
    )


def key_file_mismatch(key_id: str, path: str) -> Optional[Tuple[str, str]]:
    """(the ID in the name, the file name) when ``path`` is named AuthKey_<ID>.p8 for another key than ``key_id``."""
    name = os.path.basename(path.strip().replace("\\", "/"))
    match = re.fullmatch(r"AuthKey_([A-Z0-9]{10})\.p8", name)
    if match is None or not key_id.strip() or match.group(1) == key_id.strip():
        return None
    return match.group(1), name


class GitHubInputs:
    """Reads inputs the way this action receives them, and names them as a workflow does.

    The composite action passes ``INPUT_KEY_ID`` (underscores) and says so (COMPOSITE_MARKER);
    a container action gets the runner's own ``INPUT_KEY-ID`` (hyphens). Only one form is read,
    so the other, from a job's ``env:``, never overrides the step's ``with:``; ``log`` hears
    once per setting when the other form is set to something else.
    """

    on_github = True

    def __init__(self, env: Mapping[str, str], log: Optional[Callable[[str], None]] = None) -> None:
        self._env = env
        self._composite = env.get(COMPOSITE_MARKER[0]) == COMPOSITE_MARKER[1]
        self._log: Callable[[str], None] = log or (lambda line: None)
        self._told: Set[str] = set()

    def get(self, name: str) -> str:
        value = self._read(name)
        if name == "api-url" and value.strip().rstrip("/") != without_version(value.strip()) and name not in self._told:
            self._told.add(name)
            self._log(version_note(self.label(name), value.strip()))
        return value

    def _read(self, name: str) -> str:
        hyphens = f"INPUT_{name.replace(' ', '_').upper()}"
        underscores = hyphens.replace("-", "_")
        used, other = (underscores, hyphens) if self._composite else (hyphens, underscores)
        value, ignored = self._env.get(used, ""), self._env.get(other, "")
        if other != used and ignored.strip() and ignored.strip() != value.strip() and name not in self._told:
            self._told.add(name)
            why = f"this action reads the step's `with:` as {used}; {other} comes from an `env:`"
            self._log(disagreement(name, (used, value), [(other, ignored)], label=self.label(name), why=why))
        return value

    def label(self, name: str) -> str:
        return f"`{name}`"

    def assignment(self, name: str, value: str) -> str:
        return f"`{name}: {value}`"


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
