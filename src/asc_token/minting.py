"""Pure token minting: a key, the claims and a clock in; a signed ES256 JWT out (PyJWT signs)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from .apis import APP_STORE_CONNECT, Api
from .lifetimes import SHORT_LIFETIME_SECONDS, lifetime_refusal

MAX_LIFETIME_SECONDS = SHORT_LIFETIME_SECONDS  # the default; Apple's limit but for scoped long-lived GETs
# Runner clocks drift; Apple rejects an `iat` in its future. Backdating moves `exp` back by the
# same amount, so `exp - iat` (what Apple limits to 1200 s) stays exactly the requested lifetime;
# never more than a quarter of it, so that even a 3-second token is valid when it is signed.
IAT_BACKDATE_SECONDS = 30

Clock = Callable[[], float]


@dataclass(frozen=True)
class TokenRequest:
    key_id: str
    issuer_id: Optional[str]  # None for an individual key
    lifetime: int = MAX_LIFETIME_SECONDS
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


def iso8601(epoch_seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


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
