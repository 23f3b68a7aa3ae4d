"""A value that may be key material is never quoted back: a key in a path setting, in an argument, in a
setting of another kind; it is named by its length and setting only.

The table tests run in this process with stdout and stderr read at the file descriptors
(OnFds); the installed command's refusal of an argument runs as a process."""

from __future__ import annotations

from pathlib import Path
from typing import List, Literal

import pytest

from asc_token.redact import may_be_secret_path, quote_foreign
from devtools.standin import AppStoreConnectStandIn

from .runner import (
    ISSUER_ID,
    KEY_ID,
    PROCESS,
    KeyMaterial,
    OnFds,
    assert_no_secrets,
    invoke,
    needs_cli,
    one_error,
    raw_key_b64,
    settings,
)

# --- a key pasted into a path setting is never echoed -----------------------------------------


@pytest.mark.parametrize("form", ["pem", "base64"])
def test_key_in_private_key_path_input(
    tmp_path: Path, key: KeyMaterial, form: str, capfd: pytest.CaptureFixture[str]
) -> None:
    pasted = key.pem if form == "pem" else key.base64_of_file
    result = invoke("action", tmp_path, settings(key, private_key="", private_key_path=pasted), mode=OnFds(capfd))
    assert result.returncode == 2
    message = one_error(result)
    assert "`private-key-path` holds what looks like the key itself" in message
    assert_no_secrets(result, [*key.secret_fragments(), key.base64_of_file])


@pytest.mark.parametrize(
    "variable", ["ASC_PRIVATE_KEY_PATH", "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH", "PLUGIN_PRIVATE_KEY_PATH"]
)
@pytest.mark.parametrize("form", ["pem", "base64"])
def test_key_in_path_variable(
    tmp_path: Path, key: KeyMaterial, variable: str, form: str, capfd: pytest.CaptureFixture[str]
) -> None:
    pasted = key.pem if form == "pem" else key.base64_of_file
    env = {variable: pasted, "ASC_KEY_ID": KEY_ID, "ASC_ISSUER_ID": ISSUER_ID, "GITLAB_CI": "true"}
    run = invoke("asc-token", tmp_path, None, ["--print", "--no-verify"], mode=OnFds(capfd), env=env)
    assert run.returncode == 2 and run.stdout == ""
    assert f"{variable} holds what looks like the key itself" in run.stderr
    assert_no_secrets(run, [*key.secret_fragments(), key.base64_of_file])


def test_overlong_path_is_not_quoted(tmp_path: Path, key: KeyMaterial) -> None:
    path = "some.dir/" * 556  # 5,004 characters: ENAMETOOLONG, and not shaped like a key
    result = invoke("action", tmp_path, settings(key, private_key="", private_key_path=path))
    assert result.returncode == 2
    message = one_error(result)
    assert "cannot be opened as a file" in message and "not shown" in message
    assert "some.dir/some.dir" not in result.stdout + result.summary


@pytest.mark.parametrize("setting", ["key-id", "issuer-id", "key-type", "expires-in", "verify", "write-key-files"])
def test_key_fragment_in_another_input_is_not_echoed(tmp_path: Path, key: KeyMaterial, setting: str) -> None:
    fragment = raw_key_b64(key)
    assert len(fragment) == 44
    result = invoke("action", tmp_path, {**settings(key), setting: fragment})
    assert result.returncode == 2
    one_error(result)
    for shown in (fragment, fragment.lower(), fragment[:24]):
        assert shown not in result.stdout + result.summary


@pytest.mark.parametrize("command", ["action", "asc-token"])
def test_a_key_fragment_as_key_id_beside_a_named_key_file_is_not_echoed(
    tmp_path: Path, key: KeyMaterial, command: Literal["action", "asc-token"]
) -> None:
    """The warning that the key file is named for another key quotes key-id only as a setting may be quoted."""
    fragment = raw_key_b64(key)
    key_file = tmp_path / "AuthKey_ZZZZZ99999.p8"
    key_file.write_text(key.pem)
    named = {**settings(key, private_key="", private_key_path=str(key_file)), "key-id": fragment}
    result = invoke(command, tmp_path, named, None if command == "action" else ["--print", "--no-verify"])
    assert result.returncode == 2
    logged = "\n".join(line for line in [*result.stderr.splitlines(), *result.log_lines] if "add-mask" not in line)
    for piece in (fragment, fragment[:24]):
        assert piece not in logged + result.stdout + result.summary, logged


# --- argparse never echoes an argument's value ------------------------------------------------


@pytest.mark.parametrize("form", ["pem", "base64"])
@pytest.mark.parametrize("how", ["--private={}", "--private-key-path-typo={}", "{}"])
def test_unknown_argument_values_are_not_echoed(
    tmp_path: Path, key: KeyMaterial, form: str, how: str, capfd: pytest.CaptureFixture[str]
) -> None:
    pasted = key.pem if form == "pem" else key.base64_of_file
    run = invoke("asc-token", tmp_path, settings(key, verify=None), ["--print", how.format(pasted)], mode=OnFds(capfd))
    assert run.returncode == 2 and run.stdout == ""
    assert "unrecognised arguments" in run.stderr
    assert_no_secrets(run, [*key.secret_fragments(), pasted[:40]])


@needs_cli
def test_unknown_argument_is_named_without_its_value(tmp_path: Path, key: KeyMaterial) -> None:
    named = settings(key, verify=None)
    run = invoke("asc-token", tmp_path, named, ["--print", "--bogus=hunter2", "stray-value"], mode=PROCESS)
    assert run.returncode == 2 and run.stdout == ""
    assert "unrecognised arguments: --bogus" in run.stderr
    assert "hunter2" not in run.stderr and "stray-value" not in run.stderr


def test_a_short_key_piece_in_the_path_setting_is_not_echoed(tmp_path: Path, key: KeyMaterial) -> None:
    piece = key.pem.splitlines()[1][:36]
    result = invoke("action", tmp_path, settings(key, private_key="", private_key_path=piece))
    assert result.returncode == 2
    assert piece not in result.log and piece not in result.summary


def test_key_material_as_path_or_header_name_is_never_sent(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn
) -> None:
    """Refused before anything is sent: it would reach the server's (or a proxy's) logs."""
    # Without its '/': a raw key that a '/' cuts into parts shorter than a key line's piece reads as
    # path segments (docs/security.md), so a generated key that has one would make this test flaky.
    raw = raw_key_b64(key).replace("/", "B")
    for args in (
        [f"/{raw}"],
        [f"/v1/{raw}/apps"],
        ["/v1/apps", "-H", f"{raw.replace('+', 'A').rstrip('=')}: 1"],
    ):
        called = invoke("asc-token api", tmp_path, settings(key, verify=None, api_url=api.url), args)
        assert called.returncode == 2 and called.stdout_bytes == b"" and api.requests == [], called.log_lines
        assert raw[:20] not in "\n".join(called.log_lines)
    called = invoke(
        "asc-token api",
        tmp_path,
        settings(key, verify=None, api_url=api.url),
        ["/v1/apps?filter[bundleId]=eyJvZmZzZXQiOiIyMDAwIn0AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    )
    assert called.returncode == 0, called.log_lines  # a long value in the query (a cursor is one) is not refused


def test_long_resource_names_are_not_taken_for_key_material(key: KeyMaterial) -> None:
    """Apple's longest names are letters (and a version) only; a key's pieces are not."""
    for name in ("subscriptionOfferCodeOneTimeUseCodes", "appStoreVersionExperimentTreatmentLocalizations"):
        assert not may_be_secret_path(f"/v1/{name}/1234567890/gameCenterLeaderboardSetsV2")
    pem_line = key.pem.splitlines()[1]
    assert may_be_secret_path(f"/v1/{pem_line}") and may_be_secret_path(f"/v1/{pem_line[:24]}/apps")


def test_messages_quote_the_paths_that_are_sent(key: KeyMaterial) -> None:
    """What decides that a path may be sent also decides that an error may show it: one rule."""
    url = "https://api.appstoreconnect.apple.com/v1/appStoreVersionExperimentTreatmentLocalizations/1234567890"
    assert not may_be_secret_path(url) and quote_foreign(f"GET {url}") == f"GET {url}"
    pem_line = key.pem.splitlines()[1]
    assert pem_line not in quote_foreign(f"GET https://api.appstoreconnect.apple.com/v1/{pem_line}")


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--no-verify={}"], "--no-verify"),
        (["--print={}"], "--print"),
        (["--verify={}"], "--verify"),
        (["--version={}"], "--version"),
        (["--help={}"], "--help"),
        (["api", "/v1/apps", "--paginate={}"], "--paginate"),
        (["api", "/v1/apps", "--include={}"], "--include"),
        (["api", "/v1/apps", "-i{}"], "-i"),
    ],
)
def test_a_key_given_to_a_flag_that_takes_no_value_is_not_echoed(
    tmp_path: Path, key: KeyMaterial, argv: List[str], flag: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """argparse's own message (`ignored explicit argument '-----BEGIN PRIVATE KEY-----...'`) quotes it."""
    run = invoke(
        "asc-token", tmp_path, settings(key, verify=None), [arg.format(key.pem) for arg in argv], mode=OnFds(capfd)
    )
    assert run.returncode == 2 and run.stdout == ""
    error = run.stderr.splitlines()[-1]
    assert flag in error.split(" takes no value")[0] and "not shown" in error, run.stderr
    for line in key.pem.splitlines():
        assert line not in run.stderr


@pytest.mark.parametrize("setting", ["api-url", "notary-url"])
def test_a_url_refused_as_key_material_is_never_shown_even_when_short(
    tmp_path: Path, key: KeyMaterial, setting: str
) -> None:
    """Refused because a part may be a piece of a key: quoting it would show that piece."""
    piece = key.pem.splitlines()[1][:24]
    result = invoke("action", tmp_path, {**settings(key), setting: f"https://h.invalid/{piece}"})
    assert result.returncode == 2
    assert "looks like key material (not shown)" in one_error(result)
    assert piece not in result.log + result.summary
