"""Where settings come from, and how they are named back to the user: the action's ``INPUT_*``
variables (:class:`GitHubInputs`), or flags and the environment names users already have
(:class:`CliInputs`: the asc CLI's, fastlane's, codemagic's, Woodpecker/Drone plugin settings).
"""

from __future__ import annotations

from typing import Callable, Collection, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from .redact import shown

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
}
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

    def disagreements(self) -> List[str]:
        """One log line per setting set under several names to different values: which one is used."""
        return list(self._disagreements)

    def get(self, name: str) -> str:
        return self._values.get(name, "")

    def label(self, name: str) -> str:
        if name in self._labels:
            return self._labels[name]
        variable = _USUAL_VARIABLES.get(name, name)
        return f"{_FLAGS[name]} (or {variable})" if name in _FLAGS else variable

    def assignment(self, name: str, value: str) -> str:
        used = self._labels.get(name, "")
        if used and not used.startswith("--"):
            return f"{used}={value}"
        # A setting not given yet is offered the way this user gives settings: flags, or variables.
        by_environment = bool(self._labels) and not any(label.startswith("--") for label in self._labels.values())
        if name == "verify" and not by_environment:
            return "--verify" if value == "true" else "--no-verify"
        if name in _FLAGS and not by_environment:
            return f"{_FLAGS[name]} {value}"
        return f"{_USUAL_VARIABLES.get(name, name)}={value}"

    def sources(self) -> List[str]:
        return [f"{name} from {label}" for name, label in sorted(self._labels.items())]


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
