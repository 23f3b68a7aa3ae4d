"""Pure token minting: a key, the claims and a clock in; a signed ES256 JWT out.

The compact JWS is assembled here with ``cryptography`` (RFC 7515 with RFC 7518's ES256: the
signature is r || s, 32 bytes each) rather than with ``jwt.encode``: importing PyJWT pulls in
its JWKS client, urllib and x509, which more than doubles the start-up of every mint-only run.
PyJWT still checks every token we mint: the local stand-in and the tests decode them with
``jwt.decode(..., algorithms=["ES256"])``.
"""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

AUDIENCE = "appstoreconnect-v1"
MAX_LIFETIME_SECONDS = 1200
# Runner clocks drift; Apple rejects an `iat` in its future. Backdating moves `exp` back by the
# same amount, so `exp - iat` (what Apple limits to 1200 s) stays exactly the requested lifetime.
IAT_BACKDATE_SECONDS = 30

Clock = Callable[[], float]


@dataclass(frozen=True)
class TokenRequest:
    key_id: str
    issuer_id: Optional[str]  # None for an individual key
    lifetime: int = MAX_LIFETIME_SECONDS
    scope: Sequence[str] = ()


@dataclass(frozen=True)
class MintedToken:
    token: str
    issued_at: int
    expires_at: int

    @property
    def expires_at_iso(self) -> str:
        return iso8601(self.expires_at)


def mint(key: ec.EllipticCurvePrivateKey, request: TokenRequest, clock: Clock) -> MintedToken:
    """Sign the App Store Connect token described in Apple's "Generating Tokens for API Requests"."""
    if not 0 < request.lifetime <= MAX_LIFETIME_SECONDS:
        raise ValueError(f"lifetime must be 1..{MAX_LIFETIME_SECONDS}, got {request.lifetime}")
    issued_at = int(clock()) - IAT_BACKDATE_SECONDS
    expires_at = issued_at + request.lifetime
    claims: dict[str, object] = {"aud": AUDIENCE, "iat": issued_at, "exp": expires_at}
    if request.issuer_id is None:
        claims["sub"] = "user"
    else:
        claims["iss"] = request.issuer_id
    if request.scope:
        claims["scope"] = list(request.scope)
    token = sign_es256({"alg": "ES256", "kid": request.key_id, "typ": "JWT"}, claims, key)
    return MintedToken(token=token, issued_at=issued_at, expires_at=expires_at)


def sign_es256(header: Dict[str, object], claims: Dict[str, object], key: ec.EllipticCurvePrivateKey) -> str:
    """A compact JWS: base64url(header).base64url(claims).base64url(r || s)."""
    if header.get("alg") != "ES256" or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("only ES256 with a P-256 key is supported")
    signing_input = _b64url(_json(header)) + b"." + _b64url(_json(claims))
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return (signing_input + b"." + _b64url(signature)).decode("ascii")


def _json(value: Dict[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _b64url(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def iso8601(epoch_seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch_seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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
        if entry_method.upper() != method.upper() or allowed.path != target.path:
            continue
        if set(parse_qsl(allowed.query, keep_blank_values=True)) <= target_query:
            return True
    return False
