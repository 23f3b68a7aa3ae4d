"""Tokens, in one place: minting (a key, the claims and a clock in; a signed ES256 JWT out; PyJWT signs),
the key opened and masked once, the bearer tokens a command's requests carry, and what a scope allows."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from .keys import PIPE_SECONDS, read_private_key, secret_forms
from .lifetimes import lifetime_refusal
from .records import KeySource, MintedToken, TokenRequest, iso8601

# Runner clocks drift; Apple rejects an `iat` in its future. Backdating moves `exp` back by the
# same amount, so `exp - iat` (what Apple limits to 1200 s) stays exactly the requested lifetime;
# never more than a quarter of it, so that even a 3-second token is valid when it is signed.
IAT_BACKDATE_SECONDS = 30
REUSE_MARGIN_SECONDS = 60  # one request, with its retries, ends well inside a minute

Clock = Callable[[], float]
Mask = Callable[[str], None]


def mint(key: ec.EllipticCurvePrivateKey, request: TokenRequest, clock: Clock) -> MintedToken:
    """Sign the token for ``request.api`` described in Apple's "Generating Tokens for API Requests"."""
    refusal = lifetime_refusal(request.lifetime, request.scope, request.api)
    if refusal is not None:  # config explains it to the user; reaching here is a caller's bug
        raise ValueError(f"Apple refuses a {request.lifetime}-second token here ({refusal.rule} {refusal.entry})")
    issued_at = int(clock()) - min(IAT_BACKDATE_SECONDS, request.lifetime // 4)
    expires_at = issued_at + request.lifetime
    subject = {"sub": "user"} if request.issuer_id is None else {"iss": request.issuer_id}
    claims: Dict[str, object] = {"aud": request.api.audience, "iat": issued_at, "exp": expires_at, **subject}
    if request.scope:
        claims["scope"] = list(request.scope)
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": request.key_id, "typ": "JWT"})
    return MintedToken(token=token, issued_at=issued_at, expires_at=expires_at)


def scope_allows(scope: Sequence[str], method: str, url: str) -> bool:
    """Whether a token with ``scope`` may make ``method url``; an empty scope allows everything.

    An entry is ``METHOD /path`` with optional query: the path must be equal and every query
    parameter the entry names must be present with the same value.
    """
    if not scope:
        return True
    target = urlsplit(url)
    target_query = set(parse_qsl(target.query, keep_blank_values=True))
    for entry in scope:
        entry_method, _, entry_url = entry.strip().partition(" ")
        allowed = urlsplit(entry_url.strip())
        method_and_path_match = entry_method.upper() == method.upper() and allowed.path == target.path
        if method_and_path_match and set(parse_qsl(allowed.query, keep_blank_values=True)) <= target_query:
            return True
    return False


def open_key(
    source: KeySource, workspace: Optional[str], mask_key: Optional[Mask], *, wait: float = PIPE_SECONDS
) -> ec.EllipticCurvePrivateKey:
    """The key the user gave (a pipe as its file waited for ``wait`` seconds at most), its every form
    registered with ``mask_key`` first.

    ``mask_key`` is None where registering would write the key to a stream a user can capture
    (the CLI's stderr, Azure's stdout): there the key is never printed, and the action step that
    made the key files masked it for the job already.
    """
    key = read_private_key(source, workspace, wait=wait)
    if mask_key is not None:
        for form in secret_forms(key, source.contents):
            mask_key(form)
    return key


def needs_new_token(current: Optional[MintedToken], now: float, lifetime: int) -> bool:
    """A token is reused while more than max(60 s, a fifth of its lifetime) of it remain: a default
    20-minute token serves 16 minutes of requests, and a short one (60 s or less) is signed
    afresh for every request, so no request ever leaves with a token about to expire."""
    return current is None or current.expires_at - now < max(REUSE_MARGIN_SECONDS, lifetime / 5)


@dataclass
class TokenSource:
    """Bearer tokens for one set of claims: each is masked before its first use.

    ``keep_first``: every request carries the first token, whatever its lifetime (the token
    command verifies the very token it outputs); otherwise the reuse rule above applies. After a
    401, a new one is always signed.
    """

    key: ec.EllipticCurvePrivateKey = field(repr=False)
    request: TokenRequest
    clock: Clock
    mask: Mask
    keep_first: bool = False
    signed: int = field(default=0, init=False)
    _current: Optional[MintedToken] = field(default=None, init=False, repr=False)

    @property
    def first(self) -> MintedToken:
        """The token handed on: signed (and masked) now if no request has needed one yet."""
        return self._current or self._sign()

    def bearer(self, *, after_401: bool = False) -> str:
        if self._current is None or after_401:
            return self._sign().token
        if not self.keep_first and needs_new_token(self._current, self.clock(), self.request.lifetime):
            return self._sign().token
        return self._current.token

    def unscoped(self, lifetime: int) -> TokenSource:
        """A separate token without scope, for a check that the scope does not cover."""
        return TokenSource(self.key, replace(self.request, scope=(), lifetime=lifetime), self.clock, self.mask)

    def _sign(self) -> MintedToken:
        minted = mint(self.key, self.request, self.clock)
        self.mask(minted.token)  # before it is sent: a server echoing it must meet the mask
        self.signed += 1
        if self._current is None or not self.keep_first:
            self._current = minted
        return minted


@dataclass
class GivenToken:
    """A bearer token given as it is (ASC_TOKEN, as ``export-token: true`` leaves it), as ``gh`` uses GH_TOKEN:
    every request carries it, a 401 included, since without the key it cannot be refreshed or re-signed.
    Its claims are read unverified (Apple verifies them), only to explain an answer and its expiry."""

    token: str = field(repr=False)
    key_id: str = ""
    issuer_id: Optional[str] = None
    issued_at: int = 0
    expires_at: int = 0  # 0: not known
    scope: Tuple[str, ...] = ()
    refreshable = False

    @classmethod
    def read(cls, token: str) -> GivenToken:
        try:
            header, claims = jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return cls(token)  # sent as given: Apple says what is wrong with it
        scope = claims.get("scope")
        return cls(
            token,
            key_id=str(header.get("kid") or ""),
            issuer_id=str(claims["iss"]) if claims.get("iss") else None,
            issued_at=_whole(claims.get("iat")),
            expires_at=_whole(claims.get("exp")),
            scope=tuple(str(entry) for entry in scope) if isinstance(scope, list) else (),
        )

    def bearer(self, *, after_401: bool = False) -> str:
        return self.token

    def unscoped(self, lifetime: int) -> GivenToken:
        return self  # no key to sign another with: the one token serves every check

    def note(self, now: float) -> str:
        """Said once in the log: the token is used as given, and when it expires."""
        when = "" if not self.expires_at else f" (it expires {iso8601(self.expires_at)})"
        ended = " and has expired already" if self.expires_at and self.expires_at <= now else ""
        return (
            f"No key was given: ASC_TOKEN is sent as it is{when}{ended}; it cannot be refreshed, so a request "
            "after it expires is refused (401): set the key (ASC_PRIVATE_KEY_PATH) for longer runs."
        )


def _whole(value: object) -> int:
    """A time claim in whole seconds; 0 (not known) when it is none a clock shows (NaN, 1e300: iso8601 would fail)."""
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
    return int(number) if 0 < number < 253_402_300_800 else 0  # before the year 10000
