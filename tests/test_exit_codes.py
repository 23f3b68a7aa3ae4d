"""One exit status table for the action, ``asc-token`` and ``asc-token api`` (docs/troubleshooting.md)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Callable, Dict

import pytest

from asc_token import errors
from asc_token.world import Io
from devtools.standin import AppStoreConnectStandIn

from .conftest import cli_env, team_inputs, verify_inputs
from .runner import (
    ROOT,
    KeyMaterial,
    call_api_in_process,
    run_action_in_process,
    run_cli,
    run_cli_in_process,
)

Run = Callable[[Path, KeyMaterial, AppStoreConnectStandIn, Dict[str, str]], int]


def action(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, overrides: Dict[str, str]) -> int:
    names = {"ASC_KEY_ID": "key_id", "ASC_ISSUER_ID": "issuer_id", "ASC_API_URL": "api_url"}
    return run_action_in_process(
        tmp_path, verify_inputs(key, api, **{names[n]: v for n, v in overrides.items()})
    ).returncode


def token_command(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, overrides: Dict[str, str]) -> int:
    return run_cli_in_process(tmp_path, {**cli_env(key, ASC_API_URL=api.url), **overrides}, ["--print"]).returncode


def api_command(tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, overrides: Dict[str, str]) -> int:
    return call_api_in_process({**cli_env(key, ASC_API_URL=api.url), **overrides}, ["/v1/apps"])[0]


FRONT_ENDS = {"action": action, "asc-token": token_command, "asc-token api": api_command}
CASES = {
    "done": ({}, errors.EXIT_OK),
    "invalid key ID": ({"ASC_KEY_ID": "abcde"}, errors.EXIT_USAGE),
    "invalid api-url": ({"ASC_API_URL": "ftp://example.com"}, errors.EXIT_USAGE),
    "refused with 401": ({"ASC_ISSUER_ID": "11111111-2222-3333-4444-555555555555"}, errors.EXIT_FAILED),
    "unreachable": ({"ASC_API_URL": "http://127.0.0.1:9"}, errors.EXIT_FAILED),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("front_end", sorted(FRONT_ENDS))
def test_every_front_end_exits_by_the_same_table(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, front_end: str, case: str
) -> None:
    overrides, status = CASES[case]
    assert FRONT_ENDS[front_end](tmp_path, key, api, overrides) == status


def test_a_delivery_that_fails_after_minting_exits_1(tmp_path: Path, key: KeyMaterial) -> None:
    folder = tmp_path / "not-a-folder"
    folder.write_text("a file where the token file's folder should be")
    run = run_cli_in_process(tmp_path, cli_env(key), ["--no-verify", "--output-file", str(folder / "token")])
    assert run.returncode == errors.EXIT_FAILED and "could not be written" in run.stderr


def test_the_documented_table_is_the_code() -> None:
    text = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    table = text.split("## Exit statuses", 1)[1].split("\n## ", 1)[0]
    documented = {int(status) for status in re.findall(r"^\| (\d) \|", table, re.MULTILINE)}
    coded = {errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_USAGE, errors.EXIT_INTERNAL}
    assert documented == coded
    assert (
        errors.InputError("x").exit_code == errors.EXIT_USAGE and errors.ApiError("x").exit_code == errors.EXIT_FAILED
    )


def test_without_verification_the_action_needs_no_request(tmp_path: Path, key: KeyMaterial) -> None:
    assert run_action_in_process(tmp_path, team_inputs(key)).returncode == errors.EXIT_OK


def test_malformed_api_url_host_is_a_setting_error_not_a_crash(tmp_path: Path, key: KeyMaterial) -> None:
    for args in (["--api-url", "https://" + "a" * 64 + ".example"], ["api", "--api-url", "https://a..b", "/v1/apps"]):
        run = run_cli(tmp_path, cli_env(key), args)
        assert run.returncode == 2 and "Internal error" not in run.stderr, run.stderr
        assert (
            "does not have a valid host name" in run.stderr
            or "is not a URL: it holds what looks like key material (not shown)" in run.stderr
        )


def test_an_unexpected_error_is_one_line_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug is reported on stderr without a traceback, and not with `asc-token api`'s 2 ("nothing was sent")."""
    from asc_token import dispatch, token_command

    def broken(argv: object = None, io: object = None) -> int:
        raise RuntimeError("a message that could quote an input")

    monkeypatch.setattr(token_command, "main", broken)
    for env, form in (({"GITHUB_ACTIONS": "true"}, "::error title=Internal error::"), ({}, "error: Internal error: ")):
        stderr = io.StringIO()
        assert dispatch.main(["--version"], force_cli=True, io=Io(env=env, stderr=stderr, stdout=io.StringIO())) == 3
        assert stderr.getvalue().startswith(form) and "RuntimeError" in stderr.getvalue()  # the platform's form
        assert "could quote an input" not in stderr.getvalue() and "Traceback" not in stderr.getvalue()
    assert capsys.readouterr().out == ""
