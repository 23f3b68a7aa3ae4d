"""One exit status table for the action, ``asc-token`` and ``asc-token api`` (docs/troubleshooting.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

import pytest

from asc_token import errors
from devtools.standin import AppStoreConnectStandIn

from .runner import PROCESS, ROOT, Command, KeyMaterial, assert_no_secrets, invoke, settings

# Each front end verifies (the action and asc-token by their checks, asc-token api by its call).
FRONT_ENDS: Dict[Command, List[str]] = {"action": [], "asc-token": ["--print"], "asc-token api": ["/v1/apps"]}
CASES = {
    "done": ({}, errors.EXIT_OK),
    "invalid key ID": ({"key-id": "abcde"}, errors.EXIT_USAGE),
    "invalid api-url": ({"api-url": "ftp://example.com"}, errors.EXIT_USAGE),
    "refused with 401": ({"issuer-id": "11111111-2222-3333-4444-555555555555"}, errors.EXIT_FAILED),
    "unreachable": ({"api-url": "http://127.0.0.1:9"}, errors.EXIT_FAILED),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("front_end", sorted(FRONT_ENDS))
def test_every_front_end_exits_by_the_same_table(
    tmp_path: Path, key: KeyMaterial, api: AppStoreConnectStandIn, front_end: Command, case: str
) -> None:
    overrides, status = CASES[case]
    named = settings(key, standin=api, **overrides)
    assert invoke(front_end, tmp_path, named, FRONT_ENDS[front_end]).returncode == status


def test_a_delivery_that_fails_after_minting_exits_1(tmp_path: Path, key: KeyMaterial) -> None:
    folder = tmp_path / "not-a-folder"
    folder.write_text("a file where the token file's folder should be")
    run = invoke("asc-token", tmp_path, settings(key), ["--no-verify", "--output-file", str(folder / "token")])
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
    assert invoke("action", tmp_path, settings(key)).returncode == errors.EXIT_OK


def test_malformed_api_url_host_is_a_setting_error_not_a_crash(tmp_path: Path, key: KeyMaterial) -> None:
    for args in (["--api-url", "https://" + "a" * 64 + ".example"], ["api", "--api-url", "https://a..b", "/v1/apps"]):
        run = invoke("asc-token", tmp_path, settings(key, verify=None), args, mode=PROCESS)
        assert run.returncode == 2 and "Internal error" not in run.stderr, run.stderr
        assert (
            "does not have a valid host name" in run.stderr
            or "is not a URL: it holds what looks like key material (not shown)" in run.stderr
        )


def test_an_unexpected_error_is_one_line_exit_3(
    tmp_path: Path, key: KeyMaterial, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug is reported on stderr without a traceback, and not with `asc-token api`'s 2 ("nothing was sent")."""

    def broken_clock() -> float:  # a bug deep in the command, as the token is minted
        raise RuntimeError("a message that could quote an input")

    for env, form in (({"GITHUB_ACTIONS": "true"}, "::error title=Internal error::"), ({}, "error: Internal error: ")):
        run = invoke(
            "asc-token", tmp_path / form[:7], settings(key), ["--print", "--no-verify"], env=env, clock=broken_clock
        )
        assert run.returncode == 3 and run.stdout == ""
        (line,) = run.errors()
        assert line.startswith(form) and "RuntimeError" in line  # the platform's form
        assert "could quote an input" not in run.stderr and "Traceback" not in run.stderr
        assert_no_secrets(run, key.secret_fragments())
    assert capsys.readouterr().out == ""
