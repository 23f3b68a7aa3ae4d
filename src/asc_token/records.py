"""The records every layer passes around: what the user gave, what was minted, checked and written.

A leaf: it imports only :mod:`apis` when the program runs, so any module may hold these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Protocol, Sequence, Tuple

from .apis import APP_STORE_CONNECT, Api

if TYPE_CHECKING:
    from .checks import Check, Preflight
    from .errors import AscTokenError


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


class GivenBearer(Protocol):
    """A token given as it is, with no key to sign another (tokens.GivenToken)."""

    @property
    def token(self) -> str: ...

    def bearer(self, *, after_401: bool = False) -> str: ...

    def unscoped(self, lifetime: int) -> GivenBearer: ...


@dataclass(frozen=True)
class KeySource:
    """What the user gave for the key: its contents or a path, and how they named that setting."""

    label: str  # "`private-key`", "ASC_PRIVATE_KEY_PATH", "--private-key-path", ...
    contents: Optional[str] = field(default=None, repr=False)
    path: Optional[str] = None
    contents_label: str = field(default="the key setting", compare=False)  # for a key pasted as a path
    given: Optional[GivenBearer] = field(default=None, repr=False)  # no key, a token as it is (ASC_TOKEN)


@dataclass(frozen=True)
class TokenRequest:
    key_id: str
    issuer_id: Optional[str]  # None for an individual key
    lifetime: int = 20 * 60  # Apple's limit but for scoped long-lived GETs (lifetimes.py)
    scope: Sequence[str] = ()
    api: Api = APP_STORE_CONNECT


@dataclass(frozen=True)
class MintedToken:
    token: str
    issued_at: int
    expires_at: int

    @property
    def expires_at_iso(self) -> str:
        return iso8601(self.expires_at)


def iso8601(epoch_seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


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


@dataclass(frozen=True)
class Delivery:
    """What the action hands on besides the token output (the CLI in a later step: nothing)."""

    write_key_files: bool = False
    export_env: bool = False
    export_token: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything a token run reads, in the order a user fixes it (settings.read_settings)."""

    credentials: Credentials
    preflight: Preflight
    delivery: Delivery = Delivery()


@dataclass(frozen=True)
class VerificationResult:
    app_count: Optional[int]
    rate_limit_remaining: Optional[int]
    rate_limit_limit: Optional[int]
    attempts: int
    clock_skew_seconds: Optional[float] = None


@dataclass(frozen=True)
class CheckResult:
    check: Check
    passed: bool
    result: str  # for the summary: "passed", "403 FORBIDDEN_ERROR", "not run"
    meaning: str  # for the summary: what it means for the job
    facts: Optional[VerificationResult] = None
    app_id: str = ""
    app_name: str = ""
    separate_token: bool = False
    error: Optional[AscTokenError] = None


@dataclass(frozen=True)
class KeyFiles:
    directory: str
    key_path: str
    api_key_json_path: str


@dataclass(frozen=True)
class Outcome:
    minted: MintedToken
    verification: Optional[VerificationResult] = None
    key_files: Optional[KeyFiles] = None
    checks: Tuple[CheckResult, ...] = ()  # every check's result, in the order given
