"""issue 29, items 5 and 6: fastlane's API key JSON as a credential source, ASC_TOKEN alone, and local
evidence said before any request (api-url's /v1, a key file named for another key, plain http)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any, Dict

import jwt
import pytest

from asc_token.explain import Asked, explain_reply
from asc_token.inputs import CliInputs
from asc_token.records import TokenRequest
from asc_token.settings import read_credentials, read_given_token
from asc_token.tokens import GivenToken, mint
from devtools.standin import AppStoreConnectStandIn

from .runner import ISSUER_ID, KEY_ID, PROCESS, KeyMaterial, invoke, one_error, settings


def fastlane_json(tmp_path: Path, material: KeyMaterial, **fields: Any) -> Path:
    """fastlane's API key JSON as write-key-files writes it; ``fields`` override (None drops one)."""
    document: Dict[str, Any] = {
        "key_id": KEY_ID,
        "issuer_id": ISSUER_ID,
        "key": material.pem,
        "duration": 1200,
        "in_house": False,
    }
    for name, value in fields.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    path = tmp_path / f"fastlane_api_key_{KEY_ID}.json"
    path.write_text(json.dumps(document))
    return path


def test_fastlane_json_alone_is_a_credential_source(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    path = fastlane_json(tmp_path, key)
    env = {"APP_STORE_CONNECT_API_KEY_PATH": str(path), "ASC_API_URL": api.url}
    run = invoke("asc-token api", tmp_path, {}, ["/v1/apps"], env=env)
    assert run.returncode == 0, run.log
    assert run.json()["data"]
    assert "variable is empty" not in run.log


def test_api_key_json_path_flag_and_base64_key(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    path = fastlane_json(tmp_path, key, key=key.base64_of_file, is_key_content_base64=True)
    run = invoke("asc-token api", tmp_path, {}, ["--api-key-json-path", str(path), "--api-url", api.url, "/v1/apps"])
    assert run.returncode == 0, run.log


def test_fastlane_json_fields_become_settings(tmp_path: Path, key: KeyMaterial) -> None:
    path = fastlane_json(tmp_path, key, issuer_id=None, in_house=True, duration=600)
    inputs = CliInputs({}, {"APP_STORE_CONNECT_API_KEY_PATH": str(path)})
    credentials = read_credentials(inputs)
    assert (credentials.key_id, credentials.issuer_id, credentials.key_type) == (KEY_ID, None, "individual")
    assert (credentials.expires_in, credentials.api.name) == (600, "enterprise")
    assert credentials.key.contents == key.pem


def test_explicit_settings_win_over_the_json_and_disagreements_are_named(tmp_path: Path, key: KeyMaterial) -> None:
    path = fastlane_json(tmp_path, key, key_id="ZZZZZ99999")
    inputs = CliInputs({}, {"APP_STORE_CONNECT_API_KEY_PATH": str(path), "ASC_KEY_ID": KEY_ID})
    assert read_credentials(inputs).key_id == KEY_ID
    (line,) = inputs.disagreements()
    assert line.startswith(
        "key-id: ASC_KEY_ID ('ABCDE12345') is used; key_id in the file APP_STORE_CONNECT_API_KEY_PATH names"
    )
    assert "ZZZZZ99999" in line and key.pem not in line


def test_a_json_without_a_key_says_so(tmp_path: Path, key: KeyMaterial) -> None:
    path = fastlane_json(tmp_path, key, key="")
    run = invoke("asc-token api", tmp_path, {}, ["/v1/apps"], env={"APP_STORE_CONNECT_API_KEY_PATH": str(path)})
    assert run.returncode == 2, run.log
    message = one_error(run)
    assert "has no key" in message and "variable is empty" not in run.log


def test_a_file_that_is_not_the_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not json")
    run = invoke("asc-token api", tmp_path, {}, ["/v1/apps"], env={"APP_STORE_CONNECT_API_KEY_PATH": str(path)})
    assert run.returncode == 2 and "is not fastlane's API key JSON" in one_error(run)


def test_asc_token_alone_is_never_an_empty_variable(tmp_path: Path, key: KeyMaterial) -> None:
    token = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID), lambda: 1.8e9).token
    run = invoke("asc-token", tmp_path, {}, ["--print"], env={"ASC_TOKEN": token})
    assert run.returncode == 2, run.log
    message = one_error(run)
    assert "only a token in ASC_TOKEN" in message and "cannot be refreshed" in message
    assert "variable is empty" not in run.log


def test_a_given_token_is_carried_as_it_is(key: KeyMaterial) -> None:
    token = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID, scope=("GET /v1/apps",)), lambda: 1.8e9).token
    credentials = read_given_token(CliInputs({}, {"ASC_TOKEN": token}))
    assert credentials is not None
    given = credentials.key.given
    assert isinstance(given, GivenToken)
    assert (credentials.key_id, credentials.issuer_id, credentials.scope) == (KEY_ID, ISSUER_ID, ("GET /v1/apps",))
    assert given.bearer() == given.bearer(after_401=True) == token and not given.refreshable
    assert "cannot be refreshed" in given.note(2e9) and "expired already" in given.note(2e9)
    assert read_given_token(CliInputs({}, {"ASC_TOKEN": token, "ASC_PRIVATE_KEY": key.pem})) is None
    assert GivenToken.read("not a jwt").key_id == ""
    for absurd in (1e300, float("nan"), -5, "1800000000"):  # unverified claims: never a crash (exit 3)
        unusual = jwt.encode({"exp": absurd, "iat": absurd}, "k" * 32, algorithm="HS256")
        assert GivenToken.read(unusual).expires_at == 0 and "No key was given" in GivenToken.read(unusual).note(0)


def test_a_given_tokens_key_id_is_shown_only_in_its_usual_form(key: KeyMaterial) -> None:
    """Its header is unverified text: a kid that is no key ID never reaches an explanation or the log."""
    claims = {"iss": ISSUER_ID, "iat": 1_800_000_000, "exp": 1_800_000_600, "aud": "appstoreconnect-v1"}
    for kid in ("ABCDE12345\n::error::injected", "::warning::x", "abcde12345"):
        token = jwt.encode(claims, key.key, algorithm="ES256", headers={"kid": kid})
        found = read_given_token(CliInputs({}, {"ASC_TOKEN": token}))
        assert found is not None and found.key_id == "", kid


def test_asc_token_alone_calls_the_api_as_given(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    """`asc-token api` with only ASC_TOKEN (as export-token leaves it) sends it as it is, as gh sends GH_TOKEN."""
    token = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID), time.time).token
    env = {"ASC_TOKEN": token, "ASC_API_URL": api.url}
    run = invoke("asc-token api", tmp_path, {}, ["/v1/apps"], env=env, mode=PROCESS)
    assert run.returncode == 0, run.log
    assert json.loads(run.stdout)["data"], "the answer is printed"
    assert run.log.count("cannot be refreshed") == 1, "said once"
    assert [call.token for call in api.calls] == [token], "the token, as given"
    assert token not in run.stderr and token not in run.stdout


def test_a_given_tokens_scope_is_named_as_the_tokens(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """The scope came with ASC_TOKEN: the refusal names it, not --scope, which would change nothing."""
    token = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID, scope=("GET /v1/builds",)), time.time).token
    env = {"ASC_TOKEN": token, "ASC_API_URL": api.url}
    run = invoke("asc-token api", tmp_path, {}, ["/v1/apps"], env=env)
    assert run.returncode == 2 and api.requests == []
    assert "ASC_TOKEN's scope does not allow GET /v1/apps" in one_error(run) and "--scope" not in one_error(run)


# --- item 6: local evidence first ---------------------------------------------------------------


def test_a_refused_given_token_is_explained_as_the_token(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """A 401 to ASC_TOKEN sent as given: no issuer or key ID was set, so the token is what to change."""
    token = mint(key.key, TokenRequest(KEY_ID, ISSUER_ID), lambda: time.time() - 3600).token  # expired
    run = invoke("asc-token api", tmp_path, {}, ["/v1/apps"], env={"ASC_TOKEN": token, "ASC_API_URL": api.url})
    assert run.returncode == 1 and "401" in one_error(run), run.log
    assert "ASC_TOKEN has expired" in one_error(run) and "ISSUER" not in run.stderr
    assert "freshly signed" not in one_error(run)


def test_the_key_file_warning_shows_the_key_id_as_given_safely() -> None:
    """The warning comes before the key ID is checked: what was given is quoted, never a line of its own."""
    env = {"ASC_KEY_ID": "ZZZZZ99999\n::error::injected", "ASC_PRIVATE_KEY_PATH": "AuthKey_ABCDE12345.p8"}
    (line,) = CliInputs({}, env).disagreements()
    assert "Apple will refuse the token" in line and "\n" not in line and "::error" not in line


def test_api_url_with_v1_is_taken_without_it(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn) -> None:
    run = invoke("asc-token api", tmp_path, settings(key, standin=api, api_url=api.url + "/v1/"), ["/v1/apps"])
    assert run.returncode == 0, run.log
    assert run.stderr.count("ends in /v1") == 1
    assert [path for path, _ in api.requests] == ["/v1/apps"]


def test_key_file_named_for_another_key_is_a_warning_and_the_first_cause(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    key_file = tmp_path / f"AuthKey_{KEY_ID}.p8"
    key_file.write_text(key.pem)
    named = settings(key, standin=api, private_key=None, private_key_path=str(key_file), key_id="ZZZZZ99999")
    run = invoke("asc-token api", tmp_path, named, ["/v1/apps"])
    assert run.returncode == 1, run.log
    warning = next(line for line in run.stderr.splitlines() if line.startswith("Warning: ASC_PRIVATE_KEY_PATH"))
    assert f"AuthKey_{KEY_ID}.p8" in warning and "ZZZZZ99999" in warning
    assert run.stderr.index(warning) < run.stderr.index("401")
    causes = run.stderr.split("Likely causes, most likely first:", 1)[1]
    assert causes.lstrip().startswith(f"1. AuthKey_{KEY_ID}.p8 is named for key {KEY_ID}, not ZZZZZ99999")


def test_explain_ranks_the_file_name_first(key: KeyMaterial) -> None:
    from asc_token.transport import Reply

    credentials = read_credentials(
        CliInputs(
            {},
            {"ASC_KEY_ID": "ZZZZZ99999", "ASC_ISSUER_ID": ISSUER_ID, "ASC_PRIVATE_KEY_PATH": "AuthKey_ABCDE12345.p8"},
        )
    )
    body = json.dumps({"errors": [{"status": "401", "code": "NOT_AUTHORIZED", "title": "t", "detail": "d"}]})
    reply = Reply(401, {"content-type": "application/json"}, body.encode())
    error = explain_reply(reply, Asked.about("http://127.0.0.1/v1/apps", credentials), CliInputs({}, {}), lambda: 0.0)
    assert "its name says key ABCDE12345" in str(error)


@pytest.mark.parametrize("verify", ["true", "false"])
def test_plain_http_to_another_host_is_refused_even_without_verify(
    tmp_path: Path, key: KeyMaterial, verify: str
) -> None:
    run = invoke("action", tmp_path, settings(key, api_url="http://api.example.com", verify=verify))
    assert run.returncode == 2, run.log
    assert "plain http://" in one_error(run)


def test_a_path_in_asc_private_key_names_its_path_variable(tmp_path: Path, key: KeyMaterial) -> None:
    run = invoke("asc-token", tmp_path, {}, ["--key-id", KEY_ID], env={"ASC_PRIVATE_KEY": "./AuthKey_ABCDE12345.p8"})
    message = one_error(run)
    assert "set ASC_PRIVATE_KEY_PATH=" in message and "--private-key-path" not in message


def test_base64_helper_matches_the_file(key: KeyMaterial) -> None:
    assert base64.b64decode(key.base64_of_file).decode() == key.pem


def test_the_action_takes_api_url_without_v1_and_says_so_once(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    run = invoke("action", tmp_path, settings(key, standin=api, api_url=api.url + "/v1"))
    assert run.returncode == 0, run.log
    assert run.log.count("ends in /v1") == 1
    assert all(not path.startswith("/v1/v1") for path, _ in api.requests)


def test_a_key_in_the_json_and_another_in_asc_private_key_is_named_without_either(
    tmp_path: Path, key: KeyMaterial
) -> None:
    path = fastlane_json(tmp_path, key)
    other = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
    inputs = CliInputs({}, {"APP_STORE_CONNECT_API_KEY_PATH": str(path), "ASC_PRIVATE_KEY": other})
    (line,) = inputs.disagreements()
    assert line.startswith("private-key: ASC_PRIVATE_KEY is used; key in the file APP_STORE_CONNECT_API_KEY_PATH")
    assert key.pem not in line and other not in line


@pytest.mark.parametrize(
    ("path_variable", "contents_variable"),
    [
        ("PLUGIN_PRIVATE_KEY_PATH", "PLUGIN_PRIVATE_KEY"),
        ("ASC_PRIVATE_KEY_PATH", "ASC_PRIVATE_KEY"),
        ("APP_STORE_CONNECT_API_KEY_KEY_FILEPATH", "APP_STORE_CONNECT_API_KEY_KEY"),
    ],
)
def test_fixes_name_the_key_setting_of_the_family_in_use(path_variable: str, contents_variable: str) -> None:
    assert CliInputs({}, {path_variable: "AuthKey_ABCDE12345.p8"}).label("private-key") == contents_variable
    pasted = CliInputs({}, {contents_variable: "./AuthKey_ABCDE12345.p8"})
    assert pasted.assignment("private-key-path", "x") == f"{path_variable}=x"
