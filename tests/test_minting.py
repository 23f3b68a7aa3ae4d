"""The pure core: a key, claims and a clock in; a token that Apple's rules accept out."""

from __future__ import annotations

import jwt
import pytest

from asc_token.minting import IAT_BACKDATE_SECONDS, TokenRequest, iso8601, mint, scope_allows

from .runner import ISSUER_ID, KEY_ID, KeyMaterial

NOW = 1_800_000_000.7


def test_claims_with_a_fixed_clock(key: KeyMaterial) -> None:
    minted = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID, 1200), clock=lambda: NOW)
    claims = jwt.decode(
        minted.token, key.key.public_key(), algorithms=["ES256"], audience="appstoreconnect-v1",
        options={"verify_exp": False, "verify_iat": False},
    )  # fmt: skip
    assert claims == {
        "aud": "appstoreconnect-v1",
        "iat": int(NOW) - IAT_BACKDATE_SECONDS,
        "exp": int(NOW) - IAT_BACKDATE_SECONDS + 1200,
        "iss": ISSUER_ID,
    }
    assert jwt.get_unverified_header(minted.token) == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    assert minted.expires_at == claims["exp"]
    assert minted.expires_at_iso == iso8601(claims["exp"])


def test_lifetime_never_exceeds_apples_limit_even_backdated(key: KeyMaterial) -> None:
    # fastlane's iat-60 with exp = now + 1200 gives exp - iat = 1260: a guaranteed 401.
    minted = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID, 1200), clock=lambda: NOW)
    assert minted.expires_at - minted.issued_at == 1200
    assert minted.issued_at < NOW


@pytest.mark.parametrize("lifetime", [0, 1201, -1])
def test_rejects_impossible_lifetimes(key: KeyMaterial, lifetime: int) -> None:
    with pytest.raises(ValueError):
        mint(key.key, TokenRequest(KEY_ID, ISSUER_ID, lifetime), clock=lambda: NOW)


def test_individual_and_scope(key: KeyMaterial) -> None:
    minted = mint(key.key, TokenRequest(KEY_ID, None, 60, ("GET /v1/apps",)), clock=lambda: NOW)
    claims = jwt.decode(minted.token, key.key.public_key(), algorithms=["ES256"], audience="appstoreconnect-v1",
                        options={"verify_exp": False, "verify_iat": False})  # fmt: skip
    assert claims["sub"] == "user" and "iss" not in claims
    assert claims["scope"] == ["GET /v1/apps"]


def test_iso8601() -> None:
    assert iso8601(0) == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("scope", "url", "allowed"),
    [
        ((), "/v1/apps?limit=1", True),
        (("GET /v1/apps",), "/v1/apps?limit=1", True),
        (("GET /v1/apps?filter[platform]=IOS",), "/v1/apps?limit=1", False),
        (("GET /v1/apps?filter[platform]=IOS",), "/v1/apps?filter[platform]=IOS&limit=1", True),
        (("POST /v1/apps",), "/v1/apps?limit=1", False),
        (("GET /v1/builds", "GET /v1/apps"), "/v1/apps", True),
    ],
)
def test_scope_allows(scope: tuple, url: str, allowed: bool) -> None:  # type: ignore[type-arg]
    assert scope_allows(scope, "GET", url) is allowed
