"""Every form people paste a .p8 into a secret mints a token that verifies with the public key.

In process, except the README's key-file input, which runs through the runner (relative to its workspace)."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Callable, Dict

import jwt
import pytest

from asc_token.inputs import COMPOSITE_MARKER

from .conftest import individual_inputs, team_inputs
from .runner import (
    ISSUER_ID,
    KEY_ID,
    KeyMaterial,
    assert_no_secrets,
    assert_token_masked_first,
    run_action_in_process,
    run_entrypoint,
)

FORMS: Dict[str, Callable[[KeyMaterial], str]] = {
    "pkcs8_pem": lambda k: k.pem,
    "sec1_pem": lambda k: k.sec1,
    "escaped_newlines": lambda k: k.pem.replace("\n", "\\n"),
    "crlf": lambda k: k.pem.replace("\n", "\r\n"),
    "surrounding_whitespace": lambda k: "\n\n   " + k.pem + "  \n\t",
    "base64_of_file": lambda k: k.base64_of_file,
    "base64_of_sec1_file": lambda k: base64.b64encode(k.sec1.encode()).decode(),
    "newlines_collapsed_to_spaces": lambda k: k.pem.replace("\n", " "),
    "quoted": lambda k: '"' + k.pem.replace("\n", "\\n") + '"',
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_accepted_key_form_mints_a_verifiable_token(tmp_path: Path, key: KeyMaterial, form: str) -> None:
    before = int(time.time())
    result = run_action_in_process(tmp_path, team_inputs(key, private_key=FORMS[form](key)))
    assert result.returncode == 0, result.log
    token = result.outputs["token"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    claims = key.decode(token)
    assert claims["iss"] == ISSUER_ID
    assert claims["aud"] == "appstoreconnect-v1"
    assert "sub" not in claims and "scope" not in claims
    assert claims["exp"] - claims["iat"] == 1200  # Apple's limit, exactly
    assert before - 120 <= claims["iat"] <= before  # backdated a little for clock drift, never ahead
    assert result.outputs["expires-at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
    assert_token_masked_first(result)
    assert_no_secrets(result, key.secret_fragments())


def test_key_from_a_file_relative_to_the_workspace(tmp_path: Path, key: KeyMaterial) -> None:
    (tmp_path / "workspace" / "keys").mkdir(parents=True)
    (tmp_path / "workspace" / "keys" / f"AuthKey_{KEY_ID}.p8").write_text(key.pem)
    result = run_entrypoint(tmp_path, team_inputs(key, private_key=None, private_key_path=f"keys/AuthKey_{KEY_ID}.p8"))
    assert result.returncode == 0, result.log
    assert key.decode(result.outputs["token"])["iss"] == ISSUER_ID


def test_individual_key_signs_sub_user_without_issuer(tmp_path: Path, key: KeyMaterial) -> None:
    result = run_action_in_process(tmp_path, individual_inputs(key))
    assert result.returncode == 0, result.log
    claims = key.decode(result.outputs["token"])
    assert claims["sub"] == "user"
    assert "iss" not in claims


def test_scope_and_lifetime(tmp_path: Path, key: KeyMaterial, default_inputs: Dict[str, str]) -> None:
    scope = "GET /v1/apps?filter[platform]=IOS\n\n  GET /v1/builds  \n"
    result = run_action_in_process(tmp_path, {**default_inputs, "scope": scope, "expires-in": "300"})
    assert result.returncode == 0, result.log
    claims = key.decode(result.outputs["token"])
    assert claims["scope"] == ["GET /v1/apps?filter[platform]=IOS", "GET /v1/builds"]
    assert claims["exp"] - claims["iat"] == 300


def test_underscore_input_names_are_read_from_the_composite_step(tmp_path: Path, key: KeyMaterial) -> None:
    """action.yml passes INPUT_KEY_ID and says so; a container step gets the runner's INPUT_KEY-ID."""
    inputs = {"private_key": key.pem, "key_id": KEY_ID, "issuer_id": ISSUER_ID, "verify": "false"}
    result = run_action_in_process(tmp_path, inputs, extra_env=dict([COMPOSITE_MARKER]))
    assert result.returncode == 0, result.log
    assert key.decode(result.outputs["token"])["iss"] == ISSUER_ID


def test_summary_describes_the_token_without_it(
    tmp_path: Path, key: KeyMaterial, default_inputs: Dict[str, str]
) -> None:
    result = run_action_in_process(tmp_path, default_inputs)
    assert KEY_ID in result.summary
    assert "skipped" in result.summary
    assert result.outputs["token"] not in result.summary
