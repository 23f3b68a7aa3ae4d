"""The pure core: a key, claims and a clock in; a token that Apple's rules accept out."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import jwt
import pytest

from asc_token.apis import APP_STORE_CONNECT, ENTERPRISE, Api
from asc_token.records import TokenRequest, iso8601
from asc_token.tokens import IAT_BACKDATE_SECONDS, mint, scope_allows

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


def test_signature_is_raw_r_s_and_verifies_with_cryptography(key: KeyMaterial) -> None:
    """Independent of PyJWT: the third segment is r || s (64 bytes) over header.claims."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    token = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID), clock=lambda: NOW).token
    header_b64, claims_b64, signature_b64 = token.split(".")
    assert "=" not in token
    raw = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.key.public_key().verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))


def test_tampered_token_is_rejected_by_pyjwt(key: KeyMaterial) -> None:
    token = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID), clock=lambda: NOW).token
    header, _claims, signature = token.split(".")
    forged = mint(key.key, TokenRequest(KEY_ID, "00000000-0000-4000-8000-000000000000"), clock=lambda: NOW).token
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{header}.{forged.split('.')[1]}.{signature}", key.key.public_key(), algorithms=["ES256"],
                   audience="appstoreconnect-v1", options={"verify_exp": False})  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        ([], {}),
        ([], {"INPUT_API-URL": "https://asc.example.com"}),  # the URL policy runs only where a request is sent
        (["--no-verify", "--print"], {"GITHUB_ACTIONS": "", "ASC_API_URL": "https://asc.example.com"}),
    ],
)
def test_a_mint_only_run_does_not_import_requests(
    tmp_path: Path, key: KeyMaterial, argv: List[str], extra: Dict[str, str]
) -> None:
    import subprocess
    import sys

    from .runner import ENTRYPOINT

    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{str(ENTRYPOINT)!r}, *{argv!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(ENTRYPOINT)!r}, run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "print(sorted(m for m in ('requests', 'urllib3') if m in sys.modules))\n"
    )
    output = tmp_path / "out"
    output.write_text("")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "INPUT_PRIVATE-KEY": key.pem,
           "INPUT_KEY-ID": KEY_ID, "INPUT_ISSUER-ID": ISSUER_ID, "INPUT_VERIFY": "false", "PATH": "/usr/bin:/bin",
           "ASC_PRIVATE_KEY": key.pem, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID, **extra}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_a_six_month_token_for_a_scoped_get(key: KeyMaterial) -> None:
    scope = ("GET /v1/ciProducts", "GET /v1/builds/1/diagnosticSignatures")
    minted = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID, 15_552_000, scope), clock=lambda: NOW)
    claims = jwt.decode(minted.token, key.key.public_key(), algorithms=["ES256"], audience="appstoreconnect-v1",
                        options={"verify_exp": False, "verify_iat": False})  # fmt: skip
    assert claims["exp"] - claims["iat"] == 15_552_000 == minted.expires_at - minted.issued_at
    assert claims["iat"] == int(NOW) - IAT_BACKDATE_SECONDS
    assert claims["scope"] == list(scope)


@pytest.mark.parametrize(
    ("lifetime", "scope", "api"),
    [
        (3600, (), APP_STORE_CONNECT),
        (3600, ("GET /v1/apps",), APP_STORE_CONNECT),
        (3600, ("GET /v1/ciProducts", "POST /v1/ciBuildRuns"), APP_STORE_CONNECT),
        (15_552_001, ("GET /v1/ciProducts",), APP_STORE_CONNECT),
        (1201, ("GET /v1/ciProducts",), ENTERPRISE),
        (0, (), APP_STORE_CONNECT),
    ],
)
def test_mint_refuses_what_apple_refuses(key: KeyMaterial, lifetime: int, scope: tuple, api: Api) -> None:  # type: ignore[type-arg]
    """The same rule as config's (lifetimes.py): a caller that skips validation cannot mint it."""
    with pytest.raises(ValueError):
        mint(key.key, TokenRequest(KEY_ID, ISSUER_ID, lifetime, scope, api), clock=lambda: NOW)


def test_enterprise_audience(key: KeyMaterial) -> None:
    minted = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID, api=ENTERPRISE), clock=lambda: NOW)
    claims = jwt.decode(minted.token, key.key.public_key(), algorithms=["ES256"],
                        audience="apple-developer-enterprise-v1", options={"verify_exp": False, "verify_iat": False})  # fmt: skip
    assert claims["aud"] == "apple-developer-enterprise-v1" and claims["iss"] == ISSUER_ID
    assert claims["exp"] - claims["iat"] == 1200
